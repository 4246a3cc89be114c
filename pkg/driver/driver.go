// Package driver runs one OpenShift build for a Shipwright step from start to
// results: it prepares (or reads) the BuildConfig, starts the build, streams
// its log, waits for a terminal phase, cancels the build when the step is
// stopped, and writes the Tekton results.
//
// Run never decides an outcome from anything but the build's status.phase,
// and it never leaves a build running behind it: every path that gives up
// after a build was started cancels that build first.
package driver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildclient "github.com/openshift/client-go/build/clientset/versioned/typed/build/v1"
	imageclient "github.com/openshift/client-go/image/clientset/versioned/typed/image/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/ocbuild/ocbuild/pkg/buildconfig"
	"github.com/ocbuild/ocbuild/pkg/buildlog"
	"github.com/ocbuild/ocbuild/pkg/buildwatch"
	"github.com/ocbuild/ocbuild/pkg/cancellation"
	"github.com/ocbuild/ocbuild/pkg/failure"
	"github.com/ocbuild/ocbuild/pkg/imagesize"
	"github.com/ocbuild/ocbuild/pkg/permissions"
	"github.com/ocbuild/ocbuild/pkg/results"
	"github.com/ocbuild/ocbuild/pkg/revision"
	"github.com/ocbuild/ocbuild/pkg/upload"
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
	// changed the shared BuildConfig in between.
	StartAttempts int

	Results results.Files
	Sizes   imagesize.Lookup
}

// Clients are the API clients a run uses.
type Clients struct {
	Builds    buildclient.BuildV1Interface
	REST      rest.Interface // build.openshift.io/v1 REST client (log, instantiatebinary)
	Images    imageclient.ImageV1Interface
	Dynamic   dynamic.Interface
	Discovery discovery.DiscoveryInterface
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

type stopCause struct{ reason, message string }

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

	if err := d.checkAPI(); err != nil {
		return &Outcome{Failure: err}
	}
	if o.Owner.TaskRun != "" && d.Clients.Dynamic != nil {
		if o.Mode == ModeBuild && o.Spec.CompletionDeadlineSeconds == 0 {
			o.Spec.CompletionDeadlineSeconds = d.deadlineFromTaskRun(ctx, o)
		}
		go d.watchTaskRun(ctx, cancel, o)
	}

	b, f := d.start(ctx, o)
	if f != nil {
		if b != nil {
			// Started but could not be adopted: never leave it running.
			d.cancelBuild(o, b.Name)
		}
		if ctx.Err() != nil {
			f = d.stopFailure(ctx, f)
		}
		return &Outcome{Build: b, Failure: f}
	}
	d.logf("build %s/%s started from BuildConfig %s", o.Namespace, b.Name, o.BuildConfig)
	d.claim(ctx, o, b)
	return d.follow(ctx, o, b)
}

func (d *Driver) checkAPI() *failure.Error {
	if d.Clients.Discovery == nil {
		return nil
	}
	_, err := d.Clients.Discovery.ServerResourcesForGroupVersion(buildv1.GroupVersion.String())
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return failure.New(failure.BuildAPIUnavailable,
			"the cluster does not serve build.openshift.io/v1: the OpenShift Build capability is disabled or this is not an OpenShift cluster")
	}
	// Discovery may be restricted; the real calls will say more.
	return nil
}

func (d *Driver) watchTaskRun(ctx context.Context, cancel context.CancelCauseFunc, o Options) {
	reason, err := cancellation.WatchTaskRun(ctx, d.Clients.Dynamic, o.Namespace, o.Owner.TaskRun, o.Owner.TaskRunUID)
	if err != nil {
		if ctx.Err() == nil {
			d.logf("warning: cannot watch TaskRun %s (%v); the build is still cancelled on SIGTERM, but not on Tekton's keep-pod-on-cancel SIGKILL",
				o.Owner.TaskRun, err)
		}
		return
	}
	d.logf("TaskRun %s stopped (%s): cancelling the build", o.Owner.TaskRun, reason)
	cancel(&stopCause{failure.BuildCancelled, fmt.Sprintf("the TaskRun %s was stopped (%s)", o.Owner.TaskRun, reason)})
}

