package driver

// A stop at every moment of a run: whatever the phase, no panic, the build
// that was or may have been started ends Cancelled (or Complete if it won),
// results carry a named reason, and Run fails. The harness behaves as
// OpenShift's server does where it matters: instantiatebinary ignores a
// client that has gone, and answers can be lost after the work was done.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ocbuild/ocbuild/pkg/buildconfig"
	"github.com/ocbuild/ocbuild/pkg/failure"
	"github.com/ocbuild/ocbuild/pkg/results"
)

func binaryOptions(r *run, dir string) Options {
	return Options{Mode: ModeBuild, Namespace: ns, BuildConfig: "app", SourceDir: dir, SourceRoot: dir,
		Results: r.files(), CancelGrace: 5 * time.Second, Spec: dockerSpec("quay.io/t/a:1")}
}

// requireStopped checks the end state every stop must leave.
func requireStopped(t *testing.T, c *cluster, r *run, err error, reason string, builds ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("Run succeeded after the stop")
	}
	var f *failure.Error
	if !errors.As(err, &f) || f.Reason != reason {
		t.Errorf("error = %v, want reason %s", err, reason)
	}
	if got := r.result(results.ErrorReason); got != reason {
		t.Errorf("shp-error-reason = %q, want %s", got, reason)
	}
	if r.result(results.ErrorMessage) == "" {
		t.Error("shp-error-message is empty")
	}
	for _, name := range builds {
		b := c.get(name)
		if b == nil {
			t.Errorf("build %s does not exist", name)
			continue
		}
		if b.Status.Phase != buildv1.BuildPhaseCancelled && b.Status.Phase != buildv1.BuildPhaseComplete {
			t.Errorf("build %s left %s after the stop, want Cancelled", name, b.Status.Phase)
		}
	}
}

// SIGTERM while the server holds the upload (the build is queued): the
// server would go on and run the build; the step must cancel it.
func TestStopDuringUploadCancelsTheQueuedBuild(t *testing.T) {
	c := newCluster(t)
	c.holdStart = make(chan struct{})
	c.outcome = complete("sha256:" + strings.Repeat("a", 64))
	r := newRun(t, c)
	dir, _ := sourceTree(t)
	ctx, stop := context.WithCancel(context.Background())
	go func() {
		waitFor(t, c, "app-1", buildv1.BuildPhaseNew)
		stop()
	}()
	_, err := r.d.Run(ctx, binaryOptions(r, dir))
	close(c.holdStart)
	requireStopped(t, c, r, err, failure.BuildCancelled, "app-1")
	if p := c.get("app-1").Status.Phase; p != buildv1.BuildPhaseCancelled {
		t.Errorf("build app-1 is %s, want Cancelled", p)
	}
	bc, _ := c.client.BuildV1().BuildConfigs(ns).Get(context.Background(), "app", metav1.GetOptions{})
	if l := bc.Annotations[buildconfig.AnnotationStartLock]; l != "" {
		t.Errorf("start lock left behind: %q", l)
	}
}

// --start-timeout while the upload waits behind a queued build: StartTimeout,
// in about the timeout (not a minute later), and the queued build cancelled.
func TestStartTimeoutDuringUpload(t *testing.T) {
	c := newCluster(t)
	c.holdStart = make(chan struct{})
	defer close(c.holdStart)
	r := newRun(t, c)
	dir, _ := sourceTree(t)
	o := binaryOptions(r, dir)
	o.StartTimeout = 300 * time.Millisecond
	began := time.Now()
	_, err := r.d.Run(context.Background(), o)
	requireStopped(t, c, r, err, failure.StartTimeout, "app-1")
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("StartTimeout came after %s for a --start-timeout of %s", took, o.StartTimeout)
	}
	if msg := r.result(results.ErrorMessage); !strings.Contains(msg, "app-1") || !strings.Contains(msg, "--start-timeout") {
		t.Errorf("message %q does not name the build and the flag", msg)
	}
}

// A build that starts running before --start-timeout is not cut off while
// its source is still being sent.
func TestStartTimeoutSparesARunningUpload(t *testing.T) {
	c := newCluster(t)
	c.outcome = complete("sha256:" + strings.Repeat("b", 64))
	r := newRun(t, c)
	dir, _ := sourceTree(t)
	o := binaryOptions(r, dir)
	o.StartTimeout = time.Second
	if _, err := r.d.Run(context.Background(), o); err != nil {
		t.Fatalf("Run: %v\n%s", err, r.log)
	}
}

// instantiatebinary answered 500 after the build was started: that build
// is cancelled, a new one started, and the run succeeds with it.
func TestLostUploadAnswerCancelsThatBuildAndStartsAgain(t *testing.T) {
	c := newCluster(t)
	c.loseBinaryAnswers = 1
	c.outcome = complete("sha256:" + strings.Repeat("c", 64))
	r := newRun(t, c)
	dir, _ := sourceTree(t)
	out, err := r.d.Run(context.Background(), binaryOptions(r, dir))
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, r.log)
	}
	if out.Build.Name != "app-2" {
		t.Errorf("run followed %s, want the new build app-2", out.Build.Name)
	}
	if p := c.get("app-1").Status.Phase; p != buildv1.BuildPhaseCancelled {
		t.Errorf("build app-1 whose answer was lost is %s, want Cancelled", p)
	}
}

