package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	buildclient "github.com/shipwright-io/build/pkg/client/clientset/versioned"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
)

func (sb *Sandbox) startEtcd(ctx context.Context) error {
	clientPort, err := sb.port()
	if err != nil {
		return err
	}
	peerPort, err := sb.port()
	if err != nil {
		return err
	}
	cu, _ := url.Parse("http://" + loopback(clientPort))
	pu, _ := url.Parse("http://" + loopback(peerPort))
	cfg := embed.NewConfig()
	cfg.Name = "sandbox"
	cfg.Dir = filepath.Join(sb.Dir, "etcd")
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{filepath.Join(sb.Dir, "logs", "etcd.log")}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	sb.etcd = e
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Minute):
		return fmt.Errorf("etcd not ready after a minute")
	}
	sb.EtcdURL = cu.String()
	return nil
}

func (sb *Sandbox) startAPIServer(ctx context.Context) error {
	pki := filepath.Join(sb.Dir, "pki")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	saKey, saPub := filepath.Join(pki, "sa.key"), filepath.Join(pki, "sa.pub")
	if err := os.WriteFile(saKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		return err
	}
	adminToken := randomToken()
	tokenFile := filepath.Join(pki, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(adminToken+`,admin,admin,"system:masters"`+"\n"), 0o600); err != nil {
		return err
	}
	port, err := sb.port()
	if err != nil {
		return err
	}
	certDir := filepath.Join(pki, "apiserver")
	if sb.kubeletPKI, err = writeKubeletPKI(filepath.Join(pki, "kubelet")); err != nil {
		return err
	}
	args := []string{
		"--etcd-servers=" + sb.EtcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + certDir,
		"--token-auth-file=" + tokenFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + saPub,
		"--service-account-signing-key-file=" + saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		// As openshift-apiserver does: setting ownerReferences needs delete
		// on the object (the step hands builds to its TaskRun).
		"--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
	}
	args = append(args, sb.kubeletPKI.apiServerFlags()...)
	if _, err := sb.startChild("kube-apiserver", sb.bins.KubeAPIServer, args, minimalEnv()); err != nil {
		return err
	}
	sb.APIServerURL = "https://" + loopback(port)

	// The server generates a self-signed serving certificate (followed by
	// its CA) in cert-dir before it serves.
	crt := filepath.Join(certDir, "apiserver.crt")
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := sb.Err(); err != nil {
			return false, err
		}
		b, err := os.ReadFile(crt)
		if err != nil || len(b) == 0 {
			return false, nil
		}
		sb.CAData = b
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the serving certificate: %w", err)
	}
	sb.AdminConfig = &rest.Config{
		Host:            sb.APIServerURL,
		BearerToken:     adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: sb.CAData},
		QPS:             100,
		Burst:           200,
	}
	if sb.Kube, err = kubernetes.NewForConfig(sb.AdminConfig); err != nil {
		return err
	}
	if sb.Shipwright, err = buildclient.NewForConfig(sb.AdminConfig); err != nil {
		return err
	}
	if sb.Tekton, err = tektonclient.NewForConfig(sb.AdminConfig); err != nil {
		return err
	}
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := sb.Err(); err != nil {
			return false, err
		}
		body, err := sb.Kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	})
	if err != nil {
		return fmt.Errorf("waiting for /readyz: %w\n%s", err, tailFile(filepath.Join(sb.Dir, "logs", "kube-apiserver.log"), 2000))
	}
	return writeKubeconfig(sb.KubeconfigPath, sb.APIServerURL, sb.CAData, adminToken, "admin", "default")
}

// writeKubeconfig writes a token kubeconfig.
func writeKubeconfig(path, server string, caData []byte, token, user, namespace string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["sandbox"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caData}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["sandbox"] = &clientcmdapi.Context{Cluster: "sandbox", AuthInfo: user, Namespace: namespace}
	cfg.CurrentContext = "sandbox"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return clientcmd.WriteToFile(*cfg, path)
}

