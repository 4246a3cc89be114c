package failure_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/ocbuild/ocbuild/pkg/failure"
	"github.com/ocbuild/ocbuild/pkg/permissions"
)

var (
	buildConfigs = schema.GroupResource{Group: "build.openshift.io", Resource: "buildconfigs"}
	builds       = schema.GroupResource{Group: "build.openshift.io", Resource: "builds"}
)

func contains(t *testing.T, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%q does not contain %q", s, w)
		}
	}
}

func TestFromAPI(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		p      permissions.Permission
		who    string
		reason string
		want   []string
		absent []string
	}{
		{
			name:   "403 build strategy Docker not allowed",
			err:    apierrors.NewForbidden(buildConfigs, "app", errors.New("build strategy Docker is not allowed")),
			p:      permissions.Instantiate,
			who:    "system:serviceaccount:ns:pipeline",
			reason: failure.Forbidden,
			want: []string{
				"system:build-strategy-docker", "system:serviceaccount:ns:pipeline", "run Docker builds",
				"cluster admin", "build strategy Docker is not allowed",
			},
			absent: []string{"ocbuild-step"},
		},
		{
			name:   "403 build strategy Source not allowed, default identity",
			err:    apierrors.NewForbidden(buildConfigs, "app", errors.New("build strategy Source is not allowed")),
			p:      permissions.CreateBuildConfig,
			reason: failure.Forbidden,
			want:   []string{"system:build-strategy-source", "the step's service account", "run Source builds"},
		},
		{
			name:   "plain 403 names the verb, resource and the Role",
			err:    apierrors.NewForbidden(buildConfigs, "app", errors.New("User cannot create resource")),
			p:      permissions.Instantiate,
			who:    "system:serviceaccount:ns:pipeline",
			reason: failure.Forbidden,
			want: []string{
				"system:serviceaccount:ns:pipeline may not create buildconfigs/instantiate (group build.openshift.io) in namespace team-a",
				"Role ocbuild-step", "strategies/rbac",
			},
			absent: []string{"system:build-strategy"},
		},
		{
			name:   "plain 403 without identity",
			err:    apierrors.NewForbidden(builds, "app-1", errors.New("nope")),
			p:      permissions.PatchBuild,
			reason: failure.Forbidden,
			want:   []string{"the step's service account may not patch builds (group build.openshift.io) in namespace team-a", "ocbuild-step"},
		},
		{
			name:   "401",
			err:    apierrors.NewUnauthorized("token expired"),
			p:      permissions.GetBuild,
			reason: failure.Forbidden,
			want:   []string{"credentials", "token expired"},
		},
		{
			name:   "404 without a name: the resource type is not served",
			err:    apierrors.NewNotFound(buildConfigs, ""),
			p:      permissions.GetBuildConfig,
			reason: failure.BuildAPIUnavailable,
			want:   []string{"build.openshift.io/buildconfigs", "OpenShift Build capability"},
		},
		{
			name:   "404 generic response without a name",
			err:    apierrors.NewGenericServerResponse(404, "post", buildConfigs, "", "the server could not find the requested resource", 0, false),
			p:      permissions.Instantiate,
			reason: failure.BuildAPIUnavailable,
			want:   []string{"build.openshift.io/buildconfigs/instantiate"},
		},
		{
			name:   "404 for a buildconfig",
			err:    apierrors.NewNotFound(buildConfigs, "app"),
			p:      permissions.Instantiate,
			reason: failure.BuildConfigNotFound,
			want:   []string{"BuildConfig not found in namespace team-a", `"app" not found`},
		},
		{
			name:   "404 for a build",
			err:    apierrors.NewNotFound(builds, "app-1"),
			p:      permissions.GetBuild,
			reason: failure.BuildDeleted,
			want:   []string{"builds not found in namespace team-a"},
		},
		{
			name: "422",
			err: apierrors.NewInvalid(schema.GroupKind{Group: "build.openshift.io", Kind: "BuildConfig"}, "app",
				field.ErrorList{field.Invalid(field.NewPath("spec", "runPolicy"), "Sometimes", "run policy must Parallel, Serial, or SerialLatestOnly")}),
			p:      permissions.UpdateBuildConfig,
			reason: failure.InvalidInput,
			want:   []string{"OpenShift rejected the buildconfigs", "spec.runPolicy", "run policy must Parallel"},
		},
		{
			name:   "500",
			err:    apierrors.NewInternalError(errors.New("etcd is sad")),
			p:      permissions.Instantiate,
			reason: failure.BuildAPIUnavailable,
			want:   []string{"the build API did not answer create buildconfigs/instantiate", "etcd is sad"},
		},
		{
			name:   "503",
			err:    apierrors.NewServiceUnavailable("apiserver restarting"),
			p:      permissions.GetBuild,
			reason: failure.BuildAPIUnavailable,
			want:   []string{"did not answer get builds", "apiserver restarting"},
		},
		{
			name:   "503 generic response",
			err:    apierrors.NewGenericServerResponse(503, "get", builds, "app-1", "", 0, false),
			p:      permissions.GetBuild,
			reason: failure.BuildAPIUnavailable,
			want:   []string{"did not answer get builds"},
		},
		{
			name:   "429",
			err:    apierrors.NewTooManyRequests("slow down", 1),
			p:      permissions.ListBuilds,
			reason: failure.BuildAPIUnavailable,
			want:   []string{"did not answer list builds"},
		},
		{
			name:   "504 timeout",
			err:    apierrors.NewTimeoutError("took too long", 1),
			p:      permissions.GetBuildLog,
			reason: failure.BuildAPIUnavailable,
			want:   []string{"did not answer get builds/log"},
		},
		{
			name:   "non-API error",
			err:    fmt.Errorf("dial tcp 10.0.0.1:443: connect: connection refused"),
			p:      permissions.GetBuildConfig,
			reason: failure.BuildAPIUnavailable,
			want:   []string{"get buildconfigs (group build.openshift.io) failed", "connection refused"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := failure.FromAPI(tc.err, tc.p, "team-a", tc.who)
			if f == nil {
				t.Fatal("FromAPI returned nil")
			}
			if f.Reason != tc.reason {
				t.Errorf("reason = %q, want %q (message %q)", f.Reason, tc.reason, f.Message)
			}
			contains(t, f.Message, tc.want...)
			for _, a := range tc.absent {
				if strings.Contains(f.Message, a) {
					t.Errorf("message %q should not contain %q", f.Message, a)
				}
			}
			if !errors.Is(f, tc.err) {
				t.Errorf("the failure does not wrap the API error")
			}
			if f.Usage || failure.IsUsage(f) {
				t.Errorf("an API failure is not a usage error")
			}
			if got := f.Error(); got != tc.reason+": "+f.Message {
				t.Errorf("Error() = %q", got)
			}
		})
	}
}

