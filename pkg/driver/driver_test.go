package driver

import (
	"bytes"
	"context"
	"fmt"
	clienttesting "k8s.io/client-go/testing"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	buildv1 "github.com/openshift/api/build/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/ocbuild/ocbuild/pkg/buildconfig"
	"github.com/ocbuild/ocbuild/pkg/cancellation"
	"github.com/ocbuild/ocbuild/pkg/failure"
	"github.com/ocbuild/ocbuild/pkg/imagesize"
	"github.com/ocbuild/ocbuild/pkg/results"
)

type run struct {
	d       *Driver
	out     *syncBuffer
	log     *syncBuffer
	results string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newRun(t *testing.T, c *cluster) *run {
	r := &run{out: &syncBuffer{}, log: &syncBuffer{}, results: t.TempDir()}
	r.d = &Driver{Clients: c.clients(), Out: r.out, Log: r.log}
	return r
}

func (r *run) files() results.Files {
	f := results.Files{}
	for _, n := range []string{results.ImageDigest, results.ImageSize, results.CommitSha, results.ErrorReason, results.ErrorMessage} {
		f[n] = filepath.Join(r.results, n)
	}
	return f
}

func (r *run) result(name string) string {
	b, err := os.ReadFile(filepath.Join(r.results, name))
	if err != nil {
		return ""
	}
	return string(b)
}

func dockerSpec(output string) buildconfig.Spec {
	return buildconfig.Spec{Strategy: buildconfig.Docker, Binary: true, Output: output}
}

// sourceTree makes a git checkout with a Dockerfile, returning dir and HEAD.
func sourceTree(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY . /\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("git"); err != nil {
		return dir, ""
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "-qm", "first commit"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return dir, strings.TrimSpace(string(out))
}

// pushImage puts a random image in a local registry and returns its
// reference, digest and expected size (config + layers).
func pushImage(t *testing.T) (string, string, int64) {
	t.Helper()
	srv := httptestRegistry(t)
	ref := srv + "/team/app:v1"
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	size, _ := imagesize.ImageSize(img)
	return ref, d.String(), size
}

func httptestRegistry(t *testing.T) string {
	s := newHTTPTestServer(t, registry.New())
	return strings.TrimPrefix(s, "http://")
}

func TestBinaryBuildCompletesWithDigestSizeAndCommit(t *testing.T) {
	c := newCluster(t)
	ref, digest, size := pushImage(t)
	c.outcome = complete(digest)
	dir, head := sourceTree(t)
	if err := os.MkdirAll(filepath.Join(dir, ".git", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := newRun(t, c)
	o := Options{Mode: ModeBuild, Namespace: ns, BuildConfig: "app", Spec: dockerSpec(ref), SourceDir: dir, SourceRoot: dir,
		Owner:        buildconfig.Owner{Build: "app", BuildRun: "app-run-1", TaskRun: "app-run-1-tr", TaskRunUID: "uid-1"},
		StartTimeout: time.Minute, Results: r.files(), Sizes: imagesize.Lookup{Insecure: true}}
	c.setLog("app-1", []string{"STEP 1/2: FROM scratch", "STEP 2/2: COPY . /", "Push successful"}, 0)
	out, err := r.d.Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v\nlog:\n%s", err, r.log)
	}
	if got := r.result(results.ImageDigest); got != digest {
		t.Errorf("digest result = %q, want %q", got, digest)
	}
	if got := r.result(results.ImageSize); got != fmt.Sprint(size) {
		t.Errorf("size result = %q, want %d", got, size)
	}
	if r.result(results.ErrorReason) != "" {
		t.Errorf("error reason written on success: %q", r.result(results.ErrorReason))
	}
	if want := "STEP 1/2: FROM scratch\nSTEP 2/2: COPY . /\nPush successful\n"; r.out.String() != want {
		t.Errorf("build log = %q, want %q", r.out.String(), want)
	}
	up := c.uploads["app-1"]
	if slices.ContainsFunc(up.names, func(n string) bool { return strings.HasPrefix(strings.TrimPrefix(n, "./"), ".git") }) {
		t.Errorf("upload contains .git: %v", up.names)
	}
	if !slices.ContainsFunc(up.names, func(n string) bool { return strings.TrimPrefix(n, "./") == "Dockerfile" }) {
		t.Errorf("upload lacks the Dockerfile: %v", up.names)
	}
	if head != "" {
		if up.query.Get("revision.commit") != head || up.query.Get("revision.authorName") != "Dev" || !strings.Contains(up.query.Get("revision.message"), "first commit") {
			t.Errorf("revision params = %v, want commit %s by Dev", up.query, head)
		}
		if out.Commit != head || r.result(results.CommitSha) != head {
			t.Errorf("commit = %q / result %q, want %s", out.Commit, r.result(results.CommitSha), head)
		}
	}
	b := c.get("app-1")
	if len(b.OwnerReferences) != 1 || b.OwnerReferences[0].Kind != "TaskRun" || b.OwnerReferences[0].UID != "uid-1" {
		t.Errorf("build owners = %+v, want only the TaskRun", b.OwnerReferences)
	}
	if b.Labels[buildconfig.LabelBuildRun] != "app-run-1" || b.Labels[buildconfig.LabelBuild] != "app" {
		t.Errorf("build labels = %v", b.Labels)
	}
	bc, _ := c.client.BuildV1().BuildConfigs(ns).Get(context.Background(), "app", metav1.GetOptions{})
	if bc.Spec.Output.To.Kind != "DockerImage" || len(bc.Spec.Triggers) != 0 || *bc.Spec.SuccessfulBuildsHistoryLimit < 1 || *bc.Spec.FailedBuildsHistoryLimit < 1 {
		t.Errorf("BuildConfig spec = %+v", bc.Spec)
	}
}

func TestGitBuildInstantiatesAtCommit(t *testing.T) {
	c := newCluster(t)
	c.outcome = complete("sha256:" + strings.Repeat("a", 64))
	r := newRun(t, c)
	spec := buildconfig.Spec{Strategy: buildconfig.Docker, GitURL: "https://git.example.com/app.git", GitRef: "main", Output: "quay.io/team/app:v1"}
	o := Options{Mode: ModeBuild, Namespace: ns, BuildConfig: "app", Spec: spec, Commit: "0123456789abcdef0123456789abcdef01234567",
		Owner: buildconfig.Owner{Build: "app", BuildRun: "run-7"}, StartTimeout: time.Minute, Results: r.files()}
	if _, err := r.d.Run(context.Background(), o); err != nil {
		t.Fatalf("Run: %v\n%s", err, r.log)
	}
	if len(c.requests) != 1 {
		t.Fatalf("instantiate calls = %d, want 1", len(c.requests))
	}
	req := c.requests[0]
	if req.Name != "app" || req.Revision == nil || req.Revision.Git.Commit != o.Commit || req.Binary != nil {
		t.Errorf("BuildRequest = %+v", req)
	}
	if req.Labels[buildconfig.LabelBuildRun] != "run-7" {
		t.Errorf("request labels = %v", req.Labels)
	}
	if got := r.result(results.CommitSha); got != o.Commit {
		t.Errorf("commit result = %q", got)
	}
}

func TestTerminalPhases(t *testing.T) {
	snippet := strings.Repeat("compiling line\n", 200) + "error: undefined: foo"
	cases := []struct {
		phase      buildv1.BuildPhase
		reason     buildv1.StatusReason
		message    string
		wantReason string
		wantInMsg  string
	}{
		{buildv1.BuildPhaseFailed, "DockerBuildFailed", "Dockerfile build strategy has failed.", "DockerBuildFailed", "error: undefined: foo"},
		{buildv1.BuildPhaseFailed, "", "", failure.BuildFailed, "ended Failed"},
		{buildv1.BuildPhaseError, "BuildPodDeleted", "The pod for this build was deleted before the build completed.", "BuildPodDeleted", "deleted before"},
		{buildv1.BuildPhaseCancelled, "CancelledBuild", "The build was cancelled by the user.", "CancelledBuild", "cancelled by the user"},
	}
	for _, tc := range cases {
		t.Run(string(tc.phase)+"/"+string(tc.reason), func(t *testing.T) {
			c := newCluster(t)
			c.outcome = func(b *buildv1.Build) *buildv1.BuildStatus {
				return &buildv1.BuildStatus{Phase: tc.phase, Reason: tc.reason, Message: tc.message, LogSnippet: snippet}
			}
			r := newRun(t, c)
			o := Options{Mode: ModeBuild, Namespace: ns, BuildConfig: "app", StartTimeout: time.Minute, Results: r.files(),
				Spec: buildconfig.Spec{Strategy: buildconfig.Docker, GitURL: "https://git.example.com/a.git", Output: "quay.io/t/a:1"}}
			_, err := r.d.Run(context.Background(), o)
			if err == nil {
				t.Fatal("Run succeeded for a build that ended " + string(tc.phase))
			}
			if got := r.result(results.ErrorReason); got != tc.wantReason {
				t.Errorf("reason = %q, want %q", got, tc.wantReason)
			}
			msg := r.result(results.ErrorMessage)
			if !strings.Contains(msg, tc.wantInMsg) || len(msg) > results.MaxMessage {
				t.Errorf("message (%d bytes) = %q, want it to contain %q", len(msg), msg, tc.wantInMsg)
			}
			if r.result(results.ImageDigest) != "" {
				t.Error("digest written for a failed build")
			}
		})
	}
}

func TestConcurrentUpdateIsDetectedAndRetried(t *testing.T) {
	c := newCluster(t)
	c.outcome = complete("sha256:" + strings.Repeat("b", 64))
	first := true
	c.beforeGenerate = func(bc *buildv1.BuildConfig) {
		if first {
			// Another BuildRun rewrote the shared BuildConfig between
			// our update and our instantiate.
			first = false
			bc.Spec.Output.To.Name = "quay.io/team/other:v9"
		}
	}
	r := newRun(t, c)
	o := Options{Mode: ModeBuild, Namespace: ns, BuildConfig: "app", StartTimeout: time.Minute, Results: r.files(),
		Spec: buildconfig.Spec{Strategy: buildconfig.Docker, GitURL: "https://git.example.com/a.git", Output: "quay.io/team/mine:v1"}}
	out, err := r.d.Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, r.log)
	}
	if out.Build.Name != "app-2" || out.Build.Spec.Output.To.Name != "quay.io/team/mine:v1" {
		t.Errorf("finished build %s built %s, want app-2 building our output", out.Build.Name, out.Build.Spec.Output.To.Name)
	}
	if b := c.get("app-1"); b.Status.Phase != buildv1.BuildPhaseCancelled {
		t.Errorf("the build of the foreign spec is %s, want Cancelled", b.Status.Phase)
	}
}

func TestConcurrentRunsEachBuildTheirOwnOutput(t *testing.T) {
	c := newCluster(t)
	c.outcome = func(b *buildv1.Build) *buildv1.BuildStatus {
		// The digest encodes the output, so a mix-up is visible.
		return complete("sha256:" + fmt.Sprintf("%064x", len(b.Spec.Output.To.Name)*1000+int(b.Spec.Output.To.Name[len(b.Spec.Output.To.Name)-1])))(b)
	}
	var wg sync.WaitGroup
	const n = 5
	errs := make([]error, n)
	outs := make([]*Outcome, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRun(t, c)
			o := Options{Mode: ModeBuild, Namespace: ns, BuildConfig: "app", StartTimeout: time.Minute, Results: r.files(),
				Spec: buildconfig.Spec{Strategy: buildconfig.Docker, GitURL: "https://git.example.com/a.git", Output: fmt.Sprintf("quay.io/team/app:v%d", i)}}
			outs[i], errs[i] = r.d.Run(context.Background(), o)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("run %d: %v", i, errs[i])
		}
		if got, want := outs[i].Build.Spec.Output.To.Name, fmt.Sprintf("quay.io/team/app:v%d", i); got != want {
			t.Errorf("run %d built %s, want %s", i, got, want)
		}
	}
	// The start lock means no run ever started a build from another run's
	// spec (which could push to the other run's tag before being cancelled).
	list, _ := c.client.BuildV1().Builds(ns).List(context.Background(), metav1.ListOptions{})
	if len(list.Items) != n {
		t.Errorf("%d builds for %d runs: some run started a build from a foreign spec", len(list.Items), n)
	}
	bc, _ := c.client.BuildV1().BuildConfigs(ns).Get(context.Background(), "app", metav1.GetOptions{})
	if l := bc.Annotations[buildconfig.AnnotationStartLock]; l != "" {
		t.Errorf("start lock left behind: %q", l)
	}
}

