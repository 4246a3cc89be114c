package buildlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildscheme "github.com/openshift/client-go/build/clientset/versioned/scheme"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/ocbuild/ocbuild/pkg/buildwatch"
)

// logServer serves a fixed, timestamped log. Each request's stream may be cut
// after a number of lines (mid-line, without an error, as OpenShift does on
// copy errors).
type logServer struct {
	mu    sync.Mutex
	lines []string
	cuts  []int
	calls []string
	// repeatLastCut applies the last cut to every later request.
	repeatLastCut bool
}

func (s *logServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls = append(s.calls, r.URL.RawQuery)
	cut := -1
	if len(s.cuts) > 0 {
		cut = s.cuts[0]
		if len(s.cuts) > 1 || !s.repeatLastCut {
			s.cuts = s.cuts[1:]
		}
	}
	lines := s.lines
	s.mu.Unlock()
	var since time.Time
	if v := r.URL.Query().Get("sinceTime"); v != "" {
		since, _ = time.Parse(time.RFC3339, v)
	}
	n := 0
	for _, l := range lines {
		ts, _ := time.Parse(time.RFC3339Nano, strings.SplitN(l, " ", 2)[0])
		if ts.Before(since) {
			continue
		}
		if n == cut {
			_, _ = io.WriteString(w, l[:len(l)/2])
			return
		}
		_, _ = io.WriteString(w, l)
		n++
	}
}

func stamped(n, perTimestamp int) ([]string, string) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var lines []string
	var want strings.Builder
	ts := base
	for i := range n {
		if i%perTimestamp == 0 {
			ts = ts.Add(400 * time.Millisecond)
		}
		text := fmt.Sprintf("line %03d", i)
		if i%7 == 3 {
			text = "repeated text" // identical lines must all survive
		}
		lines = append(lines, ts.Format(time.RFC3339Nano)+" "+text+"\n")
		want.WriteString(text + "\n")
	}
	return lines, want.String()
}

func follower(t *testing.T, srv *httptest.Server, phase buildv1.BuildPhase) (*Follower, *bytes.Buffer) {
	t.Helper()
	// QPS -1: no client-side rate limit, so tests that make hundreds of
	// reads stay fast (the step's client allows 20/s).
	cfg := &rest.Config{Host: srv.URL, APIPath: "/apis", QPS: -1, ContentConfig: rest.ContentConfig{
		GroupVersion: &buildv1.GroupVersion, NegotiatedSerializer: buildscheme.Codecs.WithoutConversion()}}
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := &bytes.Buffer{}
	b := &buildv1.Build{ObjectMeta: metav1.ObjectMeta{Name: "app-1"}, Status: buildv1.BuildStatus{Phase: phase}}
	return &Follower{Client: rc, Namespace: "ns", Build: "app-1", Out: out, Tracker: buildwatch.NewTracker(b),
		Backoff: wait.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 1 << 20}}, out
}

func TestResumeAfterCutStreamsPrintsEveryLineOnce(t *testing.T) {
	for _, per := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d lines per timestamp", per), func(t *testing.T) {
			lines, want := stamped(60, per)
			ls := &logServer{lines: lines, cuts: []int{10, 0, 17, 5}}
			srv := httptest.NewServer(ls)
			defer srv.Close()
			f, out := follower(t, srv, buildv1.BuildPhaseComplete)
			if err := f.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			if out.String() != want {
				t.Errorf("log differs from the build's log\n got: %q\nwant: %q", out.String(), want)
			}
			if len(ls.calls) < 5 {
				t.Errorf("only %d requests for four cuts", len(ls.calls))
			}
			for _, q := range ls.calls {
				if !strings.Contains(q, "timestamps=true") {
					t.Errorf("request %q without timestamps=true", q)
				}
			}
			if !strings.Contains(ls.calls[len(ls.calls)-1], "sinceTime=") {
				t.Errorf("resumed request %q has no sinceTime", ls.calls[len(ls.calls)-1])
			}
		})
	}
}

func TestCancelledBuildHasNoLogAndDoesNotHang(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("a cancelled build's log was requested")
	}))
	defer srv.Close()
	f, out := follower(t, srv, buildv1.BuildPhaseCancelled)
	if err := f.Run(context.Background()); err != nil || out.Len() != 0 {
		t.Fatalf("err %v, output %q", err, out)
	}
}

func TestStalledStreamIsClosedOnceTheBuildEnds(t *testing.T) {
	lines, want := stamped(5, 1)
	release := make(chan struct{})
	var calls int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			// Follow stream: two lines, then the server hangs.
			_, _ = io.WriteString(w, lines[0]+lines[1])
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		for _, l := range lines {
			_, _ = io.WriteString(w, l)
		}
	}))
	defer srv.Close()
	defer close(release)
	f, out := follower(t, srv, buildv1.BuildPhaseRunning)
	f.TerminalGrace = 10 * time.Millisecond
	twoLines := make(chan struct{})
	f.Out = &signalWriter{w: out, after: 2, reached: twoLines}
	done := make(chan error, 1)
	go func() { done <- f.Run(context.Background()) }()
	// The build ends while the stream hangs.
	<-twoLines
	b := f.Tracker.Latest().DeepCopy()
	b.Status.Phase = buildv1.BuildPhaseComplete
	setForTest(f.Tracker, b)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the follower hung on a stalled stream after the build ended")
	}
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

// signalWriter closes reached once after lines have been written to w.
type signalWriter struct {
	w       io.Writer
	after   int
	reached chan struct{}
	lines   int
}

func (s *signalWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	before := s.lines
	s.lines += bytes.Count(p[:n], []byte("\n"))
	if before < s.after && s.lines >= s.after {
		close(s.reached)
	}
	return n, err
}

// A re-read of a finished log that is cut before it gets past the lines
// already printed must not be taken for the end of the log.
func TestCutBeforeThePositionIsNotTheEnd(t *testing.T) {
	lines, want := stamped(40, 4) // four lines per timestamp, ~2 per second
	ls := &logServer{lines: lines, cuts: []int{10, 1, 1, 0, 1, 2, 1}}
	srv := httptest.NewServer(ls)
	defer srv.Close()
	f, out := follower(t, srv, buildv1.BuildPhaseComplete)
	if err := f.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Errorf("log incomplete or repeated\n got: %q\nwant: %q", out.String(), want)
	}
}

// Reads of a finished log go on as long as the server answers; only the
// caller's context ends them, and then the log is reported as possibly
// incomplete.
func TestEndlessCutsReportAnIncompleteLog(t *testing.T) {
	lines, _ := stamped(20, 1)
	ls := &logServer{lines: lines, cuts: []int{5, 0}, repeatLastCut: true} // then every stream ends before its first line
	srv := httptest.NewServer(ls)
	defer srv.Close()
	f, out := follower(t, srv, buildv1.BuildPhaseComplete)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := f.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "incomplete") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want an incomplete-log error ending with the deadline", err)
	}
	if got := strings.Count(out.String(), "\n"); got != 5 {
		t.Errorf("printed %d lines, want the 5 delivered", got)
	}
}
