package apiretry

import (
	"context"
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
)

var quick = wait.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 3}

func retriable(err error) bool { return apierrors.IsInternalError(err) }

// The trap this package exists for: client-go answers nil although the
// call failed with a context error.
func TestClientGoSwallowsContextErrors(t *testing.T) {
	err := retry.OnError(quick, retriable, func() error { return context.Canceled })
	if err != nil {
		t.Skipf("client-go no longer swallows context errors (%v); apiretry is still correct", err)
	}
}

func TestOnErrorReturnsTheContextError(t *testing.T) {
	for _, cause := range []error{context.Canceled, context.DeadlineExceeded, wait.ErrorInterrupted(errors.New("x"))} {
		err := OnError(quick, retriable, func() error { return cause })
		if err == nil || !errors.Is(err, cause) {
			t.Errorf("OnError with callback error %v = %v, want that error", cause, err)
		}
	}
}

func TestOnErrorContextErrorAfterRetries(t *testing.T) {
	calls := 0
	err := OnError(quick, retriable, func() error {
		calls++
		if calls == 1 {
			return apierrors.NewInternalError(errors.New("boom"))
		}
		return context.Canceled
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestOnErrorSuccessAndExhaustion(t *testing.T) {
	calls := 0
	if err := OnError(quick, retriable, func() error {
		calls++
		if calls < 3 {
			return apierrors.NewInternalError(errors.New("boom"))
		}
		return nil
	}); err != nil || calls != 3 {
		t.Fatalf("err = %v after %d calls, want nil after 3", err, calls)
	}
	err := OnError(quick, retriable, func() error { return apierrors.NewInternalError(errors.New("always")) })
	if !apierrors.IsInternalError(err) {
		t.Fatalf("exhausted retries: err = %v, want the last InternalError", err)
	}
}

func TestOnConflict(t *testing.T) {
	calls := 0
	err := OnConflict(func() error {
		calls++
		if calls == 1 {
			return apierrors.NewConflict(schema.GroupResource{Resource: "buildconfigs"}, "bc", errors.New("stale"))
		}
		return context.Canceled
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
