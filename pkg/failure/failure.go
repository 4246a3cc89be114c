// Package failure gives every way an ocbuild run can fail a named reason and a
// message a person can act on. The reason becomes the Tekton result
// shp-error-reason, which Shipwright copies to BuildRun.status.failureDetails.
//
// OpenShift's own build reasons (DockerBuildFailed, GenericBuildFailed, …) are
// already CamelCase and are passed through unchanged; the reasons below cover
// what happens around the build.
package failure

import (
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/ocbuild/ocbuild/pkg/permissions"
)

// Reasons ocbuild reports itself.
const (
	InvalidInput          = "InvalidInput"
	Forbidden             = "Forbidden"
	BuildAPIUnavailable   = "BuildAPIUnavailable"
	BuildConfigNotFound   = "BuildConfigNotFound"
	BuilderImageNotFound  = "BuilderImageNotFound"
	UploadFailed          = "UploadFailed"
	StartTimeout          = "StartTimeout"
	Timeout               = "Timeout"
	BuildCancelled        = "BuildCancelled"
	BuildDeleted          = "BuildDeleted"
	BuildFailed           = "BuildFailed"
	RegistryUnreachable   = "RegistryUnreachable"
	ResultsNotWritten     = "ResultsNotWritten"
	BuildConfigContention = "BuildConfigContention"
	BuildConfigNotOwned   = "BuildConfigNotOwned"
	BuildConfigPaused     = "BuildConfigPaused"
)

// Error is a failure with a reason. Err, when set, is the underlying cause.
type Error struct {
	Reason  string
	Message string
	Err     error
	// Usage marks the caller's mistake (exit code 2); nothing was started.
	Usage bool
}

func (e *Error) Error() string {
	return e.Reason + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New returns a failure with a formatted message.
func New(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns a failure whose message is the formatted context followed by err.
func Wrap(reason string, err error, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if err != nil {
		msg += ": " + err.Error()
	}
	return &Error{Reason: reason, Message: msg, Err: err}
}

// As extracts the failure from err; errors without one become reason fallback.
func As(err error, fallback string) *Error {
	var f *Error
	if errors.As(err, &f) {
		return f
	}
	return &Error{Reason: fallback, Message: err.Error(), Err: err}
}

// Usage marks a failure as the caller's fault: the process exits with code 2.
type Usage struct{ Failure *Error }

func (u *Usage) Error() string { return u.Failure.Message }

// Unwrap exposes the failure, so As finds the reason.
func (u *Usage) Unwrap() error { return u.Failure }

// NewUsage returns a usage error (reason InvalidInput).
func NewUsage(format string, args ...any) *Usage {
	f := New(InvalidInput, format, args...)
	f.Usage = true
	return &Usage{f}
}

// IsUsage reports whether err is, or wraps, a usage error.
func IsUsage(err error) bool {
	var u *Usage
	if errors.As(err, &u) {
		return true
	}
	var f *Error
	return errors.As(err, &f) && f.Usage
}

// FromAPI turns an error from the API server into a failure for the call p in
// namespace ns, naming the permission and the fix where it can. who is the
// identity making the call, for the message (may be empty).
func FromAPI(err error, p permissions.Permission, ns, who string) *Error {
	if err == nil {
		return nil
	}
	var f *Error
	if errors.As(err, &f) {
		return f
	}
	switch {
	case apierrors.IsForbidden(err):
		text := err.Error()
		if strings.Contains(text, "build strategy") && strings.Contains(text, "is not allowed") {
			strategy := strategyFrom(text)
			return Wrap(Forbidden, err, "OpenShift does not allow %s to run %s builds: a cluster admin must bind the ClusterRole system:build-strategy-%s to it (see strategies/rbac/README.md)",
				orDefault(who, "the step's service account"), strategy, strings.ToLower(strategy))
		}
		return Wrap(Forbidden, err, "%s may not %s in namespace %s: bind the Role ocbuild-step from strategies/rbac to the BuildRun's service account",
			orDefault(who, "the step's service account"), p, ns)
	case apierrors.IsUnauthorized(err):
		return Wrap(Forbidden, err, "the API server did not accept the step's credentials")
	case apierrors.IsInvalid(err):
		return Wrap(InvalidInput, err, "OpenShift rejected the %s", p.ResourceName())
	case isNoResource(err):
		return Wrap(BuildAPIUnavailable, err, "the cluster does not serve %s/%s: the OpenShift Build capability is disabled or this is not an OpenShift cluster", p.Group, p.ResourceName())
	case apierrors.IsNotFound(err):
		if p.Resource == "buildconfigs" {
			return Wrap(BuildConfigNotFound, err, "BuildConfig not found in namespace %s", ns)
		}
		return Wrap(BuildDeleted, err, "%s not found in namespace %s", p.ResourceName(), ns)
	case apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err), apierrors.IsServerTimeout(err),
		apierrors.IsTimeout(err), apierrors.IsTooManyRequests(err), apierrors.IsUnexpectedServerError(err):
		return Wrap(BuildAPIUnavailable, err, "the build API did not answer %s", p)
	}
	return Wrap(BuildAPIUnavailable, err, "%s failed", p)
}

// isNoResource tells a missing resource type (404 with no object name) from a
// missing object.
func isNoResource(err error) bool {
	var s *apierrors.StatusError
	if !errors.As(err, &s) {
		return false
	}
	st := s.Status()
	return st.Code == 404 && (st.Details == nil || st.Details.Name == "")
}

func strategyFrom(text string) string {
	i := strings.Index(text, "build strategy ")
	if i < 0 {
		return "Docker"
	}
	rest := strings.Fields(text[i+len("build strategy "):])
	if len(rest) == 0 {
		return "Docker"
	}
	return rest[0]
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
