package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/ocbuild/ocbuild/test/e2e/cluster"
	"github.com/ocbuild/ocbuild/test/e2e/openshift/kit"
	"github.com/ocbuild/ocbuild/test/playground"
)

// Names of the shipped strategies and their step.
const (
	dockerStrategy      = "openshift-docker"
	s2iStrategy         = "openshift-s2i"
	buildConfigStrategy = "openshift-buildconfig"
	stepContainer       = "step-openshift-build"

	// labelBuildRun is on the OpenShift builds ocbuild starts for a
	// BuildRun.
	labelBuildRun = "buildrun.shipwright.io/name"
	// commitLabel is the image label OpenShift's builders set to the
	// commit they built.
	commitLabel = "io.openshift.build.commit.id"

	// stepAccount is the service account the suite's BuildRuns run as: it
	// holds nothing but the shipped Role (see newNamespace).
	stepAccount = "ocbuild-e2e-step"

	// runTimeout bounds one BuildRun, clone and image pulls included.
	runTimeout = 15 * time.Minute
)

// The conformance apps: real Dockerfiles in samples/apps.
const (
	slowApp    = "samples/apps/slow-build"
	failingApp = "samples/apps/failing-build"
)

// table is the summary printed at the end of the run.
type table struct {
	mu   sync.Mutex
	rows []row
}

type row struct {
	test, result string
	seconds      float64
}

// track records t in the summary when it ends; every test and subtest
// calls it first.
func track(t *testing.T) {
	start := time.Now()
	t.Cleanup(func() {
		result := "PASS"
		switch {
		case t.Failed():
			result = "FAIL"
		case t.Skipped():
			result = "SKIP"
		}
		summary.mu.Lock()
		defer summary.mu.Unlock()
		for i := range summary.rows {
			if summary.rows[i].test == t.Name() && strings.HasPrefix(summary.rows[i].result, "SKIP (") {
				summary.rows[i].seconds = time.Since(start).Seconds()
				return // the reason was recorded by skip
			}
		}
		summary.rows = append(summary.rows, row{t.Name(), result, time.Since(start).Seconds()})
	})
}

// skip skips t and keeps the reason for the summary.
func skip(t *testing.T, reason string) {
	t.Helper()
	summary.mu.Lock()
	summary.rows = append(summary.rows, row{test: t.Name(), result: "SKIP (" + reason + ")"})
	summary.mu.Unlock()
	t.Skip(reason)
}

func (tb *table) print(w io.Writer) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	fmt.Fprintf(w, "\nconformance of ocbuild on %s\n", c.Description)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "test\tresult\tseconds")
	var why []string
	for _, r := range tb.rows {
		result := r.result
		if reason, ok := strings.CutPrefix(result, "SKIP ("); ok {
			result = "SKIP"
			why = append(why, "  "+r.test+": "+strings.TrimSuffix(reason, ")"))
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\n", r.test, result, r.seconds)
	}
	_ = tw.Flush()
	if len(why) > 0 {
		fmt.Fprintf(w, "skipped:\n%s\n", strings.Join(why, "\n"))
	}
}

// testContext is a context for one test, cancelled at its end.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var nonDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// newNamespace creates a namespace of this run for t, with the step's
// service account and the shipped namespaced RBAC (strategies/rbac/namespace)
// bound to it, as `kubectl apply -k` renders it; the only change is the
// RoleBinding's subject, so that the account holds the shipped Role and
// nothing else (OpenShift Pipelines gives its `pipeline` account more).
// The namespace is deleted when t ends.
func newNamespace(t *testing.T) string {
	t.Helper()
	ctx := testContext(t, 2*time.Minute)
	short := nonDNS.ReplaceAllString(strings.ToLower(strings.TrimPrefix(t.Name(), "Test")), "-")
	if len(short) > 28 {
		// The end names the case best; start it at a word.
		short = short[len(short)-28:]
		if i := strings.Index(short, "-"); i >= 0 && i < len(short)-1 {
			short = short[i+1:]
		}
	}
	name := strings.Trim(c.Namespace+"-"+strings.Trim(short, "-"), "-") + "-" + rand.String(4)
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: name, Labels: map[string]string{cluster.LabelRun: runID, "app.kubernetes.io/part-of": "ocbuild-e2e"},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpNamespace(t, name)
		}
		if err := kube.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", name, err)
		}
	})
	if _, err := kube.CoreV1().ServiceAccounts(name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: stepAccount}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := applyRBAC(ctx, name, filepath.Join(repoRoot, "strategies", "rbac", "namespace")); err != nil {
		t.Fatal(err)
	}
	return name
}

