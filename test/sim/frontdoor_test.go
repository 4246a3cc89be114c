package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildfake "github.com/openshift/client-go/build/clientset/versioned/fake"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const (
	goodToken = "good-token"
	stepUser  = "system:serviceaccount:ns:pipeline"
)

// fakeSources records deliveries.
type fakeSources struct {
	mu        sync.Mutex
	delivered map[Key]string // body
	asFile    map[Key]string
	onDeliver func(k Key) error
}

func (s *fakeSources) Deliver(_ context.Context, k Key, asFile string, body io.Reader) error {
	if s.onDeliver != nil {
		if err := s.onDeliver(k); err != nil {
			return err
		}
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.delivered == nil {
		s.delivered, s.asFile = map[Key]string{}, map[Key]string{}
	}
	s.delivered[k], s.asFile[k] = string(b), asFile
	return nil
}

func (s *fakeSources) Await(ctx context.Context, k Key) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

// harness is a front door over fake clients.
type harness struct {
	t       *testing.T
	fd      *frontDoor
	kube    *kubefake.Clientset
	builds  *buildfake.Clientset
	access  *fakeAccess
	sources *fakeSources
	srv     *httptest.Server
	proxied chan *http.Request
	watches chan string // namespace of every builds watch started
}

func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	h := &harness{
		t:       t,
		kube:    kubefake.NewSimpleClientset(),
		builds:  buildfake.NewSimpleClientset(objs...),
		sources: &fakeSources{},
		proxied: make(chan *http.Request, 100),
		watches: make(chan string, 100),
	}
	h.access = &fakeAccess{allow: func(string, authorizationv1.ResourceAttributes) bool { return true }}
	h.kube.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview).DeepCopy()
		if tr.Spec.Token == goodToken {
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: stepUser, Groups: []string{"system:serviceaccounts", "system:authenticated"}}}
		}
		return true, tr, nil
	})
	h.builds.PrependWatchReactor("builds", func(a k8stesting.Action) (bool, watch.Interface, error) {
		w, err := h.builds.Tracker().Watch(a.GetResource(), a.GetNamespace())
		h.watches <- a.GetNamespace()
		return true, w, err
	})
	h.fd = &frontDoor{
		kube:    h.kube,
		builds:  h.builds,
		authn:   newTokenReviewer(h.kube),
		access:  h.access,
		logs:    NewLogs(),
		sources: h.sources,
		chaos:   newChaos(Chaos{}, 1),
		stats:   newRequestStats(),
		proxy: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.proxied <- r
			w.WriteHeader(http.StatusTeapot)
		}),
		binaryTimeout:    5 * time.Second,
		logWaitTimeout:   5 * time.Second,
		followCheck:      time.Hour,
		deliverFailGrace: 100 * time.Millisecond,
		logf:             t.Logf,
	}
	h.srv = httptest.NewServer(h.fd)
	t.Cleanup(h.srv.Close)
	return h
}

// do sends a request with the good token.
func (h *harness) do(method, path string, body io.Reader) *http.Response {
	h.t.Helper()
	return h.doToken(goodToken, method, path, body)
}

func (h *harness) doToken(token, method, path string, body io.Reader) *http.Response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

// status reads a Status answer.
func readStatus(t *testing.T, resp *http.Response) metav1.Status {
	t.Helper()
	defer resp.Body.Close()
	var st metav1.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("decoding Status (HTTP %d): %v", resp.StatusCode, err)
	}
	if st.Kind != "Status" || int(st.Code) != resp.StatusCode {
		t.Errorf("Status %+v does not match HTTP %d", st, resp.StatusCode)
	}
	return st
}

func expectStatus(t *testing.T, resp *http.Response, code int, msg string) metav1.Status {
	t.Helper()
	st := readStatus(t, resp)
	if resp.StatusCode != code || st.Message != msg {
		t.Errorf("got %d %q\nwant %d %q", resp.StatusCode, st.Message, code, msg)
	}
	return st
}

