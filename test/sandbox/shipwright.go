package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// ShipwrightNamespace is where Shipwright's controller service account and
// leader-election lease live, as in its release manifests.
const ShipwrightNamespace = "shipwright-build"

// shipwrightRBAC are the manifests of shipwright-io/build's deploy/ that give
// the controller its identity and permissions, and users theirs: the
// ClusterRoles aggregated into `edit` and `view` (the Deployment and the
// webhook are left out).
var shipwrightRBAC = []string{"100-namespace.yaml", "200-role.yaml", "300-rolebinding.yaml", "400-serviceaccount.yaml",
	"clusterrole-aggregate-edit.yaml", "clusterrole-aggregate-view.yaml"}

// installShipwrightRBAC applies Shipwright's own namespace, service account,
// roles and bindings, and writes a kubeconfig holding a token of that
// service account, so the controller runs with the permissions it ships with.
func (sb *Sandbox) installShipwrightRBAC(ctx context.Context) (string, error) {
	dir, err := goModDir(ctx, sb.modDir, "github.com/shipwright-io/build")
	if err != nil {
		return "", err
	}
	for _, name := range shipwrightRBAC {
		b, err := os.ReadFile(filepath.Join(dir, "deploy", name))
		if err != nil {
			return "", err
		}
		dec := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			doc, err := dec.Read()
			if err != nil {
				break
			}
			if len(bytes.TrimSpace(doc)) == 0 || bytes.Equal(bytes.TrimSpace(doc), []byte("---")) {
				continue
			}
			obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
			if err != nil {
				return "", fmt.Errorf("%s: %w", name, err)
			}
			if err := sb.create(ctx, obj); err != nil {
				return "", fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	// The service account is ready once the API server can mint its token.
	expiry := int64((7 * 24 * time.Hour) / time.Second)
	var token string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		tr, err := sb.Kube.CoreV1().ServiceAccounts(ShipwrightNamespace).CreateToken(ctx, "shipwright-build-controller",
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
		if err != nil {
			return false, nil
		}
		token = tr.Status.Token
		return true, nil
	})
	if err != nil {
		return "", fmt.Errorf("token for the Shipwright controller: %w", err)
	}
	path := filepath.Join(sb.Dir, "pki", "shipwright.kubeconfig")
	return path, writeKubeconfig(path, sb.APIServerURL, sb.CAData, token, "system:serviceaccount:"+ShipwrightNamespace+":shipwright-build-controller", ShipwrightNamespace)
}

func (sb *Sandbox) create(ctx context.Context, obj runtime.Object) error {
	var err error
	opts := metav1.CreateOptions{}
	switch o := obj.(type) {
	case *corev1.Namespace:
		_, err = sb.Kube.CoreV1().Namespaces().Create(ctx, o, opts)
	case *corev1.ServiceAccount:
		_, err = sb.Kube.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, opts)
	case *rbacv1.Role:
		_, err = sb.Kube.RbacV1().Roles(o.Namespace).Create(ctx, o, opts)
	case *rbacv1.ClusterRole:
		_, err = sb.Kube.RbacV1().ClusterRoles().Create(ctx, o, opts)
	case *rbacv1.RoleBinding:
		_, err = sb.Kube.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, opts)
	case *rbacv1.ClusterRoleBinding:
		_, err = sb.Kube.RbacV1().ClusterRoleBindings().Create(ctx, o, opts)
	default:
		err = fmt.Errorf("unexpected %T", obj)
	}
	return err
}