func TestStopCancelsTheBuild(t *testing.T) {
	c := newCluster(t) // no outcome: the build runs until cancelled
	r := newRun(t, c)
	ctx, stop := context.WithCancel(context.Background())
	o := Options{Mode: ModeBuild, Namespace: ns, BuildConfig: "app", StartTimeout: time.Minute, Results: r.files(),
		Spec: buildconfig.Spec{Strategy: buildconfig.Docker, GitURL: "https://git.example.com/a.git", Output: "quay.io/t/a:1"}}
	go func() {
		// SIGTERM arrives once the build runs.
		waitFor(t, c, "app-1", buildv1.BuildPhaseRunning)
		stop()
	}()
	_, err := r.d.Run(ctx, o)
	if err == nil {
		t.Fatal("Run succeeded after the step was stopped")
	}
	if b := c.get("app-1"); !b.Status.Cancelled || b.Status.Phase != buildv1.BuildPhaseCancelled {
		t.Errorf("build = cancelled %v phase %s, want cancelled", b.Status.Cancelled, b.Status.Phase)
	}
	if got := r.result(results.ErrorReason); got != failure.BuildCancelled {
		t.Errorf("reason = %q, want %s", got, failure.BuildCancelled)
	}
}

func TestTaskRunCancelCancelsTheBuild(t *testing.T) {
	c := newCluster(t)
	r := newRun(t, c)
	tr := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "tekton.dev/v1", "kind": "TaskRun",
		"metadata": map[string]any{"name": "tr-1", "namespace": ns, "uid": "uid-9"}, "spec": map[string]any{"timeout": "1h0m0s"},
		"status": map[string]any{"startTime": time.Now().Add(-10 * time.Minute).UTC().Format(time.RFC3339)}}}
	scheme := runtime.NewScheme()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme,
		map[schema.GroupVersionResource]string{cancellation.TaskRuns: "TaskRunList"}, tr)
	r.d.Clients.Dynamic = dyn
	o := Options{Mode: ModeBuild, Namespace: ns, BuildConfig: "app", StartTimeout: time.Minute, Results: r.files(),
		Owner: buildconfig.Owner{TaskRun: "tr-1", TaskRunUID: "uid-9"},
		Spec:  buildconfig.Spec{Strategy: buildconfig.Docker, GitURL: "https://git.example.com/a.git", Output: "quay.io/t/a:1"}}
	go func() {
		waitFor(t, c, "app-1", buildv1.BuildPhaseRunning)
		cancelled := tr.DeepCopy()
		_ = unstructured.SetNestedField(cancelled.Object, "TaskRunCancelled", "spec", "status")
		if _, err := dyn.Resource(cancellation.TaskRuns).Namespace(ns).Update(context.Background(), cancelled, metav1.UpdateOptions{}); err != nil {
			t.Errorf("cancel TaskRun: %v", err)
		}
	}()
	_, err := r.d.Run(context.Background(), o)
	if err == nil {
		t.Fatal("Run succeeded after its TaskRun was cancelled")
	}
	if b := c.get("app-1"); b.Status.Phase != buildv1.BuildPhaseCancelled {
		t.Errorf("build phase = %s, want Cancelled", b.Status.Phase)
	}
	if got := r.result(results.ErrorReason); got != failure.BuildCancelled {
		t.Errorf("reason = %q", got)
	}
	// The build may not outlive the TaskRun: 50 minutes were left, plus
	// the grace that lets Tekton's own timeout act first.
	if d := c.get("app-1").Spec.CompletionDeadlineSeconds; d == nil || *d > 50*60+16 || *d < 50*60-5 {
		t.Errorf("completionDeadlineSeconds = %v, want the ~3000 s the TaskRun had left", d)
	}
}

