package sim

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	buildv1 "github.com/openshift/api/build/v1"
	buildfake "github.com/openshift/client-go/build/clientset/versioned/fake"
	imagefake "github.com/openshift/client-go/image/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

// --- pure logic ---

func TestLogSnippet(t *testing.T) {
	long := strings.Repeat("a", 58) + strings.Repeat("m", 10) + strings.Repeat("z", 59)
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"", ""}, ""},
		{[]string{"one", "two", ""}, "one\ntwo"},
		{[]string{"1", "2", "3", "4", "5", "6", "7"}, "3\n4\n5\n6\n7"},
		{[]string{long}, strings.Repeat("a", 58) + "..." + strings.Repeat("z", 59)},
		{[]string{strings.Repeat("x", 120)}, strings.Repeat("x", 120)},
		{[]string{"a", "b\nc", "d", "e", "f"}, "b\nc\nd\ne\nf"},
	} {
		if got := logSnippet(tc.in); got != tc.want {
			t.Errorf("logSnippet(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := logSnippet([]string{long}); len(got) != 120 {
		t.Errorf("shortened line has %d characters", len(got))
	}
}

func TestTransitionsAndDuration(t *testing.T) {
	phases := []buildv1.BuildPhase{buildv1.BuildPhaseNew, buildv1.BuildPhasePending, buildv1.BuildPhaseRunning,
		buildv1.BuildPhaseComplete, buildv1.BuildPhaseFailed, buildv1.BuildPhaseError, buildv1.BuildPhaseCancelled}
	valid := map[buildv1.BuildPhase]string{
		buildv1.BuildPhaseNew:     "New Pending Running Complete Failed Error Cancelled",
		buildv1.BuildPhasePending: "Pending Running Complete Failed Error Cancelled",
		buildv1.BuildPhaseRunning: "Running Complete Failed Error Cancelled",
	}
	for _, from := range phases {
		for _, to := range phases {
			want := strings.Contains(" "+valid[from]+" ", " "+string(to)+" ") || (from == to && isTerminal(from))
			if got := validTransition(from, to); got != want {
				t.Errorf("validTransition(%s, %s) = %v", from, to, got)
			}
		}
	}

	b := &buildv1.Build{}
	t0 := time.Date(2025, 1, 1, 10, 0, 0, 900e6, time.UTC)
	if !setPhase(b, buildv1.BuildPhasePending, "", "", t0) || b.Status.StartTimestamp != nil {
		t.Fatalf("Pending: %+v", b.Status)
	}
	if !setPhase(b, buildv1.BuildPhaseRunning, "", "", t0) || !b.Status.StartTimestamp.Time.Equal(t0.Truncate(time.Second)) {
		t.Fatalf("Running: %+v", b.Status)
	}
	if setPhase(b, buildv1.BuildPhasePending, "", "", t0) {
		t.Fatal("Running -> Pending accepted")
	}
	t1 := t0.Add(2*time.Second + 200*time.Millisecond) // 10:00:03.1
	if !setPhase(b, buildv1.BuildPhaseFailed, buildv1.StatusReasonGenericBuildFailed, "m", t1) {
		t.Fatal("Failed refused")
	}
	if b.Status.Duration != 3*time.Second {
		t.Errorf("duration %v, want 3s (whole seconds: 10:00:00 to 10:00:03)", b.Status.Duration)
	}
	if setPhase(b, buildv1.BuildPhaseComplete, "", "", t1) || b.Status.Phase != buildv1.BuildPhaseFailed {
		t.Error("left a terminal phase")
	}
	var trueConds []string
	for _, c := range b.Status.Conditions {
		if c.Status == corev1.ConditionTrue {
			trueConds = append(trueConds, string(c.Type)+"/"+c.Reason)
		}
	}
	if len(b.Status.Conditions) != 3 || !reflect.DeepEqual(trueConds, []string{"Failed/GenericBuildFailed"}) {
		t.Errorf("conditions %+v", b.Status.Conditions)
	}
	// a New build cancelled: start = completion = now, duration 0
	nb := &buildv1.Build{}
	setPhase(nb, buildv1.BuildPhaseCancelled, buildv1.StatusReasonCancelledBuild, "", t1)
	if nb.Status.StartTimestamp == nil || nb.Status.Duration != 0 {
		t.Errorf("cancelled New build: %+v", nb.Status)
	}
}

func mkBuild(name, bc string, n int, policy buildv1.BuildRunPolicy, phase buildv1.BuildPhase) *buildv1.Build {
	b := &buildv1.Build{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns",
		Labels:      map[string]string{},
		Annotations: map[string]string{buildv1.BuildNumberAnnotation: fmt.Sprint(n)}}}
	if bc != "" {
		b.Labels[buildv1.BuildConfigLabel] = bc
		b.Labels[buildv1.BuildConfigLabelDeprecated] = bc
		b.Annotations[buildv1.BuildConfigAnnotation] = bc
	}
	if policy != "" {
		b.Labels[buildv1.BuildRunPolicyLabel] = string(policy)
	}
	b.Status.Phase = phase
	return b
}

func TestRunPolicy(t *testing.T) {
	const (
		serial   = buildv1.BuildRunPolicySerial
		parallel = buildv1.BuildRunPolicyParallel
		latest   = buildv1.BuildRunPolicySerialLatestOnly
		New      = buildv1.BuildPhaseNew
		Pending  = buildv1.BuildPhasePending
		Running  = buildv1.BuildPhaseRunning
		Complete = buildv1.BuildPhaseComplete
	)
	byPhase := func(b *buildv1.Build) bool {
		return b.Status.Phase == Pending || b.Status.Phase == Running
	}
	type bld = *buildv1.Build
	for _, tc := range []struct {
		name     string
		builds   []bld
		runnable string // names, space separated
	}{
		{"serial: lowest New runs", []bld{mkBuild("a-2", "a", 2, serial, New), mkBuild("a-3", "a", 3, serial, New), mkBuild("a-1", "a", 1, serial, Complete)}, "a-2"},
		{"serial: waits for a running build", []bld{mkBuild("a-1", "a", 1, serial, Running), mkBuild("a-2", "a", 2, serial, New)}, ""},
		{"serial: waits for a pending build", []bld{mkBuild("a-1", "a", 1, serial, Pending), mkBuild("a-2", "a", 2, serial, New)}, ""},
		{"serial: cancelled New builds are skipped", []bld{func() bld { b := mkBuild("a-1", "a", 1, serial, New); b.Status.Cancelled = true; return b }(), mkBuild("a-2", "a", 2, serial, New)}, "a-2"},
		{"no BuildConfig: always", []bld{mkBuild("x", "", 0, serial, New)}, "x"},
		{"parallel: all at once", []bld{mkBuild("p-1", "p", 1, parallel, New), mkBuild("p-2", "p", 2, parallel, New), mkBuild("p-3", "p", 3, parallel, Running)}, "p-1 p-2"},
		{"parallel: waits for a serial build", []bld{mkBuild("p-1", "p", 1, serial, Running), mkBuild("p-2", "p", 2, parallel, New)}, ""},
		{"serial after parallel: waits", []bld{mkBuild("p-1", "p", 1, parallel, Running), mkBuild("p-2", "p", 2, serial, New)}, ""},
		{"serial behind a queued parallel build", []bld{mkBuild("p-1", "p", 1, parallel, New), mkBuild("p-2", "p", 2, serial, New)}, "p-1"},
		{"serial latest only: lowest queued", []bld{mkBuild("l-2", "l", 2, latest, New), mkBuild("l-3", "l", 3, latest, New)}, "l-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, b := range tc.builds {
				if (b.Status.Phase == New) && isRunnable(b, tc.builds, byPhase) {
					got = append(got, b.Name)
				}
			}
			if strings.Join(got, " ") != tc.runnable {
				t.Errorf("runnable %q, want %q", got, tc.runnable)
			}
		})
	}

	siblings := []*buildv1.Build{
		mkBuild("l-1", "l", 1, latest, Running), mkBuild("l-2", "l", 2, latest, New), mkBuild("l-3", "l", 3, latest, Pending),
		mkBuild("l-4", "l", 4, latest, New), mkBuild("l-5", "l", 5, latest, New), mkBuild("l-6", "l", 6, latest, Complete),
	}
	var victims []string
	for _, v := range serialLatestOnlyVictims(siblings[4], siblings) {
		victims = append(victims, v.Name)
	}
	if strings.Join(victims, " ") != "l-2 l-3 l-4" {
		t.Errorf("victims %v", victims)
	}
	if n := buildNumber(&buildv1.Build{ObjectMeta: metav1.ObjectMeta{Name: "app-17"}}); n != 17 {
		t.Errorf("buildNumber from the name: %d", n)
	}
}

