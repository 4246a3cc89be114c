package driver

// The binary start: instantiatebinary with the source directory. The server
// holds the request until the build runs, reads the body only then, and
// answers only once it consumed it; it does not notice a client that gives
// up. So --start-timeout is enforced here by watching the build the request
// creates, and every attempt that did not answer cleanly is settled: the
// build it may have created is cancelled before the run gives up or tries
// again. A retry is the caller's (it re-reads lastVersion under its lock).

import (
	"context"
	"errors"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ocbuild/ocbuild/pkg/buildwatch"
	"github.com/ocbuild/ocbuild/pkg/cancellation"
	"github.com/ocbuild/ocbuild/pkg/failure"
	"github.com/ocbuild/ocbuild/pkg/permissions"
	"github.com/ocbuild/ocbuild/pkg/revision"
	"github.com/ocbuild/ocbuild/pkg/upload"
)

// errStartTimeout is the upload's cancel cause when --start-timeout passed
// with the build still New or Pending.
var errStartTimeout = errors.New("start timeout")

// uploadRequest is the instantiatebinary request for o.
func (d *Driver) uploadRequest(o Options) upload.Request {
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
	return req
}

// upload makes one binary start; lastVersion is the BuildConfig's, read
// before the start (the build will be the next). On failure the build the
// request may have created has been cancelled; again says a new attempt
// (with a fresh lastVersion, under the caller's lock) is worth making.
func (d *Driver) upload(ctx context.Context, o Options, req upload.Request, lastVersion int64) (b *buildv1.Build, f *failure.Error, again bool) {
	p := pending{buildConfig: o.BuildConfig, lastVersion: lastVersion}
	d.logf("uploading %s to BuildConfig %s/%s", o.SourceDir, o.Namespace, o.BuildConfig)
	res, timedOut, err := d.uploadOnce(ctx, o, req, p)
	if err == nil {
		d.logf("uploaded %d files, %s (%s compressed) in %s", res.Stats.Files, upload.Bytes(res.Stats.Bytes), upload.Bytes(res.Sent), res.Duration.Round(time.Millisecond))
		return res.Build, nil, false
	}
	f = d.uploadFailure(ctx, o, p, err, timedOut)
	stopped := ctx.Err() != nil || timedOut
	if !stopped && !mayHaveStarted(err) {
		return nil, f, false
	}
	if b = d.settle(o, p); b == nil {
		return nil, f, !stopped && cancellation.Retryable(err)
	}
	if !stopped && buildTerminal(b) && !b.Status.Cancelled {
		// The build ended before it could take the source: report it from
		// its own status, which has the reason.
		return b, buildFailure(b, nil), false
	}
	b, f = d.abandon(ctx, o, b, f)
	if !stopped && cancellation.Retryable(err) {
		d.logf("warning: the upload failed (%v) and its build %s was cancelled; starting again", err, b.Name)
		return b, f, true
	}
	return b, f, false
}

// uploadOnce makes one instantiatebinary request; timedOut says it was
// given up because the build stayed New/Pending past --start-timeout.
func (d *Driver) uploadOnce(ctx context.Context, o Options, req upload.Request, p pending) (*upload.Result, bool, error) {
	uctx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	if o.StartTimeout > 0 {
		go d.guardStart(uctx, abort, o, p)
	}
	res, err := upload.Start(uctx, req)
	timedOut := errors.Is(context.Cause(uctx), errStartTimeout)
	if err == nil && res == nil {
		err = errors.New("instantiatebinary returned no build")
	}
	return res, timedOut, err
}

// guardStart aborts the upload when the build p creates is still New or
// Pending (or not even created) once --start-timeout has passed. A build
// that runs is taking the source: the upload may take as long as it needs.
func (d *Driver) guardStart(ctx context.Context, abort context.CancelCauseFunc, o Options, p pending) {
	t := time.NewTimer(o.StartTimeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	builds := d.Clients.Builds.Builds(o.Namespace)
	_ = wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		b, err := builds.Get(ctx, p.candidate(), metav1.GetOptions{})
		switch {
		case err == nil && buildwatch.Started(b.Status.Phase):
			return true, nil
		case err == nil || apierrors.IsNotFound(err):
			phase := "not created"
			if err == nil {
				phase = string(b.Status.Phase) + reasonSuffix(b)
			}
			d.logf("build %s is %s after --start-timeout %s: giving up the upload", p.candidate(), phase, o.StartTimeout)
			abort(errStartTimeout)
			return true, nil
		}
		return false, nil // transient: look again
	})
}

// mayHaveStarted reports whether a failed instantiatebinary may have left a
// build: a 400 names a build that exists, a 5xx or broken connection says
// nothing. Other answers (403, 404, 409, 422) come before the build exists.
func mayHaveStarted(err error) bool {
	return !isStatus(err) || apierrors.IsBadRequest(err) || cancellation.Retryable(err) && !apierrors.IsConflict(err)
}

// uploadFailure classifies a failed instantiatebinary.
func (d *Driver) uploadFailure(ctx context.Context, o Options, p pending, err error, timedOut bool) *failure.Error {
	switch {
	case timedOut:
		return failure.New(failure.StartTimeout, "build %s did not start within --start-timeout %s; the upload was given up and the build cancelled",
			p.candidate(), o.StartTimeout)
	case ctx.Err() != nil:
		return d.stopFailure(ctx, nil, "during the upload; the build it started was cancelled")
	case apierrors.IsInternalError(err) || !isStatus(err):
		return failure.Wrap(failure.UploadFailed, err, "uploading %s to BuildConfig %s failed", o.SourceDir, o.BuildConfig)
	}
	return d.startFailure(err, permissions.InstantiateBinary, o)
}
