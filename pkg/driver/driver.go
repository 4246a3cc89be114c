// Package driver runs one OpenShift build for a Shipwright step from start to
// results: it prepares (or reads) the BuildConfig, starts the build, streams
// its log, waits for a terminal phase, cancels the build when the step is
// stopped, and writes the Tekton results.
//
// Run never decides an outcome from anything but the build's status.phase,
// and it never leaves a build running behind it. A stop can arrive at any
// moment (SIGTERM/SIGINT, the TaskRun cancelled or timed out, --timeout,
// --start-timeout); whatever phase the run is in, the build that was — or
// may have been — started is cancelled and its end awaited (bounded by
// CancelGrace), results are written with a named reason, and Run returns an
// error. "May have been" matters: OpenShift carries out an instantiate or
// instantiatebinary whose client has gone (it does not watch the request's
// context) and may lose the answer to one it carried out, so after any
// start request that did not answer cleanly the run looks for the build the
// request created (settle.go) before it gives up or tries again.
//
// One file per phase of a run: start.go (BuildConfig and start lock,
// instantiate), upload.go (binary start), settle.go (the build a failed
// start may have left), follow.go (log and phase), outcome.go (digest,
// size, failure, results), taskrun.go (the TaskRun as a stop source).
package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/ocbuild/ocbuild/pkg/buildapi"
	"github.com/ocbuild/ocbuild/pkg/buildconfig"
	"github.com/ocbuild/ocbuild/pkg/failure"
	"github.com/ocbuild/ocbuild/pkg/imagesize"
	"github.com/ocbuild/ocbuild/pkg/results"
)

// Modes of Run.
const (
	// ModeBuild creates or updates the BuildConfig ocbuild owns and starts it.
	ModeBuild = "build"
	// ModeStart runs an existing BuildConfig and leaves it untouched.
	ModeStart = "start"
)

// LabelRequest marks the builds one start request created, so a retried
// instantiate after a lost answer adopts the build instead of starting two.
const LabelRequest = "ocbuild.io/request-id"

// Options is one run, already validated by the command line layer.
type Options struct {
	Mode        string
	Namespace   string
	BuildConfig string
	Owner       buildconfig.Owner

	// Spec is the BuildConfig to own (ModeBuild).
	Spec buildconfig.Spec

	// SourceDir is uploaded for binary builds; SourceRoot bounds the search
	// for the git checkout whose commit is sent along.
	SourceDir  string
	SourceRoot string
	IncludeGit bool

	// Commit is the revision to build (instantiate) when not read from SourceDir.
	Commit string
	// Overrides for ModeStart, carried by the BuildRequest.
	Env         []corev1.EnvVar
	BuildArgs   []corev1.EnvVar
	NoCache     *bool
	Incremental *bool

	Timeout      time.Duration // overall; 0 = none
	StartTimeout time.Duration // longest time in New/Pending
	// CancelGrace is how long to wait for OpenShift to confirm a cancel.
	CancelGrace time.Duration
	// LogGrace is how long to wait for the log to drain after the build ended.
	LogGrace time.Duration
	// StartAttempts bounds starts retried because a concurrent BuildRun
	// changed the shared BuildConfig in between, or because a start request
	// failed in a way worth another try.
	StartAttempts int

	Results results.Files
	Sizes   imagesize.Lookup
}

// Clients are the API clients a run uses.
type Clients struct {
	// Builds is the build.openshift.io (and imagestreamimages) client.
	Builds  buildapi.Interface
	REST    rest.Interface // build.openshift.io/v1 REST client (log, instantiatebinary)
	Dynamic dynamic.Interface
	// ServesBuildAPI, if set, tells whether the cluster serves
	// build.openshift.io/v1 (false: it says it does not); asked only to
	// explain a 404.
	ServesBuildAPI func(context.Context) (bool, error)
}

// Driver runs builds; Out receives the build log, Log one line per event.
type Driver struct {
	Clients Clients
	Out     io.Writer
	Log     io.Writer

	mu sync.Mutex
}

