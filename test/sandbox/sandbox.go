// Package sandbox starts a local stand-in for a Kubernetes cluster running
// Shipwright: embedded etcd, kube-apiserver and kube-controller-manager built
// from k8s.io/kubernetes, the Shipwright and Tekton CRDs, the real Shipwright
// build controller and conversion webhook, an OCI registry, a git server, and
// a TaskRun executor that plays Tekton's controller and the kubelet by running
// steps as local processes, with a kubelet API for them (node "sandbox":
// logs, exec, attach). Everything listens on loopback, on free ports.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	buildclient "github.com/shipwright-io/build/pkg/client/clientset/versioned"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
)

// Images the sandbox understands. The Shipwright controller is configured to
// use GitImage for its source step; the executor runs Shipwright's cmd/git
// binary for it. OcbuildImage (and any name in Options.OcbuildImages) runs the
// ocbuild step binary built from ../step.
const (
	GitImage = "sandbox.local/shipwright-io/build/git:v0.20.13"
	// WaiterImage is the image of Shipwright's waiter step (local source
	// upload: `shp build upload` streams the source in with pods/exec and
	// ends the wait with `waiter done`); it runs Shipwright's cmd/waiter.
	WaiterImage  = "sandbox.local/shipwright-io/build/waiter:v0.20.13"
	OcbuildImage = "sandbox.local/ocbuild/ocbuild:sandbox"
	// ShippedOcbuildImage is the image the shipped strategies (strategies/)
	// name; it too runs the ocbuild binary built from ../step.
	ShippedOcbuildImage = "ghcr.io/ocbuild/ocbuild"
	// HostImage runs a step's command[0] from the host's PATH (for test
	// strategies that need e.g. /bin/sh).
	HostImage = "sandbox.local/host:latest"
)

// FrontDoor is what a FrontDoorFunc returns: an endpoint that steps talk to
// instead of the API server (for example the OpenShift Build API simulator,
// which serves build.openshift.io itself and proxies the rest).
type FrontDoor struct {
	// URL is the https URL steps' kubeconfigs point at.
	URL string
	// CAData is the PEM bundle to trust for URL; nil means the API server's CA.
	CAData []byte
	// Stop is called when the sandbox stops (may be nil).
	Stop func()
}

// FrontDoorFunc starts a front door once the API server is up, the CRDs are
// established and the registry and git server are serving, and before the
// Shipwright controller and the executor start. It may register webhooks
// (served on loopback, clientConfig.url) and CRDs with the admin config.
type FrontDoorFunc func(ctx context.Context, sb *Sandbox) (*FrontDoor, error)

// Options configure Start.
type Options struct {
	// Dir holds all state (etcd data, logs, TaskRun directories). It is
	// wiped at start. Default: <repo>/.sandbox.
	Dir string
	// KubeconfigPath is where the admin kubeconfig is written.
	// Default: <Dir>/kubeconfig.
	KubeconfigPath string
	// Out receives progress and the summary of what runs where. Default: os.Stderr.
	Out io.Writer
	// Repos is a directory whose subdirectories become git repositories on
	// the git server, one deterministic commit each. Default: test/testdata/repos.
	Repos string
	// MoreRepos are further such directories (e.g. the repository's
	// samples/apps); a repository name may appear only once in all.
	MoreRepos []string
	// GitAliases map public repository URLs the sandbox cannot reach to
	// repositories of its git server (URL → name), for the steps' git:
	// url.<git server>/<name>.git.insteadOf <URL> in their system git
	// config. (The simulator's builders find a repository of the same
	// name on their own.)
	GitAliases map[string]string
	// GitBranches are further branches of a repository (name → branches),
	// each at its one commit, for sources that name a ref other than main.
	GitBranches map[string][]string
	// StepVersion is stamped into the ocbuild binary (-X main.version).
	// Default: "v0.0.0-sandbox".
	StepVersion string
	// OcbuildImages are further image names mapped to the ocbuild binary
	// (e.g. the name `make image` produces). Matching ignores tag and digest.
	OcbuildImages []string
	// Images maps further image names to binaries already on disk.
	Images map[string]string
	// BuildImages maps image names to Go main packages of the test module
	// (e.g. "./cmd/teststep") built with the rest and run for that image.
	BuildImages map[string]string
	// KeepPodOnCancel is the initial value of Tekton's keep-pod-on-cancel
	// feature flag (ConfigMap tekton-pipelines/feature-flags, read by the
	// executor at every cancel, so it can be switched while running).
	KeepPodOnCancel bool
	// ExecutorLog, if set, also receives the executor's log lines (TaskRuns
	// started, steps run and how they ended); they always go to
	// <Dir>/logs/executor.log.
	ExecutorLog io.Writer
	// FrontDoor, if set, starts a front door; steps' kubeconfigs then point
	// at it instead of the API server.
	FrontDoor FrontDoorFunc
	// CRDs are further CustomResourceDefinitions (e.g. the simulator's
	// build.openshift.io resources) installed with Shipwright's and
	// Tekton's, before kube-controller-manager starts, so its garbage
	// collector watches them from the first moment.
	CRDs []*apiextensionsv1.CustomResourceDefinition
}

