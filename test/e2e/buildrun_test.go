package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	buildv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/ocbuild/ocbuild/test/sandbox"
)

const buildTimeout = 3 * time.Minute

// TestBuildRunSucceeds: the real Shipwright controller turns a BuildRun into
// a TaskRun whose git step (Shipwright's real cmd/git) clones the sample
// repository and whose strategy step runs `ocbuild --version`.
func TestBuildRunSucceeds(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	strategy := newStrategy(t, buildv1beta1.Step{
		Name:       "version",
		Image:      sandbox.OcbuildImage,
		Command:    []string{"ocbuild"},
		Args:       []string{"--version"},
		WorkingDir: "$(params.shp-source-root)",
	})
	build := newBuild(t, ns, strategy)
	br := newBuildRun(t, ns, build, nil)

	br = waitBuildRunDone(ctx, t, ns, br)
	cond := br.Status.GetCondition(buildv1beta1.Succeeded)
	if cond.Status != corev1.ConditionTrue {
		t.Fatalf("BuildRun did not succeed: %s: %s", cond.Reason, cond.Message)
	}
	if br.Status.Source == nil || br.Status.Source.Git == nil {
		t.Fatalf("BuildRun has no status.source.git: %+v", br.Status.Source)
	}
	if got, want := br.Status.Source.Git.CommitSha, sb.RepoHeads["hello"]; got != want {
		t.Errorf("status.source.git.commitSha = %q, want the repository's HEAD %q", got, want)
	}
	tr := taskRunOf(ctx, t, ns, br)
	out, err := sb.Executor.StepLog(ns, tr.Name, "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "ocbuild v0.0.0-sandbox") {
		t.Errorf("step output %q does not show the ocbuild version", out)
	}
	// The git step really cloned the repository into the workspace.
	if _, err := os.Stat(filepath.Join(sb.Executor.TaskRunDir(ns, tr.Name), "workspace", "source", "README.md")); err != nil {
		t.Errorf("source not cloned: %v", err)
	}
}

// TestFailureDetails: a step that writes shp-error-reason/shp-error-message
// and exits non-zero yields BuildRun.status.failureDetails.
func TestFailureDetails(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	strategy := newStrategy(t, buildv1beta1.Step{
		Name:    "fail",
		Image:   testStepImage,
		Command: []string{"teststep"},
		Args: []string{"fail", "--exit", "3",
			"--reason", "SandboxFailure", "--message", "the step failed on purpose",
			"--reason-file", "$(results.shp-error-reason.path)",
			"--message-file", "$(results.shp-error-message.path)"},
	})
	br := newBuildRun(t, ns, newBuild(t, ns, strategy), nil)
	br = waitBuildRunDone(ctx, t, ns, br)
	cond := br.Status.GetCondition(buildv1beta1.Succeeded)
	if cond.Status != corev1.ConditionFalse || cond.Reason != "Failed" {
		t.Fatalf("condition = %s/%s: %s, want False/Failed", cond.Status, cond.Reason, cond.Message)
	}
	fd := br.Status.FailureDetails
	if fd == nil {
		t.Fatal("no failureDetails")
	}
	if fd.Reason != "SandboxFailure" || fd.Message != "the step failed on purpose" {
		t.Errorf("failureDetails = %q / %q, want SandboxFailure / the step failed on purpose", fd.Reason, fd.Message)
	}
	if fd.Location == nil || fd.Location.Container != "step-fail" || fd.Location.Pod == "" {
		t.Errorf("failureDetails.location = %+v, want container step-fail in the TaskRun's pod", fd.Location)
	}
}

