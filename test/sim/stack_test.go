package sim

// The front door and the controller together over fake clientsets, a test
// registry and the real source store, served over HTTP/2 with TLS as the
// simulator serves steps: what happens to an instantiatebinary upload whose
// client goes away, chaos answers lost after the work was done, cancelling
// a build in New.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildfake "github.com/openshift/client-go/build/clientset/versioned/fake"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

type stackHarness struct {
	t      *testing.T
	ctx    context.Context
	builds *buildfake.Clientset
	kube   *kubefake.Clientset
	fd     *frontDoor
	c      *Controller
	logs   Logs
	reg    string
	srv    *httptest.Server
	client *http.Client

	mu     sync.Mutex
	phases map[string][]buildv1.BuildPhase
	events map[string][]buildv1.Build // every ADDED/MODIFIED build seen
}

// newStackHarness runs the front door and the controller over one fake
// clientset holding BuildConfig app (Docker, output to the test registry,
// strategy env env).
func newStackHarness(t *testing.T, env ...corev1.EnvVar) *stackHarness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	reg := newTestRegistry(t)
	bc := storedBC(func(bc *buildv1.BuildConfig) {
		bc.Spec.Output.To = &corev1.ObjectReference{Kind: "DockerImage", Name: reg + "/ns/app:latest"}
		bc.Spec.Strategy.DockerStrategy.Env = env
	})
	h := &stackHarness{t: t, ctx: ctx, builds: buildfake.NewSimpleClientset(bc), kube: kubefake.NewSimpleClientset(testNode()),
		logs: NewLogs(), reg: reg, phases: map[string][]buildv1.BuildPhase{}, events: map[string][]buildv1.Build{}}
	h.kube.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview).DeepCopy()
		if tr.Spec.Token == goodToken {
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: stepUser}}
		}
		return true, tr, nil
	})
	work := t.TempDir()
	sources := NewSources(work + "/uploads")
	h.c = newController(ControllerOptions{Logs: h.logs, Sources: sources, Registry: reg, WorkDir: work, Out: testWriter{t}}, noWatchList{h.builds}, h.kube)
	h.c.snippetDelay = 200 * time.Millisecond
	h.fd = &frontDoor{
		kube:             h.kube,
		builds:           h.builds,
		authn:            newTokenReviewer(h.kube),
		access:           &fakeAccess{allow: func(string, authorizationv1.ResourceAttributes) bool { return true }},
		logs:             h.logs,
		sources:          sources,
		chaos:            newChaos(Chaos{}, 3),
		stats:            newRequestStats(),
		proxy:            http.NotFoundHandler(),
		binaryTimeout:    time.Minute,
		logWaitTimeout:   5 * time.Second,
		followCheck:      time.Second,
		deliverFailGrace: 5 * time.Second,
		base:             ctx,
		logf:             t.Logf,
	}
	w, err := h.builds.BuildV1().Builds("ns").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev := range w.ResultChan() {
			b, ok := ev.Object.(*buildv1.Build)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			h.mu.Lock()
			h.events[b.Name] = append(h.events[b.Name], *b.DeepCopy())
			if s := h.phases[b.Name]; len(s) == 0 || s[len(s)-1] != b.Status.Phase {
				h.phases[b.Name] = append(s, b.Status.Phase)
			}
			h.mu.Unlock()
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := h.c.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}()
	h.srv = httptest.NewUnstartedServer(h.fd)
	h.srv.EnableHTTP2 = true
	h.srv.StartTLS()
	h.client = h.srv.Client()
	t.Cleanup(func() {
		h.srv.Close()
		cancel()
		w.Stop()
		<-done
	})
	return h
}

// request sends a request with the good token under ctx.
func (h *stackHarness) request(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, h.srv.URL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+goodToken)
	return h.client.Do(req)
}

