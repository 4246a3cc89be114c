package sim

import (
	"context"
	"io"
	"time"
)

// Key names one build.
type Key struct{ Namespace, Name string }

// Logs holds each build's log as OpenShift's log endpoint would serve it:
// lines with the time they were written. The executor appends; the front
// door's builds/log handler reads and follows.
type Logs interface {
	// Append adds one line (without trailing newline) stamped now.
	Append(k Key, line string)
	// Close marks the log complete (the build is terminal); followers end.
	Close(k Key)
	// Read returns the lines written at or after since (zero: all) and
	// whether the log is closed.
	Read(k Key, since time.Time) (lines []Line, closed bool)
	// Changed returns a channel closed at the next Append or Close of k.
	Changed(k Key) <-chan struct{}
	// Delete forgets the log (build pruned or deleted).
	Delete(k Key)
}

// Line is one log line.
type Line struct {
	Time time.Time
	Text string
}

// Sources hands the body of a binary upload (instantiatebinary) to the
// executor running that build.
type Sources interface {
	// Deliver extracts body (gzip'd tar, plain tar or zip; a single file
	// named asFile when asFile != "") into the build's source directory.
	// It blocks until the executor has taken the source or ctx ends, and
	// returns an error the front door reports as 500 InternalError (and the
	// build is failed with the extract message) when the archive is bad.
	Deliver(ctx context.Context, k Key, asFile string, body io.Reader) error
	// Await is called by the executor of a binary build once it runs: it
	// returns the directory holding the extracted source, or ctx's error
	// (the build is cancelled or timed out waiting).
	Await(ctx context.Context, k Key) (dir string, err error)
}
