package convert

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func readCorpus(t *testing.T) []*Document {
	t.Helper()
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := filepath.Glob("testdata/*.json")
	in, err := ReadPaths(append(files, js...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Errors) > 0 {
		t.Fatalf("corpus does not decode: %v", in.Errors)
	}
	return in.Docs
}

var corpusOptions = Options{Strategy: Auto, BuildRun: true, Namespace: "corpus", Resolver: &Resolver{Registry: InternalRegistry}}

// Every non-empty field of every corpus BuildConfig is accounted for: the
// report names it as carried by the Build, kept by the BuildConfig, or
// written by the server; and an owned strategy is chosen only when no field
// stays with the BuildConfig.
func TestEveryFieldAccountedFor(t *testing.T) {
	for _, doc := range readCorpus(t) {
		r := Convert(context.Background(), doc, corpusOptions)
		if len(r.Errors) > 0 {
			continue // invalid ones: the golden test checks their messages
		}
		for _, leaf := range Leaves(doc.Raw) {
			found := false
			for _, e := range r.Entries {
				if covers(e.Path, leaf) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: field %s is in no report entry", doc.Origin, leaf)
			}
		}
		for _, e := range r.Entries {
			if e.How == Kept && !r.RunsBuildConfig() {
				t.Errorf("%s: %s stays with the BuildConfig, yet the Build uses %s", doc.Origin, e.Path, r.Build.Spec.Strategy.Name)
			}
		}
	}
}

const ownedDocker = `
apiVersion: build.openshift.io/v1
kind: BuildConfig
metadata: {name: app, namespace: ns}
spec:
  source: {git: {uri: https://example.com/app.git}}
  strategy: {dockerStrategy: {env: [{name: A, value: b}]}}
  output: {to: {kind: DockerImage, name: quay.io/ns/app:latest}}
`

// Each field an owned strategy cannot carry, added to a BuildConfig that
// converts to openshift-docker, makes the Build run the BuildConfig, and
// the report names that field.
func TestUncarriedFieldRunsBuildConfig(t *testing.T) {
	base := func() map[string]any {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(ownedDocker), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if r := convertRaw(t, base()); r.RunsBuildConfig() {
		t.Fatalf("the base BuildConfig should convert to openshift-docker: %+v", r.Entries)
	}
	for path, value := range map[string]any{
		"spec.nodeSelector":                                    map[string]any{},
		"spec.resources.limits.cpu":                            "2",
		"spec.postCommit.script":                               "make test",
		"spec.mountTrustedCA":                                  true,
		"spec.serviceAccount":                                  "deployer",
		"spec.revision.git.commit":                             "abc123",
		"spec.source.git.httpProxy":                            "http://proxy:3128",
		"spec.source.git.lfs":                                  true, // unknown to this version
		"spec.source.dockerfile":                               "FROM scratch",
		"spec.source.secrets":                                  []any{map[string]any{"secret": map[string]any{"name": "s"}}},
		"spec.source.configMaps":                               []any{map[string]any{"configMap": map[string]any{"name": "c"}}},
		"spec.strategy.dockerStrategy.volumes":                 []any{map[string]any{"name": "v", "source": map[string]any{"type": "Secret"}}},
		"spec.strategy.dockerStrategy.imageOptimizationPolicy": "SkipLayers",
		"spec.strategy.dockerStrategy.env":                     []any{map[string]any{"name": "A", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "s", "key": "k"}}}},
		"spec.triggers":                                        []any{map[string]any{"type": "Generic", "generic": map[string]any{"secret": "x"}}},
		"spec.failedBuildsHistoryLimit":                        json.Number("0"),
		`metadata.annotations`:                                 map[string]any{"openshift.io/build-config.paused": "true"},
		"metadata.finalizers":                                  []any{"example.com/keep"},
	} {
		m := base()
		set(m, path, value)
		r := convertRaw(t, m)
		if len(r.Errors) > 0 {
			t.Errorf("%s: %v", path, r.Errors)
			continue
		}
		if !r.RunsBuildConfig() {
			t.Errorf("with %s the Build uses %s: the field would be lost", path, r.Build.Spec.Strategy.Name)
			continue
		}
		named := false
		for _, e := range r.Entries {
			if e.How == Kept && e.Dest != "the BuildConfig" && (strings.HasPrefix(e.Path, path) || strings.HasPrefix(path, e.Path)) {
				named = true
			}
		}
		if !named {
			t.Errorf("with %s the report does not name it as kept by the BuildConfig: %+v", path, r.Entries)
		}
	}
}

func convertRaw(t *testing.T, m map[string]any) *Result {
	t.Helper()
	js, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	in := &Input{}
	in.AddJSON("test", js, false)
	if len(in.Docs) != 1 {
		t.Fatalf("decoding: %v", in.Errors)
	}
	return Convert(context.Background(), in.Docs[0], Options{Strategy: Auto, Resolver: &Resolver{}})
}

// set sets a dotted path in m, creating objects on the way.
func set(m map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

func TestLeaves(t *testing.T) {
	var m map[string]any
	if err := yaml.Unmarshal([]byte(`
metadata: {labels: {app.kubernetes.io/name: x}}
spec:
  resources: {}
  nodeSelector: {}
  triggers: []
  source: {binary: {}}
  strategy: {dockerStrategy: {noCache: false, env: [{name: A, value: ""}]}}
  completionDeadlineSeconds: 0
  output: null
`), &m); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Leaves(m), " ")
	want := `metadata.labels["app.kubernetes.io/name"] spec.completionDeadlineSeconds spec.nodeSelector spec.source.binary spec.strategy.dockerStrategy.env[0].name spec.strategy.dockerStrategy.env[0].value spec.strategy.dockerStrategy.noCache`
	if got != want {
		t.Errorf("Leaves:\n got %s\nwant %s", got, want)
	}
}
