package sim

import (
	"context"
	"fmt"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ocbuild/ocbuild/test/sandbox"
)

// Group is the API group the simulator serves.
const Group = "build.openshift.io"

// CRDs returns the CustomResourceDefinitions standing in for OpenShift's
// buildconfigs and builds (build.openshift.io/v1) and image streams
// (image.openshift.io/v1). Like OpenShift they have no
// status subresource: status is written by plain updates. The schema keeps
// every field; the admission webhooks do OpenShift's defaulting and
// validation.
//
// The sandbox may install them before kube-controller-manager starts (so the
// garbage collector discovers them at once); InstallCRDs tolerates that.
func CRDs() []*apiextensionsv1.CustomResourceDefinition {
	preserve := true
	schema := &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
		Type: "object",
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"apiVersion": {Type: "string"},
			"kind":       {Type: "string"},
			"metadata":   {Type: "object"},
			"spec":       {Type: "object", XPreserveUnknownFields: &preserve},
			"status": {Type: "object", XPreserveUnknownFields: &preserve, Properties: map[string]apiextensionsv1.JSONSchemaProps{
				// Declared for the status.phase field selector.
				"phase": {Type: "string"},
			}},
		},
	}}
	crd := func(group, plural, singular, kind string, shortNames []string, columns []apiextensionsv1.CustomResourceColumnDefinition, selectable []apiextensionsv1.SelectableField) *apiextensionsv1.CustomResourceDefinition {
		return &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: plural + "." + group},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: group,
				Scope: apiextensionsv1.NamespaceScoped,
				Names: apiextensionsv1.CustomResourceDefinitionNames{
					Plural:     plural,
					Singular:   singular,
					Kind:       kind,
					ListKind:   kind + "List",
					ShortNames: shortNames,
					Categories: []string{"all"},
				},
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
					Name:                     "v1",
					Served:                   true,
					Storage:                  true,
					Schema:                   schema.DeepCopy(),
					AdditionalPrinterColumns: columns,
					SelectableFields:         selectable,
				}},
			},
		}
	}
	return []*apiextensionsv1.CustomResourceDefinition{
		crd(Group, "buildconfigs", "buildconfig", "BuildConfig", []string{"bc"}, []apiextensionsv1.CustomResourceColumnDefinition{
			{Name: "Type", Type: "string", JSONPath: ".spec.strategy.type"},
			{Name: "From", Type: "string", JSONPath: ".spec.source.type"},
			{Name: "Latest", Type: "integer", JSONPath: ".status.lastVersion"},
		}, nil),
		crd(Group, "builds", "build", "Build", nil, []apiextensionsv1.CustomResourceColumnDefinition{
			{Name: "Type", Type: "string", JSONPath: ".spec.strategy.type"},
			{Name: "From", Type: "string", JSONPath: ".spec.source.type"},
			{Name: "Status", Type: "string", JSONPath: ".status.phase"},
			{Name: "Started", Type: "date", JSONPath: ".status.startTimestamp"},
		}, []apiextensionsv1.SelectableField{{JSONPath: ".status.phase"}}),
		// image.openshift.io (imagestreams.go). Image streams are stored;
		// like the build resources they have no status subresource (the
		// webhook keeps users from writing status). imagestreamtags and
		// imagestreamimages are served by the front door from the streams
		// and the registry: their CRDs only put them into discovery, and
		// kube-apiserver never stores one.
		crd(ImageGroup, "imagestreams", "imagestream", "ImageStream", []string{"is"}, []apiextensionsv1.CustomResourceColumnDefinition{
			{Name: "Image Repository", Type: "string", JSONPath: ".status.dockerImageRepository"},
		}, nil),
		crd(ImageGroup, "imagestreamtags", "imagestreamtag", "ImageStreamTag", []string{"istag"}, nil, nil),
		crd(ImageGroup, "imagestreamimages", "imagestreamimage", "ImageStreamImage", []string{"isimage"}, nil, nil),
	}
}

// InstallCRDs creates (or updates) the build.openshift.io and
// image.openshift.io CRDs and waits
// until they are established.
func InstallCRDs(ctx context.Context, cfg *rest.Config) error {
	client, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	crds := client.ApiextensionsV1().CustomResourceDefinitions()
	for _, crd := range CRDs() {
		_, err := crds.Create(ctx, crd, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			var cur *apiextensionsv1.CustomResourceDefinition
			if cur, err = crds.Get(ctx, crd.Name, metav1.GetOptions{}); err == nil {
				cur.Spec = crd.Spec
				_, err = crds.Update(ctx, cur, metav1.UpdateOptions{})
			}
		}
		if err != nil {
			return fmt.Errorf("installing CRD %s: %w", crd.Name, err)
		}
	}
	var names []string
	for _, crd := range CRDs() {
		names = append(names, crd.Name)
	}
	return sandbox.WaitEstablished(ctx, client, names...)
}

