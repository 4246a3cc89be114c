package driver

// Starting the build: bring the owned BuildConfig to the run's spec
// (ModeBuild) or read the existing one (ModeStart), then instantiate it
// (upload.go for binary sources). Every start request that did not answer
// cleanly is settled (settle.go): the build it may have created is adopted
// or cancelled, never left behind.
//
// Concurrent runs share a BuildConfig and each must build its own spec. The
// guarantee is the check after the start: a build generated from another
// run's spec is cancelled and the run starts again. The start lock only
// keeps that rare: a run that has to change the spec takes it in the same
// write and holds it until OpenShift generated its build, so runs with
// other specs wait instead of overwriting it. A BuildConfig that already
// has the run's spec is neither written nor locked (the usual case: the
// same Build run again costs one GET), and runs with the same spec never
// wait for each other.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/ocbuild/ocbuild/pkg/apiretry"
	"github.com/ocbuild/ocbuild/pkg/buildapi"
	"github.com/ocbuild/ocbuild/pkg/buildconfig"
	"github.com/ocbuild/ocbuild/pkg/cancellation"
	"github.com/ocbuild/ocbuild/pkg/failure"
	"github.com/ocbuild/ocbuild/pkg/onewatch"
	"github.com/ocbuild/ocbuild/pkg/permissions"
	"github.com/ocbuild/ocbuild/pkg/revision"
)

// apiRetry retries transient API errors for about 20 s (10 tries). No Cap:
// wait.Backoff ends the retries as soon as a Cap is reached.
var apiRetry = wait.Backoff{Duration: 200 * time.Millisecond, Factor: 1.6, Jitter: 0.2, Steps: 10}

// startLockTTL bounds how long a run killed while starting blocks the
// BuildConfig for other runs.
const startLockTTL = time.Minute

// start prepares and starts the build, retrying when a concurrent BuildRun
// rewrote the shared BuildConfig between our update and our start. On
// failure no build it started is left active.
func (d *Driver) start(ctx context.Context, o Options) (*buildv1.Build, *failure.Error) {
	if o.Mode == ModeStart {
		return d.startExisting(ctx, o)
	}
	bcs := d.Clients.Builds.BuildConfigs(o.Namespace)
	backoff := wait.Backoff{Duration: 300 * time.Millisecond, Factor: 1.6, Jitter: 1, Steps: o.StartAttempts, Cap: 5 * time.Second}
	want := buildconfig.Render(o.Spec)
	holder := o.Owner.TaskRunUID
	if holder == "" {
		holder = newRequestID()
	}
	for attempt := 1; ; attempt++ {
		var bc *buildv1.BuildConfig
		err := apiretry.OnError(apiRetry, cancellation.Retryable, func() error {
			var err error
			bc, err = buildconfig.Apply(ctx, bcs, o.BuildConfig, o.Spec, o.Owner, buildconfig.Lock{Holder: holder, TTL: startLockTTL})
			return err
		})
		if err != nil {
			return nil, d.applyFailure(ctx, err, o)
		}
		b, f, again := d.startLocked(ctx, o, bc, holder)
		switch {
		case f != nil && (!again || attempt >= o.StartAttempts):
			return b, f
		case f != nil:
			// A failed upload whose build was cancelled: start again.
		case buildconfig.Matches(b.Spec.CommonSpec, want.CommonSpec):
			return b, nil
		default:
			d.logf("build %s was generated from another BuildRun's BuildConfig spec (concurrent update); cancelling it and starting again (attempt %d/%d)",
				b.Name, attempt, o.StartAttempts)
			d.cancelAndWait(o, b.Name)
			if attempt >= o.StartAttempts {
				return nil, failure.New(failure.BuildConfigContention,
					"BuildConfig %s kept changing under concurrent BuildRuns; %d starts built another run's configuration. Use separate BuildConfigs (--buildconfig) for runs that differ",
					o.BuildConfig, attempt)
			}
		}
		select {
		case <-time.After(backoff.Step()):
		case <-ctx.Done():
			return nil, d.stopFailure(ctx, nil, "before the build was started again")
		}
	}
}

