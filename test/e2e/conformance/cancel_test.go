package conformance

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// keepPodOnCancel is Tekton's feature flag that keeps a cancelled TaskRun's
// pod: the step is then killed without a SIGTERM and must learn of the
// cancel from its TaskRun.
const keepPodOnCancel = "keep-pod-on-cancel"

// cancelReach bounds the time from the cancel request to the OpenShift
// build's Cancelled phase.
const cancelReach = 30 * time.Second

// Cancelling a running BuildRun ends its OpenShift build Cancelled, in both
// of Tekton's cancel modes.
func TestCancelEndsTheBuildCancelled(t *testing.T) {
	track(t)
	for _, mode := range []struct {
		name    string
		keepPod bool
	}{{"pod-deleted", false}, {keepPodOnCancel, true}} {
		t.Run(mode.name, func(t *testing.T) {
			track(t)
			ctx := testContext(t, runTimeout+2*time.Minute)
			useCancelMode(ctx, t, mode.keepPod)
			ns := newNamespace(t)
			b := createBuild(t, gitBuild(ns, "slow", slowApp))
			br := createBuildRun(t, ns, b.Name)
			running := waitRunning(ctx, t, ns, br.Name)

			patch := []byte(`{"spec":{"state":"` + buildv1beta1.BuildRunStateCancel + `"}}`)
			requested := time.Now()
			if _, err := shipwright.ShipwrightV1beta1().BuildRuns(ns).Patch(ctx, br.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			var final *buildv1.Build
			wctx, cancel := context.WithTimeout(ctx, cancelReach)
			defer cancel()
			err := watchBuilds(wctx, ns, br.Name, func(items []*buildv1.Build) bool {
				for _, x := range items {
					if x.Name == running.Name && terminal(x.Status.Phase) {
						final = x
						return true
					}
				}
				return false
			})
			if err != nil {
				t.Fatalf("OpenShift build %s did not end within %s of the cancel request: %v", running.Name, cancelReach, err)
			}
			t.Logf("OpenShift build %s became %s %s after the cancel request", final.Name, final.Status.Phase, time.Since(requested).Round(time.Millisecond))
			if final.Status.Phase != buildv1.BuildPhaseCancelled || !final.Status.Cancelled {
				t.Errorf("OpenShift build %s: phase %s, status.cancelled %v; want Cancelled, true", final.Name, final.Status.Phase, final.Status.Cancelled)
			}
			done := waitBuildRunDone(ctx, t, ns, br.Name)
			if cond := done.Status.GetCondition(buildv1beta1.Succeeded); cond.Status != corev1.ConditionFalse || cond.Reason != buildv1beta1.BuildRunStateCancel {
				t.Errorf("BuildRun %s: %s, want False/%s", done.Name, describe(done), buildv1beta1.BuildRunStateCancel)
			}
		})
	}
}

// Deleting a running BuildRun removes its OpenShift builds: they are owned
// by its TaskRun, which the garbage collector removes with it.
func TestDeletingTheBuildRunRemovesItsBuilds(t *testing.T) {
	track(t)
	ctx := testContext(t, runTimeout+2*time.Minute)
	ns := newNamespace(t)
	b := createBuild(t, gitBuild(ns, "slow", slowApp))
	br := createBuildRun(t, ns, b.Name)
	running := waitRunning(ctx, t, ns, br.Name)
	if err := shipwright.ShipwrightV1beta1().BuildRuns(ns).Delete(ctx, br.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := watchBuilds(wctx, ns, br.Name, func(items []*buildv1.Build) bool { return len(items) == 0 }); err != nil {
		cur, gerr := builds.BuildV1().Builds(ns).Get(ctx, running.Name, metav1.GetOptions{})
		state := fmt.Sprint(gerr)
		if gerr == nil {
			state = fmt.Sprintf("phase %s, ownerReferences %+v", cur.Status.Phase, cur.OwnerReferences)
		}
		t.Fatalf("OpenShift build %s still exists 3 minutes after its BuildRun was deleted (%s): %v", running.Name, state, err)
	}
}

// waitRunning waits for the BuildRun's OpenShift build to be Running.
func waitRunning(ctx context.Context, t *testing.T, ns, buildRun string) *buildv1.Build {
	t.Helper()
	var got *buildv1.Build
	wctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	err := watchBuilds(wctx, ns, buildRun, func(items []*buildv1.Build) bool {
		for _, x := range items {
			if x.Status.Phase == buildv1.BuildPhaseRunning {
				got = x
				return true
			}
			if terminal(x.Status.Phase) {
				got = x
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("BuildRun %s: no OpenShift build Running: %v", buildRun, err)
	}
	if got.Status.Phase != buildv1.BuildPhaseRunning {
		t.Fatalf("OpenShift build %s ended %s (%s) before the test could stop it", got.Name, got.Status.Phase, got.Status.Message)
	}
	return got
}

func terminal(p buildv1.BuildPhase) bool {
	switch p {
	case buildv1.BuildPhaseComplete, buildv1.BuildPhaseFailed, buildv1.BuildPhaseError, buildv1.BuildPhaseCancelled:
		return true
	}
	return false
}

// useCancelMode makes Tekton run in the given cancel mode for the test:
// the cluster's own mode runs as is; the other only if the suite may switch
// the cluster-wide flag (cluster.EnvSwitchCancelMode), restored at the end.
func useCancelMode(ctx context.Context, t *testing.T, keepPod bool) {
	t.Helper()
	cms := kube.CoreV1().ConfigMaps("")
	var ns, name string
	for _, candidate := range tektonFlagsCandidates() {
		ns, name, _ = strings.Cut(candidate, "/")
		cms = kube.CoreV1().ConfigMaps(ns)
		if _, err := cms.Get(ctx, name, metav1.GetOptions{}); err == nil {
			break
		} else if !apierrors.IsNotFound(err) {
			t.Fatalf("reading Tekton's feature flags %s: %v", candidate, err)
		}
		ns = ""
	}
	if ns == "" {
		t.Fatalf("no Tekton feature-flags ConfigMap at %v: set %s=<namespace>/<name>", tektonFlagsCandidates(), "OCBUILD_E2E_TEKTON_FLAGS")
	}
	cm, err := cms.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	current, _ := strconv.ParseBool(cm.Data[keepPodOnCancel])
	if current == keepPod {
		return
	}
	if !c.SwitchCancelMode {
		skip(t, fmt.Sprintf("Tekton runs with %s=%v (%s/%s); switching this cluster-wide flag needs OCBUILD_E2E_SWITCH_CANCEL_MODE=true", keepPodOnCancel, current, ns, name))
	}
	set := func(ctx context.Context, v bool) error {
		cm, err := cms.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[keepPodOnCancel] = strconv.FormatBool(v)
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	}
	if err := set(ctx, keepPod); err != nil {
		t.Fatalf("switching %s in %s/%s: %v", keepPodOnCancel, ns, name, err)
	}
	t.Cleanup(func() {
		if err := set(context.Background(), current); err != nil {
			t.Errorf("restoring %s=%v in %s/%s: %v", keepPodOnCancel, current, ns, name, err)
		}
	})
}

func tektonFlagsCandidates() []string {
	if c.TektonFlags != "" {
		return []string{c.TektonFlags}
	}
	return []string{"tekton-pipelines/feature-flags", "openshift-pipelines/feature-flags"}
}