func (c *stopCause) Error() string { return c.reason + ": " + c.message }

// deadlineGrace is added to the TaskRun's remaining time: at the timeout
// Tekton stops the step, which cancels the build itself (SIGTERM or its
// TaskRun watch) so the BuildRun reports BuildRunTimeout. The deadline is the
// backstop for a step killed before it could cancel; set exactly at the
// timeout it would fail the build a moment before Tekton's timeout and turn
// the BuildRun's timeout into a plain failure.
const deadlineGrace = 15 * time.Second

// deadlineFromTaskRun returns the seconds left before the TaskRun times out
// (spec.timeout from status.startTime) plus deadlineGrace, for the build's
// completionDeadlineSeconds; 0 when unknown or unlimited.
func (d *Driver) deadlineFromTaskRun(ctx context.Context, o Options) int64 {
	tr, err := d.Clients.Dynamic.Resource(cancellation.TaskRuns).Namespace(o.Namespace).Get(ctx, o.Owner.TaskRun, metav1.GetOptions{})
	if err != nil {
		return 0
	}
	timeout, _, _ := unstructured.NestedString(tr.Object, "spec", "timeout")
	started, _, _ := unstructured.NestedString(tr.Object, "status", "startTime")
	limit, err := time.ParseDuration(timeout)
	if err != nil || limit <= 0 {
		return 0
	}
	begin, err := time.Parse(time.RFC3339, started)
	if err != nil {
		begin = time.Now()
	}
	left := time.Until(begin.Add(limit))
	if left < 0 {
		left = 0
	}
	secs := int64((left + deadlineGrace + time.Second - 1) / time.Second)
	d.logf("TaskRun %s times out in %s: the build gets completionDeadlineSeconds %d", o.Owner.TaskRun, left.Round(time.Second), secs)
	return secs
}

// stopFailure describes why ctx ended.
func (d *Driver) stopFailure(ctx context.Context, fallback *failure.Error) *failure.Error {
	var sc *stopCause
	if errors.As(context.Cause(ctx), &sc) {
		return failure.New(sc.reason, "%s", sc.message)
	}
	if ctx.Err() != nil {
		return failure.New(failure.BuildCancelled, "the step was stopped (SIGTERM/SIGINT) and cancelled the build")
	}
	return fallback
}

