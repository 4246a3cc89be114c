// Package buildlog copies an OpenShift build log to the step's output as it
// is written, surviving cut streams without printing a line twice or losing
// one.
//
// The log is requested with timestamps=true. Each line's timestamp is
// stripped before printing (the text passes through unchanged) and remembered
// as the resume position: after a cut the stream is reopened with sinceTime
// and the lines up to that position are skipped. End of stream is only a hint:
// the build's phase, observed through a buildwatch.Tracker, decides when the
// log is complete. Once the build is terminal the log is read again without
// follow until a read adds nothing, so a stream the server closed early (it
// does so silently on copy errors) still ends complete.
package buildlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildscheme "github.com/openshift/client-go/build/clientset/versioned/scheme"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/ocbuild/ocbuild/pkg/buildwatch"
)

// Follower streams one build's log.
type Follower struct {
	Client    rest.Interface // the build.openshift.io/v1 REST client
	Namespace string
	Build     string
	Out       io.Writer
	Tracker   *buildwatch.Tracker
	// Warn receives one-line notices (reconnects, incomplete logs).
	Warn func(string)
	// Backoff between reconnects while the build runs; reset after progress.
	Backoff wait.Backoff
	// TerminalGrace is how long an open stream may outlive the build's
	// terminal phase before it is closed and the tail re-read.
	TerminalGrace time.Duration
	// MaxFinalReads bounds the re-reads after the build ended that bring
	// nothing new.
	MaxFinalReads int

	pos position
}

// DefaultBackoff is used when Follower.Backoff is zero.
var DefaultBackoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 1 << 30, Cap: 5 * time.Second}

// position is the last printed line: its timestamp and how many lines carried
// exactly that timestamp (lines without one inherit the previous timestamp).
type position struct {
	at    time.Time
	count int
	lines int // total lines printed
}

// Lines returns how many lines have been printed so far.
func (f *Follower) Lines() int { return f.pos.lines }

// Run copies the log until the build is terminal and the log is complete, or
// ctx ends. It returns nil when the log is known complete; an error says why
// it may not be (the build outcome is unaffected).
func (f *Follower) Run(ctx context.Context) error {
	if f.Backoff.Duration == 0 {
		f.Backoff = DefaultBackoff
	}
	if f.TerminalGrace == 0 {
		f.TerminalGrace = 10 * time.Second
	}
	if f.MaxFinalReads == 0 {
		f.MaxFinalReads = 12
	}
	backoff := f.Backoff
	stalled := 0 // reads of the finished log that brought nothing new
	agree := 0   // consecutive clean reads that ended at our position
	lastTail := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		changed := f.Tracker.Changed()
		b := f.Tracker.Latest()
		if f.Tracker.Deleted() {
			return fmt.Errorf("build %s was deleted; its log is gone", f.Build)
		}
		if b == nil || !buildwatch.Started(b.Status.Phase) {
			// Open the stream only once the build runs: before that the
			// server blocks for 30 s and then answers 400.
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		switch b.Status.Phase {
		case buildv1.BuildPhaseCancelled, buildv1.BuildPhaseError:
			// OpenShift keeps no retrievable log for these phases.
			return nil
		}
		terminal := buildwatch.Terminal(b.Status.Phase)
		r := f.read(ctx, !terminal)
		added, err := r.added, r.err
		if terminal {
			// A read can end early without an error (the server closes the
			// stream silently on copy errors, a proxy may cut it). The log
			// is complete only when reads that re-delivered everything up
			// to our position end cleanly twice in a row, adding nothing.
			if err == nil && added == 0 && r.caughtUp {
				if r.tail == lastTail {
					agree++
				} else {
					agree, lastTail = 1, r.tail
				}
				if agree >= 2 {
					if r.tail != "" {
						// The log ends without a newline; it was never printed.
						_, text, _ := splitTimestamp(r.tail)
						if _, werr := io.WriteString(f.Out, text+"\n"); werr != nil {
							return werr
						}
						f.pos.lines++
					}
					return nil
				}
				continue
			}
			agree = 0
			if added > 0 {
				stalled, backoff = 0, f.Backoff
				continue
			}
			stalled++
			if stalled >= f.MaxFinalReads {
				if err == nil {
					err = errors.New("the stream kept ending early")
				}
				return fmt.Errorf("the build log may be incomplete after %d reads: %w", stalled, err)
			}
			// A stream that merely ended early is read again at once; only
			// a failing server gets the backoff.
			if err != nil && !f.sleep(ctx, &backoff, nil) {
				return ctx.Err()
			}
			continue
		}
		if added > 0 {
			backoff = f.Backoff
		}
		if err != nil && ctx.Err() == nil {
			f.warn(fmt.Sprintf("build log stream interrupted (%v); reconnecting", shorten(err)))
		}
		if !f.sleep(ctx, &backoff, changed) {
			return ctx.Err()
		}
	}
}