func (h *stackHarness) get(name string) *buildv1.Build {
	h.t.Helper()
	b, err := h.builds.BuildV1().Builds("ns").Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

func (h *stackHarness) log(name string) string {
	lines, _ := h.logs.Read(Key{"ns", name}, time.Time{})
	var out []string
	for _, l := range lines {
		out = append(out, l.Text)
	}
	return strings.Join(out, "\n")
}

// postUpload sends an instantiatebinary request in the background; the
// channel gets its error, or "answered <code>" if the server answered.
func (h *stackHarness) postUpload(ctx context.Context, body io.Reader) <-chan error {
	errc := make(chan error, 1)
	go func() {
		resp, err := h.request(ctx, "POST", binaryPath, body)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("answered %d", resp.StatusCode)
		}
		errc <- err
	}()
	return errc
}

// waitFor polls until cond holds for the build.
func (h *stackHarness) waitFor(name, what string, d time.Duration, cond func(*buildv1.Build) bool) *buildv1.Build {
	h.t.Helper()
	return pollBuild(h.t, h.ctx, h.builds, name, what, d, cond, h.log)
}

func (h *stackHarness) waitEnd(name string) *buildv1.Build {
	h.t.Helper()
	return h.waitFor(name, "ended", time.Minute, func(b *buildv1.Build) bool { return isTerminal(b.Status.Phase) })
}

func (h *stackHarness) seen(name string) []buildv1.BuildPhase {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]buildv1.BuildPhase(nil), h.phases[name]...)
}

func hasPhase(phases []buildv1.BuildPhase, p buildv1.BuildPhase) bool {
	for _, x := range phases {
		if x == p {
			return true
		}
	}
	return false
}

// watchedBody is a request body that reports how much the client has read
// from it and when it has read all of it.
type watchedBody struct {
	r    io.Reader
	n    atomic.Int64
	done chan struct{}
	once sync.Once
}

func newWatchedBody(b []byte) *watchedBody {
	return &watchedBody{r: bytes.NewReader(b), done: make(chan struct{})}
}

func (w *watchedBody) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	w.n.Add(int64(n))
	if err == io.EOF {
		w.once.Do(func() { close(w.done) })
	}
	return n, err
}

const simpleDockerfile = "FROM scratch\nCOPY hello.txt /\n"

