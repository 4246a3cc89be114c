package openshift

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/ocbuild/ocbuild/test/e2e/openshift/kit"
	"github.com/ocbuild/ocbuild/test/sim"
)

// 1. docker strategy from git: the BuildRun reports the digest and size the
// registry has, and the commit Shipwright cloned, which is also the commit
// the OpenShift build records.
func TestDockerFromGit(t *testing.T) {
	ctx := testContext(t, 6*time.Minute)
	ns := newNamespace(t, true)
	b := createBuild(t, gitBuild(ns, "go-hello", "go-hello", dockerStrategy,
		arrayParam("build-args", "GO_LDFLAGS=-s -w"),
		arrayParam("image-labels", "org.opencontainers.image.title=go-hello")))
	br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
	requireSucceeded(t, br)

	img := checkOutput(ctx, t, br, b.Spec.Output.Image)
	head := sb.RepoHeads["go-hello"]
	if br.Status.Source == nil || br.Status.Source.Git == nil {
		t.Fatalf("no status.source.git: %+v", br.Status.Source)
	}
	if got := br.Status.Source.Git.CommitSha; got != head {
		t.Errorf("status.source.git.commitSha = %q, want the repository's HEAD %q", got, head)
	}
	ob := theOpenShiftBuild(ctx, t, ns, br.Name)
	if ob.Status.Phase != buildv1.BuildPhaseComplete {
		t.Errorf("OpenShift build %s is %s, want Complete", ob.Name, ob.Status.Phase)
	}
	if ob.Spec.Revision == nil || ob.Spec.Revision.Git == nil || ob.Spec.Revision.Git.Commit != head {
		t.Errorf("OpenShift build %s spec.revision = %+v, want git commit %s", ob.Name, ob.Spec.Revision, head)
	}
	if ob.Status.Output.To == nil || ob.Status.Output.To.ImageDigest != img.Digest {
		t.Errorf("OpenShift build %s status.output = %+v, want imageDigest %s", ob.Name, ob.Status.Output.To, img.Digest)
	}
	// The image is the Dockerfile's FROM scratch runtime stage with the
	// Build's image label.
	if ep := img.Config.Config.Entrypoint; len(ep) != 1 || ep[0] != "/go-hello" {
		t.Errorf("image entrypoint = %q, want [/go-hello]", ep)
	}
	if v := img.Config.Config.Labels["org.opencontainers.image.title"]; v != "go-hello" {
		t.Errorf("image label org.opencontainers.image.title = %q, want go-hello (image-labels parameter)", v)
	}
	if v := img.Config.Config.Labels["io.openshift.build.commit.id"]; v != head {
		t.Errorf("image label io.openshift.build.commit.id = %q, want %s", v, head)
	}
	// buildah compiled the binary for real: the image's entrypoint serves
	// the greeting.
	body, printed, err := kit.Serve(ctx, kit.ByDigest(b.Spec.Output.Image, img.Digest), "/")
	if err != nil {
		t.Fatalf("running the built image: %v", err)
	}
	if want := "Hello from a Go binary built by OpenShift through Shipwright\n"; body != want {
		t.Errorf("GET / on the built go-hello = %q, want %q (it printed %q)", body, want, printed)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// 3. A failing build: failureDetails carry OpenShift's reason, its message
// and the tail of the build log.
func TestFailingBuild(t *testing.T) {
	for _, tc := range []struct {
		name, repo string
		params     []buildv1beta1.ParamValue
		wantReason buildv1.StatusReason
	}{
		{"dockerfile", "broken-docker", nil, buildv1.StatusReasonDockerBuildFailed},
		{"failing-run", "failing-run", nil, buildv1.StatusReasonDockerBuildFailed},
		{"simulated-reason", "hello", []buildv1beta1.ParamValue{arrayParam("build-env", sim.KnobFail+"=PostCommitHookFailed")}, buildv1.StatusReasonPostCommitHookFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t, 6*time.Minute)
			ns := newNamespace(t, true)
			b := createBuild(t, gitBuild(ns, "app", tc.repo, dockerStrategy, tc.params...))
			br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
			fd := requireFailed(t, br)
			ob := theOpenShiftBuild(ctx, t, ns, br.Name)
			if ob.Status.Reason != tc.wantReason {
				t.Errorf("OpenShift build %s: reason %q, want %q", ob.Name, ob.Status.Reason, tc.wantReason)
			}
			if fd.Reason != string(tc.wantReason) {
				t.Errorf("failureDetails.reason = %q, want the OpenShift reason %q", fd.Reason, tc.wantReason)
			}
			if !strings.Contains(fd.Message, ob.Status.Message) || ob.Status.Message == "" {
				t.Errorf("failureDetails.message %q does not contain the build's status.message %q", fd.Message, ob.Status.Message)
			}
			log, closed := simLog(ns, ob.Name)
			if !closed || len(log) == 0 {
				t.Fatalf("the simulator has no complete log for %s", ob.Name)
			}
			// OpenShift's status.logSnippet is the log's tail (long lines
			// elided in the middle), written by the controller only after
			// the build is Failed: the step, which read the build at that
			// moment, carries the tail it streamed itself.
			ob = waitOpenShiftBuild(ctx, t, ns, br.Name, "the log snippet", func(b *buildv1.Build) bool { return b.Status.LogSnippet != "" })
			snippet := lines(ob.Status.LogSnippet)
			last := snippet[len(snippet)-1]
			if len(last) > 40 {
				last = last[len(last)-40:]
			}
			if !strings.Contains(fd.Message, last) {
				t.Errorf("failureDetails.message does not contain the end of the log snippet's last line %q:\n%s", last, fd.Message)
			}
			tail := log[len(log)-1]
			if len(tail) > 40 {
				tail = tail[len(tail)-40:]
			}
			if !strings.HasSuffix(fd.Message, tail) {
				t.Errorf("failureDetails.message does not end like the build log's last line (…%q):\n%s", tail, fd.Message)
			}
			if tc.repo == "failing-run" && !strings.Contains(fd.Message, "widget.c:3: error: missing terminating quote") {
				t.Errorf("failureDetails.message lacks what the failing RUN printed:\n%s", fd.Message)
			}
			if fd.Location == nil || fd.Location.Container != "step-"+stepName {
				t.Errorf("failureDetails.location = %+v, want container step-%s", fd.Location, stepName)
			}
		})
	}
}

