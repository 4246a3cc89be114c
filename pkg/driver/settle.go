package driver

// Settling a start request that did not answer cleanly. OpenShift carries
// out instantiate and instantiatebinary even when the client has gone (its
// handlers ignore the request's context) and can lose the answer to a
// request it carried out; so after a stop, a 5xx or a broken connection the
// run finds out whether a build was created, and then adopts or cancels it.
//
// Which build: instantiate requests carry a unique label (LabelRequest).
// instantiatebinary takes no labels, but OpenShift names the build
// <bc>-<lastVersion+1>, numbering from the lastVersion the run read; in
// ModeBuild the start lock (held until the request is settled) guarantees no
// other ocbuild run took that number. In ModeStart the BuildConfig is
// shared without a lock, so the candidate must also be a binary build not
// claimed by another TaskRun.

import (
	"context"
	"errors"
	"fmt"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ocbuild/ocbuild/pkg/buildconfig"
	"github.com/ocbuild/ocbuild/pkg/buildwatch"
	"github.com/ocbuild/ocbuild/pkg/failure"
)

// pending identifies the build a start request may have created.
type pending struct {
	buildConfig string
	// lastVersion is the BuildConfig's status.lastVersion before the request.
	lastVersion int64
	// selector finds an instantiate request's build; empty for
	// instantiatebinary, whose build is <buildConfig>-<lastVersion+1>.
	selector string
}

func (p pending) candidate() string { return fmt.Sprintf("%s-%d", p.buildConfig, p.lastVersion+1) }

const (
	// settleQuiet is how long a request that left no trace (no build, no
	// lastVersion bump) is watched before it is taken as never carried out.
	settleQuiet = 2 * time.Second
	// settleCreate bounds the wait for the build once lastVersion moved:
	// OpenShift creates it right after the bump.
	settleCreate = 5 * time.Second
)

// findPending looks once for the build p created; nil if there is none (yet).
func (d *Driver) findPending(ctx context.Context, o Options, p pending) *buildv1.Build {
	builds := d.Clients.Builds.Builds(o.Namespace)
	if p.selector != "" {
		list, err := builds.List(ctx, metav1.ListOptions{LabelSelector: p.selector})
		if err != nil || len(list.Items) == 0 {
			return nil
		}
		return &list.Items[0]
	}
	b, err := builds.Get(ctx, p.candidate(), metav1.GetOptions{})
	if err != nil {
		return nil
	}
	if o.Mode == ModeStart {
		if b.Spec.Source.Binary == nil {
			return nil
		}
		if uid := b.Annotations[buildconfig.AnnotationTaskRunUID]; uid != "" && uid != o.Owner.TaskRunUID {
			return nil
		}
	}
	return b
}

// settle waits (bounded by CancelGrace) until it is known whether request p
// created a build, and returns it, or nil when it created none. It runs on
// a fresh context: it is mostly called because the run's own has ended.
func (d *Driver) settle(o Options, p pending) *buildv1.Build {
	ctx, cancel := context.WithTimeout(context.Background(), o.CancelGrace)
	defer cancel()
	began := time.Now()
	var bumped time.Time
	var found *buildv1.Build
	_ = wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if found = d.findPending(ctx, o, p); found != nil {
			return true, nil
		}
		bc, err := d.Clients.Builds.BuildConfigs(o.Namespace).Get(ctx, p.buildConfig, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return true, nil
		case err != nil:
			return false, nil
		case bc.Status.LastVersion <= p.lastVersion:
			return time.Since(began) >= settleQuiet, nil
		case bumped.IsZero():
			bumped = time.Now()
		}
		return time.Since(bumped) >= settleCreate, nil
	})
	if found == nil && ctx.Err() != nil {
		d.logf("warning: could not find out within %s whether BuildConfig %s started a build for this run", o.CancelGrace, p.buildConfig)
	}
	return found
}

// abandon ends a build the run gives up on: it is cancelled unless it has
// ended, and its end awaited. It returns the build as last seen and the
// failure to report: the stop's when the run was stopped, else f.
func (d *Driver) abandon(ctx context.Context, o Options, b *buildv1.Build, f *failure.Error) (*buildv1.Build, *failure.Error) {
	if ctx.Err() != nil {
		f = d.stopFailure(ctx, f, "")
	}
	if buildTerminal(b) {
		return b, f
	}
	d.logf("cancelling build %s: %s", b.Name, f.Message)
	final := d.cancelAndWait(o, b.Name)
	if final == nil {
		final = b
	}
	d.logf("%s", describe(final))
	if final.Status.Phase == buildv1.BuildPhaseComplete {
		d.logf("build %s completed before the cancel reached it", b.Name)
	}
	return final, f
}

// cancelAndWait asks OpenShift to cancel the build and waits (bounded by
// CancelGrace) for a terminal phase, on a fresh context: the run's own is
// usually why we cancel. It returns the build as last seen (nil if unknown).
func (d *Driver) cancelAndWait(o Options, name string) *buildv1.Build {
	if err := d.cancel(o, name); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		d.logf("warning: cancelling build %s failed: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.CancelGrace)
	defer cancel()
	builds := d.Clients.Builds.Builds(o.Namespace)
	tracker := buildwatch.NewTracker(&buildv1.Build{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: o.Namespace}})
	b, err := buildwatch.WatchByName(ctx, builds, name, tracker)
	if err != nil {
		if !errors.Is(err, buildwatch.ErrDeleted) {
			d.logf("warning: build %s did not confirm the cancel within %s (%v)", name, o.CancelGrace, err)
		}
		if l := tracker.Latest(); l.ResourceVersion != "" {
			return l
		}
		return nil
	}
	return b
}

func buildTerminal(b *buildv1.Build) bool { return b != nil && buildwatch.Terminal(b.Status.Phase) }

func isStatus(err error) bool {
	var s apierrors.APIStatus
	return errors.As(err, &s)
}
