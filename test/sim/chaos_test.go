package sim

import (
	"encoding/pem"
	"errors"
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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestChaosErrorRate(t *testing.T) {
	c := newChaos(Chaos{ErrorRate: 0.2}, 42)
	codes := map[int32]int{}
	for range 10000 {
		if st := c.failure(); st != nil {
			codes[st.ErrStatus.Code]++
		}
	}
	n := codes[500] + codes[503]
	if n < 1800 || n > 2200 || codes[500] < 800 || codes[503] < 800 || len(codes) != 2 {
		t.Errorf("failures at rate 0.2 over 10000: %v", codes)
	}
	// Same seed, same choices.
	a, b := newChaos(Chaos{ErrorRate: 0.5, LogCutRate: 0.5}, 7), newChaos(Chaos{ErrorRate: 0.5, LogCutRate: 0.5}, 7)
	for range 100 {
		if (a.failure() == nil) != (b.failure() == nil) || (a.logCut() == nil) != (b.logCut() == nil) {
			t.Fatal("same seed, different choices")
		}
	}
	if newChaos(Chaos{}, 1).failure() != nil || newChaos(Chaos{}, 1).logCut() != nil {
		t.Error("zero Chaos injects")
	}
}

func TestChaosBeforeSideEffects(t *testing.T) {
	h := newHarness(t, storedBC(nil), storedBuild(buildv1.BuildPhaseComplete))
	h.fd.chaos.set(Chaos{ErrorRate: 1})
	before := len(h.builds.Actions())
	for _, r := range []struct{ method, path string }{
		{"POST", instantiatePath},
		{"POST", binaryPath},
		{"GET", logPath},
		{"GET", "/apis/build.openshift.io/v1/namespaces/ns/builds?watch=true"},
	} {
		resp := h.do(r.method, r.path, strings.NewReader(`{"metadata":{"name":"app"}}`))
		st := readStatus(t, resp)
		if st.Code != 500 && st.Code != 503 {
			t.Errorf("%s %s: %d, want 500 or 503", r.method, r.path, st.Code)
		}
	}
	if len(h.builds.Actions()) != before || len(h.kube.Actions()) != 0 || len(h.proxied) != 0 {
		t.Errorf("a failed request did something: %v %v", h.builds.Actions()[before:], h.kube.Actions())
	}
	// Other APIs are never failed.
	resp := h.do("GET", "/api/v1/namespaces/ns/pods", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot {
		t.Errorf("core API request failed under chaos: %d", resp.StatusCode)
	}
	bc, _ := h.builds.BuildV1().BuildConfigs("ns").Get(t.Context(), "app", metav1.GetOptions{})
	if bc.Status.LastVersion != 0 {
		t.Errorf("lastVersion bumped by a failed instantiate")
	}
}

// blockingBody blocks reads until closed.
type blockingBody struct{ closed chan struct{} }

func (b *blockingBody) Read([]byte) (int, error) {
	<-b.closed
	return 0, errors.New("read on closed body")
}

func (b *blockingBody) Close() error {
	select {
	case <-b.closed:
	default:
		close(b.closed)
	}
	return nil
}

func TestDroppingBody(t *testing.T) {
	for _, clean := range []bool{true, false} {
		start := time.Now()
		d := newDroppingBody(&blockingBody{closed: make(chan struct{})}, 100*time.Millisecond, clean)
		_, err := io.ReadAll(d)
		if clean && err != nil || !clean && !errors.Is(err, errAbortStream) {
			t.Errorf("clean=%v: err %v", clean, err)
		}
		if time.Since(start) < 100*time.Millisecond {
			t.Errorf("dropped early")
		}
		_ = d.Close()
	}
}

// TestChaosLostAnswerBuildConfigWrites: BuildConfig creates, updates and
// patches reach kube-apiserver (the object is written), then the client
// gets 500 InternalError or a broken connection. Failed writes, dry runs
// and other requests keep their answers.
func TestChaosLostAnswerBuildConfigWrites(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	upstream := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.RequestURI())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/conflict"):
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"conflict","reason":"Conflict","code":409}`)
		case r.Method == http.MethodPost:
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"kind":"BuildConfig","apiVersion":"build.openshift.io/v1","metadata":{"name":"app"}}`)
		default:
			fmt.Fprint(w, `{"kind":"BuildConfig","apiVersion":"build.openshift.io/v1","metadata":{"name":"app"}}`)
		}
	}))
	defer upstream.Close()
	target, _ := url.Parse(upstream.URL)
	c := newChaos(Chaos{LostAnswerRate: 1}, 5)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: upstream.Certificate().Raw})
	proxy, err := newProxy(target, caPEM, c, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(proxy)
	defer front.Close()
	const bcs = "/apis/build.openshift.io/v1/namespaces/ns/buildconfigs"
	do := func(method, path string) (*http.Response, error) {
		req, _ := http.NewRequest(method, front.URL+path, strings.NewReader(`{"metadata":{"name":"app"}}`))
		req.Header.Set("Content-Type", "application/json")
		return http.DefaultClient.Do(req)
	}
	got := map[string]bool{}
	for i := 0; i < 12; i++ {
		for _, m := range []struct{ method, path string }{{"POST", bcs}, {"PUT", bcs + "/app"}, {"PATCH", bcs + "/app"}} {
			mu.Lock()
			before := len(seen)
			mu.Unlock()
			resp, err := do(m.method, m.path)
			if err != nil {
				got["broken"] = true
			} else {
				st := readStatus(t, resp)
				if st.Code != 500 || st.Reason != metav1.StatusReasonInternalError || !strings.Contains(st.Message, "answer was lost") {
					t.Fatalf("%s %s: %+v, want a lost answer", m.method, m.path, st)
				}
				got["500"] = true
			}
			mu.Lock()
			n := len(seen)
			mu.Unlock()
			if n != before+1 {
				t.Fatalf("%s %s did not reach the API server", m.method, m.path)
			}
		}
	}
	if !got["500"] || !got["broken"] {
		t.Errorf("outcomes %v, want both 500 and broken connections", got)
	}
	// Not lost: failures, dry runs, reads, other resources and subresources.
	for _, m := range []struct {
		method, path string
		code         int
	}{
		{"PUT", bcs + "/conflict", 409},
		{"POST", bcs + "?dryRun=All", 201},
		{"GET", bcs + "/app", 200},
		{"POST", "/apis/build.openshift.io/v1/namespaces/ns/builds", 201},
		{"PUT", "/apis/build.openshift.io/v1/namespaces/ns/builds/app-1", 200},
		{"POST", "/api/v1/namespaces/ns/configmaps", 201},
	} {
		resp, err := do(m.method, m.path)
		if err != nil {
			t.Fatalf("%s %s: %v", m.method, m.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != m.code {
			t.Errorf("%s %s: %d, want %d", m.method, m.path, resp.StatusCode, m.code)
		}
	}
}
