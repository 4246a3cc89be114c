package buildapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	buildv1 "github.com/openshift/api/build/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// apiServer answers every request with an object of the kind the path asks
// for and records method, path, query and body.
type apiServer struct {
	mu    sync.Mutex
	calls []string
}

func (s *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	call := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		call += "?" + r.URL.RawQuery
	}
	if len(body) > 0 {
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		if k := stringOf(m["kind"]); k != "" {
			call += " kind=" + k
		} else {
			call += " " + string(body)
		}
	}
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/apis/build.openshift.io/v1":
		_, _ = io.WriteString(w, `{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"build.openshift.io/v1","resources":[]}`)
	case strings.HasSuffix(r.URL.Path, "/instantiate"), strings.Contains(r.URL.Path, "/builds/"):
		_, _ = io.WriteString(w, `{"kind":"Build","apiVersion":"build.openshift.io/v1","metadata":{"name":"app-1"}}`)
	case strings.HasSuffix(r.URL.Path, "/builds"):
		_, _ = io.WriteString(w, `{"kind":"BuildList","apiVersion":"build.openshift.io/v1","items":[{"metadata":{"name":"app-1"}}]}`)
	case strings.Contains(r.URL.Path, "/imagestreamimages/"):
		_, _ = io.WriteString(w, `{"kind":"ImageStreamImage","apiVersion":"image.openshift.io/v1","metadata":{"name":"app@sha256:1"},"image":{"metadata":{"name":"sha256:1"}}}`)
	default:
		_, _ = io.WriteString(w, `{"kind":"BuildConfig","apiVersion":"build.openshift.io/v1","metadata":{"name":"app"},"status":{"lastVersion":3}}`)
	}
}

func stringOf(v any) string { s, _ := v.(string); return s }

func newClient(t *testing.T, h http.Handler) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Each call reaches the path, with the method and body, that
// openshift/client-go's generated client would use.
func TestCallsAsTheGeneratedClients(t *testing.T) {
	s := &apiServer{}
	c := newClient(t, s)
	ctx := context.Background()
	bcs, builds := c.BuildConfigs("ns"), c.Builds("ns")
	bc, err := bcs.Get(ctx, "app", metav1.GetOptions{})
	if err != nil || bc.Name != "app" || bc.Status.LastVersion != 3 {
		t.Fatalf("Get = %+v, %v", bc, err)
	}
	mustOK(t)(bcs.Create(ctx, &buildv1.BuildConfig{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{FieldManager: "ocbuild"}))
	mustOK(t)(bcs.Update(ctx, &buildv1.BuildConfig{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.UpdateOptions{}))
	b, err := bcs.Instantiate(ctx, "app", &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{})
	if err != nil || b.Name != "app-1" {
		t.Fatalf("Instantiate = %+v, %v", b, err)
	}
	mustOK(t)(builds.Get(ctx, "app-1", metav1.GetOptions{}))
	list, err := builds.List(ctx, metav1.ListOptions{LabelSelector: "a=b"})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	mustOK(t)(builds.Patch(ctx, "app-1", types.MergePatchType, []byte(`{"status":{"cancelled":true}}`), metav1.PatchOptions{}))
	mustOK(t)(builds.Update(ctx, &buildv1.Build{ObjectMeta: metav1.ObjectMeta{Name: "app-1"}}, metav1.UpdateOptions{}))
	isi, err := c.ImageStreamImages("ns").Get(ctx, "app@sha256:1", metav1.GetOptions{})
	if err != nil || isi.Image.Name != "sha256:1" {
		t.Fatalf("ImageStreamImages.Get = %+v, %v", isi, err)
	}
	want := []string{
		"GET /apis/build.openshift.io/v1/namespaces/ns/buildconfigs/app",
		"POST /apis/build.openshift.io/v1/namespaces/ns/buildconfigs?fieldManager=ocbuild kind=BuildConfig",
		"PUT /apis/build.openshift.io/v1/namespaces/ns/buildconfigs/app kind=BuildConfig",
		"POST /apis/build.openshift.io/v1/namespaces/ns/buildconfigs/app/instantiate kind=BuildRequest",
		"GET /apis/build.openshift.io/v1/namespaces/ns/builds/app-1",
		"GET /apis/build.openshift.io/v1/namespaces/ns/builds?labelSelector=a%3Db",
		`PATCH /apis/build.openshift.io/v1/namespaces/ns/builds/app-1 {"status":{"cancelled":true}}`,
		"PUT /apis/build.openshift.io/v1/namespaces/ns/builds/app-1 kind=Build",
		"GET /apis/image.openshift.io/v1/namespaces/ns/imagestreamimages/app@sha256:1",
	}
	if strings.Join(s.calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(s.calls, "\n"), strings.Join(want, "\n"))
	}
}

func mustOK(t *testing.T) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestServesBuildAPI(t *testing.T) {
	for code, want := range map[int]bool{http.StatusOK: true, http.StatusNotFound: false, http.StatusForbidden: true} {
		c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/apis/build.openshift.io/v1" {
				t.Errorf("asked %s", r.URL.Path)
			}
			if code == http.StatusOK {
				_, _ = io.WriteString(w, `{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"build.openshift.io/v1"}`)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","code":`+strconv.Itoa(code)+`}`)
		}))
		got, _ := c.ServesBuildAPI(context.Background())
		if got != want {
			t.Errorf("HTTP %d: serves = %v, want %v", code, got, want)
		}
	}
}
