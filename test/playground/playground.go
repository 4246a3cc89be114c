// Package playground starts the sandbox as `make sandbox` offers it to
// people: the OpenShift Build API simulator behind the front door, the
// shipped strategies and the namespace the samples use with its RBAC, and a
// git server and registries that let samples/*.yaml apply unchanged. The
// samples clone https://github.com/ocbuild/ocbuild, which the sandbox cannot
// reach: the git server serves this checkout's samples/ as repository
// `ocbuild`, and the steps' git config rewrites the URL to it. They push to
// OpenShift's internal registry, which the simulator's builders map to the
// sandbox registry, and the Flask sample's pip reads the sandbox's package
// index through the cluster's build defaults, as a platform would point
// builds at its mirror.
package playground

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ocbuild/ocbuild/test/e2e/cluster"
	"github.com/ocbuild/ocbuild/test/e2e/openshift/kit"
	"github.com/ocbuild/ocbuild/test/sandbox"
	"github.com/ocbuild/ocbuild/test/sim"
)

// SamplesNamespace is the namespace the samples' output images name.
const SamplesNamespace = "ocbuild-samples"

// SamplesGitURL is the repository the samples build from.
const SamplesGitURL = "https://github.com/ocbuild/ocbuild"

// SamplesRepo is the git server's name for SamplesGitURL.
const SamplesRepo = "ocbuild"

// customStrategyGrant lets the samples' service account run Custom
// BuildConfigs (a cluster admin's template).
const customStrategyGrant = "strategies/rbac/custom-strategy-rolebinding.yaml"

// Options configure Start; the fields are sandbox.Options'.
type Options struct {
	Dir             string
	Out             io.Writer
	KeepPodOnCancel bool
	StepVersion     string
	OcbuildImages   []string
	ExecutorLog     io.Writer
}

// Playground is a started sandbox ready for the samples.
type Playground struct {
	Sandbox *sandbox.Sandbox
	Sim     *sim.Sim
	// Root is the ocbuild checkout.
	Root  string
	repos string
}

// SamplesRepos makes a directory for sandbox.Options.MoreRepos that holds
// repository SamplesRepo: the samples/ of checkout root, as SamplesGitURL
// has them. The caller removes it.
func SamplesRepos(root string) (string, error) {
	repos, err := os.MkdirTemp("", "ocbuild-samples-repos-")
	if err != nil {
		return "", err
	}
	if err := sandbox.CopyTree(filepath.Join(root, "samples"), filepath.Join(repos, SamplesRepo, "samples")); err != nil {
		_ = os.RemoveAll(repos)
		return "", fmt.Errorf("preparing repository %s: %w", SamplesRepo, err)
	}
	return repos, nil
}

// Start starts the playground; the caller must call Stop.
func Start(ctx context.Context, o Options) (*Playground, error) {
	root, err := kit.RepoRoot()
	if err != nil {
		return nil, err
	}
	repos, err := SamplesRepos(root)
	if err != nil {
		return nil, err
	}
	p := &Playground{Root: root, repos: repos}
	p.Sim = sim.New(sim.Options{BuildDefaults: sim.PackageIndexDefaults})
	p.Sandbox, err = sandbox.Start(ctx, sandbox.Options{
		Dir:             o.Dir,
		Out:             o.Out,
		KeepPodOnCancel: o.KeepPodOnCancel,
		StepVersion:     o.StepVersion,
		OcbuildImages:   o.OcbuildImages,
		ExecutorLog:     o.ExecutorLog,
		FrontDoor:       p.Sim.FrontDoor(),
		MoreRepos:       []string{filepath.Join(root, "samples", "apps"), repos},
		GitAliases:      map[string]string{SamplesGitURL: SamplesRepo},
	})
	if err != nil {
		p.Stop()
		return nil, err
	}
	sb := p.Sandbox
	if err := kit.InstallStrategies(ctx, sb.AdminConfig, root); err != nil {
		p.Stop()
		return nil, fmt.Errorf("installing strategies/: %w", err)
	}
	if err := sb.CreateNamespace(ctx, SamplesNamespace); err != nil {
		p.Stop()
		return nil, fmt.Errorf("creating namespace %s: %w", SamplesNamespace, err)
	}
	if err := kit.InstallNamespaceRBAC(ctx, sb.AdminConfig, root, SamplesNamespace); err != nil {
		p.Stop()
		return nil, fmt.Errorf("installing strategies/rbac/namespace in %s: %w", SamplesNamespace, err)
	}
	// What a cluster admin grants for samples/custom-buildconfig.
	grant, err := ReadObjects(filepath.Join(root, customStrategyGrant))
	if err == nil {
		err = kit.Apply(ctx, sb.AdminConfig, SamplesNamespace, grant)
	}
	if err != nil {
		p.Stop()
		return nil, fmt.Errorf("applying %s in %s: %w", customStrategyGrant, SamplesNamespace, err)
	}
	sb.Say(fmt.Sprintf("%-24s strategies/, strategies/rbac/namespace and %s in namespace %s", "ocbuild installed", customStrategyGrant, SamplesNamespace))
	return p, nil
}