// applyFailure classifies an error from writing the BuildConfig.
func (d *Driver) applyFailure(ctx context.Context, err error, o Options) *failure.Error {
	var notOwned *buildconfig.NotOwnedError
	switch {
	case errors.As(err, &notOwned):
		return failure.Wrap(failure.BuildConfigNotOwned, err,
			"choose another BuildConfig name (buildconfig-name parameter), or run the existing one with the openshift-buildconfig strategy")
	case ctx.Err() != nil:
		return d.stopFailure(ctx, nil, "while preparing BuildConfig "+o.BuildConfig+", before any build was started")
	}
	if f := d.apiMissing(ctx, err); f != nil {
		return f
	}
	perm := permissions.UpdateBuildConfig
	var call *buildconfig.CallError
	if errors.As(err, &call) {
		switch call.Verb {
		case "get":
			perm = permissions.GetBuildConfig
		case "create":
			perm = permissions.CreateBuildConfig
		}
	}
	return d.apiFailure(err, perm, o)
}

// startLocked starts the build, holding the BuildConfig's start lock if
// Apply took one (it does only when it wrote the spec). The lock is released
// once OpenShift generated the build from our spec — for instantiate that is
// its answer; for instantiatebinary, which answers only once the build runs
// and took the upload, it is the BuildConfig's lastVersion moving past the
// value we locked, seen by a watch from the version our write left — and in
// any case only after a failed start has been settled, so no other run
// starts the build number we may still have to cancel. Without a lock
// nothing is written: an unchanged BuildConfig costs no requests here.
func (d *Driver) startLocked(ctx context.Context, o Options, bc *buildv1.BuildConfig, holder string) (*buildv1.Build, *failure.Error, bool) {
	bcs := d.Clients.Builds.BuildConfigs(o.Namespace)
	locked := buildconfig.Holds(bc, holder)
	var once sync.Once
	release := func() {
		once.Do(func() {
			if !locked {
				return
			}
			// Bounded: a stopped step has little time left.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			err := apiretry.OnError(apiRetry, cancellation.Retryable, func() error {
				return buildconfig.Release(rctx, bcs, o.BuildConfig, holder)
			})
			if err != nil {
				d.logf("warning: cannot release the start lock on BuildConfig %s (%v); it expires in %s", o.BuildConfig, err, startLockTTL)
			}
		})
	}
	defer release()
	if !o.Spec.Binary {
		b, f := d.instantiate(ctx, o, bc)
		return b, f, false
	}
	if locked {
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() {
			if d.generated(wctx, bcs, bc) {
				release()
			}
		}()
	}
	return d.upload(ctx, o, d.uploadRequest(o), bc.Status.LastVersion)
}

// generated watches bc from the version held until its lastVersion moves
// past bc's: OpenShift generated the next build from the spec. It reports
// false when ctx ended first.
func (d *Driver) generated(ctx context.Context, bcs buildapi.BuildConfigInterface, bc *buildv1.BuildConfig) bool {
	wf := func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return bcs.Watch(ctx, o) }
	_, err := onewatch.From(ctx, bc.Name, bc.ResourceVersion, wf, func(e watch.Event) (bool, error) {
		cur, ok := e.Object.(*buildv1.BuildConfig)
		return ok && cur.Status.LastVersion > bc.Status.LastVersion, nil
	})
	return err == nil
}

// getBuildConfig reads the BuildConfig to start; when says, for a stop,
// where the run was.
func (d *Driver) getBuildConfig(ctx context.Context, o Options, when string) (*buildv1.BuildConfig, *failure.Error) {
	var bc *buildv1.BuildConfig
	err := apiretry.OnError(apiRetry, cancellation.Retryable, func() error {
		var err error
		bc, err = d.Clients.Builds.BuildConfigs(o.Namespace).Get(ctx, o.BuildConfig, metav1.GetOptions{})
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, d.stopFailure(ctx, nil, when)
		}
		if f := d.apiMissing(ctx, err); f != nil {
			return nil, f
		}
		return nil, d.apiFailure(err, permissions.GetBuildConfig, o)
	}
	return bc, nil
}

func (d *Driver) startExisting(ctx context.Context, o Options) (*buildv1.Build, *failure.Error) {
	bc, f := d.getBuildConfig(ctx, o, "before any build was started")
	if f != nil {
		return nil, f
	}
	if f := CheckOverrides(bc, o); f != nil {
		return nil, f
	}
	if bc.Spec.Source.Binary != nil {
		return d.uploadExisting(ctx, o, bc)
	}
	if o.Commit == "" && o.SourceDir != "" {
		// Build the commit Shipwright checked out, not whatever the
		// BuildConfig's ref points at by the time OpenShift clones.
		if rev, ok, err := revision.Read(o.SourceDir, o.SourceRoot); err != nil {
			d.logf("warning: cannot read the git commit of %s: %v; OpenShift builds the BuildConfig's ref", o.SourceDir, err)
		} else if ok {
			o.Commit = rev.Commit
			d.logf("building commit %s (the source Shipwright fetched)", rev.Commit)
		}
	}
	return d.instantiate(ctx, o, bc)
}

