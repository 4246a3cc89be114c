package conformance

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// The step's account holds the shipped Role and nothing else, and that is
// enough: every BuildRun of this suite runs as such an account (the sample
// builds prove the Role suffices). Here: the account's only RoleBinding is
// the shipped one, it cannot do what a pipeline account should never do,
// and the Custom-strategy grant a cluster admin applies
// (strategies/rbac/custom-strategy-rolebinding.yaml) gives it exactly the
// Custom strategy.
func TestShippedRoleSuffices(t *testing.T) {
	track(t)
	ctx := testContext(t, 2*time.Minute)
	ns := newNamespace(t)
	user := "system:serviceaccount:" + ns + ":" + stepAccount

	rbs, err := kube.RbacV1().RoleBindings(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var bound []string
	for _, rb := range rbs.Items {
		for _, s := range rb.Subjects {
			if s.Kind == "ServiceAccount" && s.Name == stepAccount && (s.Namespace == "" || s.Namespace == ns) {
				bound = append(bound, rb.Name+" → "+rb.RoleRef.Kind+"/"+rb.RoleRef.Name)
			}
		}
	}
	if !slices.Equal(bound, []string{"ocbuild-step → Role/ocbuild-step"}) {
		t.Errorf("RoleBindings of %s in %s: %v, want only ocbuild-step → Role/ocbuild-step", stepAccount, ns, bound)
	}

	can := func(verb, group, resource, sub, namespace string) bool {
		t.Helper()
		sar, err := kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   user,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: namespace, Verb: verb, Group: group, Resource: resource, Subresource: sub,
				},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return sar.Status.Allowed
	}
	type access struct{ verb, group, resource, sub, ns string }
	needed := []access{
		{"create", "build.openshift.io", "buildconfigs", "instantiatebinary", ns},
		{"update", "build.openshift.io", "buildconfigs", "", ns},
		{"watch", "build.openshift.io", "builds", "", ns},
		{"get", "build.openshift.io", "builds", "log", ns},
		{"get", "tekton.dev", "taskruns", "", ns},
	}
	for _, a := range needed {
		if !can(a.verb, a.group, a.resource, a.sub, a.ns) {
			t.Errorf("%s may not %s %s/%s %s in %s: the shipped Role lacks what the step needs", stepAccount, a.verb, a.group, a.resource, a.sub, a.ns)
		}
	}
	never := []access{
		{"get", "", "secrets", "", ns},
		{"create", "", "pods", "", ns},
		{"create", "rbac.authorization.k8s.io", "rolebindings", "", ns},
		{"delete", "build.openshift.io", "buildconfigs", "", ns},
		{"get", "build.openshift.io", "buildconfigs", "", "default"},
		{"create", "build.openshift.io", "builds", "custom", ns},
	}
	for _, a := range never {
		if can(a.verb, a.group, a.resource, a.sub, a.ns) {
			t.Errorf("%s may %s %s/%s %s in %s: broader than the shipped Role (a binding outside ocbuild's grants it)", stepAccount, a.verb, a.group, a.resource, a.sub, a.ns)
		}
	}

	if err := applyRBAC(ctx, ns, filepath.Join(repoRoot, "strategies", "rbac", "custom-strategy-rolebinding.yaml")); err != nil {
		t.Fatal(err)
	}
	allowed := sets.New[string]()
	for _, s := range []string{"custom", "docker", "source"} {
		if can("create", "build.openshift.io", "builds", s, ns) {
			allowed.Insert(s)
		}
	}
	if !allowed.Has("custom") {
		t.Errorf("with the Custom-strategy grant applied, %s still may not create builds/custom", stepAccount)
	}
	if !allowed.HasAll("docker", "source") {
		t.Errorf("%s may create builds of strategies %v; OpenShift lets every authenticated user use docker and source", stepAccount, sets.List(allowed))
	}
}