func (f *Follower) sleep(ctx context.Context, b *wait.Backoff, wake <-chan struct{}) bool {
	t := time.NewTimer(b.Step())
	defer t.Stop()
	select {
	case <-t.C:
	case <-wake:
	case <-ctx.Done():
		return false
	}
	return true
}

// readResult is what one stream delivered.
type readResult struct {
	added    int    // new lines printed
	tail     string // an unterminated last line, not printed
	caughtUp bool   // the stream re-delivered every line up to the position
	err      error
}

// read opens one log stream and prints the lines past the position.
func (f *Follower) read(ctx context.Context, follow bool) readResult {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if follow {
		// Never hang on a stream once the build is over: close it after a
		// grace period and let the caller re-read the tail.
		go func() {
			for {
				// Take the channel before checking, or a change in
				// between would go unnoticed.
				changed := f.Tracker.Changed()
				if f.Tracker.Done() {
					break
				}
				select {
				case <-changed:
				case <-sctx.Done():
					return
				}
			}
			t := time.NewTimer(f.TerminalGrace)
			defer t.Stop()
			select {
			case <-t.C:
				cancel()
			case <-sctx.Done():
			}
		}()
	}
	opts := &buildv1.BuildLogOptions{Follow: follow, Timestamps: true}
	if !f.pos.at.IsZero() {
		since := metav1.NewTime(f.pos.at.Truncate(time.Second))
		opts.SinceTime = &since
	}
	rc, err := f.Client.Get().Namespace(f.Namespace).Resource("builds").Name(f.Build).SubResource("log").
		VersionedParams(opts, buildscheme.ParameterCodec).Stream(sctx)
	if err != nil {
		return readResult{err: err}
	}
	defer rc.Close()
	return f.copy(rc)
}

// copy prints the complete lines of one stream that come after the
// position. A final line without a newline is never printed here: it may be
// a line cut in the middle. It is returned as tail; Run prints it once two
// reads of the finished log end with the same tail.
func (f *Follower) copy(r io.Reader) readResult {
	br := bufio.NewReaderSize(r, 64<<10)
	startAt, startCount := f.pos.at, f.pos.count
	res := readResult{caughtUp: startAt.IsZero()}
	var cur time.Time // timestamp of the current line in this stream
	seen := 0         // lines in this stream with timestamp equal to f.pos.at
	for {
		line, rerr := br.ReadString('\n')
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				res.tail = line
			} else {
				res.err = rerr
			}
			return res
		}
		ok, werr := f.emit(line, &cur, &seen)
		if werr != nil {
			res.err = werr
			return res
		}
		if ok {
			res.added++
		}
		if cur.After(startAt) || cur.Equal(startAt) && seen >= startCount {
			res.caughtUp = true
		}
	}
}

// emit prints line if it is past the position, and moves the position.
func (f *Follower) emit(line string, cur *time.Time, seen *int) (bool, error) {
	text := line
	if ts, rest, ok := splitTimestamp(line); ok {
		*cur, text = ts, rest
	}
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	switch {
	case !f.pos.at.IsZero() && cur.Before(f.pos.at):
		return false, nil
	case !f.pos.at.IsZero() && cur.Equal(f.pos.at):
		*seen++
		if *seen <= f.pos.count {
			return false, nil
		}
		f.pos.count++
	default:
		f.pos.at, f.pos.count = *cur, 1
		*seen = 1
	}
	if _, err := io.WriteString(f.Out, text); err != nil {
		return false, err
	}
	f.pos.lines++
	return true, nil
}

// splitTimestamp separates the RFC 3339 timestamp the server prefixes to each
// line when timestamps=true.
func splitTimestamp(line string) (time.Time, string, bool) {
	i := strings.IndexByte(line, ' ')
	if i < len("2006-01-02T15:04:05Z") || i > 40 {
		return time.Time{}, line, false
	}
	ts, err := time.Parse(time.RFC3339Nano, line[:i])
	if err != nil {
		return time.Time{}, line, false
	}
	return ts, line[i+1:], true
}

func (f *Follower) warn(s string) {
	if f.Warn != nil {
		f.Warn(s)
	}
}

func shorten(err error) string {
	s := err.Error()
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