// TestInstantiateBinaryClientGoneWhileNew: the client sends a small body
// and gives up while the build has not started (§4.3 step 7). The server
// keeps waiting, streams the body it had received, and the build runs on
// to Complete: no auto-cancel.
func TestInstantiateBinaryClientGoneWhileNew(t *testing.T) {
	h := newStackHarness(t, corev1.EnvVar{Name: KnobStartDelay, Value: "2s"})
	body := newWatchedBody(tarGz(t, map[string]string{"Dockerfile": simpleDockerfile, "hello.txt": "hi"}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := h.postUpload(ctx, body)
	b := h.waitFor("app-1", "created", 10*time.Second, func(*buildv1.Build) bool { return true })
	select {
	case <-body.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not send its body")
	}
	time.Sleep(200 * time.Millisecond) // on the wire
	if p := h.get("app-1").Status.Phase; p != buildv1.BuildPhaseNew && p != buildv1.BuildPhasePending {
		t.Fatalf("build %s already %s when the client gives up", b.Name, p)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want context.Canceled", err)
	}
	done := h.waitEnd("app-1")
	if done.Status.Phase != buildv1.BuildPhaseComplete || done.Status.Cancelled {
		t.Fatalf("build ended %s/%s cancelled=%v, want Complete and not cancelled\n%s", done.Status.Phase, done.Status.Reason, done.Status.Cancelled, h.log("app-1"))
	}
	if got := h.seen("app-1"); !hasPhase(got, buildv1.BuildPhaseRunning) {
		t.Errorf("phases %v: never Running", got)
	}
	img, err := pullImage(h.ctx, h.reg, h.reg+"/ns/app:latest")
	if err != nil {
		t.Fatal(err)
	}
	if files, _ := imageFiles(t, img); files["hello.txt"] != "hi" {
		t.Errorf("image files %v", files)
	}
}

// TestInstantiateBinaryClientGoneMidBody: the client gives up in the middle
// of a large body while the build is Pending. The server delivers the part
// it had buffered; the build runs, cannot unpack the truncated archive and
// fails as the builder does. It is not auto-cancelled.
func TestInstantiateBinaryClientGoneMidBody(t *testing.T) {
	h := newStackHarness(t, corev1.EnvVar{Name: KnobStartDelay, Value: "2s"})
	big := make([]byte, 8<<20)
	_, _ = rand.Read(big) // incompressible: the gzip'd tar is as large
	body := newWatchedBody(tarGz(t, map[string]string{"Dockerfile": simpleDockerfile, "hello.txt": "hi", "big.bin": string(big)}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := h.postUpload(ctx, body)
	h.waitFor("app-1", "created", 10*time.Second, func(*buildv1.Build) bool { return true })
	// Wait until the upload stalls (flow control: nothing is read yet).
	var last int64 = -1
	for i := 0; ; i++ {
		time.Sleep(200 * time.Millisecond)
		n := body.n.Load()
		if n > 0 && n == last {
			break
		}
		if i > 50 {
			t.Fatalf("the upload never stalled (%d bytes sent)", n)
		}
		last = n
	}
	if p := h.get("app-1").Status.Phase; p != buildv1.BuildPhaseNew && p != buildv1.BuildPhasePending {
		t.Fatalf("build already %s when the client gives up", p)
	}
	sent := body.n.Load()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want context.Canceled", err)
	}
	done := h.waitEnd("app-1")
	log := h.log("app-1")
	t.Logf("client sent %d of %d bytes; build ended %s/%s", sent, len(big), done.Status.Phase, done.Status.Reason)
	if done.Status.Cancelled || done.Status.Phase == buildv1.BuildPhaseCancelled {
		t.Fatalf("the build was cancelled: %+v", done.Status)
	}
	if got := h.seen("app-1"); !hasPhase(got, buildv1.BuildPhaseRunning) {
		t.Errorf("phases %v: never Running", got)
	}
	if done.Status.Phase != buildv1.BuildPhaseFailed || done.Status.Reason != buildv1.StatusReasonFetchSourceFailed ||
		!strings.Contains(log, "error: "+ExtractFailedMessage) {
		t.Errorf("build ended %s/%s, want Failed/FetchSourceFailed with the extract message\n%s", done.Status.Phase, done.Status.Reason, log)
	}
}

// TestChaosLostAnswerInstantiate: the build is created and lastVersion
// bumped, but the client gets 500 InternalError or a broken connection.
func TestChaosLostAnswerInstantiate(t *testing.T) {
	h := newStackHarness(t, corev1.EnvVar{Name: KnobDuration, Value: "1h"})
	h.fd.chaos.set(Chaos{LostAnswerRate: 1})
	got500, gotBroken := false, false
	for i := 1; i <= 20 && !(got500 && gotBroken); i++ {
		resp, err := h.request(h.ctx, "POST", instantiatePath, strings.NewReader(`{"metadata":{"name":"app"}}`))
		switch {
		case err != nil:
			gotBroken = true
		default:
			st := readStatus(t, resp)
			if st.Code != 500 || st.Reason != metav1.StatusReasonInternalError || !strings.Contains(st.Message, "answer was lost") {
				t.Fatalf("answer %+v, want a 500 InternalError", st)
			}
			got500 = true
		}
		name := fmt.Sprintf("app-%d", i)
		if _, err := h.builds.BuildV1().Builds("ns").Get(h.ctx, name, metav1.GetOptions{}); err != nil {
			t.Fatalf("request %d (lost answer): build %s not created: %v", i, name, err)
		}
		bc, _ := h.builds.BuildV1().BuildConfigs("ns").Get(h.ctx, "app", metav1.GetOptions{})
		if bc.Status.LastVersion != int64(i) {
			t.Fatalf("lastVersion %d after %d instantiates", bc.Status.LastVersion, i)
		}
	}
	if !got500 || !gotBroken {
		t.Errorf("500 seen %v, broken connection seen %v; want both", got500, gotBroken)
	}
	// Without chaos: 201.
	h.fd.chaos.set(Chaos{})
	resp, err := h.request(h.ctx, "POST", instantiatePath, strings.NewReader(`{"metadata":{"name":"app"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("without chaos: %d", resp.StatusCode)
	}
}

// TestChaosLostAnswerInstantiateBinary: the build is created, runs and gets
// the whole body, then the answer is lost (500 or a broken connection); the
// build is not auto-cancelled and completes with that source.
func TestChaosLostAnswerInstantiateBinary(t *testing.T) {
	h := newStackHarness(t, corev1.EnvVar{Name: KnobStartDelay, Value: "300ms"})
	h.fd.chaos.set(Chaos{LostAnswerRate: 1})
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("app-%d", i)
		up := tarGz(t, map[string]string{"Dockerfile": simpleDockerfile, "hello.txt": name})
		resp, err := h.request(h.ctx, "POST", binaryPath, bytes.NewReader(up))
		if err == nil {
			st := readStatus(t, resp)
			if st.Code != 500 || st.Reason != metav1.StatusReasonInternalError {
				t.Fatalf("%s: answer %+v, want a 500 InternalError", name, st)
			}
		} else {
			t.Logf("%s: broken connection: %v", name, err)
		}
		b := h.get(name)
		if b.Status.Phase != buildv1.BuildPhaseRunning && b.Status.Phase != buildv1.BuildPhaseComplete {
			t.Errorf("%s is %s at the lost answer, want Running", name, b.Status.Phase)
		}
		done := h.waitEnd(name)
		if done.Status.Phase != buildv1.BuildPhaseComplete || done.Status.Cancelled {
			t.Fatalf("%s ended %s cancelled=%v, want Complete\n%s", name, done.Status.Phase, done.Status.Cancelled, h.log(name))
		}
		img, err := pullImage(h.ctx, h.reg, h.reg+"/ns/app:latest")
		if err != nil {
			t.Fatal(err)
		}
		if files, _ := imageFiles(t, img); files["hello.txt"] != name {
			t.Errorf("%s: the build did not get the whole body: %v", name, files)
		}
	}
}

// TestCancelNewBuildAndLog: a build cancelled while New (queued behind a
// running one) is Cancelled at once and its log answers 400 "was cancelled.
// No logs are available." (full stop).
func TestCancelNewBuildAndLog(t *testing.T) {
	h := newStackHarness(t, corev1.EnvVar{Name: KnobDuration, Value: "1h"})
	for range 2 {
		resp, err := h.request(h.ctx, "POST", instantiatePath, strings.NewReader(`{"metadata":{"name":"app"}}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	h.waitFor("app-1", "ran", 30*time.Second, func(b *buildv1.Build) bool { return b.Status.Phase == buildv1.BuildPhaseRunning })
	if p := h.get("app-2").Status.Phase; p != buildv1.BuildPhaseNew {
		t.Fatalf("app-2 is %s, want New (Serial, behind app-1)", p)
	}
	b := h.get("app-2")
	b.Status.Cancelled = true
	if _, err := h.builds.BuildV1().Builds("ns").Update(h.ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := h.waitEnd("app-2")
	if done.Status.Phase != buildv1.BuildPhaseCancelled || done.Status.Reason != buildv1.StatusReasonCancelledBuild {
		t.Errorf("app-2 ended %s/%s", done.Status.Phase, done.Status.Reason)
	}
	if got := h.seen("app-2"); hasPhase(got, buildv1.BuildPhaseRunning) || hasPhase(got, buildv1.BuildPhasePending) {
		t.Errorf("the cancelled New build ran: %v", got)
	}
	resp, err := h.request(h.ctx, "GET", "/apis/build.openshift.io/v1/namespaces/ns/builds/app-2/log?follow=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, resp, 400, "build app-2 was cancelled. No logs are available.")
}
