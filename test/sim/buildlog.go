package sim

// builds/log (§6).

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// parseLogOptions decodes and validates BuildLogOptions from the query.
func parseLogOptions(q url.Values) (*buildv1.BuildLogOptions, *apierrors.StatusError) {
	o := &buildv1.BuildLogOptions{Container: q.Get("container")}
	var err error
	boolean := func(key string, dst *bool) {
		if v := q.Get(key); v != "" && err == nil {
			*dst, err = strconv.ParseBool(v)
		}
	}
	integer := func(key string) *int64 {
		v := q.Get(key)
		if v == "" || err != nil {
			return nil
		}
		var n int64
		n, err = strconv.ParseInt(v, 10, 64)
		return &n
	}
	boolean("follow", &o.Follow)
	boolean("previous", &o.Previous)
	boolean("timestamps", &o.Timestamps)
	boolean("nowait", &o.NoWait)
	boolean("insecureSkipTLSVerifyBackend", &o.InsecureSkipTLSVerifyBackend)
	o.SinceSeconds = integer("sinceSeconds")
	o.TailLines = integer("tailLines")
	o.LimitBytes = integer("limitBytes")
	o.Version = integer("version")
	if v := q.Get("sinceTime"); v != "" && err == nil {
		var t time.Time
		if t, err = time.Parse(time.RFC3339, v); err == nil {
			mt := metav1.NewTime(t)
			o.SinceTime = &mt
		}
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if errs := validateLogOptions(o); len(errs) > 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Group: Group, Kind: "BuildLogOptions"}, "", errs)
	}
	return o, nil
}

// validateLogOptions: the pod log options' rules plus version and previous.
func validateLogOptions(o *buildv1.BuildLogOptions) field.ErrorList {
	var errs field.ErrorList
	if o.TailLines != nil && *o.TailLines < 0 {
		errs = append(errs, field.Invalid(field.NewPath("tailLines"), *o.TailLines, "must be greater than or equal to 0"))
	}
	if o.LimitBytes != nil && *o.LimitBytes < 1 {
		errs = append(errs, field.Invalid(field.NewPath("limitBytes"), *o.LimitBytes, "must be greater than 0"))
	}
	switch {
	case o.SinceSeconds != nil && o.SinceTime != nil:
		errs = append(errs, field.Forbidden(field.NewPath(""), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
	case o.SinceSeconds != nil && *o.SinceSeconds < 1:
		errs = append(errs, field.Invalid(field.NewPath("sinceSeconds"), *o.SinceSeconds, "must be greater than 0"))
	}
	if o.Version != nil && *o.Version <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("version"), *o.Version, "build version must be greater than 0"))
	}
	if o.Version != nil && o.Previous {
		errs = append(errs, field.Invalid(field.NewPath("previous"), o.Previous, "cannot use previous when a version is specified"))
	}
	return errs
}

func (f *frontDoor) serveLog(w http.ResponseWriter, r *http.Request, ns, name string) {
	if _, ok := f.caller(w, r, "get", "builds", "log", ns, name); !ok {
		return
	}
	opts, st := parseLogOptions(r.URL.Query())
	if st != nil {
		writeStatus(w, st)
		return
	}
	ctx := r.Context()
	builds := f.builds.BuildV1().Builds(ns)
	b, err := builds.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		writeStatus(w, statusFrom(err))
		return
	}
	if opts.Previous {
		// The previous build of the same BuildConfig (number - 1).
		bc := b.Annotations[buildv1.BuildConfigAnnotation]
		n, perr := strconv.ParseInt(b.Annotations[buildv1.BuildNumberAnnotation], 10, 64)
		if bc == "" || perr != nil || n <= 1 {
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("build %s has no previous build", name)))
			return
		}
		if b, err = builds.Get(ctx, buildName(bc, n-1), metav1.GetOptions{}); err != nil {
			writeStatus(w, statusFrom(err))
			return
		}
	}
	switch b.Status.Phase {
	case buildv1.BuildPhaseNew, buildv1.BuildPhasePending, "":
		if opts.NoWait {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusOK)
			return
		}
		wctx, cancel := context.WithTimeout(ctx, f.logWaitTimeout)
		started, deleted, err := f.waitForStart(wctx, ns, b.Name)
		cancel()
		switch {
		case deleted:
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("unable to wait for build %s to run: build was deleted", b.Name)))
			return
		case err != nil:
			if ctx.Err() != nil {
				return // the client went away
			}
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("unable to wait for build %s to run: %s", b.Name, waitErrText(err))))
			return
		}
		switch started.Status.Phase {
		case buildv1.BuildPhaseError:
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("build %s encountered an error: No logs are available.", b.Name)))
			return
		case buildv1.BuildPhaseCancelled:
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("build %s was cancelled: No logs are available.", b.Name)))
			return
		}
		b = started
	case buildv1.BuildPhaseCancelled:
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("build %s was cancelled. No logs are available.", b.Name)))
		return
	case buildv1.BuildPhaseError:
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("build %s is in an error state. No logs are available.", b.Name)))
		return
	}
	k := Key{Namespace: ns, Name: b.Name}
	if terminalPhase(b.Status.Phase) {
		// A build that never ran (binary early failure) has no pod.
		if lines, closed := f.logs.Read(k, time.Time{}); len(lines) == 0 && !closed {
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("pod %q not found", buildPodName(b))))
			return
		}
	}
	f.streamLog(w, r, b, opts)
}

