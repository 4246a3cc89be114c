package openshift

// The install docs' promise about roles: a namespace admin installs the
// step's Role without a cluster admin (ocbuild-step-aggregate is aggregated
// into `admin`), and a user bound only to `edit` runs builds (Shipwright's
// own ClusterRoles are aggregated into `edit`). Aggregation is done by
// kube-controller-manager's clusterrole-aggregation controller, as on any
// cluster; without it `admin` and `edit` have no rules at all.

import (
	"context"
	"slices"
	"testing"
	"time"

	shipwrightclient "github.com/shipwright-io/build/pkg/client/clientset/versioned"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/ocbuild/ocbuild/test/e2e/openshift/kit"
	"github.com/ocbuild/ocbuild/test/sandbox"
)

func TestAggregatedRolesSuffice(t *testing.T) {
	ctx := testContext(t, 6*time.Minute)
	ns := newNamespace(t, false)
	const admin, editor = "ns-admin@example.com", "developer@example.com"
	for user, role := range map[string]string{admin: "admin", editor: "edit"} {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: role + "-" + rbacName(user), Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
		}
		if _, err := sb.Kube.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	as := func(user string) *rest.Config {
		cfg := rest.CopyConfig(sb.AdminConfig)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
		return cfg
	}

	// Aggregation follows the ClusterRoles' creation asynchronously.
	poll(ctx, t, time.Minute, "admin and edit to carry the aggregated rules", func(ctx context.Context) (bool, error) {
		for _, name := range []string{"admin", "edit"} {
			cr, err := sb.Kube.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{})
			if err != nil || !grants(cr.Rules, "build.openshift.io", "buildconfigs/instantiatebinary") {
				return false, nil
			}
		}
		return true, nil
	})

	// Kubernetes refuses a Role granting what its creator does not hold
	// (escalation check), so this only works once `admin` carries the
	// aggregated rules.
	if err := kit.InstallNamespaceRBAC(ctx, as(admin), repoRoot, ns); err != nil {
		t.Fatalf("a namespace admin cannot install strategies/rbac/namespace: %v", err)
	}

	dev, err := shipwrightclient.NewForConfig(as(editor))
	if err != nil {
		t.Fatal(err)
	}
	b, err := sandbox.RegisterBuild(ctx, dev, gitBuild(ns, "by-editor", "hello", dockerStrategy))
	if err != nil {
		t.Fatalf("a user bound to edit cannot create a Build: %v", err)
	}
	br := createBuildRunAs(t, dev, ns, b.Name)
	done := waitBuildRunDone(ctx, t, ns, br.Name)
	requireSucceeded(t, done)
	if _, err := dev.ShipwrightV1beta1().BuildRuns(ns).Get(ctx, br.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("a user bound to edit cannot read the BuildRun: %v", err)
	}
}

// grants reports whether a rule names the resource of the group.
func grants(rules []rbacv1.PolicyRule, group, resource string) bool {
	for _, r := range rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) {
			return true
		}
	}
	return false
}

// rbacName turns a user name into a name part.
func rbacName(user string) string {
	out := []byte(user)
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			out[i] = '-'
		}
	}
	return string(out)
}
