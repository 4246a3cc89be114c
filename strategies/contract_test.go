package strategies

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocbuild/ocbuild/pkg/cli"
	shpv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
)

// substitute does what Tekton does to a step's args for one TaskRun: string
// parameters are replaced inside any arg, an arg that is exactly
// $(params.x[*]) becomes the array's items, results become their paths.
func substitute(t *testing.T, args []string, strings_ map[string]string, arrays map[string][]string, results map[string]string, ctx map[string]string) []string {
	t.Helper()
	var out []string
	for _, a := range args {
		if m := varRef.FindStringSubmatch(a); m != nil && m[0] == a {
			if pm := paramRef.FindStringSubmatch(m[1]); pm != nil && pm[2] != "" {
				out = append(out, arrays[pm[1]]...)
				continue
			}
		}
		a = varRef.ReplaceAllStringFunc(a, func(ref string) string {
			inner := ref[2 : len(ref)-1]
			switch {
			case paramRef.MatchString(inner):
				name := paramRef.FindStringSubmatch(inner)[1]
				v, ok := strings_[name]
				if !ok {
					t.Fatalf("no value for parameter %s", name)
				}
				return v
			case resultRef.MatchString(inner):
				if p, ok := results[resultRef.FindStringSubmatch(inner)[1]]; ok {
					return p
				}
				return ref // undeclared result: Tekton leaves it as is
			case strings.HasPrefix(inner, "context."):
				return ctx[strings.TrimPrefix(inner, "context.")]
			}
			return ref
		})
		out = append(out, a)
	}
	return out
}

// paramValues merges strategy defaults, Build and BuildRun values.
func paramValues(s *shpv1beta1.ClusterBuildStrategy, layers ...[]shpv1beta1.ParamValue) (map[string]string, map[string][]string) {
	str, arr := map[string]string{}, map[string][]string{}
	for _, p := range s.Spec.Parameters {
		if p.Type == shpv1beta1.ParameterTypeArray {
			if p.Defaults != nil {
				arr[p.Name] = append([]string{}, *p.Defaults...)
			}
		} else if p.Default != nil {
			str[p.Name] = *p.Default
		}
	}
	for _, layer := range layers {
		for _, v := range layer {
			if v.SingleValue != nil && v.Value != nil {
				str[v.Name] = *v.Value
			}
			if v.Values != nil {
				arr[v.Name] = nil
				for _, item := range v.Values {
					if item.Value != nil {
						arr[v.Name] = append(arr[v.Name], *item.Value)
					}
				}
			}
		}
	}
	return str, arr
}