func (d *Driver) logf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.Log, "ocbuild: "+format+"\n", args...)
}

// Outcome is what a run ended with.
type Outcome struct {
	Build   *buildv1.Build
	Digest  string
	Size    int64
	Commit  string
	Failure *failure.Error // nil on success
}

// Run performs the run and writes the results. A non-nil error means the run
// failed; its reason is in the failure (see failure.As), and results were
// written. Usage errors found against the cluster (ModeStart options that do
// not fit the BuildConfig's strategy) are *failure.Usage.
func (d *Driver) Run(ctx context.Context, o Options) (*Outcome, error) {
	out := d.run(ctx, o)
	d.writeResults(o, out)
	if out.Failure != nil {
		return out, out.Failure
	}
	return out, nil
}

// stopCause is the context cause of a stop that is not a signal.
type stopCause struct{ reason, message string }

func (c *stopCause) Error() string { return c.reason + ": " + c.message }

func (d *Driver) run(parent context.Context, o Options) *Outcome {
	if o.StartAttempts == 0 {
		o.StartAttempts = 8
	}
	if o.CancelGrace == 0 {
		o.CancelGrace = 25 * time.Second
	}
	if o.LogGrace == 0 {
		o.LogGrace = 30 * time.Second
	}
	// ctx ends when the step must stop: signal (parent), TaskRun stopped, or
	// our own overall timeout. The cause says which.
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	if o.Timeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, o.Timeout, &stopCause{failure.Timeout,
			fmt.Sprintf("the build did not finish within --timeout %s; it was cancelled", o.Timeout)})
		defer stop()
	}

	if o.Owner.TaskRun != "" && d.Clients.Dynamic != nil {
		if o.Mode == ModeBuild && o.Spec.CompletionDeadlineSeconds == 0 {
			o.Spec.CompletionDeadlineSeconds = d.deadlineFromTaskRun(ctx, o)
		}
		go d.watchTaskRun(ctx, cancel, o)
	}
	if ctx.Err() != nil {
		return &Outcome{Failure: d.stopFailure(ctx, nil, "before any build was started")}
	}

	// start cancels whatever it may have started when it fails.
	b, f := d.start(ctx, o)
	if f != nil {
		return &Outcome{Build: b, Commit: commitOf(b), Failure: f}
	}
	d.logf("build %s/%s started from BuildConfig %s", o.Namespace, b.Name, o.BuildConfig)
	return d.follow(ctx, o, d.claim(ctx, o, b))
}

// apiMissing tells a 404 that means the cluster does not serve the Build
// API from one for a missing BuildConfig: asked only then, so a run on a
// cluster that serves it makes no discovery request. nil: the API is
// served, or discovery cannot say (it may be restricted; the 404 stands).
func (d *Driver) apiMissing(ctx context.Context, err error) *failure.Error {
	if !apierrors.IsNotFound(err) || d.Clients.ServesBuildAPI == nil {
		return nil
	}
	if served, derr := d.Clients.ServesBuildAPI(ctx); served || derr != nil {
		return nil
	}
	return failure.New(failure.BuildAPIUnavailable,
		"the cluster does not serve build.openshift.io/v1: the OpenShift Build capability is disabled or this is not an OpenShift cluster")
}

// stopFailure describes why ctx ended; when is appended to the message of a
// signal stop (e.g. "before any build was started"). It returns fallback
// when ctx has not ended.
func (d *Driver) stopFailure(ctx context.Context, fallback *failure.Error, when string) *failure.Error {
	var sc *stopCause
	if errors.As(context.Cause(ctx), &sc) {
		return failure.New(sc.reason, "%s", sc.message)
	}
	if ctx.Err() != nil {
		msg := "the step was stopped (SIGTERM/SIGINT)"
		if when != "" {
			msg += " " + when
		} else {
			msg += " and cancelled the build"
		}
		return failure.New(failure.BuildCancelled, "%s", msg)
	}
	return fallback
}
