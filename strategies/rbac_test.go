package strategies

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ocbuild/ocbuild/pkg/permissions"
	rbacv1 "k8s.io/api/rbac/v1"
)

// grant is one (group, resource[/subresource], verb) triple of a rule.
type grant struct{ Group, Resource, Verb, Name string }

func (g grant) String() string {
	if g.Name != "" {
		return fmt.Sprintf("%s %s %s (group %q)", g.Verb, g.Resource, g.Name, g.Group)
	}
	return fmt.Sprintf("%s %s (group %q)", g.Verb, g.Resource, g.Group)
}

// expand turns rules into grants, failing on anything the step must not have.
func expand(t *testing.T, where string, rules []rbacv1.PolicyRule) map[grant]bool {
	t.Helper()
	out := map[grant]bool{}
	for i, r := range rules {
		w := fmt.Sprintf("%s rule %d", where, i)
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("%s: nonResourceURLs are not needed", w)
		}
		for _, list := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames} {
			for _, v := range list {
				if strings.Contains(v, "*") {
					t.Errorf("%s: wildcard %q", w, v)
				}
			}
		}
		for _, res := range r.Resources {
			base, sub, _ := strings.Cut(res, "/")
			if base == "configmaps" && len(r.ResourceNames) == 0 {
				t.Errorf("%s: grants every ConfigMap; name the one the step reads (resourceNames)", w)
			}
			if base == "secrets" || base == "pods" || sub == "exec" || sub == "attach" || base == "serviceaccounts" ||
				base == "roles" || base == "rolebindings" || base == "clusterroles" || base == "clusterrolebindings" {
				t.Errorf("%s: grants %s, which the step must never have", w, res)
			}
		}
		// delete is granted on builds alone: OpenShift's
		// OwnerReferencesPermissionEnforcement demands it to set a build's
		// ownerReferences (permissions.DeleteBuild); the step deletes nothing.
		deleteOK := slices.Equal(r.APIGroups, []string{"build.openshift.io"}) && slices.Equal(r.Resources, []string{"builds"})
		for _, verb := range r.Verbs {
			if verb == "escalate" || verb == "bind" || verb == "impersonate" || verb == "deletecollection" || verb == "delete" && !deleteOK {
				t.Errorf("%s: grants verb %s, which the step never uses", w, verb)
			}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, verb := range r.Verbs {
					if len(r.ResourceNames) == 0 {
						out[grant{g, res, verb, ""}] = true
					}
					for _, n := range r.ResourceNames {
						out[grant{g, res, verb, n}] = true
					}
				}
			}
		}
	}
	return out
}

// needed derives the grants from the step's own list of API calls.
func needed() map[grant]bool {
	out := map[grant]bool{}
	for _, p := range permissions.All {
		out[grant{p.Group, p.ResourceName(), p.Verb, p.Name}] = true
	}
	return out
}

func diff(a, b map[grant]bool) []string {
	var out []string
	for g := range a {
		if !b[g] {
			out = append(out, g.String())
		}
	}
	sort.Strings(out)
	return out
}

func TestRBACGrantsExactlyWhatTheStepCalls(t *testing.T) {
	docs := loadAll(t)
	roles, roleDocs := ofType[*rbacv1.Role](docs)
	clusterRoles, crDocs := ofType[*rbacv1.ClusterRole](docs)
	want := needed()
	if len(want) == 0 {
		t.Fatal("permissions.All is empty")
	}

	var stepRole *rbacv1.Role
	for i, r := range roles {
		if r.Name == "ocbuild-step" {
			stepRole = r
			if roleDocs[i].File != "strategies/rbac/namespace/role.yaml" {
				t.Errorf("Role ocbuild-step found in %s", roleDocs[i].File)
			}
		}
	}
	if stepRole == nil {
		t.Fatal("Role ocbuild-step not found")
	}
	got := expand(t, "Role ocbuild-step", stepRole.Rules)
	if missing := diff(want, got); len(missing) > 0 {
		t.Errorf("Role ocbuild-step lacks calls the step makes (pkg/permissions): %s", strings.Join(missing, "; "))
	}
	if extra := diff(got, want); len(extra) > 0 {
		t.Errorf("Role ocbuild-step grants more than the step calls: %s", strings.Join(extra, "; "))
	}

	var aggregate *rbacv1.ClusterRole
	for i, cr := range clusterRoles {
		if cr.Name == "ocbuild-step-aggregate" {
			aggregate = cr
			_ = crDocs[i]
		}
	}
	if aggregate == nil {
		t.Fatal("ClusterRole ocbuild-step-aggregate not found")
	}
	for _, l := range []string{"rbac.authorization.k8s.io/aggregate-to-edit", "rbac.authorization.k8s.io/aggregate-to-admin"} {
		if aggregate.Labels[l] != "true" {
			t.Errorf("ClusterRole ocbuild-step-aggregate lacks label %s=true", l)
		}
	}
	aggGot := expand(t, "ClusterRole ocbuild-step-aggregate", aggregate.Rules)
	if d := append(diff(want, aggGot), diff(aggGot, want)...); len(d) > 0 {
		t.Errorf("ClusterRole ocbuild-step-aggregate differs from the step's calls: %s", strings.Join(d, "; "))
	}
	// Every Role/ClusterRole shipped checks clean (no wildcards, no secrets).
	for i, r := range roles {
		expand(t, roleDocs[i].String(), r.Rules)
	}
	for i, cr := range clusterRoles {
		expand(t, crDocs[i].String(), cr.Rules)
	}
}

func TestRoleBindingsNeverGrantAdmin(t *testing.T) {
	docs := loadAll(t)
	rbs, where := ofType[*rbacv1.RoleBinding](docs)
	crbs, crbWhere := ofType[*rbacv1.ClusterRoleBinding](docs)
	forbidden := []string{"admin", "edit", "cluster-admin", "system:build-strategy-jenkinspipeline"}
	check := func(w string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
		if slices.Contains(forbidden, ref.Name) && ref.Kind == "ClusterRole" {
			t.Errorf("%s: binds ClusterRole %s", w, ref.Name)
		}
		for _, s := range subjects {
			if s.Kind == rbacv1.ServiceAccountKind && s.Name == ".generate" {
				t.Errorf("%s: .generate service accounts have no API token", w)
			}
		}
	}
	for i, rb := range rbs {
		check(where[i].String(), rb.RoleRef, rb.Subjects)
	}
	for i, crb := range crbs {
		t.Errorf("%s: ocbuild ships no ClusterRoleBinding", crbWhere[i])
		check(crbWhere[i].String(), crb.RoleRef, crb.Subjects)
	}
	var stepBinding *rbacv1.RoleBinding
	for _, rb := range rbs {
		if rb.Name == "ocbuild-step" {
			stepBinding = rb
		}
	}
	if stepBinding == nil {
		t.Fatal("RoleBinding ocbuild-step not found")
	}
	if stepBinding.RoleRef.Kind != "Role" || stepBinding.RoleRef.Name != "ocbuild-step" {
		t.Errorf("RoleBinding ocbuild-step refers to %s %s", stepBinding.RoleRef.Kind, stepBinding.RoleRef.Name)
	}
	if len(stepBinding.Subjects) != 1 || stepBinding.Subjects[0].Kind != "ServiceAccount" || stepBinding.Subjects[0].Name != "pipeline" || stepBinding.Subjects[0].Namespace != "" {
		t.Errorf("RoleBinding ocbuild-step should bind the namespace's own pipeline ServiceAccount, got %+v", stepBinding.Subjects)
	}
}
