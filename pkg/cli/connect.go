package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	buildclient "github.com/openshift/client-go/build/clientset/versioned"
	imageclient "github.com/openshift/client-go/image/clientset/versioned"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

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
	bc, err := buildclient.NewForConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	ic, err := imageclient.NewForConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	return &driver.Driver{Clients: driver.Clients{
		Builds: bc.BuildV1(), REST: bc.BuildV1().RESTClient(), Images: ic.ImageV1(), Dynamic: dc, Discovery: disc,
	}}, namespace, nil
}

func load(kubeconfig string) (*rest.Config, string, error) {
	if kubeconfig == "" && os.Getenv("KUBECONFIG") == "" {
		if cfg, err := rest.InClusterConfig(); err == nil {
			ns := ""
			if b, err := os.ReadFile(inClusterNamespace); err == nil {
				ns = strings.TrimSpace(string(b))
			}
			return cfg, ns, nil
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	} else if os.Getenv("KUBECONFIG") == "" {
		home, _ := os.UserHomeDir()
		rules.Precedence = []string{filepath.Join(home, ".kube", "config")}
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", err
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", err
	}
	return cfg, ns, nil
}
