// Package buildlog copies an OpenShift build log to the step's output as it
// is written, surviving cut streams without printing a line twice or losing
// one.
//
// The log is requested with timestamps=true. Each line's timestamp is
// stripped before printing (the text passes through unchanged) and remembered
// as the resume position: the last printed line's timestamp and how many
// printed lines carry exactly that timestamp. After a cut the stream is
// reopened with sinceTime and the lines up to the position are skipped.
// sinceTime has one-second resolution, so a resume re-reads the whole second
// of the position; a read cut before it gets past the position only costs
// time, and every read that gets past it adds lines, whatever the cut rate.
//
// OpenShift writes some error texts into the stream without a timestamp
// (e.g. "error while getting build logs, could not retrieve build pod ...").
// Such a text is printed unchanged, at its place, once: it is identified by
// the timestamped line it follows (or the start of the log) and by how often
// that text occurred there, so a re-read that delivers it again prints
// nothing. A text placed before the position is never printed: all of the
// log there has been printed already, and OpenShift writes these texts where
// a stream ends, not between lines that follow.
//
// End of stream is only a hint: the build's phase, observed through a
// buildwatch.Tracker, decides when the log is complete. A follow stream the
// server ended cleanly (as it does when the build's container ends) counts
// as the first of the reads that prove the end, so a build whose log was
// not cut costs two reads: the follow, and one read of the last second.
// Once the build is terminal the log is read again without follow, with no
// budget of reads:
// as long as the server answers and the caller's context allows, until clean
// reads that agree on where the log ends prove the end (see proof), so a
// stream the server closed early (it does so silently on copy errors) still
// ends complete. A read cut early, cleanly or by a broken connection, is
// repeated at once; server errors, and reads that bring only error texts,
// get a backoff (at most a second) that is reset once a read delivers log
// lines again.
package buildlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
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
	// Warn receives one-line notices (reconnects while the build runs).
	Warn func(string)
	// Backoff between reads that bring no log lines (server errors, error
	// texts) and between reconnects while the build runs; reset once a read
	// delivers log lines again.
	Backoff wait.Backoff
	// TerminalGrace is how long an open stream may outlive the build's
	// terminal phase before it is closed and the tail re-read.
	TerminalGrace time.Duration

	pos   position
	lines atomic.Int64 // printed lines; read by Lines from other goroutines
	// notes are the untimestamped texts printed so far. Such texts are
	// the server's own error messages, not build output (the kubelet
	// stamps every line the build writes); each is printed once in a run,
	// wherever and however often the server writes it again.
	notes map[string]bool
}

// DefaultBackoff is used when Follower.Backoff is zero. Its cap is low
// because the finished log is read within the driver's log grace, and a log
// read is cheap for the server; oc retries without any backoff.
var DefaultBackoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 1 << 30, Cap: time.Second}

// position is where the printed log ends: the last printed timestamped line
// (its timestamp and how many printed lines carry exactly that timestamp).
type position struct {
	at    time.Time
	count int
}

// Lines returns how many lines have been printed so far. It may be called
// while Run runs.
func (f *Follower) Lines() int { return int(f.lines.Load()) }

// Run copies the log until the build is terminal and the log is complete, or
// ctx ends. It returns nil when the log is known complete; an error says why
// it may not be (the build outcome is unaffected). Run does not give up on
// its own while the server answers: the caller bounds it with ctx.
func (f *Follower) Run(ctx context.Context) error {
	if f.Backoff.Duration == 0 {
		f.Backoff = DefaultBackoff
	}
	if f.TerminalGrace == 0 {
		f.TerminalGrace = 10 * time.Second
	}
	st := &runState{backoff: f.Backoff}
	for {
		if ctx.Err() != nil {
			return st.incomplete(ctx)
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
				return st.incomplete(ctx)
			}
		}
		switch b.Status.Phase {
		case buildv1.BuildPhaseCancelled, buildv1.BuildPhaseError:
			// OpenShift keeps no retrievable log for these phases.
			return nil
		}
		var end bool
		var err error
		if buildwatch.Terminal(b.Status.Phase) {
			end, err = f.readFinished(ctx, st)
		} else {
			end, err = f.readRunning(ctx, st, changed)
		}
		if end {
			return err
		}
	}
}

// runState is what Run carries from one read to the next.
type runState struct {
	backoff wait.Backoff
	done    proof
	reads   int    // reads of the finished build's log
	last    string // why the last of them fell short
}