// TestStrategiesParseWithTheRealBinary feeds every sample Build (and BuildRun
// overrides) through each strategy's args, as Tekton would substitute them,
// into the ocbuild command line parser. A flag the binary does not know, a
// value it rejects or a missing required flag fails here, not in a cluster.
func TestStrategiesParseWithTheRealBinary(t *testing.T) {
	docs := loadAll(t)
	strategies := clusterStrategies(t)
	builds, _ := ofType[*shpv1beta1.Build](docs)
	runs, _ := ofType[*shpv1beta1.BuildRun](docs)

	type scenario struct {
		name   string
		build  *shpv1beta1.Build
		layers [][]shpv1beta1.ParamValue
		git    bool
	}
	var scenarios []scenario
	for _, b := range builds {
		git := b.Spec.Source != nil && b.Spec.Source.Type == shpv1beta1.GitType
		scenarios = append(scenarios, scenario{"Build " + b.Name, b, [][]shpv1beta1.ParamValue{b.Spec.ParamValues}, git})
		for _, r := range runs {
			if r.Spec.Build.Name != nil && *r.Spec.Build.Name == b.Name && len(r.Spec.ParamValues) > 0 {
				scenarios = append(scenarios, scenario{"BuildRun " + r.GenerateName + r.Name, b,
					[][]shpv1beta1.ParamValue{b.Spec.ParamValues, r.Spec.ParamValues}, git})
			}
		}
	}
	// A source-less Build of an existing BuildConfig: Shipwright declares no
	// commit-sha result, Tekton leaves the reference as is, and ocbuild only
	// warns about it.
	for _, b := range builds {
		if b.Spec.Strategy.Name == "openshift-buildconfig" && b.Spec.Source != nil {
			sourceless := b.DeepCopy()
			sourceless.Spec.Source = nil
			scenarios = append(scenarios, scenario{"source-less Build " + b.Name, sourceless, [][]shpv1beta1.ParamValue{b.Spec.ParamValues}, false})
			break
		}
	}
	for _, sc := range scenarios {
		s := strategies[sc.build.Spec.Strategy.Name]
		if s == nil {
			continue
		}
		t.Run(sc.name, func(t *testing.T) {
			root := t.TempDir()
			contextDir := root
			if sc.build.Spec.Source != nil && sc.build.Spec.Source.ContextDir != nil {
				contextDir = filepath.Join(root, *sc.build.Spec.Source.ContextDir)
			}
			if err := os.MkdirAll(contextDir, 0o755); err != nil {
				t.Fatal(err)
			}
			str, arr := paramValues(s, sc.layers...)
			if df, ok := str["dockerfile"]; ok {
				if err := os.WriteFile(filepath.Join(contextDir, df), []byte("FROM scratch\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			str["shp-source-root"] = root
			str["shp-source-context"] = contextDir
			str["shp-output-image"] = sc.build.Spec.Output.Image
			str["shp-output-insecure"] = "false"
			resultsDir := t.TempDir()
			results := map[string]string{}
			for _, r := range []string{"shp-image-digest", "shp-image-size", "shp-image-vulnerabilities", "shp-error-reason", "shp-error-message"} {
				results[r] = filepath.Join(resultsDir, r)
			}
			if sc.git {
				results["shp-source-default-commit-sha"] = filepath.Join(resultsDir, "shp-source-default-commit-sha")
			}
			ctx := map[string]string{"taskRun.name": sc.build.Name + "-abcde", "taskRun.uid": "0b6d5c1e-6b7d-4a43-9d0c-2f6ad0b3e7a1"}
			t.Setenv(cli.EnvBuildName, sc.build.Name)
			t.Setenv(cli.EnvBuildRunName, sc.build.Name+"-xyz12")

			for _, st := range s.Spec.Steps {
				args := substitute(t, st.Args, str, arr, results, ctx)
				var stderr bytes.Buffer
				cmd, help, err := cli.Parse(args, &stderr)
				if err != nil || help || cmd == nil {
					t.Fatalf("ocbuild %s rejected %s's args: %v (help=%v)\nargs: %q\nstderr: %s", args[0], s.Name, err, help, args, stderr.String())
				}
				for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
					if line == "" || (!sc.git && strings.Contains(line, "result-file-commit-sha")) {
						continue
					}
					t.Errorf("ocbuild warned: %s", line)
				}
				o := cmd.Options
				wantBC := sc.build.Name
				if s.Name == "openshift-buildconfig" {
					wantBC = str["buildconfig"]
				}
				if o.BuildConfig != wantBC {
					t.Errorf("BuildConfig %q, want %q", o.BuildConfig, wantBC)
				}
				if o.Owner.Build != sc.build.Name || o.Owner.TaskRun != ctx["taskRun.name"] || o.Owner.TaskRunUID != ctx["taskRun.uid"] {
					t.Errorf("owner %+v does not carry the Build and TaskRun", o.Owner)
				}
				if o.SourceDir != contextDir || o.SourceRoot != root {
					t.Errorf("source dir %q root %q, want %q and %q", o.SourceDir, o.SourceRoot, contextDir, root)
				}
				if len(o.Env) != len(arr["build-env"]) && s.Name == "openshift-buildconfig" {
					t.Errorf("env %v, want %v", o.Env, arr["build-env"])
				}
			}
		})
	}
}