// Strategy subresources of builds checked by the build-strategy admission
// (§9.2), and the ClusterRoles granting them.
const (
	strategyRolePrefix = "system:build-strategy-"
	authenticatedGroup = "system:authenticated"
)

// ClusterRoles returns OpenShift's build-strategy roles plus aggregated
// roles giving the Kubernetes admin, edit and view roles OpenShift's build
// permissions (§9.1).
func ClusterRoles() []*rbacv1.ClusterRole {
	strategy := func(name string, subresources ...string) *rbacv1.ClusterRole {
		var res []string
		for _, s := range subresources {
			res = append(res, "builds/"+s)
		}
		return &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: strategyRolePrefix + name, Annotations: map[string]string{"rbac.authorization.kubernetes.io/autoupdate": "true"}},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{Group}, Resources: res, Verbs: []string{"create"}}},
		}
	}
	all := []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	read := []string{"get", "list", "watch"}
	edit := []rbacv1.PolicyRule{
		{APIGroups: []string{Group}, Resources: []string{"builds", "buildconfigs", "buildconfigs/webhooks"}, Verbs: all},
		{APIGroups: []string{Group}, Resources: []string{"builds/log"}, Verbs: read},
		{APIGroups: []string{Group}, Resources: []string{"buildconfigs/instantiate", "buildconfigs/instantiatebinary", "builds/clone"}, Verbs: []string{"create"}},
		{APIGroups: []string{Group}, Resources: []string{"builds/details"}, Verbs: []string{"update"}},
	}
	// OpenShift's image rules of admin and edit (policy.go), as far as the
	// simulator serves the resources.
	imageEdit := []rbacv1.PolicyRule{
		{APIGroups: []string{ImageGroup}, Resources: []string{"imagestreams", "imagestreamtags"}, Verbs: all},
		{APIGroups: []string{ImageGroup}, Resources: []string{"imagestreamimages"}, Verbs: read},
	}
	aggregate := func(to string, rules []rbacv1.PolicyRule) *rbacv1.ClusterRole {
		return &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{
				Name:   "system:openshift:build-sim:aggregate-to-" + to,
				Labels: map[string]string{"rbac.authorization.k8s.io/aggregate-to-" + to: "true"},
			},
			Rules: rules,
		}
	}
	return []*rbacv1.ClusterRole{
		strategy("docker", "docker", "optimizeddocker"),
		strategy("source", "source"),
		strategy("custom", "custom"),
		strategy("jenkinspipeline", "jenkinspipeline"),
		aggregate("admin", slices.Concat(edit, imageEdit)),
		aggregate("edit", slices.Concat(edit, imageEdit)),
		aggregate("view", []rbacv1.PolicyRule{
			{APIGroups: []string{Group}, Resources: []string{"builds", "buildconfigs", "builds/log"}, Verbs: read},
			{APIGroups: []string{ImageGroup}, Resources: []string{"imagestreams", "imagestreamtags", "imagestreamimages"}, Verbs: read},
		}),
	}
}

// ClusterRoleBindings returns OpenShift's default bindings of the docker,
// source and jenkinspipeline strategy roles to system:authenticated. Custom
// is not bound (policy.go:795-806).
func ClusterRoleBindings() []*rbacv1.ClusterRoleBinding {
	var out []*rbacv1.ClusterRoleBinding
	for _, s := range []string{"docker", "source", "jenkinspipeline"} {
		out = append(out, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: strategyRolePrefix + s + "-binding", Annotations: map[string]string{"rbac.authorization.kubernetes.io/autoupdate": "true"}},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: strategyRolePrefix + s},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: authenticatedGroup}},
		})
	}
	return out
}

// InstallRBAC creates ClusterRoles and ClusterRoleBindings (existing ones
// are left as they are).
func InstallRBAC(ctx context.Context, kube kubernetes.Interface) error {
	for _, r := range ClusterRoles() {
		if _, err := kube.RbacV1().ClusterRoles().Create(ctx, r, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating ClusterRole %s: %w", r.Name, err)
		}
	}
	for _, b := range ClusterRoleBindings() {
		if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating ClusterRoleBinding %s: %w", b.Name, err)
		}
	}
	return nil
}