func (sb *Sandbox) startControllerManager(ctx context.Context) error {
	args := []string{
		"--kubeconfig=" + sb.KubeconfigPath,
		// clusterrole-aggregation fills `admin`, `edit` and `view` from
		// the ClusterRoles labelled aggregate-to-* (ocbuild's and
		// Shipwright's); without it they have no rules.
		"--controllers=garbagecollector,serviceaccount,namespace,clusterrole-aggregation",
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
	}
	if _, err := sb.startChild("kube-controller-manager", sb.bins.KubeControllerManager, args, minimalEnv()); err != nil {
		return err
	}
	// Ready once the serviceaccount controller created default/default.
	return wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := sb.Err(); err != nil {
			return false, err
		}
		_, err := sb.Kube.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

// installCRDs applies Shipwright's deploy/crds (converting through the
// sandbox's webhook) and Tekton's config/300-crds, read from the module
// cache, and waits until they are established and Shipwright's v1alpha1
// converts.
func (sb *Sandbox) installCRDs(ctx context.Context) error {
	var files []string
	for _, src := range []struct{ module, dir string }{
		{"github.com/shipwright-io/build", "deploy/crds"},
		{"github.com/tektoncd/pipeline", "config/300-crds"},
	} {
		dir, err := goModDir(ctx, sb.modDir, src.module)
		if err != nil {
			return err
		}
		matches, err := filepath.Glob(filepath.Join(dir, src.dir, "*.yaml"))
		if err != nil {
			return err
		}
		sort.Strings(matches)
		files = append(files, matches...)
	}
	client, err := apiextensionsclient.NewForConfig(sb.AdminConfig)
	if err != nil {
		return err
	}
	var names []string
	for _, crd := range sb.opts.CRDs {
		if _, err := client.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd.DeepCopy(), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating CRD %s: %w", crd.Name, err)
		}
		names = append(names, crd.Name)
	}
	for _, f := range files {
		crds, err := readCRDs(f)
		if err != nil {
			return err
		}
		for _, crd := range crds {
			sb.useShipwrightWebhook(crd)
			if _, err := client.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("creating CRD %s from %s: %w", crd.Name, f, err)
			}
			names = append(names, crd.Name)
		}
	}
	if err := WaitEstablished(ctx, client, names...); err != nil {
		return err
	}
	return sb.waitShipwrightConversion(ctx)
}

// WaitEstablished waits (up to a minute each) until the named CRDs are
// Established, i.e. their resources are served.
func WaitEstablished(ctx context.Context, client apiextensionsclient.Interface, names ...string) error {
	for _, name := range names {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			crd, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s not established: %w", name, err)
		}
	}
	return nil
}

func readCRDs(path string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []*apiextensionsv1.CustomResourceDefinition
	for {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := dec.Decode(crd); err != nil {
			if err.Error() == "EOF" {
				break
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if crd.Kind == "CustomResourceDefinition" {
			out = append(out, crd)
		}
	}
	return out, nil
}

// Tekton's configuration namespace and its feature-flags ConfigMap, which the
// executor reads like Tekton's controller does.
const (
	TektonNamespace    = "tekton-pipelines"
	FeatureFlagsConfig = "feature-flags"
	keepPodOnCancelKey = "keep-pod-on-cancel"
	// PipelineServiceAccount is created in every namespace, as OpenShift
	// Pipelines does. It gets no permissions.
	PipelineServiceAccount = "pipeline"
)

// setupCluster creates Tekton's feature-flags ConfigMap and starts the
// controller that gives every namespace a `pipeline` ServiceAccount.
func (sb *Sandbox) setupCluster(ctx, runCtx context.Context) error {
	_, err := sb.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: TektonNamespace}}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	_, err = sb.Kube.CoreV1().ConfigMaps(TektonNamespace).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: FeatureFlagsConfig},
		Data:       map[string]string{keepPodOnCancelKey: strconv.FormatBool(sb.opts.KeepPodOnCancel)},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	// Let anyone read the feature flags, as Tekton's own RBAC does.
	_, err = sb.Kube.RbacV1().Roles(TektonNamespace).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "sandbox-feature-flags-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{FeatureFlagsConfig}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}

	return EnsureServiceAccounts(ctx, runCtx, sb.Kube, PipelineServiceAccount, func(format string, args ...any) {
		sb.opts.printf("sandbox: "+format+"\n", args...)
	})
}