func TestFromAPIPassesFailuresThrough(t *testing.T) {
	if f := failure.FromAPI(nil, permissions.GetBuild, "ns", ""); f != nil {
		t.Errorf("FromAPI(nil) = %v, want nil", f)
	}
	orig := failure.New(failure.StartTimeout, "stuck in New for 10m")
	if f := failure.FromAPI(orig, permissions.GetBuild, "ns", ""); f != orig {
		t.Errorf("FromAPI(*Error) = %v, want the same failure", f)
	}
	wrapped := fmt.Errorf("waiting: %w", orig)
	if f := failure.FromAPI(wrapped, permissions.GetBuild, "ns", ""); f != orig {
		t.Errorf("FromAPI(wrapped *Error) = %v, want the inner failure", f)
	}
}

func TestNewWrapAs(t *testing.T) {
	f := failure.New(failure.Timeout, "build %s ran longer than %s", "app-1", "1h")
	if f.Reason != failure.Timeout || f.Message != "build app-1 ran longer than 1h" || f.Err != nil {
		t.Errorf("New = %+v", f)
	}
	if f.Error() != "Timeout: build app-1 ran longer than 1h" {
		t.Errorf("Error() = %q", f.Error())
	}

	cause := errors.New("broken pipe")
	w := failure.Wrap(failure.UploadFailed, cause, "uploading %s", "/workspace/source")
	if w.Message != "uploading /workspace/source: broken pipe" || !errors.Is(w, cause) {
		t.Errorf("Wrap = %+v", w)
	}
	if w := failure.Wrap(failure.UploadFailed, nil, "no cause"); w.Message != "no cause" {
		t.Errorf("Wrap(nil) message = %q", w.Message)
	}

	if got := failure.As(fmt.Errorf("ctx: %w", w), failure.BuildFailed); got != w {
		t.Errorf("As did not find the wrapped failure: %+v", got)
	}
	plain := errors.New("plain")
	got := failure.As(plain, failure.BuildFailed)
	if got.Reason != failure.BuildFailed || got.Message != "plain" || !errors.Is(got, plain) {
		t.Errorf("As(plain) = %+v", got)
	}
}

func TestUsage(t *testing.T) {
	u := failure.NewUsage("--%s: bad", "to")
	if u.Error() != "--to: bad" {
		t.Errorf("Usage.Error() = %q, want the bare message", u.Error())
	}
	if !failure.IsUsage(u) || !failure.IsUsage(fmt.Errorf("parse: %w", u)) {
		t.Error("IsUsage does not see the usage error")
	}
	f := failure.As(u, failure.BuildFailed)
	if f.Reason != failure.InvalidInput || !f.Usage || f.Message != "--to: bad" {
		t.Errorf("As(usage) = %+v, want reason InvalidInput", f)
	}
	// A failure marked Usage (e.g. found against the cluster) counts too.
	marked := &failure.Error{Reason: failure.InvalidInput, Message: "x", Usage: true}
	if !failure.IsUsage(fmt.Errorf("w: %w", marked)) {
		t.Error("IsUsage(marked failure) = false")
	}
	if failure.IsUsage(failure.New(failure.BuildFailed, "x")) || failure.IsUsage(errors.New("x")) {
		t.Error("IsUsage is true for a non-usage error")
	}
}
