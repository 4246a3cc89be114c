package openshift

import (
	"context"
	"fmt"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildv1alpha1 "github.com/shipwright-io/build/pkg/apis/build/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"

	"github.com/ocbuild/ocbuild/test/e2e/openshift/kit"
	"github.com/ocbuild/ocbuild/test/sandbox"
)

// Manifests written for Shipwright v1alpha1 (older docs and blog posts, see
// docs/migration.md) work: the API server converts them to the stored
// v1beta1 and back through Shipwright's conversion webhook. A v1alpha1
// Build (spec.source.url) and BuildRun (spec.buildRef) run through ocbuild's
// docker strategy; the BuildRun read through v1alpha1 reports the cloned
// commit in status.sources, and a v1alpha1 cancel ends it canceled.
func TestV1alpha1(t *testing.T) {
	t.Run("succeeds", func(t *testing.T) {
		ctx := testContext(t, 6*time.Minute)
		ns := newNamespace(t, true)
		b := registerV1alpha1Build(t, v1alpha1GitBuild(ns, "hello", "hello", dockerStrategy))
		br := waitV1alpha1BuildRunDone(ctx, t, ns, createV1alpha1BuildRun(t, ns, b.Name))

		if c := br.Status.GetCondition(buildv1alpha1.Succeeded); c == nil || c.Status != corev1.ConditionTrue {
			t.Fatalf("BuildRun %s did not succeed: %+v (failureDetails %+v)", br.Name, c, br.Status.FailureDetails)
		}
		head := sb.RepoHeads["hello"]
		if len(br.Status.Sources) != 1 || br.Status.Sources[0].Git == nil {
			t.Fatalf("status.sources = %+v, want one git source result", br.Status.Sources)
		}
		if src := br.Status.Sources[0]; src.Name != "default" || src.Git.CommitSha != head {
			t.Errorf("status.sources[0] = name %q, git.commitSha %q; want name default and the repository's HEAD %s", src.Name, src.Git.CommitSha, head)
		}
		img, err := kit.Inspect(ctx, b.Spec.Output.Image)
		if err != nil {
			t.Fatalf("reading %s from the registry: %v", b.Spec.Output.Image, err)
		}
		if br.Status.Output == nil || br.Status.Output.Digest != img.Digest {
			t.Errorf("status.output = %+v, want digest %s (the registry's)", br.Status.Output, img.Digest)
		}
		if br.Status.LatestTaskRunRef == nil || *br.Status.LatestTaskRunRef == "" {
			t.Error("status.latestTaskRunRef is not set")
		}
		ob := theOpenShiftBuild(ctx, t, ns, br.Name)
		if ob.Status.Phase != buildv1.BuildPhaseComplete {
			t.Errorf("OpenShift build %s is %s, want Complete", ob.Name, ob.Status.Phase)
		}
		if ob.Spec.Revision == nil || ob.Spec.Revision.Git == nil || ob.Spec.Revision.Git.Commit != head {
			t.Errorf("OpenShift build %s spec.revision = %+v, want git commit %s", ob.Name, ob.Spec.Revision, head)
		}
	})

	t.Run("canceled", func(t *testing.T) {
		ctx := testContext(t, 6*time.Minute)
		ns := newNamespace(t, true)
		b := registerV1alpha1Build(t, v1alpha1GitBuild(ns, "slow", "slow-build", dockerStrategy))
		name := createV1alpha1BuildRun(t, ns, b.Name)
		ob := waitOpenShiftBuild(ctx, t, ns, name, "the OpenShift build to run", func(b *buildv1.Build) bool {
			return b.Status.Phase == buildv1.BuildPhaseRunning
		})

		patch := []byte(`{"spec":{"state":"` + buildv1alpha1.BuildRunStateCancel + `"}}`)
		if _, err := sb.Shipwright.ShipwrightV1alpha1().BuildRuns(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatalf("canceling BuildRun %s through v1alpha1: %v", name, err)
		}
		br := waitV1alpha1BuildRunDone(ctx, t, ns, name)
		if !br.IsCanceled() {
			t.Errorf("spec.state = %v, want %s", br.Spec.State, buildv1alpha1.BuildRunStateCancel)
		}
		if c := br.Status.GetCondition(buildv1alpha1.Succeeded); c == nil || c.Status != corev1.ConditionFalse || c.Reason != buildv1alpha1.BuildRunStateCancel {
			t.Errorf("Succeeded condition = %+v, want False/%s", c, buildv1alpha1.BuildRunStateCancel)
		}
		var final *buildv1.Build
		err := watchBuilds(ctx, ns, "", nameSelector(ob.Name), func(items []*buildv1.Build) (bool, error) {
			for _, x := range items {
				final = x
				switch x.Status.Phase {
				case buildv1.BuildPhaseCancelled, buildv1.BuildPhaseComplete, buildv1.BuildPhaseFailed, buildv1.BuildPhaseError:
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("waiting for OpenShift build %s to end: %v", ob.Name, err)
		}
		if final.Status.Phase != buildv1.BuildPhaseCancelled || !final.Status.Cancelled {
			t.Errorf("OpenShift build %s: phase %s, status.cancelled %v; want Cancelled, true", final.Name, final.Status.Phase, final.Status.Cancelled)
		}
	})
}

// v1alpha1GitBuild is gitBuild written as a Shipwright v1alpha1 Build.
func v1alpha1GitBuild(ns, name, repo, strategy string, params ...buildv1alpha1.ParamValue) *buildv1alpha1.Build {
	return &buildv1alpha1.Build{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: buildv1alpha1.BuildSpec{
			Source:      buildv1alpha1.Source{URL: ptr.To(sb.GitRepoURL(repo))},
			Strategy:    buildv1alpha1.Strategy{Name: strategy, Kind: ptr.To(buildv1alpha1.ClusterBuildStrategyKind)},
			ParamValues: params,
			Output:      buildv1alpha1.Image{Image: imageRef(ns, name, "latest"), Insecure: ptr.To(true)},
			Timeout:     &metav1.Duration{Duration: runTimeout},
		},
	}
}

// registerV1alpha1Build creates b through v1alpha1 and waits until
// Shipwright registered it.
func registerV1alpha1Build(t *testing.T, b *buildv1alpha1.Build) *buildv1alpha1.Build {
	t.Helper()
	got, err := sandbox.RegisterBuildV1alpha1(testContext(t, 2*time.Minute), sb.Shipwright, b)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// createV1alpha1BuildRun starts a v1alpha1 BuildRun of build (spec.buildRef)
// and returns its name.
func createV1alpha1BuildRun(t *testing.T, ns, build string) string {
	t.Helper()
	br := &buildv1alpha1.BuildRun{
		ObjectMeta: metav1.ObjectMeta{Name: build + "-" + rand.String(5), Namespace: ns},
		Spec:       buildv1alpha1.BuildRunSpec{BuildRef: &buildv1alpha1.BuildRef{Name: build}},
	}
	created, err := sb.Shipwright.ShipwrightV1alpha1().BuildRuns(ns).Create(testContext(t, time.Minute), br, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a v1alpha1 BuildRun: %v", err)
	}
	if created.Spec.BuildRef == nil || created.Spec.BuildRef.Name != build {
		t.Fatalf("the created BuildRun reads back with spec.buildRef %+v, want name %s", created.Spec.BuildRef, build)
	}
	return created.Name
}

// waitV1alpha1BuildRunDone watches the BuildRun through v1alpha1 until it
// has finished (Succeeded True or False, completionTime set).
func waitV1alpha1BuildRunDone(ctx context.Context, t *testing.T, ns, name string) *buildv1alpha1.BuildRun {
	t.Helper()
	brs := sb.Shipwright.ShipwrightV1alpha1().BuildRuns(ns)
	selector := nameSelector(name)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = selector
			return brs.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = selector
			return brs.Watch(ctx, o)
		},
	}
	var last *buildv1alpha1.BuildRun
	done := func(obj any) bool {
		br, ok := obj.(*buildv1alpha1.BuildRun)
		if !ok {
			return false
		}
		last = br
		return br.IsDone() && br.Status.CompletionTime != nil
	}
	waitCtx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	_, err := watchtools.UntilWithSync(waitCtx, lw, &buildv1alpha1.BuildRun{},
		func(s cache.Store) (bool, error) {
			for _, obj := range s.List() {
				if done(obj) {
					return true, nil
				}
			}
			return false, nil
		},
		func(e watch.Event) (bool, error) { return done(e.Object), nil })
	if err != nil {
		state := "not seen"
		if last != nil {
			state = fmt.Sprintf("conditions %+v", last.Status.Conditions)
		}
		t.Fatalf("watching BuildRun %s/%s through v1alpha1 until it finishes: %v (last: %s)", ns, name, err, state)
	}
	return last
}