// start prepares and starts the build, retrying when a concurrent BuildRun
// rewrote the shared BuildConfig between our update and our start.
func (d *Driver) start(ctx context.Context, o Options) (*buildv1.Build, *failure.Error) {
	bcs := d.Clients.Builds.BuildConfigs(o.Namespace)
	if o.Mode == ModeStart {
		return d.startExisting(ctx, o)
	}
	backoff := wait.Backoff{Duration: 300 * time.Millisecond, Factor: 1.6, Jitter: 1, Steps: o.StartAttempts, Cap: 5 * time.Second}
	want := buildconfig.Render(o.Spec)
	holder := o.Owner.TaskRunUID
	if holder == "" {
		holder = newRequestID()
	}
	for attempt := 1; ; attempt++ {
		var bc *buildv1.BuildConfig
		err := retry.OnError(apiRetry, cancellation.Retryable, func() error {
			var err error
			bc, err = buildconfig.Apply(ctx, bcs, o.BuildConfig, o.Spec, o.Owner, buildconfig.Lock{Holder: holder, TTL: startLockTTL})
			return err
		})
		if err != nil {
			var notOwned *buildconfig.NotOwnedError
			switch {
			case errors.As(err, &notOwned):
				return nil, failure.Wrap(failure.BuildConfigNotOwned, err,
					"choose another BuildConfig name (buildconfig-name parameter), or run the existing one with the openshift-buildconfig strategy")
			case ctx.Err() != nil:
				return nil, d.stopFailure(ctx, failure.New(failure.BuildCancelled, "stopped"))
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
			return nil, d.apiFailure(err, perm, o)
		}
		b, f := d.startLocked(ctx, o, bc, holder)
		if f != nil {
			return b, f
		}
		if buildconfig.Matches(b.Spec.CommonSpec, want.CommonSpec) {
			return b, nil
		}
		d.logf("build %s was generated from another BuildRun's BuildConfig spec (concurrent update); cancelling it and starting again (attempt %d/%d)",
			b.Name, attempt, o.StartAttempts)
		d.cancelBuild(o, b.Name)
		if attempt >= o.StartAttempts {
			return nil, failure.New(failure.BuildConfigContention,
				"BuildConfig %s kept changing under concurrent BuildRuns; %d starts built another run's configuration. Use separate BuildConfigs (--buildconfig) for runs that differ",
				o.BuildConfig, attempt)
		}
		select {
		case <-time.After(backoff.Step()):
		case <-ctx.Done():
			return nil, d.stopFailure(ctx, failure.New(failure.BuildCancelled, "stopped"))
		}
	}
}

// startLockTTL bounds how long a run killed while starting blocks the
// BuildConfig for other runs.
const startLockTTL = time.Minute

// startLocked starts the build while holding the BuildConfig's start lock,
// and releases the lock as soon as OpenShift generated the build: for
// instantiate that is its answer; for instantiatebinary, which answers only
// once the build runs and took the upload, it is the BuildConfig's
// lastVersion moving past the value we locked.
func (d *Driver) startLocked(ctx context.Context, o Options, bc *buildv1.BuildConfig, holder string) (*buildv1.Build, *failure.Error) {
	bcs := d.Clients.Builds.BuildConfigs(o.Namespace)
	var once sync.Once
	release := func() {
		once.Do(func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			err := retry.OnError(apiRetry, cancellation.Retryable, func() error {
				return buildconfig.Release(rctx, bcs, o.BuildConfig, holder)
			})
			if err != nil {
				d.logf("warning: cannot release the start lock on BuildConfig %s (%v); it expires in %s", o.BuildConfig, err, startLockTTL)
			}
		})
	}
	defer release()
	if !o.Spec.Binary {
		return d.instantiate(ctx, o, nil)
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = wait.PollUntilContextCancel(wctx, 100*time.Millisecond, false, func(ctx context.Context) (bool, error) {
			cur, err := bcs.Get(ctx, o.BuildConfig, metav1.GetOptions{})
			return err == nil && cur.Status.LastVersion > bc.Status.LastVersion, nil
		})
		if wctx.Err() == nil {
			release()
		}
	}()
	return d.upload(ctx, o)
}

// apiRetry retries transient API errors for about 20 s (10 tries). No Cap:
// wait.Backoff ends the retries as soon as a Cap is reached.
var apiRetry = wait.Backoff{Duration: 200 * time.Millisecond, Factor: 1.6, Jitter: 0.2, Steps: 10}

