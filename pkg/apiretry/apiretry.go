// Package apiretry retries API calls the way client-go's util/retry does,
// without its "no error, no value" trap.
//
// retry.OnError (and RetryOnConflict, built on it) returns nil when the
// callback's last error is a context error — wait.Interrupted matches
// context.Canceled and DeadlineExceeded — and no retriable error came
// before it. A caller that reads the callback's result on a nil error then
// dereferences nil: exactly what a SIGTERM during a call produced. Every
// retried call in ocbuild goes through this package, which returns the
// callback's own last error whenever the callback did not succeed.
package apiretry

import (
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
)

// errNotCalled is returned if the backoff allowed no call at all.
var errNotCalled = errors.New("apiretry: the call was never made (backoff with no steps)")

// OnError calls fn until it succeeds, returns an error retriable rejects, or
// backoff is exhausted, and returns fn's last error: nil only when the last
// call succeeded, and the context error (not an earlier retried one) when
// the call was stopped.
func OnError(backoff wait.Backoff, retriable func(error) bool, fn func() error) error {
	last := errNotCalled
	_ = retry.OnError(backoff, retriable, func() error {
		last = fn()
		return last
	})
	return last
}

// OnConflict is OnError for update conflicts with client-go's DefaultRetry.
func OnConflict(fn func() error) error {
	return OnError(retry.DefaultRetry, apierrors.IsConflict, fn)
}
