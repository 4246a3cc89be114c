// Package kit holds what the OpenShift end-to-end tests (test/e2e/openshift),
// `make demo` (test/cmd/demo) and `make bench` (test/cmd/bench) share:
// installing the shipped strategies and RBAC with kustomize's Go API, and
// reading images back from the sandbox registry.
package kit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// FieldManager is the server-side apply field manager of everything the kit
// installs.
const FieldManager = "ocbuild-e2e"

// Paths of the kustomizations, relative to the repository root.
const (
	StrategiesDir    = "strategies"
	NamespaceRBACDir = "strategies/rbac/namespace"
)

// RepoRoot returns the ocbuild checkout the working directory is in: the
// nearest directory upwards holding strategies/kustomization.yaml.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, StrategiesDir, "kustomization.yaml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the ocbuild repository: no strategies/kustomization.yaml above the working directory")
		}
		dir = parent
	}
}

// Render runs `kustomize build dir` with kustomize's Go API.
func Render(dir string) ([]*unstructured.Unstructured, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range resMap.Resources() {
		// Through JSON, so numbers are what unstructured expects (int64).
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s/%s: %w", dir, r.GetKind(), r.GetName(), err)
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s/%s: %w", dir, r.GetKind(), r.GetName(), err)
		}
		out = append(out, obj)
	}
	return out, nil
}

// Apply server-side-applies objs with cfg, as `kubectl apply
// --server-side -n ns` would: namespaced objects go into ns.
func Apply(ctx context.Context, cfg *rest.Config, ns string, objs []*unstructured.Unstructured) error {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for _, obj := range objs {
		obj = obj.DeepCopy()
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("%s %s: %w", gvk.Kind, obj.GetName(), err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			if ns == "" {
				return fmt.Errorf("%s %s is namespaced: give a namespace", gvk.Kind, obj.GetName())
			}
			obj.SetNamespace(ns)
			ri = dyn.Resource(m.Resource).Namespace(ns)
		}
		if _, err := ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
			return fmt.Errorf("applying %s %s: %w", gvk.Kind, obj.GetName(), err)
		}
	}
	return nil
}

// InstallStrategies is `kubectl apply -k strategies/`: the three
// ClusterBuildStrategies and the aggregated ClusterRole.
func InstallStrategies(ctx context.Context, cfg *rest.Config, root string) error {
	objs, err := Render(filepath.Join(root, StrategiesDir))
	if err != nil {
		return err
	}
	return Apply(ctx, cfg, "", objs)
}

// InstallNamespaceRBAC is `kubectl apply -n ns -k strategies/rbac/namespace`:
// the Role ocbuild-step bound to the namespace's `pipeline` ServiceAccount.
func InstallNamespaceRBAC(ctx context.Context, cfg *rest.Config, root, ns string) error {
	objs, err := Render(filepath.Join(root, NamespaceRBACDir))
	if err != nil {
		return err
	}
	return Apply(ctx, cfg, ns, objs)
}

// Image is what the registry holds for a reference.
type Image struct {
	// Digest is the manifest digest the registry serves for the reference.
	Digest string
	// Size is the config blob size plus the size of each distinct layer,
	// from the manifest.
	Size int64
	// Layers is the number of layers.
	Layers int
	// Config is the image configuration.
	Config *v1.ConfigFile
}

// Inspect reads ref (a tag or digest reference on a plain-http registry)
// from the registry; opts may add credentials (remote.WithAuth).
func Inspect(ctx context.Context, ref string, opts ...remote.Option) (*Image, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return nil, err
	}
	return InspectRef(ctx, r, opts...)
}

// InspectRef is Inspect for a parsed reference: over plain http only if r
// was parsed with name.Insecure.
func InspectRef(ctx context.Context, r name.Reference, opts ...remote.Option) (*Image, error) {
	ref := r.String()
	desc, err := remote.Get(r, append([]remote.Option{remote.WithContext(ctx)}, opts...)...)
	if err != nil {
		return nil, err
	}
	if desc.MediaType.IsIndex() {
		return nil, fmt.Errorf("%s is an image index (%s); expected a single image", ref, desc.MediaType)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", ref, err)
	}
	out := &Image{Digest: desc.Digest.String(), Size: m.Config.Size, Layers: len(m.Layers)}
	seen := map[v1.Hash]bool{}
	for _, l := range m.Layers {
		if !seen[l.Digest] {
			seen[l.Digest] = true
			out.Size += l.Size
		}
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	if out.Config, err = img.ConfigFile(); err != nil {
		return nil, fmt.Errorf("%s: config: %w", ref, err)
	}
	return out, nil
}