// getBuild reads a build from the fake.
func (h *harness) getBuild(ns, name string) *buildv1.Build {
	h.t.Helper()
	b, err := h.builds.BuildV1().Builds(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// setPhase updates a build's phase (and reason/message).
func (h *harness) setPhase(ns, name string, phase buildv1.BuildPhase, reason buildv1.StatusReason, msg string) {
	h.t.Helper()
	b := h.getBuild(ns, name)
	b.Status.Phase, b.Status.Reason, b.Status.Message = phase, reason, msg
	if _, err := h.builds.BuildV1().Builds(ns).Update(context.Background(), b, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// awaitWatch waits until the handler has started watching builds.
func (h *harness) awaitWatch() {
	h.t.Helper()
	select {
	case <-h.watches:
	case <-time.After(10 * time.Second):
		h.t.Fatal("no builds watch started")
	}
}

func TestPathPattern(t *testing.T) {
	for in, want := range map[string]string{
		"/apis/build.openshift.io/v1/namespaces/ns/buildconfigs/app/instantiate": "/apis/build.openshift.io/v1/namespaces/{ns}/buildconfigs/{name}/instantiate",
		"/apis/build.openshift.io/v1/namespaces/ns/builds":                       "/apis/build.openshift.io/v1/namespaces/{ns}/builds",
		"/apis/build.openshift.io/v1/namespaces/ns/builds/app-1":                 "/apis/build.openshift.io/v1/namespaces/{ns}/builds/{name}",
		"/apis/build.openshift.io/v1/watch/namespaces/ns/builds/app-1":           "/apis/build.openshift.io/v1/watch/namespaces/{ns}/builds/{name}",
		"/api/v1/namespaces/ns":              "/api/v1/namespaces/{name}",
		"/api/v1/namespaces/ns/secrets/s":    "/api/v1/namespaces/{ns}/secrets/{name}",
		"/apis/build.openshift.io/v1/builds": "/apis/build.openshift.io/v1/builds",
		"/version":                           "/version",
	} {
		if got := pathPattern(in); got != want {
			t.Errorf("pathPattern(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestStatsAndProxyFallThrough(t *testing.T) {
	h := newHarness(t)
	resp := h.do("GET", "/apis/build.openshift.io/v1/namespaces/ns/builds?watch=true&fieldSelector=metadata.name%3Dx", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot {
		t.Errorf("watch not proxied: %d", resp.StatusCode)
	}
	resp = h.do("GET", "/apis/build.openshift.io/v1/namespaces/ns/builds/x", nil)
	resp.Body.Close()
	resp = h.do("GET", "/apis/build.openshift.io/v1/namespaces/ns/builds/y", nil)
	resp.Body.Close()
	got := h.fd.stats.snapshot()
	if got["WATCH /apis/build.openshift.io/v1/namespaces/{ns}/builds"] != 1 || got["GET /apis/build.openshift.io/v1/namespaces/{ns}/builds/{name}"] != 2 {
		t.Errorf("stats = %v", got)
	}
	// Own subresources refuse other methods.
	resp = h.do("GET", "/apis/build.openshift.io/v1/namespaces/ns/buildconfigs/app/instantiate", nil)
	if st := readStatus(t, resp); st.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET instantiate: %+v", st)
	}
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t)
	resp := h.doToken("bad", "GET", "/apis/build.openshift.io/v1/namespaces/ns/builds/x/log", nil)
	expectStatus(t, resp, http.StatusUnauthorized, "Unauthorized")
	// No credentials: anonymous, then denied by authorisation.
	h.access.allow = func(u string, _ authorizationv1.ResourceAttributes) bool { return u != "system:anonymous" }
	resp = h.doToken("", "GET", "/apis/build.openshift.io/v1/namespaces/ns/builds/x/log", nil)
	expectStatus(t, resp, http.StatusForbidden, `builds.build.openshift.io "x" is forbidden: User "system:anonymous" cannot get resource "builds/log" in API group "build.openshift.io" in the namespace "ns"`)
	// TokenReview results are cached.
	for range 3 {
		resp = h.do("GET", "/apis/build.openshift.io/v1/namespaces/ns/builds/x/log", nil)
		resp.Body.Close()
	}
	n := 0
	for _, a := range h.kube.Actions() {
		if a.GetResource().Resource == "tokenreviews" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d TokenReviews for 1 bad + 3 good requests, want 2", n)
	}
}

func TestProxy(t *testing.T) {
	events := make(chan string)
	upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Query().Get("watch") == "true":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			for {
				select {
				case ev := <-events:
					fmt.Fprintln(w, ev)
					w.(http.Flusher).Flush()
				case <-r.Context().Done():
					return
				}
			}
		case r.Method == http.MethodPost:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"admission webhook \"validation.build.openshift.io\" denied the request: BuildConfig.build.openshift.io \"x\" is invalid: spec.runPolicy: Invalid value","reason":"Invalid","code":422}`)
		default:
			fmt.Fprintf(w, "auth=%s path=%s query=%s", r.Header.Get("Authorization"), r.URL.Path, r.URL.RawQuery)
		}
	}))
	upstream.EnableHTTP2 = true
	upstream.StartTLS()
	defer upstream.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: upstream.Certificate().Raw})
	target, _ := url.Parse(upstream.URL)
	c := newChaos(Chaos{}, 1)
	proxy, err := newProxy(target, caPEM, c, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(proxy)
	defer front.Close()

	req, _ := http.NewRequest("GET", front.URL+"/api/v1/namespaces/ns/pods?limit=1", nil)
	req.Header.Set("Authorization", "Bearer abc")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "auth=Bearer abc path=/api/v1/namespaces/ns/pods query=limit=1" {
		t.Errorf("proxied request = %q", b)
	}

	resp, err = http.Post(front.URL+"/apis/build.openshift.io/v1/namespaces/ns/buildconfigs", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, resp, 422, `BuildConfig.build.openshift.io "x" is invalid: spec.runPolicy: Invalid value`)

	// A watch streams events as they come and is dropped after WatchDropEvery.
	c.set(Chaos{WatchDropEvery: 300 * time.Millisecond})
	start := time.Now()
	resp, err = http.Get(front.URL + "/apis/build.openshift.io/v1/namespaces/ns/builds?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	events <- `{"type":"ADDED"}`
	line, err := br.ReadString('\n')
	if err != nil || line != "{\"type\":\"ADDED\"}\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
	_, err = io.ReadAll(br)
	resp.Body.Close()
	if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
		t.Errorf("watch ended after %s (err %v), want about 300ms", d, err)
	}
}