func (d *Driver) startExisting(ctx context.Context, o Options) (*buildv1.Build, *failure.Error) {
	var bc *buildv1.BuildConfig
	err := retry.OnError(apiRetry, cancellation.Retryable, func() error {
		var err error
		bc, err = d.Clients.Builds.BuildConfigs(o.Namespace).Get(ctx, o.BuildConfig, metav1.GetOptions{})
		return err
	})
	if err != nil {
		return nil, d.apiFailure(err, permissions.GetBuildConfig, o)
	}
	if f := CheckOverrides(bc, o); f != nil {
		return nil, f
	}
	if bc.Spec.Source.Binary != nil {
		return d.upload(ctx, o)
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

// CheckOverrides rejects overrides the BuildConfig's strategy cannot take,
// with the messages OpenShift would give, before anything is started.
func CheckOverrides(bc *buildv1.BuildConfig, o Options) *failure.Error {
	st := bc.Spec.Strategy
	usage := func(flag, format string, args ...any) *failure.Error {
		u := failure.NewUsage("--%s: "+format, append([]any{flag}, args...)...)
		return u.Failure
	}
	if (len(o.BuildArgs) > 0 || o.NoCache != nil && *o.NoCache) && st.DockerStrategy == nil {
		flag := "build-arg"
		if len(o.BuildArgs) == 0 {
			flag = "no-cache"
		}
		return usage(flag, "Cannot specify Docker build specific options on %s/%s, not a Docker build", o.Namespace, bc.Name)
	}
	if o.Incremental != nil && *o.Incremental && st.SourceStrategy == nil {
		return usage("incremental", "Cannot specify Source build specific options on %s/%s, not a Source build", o.Namespace, bc.Name)
	}
	if bc.Spec.Source.Binary != nil {
		if o.SourceDir == "" {
			return usage("source-dir", "BuildConfig %s has a Binary source: pass the directory to upload", bc.Name)
		}
		if len(o.Env) > 0 || len(o.BuildArgs) > 0 {
			return usage("env", "a binary build request carries no env or build args; set them on BuildConfig %s instead", bc.Name)
		}
	}
	if bc.Annotations[buildv1.BuildConfigPausedAnnotation] == "true" {
		return failure.New(failure.BuildConfigPaused, "BuildConfig %s/%s is paused (annotation %s): unpause it to run builds",
			o.Namespace, bc.Name, buildv1.BuildConfigPausedAnnotation)
	}
	return nil
}

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// instantiate starts a build OpenShift clones itself. A lost answer is
// retried only after checking that no build of this request exists.
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
	var build *buildv1.Build
	err := retry.OnError(apiRetry, cancellation.Retryable, func() error {
		b, err := bcs.Instantiate(ctx, o.BuildConfig, req, metav1.CreateOptions{})
		if err == nil {
			build = b
			return nil
		}
		if !cancellation.Retryable(err) {
			return err
		}
		// The request may have been carried out before the answer was lost.
		list, lerr := d.Clients.Builds.Builds(o.Namespace).List(ctx, metav1.ListOptions{
			LabelSelector: labels.SelectorFromSet(labels.Set{LabelRequest: id}).String()})
		if lerr == nil && len(list.Items) > 0 {
			build = &list.Items[0]
			return nil
		}
		return err
	})
	if err != nil {
		return nil, d.startFailure(err, permissions.Instantiate, o)
	}
	return build, nil
}

func triggerMessage(o Options) string {
	if o.Owner.BuildRun != "" {
		return "Shipwright BuildRun " + o.Owner.BuildRun
	}
	return "Started by ocbuild"
}

// upload starts a binary build with the source directory.
func (d *Driver) upload(ctx context.Context, o Options) (*buildv1.Build, *failure.Error) {
	req := upload.Request{
		Client:      d.Clients.REST,
		Namespace:   o.Namespace,
		BuildConfig: o.BuildConfig,
		Dir:         o.SourceDir,
		IncludeGit:  o.IncludeGit,
		Progress:    func(s string) { d.logf("%s", s) },
		Warn:        func(s string) { d.logf("warning: %s", s) },
	}
	if rev, ok, err := revision.Read(o.SourceDir, o.SourceRoot); err != nil {
		d.logf("warning: cannot read the git commit of %s: %v; the build records no revision", o.SourceDir, err)
	} else if ok {
		req.Revision = buildv1.BinaryBuildRequestOptions{Commit: rev.Commit, Message: rev.Message,
			AuthorName: rev.AuthorName, AuthorEmail: rev.AuthorEmail, CommitterName: rev.CommitterName, CommitterEmail: rev.CommitterEmail}
		d.logf("source %s is commit %s", o.SourceDir, rev.Commit)
	} else if o.Commit != "" {
		req.Revision = buildv1.BinaryBuildRequestOptions{Commit: o.Commit}
	}
	uctx := ctx
	var stop context.CancelFunc
	if o.StartTimeout > 0 {
		// The server holds the request until the build runs: bound that
		// wait with --start-timeout (the server cancels the build when we
		// give up).
		uctx, stop = context.WithTimeout(ctx, o.StartTimeout+time.Minute)
		defer stop()
	}
	d.logf("uploading %s to BuildConfig %s/%s", o.SourceDir, o.Namespace, o.BuildConfig)
	var res *upload.Result
	// A conflict (OpenShift gave up bumping lastVersion) created no build,
	// and a failed upload's build is cancelled by the server: retrying is safe.
	err := retry.OnError(apiRetry, func(err error) bool {
		return cancellation.Retryable(err) && ctx.Err() == nil
	}, func() error {
		var err error
		res, err = upload.Start(uctx, req)
		return err
	})
	if err != nil {
		if ctx.Err() == nil && uctx.Err() != nil {
			return nil, failure.New(failure.StartTimeout, "the build did not start within --start-timeout %s; OpenShift cancels a binary build whose upload is abandoned", o.StartTimeout)
		}
		if name, ok := upload.BuildName(err.Error()); ok && apierrors.IsBadRequest(err) {
			// The build ended before it could take the source: report it
			// from its own status, which has the reason and log snippet.
			b, gerr := d.Clients.Builds.Builds(o.Namespace).Get(ctx, name, metav1.GetOptions{})
			if gerr == nil && buildwatch.Terminal(b.Status.Phase) {
				return nil, buildFailure(b)
			}
		}
		if apierrors.IsInternalError(err) || isStreamError(err) {
			return nil, failure.Wrap(failure.UploadFailed, err, "uploading %s to BuildConfig %s failed (OpenShift cancels the build)", o.SourceDir, o.BuildConfig)
		}
		return nil, d.startFailure(err, permissions.InstantiateBinary, o)
	}
	d.logf("uploaded %d files, %s (%s compressed) in %s", res.Stats.Files, upload.Bytes(res.Stats.Bytes), upload.Bytes(res.Sent), res.Duration.Round(time.Millisecond))
	return res.Build, nil
}

func isStreamError(err error) bool {
	var s apierrors.APIStatus
	if errors.As(err, &s) {
		return false
	}
	return true
}

// startFailure classifies an error from instantiate or instantiatebinary.
func (d *Driver) startFailure(err error, p permissions.Permission, o Options) *failure.Error {
	msg := err.Error()
	switch {
	case apierrors.IsNotFound(err) && strings.Contains(msg, "imagestreamtag"):
		return failure.Wrap(failure.BuilderImageNotFound, err, "the builder image of BuildConfig %s does not exist", o.BuildConfig)
	case apierrors.IsBadRequest(err) && strings.Contains(msg, "is paused"):
		return failure.Wrap(failure.BuildConfigPaused, err, "BuildConfig %s is paused", o.BuildConfig)
	}
	return d.apiFailure(err, p, o)
}

func (d *Driver) apiFailure(err error, p permissions.Permission, o Options) *failure.Error {
	who := ""
	if o.Owner.TaskRun != "" {
		who = "the TaskRun's service account"
	}
	f := failure.FromAPI(err, p, o.Namespace, who)
	if f.Reason == failure.BuildConfigNotFound {
		f.Message = fmt.Sprintf("BuildConfig %s not found in namespace %s: create it, or check the buildconfig parameter", o.BuildConfig, o.Namespace)
	}
	return f
}

// claim links the build to the TaskRun: labels for people and selectors, and
// the TaskRun as its only owner so deleting the BuildRun deletes the build.
// (Kubernetes collects an object only when all its owners are gone, so the
// BuildConfig's ownerReference is replaced.)
func (d *Driver) claim(ctx context.Context, o Options, b *buildv1.Build) {
	meta := map[string]any{"labels": o.Owner.Labels()}
	if o.Owner.TaskRunUID != "" {
		meta["annotations"] = map[string]string{buildconfig.AnnotationTaskRunUID: o.Owner.TaskRunUID}
		meta["ownerReferences"] = []metav1.OwnerReference{{
			APIVersion: "tekton.dev/v1", Kind: "TaskRun", Name: o.Owner.TaskRun, UID: types.UID(o.Owner.TaskRunUID),
		}}
	}
	patch, _ := json.Marshal(map[string]any{"metadata": meta})
	err := retry.OnError(apiRetry, cancellation.Retryable, func() error {
		_, err := d.Clients.Builds.Builds(o.Namespace).Patch(ctx, b.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
	if err != nil && ctx.Err() == nil {
		d.logf("warning: cannot link build %s to TaskRun %s (%v); deleting the BuildRun will not delete it", b.Name, o.Owner.TaskRun, err)
	}
}

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
		tb, err := buildwatch.Watch(watchCtx, builds, b.Name, tracker)
		done <- watched{tb, err}
	}()

	logCtx, stopLog := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLog()
	follower := &buildlog.Follower{Client: d.Clients.REST, Namespace: o.Namespace, Build: b.Name, Out: d.Out, Tracker: tracker,
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
			stopped = d.stopFailure(ctx, nil)
			break wait
		}
	}

	if final == nil {
		// We are giving up on a build that is still active: cancel it and
		// wait (bounded) for OpenShift to confirm.
		d.logf("cancelling build %s: %s", b.Name, stopped.Message)
		d.cancelBuild(o, b.Name)
		cctx, ccancel := context.WithTimeout(context.Background(), o.CancelGrace)
		if !watchEnded {
			// The watch ends at the terminal phase: the Cancelled we wait for.
			select {
			case w := <-done:
				final = w.b
			case <-cctx.Done():
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

	// Let the log drain (bounded): it never decides the outcome.
	select {
	case err := <-logDone:
		if err != nil {
			d.logf("warning: %v", err)
		}
	case <-time.After(o.LogGrace):
		d.logf("warning: the build log did not finish within %s after the build ended; it may be incomplete", o.LogGrace)
		stopLog()
	}
	if final.Status.Phase == buildv1.BuildPhaseComplete {
		return d.complete(ctx, o, final, nil)
	}
	return &Outcome{Build: final, Commit: commitOf(final), Failure: buildFailure(final)}
}

func (d *Driver) complete(ctx context.Context, o Options, b *buildv1.Build, f *failure.Error) *Outcome {
	out := &Outcome{Build: b, Commit: commitOf(b), Failure: f}
	if b.Status.Output.To != nil {
		out.Digest = b.Status.Output.To.ImageDigest
	}
	if out.Digest == "" {
		d.logf("warning: OpenShift reported no image digest for build %s; status.output.digest stays empty", b.Name)
		return out
	}
	ref := b.Status.OutputDockerImageReference
	if ref == "" && b.Spec.Output.To != nil {
		ref = b.Spec.Output.To.Name
	}
	d.logf("image %s@%s", strings.SplitN(ref, "@", 2)[0], out.Digest)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	size, err := o.Sizes.Size(sctx, ref, out.Digest)
	if err != nil {
		d.logf("warning: cannot determine the image size: %v", err)
	} else {
		out.Size = size
		d.logf("image size %d bytes (%s)", size, upload.Bytes(size))
	}
	return out
}

func commitOf(b *buildv1.Build) string {
	if b != nil && b.Spec.Revision != nil && b.Spec.Revision.Git != nil {
		return b.Spec.Revision.Git.Commit
	}
	return ""
}

// buildFailure reports a terminal, unsuccessful build with OpenShift's reason.
func buildFailure(b *buildv1.Build) *failure.Error {
	reason := string(b.Status.Reason)
	if reason == "" {
		switch b.Status.Phase {
		case buildv1.BuildPhaseCancelled:
			reason = failure.BuildCancelled
		case buildv1.BuildPhaseError:
			reason = "BuildError"
		default:
			reason = failure.BuildFailed
		}
	}
	msg := b.Status.Message
	if msg == "" {
		msg = fmt.Sprintf("build %s ended %s", b.Name, b.Status.Phase)
	} else {
		msg = fmt.Sprintf("build %s %s: %s", b.Name, strings.ToLower(string(b.Status.Phase)), msg)
	}
	return failure.New(reason, "%s", results.ErrorText(msg, b.Status.LogSnippet))
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

// cancelBuild cancels on a fresh context: the run's own context is usually
// the reason we are cancelling.
func (d *Driver) cancelBuild(o Options, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), o.CancelGrace)
	defer cancel()
	if err := cancellation.Build(ctx, d.Clients.Builds.Builds(o.Namespace), name); err != nil {
		d.logf("warning: cancelling build %s failed: %v", name, err)
	}
}

func (d *Driver) writeResults(o Options, out *Outcome) {
	write := func(name, value string) {
		if err := o.Results.Write(name, value); err != nil {
			d.logf("warning: %v", err)
		}
	}
	if out.Commit != "" {
		write(results.CommitSha, out.Commit)
	}
	if out.Failure != nil {
		d.logf("failed: %s: %s", out.Failure.Reason, firstLine(out.Failure.Message))
		write(results.ErrorReason, out.Failure.Reason)
		write(results.ErrorMessage, out.Failure.Message)
		return
	}
	write(results.ImageDigest, out.Digest)
	if out.Size > 0 {
		write(results.ImageSize, strconv.FormatInt(out.Size, 10))
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
