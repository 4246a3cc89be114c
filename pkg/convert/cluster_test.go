package convert_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	shpv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	"sigs.k8s.io/yaml"
)

// fakeAPI serves the read-only calls convert --from-cluster makes and
// records every request.
type fakeAPI struct {
	mu       sync.Mutex
	requests []string
}

const repo = "image-registry.openshift-image-registry.svc:5000"

// Two pages of BuildConfigs in myproject: an S2I build whose builder and
// output are ImageStreamTags, then one whose builder tag does not exist.
var pages = map[string]string{
	"": `{"kind":"BuildConfigList","apiVersion":"build.openshift.io/v1","metadata":{"continue":"page2"},"items":[
  {"metadata":{"name":"ruby-app","namespace":"myproject","uid":"u1","resourceVersion":"7","creationTimestamp":"2025-01-01T00:00:00Z"},
   "spec":{"runPolicy":"Serial","successfulBuildsHistoryLimit":5,"failedBuildsHistoryLimit":5,"nodeSelector":null,"resources":{},"postCommit":{},"triggers":[],
     "source":{"type":"Git","git":{"uri":"https://github.com/openshift/ruby-hello-world"}},
     "strategy":{"type":"Source","sourceStrategy":{"from":{"kind":"ImageStreamTag","namespace":"openshift","name":"ruby:3.3-ubi9"}}},
     "output":{"to":{"kind":"ImageStreamTag","name":"ruby-app:latest"}}},
   "status":{"lastVersion":3}}]}`,
	"page2": `{"kind":"BuildConfigList","apiVersion":"build.openshift.io/v1","metadata":{},"items":[
  {"metadata":{"name":"py-app","namespace":"myproject"},
   "spec":{"source":{"git":{"uri":"https://github.com/org/py"}},
     "strategy":{"sourceStrategy":{"from":{"kind":"ImageStreamTag","namespace":"openshift","name":"python:9.9"}}},
     "output":{"to":{"kind":"DockerImage","name":"quay.io/org/py:latest"}}}}]}`,
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	notFound := func(kind, name string) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"%s %q not found","details":{"name":%q,"kind":%q}}`, kind, name, name, kind)
	}
	const is = "/apis/image.openshift.io/v1/namespaces/"
	switch p := r.URL.Path; {
	case p == "/apis/build.openshift.io/v1/namespaces/myproject/buildconfigs" || p == "/apis/build.openshift.io/v1/buildconfigs":
		if r.URL.Query().Get("limit") == "" {
			w.WriteHeader(http.StatusBadRequest) // convert pages its lists
			return
		}
		page, ok := pages[r.URL.Query().Get("continue")]
		if !ok {
			w.WriteHeader(http.StatusGone)
			return
		}
		fmt.Fprint(w, page)
	case p == is+"openshift/imagestreamtags/ruby:3.3-ubi9":
		fmt.Fprint(w, `{"kind":"ImageStreamTag","apiVersion":"image.openshift.io/v1","metadata":{"name":"ruby:3.3-ubi9","namespace":"openshift"}}`)
	case strings.HasPrefix(p, is) && strings.Contains(p, "/imagestreamtags/"):
		notFound("imagestreamtags", p[strings.LastIndex(p, "/")+1:])
	case p == is+"openshift/imagestreams/ruby":
		fmt.Fprintf(w, `{"kind":"ImageStream","apiVersion":"image.openshift.io/v1","metadata":{"name":"ruby"},"status":{"dockerImageRepository":"%s/openshift/ruby"}}`, repo)
	case p == is+"myproject/imagestreams/ruby-app":
		fmt.Fprintf(w, `{"kind":"ImageStream","apiVersion":"image.openshift.io/v1","metadata":{"name":"ruby-app"},"status":{"dockerImageRepository":"%s/myproject/ruby-app"}}`, repo)
	default:
		notFound("unknown", p)
	}
}

func kubeconfig(t *testing.T, server string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: myproject}}]
current-context: x
`, server)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// --from-cluster reads every page of BuildConfigs, resolves ImageStreamTag
// builders (imagestreamtags, then the stream's dockerImageRepository) and
// outputs, writes no BuildConfig (it exists), and only ever GETs.
func TestFromCluster(t *testing.T) {
	api := &fakeAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	t.Setenv("KUBECONFIG", "")
	for _, args := range [][]string{{}, {"-n", "myproject"}, {"--all-namespaces"}} {
		api.requests = nil
		code, stdout, stderr := run(t, append([]string{"--from-cluster", "--kubeconfig", kubeconfig(t, srv.URL)}, args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, stderr)
		}
		builds := map[string]shpv1beta1.Build{}
		for _, d := range strings.Split(stdout, "\n---\n") {
			var b shpv1beta1.Build
			if err := yaml.UnmarshalStrict([]byte(d), &b); err != nil {
				t.Fatalf("%v: %v\n%s", args, err, d)
			}
			if b.Kind != "Build" {
				t.Errorf("%v: wrote a %s; a BuildConfig read from the cluster exists already", args, b.Kind)
			}
			builds[b.Name] = b
		}
		ruby := builds["ruby-app"]
		if ruby.Spec.Strategy.Name != "openshift-s2i" {
			t.Errorf("%v: ruby-app uses %s, want openshift-s2i\n%s", args, ruby.Spec.Strategy.Name, stderr)
		}
		if got, want := paramValue(ruby, "builder-image"), repo+"/openshift/ruby:3.3-ubi9"; got != want {
			t.Errorf("%v: builder-image = %q, want %q", args, got, want)
		}
		if got, want := ruby.Spec.Output.Image, repo+"/myproject/ruby-app:latest"; got != want {
			t.Errorf("%v: output = %q, want %q", args, got, want)
		}
		py := builds["py-app"]
		if py.Spec.Strategy.Name != "openshift-buildconfig" {
			t.Errorf("%v: py-app (builder tag missing) uses %s, want openshift-buildconfig", args, py.Spec.Strategy.Name)
		}
		if !strings.Contains(stderr, "imagestreamtag openshift/python:9.9 not found") {
			t.Errorf("%v: the report does not say the builder tag is missing:\n%s", args, stderr)
		}
		if !strings.Contains(stderr, "status ") || !strings.Contains(stderr, "not converted: written by the API server") {
			t.Errorf("%v: the report does not list the server's fields as such:\n%s", args, stderr)
		}
		for _, r := range api.requests {
			if !strings.HasPrefix(r, "GET ") {
				t.Errorf("%v: convert made a %s: it must only read", args, r)
			}
		}
	}
}

// Without a namespace from flags or kubeconfig, or with a bad kubeconfig,
// nothing is read and the message says what to pass.
func TestFromClusterNeedsConfig(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	code, _, stderr := run(t, "--from-cluster", "--kubeconfig", filepath.Join(t.TempDir(), "missing"))
	if code != 2 || !strings.Contains(stderr, "--kubeconfig") {
		t.Errorf("exit %d, stderr %q: want 2 naming --kubeconfig", code, stderr)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,"message":"buildconfigs is forbidden"}`, http.StatusForbidden)
	}))
	defer srv.Close()
	code, _, stderr = run(t, "--from-cluster", "--kubeconfig", kubeconfig(t, srv.URL))
	if code != 1 || !strings.Contains(stderr, "listing buildconfigs in namespace myproject") || !strings.Contains(stderr, "forbidden") {
		t.Errorf("exit %d, stderr %q: want 1 with the listing error", code, stderr)
	}
}

func paramValue(b shpv1beta1.Build, name string) string {
	for _, p := range b.Spec.ParamValues {
		if p.Name == name && p.SingleValue != nil && p.Value != nil {
			return *p.Value
		}
	}
	return ""
}