// 4. Cancelling a running BuildRun cancels the OpenShift build within 5 s,
// whether the step gets SIGTERM (pod deleted) or SIGKILL
// (keep-pod-on-cancel; the step then relies on watching its TaskRun).
func TestCancel(t *testing.T) {
	for _, tc := range cancelModes {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t, 6*time.Minute)
			useCancelMode(ctx, t, tc.keepPod)
			ns := newNamespace(t, true)
			// A real Dockerfile whose RUN sleeps (samples/apps/slow-build).
			b := createBuild(t, gitBuild(ns, "slow", "slow-build", dockerStrategy))
			br := createBuildRun(t, ns, b.Name)
			ob := waitOpenShiftBuild(ctx, t, ns, br.Name, "the OpenShift build to run", func(b *buildv1.Build) bool {
				return b.Status.Phase == buildv1.BuildPhaseRunning
			})

			// Watch the build from before the cancel request.
			type seen struct {
				phase buildv1.BuildPhase
				at    time.Time
			}
			cancelled := make(chan seen, 1)
			watchCtx, stopWatch := context.WithTimeout(ctx, 2*time.Minute)
			defer stopWatch()
			var watchErr error
			var wg sync.WaitGroup
			wg.Add(1)
			ready := make(chan struct{})
			go func() {
				defer wg.Done()
				once := sync.Once{}
				defer once.Do(func() { close(ready) }) // the watch failed before it synced
				watchErr = watchBuilds(watchCtx, ns, "", nameSelector(ob.Name), func(items []*buildv1.Build) (bool, error) {
					once.Do(func() { close(ready) })
					for _, x := range items {
						if x.Status.Phase == buildv1.BuildPhaseCancelled || x.Status.Phase == buildv1.BuildPhaseComplete ||
							x.Status.Phase == buildv1.BuildPhaseFailed || x.Status.Phase == buildv1.BuildPhaseError {
							cancelled <- seen{x.Status.Phase, time.Now()}
							return true, nil
						}
					}
					return false, nil
				})
			}()
			select {
			case <-ready:
			case <-ctx.Done():
				t.Fatal("the build watch did not start")
			}

			patch := []byte(`{"spec":{"state":"` + buildv1beta1.BuildRunStateCancel + `"}}`)
			requested := time.Now()
			if _, err := sb.Shipwright.ShipwrightV1beta1().BuildRuns(ns).Patch(ctx, br.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			select {
			case s := <-cancelled:
				took := s.at.Sub(requested)
				t.Logf("OpenShift build %s became %s %s after the cancel request", ob.Name, s.phase, took.Round(time.Millisecond))
				if s.phase != buildv1.BuildPhaseCancelled {
					t.Errorf("OpenShift build %s ended %s, want Cancelled", ob.Name, s.phase)
				} else if took > 5*time.Second {
					t.Errorf("OpenShift build %s was Cancelled %s after the cancel request, want within 5s", ob.Name, took.Round(time.Millisecond))
				}
			default:
				cur, _ := builds.BuildV1().Builds(ns).Get(ctx, ob.Name, metav1.GetOptions{})
				phase := buildv1.BuildPhase("?")
				if cur != nil {
					phase = cur.Status.Phase
				}
				t.Errorf("OpenShift build %s did not end within 2m of the cancel request (phase %s, watch: %v)", ob.Name, phase, watchErr)
			}

			done := waitBuildRunDone(ctx, t, ns, br.Name)
			status, reason, msg := condition(done)
			if status != corev1.ConditionFalse || reason != buildv1beta1.BuildRunStateCancel {
				t.Errorf("BuildRun condition = %s/%s: %s, want False/%s", status, reason, msg, buildv1beta1.BuildRunStateCancel)
			}
			// keep-pod-on-cancel SIGKILLs the step at once: the build was
			// cancelled by the step's TaskRun watch, not a signal handler.
			var exit string
			tr := taskRunName(t, done)
			poll(ctx, t, time.Minute, "the step process to end", func(context.Context) (bool, error) {
				var err error
				exit, err = sb.Executor.StepExit(ns, tr, stepName)
				return err == nil, nil
			})
			if tc.keepPod && exit != "signal: killed" {
				// The step may see its TaskRun cancelled and exit before the
				// executor's SIGKILL lands; either way no SIGTERM was sent,
				// so the cancel must have come from the TaskRun watch.
				log, _ := sb.Executor.StepLog(ns, tr, stepName)
				if !strings.Contains(log, "stopped (TaskRunCancelled): cancelling the build") {
					t.Errorf("step ended %q without SIGKILL and without noticing the cancelled TaskRun; log:\n%s", exit, log)
				}
			}
			t.Logf("the step process ended: %s", exit)
			final, err := builds.BuildV1().Builds(ns).Get(ctx, ob.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if final.Status.Phase != buildv1.BuildPhaseCancelled || !final.Status.Cancelled {
				t.Errorf("OpenShift build %s: phase %s, status.cancelled %v; want Cancelled, true", final.Name, final.Status.Phase, final.Status.Cancelled)
			}
		})
	}
}