func TestStartTimeoutReportsWhyTheBuildWaits(t *testing.T) {
	c := newCluster(t)
	c.stayNew = "InvalidOutputReference"
	r := newRun(t, c)
	o := Options{Mode: ModeBuild, Namespace: ns, BuildConfig: "app", StartTimeout: 200 * time.Millisecond, Results: r.files(),
		Spec: buildconfig.Spec{Strategy: buildconfig.Docker, GitURL: "https://git.example.com/a.git", Output: "quay.io/t/a:1"}}
	_, err := r.d.Run(context.Background(), o)
	if err == nil {
		t.Fatal("Run succeeded for a build that never started")
	}
	if got := r.result(results.ErrorReason); got != failure.StartTimeout {
		t.Errorf("reason = %q, want StartTimeout", got)
	}
	if msg := r.result(results.ErrorMessage); !strings.Contains(msg, "InvalidOutputReference") {
		t.Errorf("message %q does not say why the build waited", msg)
	}
	if !strings.Contains(r.log.String(), "build app-1 is New (InvalidOutputReference)") {
		t.Errorf("step log does not report the waiting reason:\n%s", r.log)
	}
	if b := c.get("app-1"); !b.Status.Cancelled {
		t.Error("the build stuck in New was not cancelled")
	}
}

