// Package cluster is the cluster the conformance suite (test/e2e/conformance)
// runs against: the sandbox it starts itself, or an existing cluster named by
// OCBUILD_E2E_* variables, as envtest's Environment starts a control plane
// unless told to use an existing one. The tests see only Cluster; what
// differs between the two is configuration (Config), not code.
//
// An existing cluster must already have ocbuild installed as docs/install.md
// says (the strategies, the aggregate ClusterRole); the suite creates only
// namespaces of its own, labelled LabelRun, the namespaced objects in them,
// and deletes them at the end.
package cluster

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ocbuild/ocbuild/test/sim"
)

// The variables that point the suite at an existing cluster. Only
// EnvExistingCluster=true and KUBECONFIG are required; the rest have
// defaults that suit an OpenShift cluster with the internal registry and
// access to github.com.
const (
	// EnvExistingCluster=true is the opt-in: without it the suite starts
	// its own sandbox and never reads KUBECONFIG.
	EnvExistingCluster = "OCBUILD_E2E_EXISTING_CLUSTER"
	// EnvKubeconfig is a cluster-admin kubeconfig (it creates namespaces).
	EnvKubeconfig = "KUBECONFIG"
	// EnvNamespace prefixes the namespaces the suite creates.
	EnvNamespace = "OCBUILD_E2E_NAMESPACE"
	// EnvGitURL is the ocbuild repository (or a mirror of it) the builds
	// clone: the samples and the conformance apps are under samples/apps.
	EnvGitURL = "OCBUILD_E2E_GIT_URL"
	// EnvGitRevision is the branch or tag of EnvGitURL.
	EnvGitRevision = "OCBUILD_E2E_GIT_REVISION"
	// EnvOutput is the registry (and optional path) builds push to:
	// <output>/<namespace>/<name>:latest.
	EnvOutput = "OCBUILD_E2E_OUTPUT"
	// EnvRegistry is where this process reads EnvOutput's registry when it
	// cannot by its in-cluster name (e.g. the registry's route); it reads
	// with the kubeconfig's bearer token, as `oc registry login` does.
	EnvRegistry = "OCBUILD_E2E_REGISTRY"
	// EnvRegistryInsecure=true reads EnvRegistry over plain http.
	EnvRegistryInsecure = "OCBUILD_E2E_REGISTRY_INSECURE"
	// EnvTektonFlags is <namespace>/<name> of Tekton's feature-flags
	// ConfigMap (default: tekton-pipelines/feature-flags, else
	// openshift-pipelines/feature-flags).
	EnvTektonFlags = "OCBUILD_E2E_TEKTON_FLAGS"
	// EnvSwitchCancelMode=true lets the cancel test switch Tekton's
	// keep-pod-on-cancel flag, a cluster-wide setting, and restore it;
	// without it only the cluster's current mode is tested.
	EnvSwitchCancelMode = "OCBUILD_E2E_SWITCH_CANCEL_MODE"
)

// Defaults of the variables.
const (
	DefaultNamespace   = "ocbuild-e2e"
	DefaultGitURL      = "https://github.com/ocbuild/ocbuild"
	DefaultGitRevision = "main"
	DefaultOutput      = sim.InternalRegistry
)

// LabelRun is on every namespace the suite creates; its value names the run.
const LabelRun = "e2e.ocbuild.dev/run"

// Config is a cluster as the suite sees it.
type Config struct {
	// Description is one line for the log.
	Description string
	// Admin is a cluster-admin client configuration.
	Admin *rest.Config
	// Namespace prefixes the suite's namespaces.
	Namespace string
	// GitURL and GitRevision are the ocbuild repository the builds clone.
	GitURL, GitRevision string
	// Output is where builds push: <Output>/<namespace>/<name>:latest.
	Output string
	// Registry, if set, is the host this process reads Output's registry
	// at; RegistryInsecure reads it over plain http.
	Registry         string
	RegistryInsecure bool
	// TektonFlags is <namespace>/<name> of Tekton's feature-flags
	// ConfigMap; empty: look in the usual places.
	TektonFlags string
	// SwitchCancelMode allows switching Tekton's keep-pod-on-cancel flag.
	SwitchCancelMode bool
	// Simulator is the OpenShift Build API simulator when the suite runs it
	// in its own process; nil on an existing cluster (even the sandbox's:
	// its simulator is in another process).
	Simulator *sim.Sim
}

// Requested reports whether the suite is to use an existing cluster.
func Requested() bool { return os.Getenv(EnvExistingCluster) == "true" }

