package driver

// Following the build: its log streamed into the step log, its phase
// watched to the end, --start-timeout for New/Pending, and the cancel when
// the step is stopped meanwhile.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	buildv1 "github.com/openshift/api/build/v1"

	"github.com/ocbuild/ocbuild/pkg/buildlog"
	"github.com/ocbuild/ocbuild/pkg/buildwatch"
	"github.com/ocbuild/ocbuild/pkg/cancellation"
	"github.com/ocbuild/ocbuild/pkg/failure"
)

// follow streams the log and waits for the terminal phase.
func (d *Driver) follow(ctx context.Context, o Options, b *buildv1.Build) *Outcome {
	tracker := buildwatch.NewTracker(b)
	builds := d.Clients.Builds.Builds(o.Namespace)

	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatch()
	type watched struct {
		b   *buildv1.Build
		err error
	}
	done := make(chan watched, 1)
	go func() {
		tb, err := buildwatch.Watch(watchCtx, builds, b, tracker)
		done <- watched{tb, err}
	}()

	logCtx, stopLog := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLog()
	tail := &logTail{}
	follower := &buildlog.Follower{Client: d.Clients.REST, Namespace: o.Namespace, Build: b.Name, Out: io.MultiWriter(d.Out, tail), Tracker: tracker,
		Warn: func(s string) { d.logf("%s", s) }}
	logDone := make(chan error, 1)
	go func() { logDone <- follower.Run(logCtx) }()

	var startTimer <-chan time.Time
	if o.StartTimeout > 0 && !buildwatch.Started(b.Status.Phase) {
		t := time.NewTimer(o.StartTimeout)
		defer t.Stop()
		startTimer = t.C
	}
	lastState := ""
	watchEnded := false
	var final *buildv1.Build
	var stopped *failure.Error
wait:
	for {
		changed := tracker.Changed()
		cur := tracker.Latest()
		if state := describe(cur); state != lastState {
			lastState = state
			d.logf("%s", state)
		}
		if buildwatch.Started(cur.Status.Phase) {
			startTimer = nil
		}
		select {
		case w := <-done:
			watchEnded = true
			if w.err != nil {
				if errors.Is(w.err, buildwatch.ErrDeleted) {
					stopLog()
					return &Outcome{Build: cur, Failure: failure.New(failure.BuildDeleted, "build %s/%s was deleted before it finished", o.Namespace, b.Name)}
				}
				stopped = failure.Wrap(failure.BuildAPIUnavailable, w.err, "watching build %s failed", b.Name)
				break wait
			}
			final = w.b
			break wait
		case <-changed:
		case <-startTimer:
			cur = tracker.Latest()
			stopped = failure.New(failure.StartTimeout, "build %s stayed %s for longer than --start-timeout %s%s",
				b.Name, cur.Status.Phase, o.StartTimeout, reasonSuffix(cur))
			break wait
		case <-ctx.Done():
			stopped = d.stopFailure(ctx, nil, "")
			break wait
		}
	}

	if final == nil {
		// We are giving up on a build that is still active: cancel it and
		// wait (bounded) for OpenShift to confirm.
		d.logf("cancelling build %s: %s", b.Name, stopped.Message)
		if err := d.cancel(o, b.Name); err != nil {
			d.logf("warning: cancelling build %s failed: %v", b.Name, err)
		}
		cctx, ccancel := context.WithTimeout(context.Background(), o.CancelGrace)
		if !watchEnded {
			// The watch ends at the terminal phase: the Cancelled we wait for.
			select {
			case w := <-done:
				final = w.b
			case <-cctx.Done():
				d.logf("warning: build %s did not confirm the cancel within %s", b.Name, o.CancelGrace)
			}
		}
		ccancel()
		if final == nil {
			final = tracker.Latest()
		}
		d.logf("%s", describe(final))
		stopLog()
		<-logDone
		if final.Status.Phase == buildv1.BuildPhaseComplete {
			d.logf("build %s completed before the cancel reached it", b.Name)
			return d.complete(ctx, o, final, stopped)
		}
		return &Outcome{Build: final, Commit: commitOf(final), Failure: stopped}
	}

	// Let the log drain (bounded): it never decides the outcome. A stop
	// now ends the drain at once (the build has ended; the step's time is
	// short) and is reported, whatever the build's phase.
	var stop *failure.Error
	grace := time.NewTimer(o.LogGrace)
	defer grace.Stop()
	select {
	case err := <-logDone:
		if err != nil {
			d.logf("warning: %v", err)
		}
	case <-grace.C:
		stopLog()
		if err := <-logDone; err != nil {
			d.logf("warning: the build log did not finish within %s after the build ended: %v", o.LogGrace, err)
		} else {
			d.logf("warning: the build log did not finish within %s after the build ended; it may be incomplete", o.LogGrace)
		}
	case <-ctx.Done():
		stop = d.stopFailure(ctx, nil, "after the build ended, while its log was read")
		d.logf("warning: %s; the log may be incomplete", stop.Message)
		stopLog()
		<-logDone
	}
	if final.Status.Phase == buildv1.BuildPhaseComplete {
		return d.complete(ctx, o, final, stop)
	}
	f := buildFailure(final, tail.Lines())
	if stop != nil {
		f = stop
	}
	return &Outcome{Build: final, Commit: commitOf(final), Failure: f}
}

func describe(b *buildv1.Build) string {
	s := fmt.Sprintf("build %s is %s", b.Name, b.Status.Phase)
	if b.Status.Phase == "" {
		s = fmt.Sprintf("build %s is New", b.Name)
	}
	return s + reasonSuffix(b)
}

func reasonSuffix(b *buildv1.Build) string {
	switch {
	case b.Status.Reason != "" && b.Status.Message != "":
		return fmt.Sprintf(" (%s: %s)", b.Status.Reason, b.Status.Message)
	case b.Status.Reason != "":
		return fmt.Sprintf(" (%s)", b.Status.Reason)
	case b.Status.Message != "":
		return fmt.Sprintf(" (%s)", b.Status.Message)
	}
	return ""
}

// cancel asks OpenShift to cancel the build, on a fresh context bounded by
// CancelGrace: the run's own context is usually why we cancel.
func (d *Driver) cancel(o Options, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.CancelGrace)
	defer cancel()
	return cancellation.Build(ctx, d.Clients.Builds.Builds(o.Namespace), name)
}
