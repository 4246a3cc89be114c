// Package buildwatch follows one OpenShift Build to a terminal phase with
// client-go's watch machinery (a watch from the state already held, re-opened
// from the last version seen; a re-list only when that version expired), and
// publishes each observed state to other parts of the step.
//
// The outcome is decided only from status.phase: the status.cancelled flag can
// be true on a Complete build, and the end of a log stream means nothing.
package buildwatch

import (
	"context"
	"fmt"
	"sync"

	buildv1 "github.com/openshift/api/build/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/ocbuild/ocbuild/pkg/buildapi"
	"github.com/ocbuild/ocbuild/pkg/onewatch"
)

// Terminal reports whether phase is final (anything but New, Pending, Running).
func Terminal(phase buildv1.BuildPhase) bool {
	switch phase {
	case buildv1.BuildPhaseNew, buildv1.BuildPhasePending, buildv1.BuildPhaseRunning, "":
		return false
	}
	return true
}

// Started reports whether the build left New/Pending.
func Started(phase buildv1.BuildPhase) bool {
	return phase != buildv1.BuildPhaseNew && phase != buildv1.BuildPhasePending && phase != ""
}

// ErrDeleted is returned when the build disappears before it ends.
var ErrDeleted = fmt.Errorf("the build was deleted before it finished")

// Tracker holds the latest observed state of a build. Its zero value is not
// usable; create it with NewTracker.
type Tracker struct {
	mu      sync.Mutex
	latest  *buildv1.Build
	changed chan struct{}
	deleted bool
}

// NewTracker returns a tracker starting from b (may be nil).
func NewTracker(b *buildv1.Build) *Tracker {
	return &Tracker{latest: b, changed: make(chan struct{})}
}

// Latest returns the most recent state seen; callers must not modify it.
func (t *Tracker) Latest() *buildv1.Build {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.latest
}

// Deleted reports whether the build was seen deleted.
func (t *Tracker) Deleted() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.deleted
}

// Changed returns a channel closed at the next update.
func (t *Tracker) Changed() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// Done reports whether the latest state is terminal (or deleted).
func (t *Tracker) Done() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.deleted || (t.latest != nil && Terminal(t.latest.Status.Phase))
}

func (t *Tracker) set(b *buildv1.Build, deleted bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b != nil && t.latest != nil && !deleted && newerThan(t.latest, b) {
		return
	}
	if b != nil {
		t.latest = b
	}
	t.deleted = t.deleted || deleted
	close(t.changed)
	t.changed = make(chan struct{})
}

// newerThan keeps a terminal state once seen: a re-list can never take a build
// back out of a terminal phase, but a stale cached object could.
func newerThan(have, got *buildv1.Build) bool {
	return Terminal(have.Status.Phase) && !Terminal(got.Status.Phase)
}

// Watch follows the build b to a terminal phase, feeding every state to t,
// and returns the terminal build. It watches from b's resourceVersion — the
// state the caller already holds, so nothing after it is missed and no list
// is needed — re-opening the watch from the last version seen when it
// drops. Only when the server no longer has that version (410 Gone: the
// watch window moved on, e.g. after a long upload) does it fall back to
// list+watch. It returns ErrDeleted if the build is deleted first, or ctx's
// error.
func Watch(ctx context.Context, c buildapi.BuildInterface, b *buildv1.Build, t *Tracker) (*buildv1.Build, error) {
	if Terminal(b.Status.Phase) {
		return b, nil
	}
	if b.ResourceVersion == "" || b.ResourceVersion == "0" {
		return WatchByName(ctx, c, b.Name, t)
	}
	wf := func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return c.Watch(ctx, o) }
	ev, err := onewatch.From(ctx, b.Name, b.ResourceVersion, wf, func(e watch.Event) (bool, error) { return t.observe(b.Name, e) })
	if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
		return WatchByName(ctx, c, b.Name, t)
	}
	if err != nil {
		return nil, err
	}
	return ev.Object.(*buildv1.Build), nil
}

// WatchByName lists and watches the build name until it reaches a terminal
// phase, for callers that hold no state of it; see Watch.
func WatchByName(ctx context.Context, c buildapi.BuildInterface, name string, t *Tracker) (*buildv1.Build, error) {
	lw := onewatch.ByName(name,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return c.List(ctx, o) },
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return c.Watch(ctx, o) })
	ev, err := watchtools.UntilWithSync(ctx, lw, &buildv1.Build{}, nil, func(e watch.Event) (bool, error) {
		return t.observe(name, e)
	})
	if err != nil {
		return nil, err
	}
	return ev.Object.(*buildv1.Build), nil
}

// observe feeds one watch event of the build name to t and reports whether
// the build is terminal.
func (t *Tracker) observe(name string, e watch.Event) (bool, error) {
	switch e.Type {
	case watch.Deleted:
		if m, ok := e.Object.(metav1.Object); ok && m.GetName() != name {
			return false, nil
		}
		t.set(nil, true)
		return false, ErrDeleted
	case watch.Added, watch.Modified:
		b, ok := e.Object.(*buildv1.Build)
		if !ok || b.Name != name {
			return false, nil
		}
		t.set(b, false)
		return Terminal(b.Status.Phase), nil
	}
	return false, nil
}

// SetForTest feeds a state to t as a watch event would; for tests of
// packages that consume a Tracker.
func SetForTest(t *Tracker, b *buildv1.Build) { t.set(b, false) }