// uploadExisting starts an existing Binary BuildConfig, starting again
// (with its lastVersion read anew) after an upload that failed in a way
// worth another try.
func (d *Driver) uploadExisting(ctx context.Context, o Options, bc *buildv1.BuildConfig) (*buildv1.Build, *failure.Error) {
	req := d.uploadRequest(o)
	backoff := apiRetry
	for attempt := 1; ; attempt++ {
		b, f, again := d.upload(ctx, o, req, bc.Status.LastVersion)
		if !again || attempt >= o.StartAttempts {
			return b, f
		}
		select {
		case <-time.After(backoff.Step()):
		case <-ctx.Done():
			return b, d.stopFailure(ctx, nil, "before the build was started again")
		}
		var gf *failure.Error
		if bc, gf = d.getBuildConfig(ctx, o, "before the build was started again"); gf != nil {
			return b, gf
		}
	}
}

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// instantiate starts a build OpenShift clones itself. The request carries a
// unique label, so the build of a request whose answer was lost (or that
// the step abandoned when it was stopped) can be found: adopted when the
// run goes on, cancelled when it stops.
func (d *Driver) instantiate(ctx context.Context, o Options, bc *buildv1.BuildConfig) (*buildv1.Build, *failure.Error) {
	id := newRequestID()
	req := &buildv1.BuildRequest{
		ObjectMeta:  metav1.ObjectMeta{Name: o.BuildConfig, Labels: o.Owner.Labels(), Annotations: map[string]string{}},
		TriggeredBy: []buildv1.BuildTriggerCause{{Message: triggerMessage(o)}},
	}
	req.Labels[LabelRequest] = id
	if o.Owner.TaskRunUID != "" {
		req.Annotations[buildconfig.AnnotationTaskRunUID] = o.Owner.TaskRunUID
	}
	if o.Commit != "" {
		req.Revision = &buildv1.SourceRevision{Type: buildv1.BuildSourceGit, Git: &buildv1.GitSourceRevision{Commit: o.Commit}}
	}
	if o.Mode == ModeStart {
		req.Env = o.Env
		if len(o.BuildArgs) > 0 || o.NoCache != nil {
			req.DockerStrategyOptions = &buildv1.DockerStrategyOptions{BuildArgs: o.BuildArgs, NoCache: o.NoCache}
		}
		if o.Incremental != nil {
			req.SourceStrategyOptions = &buildv1.SourceStrategyOptions{Incremental: o.Incremental}
		}
	}
	bcs := d.Clients.Builds.BuildConfigs(o.Namespace)
	p := pending{buildConfig: o.BuildConfig, lastVersion: bc.Status.LastVersion, selector: labels.SelectorFromSet(labels.Set{LabelRequest: id}).String()}
	var build *buildv1.Build
	err := apiretry.OnError(apiRetry, func(err error) bool { return cancellation.Retryable(err) && ctx.Err() == nil }, func() error {
		b, err := bcs.Instantiate(ctx, o.BuildConfig, req, metav1.CreateOptions{})
		if err == nil {
			build = b
			return nil
		}
		if !cancellation.Retryable(err) || ctx.Err() != nil {
			return err
		}
		// The request may have been carried out before the answer was
		// lost: adopt its build rather than start a second one.
		if b := d.findPending(ctx, o, p); b != nil {
			build = b
			return nil
		}
		return err
	})
	if err == nil {
		return build, nil
	}
	if ctx.Err() != nil || cancellation.Retryable(err) || !isStatus(err) {
		// Stopped mid-request, or no clean answer: the server may still
		// have created the build.
		if b := d.settle(o, p); b != nil {
			if ctx.Err() == nil && !buildTerminal(b) {
				d.logf("build %s was started although the answer to instantiate was lost; following it", b.Name)
				return b, nil
			}
			return d.abandon(ctx, o, b, d.startFailure(err, permissions.Instantiate, o))
		}
	}
	if ctx.Err() != nil {
		return nil, d.stopFailure(ctx, nil, "before any build was started")
	}
	return nil, d.startFailure(err, permissions.Instantiate, o)
}

func triggerMessage(o Options) string {
	if o.Owner.BuildRun != "" {
		return "Shipwright BuildRun " + o.Owner.BuildRun
	}
	return "Started by ocbuild"
}