// TestCancel: canceling a running BuildRun ends it BuildRunCanceled; the step
// gets SIGTERM by default and SIGKILL with keep-pod-on-cancel.
func TestCancel(t *testing.T) {
	strategy := newStrategy(t, buildv1beta1.Step{
		Name:    "wait",
		Image:   testStepImage,
		Command: []string{"teststep"},
		Args:    []string{"wait-signal", "--ready", "/tekton/home/ready", "--record", "/tekton/home/signal"},
	})
	for _, tc := range []struct {
		name     string
		keepPod  bool
		wantExit string
	}{
		{"default", false, "exit status 143"},
		{"keep-pod-on-cancel", true, "signal: killed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			if err := sb.SetKeepPodOnCancel(ctx, tc.keepPod); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sb.SetKeepPodOnCancel(context.Background(), false) })
			ns := newNamespace(t)
			br := newBuildRun(t, ns, newBuild(t, ns, strategy), nil)
			tr := waitTaskRun(ctx, t, ns, br)
			home := filepath.Join(sb.Executor.TaskRunDir(ns, tr.Name), "home")
			poll(ctx, t, "the step to wait for a signal", func(context.Context) (bool, error) {
				_, err := os.Stat(filepath.Join(home, "ready"))
				return err == nil, nil
			})

			patch := []byte(`{"spec":{"state":"` + buildv1beta1.BuildRunStateCancel + `"}}`)
			if _, err := sb.Shipwright.ShipwrightV1beta1().BuildRuns(ns).Patch(ctx, br.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			br = waitBuildRunDone(ctx, t, ns, br)
			cond := br.Status.GetCondition(buildv1beta1.Succeeded)
			if cond.Status != corev1.ConditionFalse || cond.Reason != buildv1beta1.BuildRunStateCancel {
				t.Fatalf("condition = %s/%s: %s, want False/BuildRunCanceled", cond.Status, cond.Reason, cond.Message)
			}
			tr, err := sb.Tekton.TektonV1().TaskRuns(ns).Get(ctx, tr.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if c := tr.Status.GetCondition("Succeeded"); c == nil || c.Reason != string(pipelinev1.TaskRunReasonCancelled) {
				t.Errorf("TaskRun condition = %+v, want reason TaskRunCancelled", c)
			}
			var exit string
			poll(ctx, t, "the step process to end", func(context.Context) (bool, error) {
				exit, err = sb.Executor.StepExit(ns, tr.Name, "wait")
				return err == nil, nil
			})
			if exit != tc.wantExit {
				t.Errorf("step process ended with %q, want %q", exit, tc.wantExit)
			}
			signal, err := os.ReadFile(filepath.Join(home, "signal"))
			switch {
			case tc.keepPod && err == nil:
				t.Errorf("step recorded %q, want no signal it could catch (SIGKILL)", signal)
			case !tc.keepPod && string(signal) != "SIGTERM":
				t.Errorf("step recorded %q (%v), want SIGTERM", signal, err)
			}

			pods := sb.Kube.CoreV1().Pods(ns)
			if tc.keepPod {
				pod, err := pods.Get(ctx, tr.Status.PodName, metav1.GetOptions{})
				if err != nil {
					t.Fatalf("keep-pod-on-cancel: pod: %v", err)
				}
				if pod.Annotations["tekton.dev/cancel"] != "CANCEL" {
					t.Errorf("pod annotations = %v, want tekton.dev/cancel=CANCEL", pod.Annotations)
				}
			} else {
				poll(ctx, t, "the canceled TaskRun's pod to be deleted", func(ctx context.Context) (bool, error) {
					_, err := pods.Get(ctx, tr.Status.PodName, metav1.GetOptions{})
					return apierrors.IsNotFound(err), nil
				})
			}
		})
	}
}

// TestForbidden: a step running as a service account without permission to
// list secrets gets a 403 from the real RBAC; with a RoleBinding it works.
func TestForbidden(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	strategy := newStrategy(t, buildv1beta1.Step{
		Name:    "list-secrets",
		Image:   testStepImage,
		Command: []string{"teststep"},
		Args: []string{"kube-list", "--resource", "secrets",
			"--reason-file", "$(results.shp-error-reason.path)",
			"--message-file", "$(results.shp-error-message.path)"},
	})
	build := newBuild(t, ns, strategy)
	for _, sa := range []string{"restricted", "reader"} {
		if _, err := sb.Kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sb.Kube.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "secret-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "secret-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "reader", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	denied := waitBuildRunDone(ctx, t, ns, newBuildRun(t, ns, build, ptr.To("restricted")))
	fd := denied.Status.FailureDetails
	if fd == nil {
		t.Fatalf("no failureDetails; conditions %+v", denied.Status.Conditions)
	}
	wantMsg := fmt.Sprintf(`secrets is forbidden: User "system:serviceaccount:%s:restricted" cannot list resource "secrets"`, ns)
	if fd.Reason != string(metav1.StatusReasonForbidden) || !strings.Contains(fd.Message, wantMsg) {
		t.Errorf("failureDetails = %q / %q, want Forbidden / …%s…", fd.Reason, fd.Message, wantMsg)
	}
	tr := taskRunOf(ctx, t, ns, denied)
	if out, _ := sb.Executor.StepLog(ns, tr.Name, "list-secrets"); !strings.Contains(out, "HTTP 403") {
		t.Errorf("step output %q does not show HTTP 403", out)
	}

	allowed := waitBuildRunDone(ctx, t, ns, newBuildRun(t, ns, build, ptr.To("reader")))
	if c := allowed.Status.GetCondition(buildv1beta1.Succeeded); c.Status != corev1.ConditionTrue {
		t.Errorf("with the RoleBinding the BuildRun should succeed: %s: %s", c.Reason, c.Message)
	}
}

// TestDeleteBuildRunCollectsTaskRun: deleting a BuildRun garbage-collects
// its TaskRun, the TaskRun's pod and anything else the TaskRun owns.
func TestDeleteBuildRunCollectsTaskRun(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	strategy := newStrategy(t, buildv1beta1.Step{
		Name: "version", Image: sandbox.OcbuildImage, Command: []string{"ocbuild"}, Args: []string{"--version"},
	})
	br := waitBuildRunDone(ctx, t, ns, newBuildRun(t, ns, newBuild(t, ns, strategy), nil))
	tr := taskRunOf(ctx, t, ns, br)
	if _, err := sb.Kube.CoreV1().Pods(ns).Get(ctx, tr.Status.PodName, metav1.GetOptions{}); err != nil {
		t.Fatalf("the TaskRun's pod: %v", err)
	}
	cm, err := sb.Kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name:            "owned-by-taskrun",
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(tr, pipelinev1.SchemeGroupVersion.WithKind("TaskRun"))},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	if err := sb.Shipwright.ShipwrightV1beta1().BuildRuns(ns).Delete(ctx, br.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, "the TaskRun, its pod and its ConfigMap to be garbage-collected", func(ctx context.Context) (bool, error) {
		_, err1 := sb.Tekton.TektonV1().TaskRuns(ns).Get(ctx, tr.Name, metav1.GetOptions{})
		_, err2 := sb.Kube.CoreV1().Pods(ns).Get(ctx, tr.Status.PodName, metav1.GetOptions{})
		_, err3 := sb.Kube.CoreV1().ConfigMaps(ns).Get(ctx, cm.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err1) && apierrors.IsNotFound(err2) && apierrors.IsNotFound(err3), nil
	})
}

// ---- helpers ----

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func poll(ctx context.Context, t *testing.T, what string, cond wait.ConditionWithContextFunc) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, buildTimeout, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func newNamespace(t *testing.T) string {
	t.Helper()
	name := "e2e-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.TrimRight(name, "-") + "-" + rand.String(5)
	if err := sb.CreateNamespace(testContext(t), name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpNamespace(t, name)
		}
		_ = sb.Kube.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

func newStrategy(t *testing.T, steps ...buildv1beta1.Step) string {
	t.Helper()
	name := "e2e-" + rand.String(8)
	_, err := sb.Shipwright.ShipwrightV1beta1().ClusterBuildStrategies().Create(testContext(t), &buildv1beta1.ClusterBuildStrategy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       buildv1beta1.BuildStrategySpec{Steps: steps},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sb.Shipwright.ShipwrightV1beta1().ClusterBuildStrategies().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// newBuild creates a Build of the sample repository "hello" with the given
// ClusterBuildStrategy and waits until it is registered.
func newBuild(t *testing.T, ns, strategy string) string {
	t.Helper()
	ctx := testContext(t)
	name := "hello"
	// The strategy was created a moment ago: RegisterBuild waits until
	// Shipwright's controller has it in view.
	_, err := sandbox.RegisterBuild(ctx, sb.Shipwright, &buildv1beta1.Build{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: buildv1beta1.BuildSpec{
			Source: &buildv1beta1.Source{
				Type: buildv1beta1.GitType,
				Git:  &buildv1beta1.Git{URL: sb.GitRepoURL("hello")},
			},
			Strategy: buildv1beta1.Strategy{Name: strategy, Kind: ptr.To(buildv1beta1.ClusterBuildStrategyKind)},
			Output:   buildv1beta1.Image{Image: sb.Registry + "/" + ns + "/hello:latest", Insecure: ptr.To(true)},
			Timeout:  &metav1.Duration{Duration: buildTimeout},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func newBuildRun(t *testing.T, ns, build string, serviceAccount *string) *buildv1beta1.BuildRun {
	t.Helper()
	br, err := sb.Shipwright.ShipwrightV1beta1().BuildRuns(ns).Create(testContext(t), &buildv1beta1.BuildRun{
		ObjectMeta: metav1.ObjectMeta{Name: build + "-" + rand.String(5)},
		Spec: buildv1beta1.BuildRunSpec{
			Build:          buildv1beta1.ReferencedBuild{Name: ptr.To(build)},
			ServiceAccount: serviceAccount,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return br
}

func waitBuildRunDone(ctx context.Context, t *testing.T, ns string, br *buildv1beta1.BuildRun) *buildv1beta1.BuildRun {
	t.Helper()
	var got *buildv1beta1.BuildRun
	poll(ctx, t, "BuildRun "+br.Name+" to finish", func(ctx context.Context) (bool, error) {
		b, err := sb.Shipwright.ShipwrightV1beta1().BuildRuns(ns).Get(ctx, br.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got = b
		c := b.Status.GetCondition(buildv1beta1.Succeeded)
		return c != nil && c.Status != corev1.ConditionUnknown && b.Status.CompletionTime != nil, nil
	})
	return got
}

func waitTaskRun(ctx context.Context, t *testing.T, ns string, br *buildv1beta1.BuildRun) *pipelinev1.TaskRun {
	t.Helper()
	var tr *pipelinev1.TaskRun
	poll(ctx, t, "the TaskRun of "+br.Name, func(ctx context.Context) (bool, error) {
		list, err := sb.Tekton.TektonV1().TaskRuns(ns).List(ctx, metav1.ListOptions{LabelSelector: buildv1beta1.LabelBuildRun + "=" + br.Name})
		if err != nil || len(list.Items) == 0 {
			return false, nil
		}
		tr = &list.Items[0]
		return true, nil
	})
	return tr
}

func taskRunOf(ctx context.Context, t *testing.T, ns string, br *buildv1beta1.BuildRun) *pipelinev1.TaskRun {
	t.Helper()
	if br.Status.TaskRunName == nil {
		return waitTaskRun(ctx, t, ns, br)
	}
	tr, err := sb.Tekton.TektonV1().TaskRuns(ns).Get(ctx, *br.Status.TaskRunName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// dumpNamespace logs BuildRuns, TaskRuns and step logs of a failed test.
func dumpNamespace(t *testing.T, ns string) {
	ctx := context.Background()
	if brs, err := sb.Shipwright.ShipwrightV1beta1().BuildRuns(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, br := range brs.Items {
			b, _ := json.MarshalIndent(br.Status, "", "  ")
			t.Logf("BuildRun %s status: %s", br.Name, b)
		}
	}
	if trs, err := sb.Tekton.TektonV1().TaskRuns(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, tr := range trs.Items {
			st := tr.Status.DeepCopy()
			st.TaskSpec = nil
			b, _ := json.MarshalIndent(st, "", "  ")
			t.Logf("TaskRun %s status: %s", tr.Name, b)
			for _, s := range tr.Spec.TaskSpec.Steps {
				out, _ := sb.Executor.StepLog(ns, tr.Name, s.Name)
				t.Logf("step %s output:\n%s", s.Name, out)
			}
		}
	}
	t.Logf("sandbox logs: %s", filepath.Join(sb.Dir, "logs"))
}
