package driver

// The outcome: digest and size of a completed build, the failure of one that
// did not complete, and the Tekton result files written from either.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	buildv1 "github.com/openshift/api/build/v1"

	"github.com/ocbuild/ocbuild/pkg/failure"
	"github.com/ocbuild/ocbuild/pkg/results"
	"github.com/ocbuild/ocbuild/pkg/upload"
)

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
	// The lookup ends with the run's context: a stopped step has no time
	// for it, and the digest is already known.
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	size, err := o.Sizes.Size(sctx, ref, out.Digest)
	switch {
	case ctx.Err() != nil:
		if out.Failure == nil {
			out.Failure = d.stopFailure(ctx, nil, "after the build completed, while the image size was looked up")
		}
		d.logf("warning: the image size was not looked up: %s", out.Failure.Message)
	case err != nil:
		d.logf("warning: cannot determine the image size: %v", err)
	default:
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
//
// OpenShift's builder marks the build Failed before the controller adds
// logSnippet (once the pod has ended), so at the Failed transition the
// snippet is usually missing: tail, the last lines the step streamed
// itself, stands in for it.
func buildFailure(b *buildv1.Build, tail []string) *failure.Error {
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
	snippet := b.Status.LogSnippet
	if snippet == "" && len(tail) > 0 {
		snippet = strings.Join(tail, "\n")
	}
	return failure.New(reason, "%s", results.ErrorText(msg, snippet))
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
		if out.Digest == "" {
			return
		}
		// A build that completed before a stop reached it did push its
		// image: its digest is true, though the run reports the stop.
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