// FromEnv reads an existing cluster's Config from the environment; it fails,
// naming the variable, on anything missing or malformed.
func FromEnv() (*Config, error) {
	if v := os.Getenv(EnvExistingCluster); v != "true" {
		return nil, fmt.Errorf("%s=%q: set it to true to run the suite against the cluster in %s", EnvExistingCluster, v, EnvKubeconfig)
	}
	kubeconfig := os.Getenv(EnvKubeconfig)
	if kubeconfig == "" {
		return nil, fmt.Errorf("%s is not set: point it at a cluster-admin kubeconfig of the cluster to check", EnvKubeconfig)
	}
	admin, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%s=%s: %w", EnvKubeconfig, kubeconfig, err)
	}
	c := &Config{
		Description: "existing cluster " + admin.Host,
		Admin:       admin,
		Namespace:   envOr(EnvNamespace, DefaultNamespace),
		GitURL:      envOr(EnvGitURL, DefaultGitURL),
		GitRevision: envOr(EnvGitRevision, DefaultGitRevision),
		Output:      strings.TrimSuffix(envOr(EnvOutput, DefaultOutput), "/"),
		Registry:    os.Getenv(EnvRegistry),
		TektonFlags: os.Getenv(EnvTektonFlags),
	}
	for _, b := range []struct {
		env string
		to  *bool
	}{{EnvRegistryInsecure, &c.RegistryInsecure}, {EnvSwitchCancelMode, &c.SwitchCancelMode}} {
		if v := os.Getenv(b.env); v != "" {
			if *b.to, err = strconv.ParseBool(v); err != nil {
				return nil, fmt.Errorf("%s=%q: want true or false", b.env, v)
			}
		}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func (c *Config) validate() error {
	if len(c.Namespace) > 30 || strings.Trim(strings.ToLower(c.Namespace), "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return fmt.Errorf("%s=%q: want a DNS label prefix of at most 30 lowercase letters, digits and '-'", EnvNamespace, c.Namespace)
	}
	if u, err := url.Parse(c.GitURL); err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("%s=%q: want the URL of the ocbuild repository or a mirror, e.g. %s", EnvGitURL, c.GitURL, DefaultGitURL)
	}
	if _, err := name.NewRepository(c.Output+"/ns/name", name.StrictValidation); err != nil {
		return fmt.Errorf("%s=%q: want a registry host with an optional path, e.g. %s: %v", EnvOutput, c.Output, DefaultOutput, err)
	}
	if c.Registry != "" {
		if _, err := name.NewRegistry(c.Registry, name.StrictValidation); err != nil {
			return fmt.Errorf("%s=%q: want host[:port] of the output registry as this machine reaches it: %v", EnvRegistry, c.Registry, err)
		}
	}
	if c.TektonFlags != "" && strings.Count(c.TektonFlags, "/") != 1 {
		return fmt.Errorf("%s=%q: want <namespace>/<name> of Tekton's feature-flags ConfigMap", EnvTektonFlags, c.TektonFlags)
	}
	return nil
}

// Env is c as the variables FromEnv reads, with the kubeconfig at path:
// what `make sandbox` writes for `make e2e-cluster`.
func (c *Config) Env(kubeconfig string) []string {
	return []string{
		EnvExistingCluster + "=true",
		EnvKubeconfig + "=" + kubeconfig,
		EnvNamespace + "=" + c.Namespace,
		EnvGitURL + "=" + c.GitURL,
		EnvGitRevision + "=" + c.GitRevision,
		EnvOutput + "=" + c.Output,
		EnvRegistry + "=" + c.Registry,
		EnvRegistryInsecure + "=" + strconv.FormatBool(c.RegistryInsecure),
		EnvTektonFlags + "=" + c.TektonFlags,
		EnvSwitchCancelMode + "=" + strconv.FormatBool(c.SwitchCancelMode),
	}
}

// OutputImage is where a build called name in namespace ns pushes.
func (c *Config) OutputImage(ns, name string) string {
	return fmt.Sprintf("%s/%s/%s:latest", c.Output, ns, name)
}

// ReadableImage is ref as this process reads it: on Registry when set, with
// the admin's bearer token when there is one.
func (c *Config) ReadableImage(ref string) (name.Reference, []remote.Option, error) {
	var opts []name.Option
	if c.RegistryInsecure {
		opts = append(opts, name.Insecure)
	}
	if c.Registry != "" {
		r, err := name.ParseReference(ref)
		if err != nil {
			return nil, nil, err
		}
		sep := ":"
		if _, ok := r.(name.Digest); ok {
			sep = "@"
		}
		ref = c.Registry + "/" + r.Context().RepositoryStr() + sep + r.Identifier()
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, nil, err
	}
	var ropts []remote.Option
	if c.Admin.BearerToken != "" {
		// OpenShift's registry takes any user name with a token.
		ropts = append(ropts, remote.WithAuth(&authn.Basic{Username: "ocbuild-e2e", Password: c.Admin.BearerToken}))
	}
	return r, ropts, nil
}

// ErrNoSimulator is the reason tests that need the simulator's fault
// injection are skipped.
func (c *Config) ErrNoSimulator() error {
	return fmt.Errorf("needs the OpenShift Build API simulator's fault injection, which %s does not offer (without %s the suite starts a sandbox that does)", c.Description, EnvExistingCluster)
}

// Check confirms the cluster is reachable with the admin configuration.
func (c *Config) Check() error {
	dc, err := discovery.NewDiscoveryClientForConfig(c.Admin)
	if err != nil {
		return err
	}
	if _, err := dc.ServerVersion(); err != nil {
		return fmt.Errorf("%s: %w", c.Description, err)
	}
	return nil
}