func (o *Options) printf(format string, args ...any) {
	fmt.Fprintf(o.Out, format, args...)
}

// Sandbox is a running sandbox.
type Sandbox struct {
	opts   Options
	modDir string
	bins   *binaries
	// kubeletPKI is the TLS between kube-apiserver and the kubelet.
	kubeletPKI *kubeletPKI

	// Dir is the state directory; KubeconfigPath the admin kubeconfig.
	Dir            string
	KubeconfigPath string
	// OpenShiftKubeconfigPath, with a front door, is an admin kubeconfig
	// for the front door: the build API as OpenShift serves it (its
	// subresources, its `get` columns), everything else proxied.
	OpenShiftKubeconfigPath string
	// APIServerURL is the kube-apiserver's https URL and CAData its CA bundle.
	APIServerURL string
	CAData       []byte
	// AdminConfig is a rest.Config with the admin token (system:masters).
	AdminConfig *rest.Config
	Kube        kubernetes.Interface
	Shipwright  buildclient.Interface
	Tekton      tektonclient.Interface
	// EtcdURL is the embedded etcd's client URL.
	EtcdURL string
	// Registry is the host:port of the OCI registry (plain http).
	Registry string
	// AuthRegistry is the host:port of a second registry (plain http) that
	// requires AuthRegistryUser and AuthRegistryPassword.
	AuthRegistry string
	// PackageIndexURL is a private Python package index (PEP 503 "simple",
	// plain http), e.g. http://127.0.0.1:port/simple/, for PIP_INDEX_URL.
	PackageIndexURL string
	// GitURL is the base URL of the git server: <GitURL>/<repo>.git.
	GitURL string
	// RepoHeads maps each sample repository name to its HEAD commit.
	RepoHeads map[string]string
	// FrontDoor is the started front door, if any.
	FrontDoor *FrontDoor
	// Executor runs TaskRuns.
	Executor *Executor

	// gitConfig is the steps' system git configuration file.
	gitConfig string
	// shipwrightWebhook is the conversion webhook the Shipwright CRDs call.
	shipwrightWebhook *shipwrightWebhook

	etcd     *embed.Etcd
	children []*child
	servers  []*http.Server
	ports    []*portLease
	// indexDownloads counts the package index's file downloads.
	indexDownloads atomic.Int64
	cancel         context.CancelFunc

	mu       sync.Mutex
	failed   error
	stopOnce sync.Once
}

// Start starts the sandbox and returns once everything is ready. The caller
// must call Stop. ctx bounds only the start-up.
func Start(ctx context.Context, opts Options) (_ *Sandbox, err error) {
	if opts.Out == nil {
		opts.Out = os.Stderr
	}
	if opts.StepVersion == "" {
		opts.StepVersion = "v0.0.0-sandbox"
	}
	modDir, err := moduleDir()
	if err != nil {
		return nil, err
	}
	// Shipwright's git step checks for git, git-lfs (built by the sandbox)
	// and ssh; the git server is git http-backend.
	for _, tool := range []string{"go", "git", "ssh"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("the sandbox needs %s on PATH (git and ssh: Shipwright's git step checks for them): %w", tool, err)
		}
	}
	if opts.Dir == "" {
		opts.Dir = filepath.Join(filepath.Dir(modDir), ".sandbox")
	}
	if opts.Dir, err = filepath.Abs(opts.Dir); err != nil {
		return nil, err
	}
	if opts.KubeconfigPath == "" {
		opts.KubeconfigPath = filepath.Join(opts.Dir, "kubeconfig")
	}
	if opts.Repos == "" {
		opts.Repos = filepath.Join(modDir, "testdata", "repos")
	}
	if err := resetStateDir(opts.Dir); err != nil {
		return nil, err
	}
	for _, d := range []string{"logs", "etcd", "pki", "taskruns"} {
		if err := os.MkdirAll(filepath.Join(opts.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}

	runCtx, cancel := context.WithCancel(context.Background())
	sb := &Sandbox{opts: opts, modDir: modDir, Dir: opts.Dir, KubeconfigPath: opts.KubeconfigPath, cancel: cancel}
	defer func() {
		if err != nil {
			sb.Stop()
		}
	}()

	if sb.bins, err = buildBinaries(ctx, &sb.opts, modDir); err != nil {
		return nil, err
	}
	steps := []struct {
		what string
		fn   func(context.Context) error
	}{
		// The conversion webhook needs nothing of the cluster; started
		// first, it is stopped after the API server that calls it.
		{"Shipwright webhook", sb.startShipwrightWebhook},
		{"etcd", sb.startEtcd},
		{"kube-apiserver", sb.startAPIServer},
		// CRDs first, so that the garbage collector discovers them at start.
		{"CRDs", sb.installCRDs},
		{"kube-controller-manager", sb.startControllerManager},
		{"kubelet", sb.startKubelet},
		{"cluster setup", func(ctx context.Context) error { return sb.setupCluster(ctx, runCtx) }},
		{"OCI registry", sb.startRegistry},
		{"registry with credentials", sb.startAuthRegistry},
		{"git server", sb.startGitServer},
		{"Python package index", sb.startPackageIndex},
		{"front door", sb.startFrontDoor},
		{"Shipwright controller", sb.startShipwright},
		{"TaskRun executor", func(ctx context.Context) error { return sb.startExecutor(ctx, runCtx) }},
	}
	for _, s := range steps {
		t := time.Now()
		if err := s.fn(ctx); err != nil {
			return nil, fmt.Errorf("starting %s: %w", s.what, err)
		}
		if err := sb.Err(); err != nil {
			return nil, err
		}
		if s.what == "front door" && sb.FrontDoor == nil {
			continue
		}
		opts.printf("  %-24s ready (%s)\n", s.what, time.Since(t).Round(100*time.Millisecond))
	}
	return sb, nil
}

// stateMarker marks a directory as a sandbox state directory, which Start
// may wipe.
const stateMarker = ".ocbuild-sandbox"

// resetStateDir empties dir, refusing to touch a non-empty directory that
// is not a sandbox state directory.
func resetStateDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(dir, stateMarker)); err != nil {
			return fmt.Errorf("%s is not empty and not a sandbox state directory (no %s): refusing to wipe it", dir, stateMarker)
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, stateMarker), []byte("state of the ocbuild sandbox; wiped at every start\n"), 0o644)
}

