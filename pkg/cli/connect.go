package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ocbuild/ocbuild/pkg/buildapi"
	"github.com/ocbuild/ocbuild/pkg/driver"
)

const inClusterNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Connect loads the API server configuration (--kubeconfig, else
// $KUBECONFIG, else the pod's service account) and resolves the namespace
// (--namespace, else the pod's, else the kubeconfig context's).
func Connect(kubeconfig, namespace string) (*driver.Driver, string, error) {
	cfg, ns, err := load(kubeconfig)
	if err != nil {
		return nil, "", err
	}
	if namespace == "" {
		namespace = ns
	}
	if namespace == "" {
		return nil, "", fmt.Errorf("no namespace: pass --namespace")
	}
	// No client-wide Timeout: it would also cut long uploads and log
	// streams. Every call is bounded by its context instead.
	cfg.Timeout = 0
	cfg.QPS, cfg.Burst = 20, 40
	cfg.UserAgent = "ocbuild"
	api, err := buildapi.NewForConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	return &driver.Driver{Clients: driver.Clients{
		Builds: api, REST: api.Build, Dynamic: dc, ServesBuildAPI: api.ServesBuildAPI,
	}}, namespace, nil
}

// noClusterError says there is no API server to talk to, in ocbuild's
// words (client-go's "try setting KUBERNETES_MASTER" names a variable
// nothing reads any more).
type noClusterError struct{ why string }

func (e *noClusterError) Error() string { return "no cluster to talk to: " + e.why }

// noCluster explains why neither the pod's service account (inCluster, the
// error rest.InClusterConfig returned) nor a kubeconfig could be used.
func noCluster(inCluster error) error {
	if inCluster == nil || errors.Is(inCluster, rest.ErrNotInCluster) {
		return &noClusterError{"not running in a pod (KUBERNETES_SERVICE_HOST unset) and no kubeconfig (set KUBECONFIG or --kubeconfig)"}
	}
	return &noClusterError{fmt.Sprintf("running in a pod, but its service account credentials cannot be read (%v; is automountServiceAccountToken false?), and no kubeconfig (set KUBECONFIG or --kubeconfig)", inCluster)}
}

func load(kubeconfig string) (*rest.Config, string, error) {
	env := os.Getenv("KUBECONFIG")
	var inClusterErr error
	if kubeconfig == "" && env == "" {
		cfg, err := rest.InClusterConfig()
		if err == nil {
			ns := ""
			if b, err := os.ReadFile(inClusterNamespace); err == nil {
				ns = strings.TrimSpace(string(b))
			}
			return cfg, ns, nil
		}
		inClusterErr = err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	switch {
	case kubeconfig != "":
		if _, err := os.Stat(kubeconfig); err != nil {
			return nil, "", fmt.Errorf("--kubeconfig %q: %w", kubeconfig, err)
		}
		rules.ExplicitPath = kubeconfig
	case env == "":
		home, _ := os.UserHomeDir()
		def := filepath.Join(home, ".kube", "config")
		if _, err := os.Stat(def); err != nil {
			return nil, "", noCluster(inClusterErr)
		}
		rules.Precedence = []string{def}
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		switch {
		case kubeconfig != "":
			return nil, "", &noClusterError{fmt.Sprintf("--kubeconfig %q defines no cluster (no current context); pass a kubeconfig with a current-context", kubeconfig)}
		case env != "":
			return nil, "", &noClusterError{fmt.Sprintf("KUBECONFIG=%q names no kubeconfig file with a current context; set KUBECONFIG or --kubeconfig to one", env)}
		}
		return nil, "", noCluster(inClusterErr)
	}
	if err != nil {
		return nil, "", err
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", err
	}
	return cfg, ns, nil
}