// applyRBAC applies the kustomization or file at path in ns with every
// ServiceAccount subject named pipeline bound to stepAccount instead.
func applyRBAC(ctx context.Context, ns, path string) error {
	var objs []*unstructured.Unstructured
	var err error
	if strings.HasSuffix(path, ".yaml") {
		objs, err = playground.ReadObjects(path)
	} else {
		objs, err = kit.Render(path)
	}
	if err != nil {
		return err
	}
	for _, o := range objs {
		subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
		for _, s := range subjects {
			if m, ok := s.(map[string]any); ok && m["kind"] == "ServiceAccount" && m["name"] == "pipeline" {
				m["name"] = stepAccount
			}
		}
		if subjects != nil {
			if err := unstructured.SetNestedSlice(o.Object, subjects, "subjects"); err != nil {
				return err
			}
		}
	}
	if err := kit.Apply(ctx, c.Admin, ns, objs); err != nil {
		return fmt.Errorf("applying %s in %s: %w", path, ns, err)
	}
	return nil
}

// removeNamespaces deletes what is left of this run's namespaces and waits
// until they are gone, so that the run leaves the cluster as it found it.
func removeNamespaces() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sel := cluster.LabelRun + "=" + runID
	list, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return err
	}
	for _, ns := range list.Items {
		if ns.DeletionTimestamp == nil {
			if err := kube.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return kube.CoreV1().Namespaces().List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return kube.CoreV1().Namespaces().Watch(ctx, o)
		},
	}
	var store cache.Store
	_, err = watchtools.UntilWithSync(ctx, lw, &corev1.Namespace{},
		func(s cache.Store) (bool, error) { store = s; return len(s.List()) == 0, nil },
		func(watch.Event) (bool, error) { return len(store.List()) == 0, nil })
	if err != nil {
		return fmt.Errorf("namespaces labelled %s still exist after 5 minutes (%v): delete them with kubectl delete namespace -l %s", sel, err, sel)
	}
	return nil
}

func param(name, value string) buildv1beta1.ParamValue {
	return buildv1beta1.ParamValue{Name: name, SingleValue: &buildv1beta1.SingleValue{Value: ptr.To(value)}}
}

// gitBuild is a Docker-strategy Build of contextDir in the cluster's ocbuild
// repository, pushing to the cluster's output registry.
func gitBuild(ns, name, contextDir string, params ...buildv1beta1.ParamValue) *buildv1beta1.Build {
	return &buildv1beta1.Build{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: buildv1beta1.BuildSpec{
			Source: &buildv1beta1.Source{
				Type:       buildv1beta1.GitType,
				Git:        &buildv1beta1.Git{URL: c.GitURL, Revision: ptr.To(c.GitRevision)},
				ContextDir: ptr.To(contextDir),
			},
			Strategy:    buildv1beta1.Strategy{Name: dockerStrategy, Kind: ptr.To(buildv1beta1.ClusterBuildStrategyKind)},
			ParamValues: params,
			Output:      buildv1beta1.Image{Image: c.OutputImage(ns, name)},
			Timeout:     &metav1.Duration{Duration: runTimeout},
		},
	}
}

// sampleBuild reads samples/<sample>/build.yaml (unknown fields fail) for
// namespace ns: its repository becomes the cluster's and its output the
// cluster's output registry, nothing else changes.
func sampleBuild(t *testing.T, sample, ns string) *buildv1beta1.Build {
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
	b.Namespace = ns
	b.Spec.Source.Git.URL, b.Spec.Source.Git.Revision = c.GitURL, ptr.To(c.GitRevision)
	b.Spec.Output.Image = c.OutputImage(ns, b.Name)
	return &b
}

// createBuild creates b and waits until Shipwright has validated it.
func createBuild(t *testing.T, b *buildv1beta1.Build) *buildv1beta1.Build {
	t.Helper()
	ctx := testContext(t, 2*time.Minute)
	if _, err := shipwright.ShipwrightV1beta1().Builds(b.Namespace).Create(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Build %s: %v", b.Name, err)
	}
	var got *buildv1beta1.Build
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		cur, err := shipwright.ShipwrightV1beta1().Builds(b.Namespace).Get(ctx, b.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		got = cur
		return cur.Status.Registered != nil, nil
	})
	if err != nil {
		t.Fatalf("Shipwright did not validate Build %s/%s: %v", b.Namespace, b.Name, err)
	}
	if *got.Status.Registered != corev1.ConditionTrue {
		t.Fatalf("Build %s/%s not registered: %s: %s", b.Namespace, b.Name, ptr.Deref(got.Status.Reason, ""), ptr.Deref(got.Status.Message, ""))
	}
	return got
}

