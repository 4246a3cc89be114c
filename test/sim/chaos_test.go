package sim

import (
	"errors"
	"io"
	"net/http"
	"strings"
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
