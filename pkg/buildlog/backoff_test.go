package buildlog

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ocbuild/ocbuild/pkg/buildwatch"
)

// scriptedLog serves a fixed log of lines within one second (so every
// resume re-reads all of it), each request as scripted: an error status, a
// clean end or a broken connection after some lines, or the whole log once
// the script is used up. It records when requests arrive.
type scriptedLog struct {
	lines []string
	steps []step

	mu       sync.Mutex
	arrivals []time.Time
}

type step struct {
	status int  // non-zero: answer with this status
	lines  int  // deliver this many lines, then end
	broken bool // end by breaking the connection
}

func (s *scriptedLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.arrivals = append(s.arrivals, time.Now())
	st := step{lines: len(s.lines)}
	if len(s.steps) > 0 {
		st, s.steps = s.steps[0], s.steps[1:]
	}
	s.mu.Unlock()
	if st.status != 0 {
		http.Error(w, "the server is having a bad day", st.status)
		return
	}
	w.WriteHeader(http.StatusOK)
	for _, l := range s.lines[:st.lines] {
		_, _ = io.WriteString(w, l)
	}
	if st.broken {
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
}

func (s *scriptedLog) requests() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.arrivals...)
}

// A run of server errors must not leave the log unread for long once the
// server recovers: the finished log is read within the driver's log grace.
func TestServerErrorsDelayTheNextReadAtMostASecond(t *testing.T) {
	lines, want := oneSecondLog(10)
	sl := &scriptedLog{lines: lines, steps: []step{{status: 503}, {status: 500}, {status: 503}, {status: 502}, {status: 503}}}
	srv := httptest.NewServer(sl)
	defer srv.Close()
	f, out := follower(t, srv, buildv1.BuildPhaseComplete)
	f.Backoff = wait.Backoff{} // the default
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Fatalf("log differs from the build's log: %s", firstDifference(out.String(), want))
	}
	arrivals := sl.requests()
	for i := 1; i < len(arrivals); i++ {
		// The cap, its jitter and some slack for a loaded machine.
		if gap := arrivals[i].Sub(arrivals[i-1]); gap > 1500*time.Millisecond {
			t.Errorf("request %d came %s after the one before", i+1, gap.Round(time.Millisecond))
		}
	}
}

// A stream that breaks after a few lines, before the position, is an early
// end like a clean one: the server is serving the log, so it is read again
// at once, not after a backoff.
func TestStreamBrokenAfterLinesIsReadAgainAtOnce(t *testing.T) {
	lines, want := oneSecondLog(10)
	sl := &scriptedLog{lines: lines, steps: []step{{lines: 6}, {lines: 2, broken: true}, {lines: 3, broken: true}, {lines: 1, broken: true}}}
	srv := httptest.NewServer(sl)
	defer srv.Close()
	f, out := follower(t, srv, buildv1.BuildPhaseComplete)
	// A backoff would outlast the test.
	f.Backoff = wait.Backoff{Duration: time.Hour, Factor: 1, Steps: 1 << 20}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Run(ctx); err != nil {
		t.Fatalf("Run: %v (%d requests)", err, len(sl.requests()))
	}
	if out.String() != want {
		t.Fatalf("log differs from the build's log: %s", firstDifference(out.String(), want))
	}
}

// The read that brings a finished log's last lines and ends cleanly is the
// first of the agreeing reads: one more clean read proves the end.
func TestReadBringingTheLastLinesCountsTowardsTheEnd(t *testing.T) {
	lines, want := oneSecondLog(10)
	sl := &scriptedLog{lines: lines}
	srv := httptest.NewServer(sl)
	defer srv.Close()
	f, out := follower(t, srv, buildv1.BuildPhaseComplete)
	if err := f.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Fatalf("log differs from the build's log: %s", firstDifference(out.String(), want))
	}
	if n := len(sl.requests()); n != 2 {
		t.Errorf("%d log requests, want 2", n)
	}
}

// A follow stream the server ends cleanly with the build's end is the first
// of the agreeing reads: the finished log costs one short read more, two
// requests in all, the second resuming at the last second (sinceTime).
func TestCleanFollowEndIsTheFirstAgreeingRead(t *testing.T) {
	lines, want := oneSecondLog(10)
	sl := &scriptedLog{lines: lines}
	srv := httptest.NewServer(sl)
	defer srv.Close()
	f, out := follower(t, srv, buildv1.BuildPhaseRunning)
	endAfterFirstRead(t, f, sl)
	if err := f.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Fatalf("log differs from the build's log: %s", firstDifference(out.String(), want))
	}
	if n := len(sl.requests()); n != 2 {
		t.Errorf("%d log requests, want 2 (follow, then one proving read)", n)
	}
}

// A follow stream that ended cleanly before the log did (a proxy's cut
// looks the same) is not the end: the lines after it are still printed.
func TestCleanFollowEndBeforeTheLogEndsIsNotTheEnd(t *testing.T) {
	lines, want := oneSecondLog(10)
	sl := &scriptedLog{lines: lines, steps: []step{{lines: 6}}}
	srv := httptest.NewServer(sl)
	defer srv.Close()
	f, out := follower(t, srv, buildv1.BuildPhaseRunning)
	endAfterFirstRead(t, f, sl)
	if err := f.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Fatalf("log differs from the build's log: %s", firstDifference(out.String(), want))
	}
	if n := len(sl.requests()); n != 3 {
		t.Errorf("%d log requests, want 3 (follow cut, the rest, the proof)", n)
	}
}

// endAfterFirstRead turns f's build Complete once the first log request
// has arrived, as the phase follows the build container's end.
func endAfterFirstRead(t *testing.T, f *Follower, sl *scriptedLog) {
	t.Helper()
	go func() {
		_ = wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			return len(sl.requests()) > 0, nil
		})
		b := f.Tracker.Latest().DeepCopy()
		b.Status.Phase = buildv1.BuildPhaseComplete
		buildwatch.SetForTest(f.Tracker, b)
	}()
}