// EnsureServiceAccounts starts a controller, running until runCtx ends, that
// gives every namespace (existing and new) a ServiceAccount called name, as
// OpenShift does for `builder` and OpenShift Pipelines for `pipeline`. It
// returns once the namespace informer has synced (bounded by ctx).
func EnsureServiceAccounts(ctx, runCtx context.Context, kube kubernetes.Interface, name string, logf func(string, ...any)) error {
	factory := informers.NewSharedInformerFactory(kube, 0)
	nsInformer := factory.Core().V1().Namespaces().Informer()
	ensure := func(obj any) {
		ns, ok := obj.(*corev1.Namespace)
		if !ok || ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
			return
		}
		_, err := kube.CoreV1().ServiceAccounts(ns.Name).Create(runCtx, &corev1.ServiceAccount{
			ObjectMeta: metav1.ObjectMeta{Name: name},
		}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsForbidden(err) && runCtx.Err() == nil {
			logf("creating ServiceAccount %s/%s: %v", ns.Name, name, err)
		}
	}
	if _, err := nsInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    ensure,
		UpdateFunc: func(_, obj any) { ensure(obj) },
	}); err != nil {
		return err
	}
	factory.Start(runCtx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), nsInformer.HasSynced) {
		return fmt.Errorf("namespace informer did not sync")
	}
	return nil
}

// SetKeepPodOnCancel switches Tekton's keep-pod-on-cancel feature flag.
func (sb *Sandbox) SetKeepPodOnCancel(ctx context.Context, keep bool) error {
	cm, err := sb.Kube.CoreV1().ConfigMaps(TektonNamespace).Get(ctx, FeatureFlagsConfig, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[keepPodOnCancelKey] = strconv.FormatBool(keep)
	_, err = sb.Kube.CoreV1().ConfigMaps(TektonNamespace).Update(ctx, cm, metav1.UpdateOptions{})
	return err
}

// CreateNamespace creates a namespace and waits for its `default` and
// `pipeline` ServiceAccounts.
func (sb *Sandbox) CreateNamespace(ctx context.Context, name string) error {
	_, err := sb.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, sa := range []string{"default", PipelineServiceAccount} {
			if _, err := sb.Kube.CoreV1().ServiceAccounts(name).Get(ctx, sa, metav1.GetOptions{}); err != nil {
				return false, nil
			}
		}
		return true, nil
	})
}

func (sb *Sandbox) startShipwright(ctx context.Context) error {
	port, err := sb.port()
	if err != nil {
		return err
	}
	kubeconfig, err := sb.installShipwrightRBAC(ctx)
	if err != nil {
		return err
	}
	env := append(minimalEnv(),
		"KUBECONFIG="+kubeconfig,
		"GIT_CONTAINER_IMAGE="+GitImage,
		"WAITER_CONTAINER_IMAGE="+WaiterImage,
		"BUILD_CONTROLLER_LEADER_ELECTION_NAMESPACE="+ShipwrightNamespace,
	)
	args := []string{"--metrics-bind-address=" + loopback(port)}
	if _, err := sb.startChild("shipwright", sb.bins.Shipwright, args, env); err != nil {
		return err
	}
	// Ready once it holds its leader-election lease.
	return wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := sb.Err(); err != nil {
			return false, err
		}
		l, err := sb.Kube.CoordinationV1().Leases(ShipwrightNamespace).Get(ctx, "shipwright-build-controller-lock", metav1.GetOptions{})
		return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "", nil
	})
}

func (sb *Sandbox) startFrontDoor(ctx context.Context) error {
	if sb.opts.FrontDoor == nil {
		return nil
	}
	fd, err := sb.opts.FrontDoor(ctx, sb)
	if err != nil {
		return err
	}
	sb.FrontDoor = fd
	// Clients see the cluster as OpenShift's users do: one endpoint
	// serving the build API (the front door) and proxying the rest.
	ca := fd.CAData
	if ca == nil {
		ca = sb.CAData
	}
	sb.OpenShiftKubeconfigPath = filepath.Join(sb.Dir, "kubeconfig-openshift")
	return writeKubeconfig(sb.OpenShiftKubeconfigPath, fd.URL, ca, sb.AdminConfig.BearerToken, "admin", "default")
}

// minimalEnv is the environment every child process and step starts from:
// nothing of the caller's but PATH (and a few locale/temp variables), so no
// credentials leak into components or steps.
func minimalEnv() []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, k := range []string{"LANG", "TMPDIR", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// envHome sets HOME for a child.
func envHome(env []string, home string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "HOME=") {
			out = append(out, kv)
		}
	}
	return append(out, "HOME="+home)
}
