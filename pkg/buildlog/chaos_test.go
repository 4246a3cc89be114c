package buildlog

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
)

// chaosLog serves a fixed timestamped log the way a struggling OpenShift
// does: sinceTime is honoured at one-second resolution (so every resume
// re-reads the whole second), a share of requests fail with 5xx, and most
// streams are cut: cleanly at a line end, cleanly in the middle of a line, or
// by a broken connection. The random source is seeded and requests are
// served one at a time, so a run is deterministic.
type chaosLog struct {
	lines   []string // timestamped, newline-terminated, in order
	stamps  []time.Time
	errRate float64 // share of requests answered with 5xx
	cutRate float64 // share of the other streams that are cut
	maxCut  int     // cut after at most this many lines; 0: anywhere

	mu       sync.Mutex
	rnd      *rand.Rand
	requests int
}

func newChaosLog(lines []string, seed uint64) *chaosLog {
	c := &chaosLog{lines: lines, errRate: 0.3, cutRate: 0.9, rnd: rand.New(rand.NewPCG(seed, seed))}
	for _, l := range lines {
		ts, _, ok := splitTimestamp(l)
		if !ok {
			panic("chaosLog needs timestamped lines: " + l)
		}
		c.stamps = append(c.stamps, ts)
	}
	return c
}

// plan is what one response does, drawn up front so the random sequence does
// not depend on timing.
type plan struct {
	status  int // non-zero: answer with this error status
	cutAt   int // lines delivered before the cut; -1: no cut
	midLine int // >0: then this many bytes of the next line
	reset   bool
}

func (c *chaosLog) plan(delivered int) plan {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	if c.rnd.Float64() < c.errRate {
		return plan{status: []int{500, 502, 503}[c.rnd.IntN(3)]}
	}
	if c.rnd.Float64() >= c.cutRate {
		return plan{cutAt: -1}
	}
	limit := delivered
	if c.maxCut > 0 {
		limit = min(limit, c.maxCut)
	}
	p := plan{cutAt: c.rnd.IntN(limit + 1)}
	switch c.rnd.IntN(3) {
	case 0: // clean end at a line boundary
	case 1: // clean end in the middle of a line
		p.midLine = 1
	case 2: // broken connection, in the middle of a line
		p.midLine, p.reset = 1, true
	}
	if p.midLine > 0 && p.cutAt < delivered {
		p.midLine = 1 + c.rnd.IntN(len(c.lines[p.cutAt])-1)
	} else {
		p.midLine = 0
	}
	return p
}

func (c *chaosLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	first := 0
	if v := r.URL.Query().Get("sinceTime"); v != "" {
		since, err := time.Parse(time.RFC3339, v)
		if err != nil || since.Nanosecond() != 0 {
			http.Error(w, "bad sinceTime "+v, http.StatusBadRequest)
			return
		}
		first = sort.Search(len(c.stamps), func(i int) bool { return !c.stamps[i].Before(since) })
	}
	lines := c.lines[first:]
	p := c.plan(len(lines))
	if p.status != 0 {
		http.Error(w, "the server is having a bad day", p.status)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	if p.cutAt < 0 {
		p.cutAt = len(lines)
	}
	for _, l := range lines[:p.cutAt] {
		_, _ = io.WriteString(w, l)
	}
	if p.midLine > 0 {
		_, _ = io.WriteString(w, lines[p.cutAt][:p.midLine])
	}
	if p.reset {
		// Send what was written, then drop the connection without ending
		// the chunked body: the client sees an unexpected EOF.
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
}

// oneSecondLog returns n numbered lines whose timestamps all fall within the
// same second, three lines per timestamp.
func oneSecondLog(n int) ([]string, string) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var lines []string
	var want strings.Builder
	for i := range n {
		ts := base.Add(time.Duration(i/3) * 50 * time.Microsecond)
		text := fmt.Sprintf("line %05d", i)
		lines = append(lines, ts.Format(time.RFC3339Nano)+" "+text+"\n")
		want.WriteString(text + "\n")
	}
	if !base.Add(time.Duration(n/3) * 50 * time.Microsecond).Before(base.Add(time.Second)) {
		panic("the log does not fit in one second")
	}
	return lines, want.String()
}

// firstDifference describes where got departs from want, line by line.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d: got %q, want %q", i, g[i], w[i])
		}
	}
	return fmt.Sprintf("got %d lines, want %d", len(g)-1, len(w)-1)
}

// A 10,000-line log written within one second, read through 30% server
// errors and 90% cut streams: each resume starts again at the beginning of
// that second, so only reads that get past the position add lines. The log
// must still end complete, every line once, without a budget of reads running
// out.
func TestHarshChaosOneSecondLogEndsComplete(t *testing.T) {
	cases := []struct {
		name   string
		maxCut int
		seed   uint64
	}{
		// Cuts anywhere: many reads bring part of the rest.
		{"cut anywhere", 0, 1},
		// Cuts within the first few lines, as the simulator's chaos does:
		// once past them only an uncut read (7% of reads) brings anything.
		{"cut after a few lines", 11, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lines, want := oneSecondLog(10000)
			cl := newChaosLog(lines, tc.seed)
			cl.maxCut = tc.maxCut
			srv := httptest.NewServer(cl)
			defer srv.Close()
			f, out := follower(t, srv, buildv1.BuildPhaseComplete)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			start := time.Now()
			err := f.Run(ctx)
			elapsed := time.Since(start)
			cl.mu.Lock()
			requests := cl.requests
			cl.mu.Unlock()
			t.Logf("%d requests, %s", requests, elapsed.Round(time.Millisecond))
			if err != nil {
				t.Fatalf("Run: %v (%d lines printed)", err, strings.Count(out.String(), "\n"))
			}
			if got := out.String(); got != want {
				t.Fatalf("log differs from the build's log: %s", firstDifference(got, want))
			}
			if f.Lines() != 10000 {
				t.Errorf("Lines() = %d, want 10000", f.Lines())
			}
		})
	}
}

// Streams cut cleanly exactly at the position look like the end of the log.
// Once streams are seen cut that far, a couple of such reads is not proof.
func TestRepeatedCutsAtThePositionAreNotTheEnd(t *testing.T) {
	lines, want := oneSecondLog(20)
	// Five lines printed by a read that ended cleanly; a cut before the
	// position shows streams are cut; then clean ends exactly at the
	// position: strongerProof-1 of them with the first read.
	cuts := []int{5, 2}
	for range strongerProof - 2 {
		cuts = append(cuts, 5)
	}
	nl := &noteLog{lines: lines, at: -1, cuts: cuts}
	srv := httptest.NewServer(nl)
	defer srv.Close()
	f, out := follower(t, srv, buildv1.BuildPhaseComplete)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != want {
		t.Fatalf("log ended early: %s", firstDifference(got, want))
	}
}
