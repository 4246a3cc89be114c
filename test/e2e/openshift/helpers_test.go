package openshift

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	shipwrightclient "github.com/shipwright-io/build/pkg/client/clientset/versioned"
	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/ocbuild/ocbuild/test/e2e/openshift/kit"
	"github.com/ocbuild/ocbuild/test/sandbox"
	"github.com/ocbuild/ocbuild/test/sim"
)

// Names of the shipped strategies and their step.
const (
	dockerStrategy      = "openshift-docker"
	s2iStrategy         = "openshift-s2i"
	buildConfigStrategy = "openshift-buildconfig"
	stepName            = "openshift-build"

	// labelBuildRun is the label ocbuild puts on the OpenShift builds it
	// starts for a BuildRun.
	labelBuildRun = "buildrun.shipwright.io/name"

	// runTimeout bounds one BuildRun from creation to completion.
	runTimeout = 4 * time.Minute
)

// cancelModes are Tekton's two ways of stopping a cancelled TaskRun: the
// pod deleted (the step gets SIGTERM), or keep-pod-on-cancel (SIGKILL; the
// step relies on watching its TaskRun).
var cancelModes = []struct {
	name    string
	keepPod bool
}{
	{"default", false},
	{"keep-pod-on-cancel", true},
}

// useCancelMode switches the sandbox's Tekton feature flag for the test and
// back to the default at its end.
func useCancelMode(ctx context.Context, t *testing.T, keepPod bool) {
	t.Helper()
	if err := sb.SetKeepPodOnCancel(ctx, keepPod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.SetKeepPodOnCancel(context.Background(), false) })
}

// testContext is a context for one test, cancelled at its end.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func poll(ctx context.Context, t *testing.T, timeout time.Duration, what string, cond wait.ConditionWithContextFunc) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// newNamespace creates a namespace for the test; with rbac, the namespaced
// RBAC of strategies/rbac/namespace is applied in it (kustomize), exactly as
// a user would.
func newNamespace(t *testing.T, rbac bool) string {
	t.Helper()
	ctx := testContext(t, 2*time.Minute)
	name := "os-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.TrimRight(name, "-") + "-" + rand.String(5)
	if err := sb.CreateNamespace(ctx, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpNamespace(t, name)
		}
		_ = sb.Kube.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	if rbac {
		if err := kit.InstallNamespaceRBAC(ctx, sb.AdminConfig, repoRoot, name); err != nil {
			t.Fatal(err)
		}
	}
	return name
}

// imageRef is an image in the sandbox registry.
func imageRef(ns, repo, tag string) string {
	return fmt.Sprintf("%s/%s/%s:%s", sb.Registry, ns, repo, tag)
}

func param(name, value string) buildv1beta1.ParamValue {
	return buildv1beta1.ParamValue{Name: name, SingleValue: &buildv1beta1.SingleValue{Value: ptr.To(value)}}
}

func arrayParam(name string, values ...string) buildv1beta1.ParamValue {
	p := buildv1beta1.ParamValue{Name: name}
	for _, v := range values {
		p.Values = append(p.Values, buildv1beta1.SingleValue{Value: ptr.To(v)})
	}
	return p
}

// gitBuild is a Build of a sample repository of the sandbox's git server
// with one of the shipped strategies, pushing to the sandbox registry
// (plain http: spec.output.insecure).
func gitBuild(ns, name, repo, strategy string, params ...buildv1beta1.ParamValue) *buildv1beta1.Build {
	return &buildv1beta1.Build{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: buildv1beta1.BuildSpec{
			Source: &buildv1beta1.Source{
				Type: buildv1beta1.GitType,
				Git:  &buildv1beta1.Git{URL: sb.GitRepoURL(repo)},
			},
			Strategy:    buildv1beta1.Strategy{Name: strategy, Kind: ptr.To(buildv1beta1.ClusterBuildStrategyKind)},
			ParamValues: params,
			Output:      buildv1beta1.Image{Image: imageRef(ns, name, "latest"), Insecure: ptr.To(true)},
			Timeout:     &metav1.Duration{Duration: runTimeout},
		},
	}
}