func TestBuildsToPrune(t *testing.T) {
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var builds []*buildv1.Build
	phases := []buildv1.BuildPhase{"Complete", "Failed", "Complete", "Cancelled", "Error", "Complete", "Running", "New", "Complete"}
	for i, p := range phases {
		b := mkBuild(fmt.Sprintf("a-%d", i+1), "a", i+1, "", p)
		b.CreationTimestamp = metav1.NewTime(base.Add(time.Duration(i/2) * time.Second)) // ties: the number decides
		builds = append(builds, b)
	}
	names := func(bs []*buildv1.Build) string {
		var out []string
		for _, b := range bs {
			out = append(out, b.Name)
		}
		return strings.Join(out, " ")
	}
	two, one := int32(2), int32(1)
	if got := names(buildsToPrune(builds, &two, &one)); got != "a-3 a-1 a-4 a-2" {
		t.Errorf("prune(2,1) = %q", got)
	}
	if got := names(buildsToPrune(builds, nil, nil)); got != "" {
		t.Errorf("prune(nil,nil) = %q", got)
	}
	zero := int32(0)
	if got := names(buildsToPrune(builds, &zero, nil)); got != "a-9 a-6 a-3 a-1" {
		t.Errorf("prune(0,nil) = %q", got)
	}
}

func TestReadKnobs(t *testing.T) {
	b := &buildv1.Build{}
	b.Spec.Strategy.DockerStrategy = &buildv1.DockerBuildStrategy{Env: []corev1.EnvVar{
		{Name: KnobDuration, Value: "2s"}, {Name: KnobFail, Value: "DockerBuildFailed"}, {Name: KnobCompletesFirst, Value: "TRUE"},
		{Name: KnobStartDelay, Value: " 1m30s "}, {Name: KnobLogLines, Value: "10000"},
	}}
	k, bad := readKnobs(b)
	if k.duration != 2*time.Second || k.fail != "DockerBuildFailed" || !k.completesFirst || k.startDelay != 90*time.Second || k.logLines != 10000 || bad != "" {
		t.Errorf("knobs %+v %q", k, bad)
	}
	b.Spec.Strategy.DockerStrategy.Env[0].Value = "soon"
	b.Spec.Strategy.DockerStrategy.Env[3].Value = "-1s"
	k, bad = readKnobs(b)
	if !strings.Contains(bad, `OCBUILD_SIM_DURATION="soon" is not a duration`) || !strings.Contains(bad, `OCBUILD_SIM_START_DELAY="-1s" is not a duration`) || k.startDelay != 0 {
		t.Errorf("bad durations not reported: %q (%+v)", bad, k)
	}
	for reason, want := range map[buildv1.StatusReason]outcome{
		"BuildPodDeleted":   {phase: "Error", reason: "BuildPodDeleted", message: "The pod for this build was deleted before the build completed."},
		"DockerBuildFailed": {phase: "Failed", reason: "DockerBuildFailed", message: "Dockerfile build strategy has failed."},
		"SomethingElse":     {phase: "Failed", reason: "SomethingElse", message: "Simulated failure"},
	} {
		if got := failed(reason); !reflect.DeepEqual(got, want) {
			t.Errorf("failed(%s) = %+v", reason, got)
		}
	}
}

// --- the controller against fake clientsets, a test registry and git ---

type ctrlHarness struct {
	t        *testing.T
	ctx      context.Context
	builds   *buildfake.Clientset
	kube     *kubefake.Clientset
	images   *imagefake.Clientset // the image streams (none unless a test creates them)
	c        *Controller
	logs     Logs
	sources  Sources
	reg      string
	mu       sync.Mutex
	sequence map[string][]buildv1.BuildPhase
}

// newCtrlHarness runs a controller against fake clients (holding objs) and
// a registry seeded with the base image.
func newCtrlHarness(t *testing.T, objs ...runtime.Object) *ctrlHarness {
	t.Helper()
	return newCtrlHarnessImages(t, nil, objs...)
}

// newCtrlHarnessImages is newCtrlHarness with further base images.
func newCtrlHarnessImages(t *testing.T, images []string, objs ...runtime.Object) *ctrlHarness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &ctrlHarness{t: t, ctx: ctx, builds: buildfake.NewSimpleClientset(objs...), kube: kubefake.NewSimpleClientset(testNode()), images: imagefake.NewSimpleClientset(),
		logs: NewLogs(), reg: seededRegistry(t, append([]string{"base"}, images...)...), sequence: map[string][]buildv1.BuildPhase{}}
	work := t.TempDir()
	h.sources = NewSources(filepath.Join(work, "uploads"))
	h.c = newController(ControllerOptions{Logs: h.logs, Sources: h.sources, Registry: h.reg, WorkDir: work, Out: testWriter{t}, Images: h.images}, noWatchList{h.builds}, h.kube)
	h.c.secretRecheck = 50 * time.Millisecond
	w, err := h.builds.BuildV1().Builds("ns").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev := range w.ResultChan() {
			if b, ok := ev.Object.(*buildv1.Build); ok && ev.Type != watch.Deleted {
				h.mu.Lock()
				s := h.sequence[b.Name]
				if len(s) == 0 || s[len(s)-1] != b.Status.Phase {
					h.sequence[b.Name] = append(s, b.Status.Phase)
				}
				h.mu.Unlock()
			}
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := h.c.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		w.Stop()
		<-done
	})
	return h
}

// noWatchList marks the fake clientset as not supporting watch-list (the
// fake's watches never send the initial-events bookmark).
type noWatchList struct{ *buildfake.Clientset }

func (noWatchList) IsWatchListSemanticsUnSupported() bool { return true }

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (h *ctrlHarness) create(b *buildv1.Build) {
	h.t.Helper()
	if b.Status.Phase == "" {
		b.Status.Phase = buildv1.BuildPhaseNew
	}
	if b.UID == "" {
		b.UID = types.UID(fmt.Sprintf("%s-%d", b.Name, time.Now().UnixNano()))
	}
	if _, err := h.builds.BuildV1().Builds(b.Namespace).Create(h.ctx, b, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *ctrlHarness) get(name string) *buildv1.Build {
	h.t.Helper()
	b, err := h.builds.BuildV1().Builds("ns").Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// waitFor polls until cond holds for the build.
func (h *ctrlHarness) waitFor(name string, what string, cond func(*buildv1.Build) bool) *buildv1.Build {
	h.t.Helper()
	// Real buildah and S2I builds run here: on a loaded two-core machine
	// one S2I build took over 30 s (CI run with two suites at once).
	return pollBuild(h.t, h.ctx, h.builds, name, what, 3*time.Minute, cond, h.log)
}

// pollBuild polls until cond holds for build name in namespace "ns",
// failing the test with the build's last status and log otherwise.
func pollBuild(t *testing.T, ctx context.Context, builds *buildfake.Clientset, name, what string, d time.Duration,
	cond func(*buildv1.Build) bool, log func(string) string) *buildv1.Build {
	t.Helper()
	var last *buildv1.Build
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, d, true, func(ctx context.Context) (bool, error) {
		b, err := builds.BuildV1().Builds("ns").Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		last = b
		return cond(b), nil
	})
	if err != nil {
		var st any
		if last != nil {
			st = last.Status
		}
		t.Fatalf("build %s never %s (last status %+v)\nlog:\n%s", name, what, st, log(name))
	}
	return last
}

func (h *ctrlHarness) waitPhase(name string, phase buildv1.BuildPhase) *buildv1.Build {
	h.t.Helper()
	return h.waitFor(name, "reached "+string(phase), func(b *buildv1.Build) bool { return b.Status.Phase == phase })
}

func (h *ctrlHarness) log(name string) string {
	lines, _ := h.logs.Read(Key{"ns", name}, time.Time{})
	var out []string
	for _, l := range lines {
		out = append(out, l.Text)
	}
	return strings.Join(out, "\n")
}

func (h *ctrlHarness) waitLogClosed(name string) {
	h.t.Helper()
	k := Key{"ns", name}
	for {
		if _, closed := h.logs.Read(k, time.Time{}); closed {
			return
		}
		select {
		case <-h.logs.Changed(k):
		case <-time.After(30 * time.Second):
			h.t.Fatalf("log of %s never closed", name)
		}
	}
}

// phases is the sequence of phases the watch saw, once it has seen the
// build's current phase (the watch may trail a Get).
func (h *ctrlHarness) phases(name string) []buildv1.BuildPhase {
	h.t.Helper()
	b := h.get(name)
	var seq []buildv1.BuildPhase
	_ = wait.PollUntilContextTimeout(h.ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		seq = append([]buildv1.BuildPhase(nil), h.sequence[name]...)
		return len(seq) > 0 && seq[len(seq)-1] == b.Status.Phase, nil
	})
	return seq
}