// readRunning follows the log of a running build once; the stream ends when
// the server closes it, and is reopened after a backoff or as soon as the
// build changes. It reports whether Run ends, and with what.
func (f *Follower) readRunning(ctx context.Context, st *runState, changed <-chan struct{}) (bool, error) {
	r := f.read(ctx, true)
	if r.werr != nil {
		return true, r.werr
	}
	if r.stamped {
		st.backoff = f.Backoff
	}
	st.done.observe(r)
	if r.err == nil && r.notes == 0 && r.note == "" && r.caughtUp {
		// The server ended the stream cleanly, as it does when the build's
		// container ends: likely the end of the log, so it counts as the
		// first of the agreeing reads once the build is over, and the
		// next is a short read of the last second, not a whole re-read.
		// A cut that only looked clean costs nothing: a later read that
		// brings more lines drops this agreement.
		st.done.reset()
		st.done.add(r)
		// The phase follows the container's end; reopening the stream
		// before it arrives would cost a read for nothing.
		if !f.await(ctx, changed, cleanEndWait) {
			return true, st.incomplete(ctx)
		}
		return false, nil
	}
	if r.pastPosition() || r.err != nil {
		st.done.reset()
	}
	if r.err != nil && ctx.Err() == nil {
		f.warn(fmt.Sprintf("build log stream interrupted (%s); reconnecting", shorten(r.err)))
	}
	if !f.sleep(ctx, &st.backoff, changed) {
		return true, st.incomplete(ctx)
	}
	return false, nil
}

// cleanEndWait is how long a follow stream that ended cleanly waits for the
// build to change (to its terminal phase) before it is reopened.
const cleanEndWait = 2 * time.Second

// await waits up to d for changed; false when ctx ended.
func (f *Follower) await(ctx context.Context, changed <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-changed:
	case <-ctx.Done():
		return false
	}
	return true
}

// readFinished reads the finished build's log once, without follow, and
// weighs what the read says about the log's end. It reports whether Run
// ends, and with what.
func (f *Follower) readFinished(ctx context.Context, st *runState) (bool, error) {
	r := f.read(ctx, false)
	if r.werr != nil {
		return true, r.werr
	}
	st.reads++
	// A read that failed because ctx ended says nothing about the server:
	// the shortfall reported stays the last one the server caused.
	if s := r.shortfall(); s != "" && ctx.Err() == nil {
		st.last = s
	}
	st.done.observe(r)
	// Only a read that reached the position says anything about the end
	// of the log; reads cut before it leave the proof as it is, and so
	// does one that broke right at the position.
	switch {
	case !r.caughtUp:
	case r.clean():
		if st.done.add(r) {
			return true, f.finish(r)
		}
	case r.pastPosition():
		// A read that added lines and then ended cleanly is evidence of
		// the end like any clean read: the first of the agreeing ones.
		st.done.reset()
		if r.err == nil && r.notes == 0 {
			st.done.add(r)
		}
	}
	if r.stamped {
		st.backoff = f.Backoff
	}
	// A stream that merely ended early is read again at once; a failing
	// server, or one that sends only its own error texts, gets the
	// backoff.
	if r.failed() && !f.sleep(ctx, &st.backoff, nil) {
		return true, st.incomplete(ctx)
	}
	return false, nil
}

// incomplete is Run's answer when ctx ends before the log is proven
// complete.
func (st *runState) incomplete(ctx context.Context) error {
	if st.reads == 0 {
		return fmt.Errorf("the build log may be incomplete: %w", ctx.Err())
	}
	if st.last == "" {
		return fmt.Errorf("the build log may be incomplete after %d reads of the finished build's log: %w", st.reads, ctx.Err())
	}
	return fmt.Errorf("the build log may be incomplete after %d reads of the finished build's log (last shortfall: %s): %w",
		st.reads, st.last, ctx.Err())
}

// weakProof is how many agreeing reads prove the end of a log that streams
// are seen to be cut around (see proof).
const weakProof = 8

// strongerProof is how many agreeing reads prove the end when each of them
// delivered more lines than any stream seen cut.
const strongerProof = 4

// proof collects the evidence that a finished log is complete: clean reads
// that reached the position and added nothing, with the same unterminated
// tail, and no read in between that delivered anything past the position.
// The read that brought the last lines counts as the first of them if it
// ended cleanly: it is as much a clean end at the same place. (Not counting
// it cost one more uncut read, at 7% a read under the chaos test's cuts, on
// a log whose last second is long.) Reads cut before the position say
// nothing about what follows it and are ignored, so the reads need not be
// consecutive: under heavy chaos two consecutive uncut reads are rare (at 7%
// a read, some 200 reads).
//
// A clean read that ends exactly at the position may itself have been cut
// there. Proxies and OpenShift's chaos alike cut after a few lines, and with
// sinceTime's one-second resolution a stream often has only a few lines up
// to the position, so such cuts are common. Two agreeing reads suffice when
// no stream was seen cut in this run, or when each delivered more than twice
// as many lines as any stream seen cut (the longest cut seen underestimates
// how far cuts reach, hence the margin), strongerProof when each delivered
// more than any cut stream; otherwise weakProof reads are needed, each of which a cut
// would have had to hit exactly.
type proof struct {
	agreed   int
	tail     string
	minLines int // the fewest lines one of the agreeing reads delivered
	maxCut   int // the most lines a stream seen cut delivered
	cutSeen  bool
}