// Stop stops the sandbox and removes what Start made outside its state
// directory.
func (p *Playground) Stop() {
	if p.Sandbox != nil {
		p.Sandbox.Stop()
	}
	_ = os.RemoveAll(p.repos)
}

// TryThis is the block of commands a newcomer can paste, run from the
// checkout's root.
func (p *Playground) TryThis() string {
	sb := p.Sandbox
	ns := SamplesNamespace
	lines := []string{
		"export KUBECONFIG=" + sb.OpenShiftKubeconfigPath + "   # the API as on OpenShift: build.openshift.io served, the rest proxied",
		"kubectl apply  -n " + ns + " -f samples/go-hello-docker/build.yaml",
		"kubectl create -n " + ns + " -f samples/go-hello-docker/buildrun.yaml",
		"kubectl get buildruns.shipwright.io -n " + ns + " -w              # until SUCCEEDED is True (Ctrl-C)",
		"kubectl get builds.build.openshift.io -n " + ns + "              # the OpenShift builds ocbuild ran",
		"kubectl get buildruns.shipwright.io -n " + ns + " -o jsonpath='{range .items[*]}{.metadata.name} {.status.output.digest}{\"\\n\"}{end}'",
		"kubectl apply  -n " + ns + " -f samples/flask-s2i/build.yaml && kubectl create -n " + ns + " -f samples/flask-s2i/buildrun.yaml",
		"kubectl logs -n " + ns + " -f <buildrun's .status.executor.name>-pod -c step-openshift-build   # the step log (samples/README.md)",
	}
	return "Try this (from " + p.Root + "):\n  " + strings.Join(lines, "\n  ") + "\n"
}

// ReadObjects decodes a YAML file of Kubernetes objects, as kubectl apply -f
// reads one.
func ReadObjects(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, &u)
		}
	}
}

// Cluster is the playground as the conformance suite sees a cluster
// (package cluster): the samples' repository as on github.com, the internal
// registry for output (read back at the sandbox registry), and Tekton's
// feature flags the suite may switch. withSimulator includes the simulator,
// for a suite running in this process.
func (p *Playground) Cluster(withSimulator bool) (*cluster.Config, error) {
	sb := p.Sandbox
	admin, err := clientcmd.BuildConfigFromFlags("", sb.OpenShiftKubeconfigPath)
	if err != nil {
		return nil, err
	}
	c := &cluster.Config{
		Description:      "the sandbox (state in " + sb.Dir + ")",
		Admin:            admin,
		Namespace:        cluster.DefaultNamespace,
		GitURL:           SamplesGitURL,
		GitRevision:      cluster.DefaultGitRevision,
		Output:           sim.InternalRegistry,
		Registry:         sb.Registry,
		RegistryInsecure: true,
		TektonFlags:      sandbox.TektonNamespace + "/" + sandbox.FeatureFlagsConfig,
		SwitchCancelMode: true,
	}
	if withSimulator {
		c.Description = "the sandbox started by this test process (state in " + sb.Dir + ")"
		c.Simulator = p.Sim
	}
	return c, nil
}

// WriteClusterEnv writes the playground as an existing cluster for `make
// e2e-cluster`: lines of VAR=value, to be exported.
func (p *Playground) WriteClusterEnv(path string) error {
	c, err := p.Cluster(false)
	if err != nil {
		return err
	}
	body := "# The sandbox as an existing cluster for `make e2e-cluster`: set -a; . " + path + "; set +a\n" +
		strings.Join(c.Env(p.Sandbox.OpenShiftKubeconfigPath), "\n") + "\n"
	return os.WriteFile(path, []byte(body), 0o600)
}