func TestStartExistingBuildConfigLeavesItUntouched(t *testing.T) {
	bc := &buildv1.BuildConfig{ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: ns, ResourceVersion: "7"},
		Spec: buildv1.BuildConfigSpec{CommonSpec: buildv1.CommonSpec{
			Source:   buildv1.BuildSource{Git: &buildv1.GitBuildSource{URI: "https://git.example.com/l.git"}},
			Strategy: buildv1.BuildStrategy{DockerStrategy: &buildv1.DockerBuildStrategy{}},
			Output:   buildv1.BuildOutput{To: &corev1ObjectReference}}}}
	c := newCluster(t, bc)
	c.outcome = complete("sha256:" + strings.Repeat("c", 64))
	r := newRun(t, c)
	noCache := true
	o := Options{Mode: ModeStart, Namespace: ns, BuildConfig: "legacy", Commit: "feedface", StartTimeout: time.Minute, Results: r.files(),
		Env: env("A", "1"), BuildArgs: env("V", "2"), NoCache: &noCache}
	if _, err := r.d.Run(context.Background(), o); err != nil {
		t.Fatalf("Run: %v\n%s", err, r.log)
	}
	req := c.requests[0]
	if req.Revision.Git.Commit != "feedface" || req.DockerStrategyOptions == nil || !*req.DockerStrategyOptions.NoCache ||
		len(req.DockerStrategyOptions.BuildArgs) != 1 || len(req.Env) != 1 {
		t.Errorf("BuildRequest = %+v", req)
	}
	got, _ := c.client.BuildV1().BuildConfigs(ns).Get(context.Background(), "legacy", metav1.GetOptions{})
	if got.Spec.Source.Git.URI != "https://git.example.com/l.git" || got.Spec.Output.To.Name != corev1ObjectReference.Name {
		t.Errorf("BuildConfig spec changed: %+v", got.Spec)
	}
	for _, a := range c.client.Actions() {
		if a.GetVerb() == "update" && a.GetResource().Resource == "buildconfigs" && a.GetSubresource() == "" {
			t.Errorf("start mode updated the BuildConfig: %v", a)
		}
	}
}

