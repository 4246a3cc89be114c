package strategies

import (
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// pinnedStepImage is what kustomize's images: must turn the step image into.
const pinnedStepImage = "ghcr.io/ocbuild/ocbuild:v0.1.0"

func render(t *testing.T, dir string) map[string]map[string]any {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot, dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out := map[string]map[string]any{}
	for _, r := range resMap.Resources() {
		m, err := r.Map()
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		out[r.GetKind()+"/"+r.GetName()] = m
	}
	return out
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestKustomizeInstallsStrategiesAndClusterRBAC(t *testing.T) {
	got := render(t, "strategies")
	want := []string{
		"ClusterBuildStrategy/openshift-buildconfig",
		"ClusterBuildStrategy/openshift-docker",
		"ClusterBuildStrategy/openshift-s2i",
		"ClusterRole/ocbuild-step-aggregate",
	}
	if strings.Join(keys(got), " ") != strings.Join(want, " ") {
		t.Errorf("kustomize build strategies/ = %v, want %v", keys(got), want)
	}
	for name, obj := range got {
		if !strings.HasPrefix(name, "ClusterBuildStrategy/") {
			continue
		}
		steps := obj["spec"].(map[string]any)["steps"].([]any)
		for _, s := range steps {
			if img := s.(map[string]any)["image"]; img != pinnedStepImage {
				t.Errorf("%s: rendered step image %v, want %s", name, img, pinnedStepImage)
			}
		}
	}
}

func TestKustomizeNamespacedRBAC(t *testing.T) {
	got := render(t, "strategies/rbac/namespace")
	want := "Role/ocbuild-step RoleBinding/ocbuild-step"
	if strings.Join(keys(got), " ") != want {
		t.Errorf("kustomize build strategies/rbac/namespace = %v, want %s", keys(got), want)
	}
	for name, obj := range got {
		if ns, ok := obj["metadata"].(map[string]any)["namespace"]; ok {
			t.Errorf("%s: has namespace %v; it must take the one kubectl -n gives", name, ns)
		}
	}
}

// Every kustomization shipped anywhere must build.
func TestEveryKustomizationBuilds(t *testing.T) {
	for _, dir := range manifestDirs {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "kustomization.yaml" {
				return err
			}
			rel, _ := filepath.Rel(repoRoot, filepath.Dir(path))
			if len(render(t, rel)) == 0 {
				t.Errorf("%s renders nothing", rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
