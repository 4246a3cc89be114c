package strategies

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	buildv1 "github.com/openshift/api/build/v1"
	imagev1 "github.com/openshift/api/image/v1"
	shpv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// repoRoot is the module root, seen from this package's directory.
const repoRoot = ".."

// manifestDirs are the trees whose every YAML file is checked.
var manifestDirs = []string{"strategies", "samples"}

// document is one YAML document of one file.
type document struct {
	File  string // relative to the repository root
	Index int    // position in the file, from 0
	Raw   []byte
	Type  metav1.TypeMeta
	Obj   any // the strictly decoded object
}

func (d document) String() string { return fmt.Sprintf("%s#%d (%s)", d.File, d.Index, d.Type.Kind) }

// newObject returns an empty object of Go type for an apiVersion/kind, from
// the projects that own those APIs.
func newObject(tm metav1.TypeMeta) (any, bool) {
	switch tm.APIVersion + "/" + tm.Kind {
	case "shipwright.io/v1beta1/ClusterBuildStrategy":
		return &shpv1beta1.ClusterBuildStrategy{}, true
	case "shipwright.io/v1beta1/BuildStrategy":
		return &shpv1beta1.BuildStrategy{}, true
	case "shipwright.io/v1beta1/Build":
		return &shpv1beta1.Build{}, true
	case "shipwright.io/v1beta1/BuildRun":
		return &shpv1beta1.BuildRun{}, true
	case "rbac.authorization.k8s.io/v1/Role":
		return &rbacv1.Role{}, true
	case "rbac.authorization.k8s.io/v1/ClusterRole":
		return &rbacv1.ClusterRole{}, true
	case "rbac.authorization.k8s.io/v1/RoleBinding":
		return &rbacv1.RoleBinding{}, true
	case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}, true
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "v1/Secret":
		return &corev1.Secret{}, true
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, true
	case "build.openshift.io/v1/BuildConfig":
		return &buildv1.BuildConfig{}, true
	case "image.openshift.io/v1/ImageStream":
		return &imagev1.ImageStream{}, true
	case "kustomize.config.k8s.io/v1beta1/Kustomization":
		return &types.Kustomization{}, true
	}
	return nil, false
}

// transformerConfig is the part of kustomize's transformer configuration
// that strategies/kustomizeconfig.yaml uses.
type transformerConfig struct {
	Images types.FsSlice `json:"images"`
}

var loaded struct {
	docs []document
	err  error
	done bool
}

// loadAll reads and strictly decodes every YAML document under manifestDirs,
// once per test binary.
func loadAll(t *testing.T) []document {
	t.Helper()
	if !loaded.done {
		loaded.docs, loaded.err = readAll()
		loaded.done = true
	}
	if loaded.err != nil {
		t.Fatal(loaded.err)
	}
	return loaded.docs
}

func readAll() ([]document, error) {
	var docs []document
	var errs []error
	for _, dir := range manifestDirs {
		root := filepath.Join(repoRoot, dir)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
				return nil
			}
			rel, _ := filepath.Rel(repoRoot, path)
			fileDocs, err := readFile(path, filepath.ToSlash(rel))
			if err != nil {
				errs = append(errs, err)
			}
			docs = append(docs, fileDocs...)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(docs) == 0 {
		errs = append(errs, errors.New("no YAML documents found"))
	}
	return docs, errors.Join(errs...)
}

func readFile(path, rel string) ([]document, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var docs []document
	var errs []error
	for i := 0; ; i++ {
		raw, err := reader.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
		var generic map[string]any
		if err := yaml.Unmarshal(raw, &generic); err != nil {
			errs = append(errs, fmt.Errorf("%s#%d: %w", rel, i, err))
			continue
		}
		if generic == nil { // only comments
			continue
		}
		d := document{File: rel, Index: i, Raw: raw}
		if err := yaml.Unmarshal(raw, &d.Type); err != nil {
			errs = append(errs, fmt.Errorf("%s#%d: %w", rel, i, err))
			continue
		}
		obj, ok := newObject(d.Type)
		if !ok && d.Type.APIVersion == "" && d.Type.Kind == "" && filepath.Base(rel) == "kustomizeconfig.yaml" {
			// A kustomize transformer configuration (`configurations:`).
			// Kustomize keeps its TransformerConfig type internal; this
			// mirrors the only section we use, so other keys still fail.
			obj, ok = &transformerConfig{}, true
		}
		if !ok {
			errs = append(errs, fmt.Errorf("%s#%d: no Go type known for apiVersion %q kind %q; add it to newObject", rel, i, d.Type.APIVersion, d.Type.Kind))
			continue
		}
		if err := yaml.UnmarshalStrict(raw, obj); err != nil {
			errs = append(errs, fmt.Errorf("%s#%d (%s): strict decoding: %w", rel, i, d.Type.Kind, err))
			continue
		}
		d.Obj = obj
		docs = append(docs, d)
	}
	return docs, errors.Join(errs...)
}

// ofType returns the loaded objects of Go type T, with their documents.
func ofType[T any](docs []document) ([]T, []document) {
	var objs []T
	var where []document
	for _, d := range docs {
		if o, ok := d.Obj.(T); ok {
			objs = append(objs, o)
			where = append(where, d)
		}
	}
	return objs, where
}

func TestEveryManifestDecodesStrictly(t *testing.T) {
	docs := loadAll(t)
	kinds := map[string]int{}
	for _, d := range docs {
		k := d.Type.Kind
		if k == "" {
			k = "kustomize transformer config"
		}
		kinds[k]++
	}
	var names []string
	for k, n := range kinds {
		names = append(names, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(names)
	t.Logf("decoded %d documents: %s", len(docs), strings.Join(names, " "))
	for _, want := range []string{"ClusterBuildStrategy", "Build", "BuildRun", "Role", "RoleBinding", "ClusterRole", "Kustomization"} {
		if kinds[want] == 0 {
			t.Errorf("no %s found under %v", want, manifestDirs)
		}
	}
}

// TestStrictDecodingRejectsUnknownFields makes sure the loader would notice a
// misspelt field, so the test above means something.
func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	dir := t.TempDir()
	bad := []byte("apiVersion: shipwright.io/v1beta1\nkind: ClusterBuildStrategy\nmetadata: {name: x}\nspec:\n  steps:\n  - name: s\n    imagePullPolicy: Always\n    comand: [/x]\n")
	path := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := readFile(path, "bad.yaml")
	if err == nil || !strings.Contains(err.Error(), "comand") {
		t.Fatalf("want an unknown-field error naming comand, got %v", err)
	}
}