// observe notes a stream that was certainly cut: it broke, or it ended
// before the position.
func (p *proof) observe(r readResult) {
	if r.opened && (r.err != nil || !r.caughtUp) {
		p.maxCut = max(p.maxCut, r.lines)
		p.cutSeen = true
	}
}

// reset drops the agreement after a read that reached the position and
// disagreed; what is known about cuts stays.
func (p *proof) reset() { p.agreed = 0 }

// add counts one clean read that reached the position and added nothing;
// it reports whether the log is now proven complete.
func (p *proof) add(r readResult) bool {
	if p.agreed > 0 && r.tail == p.tail {
		p.agreed++
		p.minLines = min(p.minLines, r.lines)
	} else {
		p.agreed, p.tail, p.minLines = 1, r.tail, r.lines
	}
	if p.agreed < 2 {
		return false
	}
	switch {
	case !p.cutSeen, p.minLines > 2*p.maxCut+1, p.agreed >= weakProof:
		return true
	}
	// Reads that each delivered more lines than any stream seen cut are
	// less likely cuts: four of them agree. (A log whose last second
	// holds about as many lines as the cuts reach would otherwise need
	// weakProof reads, each of which must also escape the cuts: more than
	// the log grace allows at 90% cuts.) A false end needs every one of
	// them cut exactly at the position: for cuts spread over the first 12
	// lines, at most about 0.2%; far less the fewer lines the last second
	// holds.
	return p.agreed >= strongerProof && p.minLines > p.maxCut
}

// finish prints the log's unterminated last line, if any: it was held back
// because it might have been a line cut in the middle.
func (f *Follower) finish(r readResult) error {
	if r.tail == "" || !r.tailNew {
		return nil
	}
	return f.print(r.tailText + "\n")
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
	opened   bool   // the server answered with a stream
	lines    int    // complete lines the stream delivered
	added    int    // new timestamped lines printed
	notes    int    // new untimestamped lines printed
	stamped  bool   // the stream delivered at least one timestamped line
	note     string // the stream's last untimestamped text, new or not
	caughtUp bool   // the stream re-delivered every line up to the position
	tail     string // an unterminated last line, not printed
	tailText string // tail without its timestamp
	tailNew  bool   // tail lies past the position
	partial  bool   // the stream broke in the middle of a line
	err      error  // the request or the stream failed
	werr     error  // writing to Out failed: Run ends
}

// clean reports whether the read ended without error and added nothing.
func (r readResult) clean() bool { return r.err == nil && r.added == 0 && r.notes == 0 }

// pastPosition reports whether the stream delivered something after the
// position: lines printed now, or the start of a line before it broke.
func (r readResult) pastPosition() bool {
	return r.added > 0 || r.notes > 0 || r.partial
}

// failed reports whether the server failed, or answered with nothing but
// its own error text, without the read making progress: worth a backoff,
// not an instant retry. A stream that delivered log lines before it broke or
// before its error text is an early end like any other: the server is
// serving the log.
//
// Under heavy chaos backoffs decide how long the finished log takes: with
// 5 s steps a run of server errors cost more of the log grace than all the
// reads did, and streams broken after a few lines (half of all cuts) cost
// 250 ms each. See DefaultBackoff.
func (r readResult) failed() bool {
	return r.added == 0 && !r.stamped && (r.err != nil || r.note != "")
}

// shortfall says why a read did not add to the log or prove it complete.
func (r readResult) shortfall() string {
	switch {
	case r.err != nil:
		return shorten(r.err)
	case r.note != "":
		return fmt.Sprintf("the server wrote %q", shortenText(strings.TrimSuffix(r.note, "\n")))
	case !r.caughtUp:
		return "the stream ended before the last printed line"
	}
	return ""
}

// read opens one log stream and prints the lines past the position.
func (f *Follower) read(ctx context.Context, follow bool) readResult {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if follow {
		go f.closeAfterTerminal(sctx, cancel)
	}
	opts := &buildv1.BuildLogOptions{Follow: follow, Timestamps: true}
	if !f.pos.at.IsZero() {
		// The server applies sinceTime per second: the stream restarts at
		// the beginning of the position's second.
		since := metav1.NewTime(f.pos.at.Truncate(time.Second))
		opts.SinceTime = &since
	}
	rc, err := f.Client.Get().Namespace(f.Namespace).Resource("builds").Name(f.Build).SubResource("log").
		VersionedParams(opts, buildscheme.ParameterCodec).Stream(sctx)
	if err != nil {
		return readResult{err: fmt.Errorf("opening the log of build %s: %w", f.Build, err)}
	}
	defer rc.Close()
	return f.copy(rc)
}