func TestStartRejectsOverridesTheStrategyCannotTake(t *testing.T) {
	bc := &buildv1.BuildConfig{ObjectMeta: metav1.ObjectMeta{Name: "s2i", Namespace: ns},
		Spec: buildv1.BuildConfigSpec{CommonSpec: buildv1.CommonSpec{
			Source:   buildv1.BuildSource{Git: &buildv1.GitBuildSource{URI: "https://git.example.com/l.git"}},
			Strategy: buildv1.BuildStrategy{SourceStrategy: &buildv1.SourceBuildStrategy{}}}}}
	c := newCluster(t, bc)
	r := newRun(t, c)
	o := Options{Mode: ModeStart, Namespace: ns, BuildConfig: "s2i", Results: r.files(), BuildArgs: env("V", "1")}
	_, err := r.d.Run(context.Background(), o)
	if !failure.IsUsage(err) || !strings.Contains(err.Error(), "not a Docker build") {
		t.Fatalf("err = %v, want a usage error about Docker options", err)
	}
	if len(c.requests) != 0 {
		t.Error("a build was started despite the invalid override")
	}
}

func waitFor(t *testing.T, c *cluster, name string, phase buildv1.BuildPhase) {
	t.Helper()
	w, err := c.client.BuildV1().Builds(ns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Error(err)
		return
	}
	defer w.Stop()
	if b := c.get(name); b != nil && b.Status.Phase == phase {
		return
	}
	for e := range w.ResultChan() {
		if b, ok := e.Object.(*buildv1.Build); ok && b.Name == name && b.Status.Phase == phase {
			return
		}
	}
}