// Err reports a component that exited on its own.
func (sb *Sandbox) Err() error {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.failed
}

func (sb *Sandbox) childExited(name string, err error) {
	msg := fmt.Errorf("%s exited unexpectedly (%v); last log lines:\n%s", name, err,
		tailFile(filepath.Join(sb.Dir, "logs", name+".log"), 2000))
	sb.mu.Lock()
	if sb.failed == nil {
		sb.failed = msg
	}
	sb.mu.Unlock()
	sb.opts.printf("sandbox: %v\n", msg)
}

func (sb *Sandbox) startChild(name, bin string, args, env []string) (*child, error) {
	c, err := startChild(name, filepath.Join(sb.Dir, "logs"), bin, args, env, sb.childExited)
	if err != nil {
		return nil, err
	}
	sb.children = append(sb.children, c)
	return c, nil
}

// Say prints a line of progress where the sandbox prints its own.
func (sb *Sandbox) Say(line string) { sb.opts.printf("  %s\n", line) }

// CacheDir is where the sandbox keeps what it builds once (binaries, images):
// <test module>/.cache.
func (sb *Sandbox) CacheDir() string { return filepath.Join(sb.modDir, ".cache") }

// Stop stops every component in reverse order and kills every process the
// sandbox started (including running steps). It is safe to call twice.
func (sb *Sandbox) Stop() {
	sb.stopOnce.Do(func() {
		if sb.Executor != nil {
			sb.Executor.stop()
		}
		if sb.cancel != nil {
			sb.cancel()
		}
		for i := len(sb.children) - 1; i >= 0; i-- {
			sb.children[i].stop(10 * time.Second)
		}
		if sb.FrontDoor != nil && sb.FrontDoor.Stop != nil {
			sb.FrontDoor.Stop()
		}
		for _, s := range sb.servers {
			_ = s.Close()
		}
		if sb.etcd != nil {
			sb.etcd.Close()
		}
		sb.mu.Lock()
		for _, l := range sb.ports {
			l.release()
		}
		sb.mu.Unlock()
	})
}

// Summary describes what runs where.
func (sb *Sandbox) Summary() string {
	s := fmt.Sprintf(`sandbox running (state in %s, logs in %s)
  kube-apiserver %s  %s
  etcd (embedded)            %s
  kube-controller-manager    garbagecollector, serviceaccount, namespace, clusterrole-aggregation (log: kube-controller-manager.log)
  Shipwright controller      v0.20.13 (log: shipwright.log)
  Shipwright webhook         %s (CRD conversion; log: shipwright-webhook.log)
  OCI registry               http://%s
  registry with credentials  http://%s (user %s; password: sandbox.AuthRegistryPassword)
  git server                 %s/<repo>.git
  Python package index       %s (PIP_INDEX_URL)
  kubelet (node sandbox)     logs, exec, attach for the executor's pods (log: kubelet.log)
  TaskRun executor           steps run in %s
  admin kubeconfig           %s
`, sb.Dir, filepath.Join(sb.Dir, "logs"), KubernetesVersion, sb.APIServerURL, sb.EtcdURL, sb.shipwrightWebhook.ConvertURL, sb.Registry, sb.AuthRegistry, AuthRegistryUser,
		sb.GitURL, sb.PackageIndexURL, filepath.Join(sb.Dir, "taskruns"), sb.KubeconfigPath)
	names := make([]string, 0, len(sb.RepoHeads))
	for name := range sb.RepoHeads {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s += fmt.Sprintf("  repo %-21s %s/%s.git (HEAD %s)\n", name, sb.GitURL, name, sb.RepoHeads[name])
	}
	if sb.FrontDoor != nil {
		s += fmt.Sprintf("  front door (steps)         %s (admin kubeconfig: %s)\n", sb.FrontDoor.URL, sb.OpenShiftKubeconfigPath)
	}
	return s
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func randomToken() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