// createBuildRun starts a BuildRun of build as stepAccount.
func createBuildRun(t *testing.T, ns, build string, mutate ...func(*buildv1beta1.BuildRun)) *buildv1beta1.BuildRun {
	t.Helper()
	br := &buildv1beta1.BuildRun{
		ObjectMeta: metav1.ObjectMeta{Name: build + "-" + rand.String(5), Namespace: ns},
		Spec: buildv1beta1.BuildRunSpec{
			Build:          buildv1beta1.ReferencedBuild{Name: ptr.To(build)},
			ServiceAccount: ptr.To(stepAccount),
		},
	}
	for _, m := range mutate {
		m(br)
	}
	created, err := shipwright.ShipwrightV1beta1().BuildRuns(ns).Create(testContext(t, time.Minute), br, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating BuildRun of %s: %v", build, err)
	}
	return created
}

// waitBuildRunDone waits until the BuildRun has finished.
func waitBuildRunDone(ctx context.Context, t *testing.T, ns, name string) *buildv1beta1.BuildRun {
	t.Helper()
	var got *buildv1beta1.BuildRun
	err := wait.PollUntilContextTimeout(ctx, time.Second, runTimeout, true, func(ctx context.Context) (bool, error) {
		b, err := shipwright.ShipwrightV1beta1().BuildRuns(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		got = b
		cond := b.Status.GetCondition(buildv1beta1.Succeeded)
		return cond != nil && cond.Status != corev1.ConditionUnknown && b.Status.CompletionTime != nil, nil
	})
	if err != nil {
		state := "not found"
		if got != nil {
			state = describe(got)
		}
		t.Fatalf("waiting for BuildRun %s/%s to finish: %v (last state: %s)", ns, name, err, state)
	}
	return got
}

// describe is a BuildRun's Succeeded condition and failure details.
func describe(br *buildv1beta1.BuildRun) string {
	cond := br.Status.GetCondition(buildv1beta1.Succeeded)
	if cond == nil {
		return "no Succeeded condition"
	}
	s := fmt.Sprintf("%s/%s: %s", cond.Status, cond.Reason, cond.Message)
	if fd := br.Status.FailureDetails; fd != nil {
		s += fmt.Sprintf(" (failureDetails %s: %s)", fd.Reason, fd.Message)
	}
	return s
}

func requireSucceeded(t *testing.T, br *buildv1beta1.BuildRun) {
	t.Helper()
	if cond := br.Status.GetCondition(buildv1beta1.Succeeded); cond == nil || cond.Status != corev1.ConditionTrue {
		t.Fatalf("BuildRun %s did not succeed: %s", br.Name, describe(br))
	}
}

func requireFailed(t *testing.T, br *buildv1beta1.BuildRun) *buildv1beta1.FailureDetails {
	t.Helper()
	cond := br.Status.GetCondition(buildv1beta1.Succeeded)
	if cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != "Failed" {
		t.Fatalf("BuildRun %s: %s, want False/Failed", br.Name, describe(br))
	}
	if br.Status.FailureDetails == nil {
		t.Fatalf("BuildRun %s failed without status.failureDetails", br.Name)
	}
	t.Logf("failureDetails: %s: %s", br.Status.FailureDetails.Reason, br.Status.FailureDetails.Message)
	return br.Status.FailureDetails
}

// openshiftBuilds lists the OpenShift builds ocbuild started for a BuildRun.
func openshiftBuilds(ctx context.Context, ns, buildRun string) ([]buildv1.Build, error) {
	list, err := builds.BuildV1().Builds(ns).List(ctx, metav1.ListOptions{LabelSelector: labelBuildRun + "=" + buildRun})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// theOpenShiftBuild is the one OpenShift build of a BuildRun.
func theOpenShiftBuild(ctx context.Context, t *testing.T, ns, buildRun string) *buildv1.Build {
	t.Helper()
	items, err := openshiftBuilds(ctx, ns, buildRun)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 {
		t.Fatalf("BuildRun %s: %d OpenShift builds labelled %s=%s, want 1", buildRun, len(items), labelBuildRun, buildRun)
	}
	return &items[0]
}

// watchBuilds watches the OpenShift builds of a BuildRun until cond, given
// the current set on every change, is true.
func watchBuilds(ctx context.Context, ns, buildRun string, cond func([]*buildv1.Build) bool) error {
	return kit.WatchBuilds(ctx, builds.BuildV1().Builds(ns), labelBuildRun+"="+buildRun, "",
		func(items []*buildv1.Build) (bool, error) { return cond(items), nil })
}

// checkOutput compares the BuildRun's status with what the registry holds
// where the OpenShift build pushed: digest, size, and the commit the
// builder labelled the image with.
func checkOutput(ctx context.Context, t *testing.T, br *buildv1beta1.BuildRun) *kit.Image {
	t.Helper()
	ob := theOpenShiftBuild(ctx, t, br.Namespace, br.Name)
	pushed := ob.Status.OutputDockerImageReference
	if pushed == "" {
		t.Fatalf("OpenShift build %s has no status.outputDockerImageReference", ob.Name)
	}
	ref, opts, err := c.ReadableImage(pushed)
	if err != nil {
		t.Fatal(err)
	}
	img, err := kit.InspectRef(ctx, ref, opts...)
	if err != nil {
		t.Fatalf("reading %s (as %s) from the registry: %v", pushed, ref, err)
	}
	out := br.Status.Output
	if out == nil {
		t.Fatalf("BuildRun %s has no status.output; the registry has %s@%s", br.Name, pushed, img.Digest)
	}
	if out.Digest != img.Digest {
		t.Errorf("BuildRun %s: status.output.digest = %q, the registry serves %s as %q", br.Name, out.Digest, pushed, img.Digest)
	}
	if out.Size != img.Size {
		t.Errorf("BuildRun %s: status.output.size = %d, the registry's manifest of %s says config + layers = %d", br.Name, out.Size, pushed, img.Size)
	}
	if src := br.Status.Source; src == nil || src.Git == nil || !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(src.Git.CommitSha) {
		t.Errorf("BuildRun %s: status.source = %+v, want the commit sha", br.Name, src)
	} else if got := img.Config.Config.Labels[commitLabel]; got != src.Git.CommitSha {
		t.Errorf("BuildRun %s: status.source.git.commitSha = %s, the image's %s label = %q", br.Name, src.Git.CommitSha, commitLabel, got)
	}
	t.Logf("%s@%s, %d bytes, commit %s", pushed, img.Digest, img.Size, img.Config.Config.Labels[commitLabel])
	return img
}

// stepLog is the ocbuild step's log of a BuildRun, read as `kubectl logs`
// reads it.
func stepLog(ctx context.Context, t *testing.T, br *buildv1beta1.BuildRun) string {
	t.Helper()
	pod, err := podOf(ctx, br)
	if err != nil {
		t.Fatal(err)
	}
	b, err := kube.CoreV1().Pods(br.Namespace).GetLogs(pod, &corev1.PodLogOptions{Container: stepContainer}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("log of %s/%s container %s: %v", br.Namespace, pod, stepContainer, err)
	}
	return string(b)
}

// podOf is the pod of a BuildRun's TaskRun.
func podOf(ctx context.Context, br *buildv1beta1.BuildRun) (string, error) {
	if br.Status.TaskRunName == nil {
		return "", fmt.Errorf("BuildRun %s has no TaskRun", br.Name)
	}
	tr, err := tekton.TektonV1().TaskRuns(br.Namespace).Get(ctx, *br.Status.TaskRunName, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if tr.Status.PodName == "" {
		return "", fmt.Errorf("TaskRun %s has no pod", tr.Name)
	}
	return tr.Status.PodName, nil
}

// dumpNamespace logs what a failed test leaves: BuildRun and OpenShift
// build statuses and the step logs.
func dumpNamespace(t *testing.T, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if brs, err := shipwright.ShipwrightV1beta1().BuildRuns(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for i := range brs.Items {
			br := &brs.Items[i]
			st, _ := json.MarshalIndent(br.Status, "", "  ")
			t.Logf("BuildRun %s status: %s", br.Name, st)
			if pod, err := podOf(ctx, br); err == nil {
				log, err := kube.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: stepContainer}).DoRaw(ctx)
				t.Logf("step log of %s (%v):\n%s", pod, err, log)
			}
		}
	}
	if bl, err := builds.BuildV1().Builds(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, b := range bl.Items {
			st, _ := json.MarshalIndent(b.Status, "", "  ")
			t.Logf("OpenShift build %s status: %s", b.Name, st)
		}
	}
}

// applySampleBuildConfig applies a sample's buildconfig.yaml in ns with the
// cluster's repository as the BuildConfig's git source.
func applySampleBuildConfig(ctx context.Context, t *testing.T, ns, path string) {
	t.Helper()
	objs, err := playground.ReadObjects(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "BuildConfig" {
			continue
		}
		if err := unstructured.SetNestedField(o.Object, c.GitURL, "spec", "source", "git", "uri"); err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedField(o.Object, c.GitRevision, "spec", "source", "git", "ref"); err != nil {
			t.Fatal(err)
		}
	}
	if err := kit.Apply(ctx, c.Admin, ns, objs); err != nil {
		t.Fatalf("applying %s: %v", path, err)
	}
}