// sampleBuild reads samples/<sample>/build.yaml as shipped (unknown fields
// fail).
func sampleBuild(t *testing.T, sample string) buildv1beta1.Build {
	t.Helper()
	path := filepath.Join(repoRoot, "samples", sample, "build.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b buildv1beta1.Build
	if err := yaml.UnmarshalStrict(data, &b); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// createBuild creates b and waits until Shipwright registered it (see
// sandbox.RegisterBuild for why that can take more than one create).
func createBuild(t *testing.T, b *buildv1beta1.Build) *buildv1beta1.Build {
	t.Helper()
	got, err := sandbox.RegisterBuild(testContext(t, 2*time.Minute), sb.Shipwright, b)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// createBuildRun starts a BuildRun of build; mutate may change it first.
func createBuildRun(t *testing.T, ns, build string, mutate ...func(*buildv1beta1.BuildRun)) *buildv1beta1.BuildRun {
	t.Helper()
	return createBuildRunAs(t, sb.Shipwright, ns, build, mutate...)
}

// createBuildRunAs is createBuildRun with the client of a given user.
func createBuildRunAs(t *testing.T, client shipwrightclient.Interface, ns, build string, mutate ...func(*buildv1beta1.BuildRun)) *buildv1beta1.BuildRun {
	t.Helper()
	br := &buildv1beta1.BuildRun{
		ObjectMeta: metav1.ObjectMeta{Name: build + "-" + rand.String(5), Namespace: ns},
		Spec:       buildv1beta1.BuildRunSpec{Build: buildv1beta1.ReferencedBuild{Name: ptr.To(build)}},
	}
	for _, m := range mutate {
		m(br)
	}
	created, err := client.ShipwrightV1beta1().BuildRuns(ns).Create(testContext(t, time.Minute), br, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return created
}

// waitBuildRunDone waits until the BuildRun has finished (its Succeeded
// condition is True or False and completionTime is set).
func waitBuildRunDone(ctx context.Context, t *testing.T, ns, name string) *buildv1beta1.BuildRun {
	t.Helper()
	br, err := buildRunDone(ctx, ns, name, runTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return br
}

func buildRunDone(ctx context.Context, ns, name string, timeout time.Duration) (*buildv1beta1.BuildRun, error) {
	var got *buildv1beta1.BuildRun
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		b, err := sb.Shipwright.ShipwrightV1beta1().BuildRuns(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		got = b
		c := b.Status.GetCondition(buildv1beta1.Succeeded)
		return c != nil && c.Status != corev1.ConditionUnknown && b.Status.CompletionTime != nil, nil
	})
	if err != nil {
		state := "not found"
		if got != nil {
			if c := got.Status.GetCondition(buildv1beta1.Succeeded); c != nil {
				state = fmt.Sprintf("%s/%s: %s", c.Status, c.Reason, c.Message)
			} else {
				state = "no Succeeded condition"
			}
		}
		return got, fmt.Errorf("waiting for BuildRun %s/%s to finish: %w (last state: %s)", ns, name, err, state)
	}
	return got, nil
}

// condition returns the Succeeded condition's status and reason.
func condition(br *buildv1beta1.BuildRun) (corev1.ConditionStatus, string, string) {
	c := br.Status.GetCondition(buildv1beta1.Succeeded)
	if c == nil {
		return "", "", ""
	}
	return c.Status, c.Reason, c.Message
}

// requireFailed checks that br ended False/Failed with failureDetails and
// returns them.
func requireFailed(t *testing.T, br *buildv1beta1.BuildRun) *buildv1beta1.FailureDetails {
	t.Helper()
	status, reason, msg := condition(br)
	if status != corev1.ConditionFalse || reason != "Failed" {
		t.Fatalf("condition = %s/%s: %s, want False/Failed", status, reason, msg)
	}
	fd := br.Status.FailureDetails
	if fd == nil {
		t.Fatal("no status.failureDetails")
	}
	t.Logf("failureDetails: %s: %s", fd.Reason, fd.Message)
	return fd
}

func requireSucceeded(t *testing.T, br *buildv1beta1.BuildRun) {
	t.Helper()
	status, reason, msg := condition(br)
	if status != corev1.ConditionTrue {
		fd := ""
		if br.Status.FailureDetails != nil {
			fd = fmt.Sprintf(" (failureDetails %s: %s)", br.Status.FailureDetails.Reason, br.Status.FailureDetails.Message)
		}
		t.Fatalf("BuildRun %s did not succeed: %s/%s: %s%s", br.Name, status, reason, msg, fd)
	}
}

// checkOutput compares the BuildRun's status.output with what the registry
// holds for ref, and returns the registry's view.
func checkOutput(ctx context.Context, t *testing.T, br *buildv1beta1.BuildRun, ref string) *kit.Image {
	t.Helper()
	img, err := kit.Inspect(ctx, ref)
	if err != nil {
		t.Fatalf("BuildRun %s: reading %s from the registry: %v", br.Name, ref, err)
	}
	if br.Status.Output == nil {
		t.Fatalf("BuildRun %s has no status.output; the registry has %s@%s", br.Name, ref, img.Digest)
	}
	if br.Status.Output.Digest != img.Digest {
		t.Errorf("BuildRun %s: status.output.digest = %q, registry digest of %s = %q", br.Name, br.Status.Output.Digest, ref, img.Digest)
	}
	if br.Status.Output.Size != img.Size {
		t.Errorf("BuildRun %s: status.output.size = %d, registry manifest says config + layers = %d", br.Name, br.Status.Output.Size, img.Size)
	}
	return img
}

// openshiftBuilds lists the OpenShift builds ocbuild started for a BuildRun.
func openshiftBuilds(ctx context.Context, ns, buildRun string) ([]buildv1.Build, error) {
	list, err := builds.BuildV1().Builds(ns).List(ctx, metav1.ListOptions{LabelSelector: labelBuildRun + "=" + buildRun})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// theOpenShiftBuild returns the one OpenShift build of a BuildRun.
func theOpenShiftBuild(ctx context.Context, t *testing.T, ns, buildRun string) *buildv1.Build {
	t.Helper()
	items, err := openshiftBuilds(ctx, ns, buildRun)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 {
		var names []string
		for _, b := range items {
			names = append(names, b.Name+" ("+string(b.Status.Phase)+")")
		}
		t.Fatalf("BuildRun %s: %d OpenShift builds labelled %s=%s, want 1: %v", buildRun, len(items), labelBuildRun, buildRun, names)
	}
	return &items[0]
}

// waitOpenShiftBuild waits for an OpenShift build of the BuildRun that
// satisfies cond.
func waitOpenShiftBuild(ctx context.Context, t *testing.T, ns, buildRun, what string, cond func(*buildv1.Build) bool) *buildv1.Build {
	t.Helper()
	var got *buildv1.Build
	poll(ctx, t, 2*time.Minute, what, func(ctx context.Context) (bool, error) {
		items, err := openshiftBuilds(ctx, ns, buildRun)
		if err != nil {
			return false, nil
		}
		for i := range items {
			if cond(&items[i]) {
				got = &items[i]
				return true, nil
			}
		}
		return false, nil
	})
	return got
}

// waitBuildPhase waits, up to within, for OpenShift build name to reach
// phase; after says what should have brought it there.
func waitBuildPhase(ctx context.Context, t *testing.T, ns, name string, phase buildv1.BuildPhase, within time.Duration, after string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last *buildv1.Build
	err := watchBuilds(wctx, ns, "", nameSelector(name), func(items []*buildv1.Build) (bool, error) {
		for _, x := range items {
			last = x
		}
		return last != nil && last.Status.Phase == phase, nil
	})
	if err != nil {
		seen := buildv1.BuildPhase("(gone)")
		if last != nil {
			seen = last.Status.Phase
		}
		t.Fatalf("OpenShift build %s is %s %s after %s, want %s (%v)", name, seen, within, after, phase, err)
	}
}

// watchBuilds is kit.WatchBuilds in namespace ns.
func watchBuilds(ctx context.Context, ns, labelSelector, fieldSelector string, cond func(items []*buildv1.Build) (bool, error)) error {
	return kit.WatchBuilds(ctx, builds.BuildV1().Builds(ns), labelSelector, fieldSelector, cond)
}

func nameSelector(name string) string {
	return fields.OneTermEqualSelector("metadata.name", name).String()
}

// taskRunName is the TaskRun of a finished BuildRun.
func taskRunName(t *testing.T, br *buildv1beta1.BuildRun) string {
	t.Helper()
	if br.Status.TaskRunName != nil {
		return *br.Status.TaskRunName
	}
	list, err := sb.Tekton.TektonV1().TaskRuns(br.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: buildv1beta1.LabelBuildRun + "=" + br.Name})
	if err != nil || len(list.Items) == 0 {
		t.Fatalf("no TaskRun for BuildRun %s (%v)", br.Name, err)
	}
	return list.Items[0].Name
}

// stepLog is what the ocbuild step wrote (stdout and stderr).
func stepLog(t *testing.T, br *buildv1beta1.BuildRun) string {
	t.Helper()
	out, err := sb.Executor.StepLog(br.Namespace, taskRunName(t, br), stepName)
	if err != nil {
		t.Fatalf("step log of BuildRun %s: %v", br.Name, err)
	}
	return out
}

// simLog is the build log the simulator stored for an OpenShift build (what
// `oc logs build/<name>` shows), and whether it is complete.
func simLog(ns, build string) ([]string, bool) {
	lines, closed := simulator.Logs().Read(sim.Key{Namespace: ns, Name: build}, time.Time{})
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Text
	}
	return out, closed
}

// lines splits text into lines.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// dumpNamespace logs what a failed test leaves: BuildRuns, TaskRuns, step
// logs, OpenShift builds and their simulator logs.
func dumpNamespace(t *testing.T, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if brs, err := sb.Shipwright.ShipwrightV1beta1().BuildRuns(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, br := range brs.Items {
			b, _ := json.MarshalIndent(br.Status, "", "  ")
			t.Logf("BuildRun %s status: %s", br.Name, b)
		}
	}
	if trs, err := sb.Tekton.TektonV1().TaskRuns(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, tr := range trs.Items {
			dumpTaskRun(t, ns, &tr)
		}
	}
	if bl, err := builds.BuildV1().Builds(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, b := range bl.Items {
			st, _ := json.MarshalIndent(b.Status, "", "  ")
			log, closed := simLog(ns, b.Name)
			t.Logf("OpenShift build %s status: %s\nsimulator log (closed=%v):\n%s", b.Name, st, closed, strings.Join(log, "\n"))
		}
	}
	t.Logf("sandbox logs: %s", filepath.Join(sb.Dir, "logs"))
}

func dumpTaskRun(t *testing.T, ns string, tr *pipelinev1.TaskRun) {
	st := tr.Status.DeepCopy()
	st.TaskSpec = nil
	b, _ := json.MarshalIndent(st, "", "  ")
	t.Logf("TaskRun %s status: %s", tr.Name, b)
	if tr.Spec.TaskSpec == nil {
		return
	}
	for _, s := range tr.Spec.TaskSpec.Steps {
		out, _ := sb.Executor.StepLog(ns, tr.Name, s.Name)
		exit, _ := sb.Executor.StepExit(ns, tr.Name, s.Name)
		t.Logf("step %s (%s) output:\n%s", s.Name, exit, out)
	}
}
