package buildlog

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
)

const podError = `error while getting build logs, could not retrieve build pod ns/app-1-build : pods "app-1-build" not found`

// noteLog serves a timestamped log with a text without timestamp written
// into the stream on every read, as OpenShift does with its own errors.
// sinceTime is honoured per second; the note keeps its place after line at,
// so it leads the stream when sinceTime filtered the lines before it.
type noteLog struct {
	lines []string // timestamped, newline-terminated
	note  string   // written as is: with or without a newline
	at    int      // the note follows lines[:at]
	once  bool     // only the first read carries the note

	mu       sync.Mutex
	cuts     []int // per request: cut after this many lines; none when used up
	requests int
}

func (s *noteLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	note := s.note
	if s.once && s.requests > 1 {
		note = ""
	}
	cut := -1
	if len(s.cuts) > 0 {
		cut, s.cuts = s.cuts[0], s.cuts[1:]
	}
	s.mu.Unlock()
	var since time.Time
	if v := r.URL.Query().Get("sinceTime"); v != "" {
		since, _ = time.Parse(time.RFC3339, v)
	}
	n := 0
	for i := 0; i <= len(s.lines); i++ {
		if i == s.at {
			_, _ = io.WriteString(w, note)
		}
		if i == len(s.lines) {
			return
		}
		if ts, _, _ := splitTimestamp(s.lines[i]); ts.Before(since) {
			continue
		}
		if n == cut {
			return
		}
		_, _ = io.WriteString(w, s.lines[i])
		n++
	}
}

func (s *noteLog) requestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// The server writes some error texts into the log without a timestamp even
// with timestamps=true. Such a text is printed once, unchanged, at its place,
// however many reads deliver it again, and the follower still ends.
func TestUntimestampedTextIsPrintedOnce(t *testing.T) {
	lines, _ := stamped(10, 2) // five timestamps, 0.4 s apart: resumes re-read a second
	texts := make([]string, len(lines))
	for i, l := range lines {
		_, texts[i], _ = splitTimestamp(l)
	}
	join := func(a []string) string { return strings.Join(a, "") }
	cases := []struct {
		name  string
		lines []string
		note  string
		at    int
		once  bool
		cuts  []int
		want  string
	}{
		{"the whole log", nil, podError + "\n", 0, false, nil, podError + "\n"},
		{"the whole log, unterminated", nil, podError, 0, false, nil, podError + "\n"},
		{"after the log", lines, podError + "\n", 10, false, nil, join(texts) + podError + "\n"},
		// OpenShift writes it so, and then closes the stream.
		{"after the log, unterminated", lines, podError, 10, false, nil, join(texts) + podError + "\n"},
		{"before the log", lines, podError + "\n", 0, false, []int{3, 5}, podError + "\n" + join(texts)},
		{"inside the log, with resumes", lines, podError + "\n", 5, false, []int{3, 0, 1, 4, 2}, join(texts[:5]) + podError + "\n" + join(texts[5:])},
		{"inside the log, first seen on a resume", lines, podError + "\n", 5, false, []int{5, 1, 0}, join(texts[:5]) + podError + "\n" + join(texts[5:])},
		// A text that is gone on the next read must not take the place of
		// the line after it, which carries the same timestamp.
		{"between lines of one timestamp, on the first read only", lines, podError + "\n", 1, true, []int{1}, join(texts[:1]) + podError + "\n" + join(texts[1:])},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nl := &noteLog{lines: tc.lines, note: tc.note, at: tc.at, once: tc.once, cuts: tc.cuts}
			srv := httptest.NewServer(nl)
			defer srv.Close()
			f, out := follower(t, srv, buildv1.BuildPhaseFailed)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := f.Run(ctx)
			got := out.String()
			if n := strings.Count(got, podError); n != 1 {
				t.Fatalf("the error text was printed %d times in %d requests (Run: %v)", n, nl.requestCount(), err)
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
			if f.Lines() != strings.Count(tc.want, "\n") {
				t.Errorf("Lines() = %d, want %d", f.Lines(), strings.Count(tc.want, "\n"))
			}
		})
	}
}

// Reads that bring nothing but an error text already known (or placed before
// the position) are no progress: the follower backs off between them instead
// of spinning, and reports the text when its time runs out.
func TestReadsWithOnlyAnErrorTextBackOff(t *testing.T) {
	lines, _ := stamped(5, 1)
	var mu sync.Mutex
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		first := requests == 1
		mu.Unlock()
		if first {
			// The first read is cut after three lines; then the pod is gone.
			_, _ = io.WriteString(w, lines[0]+lines[1]+lines[2])
			return
		}
		_, _ = io.WriteString(w, podError+"\n")
	}))
	defer srv.Close()
	f, out := follower(t, srv, buildv1.BuildPhaseFailed)
	f.Backoff.Duration, f.Backoff.Factor, f.Backoff.Cap = 10*time.Millisecond, 2, 80*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	err := f.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "incomplete") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want an incomplete-log error ending with the deadline", err)
	}
	if !strings.Contains(err.Error(), "could not retrieve build pod") {
		t.Errorf("the error %q does not say what the server wrote", err)
	}
	mu.Lock()
	n := requests
	mu.Unlock()
	// 10+20+40+80+80+... ms in 600 ms: about ten reads; a loop without
	// backoff makes thousands.
	if n > 20 {
		t.Errorf("%d requests in 600 ms: no backoff between reads bringing only an error text", n)
	}
	if got := strings.Count(out.String(), "\n"); got != 3 {
		t.Errorf("printed %d lines, want the 3 delivered: %q", got, out.String())
	}
}
