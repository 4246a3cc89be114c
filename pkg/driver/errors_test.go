package driver

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clienttesting "k8s.io/client-go/testing"

	"github.com/ocbuild/ocbuild/pkg/buildconfig"
	"github.com/ocbuild/ocbuild/pkg/failure"
	"github.com/ocbuild/ocbuild/pkg/results"
)

func gitOptions(r *run) Options {
	return Options{Mode: ModeBuild, Namespace: ns, BuildConfig: "app", StartTimeout: time.Minute, Results: r.files(),
		Spec: buildconfig.Spec{Strategy: buildconfig.Docker, GitURL: "https://git.example.com/a.git", Output: "quay.io/t/a:1"}}
}

func TestForbiddenNamesTheMissingPermission(t *testing.T) {
	c := newCluster(t)
	c.client.PrependReactor("get", "buildconfigs", func(a clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "build.openshift.io", Resource: "buildconfigs"}, "app",
			nil)
	})
	r := newRun(t, c)
	_, err := r.d.Run(context.Background(), gitOptions(r))
	if err == nil {
		t.Fatal("Run succeeded without permission")
	}
	if got := r.result(results.ErrorReason); got != failure.Forbidden {
		t.Errorf("reason = %q", got)
	}
	if msg := r.result(results.ErrorMessage); !strings.Contains(msg, "may not get buildconfigs") || !strings.Contains(msg, "ocbuild-step") {
		t.Errorf("message %q does not name the resource and the Role to bind", msg)
	}
}

func TestStrategyDenialNamesTheClusterRole(t *testing.T) {
	c := newCluster(t)
	c.client.PrependReactor("create", "buildconfigs", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "instantiate" {
			return false, nil, nil
		}
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "build.openshift.io", Resource: "buildconfigs/instantiate"}, "app",
			errorString("build strategy Docker is not allowed"))
	})
	r := newRun(t, c)
	if _, err := r.d.Run(context.Background(), gitOptions(r)); err == nil {
		t.Fatal("Run succeeded")
	}
	if msg := r.result(results.ErrorMessage); !strings.Contains(msg, "system:build-strategy-docker") {
		t.Errorf("message %q does not name the ClusterRole to grant", msg)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

// A cluster without the Build API answers 404 to every build.openshift.io
// call; the run says so instead of "BuildConfig not found", in both modes,
// and asks discovery only then.
func TestBuildAPINotServed(t *testing.T) {
	for _, mode := range []string{ModeBuild, ModeStart} {
		t.Run(mode, func(t *testing.T) {
			c := newCluster(t)
			c.client.PrependReactor("*", "buildconfigs", func(a clienttesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewNotFound(schema.GroupResource{Group: "build.openshift.io", Resource: "buildconfigs"}, "app")
			})
			r := newRun(t, c)
			asked := 0
			r.d.Clients.ServesBuildAPI = func(context.Context) (bool, error) { asked++; return false, nil }
			o := gitOptions(r)
			o.Mode = mode
			if _, err := r.d.Run(context.Background(), o); err == nil {
				t.Fatal("Run succeeded without the build API")
			}
			if got := r.result(results.ErrorReason); got != failure.BuildAPIUnavailable {
				t.Errorf("reason = %q (message %q)", got, r.result(results.ErrorMessage))
			}
			if asked != 1 {
				t.Errorf("discovery asked %d times, want once (to explain the 404)", asked)
			}
		})
	}
}

// On a cluster that serves the Build API, discovery is never asked.
func TestServedBuildAPIIsNotRediscovered(t *testing.T) {
	c := newCluster(t)
	c.outcome = complete("sha256:" + strings.Repeat("c", 64))
	r := newRun(t, c)
	r.d.Clients.ServesBuildAPI = func(context.Context) (bool, error) {
		t.Error("discovery asked although every call answered")
		return true, nil
	}
	if _, err := r.d.Run(context.Background(), gitOptions(r)); err != nil {
		t.Fatal(err)
	}
}

func TestMissingBuildConfig(t *testing.T) {
	c := newCluster(t)
	r := newRun(t, c)
	o := Options{Mode: ModeStart, Namespace: ns, BuildConfig: "nope", StartTimeout: time.Minute, Results: r.files()}
	if _, err := r.d.Run(context.Background(), o); err == nil {
		t.Fatal("Run succeeded")
	}
	if got := r.result(results.ErrorReason); got != failure.BuildConfigNotFound {
		t.Errorf("reason = %q", got)
	}
	if msg := r.result(results.ErrorMessage); !strings.Contains(msg, "nope") {
		t.Errorf("message %q does not name the BuildConfig", msg)
	}
}

// A 503 after the server already created the build must not start a second
// build: the retry adopts the one the request made.
func TestLostInstantiateAnswerAdoptsTheBuild(t *testing.T) {
	c := newCluster(t)
	c.outcome = complete("sha256:" + strings.Repeat("d", 64))
	lost := true
	c.client.PrependReactor("create", "buildconfigs", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "instantiate" || !lost {
			return false, nil, nil
		}
		lost = false
		req := a.(clienttesting.CreateAction).GetObject().(*buildv1.BuildRequest)
		b, err := c.generate(req.Name, req, false)
		if err != nil {
			return true, nil, err
		}
		go c.run(b.Name)
		return true, nil, apierrors.NewServiceUnavailable("the answer was lost")
	})
	r := newRun(t, c)
	out, err := r.d.Run(context.Background(), gitOptions(r))
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, r.log)
	}
	list, _ := c.client.BuildV1().Builds(ns).List(context.Background(), metav1.ListOptions{})
	if len(list.Items) != 1 || out.Build.Name != "app-1" {
		t.Errorf("%d builds exist, run finished %s; want exactly app-1", len(list.Items), out.Build.Name)
	}
}

// OpenShift's OwnerReferencesPermissionEnforcement refuses a patch that sets
// ownerReferences when the caller may not delete builds: the build still
// gets its labels, and the warning names the missing permission.
func TestClaimWithoutDeleteKeepsTheLabels(t *testing.T) {
	c := newCluster(t)
	c.client.PrependReactor("patch", "builds", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if strings.Contains(string(a.(clienttesting.PatchAction).GetPatch()), "ownerReferences") {
			return true, nil, apierrors.NewForbidden(buildsGVR.GroupResource(), a.(clienttesting.PatchAction).GetName(),
				errors.New("cannot set an ownerRef on a resource you can't delete"))
		}
		return false, nil, nil
	})
	c.outcome = complete("sha256:" + strings.Repeat("e", 64))
	r := newRun(t, c)
	o := Options{Mode: ModeBuild, Namespace: ns, BuildConfig: "app", Results: r.files(),
		Owner: buildconfig.Owner{Build: "app", BuildRun: "app-run", TaskRun: "tr-1", TaskRunUID: "uid-1"},
		Spec:  buildconfig.Spec{Strategy: buildconfig.Docker, GitURL: "https://git.example.com/a.git", Output: "quay.io/t/a:1"}}
	if _, err := r.d.Run(context.Background(), o); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := c.get("app-1").Labels[buildconfig.LabelBuildRun]; got != "app-run" {
		t.Errorf("build label %s = %q, want app-run", buildconfig.LabelBuildRun, got)
	}
	if !strings.Contains(r.log.String(), "delete builds") {
		t.Errorf("the warning does not name the missing permission:\n%s", r.log)
	}
}
