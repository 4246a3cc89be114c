package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
)

// logLine is one record of a container log.
type logLine struct {
	time   time.Time
	stream string // stdout or stderr
	// text is the line as the container wrote it, with its newline unless
	// the record is a partial line (tag P).
	text []byte
}

// parseLogLine parses "<RFC3339Nano> <stream> <F|P> <text>\n".
func parseLogLine(b []byte) (logLine, error) {
	b = bytes.TrimSuffix(b, []byte("\n"))
	parts := bytes.SplitN(b, []byte(" "), 4)
	if len(parts) < 3 {
		return logLine{}, fmt.Errorf("malformed log record %q", b)
	}
	t, err := time.Parse(time.RFC3339Nano, string(parts[0]))
	if err != nil {
		return logLine{}, fmt.Errorf("malformed log record %q: %w", b, err)
	}
	var text []byte
	if len(parts) == 4 {
		text = parts[3]
	}
	if string(parts[2]) != "P" {
		text = append(text, '\n')
	}
	return logLine{time: t, stream: string(parts[1]), text: text}, nil
}

// containerLogs serves pods/log: the real kubelet's semantics for
// timestamps, tailLines, sinceTime/sinceSeconds, limitBytes and follow
// (which ends when the container does).
func (k *kubelet) containerLogs(ctx context.Context, namespace, pod, container string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	if opts.Previous {
		return nil, errdefs.InvalidInput(noPreviousContainer(pod, container)) // answered by logRequests already
	}
	if _, err := k.readRecord(namespace, pod, container); err != nil {
		return nil, err
	}
	var since time.Time
	switch {
	case opts.SinceSeconds > 0:
		since = time.Now().Add(-time.Duration(opts.SinceSeconds) * time.Second)
	case !opts.SinceTime.IsZero():
		since = opts.SinceTime
	}
	pr, pw := io.Pipe()
	go func() {
		var out io.Writer = pw
		if opts.LimitBytes > 0 {
			out = &limitWriter{w: pw, left: opts.LimitBytes}
		}
		write := func(l logLine) error {
			if l.time.Before(since) {
				return nil
			}
			if opts.Timestamps {
				if _, err := io.WriteString(out, l.time.Format(time.RFC3339Nano)+" "); err != nil {
					return err
				}
			}
			_, err := out.Write(l.text)
			return err
		}
		tail := -1 // every line
		if opts.Tail > 0 {
			tail = opts.Tail
		} else if tailLinesZero(ctx) {
			tail = 0
		}
		err := k.readLog(ctx, namespace, pod, container, false, opts.Follow, func(existing []logLine) error {
			if tail >= 0 && tail < len(existing) {
				existing = existing[len(existing)-tail:]
			}
			for _, l := range existing {
				if err := write(l); err != nil {
					return err
				}
			}
			return nil
		}, write)
		if errors.Is(err, errLimitReached) {
			err = nil
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// tailLinesZeroKey marks a request with tailLines=0, which
// virtual-kubelet's ContainerLogOpts cannot tell from no tailLines (0 both).
type tailLinesZeroKey struct{}

// logRequests answers what virtual-kubelet's logs handler cannot say as
// the real kubelet does: previous=true is refused with the real kubelet's
// words (steps never restart: restartPolicy Never), without the handler's
// prefix; tailLines=0 is marked in the request's context for containerLogs.
func logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rest, ok := strings.CutPrefix(req.URL.Path, "/containerLogs/")
		if !ok {
			h.ServeHTTP(w, req)
			return
		}
		q := req.URL.Query()
		if prev, _ := strconv.ParseBool(q.Get("previous")); prev {
			if parts := strings.Split(rest, "/"); len(parts) == 3 {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, noPreviousContainer(parts[1], parts[2]))
				return
			}
		}
		if q.Get("tailLines") == "0" {
			req = req.WithContext(context.WithValue(req.Context(), tailLinesZeroKey{}, true))
		}
		h.ServeHTTP(w, req)
	})
}

func noPreviousContainer(pod, container string) string {
	return fmt.Sprintf("previous terminated container %q in pod %q not found", container, pod)
}

func tailLinesZero(ctx context.Context) bool {
	v, _ := ctx.Value(tailLinesZeroKey{}).(bool)
	return v
}

var errLimitReached = errors.New("limitBytes reached")

// limitWriter writes at most left bytes, then fails with errLimitReached.
type limitWriter struct {
	w    io.Writer
	left int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errLimitReached
	}
	cut := len(p) > l.left
	if cut {
		p = p[:l.left]
	}
	n, err := l.w.Write(p)
	l.left -= n
	if err == nil && cut {
		err = errLimitReached
	}
	return n, err
}

// pollInterval is how often a followed log is checked for new lines and
// its container for its end.
const pollInterval = 100 * time.Millisecond

// readLog reads a container's log. Unless fromEnd, the lines already
// written are handed to existing in one slice (so a caller can tail them);
// then, if follow, every new line goes to each until the container has
// terminated and its log is read to the end, or ctx ends.
func (k *kubelet) readLog(ctx context.Context, namespace, pod, container string, fromEnd, follow bool, existing func([]logLine) error, each func(logLine) error) error {
	rec, err := k.readRecord(namespace, pod, container)
	if err != nil {
		return err
	}
	var f *os.File
	open := func() error {
		if f != nil {
			return nil
		}
		var err error
		f, err = os.Open(rec.Log)
		if os.IsNotExist(err) {
			return nil // a waiting container has no log yet
		}
		if err != nil {
			return fmt.Errorf("opening the log of container %q: %w", container, err)
		}
		if fromEnd {
			_, err = f.Seek(0, io.SeekEnd)
		}
		return err
	}
	if err := open(); err != nil {
		return err
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var r *bufio.Reader
	var pending []byte // a record read only in part (the writer is mid-write)
	// next returns the complete records written since the last call.
	next := func() ([]logLine, error) {
		if f == nil {
			if err := open(); err != nil || f == nil {
				return nil, err
			}
		}
		if r == nil {
			r = bufio.NewReader(f)
		}
		var lines []logLine
		for {
			b, err := r.ReadBytes('\n')
			pending = append(pending, b...)
			if err == io.EOF {
				return lines, nil
			}
			if err != nil {
				return lines, fmt.Errorf("reading the log of container %q: %w", container, err)
			}
			l, perr := parseLogLine(pending)
			pending = nil
			if perr != nil {
				return lines, perr
			}
			lines = append(lines, l)
		}
	}
	lines, err := next()
	if err != nil {
		return err
	}
	if existing != nil {
		if err := existing(lines); err != nil {
			return err
		}
	}
	if !follow {
		return nil
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		// Whether the container has ended is read before the log, so that
		// the read after it sees everything the container wrote.
		rec, err := k.readRecord(namespace, pod, container)
		if err != nil {
			return err
		}
		ended := rec.State == stateTerminated
		lines, err := next()
		if err != nil {
			return err
		}
		for _, l := range lines {
			if err := each(l); err != nil {
				return err
			}
		}
		if ended {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
