// Package cancellation stops OpenShift builds when their BuildRun stops.
//
// Tekton ends a cancelled or timed-out TaskRun in one of two ways: it deletes
// the pod (the step gets SIGTERM and 30 s), or, with keep-pod-on-cancel, it
// kills the step with SIGKILL and no warning. The step handles the first
// through its signal context; for the second it watches its own TaskRun and
// cancels the build the moment the TaskRun is marked cancelled or timed out.
package cancellation

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/ocbuild/ocbuild/pkg/apiretry"
	"github.com/ocbuild/ocbuild/pkg/buildapi"
	"github.com/ocbuild/ocbuild/pkg/onewatch"
)

// cancelPatch sets status.cancelled; a merge patch never conflicts.
var cancelPatch = []byte(`{"status":{"cancelled":true}}`)

// Build asks OpenShift to cancel the build, retrying transient API errors
// until ctx ends. A build that already ended keeps its phase (OpenShift stores
// the flag but does not change a terminal build).
func Build(ctx context.Context, c buildapi.BuildInterface, name string) error {
	// No Cap: wait.Backoff stops retrying once a Cap is reached.
	backoff := wait.Backoff{Duration: 200 * time.Millisecond, Factor: 1.5, Jitter: 0.1, Steps: 10}
	return apiretry.OnError(backoff, Retryable, func() error {
		_, err := c.Patch(ctx, name, types.MergePatchType, cancelPatch, metav1.PatchOptions{})
		return err
	})
}

// Retryable reports API errors worth another try: the server or a proxy
// failed, or the request timed out.
func Retryable(err error) bool {
	return apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) || apierrors.IsUnexpectedServerError(err) ||
		failedByCode(err) || apierrors.IsConflict(err)
}

// failedByCode catches 5xx answers whose Status carries no matching reason
// (proxies, gateways).
func failedByCode(err error) bool {
	var s *apierrors.StatusError
	if errors.As(err, &s) {
		c := s.Status().Code
		return c == 502 || c == 503 || c == 504 || c == 500
	}
	return false
}

// TaskRuns is Tekton's TaskRun resource at its storage version.
var TaskRuns = schema.GroupVersionResource{Group: "tekton.dev", Version: "v1", Resource: "taskruns"}

// Stopped reports why the TaskRun no longer wants the build to run: it was
// cancelled, timed out, or is gone. An empty string means it still runs.
func Stopped(tr *unstructured.Unstructured, uid string) string {
	if uid != "" && string(tr.GetUID()) != uid {
		return "TaskRunReplaced"
	}
	if tr.GetDeletionTimestamp() != nil {
		return "TaskRunDeleted"
	}
	if s, _, _ := unstructured.NestedString(tr.Object, "spec", "status"); s == "TaskRunCancelled" {
		return "TaskRunCancelled"
	}
	conds, _, _ := unstructured.NestedSlice(tr.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != "Succeeded" {
			continue
		}
		if m["status"] == "False" {
			if r, _ := m["reason"].(string); r != "" {
				return r
			}
			return "TaskRunFailed"
		}
	}
	return ""
}

// WatchTaskRun watches the TaskRun name (with uid, when known) and returns the
// reason it stopped (see Stopped), or ctx's error. Watch errors are retried by
// the informer; a Forbidden list ends the watch with that error.
func WatchTaskRun(ctx context.Context, dc dynamic.Interface, namespace, name, uid string) (string, error) {
	ri := dc.Resource(TaskRuns).Namespace(namespace)
	sel := onewatch.Selector(name)
	lw := onewatch.ByName(name,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return ri.List(ctx, o) },
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return ri.Watch(ctx, o) })
	// A list answered with Forbidden would be retried forever by the
	// informer; check once so the caller can warn and carry on.
	if _, err := ri.List(ctx, metav1.ListOptions{FieldSelector: sel, Limit: 1}); err != nil {
		return "", fmt.Errorf("cancellation: list taskruns: %w", err)
	}
	var reason string
	_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, nil, func(e watch.Event) (bool, error) {
		if e.Type == watch.Deleted {
			reason = "TaskRunDeleted"
			return true, nil
		}
		tr, ok := e.Object.(*unstructured.Unstructured)
		if !ok {
			return false, nil
		}
		reason = Stopped(tr, uid)
		return reason != "", nil
	})
	if err != nil {
		return "", err
	}
	return reason, nil
}