// SIGTERM while instantiate's answer is lost: the build it created is
// found by its request label and cancelled.
func TestStopWithLostInstantiateAnswerCancelsTheBuild(t *testing.T) {
	c := newCluster(t)
	r := newRun(t, c)
	ctx, stop := context.WithCancel(context.Background())
	c.loseInstantiate = func() error {
		stop()
		return apierrors.NewInternalError(fmt.Errorf("etcdserver: request timed out"))
	}
	o := Options{Mode: ModeBuild, Namespace: ns, BuildConfig: "app", Results: r.files(), CancelGrace: 5 * time.Second,
		Spec: buildconfig.Spec{Strategy: buildconfig.Docker, GitURL: "https://git.example.com/a.git", Output: "quay.io/t/a:1"}}
	_, err := r.d.Run(ctx, o)
	requireStopped(t, c, r, err, failure.BuildCancelled, "app-1")
}

// A stop in each phase before the build: nothing started, reason named.
func TestStopBeforeTheBuildStarts(t *testing.T) {
	c := newCluster(t)
	r := newRun(t, c)
	ctx, stop := context.WithCancel(context.Background())
	stop()
	o := Options{Mode: ModeBuild, Namespace: ns, BuildConfig: "app", Results: r.files(),
		Spec: buildconfig.Spec{Strategy: buildconfig.Docker, GitURL: "https://git.example.com/a.git", Output: "quay.io/t/a:1"}}
	_, err := r.d.Run(ctx, o)
	requireStopped(t, c, r, err, failure.BuildCancelled)
	if list, _ := c.client.BuildV1().Builds(ns).List(context.Background(), metav1.ListOptions{}); len(list.Items) != 0 {
		t.Errorf("%d builds started by a stopped run", len(list.Items))
	}
}

// hangingRegistry accepts requests and never answers them; asked is
// closed at the first request.
func hangingRegistry(t *testing.T) (host string, asked <-chan struct{}) {
	ch := make(chan struct{})
	var once sync.Once
	url := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(ch) })
		<-r.Context().Done()
	}))
	return strings.TrimPrefix(url, "http://"), ch
}

// A stop during the size lookup after a Complete build: the run ends at
// once (Tekton's grace is short), says it was stopped, keeps the digest.
func TestStopDuringSizeLookup(t *testing.T) {
	c := newCluster(t)
	digest := "sha256:" + strings.Repeat("d", 64)
	c.outcome = complete(digest)
	c.setLog("app-1", []string{"done"}, 0)
	host, asked := hangingRegistry(t)
	r := newRun(t, c)
	ctx, stop := context.WithCancel(context.Background())
	o := Options{Mode: ModeBuild, Namespace: ns, BuildConfig: "app", Results: r.files(), CancelGrace: 5 * time.Second,
		Spec: buildconfig.Spec{Strategy: buildconfig.Docker, GitURL: "https://git.example.com/a.git", Output: host + "/t/a:1"}}
	o.Sizes.Insecure = true
	go func() {
		<-asked
		stop()
	}()
	began := time.Now()
	_, err := r.d.Run(ctx, o)
	requireStopped(t, c, r, err, failure.BuildCancelled, "app-1")
	if took := time.Since(began); took > 20*time.Second {
		t.Errorf("the stopped run took %s to end", took)
	}
	if got := r.result(results.ImageDigest); got != digest {
		t.Errorf("digest of the completed build = %q, want %s", got, digest)
	}
}

// The failure message carries the log tail the step streamed when
// OpenShift has not written logSnippet yet (it does so only later).
func TestFailureMessageHasTheStreamedTail(t *testing.T) {
	c := newCluster(t)
	c.outcome = func(b *buildv1.Build) *buildv1.BuildStatus {
		return &buildv1.BuildStatus{Phase: buildv1.BuildPhaseFailed, Reason: "DockerBuildFailed", Message: "Dockerfile build strategy has failed."}
	}
	var lines []string
	for i := 1; i <= 20; i++ {
		lines = append(lines, fmt.Sprintf("step line %d", i))
	}
	lines = append(lines, "error: building at STEP \"RUN false\": exit status 1")
	c.setLog("app-1", lines, 0)
	r := newRun(t, c)
	o := Options{Mode: ModeBuild, Namespace: ns, BuildConfig: "app", Results: r.files(),
		Spec: buildconfig.Spec{Strategy: buildconfig.Docker, GitURL: "https://git.example.com/a.git", Output: "quay.io/t/a:1"}}
	_, err := r.d.Run(context.Background(), o)
	if err == nil {
		t.Fatal("Run succeeded for a failed build")
	}
	msg := r.result(results.ErrorMessage)
	if !strings.Contains(msg, `RUN false`) || !strings.Contains(msg, "step line 20") || strings.Contains(msg, "step line 10\n") {
		t.Errorf("failure message lacks the log tail:\n%s", msg)
	}
}
