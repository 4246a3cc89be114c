package convert_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	buildv1 "github.com/openshift/api/build/v1"
	shpv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/ocbuild/ocbuild/pkg/convert"
)

// outputDocs returns the YAML documents every golden writes to stdout.
func outputDocs(t *testing.T) map[string][]string {
	t.Helper()
	goldens, err := filepath.Glob("testdata/*.golden")
	if err != nil || len(goldens) == 0 {
		t.Fatalf("no goldens: %v", err)
	}
	out := map[string][]string{}
	for _, g := range goldens {
		b, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(string(b), "--- stdout\n")
		stdout, _, _ := strings.Cut(rest, "--- stderr\n")
		for _, d := range strings.Split(stdout, "\n---\n") {
			if strings.TrimSpace(d) != "" {
				out[g] = append(out[g], d)
			}
		}
	}
	return out
}

// Every object convert writes is valid by its owner's Go types, decoded
// strictly (an unknown or misspelt field fails).
func TestOutputDecodesStrictly(t *testing.T) {
	n := 0
	for g, docs := range outputDocs(t) {
		for _, d := range docs {
			var tm struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal([]byte(d), &tm); err != nil {
				t.Fatalf("%s: %v", g, err)
			}
			var obj any
			switch tm.APIVersion + "/" + tm.Kind {
			case "shipwright.io/v1beta1/Build":
				obj = &shpv1beta1.Build{}
			case "shipwright.io/v1beta1/BuildRun":
				obj = &shpv1beta1.BuildRun{}
			case "build.openshift.io/v1/BuildConfig":
				obj = &buildv1.BuildConfig{}
			default:
				t.Errorf("%s: unexpected object %s/%s", g, tm.APIVersion, tm.Kind)
				continue
			}
			err := yaml.UnmarshalStrict([]byte(d), obj)
			if err != nil && strings.HasSuffix(g, "cluster-export.golden") && strings.HasSuffix(err.Error(), `unknown field "futureField"`) {
				// That input has a field newer than openshift/api: written
				// back unchanged, it is the server's to judge.
				err = nil
			}
			if err != nil {
				t.Errorf("%s: %s does not decode strictly: %v\n%s", g, tm.Kind, err, d)
			}
			if b, ok := obj.(*shpv1beta1.Build); ok {
				checkBuild(t, g, b)
			}
			n++
		}
	}
	if n < 15 {
		t.Errorf("only %d objects in the goldens", n)
	}
}

// checkBuild checks what Shipwright would reject when registering the Build.
func checkBuild(t *testing.T, g string, b *shpv1beta1.Build) {
	t.Helper()
	if b.Spec.Strategy.Kind == nil || *b.Spec.Strategy.Kind != shpv1beta1.ClusterBuildStrategyKind {
		t.Errorf("%s: Build %s: strategy kind must be ClusterBuildStrategy (else Shipwright looks for a namespaced one)", g, b.Name)
	}
	if b.Spec.Output.Image == "" {
		t.Errorf("%s: Build %s has no output image", g, b.Name)
	}
	if s := b.Spec.Source; s != nil && (s.Type != shpv1beta1.GitType || s.Git == nil || s.Git.URL == "") {
		t.Errorf("%s: Build %s: source must be a Git source with a url", g, b.Name)
	}
}

// strategyParams reads the parameters each shipped strategy declares, and
// whether each is required (no default).
func strategyParams(t *testing.T) map[string]map[string]shpv1beta1.Parameter {
	t.Helper()
	files, err := filepath.Glob("../../strategies/openshift-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no strategies: %v", err)
	}
	out := map[string]map[string]shpv1beta1.Parameter{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cbs shpv1beta1.ClusterBuildStrategy
		if err := yaml.UnmarshalStrict(b, &cbs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ps := map[string]shpv1beta1.Parameter{}
		for _, p := range cbs.Spec.Parameters {
			ps[p.Name] = p
		}
		out[cbs.Name] = ps
	}
	return out
}

// The parameter names compiled into convert are the ones the strategy
// YAMLs declare.
func TestParamConstantsAreDeclared(t *testing.T) {
	declared := strategyParams(t)
	for strategy, names := range convert.StrategyParams {
		ps, ok := declared[strategy]
		if !ok {
			t.Errorf("strategy %s is not shipped in strategies/", strategy)
			continue
		}
		for _, n := range names {
			if _, ok := ps[n]; !ok {
				t.Errorf("%s does not declare parameter %q", strategy, n)
			}
		}
	}
}

// Every parameter a converted Build sets is declared by its strategy, with
// the right shape (value or values), and every required one is set.
func TestBuildsUseDeclaredParams(t *testing.T) {
	declared := strategyParams(t)
	for g, docs := range outputDocs(t) {
		for _, d := range docs {
			var b shpv1beta1.Build
			if err := yaml.Unmarshal([]byte(d), &b); err != nil || b.Kind != "Build" {
				continue
			}
			ps, ok := declared[b.Spec.Strategy.Name]
			if !ok {
				t.Errorf("%s: Build %s uses strategy %s, which is not shipped", g, b.Name, b.Spec.Strategy.Name)
				continue
			}
			set := map[string]bool{}
			for _, pv := range b.Spec.ParamValues {
				p, ok := ps[pv.Name]
				switch {
				case !ok:
					t.Errorf("%s: Build %s sets %q, which %s does not declare", g, b.Name, pv.Name, b.Spec.Strategy.Name)
				case p.Type == shpv1beta1.ParameterTypeArray && (pv.SingleValue != nil || len(pv.Values) == 0):
					t.Errorf("%s: Build %s: %q is an array parameter: use values", g, b.Name, pv.Name)
				case p.Type != shpv1beta1.ParameterTypeArray && (pv.SingleValue == nil || pv.Value == nil):
					t.Errorf("%s: Build %s: %q is a string parameter: use value", g, b.Name, pv.Name)
				}
				set[pv.Name] = true
			}
			for name, p := range ps {
				if p.Default == nil && p.Defaults == nil && !set[name] {
					t.Errorf("%s: Build %s does not set %q, which %s requires", g, b.Name, name, b.Spec.Strategy.Name)
				}
			}
		}
	}
}

// convert's Shipwright types can express the shipped sample Builds (so
// they model the shapes the strategies are tested with), and a sample
// BuildConfig converts to the same source and strategy as the sample Build
// of the same application.
func TestOwnedBuildsShapedLikeSamples(t *testing.T) {
	for _, f := range []string{"go-hello-docker/build.yaml", "flask-s2i/build.yaml", "existing-buildconfig/build.yaml"} {
		b, err := os.ReadFile("../../samples/" + f)
		if err != nil {
			t.Fatal(err)
		}
		var mine convert.Build
		if err := yaml.UnmarshalStrict(b, &mine); err != nil {
			t.Errorf("samples/%s does not decode into convert.Build: %v", f, err)
		}
	}
	code, stdout, stderr := run(t, "--registry="+convert.InternalRegistry, "-n", "ocbuild-samples", "../../samples/existing-buildconfig/buildconfig.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got, want convert.Build
	if err := yaml.UnmarshalStrict([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile("../../samples/go-hello-docker/build.yaml")
	if err := yaml.UnmarshalStrict(b, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Spec.Source, want.Spec.Source) || got.Spec.Strategy != want.Spec.Strategy {
		t.Errorf("converted source/strategy\n %+v %+v\ndiffer from samples/go-hello-docker\n %+v %+v", *got.Spec.Source.Git, got.Spec.Strategy, *want.Spec.Source.Git, want.Spec.Strategy)
	}
}