func (h *ctrlHarness) cancel(name string) {
	h.t.Helper()
	b := h.get(name)
	b.Status.Cancelled = true
	if _, err := h.builds.BuildV1().Builds("ns").Update(h.ctx, b, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *ctrlHarness) noRun(name string) {
	h.t.Helper()
	err := wait.PollUntilContextTimeout(h.ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return h.c.run(Key{"ns", name}) == nil, nil
	})
	if err != nil {
		h.t.Fatalf("the executor of %s is still running", name)
	}
}

// gitRepo makes a repository with files and one commit; it returns its path
// and HEAD.
func gitRepo(t *testing.T, files map[string]string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, files)
	env := append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_AUTHOR_NAME=Jane Dev", "GIT_AUTHOR_EMAIL=jane@example.com", "GIT_AUTHOR_DATE=2024-01-01T00:00:00Z",
		"GIT_COMMITTER_NAME=CI", "GIT_COMMITTER_EMAIL=ci@example.com", "GIT_COMMITTER_DATE=2024-01-01T00:00:00Z")
	run := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("init", "-q", "-b", "main")
	run("add", "-A")
	run("commit", "-q", "--no-gpg-sign", "-m", "Initial commit")
	return dir, run("rev-parse", "HEAD")
}

func dockerGitBuild(name, bc string, n int, repo, reg string) *buildv1.Build {
	b := mkBuild(name, bc, n, "", "")
	b.Spec.Source = buildv1.BuildSource{Git: &buildv1.GitBuildSource{URI: repo, Ref: "main"}, ContextDir: "app"}
	b.Spec.Strategy = buildv1.BuildStrategy{DockerStrategy: &buildv1.DockerBuildStrategy{}}
	b.Spec.Output.To = &corev1.ObjectReference{Kind: "DockerImage", Name: reg + "/ns/" + bc + ":latest"}
	return b
}

func withEnv(b *buildv1.Build, kvs ...string) *buildv1.Build {
	var env []corev1.EnvVar
	for i := 0; i+1 < len(kvs); i += 2 {
		env = append(env, corev1.EnvVar{Name: kvs[i], Value: kvs[i+1]})
	}
	switch s := b.Spec.Strategy; {
	case s.DockerStrategy != nil:
		s.DockerStrategy.Env = append(s.DockerStrategy.Env, env...)
	case s.SourceStrategy != nil:
		s.SourceStrategy.Env = append(s.SourceStrategy.Env, env...)
	}
	return b
}

func TestControllerDockerFromGit(t *testing.T) {
	h := newCtrlHarness(t)
	repo, head := gitRepo(t, map[string]string{
		"app/Dockerfile": "placeholder",
		"app/README.md":  "hello",
		"other/x":        "not in the context",
	})
	b := dockerGitBuild("app-1", "app", 1, repo, h.reg)
	df := strings.ReplaceAll("FROM REG/sim/base:latest\nCOPY . /app\nRUN echo \"RUN says $(cat /app/README.md)\" && id -u > /app/built-by\nCMD [\"cat\", \"/app/README.md\"]\n", "REG", h.reg)
	os.WriteFile(filepath.Join(repo, "app", "Dockerfile"), []byte(df), 0o644)
	gitCommitAll(t, repo)
	head = gitHead(t, repo)
	b.Spec.Output.ImageLabels = []buildv1.ImageLabel{{Name: "org.example.team", Value: "builds"}}
	h.create(b)
	done := h.waitPhase("app-1", buildv1.BuildPhaseComplete)
	h.waitLogClosed("app-1")

	if got := h.phases("app-1"); !reflect.DeepEqual(got, []buildv1.BuildPhase{"New", "Pending", "Running", "Complete"}) {
		t.Errorf("phases %v", got)
	}
	st := done.Status
	if st.StartTimestamp == nil || st.CompletionTimestamp == nil || st.Duration != st.CompletionTimestamp.Sub(st.StartTimestamp.Time) {
		t.Errorf("timestamps %v %v duration %v", st.StartTimestamp, st.CompletionTimestamp, st.Duration)
	}
	if st.OutputDockerImageReference != b.Spec.Output.To.Name || st.LogSnippet != "" || st.Reason != "" {
		t.Errorf("status %+v", st)
	}
	desc, err := remote.Head(mustRef(t, b.Spec.Output.To.Name))
	if err != nil {
		t.Fatal(err)
	}
	if st.Output.To == nil || st.Output.To.ImageDigest != desc.Digest.String() {
		t.Errorf("imageDigest %+v, registry %s", st.Output.To, desc.Digest)
	}
	rev := done.Spec.Revision
	if rev == nil || rev.Type != buildv1.BuildSourceGit || rev.Git.Commit != head || rev.Git.Author.Name != "Jane Dev" ||
		rev.Git.Author.Email != "jane@example.com" || rev.Git.Committer.Name != "CI" || rev.Git.Message != "Update" {
		t.Errorf("revision %+v", rev.Git)
	}
	if len(st.Stages) == 0 || st.Stages[0].Name != buildv1.StageFetchInputs {
		t.Errorf("stages %+v", st.Stages)
	}
	log := h.log("app-1")
	for _, want := range []string{
		fmt.Sprintf("Cloning %q ...", repo),
		"\tCommit:\t" + head + " (Update)",
		"\tAuthor:\tJane Dev <jane@example.com>",
		"STEP 1/6: FROM " + h.reg + "/sim/base:latest",
		`STEP 3/6: RUN echo "RUN says $(cat /app/README.md)" && id -u > /app/built-by`,
		"RUN says hello",
		`STEP 6/6: LABEL "io.openshift.build.commit.author"="Jane Dev <jane@example.com>"`,
		"Pushing image " + b.Spec.Output.To.Name + " ...",
		"Successfully pushed " + h.reg + "/ns/app@" + desc.Digest.String(),
		"Push successful",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	img, err := pullImage(h.ctx, h.reg, b.Spec.Output.To.Name)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	for k, v := range map[string]string{"org.example.team": "builds", "io.openshift.build.commit.id": head,
		"io.openshift.build.name": "app-1", "io.openshift.build.source-context-dir": "app"} {
		if cf.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], v)
		}
	}
	if env := strings.Join(cf.Config.Env, " "); !strings.Contains(env, "OPENSHIFT_BUILD_NAME=app-1") || !strings.Contains(env, "OPENSHIFT_BUILD_COMMIT="+head) {
		t.Errorf("env %s", env)
	}
	files, _ := imageFiles(t, img)
	if files["app/README.md"] != "hello" || files["app/x"] != "" || files["app/built-by"] != "0\n" {
		t.Errorf("files: README %q, built-by %q (what RUN wrote)", files["app/README.md"], files["app/built-by"])
	}

	// A second build at a given commit keeps the revision it was given.
	b2 := dockerGitBuild("app-2", "app", 2, repo, h.reg)
	b2.Spec.Revision = &buildv1.SourceRevision{Type: buildv1.BuildSourceGit, Git: &buildv1.GitSourceRevision{Commit: head}}
	h.create(b2)
	done = h.waitPhase("app-2", buildv1.BuildPhaseComplete)
	if done.Spec.Revision.Git.Author.Name != "" {
		t.Errorf("the given revision was overwritten: %+v", done.Spec.Revision.Git)
	}
}

