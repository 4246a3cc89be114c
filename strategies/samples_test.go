package strategies

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	shpv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
)

// checkParamValues checks Build or BuildRun paramValues against a strategy.
func checkParamValues(t *testing.T, where string, s *shpv1beta1.ClusterBuildStrategy, values []shpv1beta1.ParamValue) {
	t.Helper()
	declared := map[string]shpv1beta1.Parameter{}
	for _, p := range s.Spec.Parameters {
		declared[p.Name] = p
	}
	for _, v := range values {
		p, ok := declared[v.Name]
		if !ok {
			t.Errorf("%s: paramValue %s is not a parameter of %s", where, v.Name, s.Name)
			continue
		}
		isArray := p.Type == shpv1beta1.ParameterTypeArray
		switch {
		case isArray && (v.SingleValue != nil || v.Values == nil):
			t.Errorf("%s: %s is an array parameter; use values:", where, v.Name)
		case !isArray && (v.SingleValue == nil || v.Values != nil):
			t.Errorf("%s: %s is a string parameter; use value:", where, v.Name)
		}
		for _, item := range v.Values {
			if item.Value != nil && !strings.Contains(*item.Value, "=") {
				t.Errorf("%s: %s item %q is not KEY=VALUE", where, v.Name, *item.Value)
			}
		}
	}
}

func requiredParams(s *shpv1beta1.ClusterBuildStrategy) []string {
	var out []string
	for _, p := range s.Spec.Parameters {
		if p.Default == nil && p.Defaults == nil {
			out = append(out, p.Name)
		}
	}
	return out
}

func TestSampleBuildsMatchTheStrategies(t *testing.T) {
	docs := loadAll(t)
	strategies := clusterStrategies(t)
	builds, where := ofType[*shpv1beta1.Build](docs)
	runs, runWhere := ofType[*shpv1beta1.BuildRun](docs)

	byName := map[string]*shpv1beta1.Build{}
	used := map[string]bool{}
	for i, b := range builds {
		w := where[i].String()
		if byName[b.Name] != nil {
			t.Errorf("%s: Build %s defined twice", w, b.Name)
		}
		byName[b.Name] = b
		if b.Spec.Strategy.Kind == nil || *b.Spec.Strategy.Kind != shpv1beta1.ClusterBuildStrategyKind {
			t.Errorf("%s: strategy.kind must be ClusterBuildStrategy (the default is a namespaced BuildStrategy)", w)
		}
		s := strategies[b.Spec.Strategy.Name]
		if s == nil {
			t.Errorf("%s: strategy %s is not one of ours", w, b.Spec.Strategy.Name)
			continue
		}
		used[s.Name] = true
		checkParamValues(t, w, s, b.Spec.ParamValues)
		given := map[string]bool{}
		for _, v := range b.Spec.ParamValues {
			given[v.Name] = true
		}
		for _, req := range requiredParams(s) {
			if !given[req] {
				t.Errorf("%s: required parameter %s not set", w, req)
			}
		}
		o := b.Spec.Output
		if o.Image == "" {
			t.Errorf("%s: no output image", w)
		}
		// OpenShift pushes; Shipwright's image-processing must not run.
		if len(o.Labels) > 0 || len(o.Annotations) > 0 || o.Timestamp != nil || o.VulnerabilityScan != nil || len(o.Platforms) > 0 {
			t.Errorf("%s: output labels/annotations/timestamp/vulnerabilityScan/platforms are not supported by ocbuild strategies", w)
		}
		if b.Spec.Source != nil && b.Spec.Source.Type == shpv1beta1.GitType && b.Spec.Source.Git == nil {
			t.Errorf("%s: Git source without git:", w)
		}
		if b.Spec.Source != nil && b.Spec.Source.ContextDir != nil {
			dir := filepath.Join(repoRoot, *b.Spec.Source.ContextDir)
			if b.Spec.Source.Git != nil && strings.Contains(b.Spec.Source.Git.URL, "github.com/ocbuild/ocbuild") {
				if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
					t.Errorf("%s: contextDir %s does not exist in this repository", w, *b.Spec.Source.ContextDir)
				}
			}
		}
	}
	for name := range strategies {
		if !used[name] {
			t.Errorf("no sample Build uses strategy %s", name)
		}
	}

	for i, r := range runs {
		w := runWhere[i].String()
		if r.Spec.Build.Name == nil || byName[*r.Spec.Build.Name] == nil {
			t.Errorf("%s: refers to no sample Build", w)
			continue
		}
		if r.Spec.ServiceAccount != nil && *r.Spec.ServiceAccount == ".generate" {
			t.Errorf("%s: .generate service accounts get no API token; the step needs one", w)
		}
		if r.Spec.State != nil && *r.Spec.State != shpv1beta1.BuildRunStateCancel {
			t.Errorf("%s: unknown state %s", w, *r.Spec.State)
		}
		b := byName[*r.Spec.Build.Name]
		if s := strategies[b.Spec.Strategy.Name]; s != nil {
			checkParamValues(t, w, s, r.Spec.ParamValues)
		}
		if r.Name == "" && r.GenerateName == "" {
			t.Errorf("%s: no name", w)
		}
	}
}

func TestSampleGoAppBuildsAndIsFromScratch(t *testing.T) {
	app := filepath.Join(repoRoot, "samples", "apps", "go-hello")
	df, err := os.ReadFile(filepath.Join(app, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(string(df), -1)
	if len(froms) < 2 || froms[len(froms)-1][1] != "scratch" {
		t.Errorf("Dockerfile should have a builder stage and a FROM scratch runtime stage, got %v", froms)
	}
	if testing.Short() {
		t.Skip("compiling the sample app")
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(t.TempDir(), "go-hello"), ".")
	cmd.Dir = app
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build samples/apps/go-hello: %v\n%s", err, out)
	}
}

func TestSampleS2IScriptsAreExecutable(t *testing.T) {
	for _, f := range []string{"assemble", "save-artifacts"} {
		p := filepath.Join(repoRoot, "samples", "apps", "flask-hello", ".s2i", "bin", f)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s is not executable", p)
		}
		b, _ := os.ReadFile(p)
		if !strings.HasPrefix(string(b), "#!/bin/bash\n") {
			t.Errorf("%s has no #!/bin/bash line", p)
		}
	}
}