// A binary build of an unchanged BuildConfig makes at most six build API
// requests (oc's start-build makes four): GET BuildConfig, POST
// instantiatebinary, PATCH build (the TaskRun as owner), one WATCH from
// the version the patch returned, and two log reads (the follow, and the
// one that proves its end). No write to the BuildConfig, no polling, no
// list, no discovery.
func TestUnchangedBinaryBuildMakesAtMostSixRequests(t *testing.T) {
	c := newCluster(t)
	ref, digest, _ := pushImage(t)
	c.outcome = complete(digest)
	dir, _ := sourceTree(t)
	r := newRun(t, c)
	r.d.Clients.ServesBuildAPI = func(context.Context) (bool, error) { t.Error("discovery asked"); return true, nil }
	o := Options{Mode: ModeBuild, Namespace: ns, BuildConfig: "app", Spec: dockerSpec(ref), SourceDir: dir, SourceRoot: dir,
		Owner:        buildconfig.Owner{Build: "app", BuildRun: "app-run-1", TaskRun: "app-run-1-tr", TaskRunUID: "uid-1"},
		StartTimeout: time.Minute, Results: r.files(), Sizes: imagesize.Lookup{Insecure: true}}
	c.setLog("app-1", []string{"STEP 1/2: FROM scratch", "Push successful"}, 0)
	if _, err := r.d.Run(context.Background(), o); err != nil {
		t.Fatalf("first run: %v\nlog:\n%s", err, r.log)
	}

	c.client.ClearActions()
	second := newRun(t, c)
	o.Owner = buildconfig.Owner{Build: "app", BuildRun: "app-run-2", TaskRun: "app-run-2-tr", TaskRunUID: "uid-2"}
	o.Results = second.files()
	c.setLog("app-2", []string{"STEP 1/2: FROM scratch", "Push successful"}, 0)
	if _, err := second.d.Run(context.Background(), o); err != nil {
		t.Fatalf("second run: %v\nlog:\n%s", err, second.log)
	}
	var calls []string
	for _, a := range c.client.Actions() {
		if w, ok := a.(clienttesting.WatchAction); ok {
			if _, named := w.GetWatchRestrictions().Fields.RequiresExactMatch("metadata.name"); !named {
				continue // the harness's own controller
			}
		}
		calls = append(calls, a.GetVerb()+" "+a.GetResource().Resource)
	}
	c.mu.Lock()
	logReads := len(c.logCalls["app-2"])
	c.mu.Unlock()
	calls = append(calls, "post buildconfigs/instantiatebinary")
	for range logReads {
		calls = append(calls, "get builds/log")
	}
	if len(calls) > 6 {
		t.Errorf("%d build API requests, want at most 6: %v", len(calls), calls)
	}
	for _, call := range calls {
		if strings.HasPrefix(call, "update") || strings.HasPrefix(call, "list") || strings.HasPrefix(call, "create buildconfigs") {
			t.Errorf("unneeded request for an unchanged BuildConfig: %s (all: %v)", call, calls)
		}
	}
	if want := "STEP 1/2: FROM scratch\nPush successful\n"; second.out.String() != want {
		t.Errorf("build log = %q, want %q", second.out.String(), want)
	}
}