func gitCommitAll(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", "git add -A && git commit -q --no-gpg-sign -m Update")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_AUTHOR_NAME=Jane Dev", "GIT_AUTHOR_EMAIL=jane@example.com", "GIT_COMMITTER_NAME=CI", "GIT_COMMITTER_EMAIL=ci@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}

func gitHead(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.Command("git", "rev-parse", "HEAD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func s2iBuild(name string, n int, repo, reg string, incremental bool) *buildv1.Build {
	b := mkBuild(name, "py", n, "", "")
	b.Spec.Source = buildv1.BuildSource{Git: &buildv1.GitBuildSource{URI: repo}}
	b.Spec.Strategy = buildv1.BuildStrategy{SourceStrategy: &buildv1.SourceBuildStrategy{
		From:        corev1.ObjectReference{Kind: "DockerImage", Name: "registry.access.redhat.com/ubi9/python-311:latest"},
		Incremental: &incremental,
		Env:         []corev1.EnvVar{{Name: "APP_MODULE", Value: "app:app"}},
	}}
	b.Spec.Output.To = &corev1.ObjectReference{Kind: "DockerImage", Name: InternalRegistry + "/ns/py:latest"}
	return b
}

// The Source strategy runs the generated S2I Dockerfile with buildah:
// the source's .s2i/bin/assemble and the builder's own assemble really run,
// an incremental build restores what the previous image's save-artifacts
// printed, and a build that is not incremental starts clean.
func TestControllerS2IIncremental(t *testing.T) {
	h := newCtrlHarnessImages(t, []string{"python-311"})
	repo, _ := gitRepo(t, map[string]string{
		"app.py":           "print('hi')\n",
		".s2i/environment": "FROM_S2I_FILE=yes\n",
		// Counts the builds whose artifacts it inherited, then hands over
		// to the builder image's assemble.
		".s2i/bin/assemble": "#!/bin/bash\nset -e\nn=1\nif [ -f /tmp/artifacts/build-count ]; then n=$(( $(cat /tmp/artifacts/build-count) + 1 )); rm /tmp/artifacts/build-count; fi\n" +
			"echo \"custom assemble: build $n, FROM_S2I_FILE=$FROM_S2I_FILE\"\necho $n > /tmp/build-count\n/usr/libexec/s2i/assemble\nmv /tmp/build-count \"$HOME/build-count\"\n",
		".s2i/bin/save-artifacts": "#!/bin/sh\ncd \"$HOME\" && tar cf - build-count\n",
	})
	image := InternalRegistry + "/ns/py:latest"
	count := func(name string) string {
		t.Helper()
		img, err := pullImage(h.ctx, h.reg, image)
		if err != nil {
			t.Fatal(err)
		}
		files, _ := imageFiles(t, img)
		return strings.TrimSpace(files["opt/app-root/src/build-count"])
	}

	h.create(s2iBuild("py-1", 1, repo, h.reg, true))
	h.waitPhase("py-1", buildv1.BuildPhaseComplete)
	log1 := h.log("py-1")
	for _, want := range []string{
		"Pulling image registry.access.redhat.com/ubi9/python-311:latest ...",
		"Clean build will be performed because the previous image " + image + " could not be pulled",
		"Generating dockerfile with builder image registry.access.redhat.com/ubi9/python-311:latest",
		"custom assemble: build 1, FROM_S2I_FILE=yes",
		"---> Installing application source ...",
		"Push successful",
	} {
		if !strings.Contains(log1, want) {
			t.Errorf("first build log lacks %q:\n%s", want, log1)
		}
	}
	if n := count("py-1"); n != "1" {
		t.Errorf("first image: build-count %q, want 1", n)
	}
	img1, _ := pullImage(h.ctx, h.reg, image)
	cf1, _ := img1.ConfigFile()
	for k, v := range map[string]string{
		"io.openshift.s2i.scripts-url": "image:///usr/libexec/s2i", "io.k8s.display-name": image,
		"io.openshift.build.image": "registry.access.redhat.com/ubi9/python-311:latest", "io.openshift.s2i.build.source-location": repo,
	} {
		if cf1.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cf1.Config.Labels[k], v)
		}
	}
	env := strings.Join(cf1.Config.Env, " ")
	for _, want := range []string{"APP_MODULE=app:app", "FROM_S2I_FILE=yes", "OPENSHIFT_BUILD_NAME=py-1", "STI_SCRIPTS_PATH=/usr/libexec/s2i"} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %s: %s", want, env)
		}
	}
	if cmd := strings.Join(cf1.Config.Cmd, " "); !strings.HasSuffix(cmd, "/usr/libexec/s2i/run") || cf1.Config.User != "1001" {
		t.Errorf("cmd %q user %q", cf1.Config.Cmd, cf1.Config.User)
	}

	h.create(s2iBuild("py-2", 2, repo, h.reg, true))
	h.waitPhase("py-2", buildv1.BuildPhaseComplete)
	if log2 := h.log("py-2"); !strings.Contains(log2, "Restoring artifacts from the previous image "+image) ||
		!strings.Contains(log2, "custom assemble: build 2") {
		t.Errorf("second build did not restore the artifacts:\n%s", log2)
	}
	if n := count("py-2"); n != "2" {
		t.Errorf("second (incremental) image: build-count %q, want 2", n)
	}

	// Not incremental: a clean build.
	h.create(s2iBuild("py-3", 3, repo, h.reg, false))
	h.waitPhase("py-3", buildv1.BuildPhaseComplete)
	if n := count("py-3"); n != "1" || strings.Contains(h.log("py-3"), "previous image") {
		t.Errorf("a build that is not incremental inherited artifacts (build-count %q):\n%s", n, h.log("py-3"))
	}
}

