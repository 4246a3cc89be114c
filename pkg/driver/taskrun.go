package driver

// The TaskRun as a source of stops: Tekton's keep-pod-on-cancel mode kills
// the step with SIGKILL and no warning, so the step watches its own TaskRun
// and stops when it is cancelled or times out; and the TaskRun's timeout
// bounds the build pod (completionDeadlineSeconds) as a backstop.

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ocbuild/ocbuild/pkg/cancellation"
	"github.com/ocbuild/ocbuild/pkg/failure"
)

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
