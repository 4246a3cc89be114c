package buildlog

import (
	"bytes"
	"context"
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
}

func (s *logServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls = append(s.calls, r.URL.RawQuery)
	cut := -1
	if len(s.cuts) > 0 {
		cut, s.cuts = s.cuts[0], s.cuts[1:]
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
	cfg := &rest.Config{Host: srv.URL, APIPath: "/apis", ContentConfig: rest.ContentConfig{
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
	done := make(chan error, 1)
	go func() { done <- f.Run(context.Background()) }()
	// The build ends while the stream hangs.
	for f.Lines() < 2 {
		<-time.After(time.Millisecond)
	}
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

func TestEndlessCutsReportAnIncompleteLog(t *testing.T) {
	lines, _ := stamped(20, 1)
	cuts := make([]int, 100)
	for i := range cuts {
		cuts[i] = 0 // every stream ends before its first line
	}
	cuts[0] = 5
	srv := httptest.NewServer(&logServer{lines: lines, cuts: cuts})
	defer srv.Close()
	f, _ := follower(t, srv, buildv1.BuildPhaseComplete)
	f.MaxFinalReads = 4
	if err := f.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("err = %v, want an incomplete-log error", err)
	}
}