// 5. RBAC: the shipped Role is all the step needs; without it the BuildRun
// fails Forbidden and names the missing permission.
func TestRBAC(t *testing.T) {
	t.Run("shipped-role-only", func(t *testing.T) {
		ctx := testContext(t, 6*time.Minute)
		ns := newNamespace(t, true)
		rbs, err := sb.Kube.RbacV1().RoleBindings(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rbs.Items) != 1 || rbs.Items[0].Name != "ocbuild-step" || rbs.Items[0].RoleRef.Name != "ocbuild-step" {
			t.Fatalf("RoleBindings in %s: %+v, want only ocbuild-step", ns, rbs.Items)
		}
		b := createBuild(t, gitBuild(ns, "hello", "hello", dockerStrategy))
		br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
		requireSucceeded(t, br)
		checkOutput(ctx, t, br, b.Spec.Output.Image)
	})
	// OwnerReferencesPermissionEnforcement, as on OpenShift: without delete
	// on builds the step cannot hand its build to the TaskRun. The build
	// still succeeds (a warning names the permission), but deleting the
	// BuildRun would leave it behind: why the Role carries delete.
	t.Run("role-without-delete", func(t *testing.T) {
		ctx := testContext(t, 6*time.Minute)
		ns := newNamespace(t, true)
		role, err := sb.Kube.RbacV1().Roles(ns).Get(ctx, "ocbuild-step", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		removed := false
		for i, r := range role.Rules {
			if slices.Contains(r.Resources, "builds") {
				role.Rules[i].Verbs = slices.DeleteFunc(slices.Clone(r.Verbs), func(v string) bool { return v == "delete" })
				removed = len(role.Rules[i].Verbs) < len(r.Verbs)
			}
		}
		if !removed {
			t.Fatal("the shipped Role grants no delete on builds")
		}
		if _, err := sb.Kube.RbacV1().Roles(ns).Update(ctx, role, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		b := createBuild(t, gitBuild(ns, "hello", "hello", dockerStrategy))
		br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
		requireSucceeded(t, br)
		ob := theOpenShiftBuild(ctx, t, ns, br.Name)
		for _, o := range ob.OwnerReferences {
			if o.Kind == "TaskRun" {
				t.Errorf("build %s is owned by TaskRun %s although the step may not delete builds: the admission rule is not enforced", ob.Name, o.Name)
			}
		}
		if log := stepLog(t, br); !strings.Contains(log, "cannot set an ownerRef on a resource you can't delete") || !strings.Contains(log, "delete builds") {
			t.Errorf("the step log does not explain the refused ownerReference:\n%s", log)
		}
	})
	t.Run("nothing-bound", func(t *testing.T) {
		ctx := testContext(t, 6*time.Minute)
		ns := newNamespace(t, false)
		rbs, err := sb.Kube.RbacV1().RoleBindings(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rbs.Items) != 0 {
			t.Fatalf("RoleBindings in %s: %+v, want none", ns, rbs.Items)
		}
		b := createBuild(t, gitBuild(ns, "hello", "hello", dockerStrategy))
		br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
		fd := requireFailed(t, br)
		if fd.Reason != "Forbidden" {
			t.Errorf("failureDetails.reason = %q, want Forbidden", fd.Reason)
		}
		// The first call the step makes reads the platform defaults; without
		// them it builds nothing (it might build without the proxies).
		for _, want := range []string{
			fmt.Sprintf(`User "system:serviceaccount:%s:pipeline" cannot get resource "configmaps" in API group "" in the namespace "%s"`, ns, ns),
			"may not get configmaps ocbuild-defaults",
			"Role ocbuild-step",
		} {
			if !strings.Contains(fd.Message, want) {
				t.Errorf("failureDetails.message does not name the missing permission (%q):\n%s", want, fd.Message)
			}
		}
		bcs, err := builds.BuildV1().BuildConfigs(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(bcs.Items) != 0 {
			t.Errorf("%d BuildConfigs exist in %s without permission to create them", len(bcs.Items), ns)
		}
	})
}

// 6. openshift-buildconfig runs an existing Git BuildConfig at the commit
// Shipwright resolved, even when the BuildConfig's ref has moved on.
func TestExistingBuildConfig(t *testing.T) {
	ctx := testContext(t, 6*time.Minute)
	ns := newNamespace(t, true)
	const repo = "buildconfig-app"
	// main moves on (with content unique to this run, so -count=N works);
	// the Build pins Shipwright to the first commit, and OpenShift must
	// build that commit, not the BuildConfig's ref.
	head := sb.RepoHeads[repo]
	tip := pushCommit(t, repo, "version.txt", "commit for "+ns+"\n")
	if tip == head {
		t.Fatal("pushing a commit did not move main")
	}

	out := imageRef(ns, "app-bc", "latest")
	bc, err := builds.BuildV1().BuildConfigs(ns).Create(ctx, gitDockerBuildConfig("app-bc", repo, out), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	build := gitBuild(ns, "app", repo, buildConfigStrategy, param("buildconfig", bc.Name))
	build.Spec.Source.Git.Revision = ptr.To(head)
	build.Spec.Output.Image = out
	b := createBuild(t, build)
	br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
	requireSucceeded(t, br)
	img := checkOutput(ctx, t, br, out)

	if br.Status.Source == nil || br.Status.Source.Git == nil || br.Status.Source.Git.CommitSha != head {
		t.Errorf("status.source = %+v, want git commitSha %s", br.Status.Source, head)
	}
	ob := theOpenShiftBuild(ctx, t, ns, br.Name)
	if ob.Labels[buildv1.BuildConfigLabel] != bc.Name {
		t.Errorf("OpenShift build %s labels %v: not a build of BuildConfig %s", ob.Name, ob.Labels, bc.Name)
	}
	if ob.Spec.Revision == nil || ob.Spec.Revision.Git == nil || ob.Spec.Revision.Git.Commit != head {
		t.Errorf("OpenShift build %s spec.revision = %+v, want git commit %s (Shipwright's), not main's tip %s", ob.Name, ob.Spec.Revision, head, tip)
	}
	if v := img.Config.Config.Labels["io.openshift.build.commit.id"]; v != head {
		t.Errorf("image label io.openshift.build.commit.id = %q, want %s", v, head)
	}
	after, err := builds.BuildV1().BuildConfigs(ns).Get(ctx, bc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Instantiating bumps status.lastVersion; the spec, labels and
	// annotations stay as the user wrote them.
	if !equality.Semantic.DeepEqual(after.Spec, bc.Spec) || !equality.Semantic.DeepEqual(after.Labels, bc.Labels) ||
		!equality.Semantic.DeepEqual(after.Annotations, bc.Annotations) {
		t.Errorf("BuildConfig %s changed; openshift-buildconfig must leave it alone:\nbefore %+v %+v\n%+v\nafter %+v %+v\n%+v",
			bc.Name, bc.Labels, bc.Annotations, bc.Spec, after.Labels, after.Annotations, after.Spec)
	}
	if after.Status.LastVersion != 1 {
		t.Errorf("BuildConfig %s status.lastVersion = %d, want 1", bc.Name, after.Status.LastVersion)
	}
}

// gitDockerBuildConfig is a Serial Docker BuildConfig of a sandbox sample
// repository's main, pushing to out.
func gitDockerBuildConfig(name, repo, out string) *buildv1.BuildConfig {
	return &buildv1.BuildConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: buildv1.BuildConfigSpec{
			RunPolicy: buildv1.BuildRunPolicySerial,
			CommonSpec: buildv1.CommonSpec{
				Source: buildv1.BuildSource{
					Type: buildv1.BuildSourceGit,
					Git:  &buildv1.GitBuildSource{URI: sb.GitRepoURL(repo), Ref: "main"},
				},
				Strategy: buildv1.BuildStrategy{Type: buildv1.DockerBuildStrategyType, DockerStrategy: &buildv1.DockerBuildStrategy{}},
				Output:   buildv1.BuildOutput{To: &corev1.ObjectReference{Kind: "DockerImage", Name: out}},
			},
		},
	}
}

// pushCommit adds a commit to main of a sample repository on the sandbox's
// git server and returns it.
func pushCommit(t *testing.T, repo, file, content string) string {
	t.Helper()
	bare := filepath.Join(sb.Dir, "git", repo+".git")
	work := t.TempDir()
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com", "GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git(work, "clone", "-q", bare, "repo")
	dir := filepath.Join(work, "repo")
	if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	git(dir, "commit", "-q", "--no-gpg-sign", "-am", "e2e: a newer commit on main")
	git(dir, "push", "-q", "origin", "HEAD:main")
	return git(dir, "rev-parse", "HEAD")
}

// 7. Five concurrent BuildRuns of one Build, each with its own output image
// (spec.output override), each report their own image's digest.
func TestConcurrentOutputOverrides(t *testing.T) {
	ctx := testContext(t, 10*time.Minute)
	ns := newNamespace(t, true)
	b := createBuild(t, gitBuild(ns, "hello", "hello", dockerStrategy))
	const n = 5
	refs := make([]string, n)
	runs := make([]*buildv1beta1.BuildRun, n)
	for i := range n {
		refs[i] = imageRef(ns, "hello", fmt.Sprintf("run-%d", i))
		runs[i] = createBuildRun(t, ns, b.Name, func(br *buildv1beta1.BuildRun) {
			br.Spec.Output = &buildv1beta1.Image{Image: refs[i], Insecure: ptr.To(true)}
		})
	}
	digests := map[string]int{}
	for i, br := range runs {
		done, err := buildRunDone(ctx, ns, br.Name, 8*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		requireSucceeded(t, done)
		img := checkOutput(ctx, t, done, refs[i])
		if j, ok := digests[img.Digest]; ok {
			t.Errorf("runs %d and %d report the same digest %s", j, i, img.Digest)
		}
		digests[img.Digest] = i
		ob := theOpenShiftBuild(ctx, t, ns, done.Name)
		if ob.Spec.Output.To == nil || ob.Spec.Output.To.Name != refs[i] {
			t.Errorf("run %d: OpenShift build %s pushed to %+v, want %s", i, ob.Name, ob.Spec.Output.To, refs[i])
		}
		if ob.Status.Output.To == nil || ob.Status.Output.To.ImageDigest != img.Digest {
			t.Errorf("run %d: OpenShift build %s status.output = %+v, want digest %s", i, ob.Name, ob.Status.Output.To, img.Digest)
		}
	}
}

// 8. Under chaos (20% 5xx on build API calls, watches dropped every 2 s,
// log streams cut) ten BuildRuns succeed with the right digests, and every
// step log holds its complete build log exactly once.
func TestChaos(t *testing.T) {
	ctx := testContext(t, 15*time.Minute)
	ns := newNamespace(t, true)
	simLogPath := filepath.Join(sb.Dir, "logs", "simulator.log")
	var logStart int64
	if fi, err := os.Stat(simLogPath); err == nil {
		logStart = fi.Size()
	}
	simulator.SetChaos(sim.Chaos{ErrorRate: 0.2, WatchDropEvery: 2 * time.Second, LogCutRate: 0.5})
	t.Cleanup(func() { simulator.SetChaos(sim.Chaos{}) })
	const n = 10
	runs := make([]*buildv1beta1.BuildRun, n)
	refs := make([]string, n)
	for i := range n {
		b := createBuild(t, gitBuild(ns, fmt.Sprintf("chaos-%d", i), "hello", dockerStrategy,
			arrayParam("build-env", sim.KnobDuration+"=4s")))
		refs[i] = b.Spec.Output.Image
	}
	for i := range n {
		runs[i] = createBuildRun(t, ns, fmt.Sprintf("chaos-%d", i))
	}
	for i, br := range runs {
		done, err := buildRunDone(ctx, ns, br.Name, 12*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(done.Name, func(t *testing.T) {
			requireSucceeded(t, done)
			checkOutput(ctx, t, done, refs[i])
			ob := theOpenShiftBuild(ctx, t, ns, done.Name)
			want, closed := simLog(ns, ob.Name)
			if !closed || len(want) == 0 {
				t.Fatalf("the simulator has no complete log for build %s", ob.Name)
			}
			checkLogOnce(t, stepLog(t, done), want)
		})
	}
	// The chaos was real: the front door's access log has the 5xx answers.
	b, err := os.ReadFile(simLogPath)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) >= logStart {
		b = b[logStart:]
	}
	injected := strings.Count(string(b), " -> 500 (") + strings.Count(string(b), " -> 503 (")
	t.Logf("the front door answered %d build API requests with 500/503", injected)
	if injected == 0 {
		t.Error("no 5xx answers in the simulator's access log: chaos was not injected")
	}
}

// checkLogOnce checks that the step log holds every line of the build log
// exactly once and in order; other lines (ocbuild's own) are ignored.
func checkLogOnce(t *testing.T, step string, build []string) {
	t.Helper()
	got := lines(step)
	want := map[string]int{}
	for _, l := range build {
		want[l]++
	}
	count := map[string]int{}
	var inOrder []string
	for _, l := range got {
		if _, ok := want[l]; ok {
			count[l]++
			inOrder = append(inOrder, l)
		}
	}
	bad := 0
	for l, n := range want {
		if count[l] != n {
			bad++
			if bad <= 10 {
				t.Errorf("build log line %q appears %d times in the step log, want %d", l, count[l], n)
			}
		}
	}
	if bad == 0 && strings.Join(inOrder, "\n") != strings.Join(build, "\n") {
		t.Errorf("the step log has the build log's lines in another order")
	}
	if t.Failed() {
		t.Logf("build log (%d lines):\n%s\nstep log:\n%s", len(build), strings.Join(build, "\n"), step)
	}
}

// 9. Deleting a finished BuildRun garbage-collects its OpenShift builds; a
// BuildRun that times out leaves its build Cancelled, never running.
func TestDeletionAndTimeout(t *testing.T) {
	t.Run("delete-collects-builds", func(t *testing.T) {
		ctx := testContext(t, 6*time.Minute)
		ns := newNamespace(t, true)
		b := createBuild(t, gitBuild(ns, "hello", "hello", dockerStrategy))
		br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
		requireSucceeded(t, br)
		ob := theOpenShiftBuild(ctx, t, ns, br.Name)
		tr := taskRunName(t, br)
		owned := false
		for _, o := range ob.OwnerReferences {
			owned = owned || (o.Kind == "TaskRun" && o.Name == tr)
		}
		if !owned {
			t.Errorf("OpenShift build %s ownerReferences %+v: not owned by TaskRun %s", ob.Name, ob.OwnerReferences, tr)
		}
		if err := sb.Shipwright.ShipwrightV1beta1().BuildRuns(ns).Delete(ctx, br.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		err := watchBuilds(wctx, ns, labelBuildRun+"="+br.Name, "", func(items []*buildv1.Build) (bool, error) {
			return len(items) == 0, nil
		})
		if err != nil {
			t.Fatalf("the OpenShift builds of the deleted BuildRun were not garbage-collected: %v", err)
		}
		if _, err := builds.BuildV1().Builds(ns).Get(ctx, ob.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("OpenShift build %s still exists (%v)", ob.Name, err)
		}
	})

	t.Run("timeout-cancels-build", func(t *testing.T) {
		ctx := testContext(t, 6*time.Minute)
		ns := newNamespace(t, true)
		spec := gitBuild(ns, "slow", "slow-build", dockerStrategy)
		spec.Spec.Timeout = &metav1.Duration{Duration: 45 * time.Second}
		b := createBuild(t, spec)
		br := createBuildRun(t, ns, b.Name)
		ob := waitOpenShiftBuild(ctx, t, ns, br.Name, "the OpenShift build to run", func(b *buildv1.Build) bool {
			return b.Status.Phase == buildv1.BuildPhaseRunning
		})
		done := waitBuildRunDone(ctx, t, ns, br.Name)
		status, reason, msg := condition(done)
		if status != corev1.ConditionFalse || reason != "BuildRunTimeout" {
			t.Errorf("BuildRun condition = %s/%s: %s, want False/BuildRunTimeout", status, reason, msg)
		}
		ended := time.Now()
		var last *buildv1.Build
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err := watchBuilds(wctx, ns, "", nameSelector(ob.Name), func(items []*buildv1.Build) (bool, error) {
			for _, x := range items {
				last = x
				switch x.Status.Phase {
				case buildv1.BuildPhaseCancelled, buildv1.BuildPhaseComplete, buildv1.BuildPhaseFailed, buildv1.BuildPhaseError:
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			phase := buildv1.BuildPhase("(gone)")
			if last != nil {
				phase = last.Status.Phase
			}
			t.Fatalf("OpenShift build %s still %s 30s after the BuildRun timed out: %v", ob.Name, phase, err)
		}
		t.Logf("OpenShift build %s ended %s (%s) %s after the BuildRun's end", last.Name, last.Status.Phase, last.Status.Reason, time.Since(ended).Round(time.Millisecond))
		pastDeadline := last.Status.Phase == buildv1.BuildPhaseFailed && last.Spec.CompletionDeadlineSeconds != nil
		if last.Status.Phase != buildv1.BuildPhaseCancelled && !pastDeadline {
			t.Errorf("OpenShift build %s ended %s (%s), want Cancelled (or failed past completionDeadlineSeconds)", last.Name, last.Status.Phase, last.Status.Reason)
		}
	})
}

// 10. A Build with a bad input fails before anything is created: a
// Dockerfile path escaping the context directory.
func TestInvalidInput(t *testing.T) {
	ctx := testContext(t, 6*time.Minute)
	ns := newNamespace(t, true)
	b := createBuild(t, gitBuild(ns, "hello", "hello", dockerStrategy, param("dockerfile", "../x/Dockerfile")))
	br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
	fd := requireFailed(t, br)
	if fd.Reason != "InvalidInput" {
		t.Errorf("failureDetails.reason = %q, want InvalidInput", fd.Reason)
	}
	if !strings.Contains(fd.Message, "dockerfile") || !strings.Contains(fd.Message, "../x/Dockerfile") {
		t.Errorf("failureDetails.message %q does not name the dockerfile parameter and its value", fd.Message)
	}
	bcs, err := builds.BuildV1().BuildConfigs(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(bcs.Items) != 0 {
		t.Errorf("%d BuildConfigs were created for an invalid Build", len(bcs.Items))
	}
	obs, err := builds.BuildV1().Builds(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Items) != 0 {
		t.Errorf("%d OpenShift builds were started for an invalid Build", len(obs.Items))
	}
}