// closeAfterTerminal never lets a follow stream hang once the build is over:
// it closes the stream after TerminalGrace and lets Run re-read the tail.
func (f *Follower) closeAfterTerminal(ctx context.Context, cancel func()) {
	for {
		// Take the channel before checking, or a change in between would
		// go unnoticed.
		changed := f.Tracker.Changed()
		if f.Tracker.Done() {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
	t := time.NewTimer(f.TerminalGrace)
	defer t.Stop()
	select {
	case <-t.C:
		cancel()
	case <-ctx.Done():
	}
}

// copy prints the complete lines of one stream that come after the
// position. A final line without a newline is never printed here: it may be
// a line cut in the middle. It is returned as tail; Run prints it once the
// finished log is proven to end with it.
func (f *Follower) copy(r io.Reader) readResult {
	br := bufio.NewReaderSize(r, 64<<10)
	s := stream{caughtUp: f.pos.at.IsZero()}
	res := readResult{opened: true}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if !errors.Is(err, io.EOF) {
				res.err = fmt.Errorf("reading the log stream: %w", err)
				res.partial = line != ""
			} else if line != "" {
				l := parseLine(line)
				res.tail, res.tailText, res.tailNew = line, l.text, f.isNew(&s, l)
				if !l.stamped {
					// OpenShift writes its error texts without a newline
					// and then ends the stream.
					res.note = l.text
				}
			}
			res.caughtUp = s.caughtUp
			return res
		}
		res.lines++
		if err := f.emit(&s, parseLine(line), &res); err != nil {
			res.werr = err
			return res
		}
	}
}

// logLine is one line of the stream, split into timestamp and text.
type logLine struct {
	ts      time.Time
	stamped bool
	text    string
}

func parseLine(line string) logLine {
	ts, text, ok := splitTimestamp(line)
	return logLine{ts: ts, stamped: ok, text: text}
}

// stream is where one response stands relative to the position.
type stream struct {
	stamped  bool      // a timestamped line was seen
	cur      time.Time // the timestamp of the last one
	curN     int       // how many lines of the stream carried cur
	caughtUp bool
}

// atPosition reports whether the stream stands exactly at the position:
// right after the last printed timestamped line, or at the start of a log of
// which no timestamped line has been printed.
func (s *stream) atPosition(p *position) bool {
	if !s.stamped {
		return p.at.IsZero()
	}
	return s.cur.Equal(p.at) && s.curN == p.count
}

// isNew reports whether l, coming next in the stream, lies past the
// position. Timestamps only grow along the log, so a line is new if its
// timestamp is later, or equal with more lines of it than were printed. An
// untimestamped text is new only at the position, and only if it was never
// printed (see Follower.notes).
func (f *Follower) isNew(s *stream, l logLine) bool {
	p := &f.pos
	if !l.stamped {
		return s.atPosition(p) && !f.notes[l.text]
	}
	n := 1
	if s.stamped && l.ts.Equal(s.cur) {
		n = s.curN + 1
	}
	return p.at.IsZero() || l.ts.After(p.at) || l.ts.Equal(p.at) && n > p.count
}

// advance moves the stream past l.
func (s *stream) advance(l logLine) {
	if !l.stamped {
		return
	}
	if s.stamped && l.ts.Equal(s.cur) {
		s.curN++
	} else {
		s.cur, s.curN = l.ts, 1
	}
	s.stamped = true
}

// emit prints l if it is past the position, and moves the position.
func (f *Follower) emit(s *stream, l logLine, res *readResult) error {
	isNew := f.isNew(s, l)
	s.advance(l)
	if l.stamped {
		res.stamped = true
	} else {
		res.note = l.text
	}
	if isNew {
		if err := f.print(l.text); err != nil {
			return err
		}
		if l.stamped {
			f.pos = position{at: l.ts, count: s.curN}
			res.added++
		} else {
			if f.notes == nil {
				f.notes = map[string]bool{}
			}
			f.notes[l.text] = true
			res.notes++
		}
	}
	if l.stamped && s.atPosition(&f.pos) {
		s.caughtUp = true
	}
	return nil
}

func (f *Follower) print(text string) error {
	if _, err := io.WriteString(f.Out, text); err != nil {
		return fmt.Errorf("writing the build log: %w", err)
	}
	f.lines.Add(1)
	return nil
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

func shorten(err error) string { return shortenText(err.Error()) }

func shortenText(s string) string {
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