// logCursor remembers the stream position in a log read with Read(since):
// the time of the last line read and how many lines carried that time.
type logCursor struct {
	since time.Time
	skip  int
}

// advance takes a read made with since=c.since and returns the lines not
// seen before, moving the cursor past them.
func (c *logCursor) advance(read []Line) []Line {
	i := 0
	for i < len(read) && i < c.skip && read[i].Time.Equal(c.since) {
		i++
	}
	fresh := read[i:]
	if n := len(read); n > 0 {
		last := read[n-1].Time
		same := 0
		for j := n - 1; j >= 0 && read[j].Time.Equal(last); j-- {
			same++
		}
		c.since, c.skip = last, same
	}
	return fresh
}

// logWriter writes log lines with the options' timestamps and byte limit,
// flushing each line, and cuts the stream when chaos says so.
type logWriter struct {
	w          io.Writer
	flush      func()
	timestamps bool
	limit      int64 // < 0: none
	written    int64
	lines      int
	cut        *logCut
	aborted    bool // the cut breaks the connection
	// errText, when set, is written without a timestamp in place of a
	// clean cut's partial line, as OpenShift writes some errors into the
	// stream (Chaos.UntimestampedErrors).
	errText string
}

// write writes one line; false means the stream ends here.
func (lw *logWriter) write(l Line) bool {
	s := l.Text + "\n"
	if lw.timestamps {
		s = l.Time.UTC().Format(time.RFC3339Nano) + " " + s
	}
	if c := lw.cut; c != nil && lw.lines >= c.afterLines {
		if c.clean && lw.errText != "" {
			_, _ = io.WriteString(lw.w, lw.errText+"\n")
		} else if p := min(c.partial, len(s)-1); p > 0 {
			_, _ = io.WriteString(lw.w, s[:p])
		}
		lw.flush()
		lw.aborted = !c.clean
		return false
	}
	if lw.limit >= 0 && lw.written+int64(len(s)) >= lw.limit {
		_, _ = io.WriteString(lw.w, s[:lw.limit-lw.written])
		lw.written = lw.limit
		lw.flush()
		return false
	}
	if _, err := io.WriteString(lw.w, s); err != nil {
		return false
	}
	lw.written += int64(len(s))
	lw.lines++
	lw.flush()
	return true
}

// streamLog writes the build's log: what is there, then (with follow, for a
// build that is not terminal) what is appended until the log is closed.
func (f *frontDoor) streamLog(w http.ResponseWriter, r *http.Request, b *buildv1.Build, opts *buildv1.BuildLogOptions) {
	ctx := r.Context()
	k := Key{Namespace: b.Namespace, Name: b.Name}
	cur := &logCursor{}
	switch {
	case opts.SinceTime != nil:
		cur.since = opts.SinceTime.Time
	case opts.SinceSeconds != nil:
		cur.since = time.Now().Add(-time.Duration(*opts.SinceSeconds) * time.Second)
	}
	rc := http.NewResponseController(w)
	lw := &logWriter{w: w, flush: func() { _ = rc.Flush() }, timestamps: opts.Timestamps, limit: -1, cut: f.chaos.logCut()}
	if f.chaos.get().UntimestampedErrors {
		// openshift-apiserver's buildlog REST writes this text into the
		// stream, never timestamped.
		lw.errText = fmt.Sprintf("error while getting build logs, could not retrieve build pod %s/%s : %s",
			b.Namespace, buildPodName(b), "the server is currently unable to handle the request (injected by the simulator's chaos mode)")
	}
	if opts.LimitBytes != nil {
		lw.limit = *opts.LimitBytes
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	lw.flush()
	defer func() {
		if lw.aborted {
			panic(http.ErrAbortHandler) // break the connection
		}
	}()

	follow := opts.Follow && !terminalPhase(b.Status.Phase)
	changed := f.logs.Changed(k)
	read, closed := f.logs.Read(k, cur.since)
	lines := cur.advance(read)
	if opts.TailLines != nil && int64(len(lines)) > *opts.TailLines {
		lines = lines[int64(len(lines))-*opts.TailLines:]
	}
	for _, l := range lines {
		if !lw.write(l) {
			return
		}
	}
	if !follow {
		return
	}
	check := time.NewTicker(f.followCheck)
	defer check.Stop()
	for !closed {
		final := false
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-check.C:
			// Never follow a build that is gone or over forever.
			nb, err := f.builds.BuildV1().Builds(b.Namespace).Get(ctx, b.Name, metav1.GetOptions{})
			final = apierrors.IsNotFound(err) || (err == nil && terminalPhase(nb.Status.Phase))
		}
		changed = f.logs.Changed(k)
		read, closed = f.logs.Read(k, cur.since)
		for _, l := range cur.advance(read) {
			if !lw.write(l) {
				return
			}
		}
		if final {
			return
		}
	}
}