func TestControllerFailures(t *testing.T) {
	h := newCtrlHarness(t)
	repo, _ := gitRepo(t, map[string]string{"app/README.md": "no Dockerfile here", "Dockerfile": "FROM scratch\nCOPY missing /x\n"})
	dead := "127.0.0.1:1"
	type tc struct {
		name   string
		build  *buildv1.Build
		phase  buildv1.BuildPhase
		reason buildv1.StatusReason
		inLog  string
	}
	var cases []tc
	add := func(name string, phase buildv1.BuildPhase, reason buildv1.StatusReason, inLog string, mod func(*buildv1.Build)) {
		b := dockerGitBuild(name+"-1", name, 1, repo, h.reg) // each its own BuildConfig: no queueing
		if mod != nil {
			mod(b)
		}
		cases = append(cases, tc{name, b, phase, reason, inLog})
	}
	add("nodockerfile", "Failed", "DockerBuildFailed", `failed to read Dockerfile "Dockerfile"`, nil)
	add("badcopy", "Failed", "DockerBuildFailed", `error: build error: building at STEP "COPY missing /x"`, func(b *buildv1.Build) { b.Spec.Source.ContextDir = "" })
	add("nocontext", "Failed", "InvalidContextDirectory", "provided context directory does not exist: nope", func(b *buildv1.Build) { b.Spec.Source.ContextDir = "nope" })
	add("noclone", "Failed", "FetchSourceFailed", "error: failed to clone repository", func(b *buildv1.Build) { b.Spec.Source.Git.URI = filepath.Join(t.TempDir(), "none") })
	add("noref", "Failed", "FetchSourceFailed", `unable to checkout "nosuchbranch"`, func(b *buildv1.Build) { b.Spec.Source.Git.Ref = "nosuchbranch" })
	add("nobuilder", "Failed", "PullBuilderImageFailed", "failed to pull image", func(b *buildv1.Build) {
		b.Spec.Source.ContextDir = ""
		b.Spec.Strategy = buildv1.BuildStrategy{SourceStrategy: &buildv1.SourceBuildStrategy{From: corev1.ObjectReference{Kind: "DockerImage", Name: "quay.io/nope/nope:1"}}}
	})
	add("nopush", "Failed", "PushImageToRegistryFailed", "error: build error: Failed to push image", func(b *buildv1.Build) {
		b.Spec.Source.ContextDir = ""
		b.Spec.Source.Dockerfile = ptr("FROM scratch\nLABEL a=b\n")
		b.Spec.Output.To.Name = dead + "/ns/x:1"
	})
	add("knobfail", "Failed", "PostCommitHookFailed", "Simulated failure requested (OCBUILD_SIM_FAIL=PostCommitHookFailed)", func(b *buildv1.Build) {
		withEnv(b, KnobFail, "PostCommitHookFailed")
	})
	add("knoberror", "Error", "BuildPodDeleted", "OCBUILD_SIM_FAIL=BuildPodDeleted", func(b *buildv1.Build) { withEnv(b, KnobFail, "BuildPodDeleted") })
	add("unresolvable", "Failed", "UnresolvableEnvironmentVariable", `key "k" of config map "nope" not found`, func(b *buildv1.Build) {
		b.Spec.Strategy.DockerStrategy.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k"}}}}
	})
	for _, c := range cases {
		h.create(c.build)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := h.waitFor(c.name+"-1", "ended", func(b *buildv1.Build) bool { return isTerminal(b.Status.Phase) })
			log := h.log(c.name + "-1")
			if b.Status.Phase != c.phase || b.Status.Reason != c.reason || b.Status.Message != messageFor(c.reason) {
				t.Errorf("status %s/%s/%q, want %s/%s\n%s", b.Status.Phase, b.Status.Reason, b.Status.Message, c.phase, c.reason, log)
			}
			if !strings.Contains(log, c.inLog) {
				t.Errorf("log lacks %q:\n%s", c.inLog, log)
			}
			lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
			if len(lines) > 5 {
				lines = lines[len(lines)-5:]
			}
			// logSnippet follows the Failed phase (§5.4).
			b = h.waitFor(c.name+"-1", "got a logSnippet", func(b *buildv1.Build) bool { return b.Status.LogSnippet != "" })
			if b.Status.LogSnippet != logSnippet(lines) {
				t.Errorf("logSnippet %q, log tail %q", b.Status.LogSnippet, lines)
			}
			if b.Status.Output.To != nil && b.Status.Output.To.ImageDigest != "" {
				t.Errorf("a failed build has a digest")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func longBuild(name, bc string, n int, policy buildv1.BuildRunPolicy, reg string) *buildv1.Build {
	b := mkBuild(name, bc, n, policy, "")
	b.Spec.Source.Dockerfile = ptr("FROM scratch\nLABEL a=b\n")
	b.Spec.Strategy = buildv1.BuildStrategy{DockerStrategy: &buildv1.DockerBuildStrategy{}}
	b.Spec.Output.To = &corev1.ObjectReference{Kind: "DockerImage", Name: reg + "/ns/" + bc + ":" + name}
	return withEnv(b, KnobDuration, "1h")
}

func TestControllerCancel(t *testing.T) {
	h := newCtrlHarness(t)
	h.create(longBuild("c-1", "c", 1, "", h.reg))
	h.create(longBuild("c-2", "c", 2, "", h.reg))
	h.waitPhase("c-1", buildv1.BuildPhaseRunning)
	h.waitFor("c-1", "logged progress", func(*buildv1.Build) bool { return strings.Contains(h.log("c-1"), "Simulating a build of 1h0m0s") })
	if p := h.get("c-2").Status.Phase; p != buildv1.BuildPhaseNew {
		t.Fatalf("c-2 is %s while c-1 runs (Serial)", p)
	}
	// cancel the queued one: Cancelled at once, never ran
	h.cancel("c-2")
	b2 := h.waitPhase("c-2", buildv1.BuildPhaseCancelled)
	if b2.Status.Reason != buildv1.StatusReasonCancelledBuild || b2.Status.Message != "The build was cancelled by the user." ||
		b2.Status.CompletionTimestamp == nil || b2.Status.StartTimestamp == nil || b2.Status.LogSnippet != "" {
		t.Errorf("c-2 status %+v", b2.Status)
	}
	// cancel the running one
	h.cancel("c-1")
	b1 := h.waitPhase("c-1", buildv1.BuildPhaseCancelled)
	h.waitLogClosed("c-1")
	h.noRun("c-1")
	if b1.Status.Reason != buildv1.StatusReasonCancelledBuild || !b1.Status.Cancelled {
		t.Errorf("c-1 status %+v", b1.Status)
	}
	if got := h.phases("c-1"); !reflect.DeepEqual(got, []buildv1.BuildPhase{"New", "Pending", "Running", "Cancelled"}) {
		t.Errorf("phases %v", got)
	}
	if _, err := remote.Head(mustRef(t, h.reg+"/ns/c:c-1")); err == nil {
		t.Error("a cancelled build pushed its image")
	}
	// a terminal build keeps its phase when cancelled
	h.cancel("c-1")
	if p := h.get("c-1").Status.Phase; p != buildv1.BuildPhaseCancelled {
		t.Errorf("phase %s", p)
	}
}

func TestControllerCompletesFirstAndDeadline(t *testing.T) {
	h := newCtrlHarness(t)
	race := longBuild("r-1", "r", 1, "", h.reg)
	race.Spec.Strategy.DockerStrategy.Env = []corev1.EnvVar{{Name: KnobDuration, Value: "1s"}, {Name: KnobCompletesFirst, Value: "true"}}
	h.create(race)
	h.waitPhase("r-1", buildv1.BuildPhaseRunning)
	h.cancel("r-1")
	done := h.waitPhase("r-1", buildv1.BuildPhaseComplete)
	if !done.Status.Cancelled || done.Status.Output.To == nil || done.Status.Output.To.ImageDigest == "" {
		t.Errorf("completes-first: %+v", done.Status)
	}
	if !strings.Contains(h.log("r-1"), "Building ... 1s of 1s") {
		t.Errorf("no progress lines:\n%s", h.log("r-1"))
	}

	dl := longBuild("d-1", "d", 1, "", h.reg)
	dl.Spec.CompletionDeadlineSeconds = ptr(int64(1))
	h.create(dl)
	b := h.waitFor("d-1", "ended", func(b *buildv1.Build) bool { return isTerminal(b.Status.Phase) })
	if b.Status.Phase != buildv1.BuildPhaseFailed || b.Status.Reason != buildv1.StatusReasonGenericBuildFailed ||
		b.Status.Message != "Generic Build failure - check logs for details." || b.Status.LogSnippet == "" {
		t.Errorf("deadline: %+v", b.Status)
	}
	h.noRun("d-1")
}

func TestControllerPolicies(t *testing.T) {
	h := newCtrlHarness(t)
	// Parallel builds run together.
	h.create(longBuild("p-1", "p", 1, buildv1.BuildRunPolicyParallel, h.reg))
	h.create(longBuild("p-2", "p", 2, buildv1.BuildRunPolicyParallel, h.reg))
	h.waitPhase("p-1", buildv1.BuildPhaseRunning)
	h.waitPhase("p-2", buildv1.BuildPhaseRunning)

	// SerialLatestOnly cancels the queued older builds and runs the latest
	// once the running one ends.
	h.create(longBuild("l-1", "l", 1, buildv1.BuildRunPolicySerialLatestOnly, h.reg))
	h.waitPhase("l-1", buildv1.BuildPhaseRunning)
	h.create(longBuild("l-2", "l", 2, buildv1.BuildRunPolicySerialLatestOnly, h.reg))
	h.create(longBuild("l-3", "l", 3, buildv1.BuildRunPolicySerialLatestOnly, h.reg))
	h.waitPhase("l-2", buildv1.BuildPhaseCancelled)
	if p := h.get("l-3").Status.Phase; p != buildv1.BuildPhaseNew {
		t.Errorf("l-3 is %s while l-1 runs", p)
	}
	if p := h.get("l-1").Status.Phase; p != buildv1.BuildPhaseRunning {
		t.Errorf("SerialLatestOnly cancelled the running l-1 (%s)", p)
	}
	h.cancel("l-1")
	h.waitPhase("l-3", buildv1.BuildPhaseRunning)

	// Serial: the next one starts when the running one ends.
	short := func(name string, n int) *buildv1.Build {
		b := longBuild(name, "s", n, buildv1.BuildRunPolicySerial, h.reg)
		b.Spec.Strategy.DockerStrategy.Env = nil
		return b
	}
	h.create(short("s-1", 1))
	h.create(short("s-2", 2))
	h.create(short("s-3", 3))
	b3 := h.waitPhase("s-3", buildv1.BuildPhaseComplete)
	b1, b2 := h.get("s-1"), h.get("s-2")
	if b1.Status.Phase != "Complete" || b2.Status.Phase != "Complete" {
		t.Fatalf("s-1 %s s-2 %s", b1.Status.Phase, b2.Status.Phase)
	}
	if b2.Status.StartTimestamp.Before(b1.Status.CompletionTimestamp) || b3.Status.StartTimestamp.Before(b2.Status.CompletionTimestamp) {
		t.Errorf("serial builds overlapped: %v-%v, %v-%v, %v", b1.Status.StartTimestamp, b1.Status.CompletionTimestamp,
			b2.Status.StartTimestamp, b2.Status.CompletionTimestamp, b3.Status.StartTimestamp)
	}
}

func TestControllerStayNewAndPushSecret(t *testing.T) {
	h := newCtrlHarness(t)
	ist := longBuild("i-1", "i", 1, "", h.reg)
	ist.Spec.Output.To = &corev1.ObjectReference{Kind: "ImageStreamTag", Name: "app:latest"}
	h.create(ist)
	b := h.waitFor("i-1", "got a reason", func(b *buildv1.Build) bool { return b.Status.Reason != "" })
	if b.Status.Phase != buildv1.BuildPhaseNew || b.Status.Reason != buildv1.StatusReasonInvalidOutputReference || b.Status.Message != "Output image could not be resolved." {
		t.Errorf("ImageStreamTag output: %+v", b.Status)
	}
	bin := longBuild("j-1", "j", 1, "", h.reg)
	bin.Spec.Source = buildv1.BuildSource{Binary: &buildv1.BinaryBuildSource{}}
	bin.Spec.Output.To = &corev1.ObjectReference{Kind: "ImageStreamTag", Name: "app:latest"}
	h.create(bin)
	b = h.waitPhase("j-1", buildv1.BuildPhaseFailed)
	if b.Status.Reason != buildv1.StatusReasonInvalidOutputReference {
		t.Errorf("binary ImageStreamTag output: %+v", b.Status)
	}
	from := longBuild("f-1", "f", 1, "", h.reg)
	from.Spec.Strategy.DockerStrategy.From = &corev1.ObjectReference{Kind: "ImageStreamTag", Name: "base:1"}
	h.create(from)
	b = h.waitFor("f-1", "got a reason", func(b *buildv1.Build) bool { return b.Status.Reason != "" })
	if b.Status.Phase != buildv1.BuildPhaseNew || b.Status.Reason != buildv1.StatusReasonInvalidImageReference {
		t.Errorf("ImageStreamTag from: %+v", b.Status)
	}

	ps := longBuild("s-1", "s", 1, "", h.reg)
	ps.Spec.Strategy.DockerStrategy.Env = nil
	ps.Spec.Output.PushSecret = &corev1.LocalObjectReference{Name: "push"}
	h.create(ps)
	b = h.waitFor("s-1", "got a reason", func(b *buildv1.Build) bool { return b.Status.Reason != "" })
	if b.Status.Phase != buildv1.BuildPhasePending || b.Status.Reason != buildv1.StatusReasonMissingPushSecret || b.Status.Message != "Missing push secret." {
		t.Errorf("missing push secret: %+v", b.Status)
	}
	if _, err := h.kube.CoreV1().Secrets("ns").Create(h.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "push", Namespace: "ns"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b = h.waitPhase("s-1", buildv1.BuildPhaseComplete)
	if b.Status.Reason != "" {
		t.Errorf("reason kept: %+v", b.Status)
	}
}

func TestControllerBinaryAndPruning(t *testing.T) {
	two, one := int32(2), int32(1)
	bc := &buildv1.BuildConfig{ObjectMeta: metav1.ObjectMeta{Name: "bin", Namespace: "ns"}}
	bc.Spec.SuccessfulBuildsHistoryLimit, bc.Spec.FailedBuildsHistoryLimit = &two, &one
	h := newCtrlHarness(t, bc)
	binary := func(name string, n int) *buildv1.Build {
		b := mkBuild(name, "bin", n, "", "")
		b.CreationTimestamp = metav1.NewTime(time.Now().Add(time.Duration(n) * time.Second))
		b.Spec.Source = buildv1.BuildSource{Binary: &buildv1.BinaryBuildSource{}}
		b.Spec.Strategy = buildv1.BuildStrategy{DockerStrategy: &buildv1.DockerBuildStrategy{}}
		b.Spec.Output.To = &corev1.ObjectReference{Kind: "DockerImage", Name: h.reg + "/ns/bin:latest"}
		return b
	}
	upload := tarGz(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY hello.txt /\n", "hello.txt": "hi"})
	deliver := func(name string, body []byte) error {
		h.waitPhase(name, buildv1.BuildPhaseRunning)
		return h.sources.Deliver(h.ctx, Key{"ns", name}, "", strings.NewReader(string(body)))
	}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("bin-%d", i)
		h.create(binary(name, i))
		if err := deliver(name, upload); err != nil {
			t.Fatal(err)
		}
		b := h.waitPhase(name, buildv1.BuildPhaseComplete)
		if b.Spec.Revision != nil {
			t.Errorf("a binary build without a commit got a revision: %+v", b.Spec.Revision)
		}
		if !strings.Contains(h.log(name), "Receiving source from STDIN as archive ...") {
			t.Errorf("log:\n%s", h.log(name))
		}
	}
	// a bad archive fails the build, and Deliver returns after that
	h.create(binary("bin-4", 4))
	if err := deliver("bin-4", []byte(strings.Repeat("garbage ", 100))); err == nil || !strings.Contains(err.Error(), ExtractFailedMessage) {
		t.Fatalf("Deliver: %v", err)
	}
	if b := h.get("bin-4"); b.Status.Phase != buildv1.BuildPhaseFailed || b.Status.Reason != buildv1.StatusReasonFetchSourceFailed {
		t.Errorf("bad archive: %+v", b.Status)
	}
	// a revision given by the front door is kept
	b5 := binary("bin-5", 5)
	b5.Spec.Revision = &buildv1.SourceRevision{Type: "Git", Git: &buildv1.GitSourceRevision{Commit: "abc"}}
	h.create(b5)
	if err := deliver("bin-5", upload); err != nil {
		t.Fatal(err)
	}
	h.waitPhase("bin-5", buildv1.BuildPhaseComplete)
	h.create(binary("bin-6", 6))
	h.waitPhase("bin-6", buildv1.BuildPhaseRunning)
	h.cancel("bin-6")
	h.waitPhase("bin-6", buildv1.BuildPhaseCancelled)

	// history: 2 Complete (bin-3, bin-5) and 1 failed (bin-6) are left
	err := wait.PollUntilContextTimeout(h.ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := h.builds.BuildV1().Builds("ns").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		var names []string
		for _, b := range list.Items {
			names = append(names, b.Name)
		}
		return strings.Join(names, " ") == "bin-3 bin-5 bin-6", nil
	})
	if err != nil {
		list, _ := h.builds.BuildV1().Builds("ns").List(h.ctx, metav1.ListOptions{})
		for _, b := range list.Items {
			t.Logf("%s %s", b.Name, b.Status.Phase)
		}
		t.Fatal("history not pruned to bin-3 bin-5 bin-6")
	}
	if lines, _ := h.logs.Read(Key{"ns", "bin-1"}, time.Time{}); lines != nil {
		t.Error("the log of a pruned build is kept")
	}
}

func TestControllerDeleteRunning(t *testing.T) {
	h := newCtrlHarness(t)
	h.create(longBuild("x-1", "x", 1, "", h.reg))
	h.waitPhase("x-1", buildv1.BuildPhaseRunning)
	if err := h.builds.BuildV1().Builds("ns").Delete(h.ctx, "x-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.noRun("x-1")
	if lines, _ := h.logs.Read(Key{"ns", "x-1"}, time.Time{}); lines != nil {
		t.Error("the log of a deleted build is kept")
	}
}

func TestControllerBuildInputs(t *testing.T) {
	h := newCtrlHarness(t)
	b := longBuild("in-1", "in", 1, "", h.reg)
	b.Spec.Strategy.DockerStrategy.Env = nil
	b.Spec.Source.Dockerfile = ptr("FROM scratch\nCOPY . /ctx/\n")
	b.Spec.Source.Secrets = []buildv1.SecretBuildSource{{Secret: corev1.LocalObjectReference{Name: "creds"}, DestinationDir: "secrets"}}
	b.Spec.Source.ConfigMaps = []buildv1.ConfigMapBuildSource{{ConfigMap: corev1.LocalObjectReference{Name: "settings"}}}
	h.create(b)
	got := h.waitFor("in-1", "got a reason", func(b *buildv1.Build) bool { return b.Status.Reason != "" })
	if got.Status.Phase != buildv1.BuildPhaseNew || got.Status.Reason != buildv1.StatusReasonGenericBuildFailed ||
		got.Status.Message != "These resources do not exist: secret/creds, configmap/settings" {
		t.Fatalf("missing inputs: %+v", got.Status)
	}
	if _, err := h.kube.CoreV1().Secrets("ns").Create(h.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "ns"},
		Data: map[string][]byte{"token": []byte("s3cr3t")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.kube.CoreV1().ConfigMaps("ns").Create(h.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "ns"},
		Data: map[string]string{"app.conf": "x=1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitPhase("in-1", buildv1.BuildPhaseComplete)
	img, err := pullImage(h.ctx, h.reg, b.Spec.Output.To.Name)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := imageFiles(t, img)
	if files["ctx/secrets/token"] != "s3cr3t" || files["ctx/app.conf"] != "x=1" {
		t.Errorf("inputs not in the context: %v", files)
	}
	if log := h.log("in-1"); !strings.Contains(log, `Copying secret "creds" to "/secrets"`) {
		t.Errorf("log:\n%s", log)
	}
}

// TestControllerGitMirror clones a repository the sandbox cannot reach from
// the sandbox git server (<GitURL>/<name>.git), logging the original URL.
func TestControllerGitMirror(t *testing.T) {
	h := newCtrlHarness(t)
	work, head := gitRepo(t, map[string]string{"app/Dockerfile": "FROM scratch\nCOPY . /src/\n", "app/f": "x"})
	root := t.TempDir()
	cmd := exec.Command("git", "clone", "-q", "--bare", work, filepath.Join(root, "mirrored.git"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&cgi.Handler{Path: gitPath, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + root}})
	defer srv.Close()
	h.c.o.GitURL = srv.URL

	b := dockerGitBuild("m-1", "m", 1, "https://github.com/example/mirrored", h.reg)
	h.create(b)
	done := h.waitPhase("m-1", buildv1.BuildPhaseComplete)
	if done.Spec.Revision == nil || done.Spec.Revision.Git.Commit != head {
		t.Errorf("revision %+v, want %s", done.Spec.Revision, head)
	}
	if log := h.log("m-1"); !strings.Contains(log, `Cloning "https://github.com/example/mirrored" ...`) {
		t.Errorf("log:\n%s", log)
	}
	// a repository the server lacks is cloned from its own URL (and fails)
	h.create(dockerGitBuild("n-1", "n", 1, "http://127.0.0.1:1/none.git", h.reg))
	if b := h.waitFor("n-1", "ended", func(b *buildv1.Build) bool { return isTerminal(b.Status.Phase) }); b.Status.Reason != buildv1.StatusReasonFetchSourceFailed {
		t.Errorf("unreachable repository: %+v", b.Status)
	}
}

// TestControllerRecreatedBuild: a build deleted and created again under the
// same name (its BuildConfig was recreated) gets a fresh log and executor.
func TestControllerRecreatedBuild(t *testing.T) {
	h := newCtrlHarness(t)
	h.create(longBuild("r-1", "r", 1, "", h.reg))
	h.waitPhase("r-1", buildv1.BuildPhaseRunning)
	old := h.get("r-1")
	// delete and recreate before the controller sees the deletion: the
	// queue may merge both events into one sync of the new build
	if err := h.builds.BuildV1().Builds("ns").Delete(h.ctx, "r-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	nb := longBuild("r-1", "r", 1, "", h.reg)
	nb.UID = "second"
	nb.Spec.Strategy.DockerStrategy.Env = nil
	h.create(nb)
	done := h.waitFor("r-1", "completed as the new build", func(b *buildv1.Build) bool {
		return b.UID == "second" && b.Status.Phase == buildv1.BuildPhaseComplete
	})
	if done.UID == old.UID {
		t.Fatal("same UID")
	}
	h.waitLogClosed("r-1")
	if log := h.log("r-1"); strings.Contains(log, "Simulating a build of 1h") || !strings.Contains(log, "Push successful") {
		t.Errorf("the new build's log:\n%s", log)
	}
}

// TestControllerFailedBeforeLogSnippet: the builder's Failed comes first,
// without logSnippet; the controller adds it once the "pod" has ended
// (§5.4). Failures the controller decides (the deadline) carry it at once.
func TestControllerFailedBeforeLogSnippet(t *testing.T) {
	h := newCtrlHarness(t)
	h.c.snippetDelay = time.Second
	w, err := h.builds.BuildV1().Builds("ns").Watch(h.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	b := longBuild("f-1", "f", 1, "", h.reg)
	b.Spec.Strategy.DockerStrategy.Env = []corev1.EnvVar{{Name: KnobFail, Value: "DockerBuildFailed"}}
	h.create(b)
	var failedAt time.Time
	var first *buildv1.Build
	timeout := time.After(30 * time.Second)
	for first == nil || first.Status.LogSnippet == "" {
		select {
		case ev := <-w.ResultChan():
			x, ok := ev.Object.(*buildv1.Build)
			if !ok || x.Name != "f-1" || x.Status.Phase != buildv1.BuildPhaseFailed {
				continue
			}
			if first == nil {
				first, failedAt = x, time.Now()
				if x.Status.LogSnippet != "" {
					t.Fatalf("the first Failed event already has logSnippet %q", x.Status.LogSnippet)
				}
				if x.Status.Reason != "DockerBuildFailed" || x.Status.Message != "Dockerfile build strategy has failed." || x.Status.CompletionTimestamp == nil {
					t.Errorf("first Failed event: %+v", x.Status)
				}
				continue
			}
			first = x
		case <-timeout:
			t.Fatalf("no Failed build with logSnippet (first Failed: %v)", first != nil)
		}
	}
	if d := time.Since(failedAt); d < 800*time.Millisecond {
		t.Errorf("logSnippet %s after Failed, want about 1s", d)
	}
	if !strings.Contains(first.Status.LogSnippet, "Dockerfile build strategy has failed.") {
		t.Errorf("logSnippet %q", first.Status.LogSnippet)
	}

	// The deadline is the controller's: phase and logSnippet together.
	dl := longBuild("d-1", "d", 1, "", h.reg)
	dl.Spec.CompletionDeadlineSeconds = ptr(int64(1))
	h.create(dl)
	for {
		select {
		case ev := <-w.ResultChan():
			x, ok := ev.Object.(*buildv1.Build)
			if !ok || x.Name != "d-1" || x.Status.Phase != buildv1.BuildPhaseFailed {
				continue
			}
			if x.Status.LogSnippet == "" {
				t.Errorf("deadline Failed without logSnippet")
			}
			return
		case <-time.After(30 * time.Second):
			t.Fatal("d-1 never Failed")
		}
	}
}

// TestControllerStartDelay: OCBUILD_SIM_START_DELAY holds the build in
// Pending before Running; a cancel during the delay acts at once.
func TestControllerStartDelay(t *testing.T) {
	h := newCtrlHarness(t)
	b := longBuild("s-1", "s", 1, "", h.reg)
	b.Spec.Strategy.DockerStrategy.Env = []corev1.EnvVar{{Name: KnobStartDelay, Value: "1500ms"}, {Name: KnobDuration, Value: "1s"}}
	h.create(b)
	pending := h.waitPhase("s-1", buildv1.BuildPhasePending)
	t0 := time.Now()
	time.Sleep(time.Second)
	if p := h.get("s-1").Status.Phase; p != buildv1.BuildPhasePending {
		t.Fatalf("s-1 is %s 1s into a 1.5s start delay", p)
	}
	h.waitPhase("s-1", buildv1.BuildPhaseRunning)
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("Running %s after Pending (%v), want about 1.5s", d, pending.Status.StartTimestamp)
	}
	done := h.waitPhase("s-1", buildv1.BuildPhaseComplete)
	if got := h.phases("s-1"); !reflect.DeepEqual(got, []buildv1.BuildPhase{"New", "Pending", "Running", "Complete"}) {
		t.Errorf("phases %v", got)
	}
	if done.Status.Output.To == nil || done.Status.Output.To.ImageDigest == "" {
		t.Errorf("no digest: %+v", done.Status)
	}

	c := longBuild("c-1", "c", 1, "", h.reg)
	c.Spec.Strategy.DockerStrategy.Env = []corev1.EnvVar{{Name: KnobStartDelay, Value: "1h"}}
	h.create(c)
	h.waitPhase("c-1", buildv1.BuildPhasePending)
	h.cancel("c-1")
	h.waitPhase("c-1", buildv1.BuildPhaseCancelled)
	h.noRun("c-1")
	if got := h.phases("c-1"); !reflect.DeepEqual(got, []buildv1.BuildPhase{"New", "Pending", "Cancelled"}) {
		t.Errorf("phases %v", got)
	}
}

// An incremental build whose previous image has no save-artifacts (nor the
// source one) is a clean build, and says so as OpenShift does.
func TestControllerS2IWithoutSaveArtifacts(t *testing.T) {
	h := newCtrlHarness(t)
	base, err := pullImage(h.ctx, h.reg, h.reg+"/"+BaseImage)
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for _, f := range []struct{ name, body string }{
		{"usr/libexec/s2i/assemble", "#!/bin/sh\nset -e\necho \"tiny assemble: artifacts $(ls /tmp/artifacts 2>/dev/null | wc -l)\"\ncp -R /tmp/src/. \"$HOME\"\n"},
		{"usr/libexec/s2i/run", "#!/bin/sh\nexec cat \"$HOME/app.txt\"\n"},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.body))
	}
	for _, d := range []string{"opt/app-root/src"} {
		tw.WriteHeader(&tar.Header{Name: d + "/", Mode: 0o775, Uid: 1001, Typeflag: tar.TypeDir})
	}
	tw.Close()
	// The same media types as the base (OCI): buildah refuses a mix.
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer.Bytes())), nil },
		tarball.WithMediaType(ggcrtypes.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cfg := cf.Config
	cfg.User, cfg.WorkingDir = "1001", "/opt/app-root/src"
	cfg.Env = append(cfg.Env, "HOME=/opt/app-root/src")
	cfg.Labels = map[string]string{"io.openshift.s2i.scripts-url": "image:///usr/libexec/s2i"}
	if img, err = mutate.Config(img, cfg); err != nil {
		t.Fatal(err)
	}
	builder := h.reg + "/test/no-save-artifacts:1"
	if err := remote.Write(mustRef(t, builder), img); err != nil {
		t.Fatal(err)
	}
	repo, _ := gitRepo(t, map[string]string{"app.txt": "hello\n"})
	build := func(name string, n int) *buildv1.Build {
		b := s2iBuild(name, n, repo, h.reg, true)
		b.Spec.Strategy.SourceStrategy.From.Name = builder
		return b
	}
	h.create(build("tiny-1", 1))
	h.waitPhase("tiny-1", buildv1.BuildPhaseComplete)
	// The second build also has a post-commit hook: it runs in the
	// assembled image, after assemble.
	second := build("tiny-2", 2)
	second.Spec.PostCommit = buildv1.BuildPostCommitSpec{Script: `test -f "$HOME/app.txt" && echo "hook sees app.txt in $HOME"`}
	h.create(second)
	h.waitPhase("tiny-2", buildv1.BuildPhaseComplete)
	h.waitLogClosed("tiny-2")
	log := h.log("tiny-2")
	for _, want := range []string{
		"Clean build will be performed because /usr/libexec/s2i/save-artifacts was not found in the previous image " + InternalRegistry + "/ns/py:latest",
		"tiny assemble: artifacts 0",
		"hook sees app.txt in /opt/app-root/src",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("second build's log lacks %q:\n%s", want, log)
		}
	}
	// A failing hook fails a Source build as the builder reports any
	// failed S2I image build: GenericBuildFailed.
	third := build("tiny-3", 3)
	third.Spec.PostCommit = buildv1.BuildPostCommitSpec{Command: []string{"/bin/sh", "-c"}, Args: []string{"false"}}
	h.create(third)
	done := h.waitPhase("tiny-3", buildv1.BuildPhaseFailed)
	if done.Status.Reason != buildv1.StatusReasonGenericBuildFailed {
		t.Errorf("a failing hook ended the Source build %s/%q, want GenericBuildFailed", done.Status.Reason, done.Status.Message)
	}
}

// A Custom build is not run: the builder image is committed with the source
// under /tmp/src and the build's environment and labels, and pushed.
func TestControllerCustomBuild(t *testing.T) {
	h := newCtrlHarness(t)
	repo, head := gitRepo(t, map[string]string{"app.txt": "custom source\n"})
	b := mkBuild("cu-1", "cu", 1, "", "")
	b.Spec.Source = buildv1.BuildSource{Git: &buildv1.GitBuildSource{URI: repo, Ref: "main"}}
	b.Spec.Strategy = buildv1.BuildStrategy{CustomStrategy: &buildv1.CustomBuildStrategy{
		From: corev1.ObjectReference{Kind: "DockerImage", Name: h.reg + "/" + BaseImage},
		Env:  []corev1.EnvVar{{Name: "BUILD_MODE", Value: "custom"}},
	}}
	b.Spec.Output.To = &corev1.ObjectReference{Kind: "DockerImage", Name: h.reg + "/ns/cu:latest"}
	h.create(b)
	done := h.waitPhase("cu-1", buildv1.BuildPhaseComplete)
	img, err := pullImage(h.ctx, h.reg, b.Spec.Output.To.Name)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); done.Status.Output.To == nil || done.Status.Output.To.ImageDigest != d.String() {
		t.Errorf("imageDigest %+v, registry %s", done.Status.Output.To, d)
	}
	files, _ := imageFiles(t, img)
	if files["tmp/src/app.txt"] != "custom source\n" {
		t.Errorf("/tmp/src/app.txt = %q", files["tmp/src/app.txt"])
	}
	cf, _ := img.ConfigFile()
	if env := strings.Join(cf.Config.Env, " "); !strings.Contains(env, "BUILD_MODE=custom") || !strings.Contains(env, "OPENSHIFT_BUILD_NAME=cu-1") {
		t.Errorf("env %s", env)
	}
	if cf.Config.Labels["io.openshift.build.commit.id"] != head {
		t.Errorf("labels %v", cf.Config.Labels)
	}
	if log := h.log("cu-1"); !strings.Contains(log, "Custom build strategy: the sandbox does not run the builder image") {
		t.Errorf("log:\n%s", log)
	}
}
