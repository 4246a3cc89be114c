package sim

// The executor plays the build pod: the git-clone init container (clone or
// receive the binary upload, write spec.revision), then the docker-build,
// sti-build or custom-build container (build the image with buildah) and the
// push.
//
// Knobs. The simulator reads these variables from the build's strategy
// environment (dockerStrategy.env, sourceStrategy.env or customStrategy.env;
// plain values only, not valueFrom). On a Shipwright BuildRun they are set
// through the strategy's build-env parameter.
//
//	OCBUILD_SIM_DURATION=<Go duration>   e.g. 30s, 2m
//	    The Running phase lasts at least this long: after fetching the source
//	    the builder logs a progress line every second until the duration
//	    (counted from Running) has passed, then builds and pushes. A cancel,
//	    a deletion or the completionDeadlineSeconds stops it at once.
//
//	OCBUILD_SIM_FAIL=<Reason>            e.g. DockerBuildFailed, BuildPodDeleted
//	    After fetching the source (and after OCBUILD_SIM_DURATION, if set)
//	    the build logs a few lines and ends with that reason and its
//	    canonical message (reference §5.3; "Simulated failure" for a reason
//	    not listed there). The phase is Error for the reasons OpenShift
//	    reports as Error (BuildPodDeleted, FailedContainer,
//	    NoBuildContainerStatus, ExceededRetryTimeout, CannotCreateBuildPod,
//	    CannotCreateBuildPodSpec, BuildPodExists, Error) and Failed otherwise.
//	    Nothing is pushed.
//
//	OCBUILD_SIM_START_DELAY=<Go duration> e.g. 10s
//	    The build is held in Pending (its "pod" is being scheduled and pulls
//	    images) this long before it goes Running, so that cancels, deletions
//	    and clients that give up can land while an instantiatebinary upload
//	    waits for Running (the body is only read once the build runs). A
//	    cancel or a deletion during the delay acts at once; the delay counts
//	    toward completionDeadlineSeconds, as the pod's activeDeadlineSeconds
//	    does.
//
//	OCBUILD_SIM_LOG_LINES=<n>            e.g. 10000
//	    Right after fetching the source the builder writes n numbered lines
//	    ("ocbuild-sim log line 1" … LogLinePrefix followed by the number) as
//	    fast as it can: a big log written within about a second, whose lines
//	    share sinceTime's one-second resolution.
//
//	OCBUILD_SIM_COMPLETES_FIRST=true
//	    The "completes first" race of reference §7: a cancel request
//	    (status.cancelled=true) arriving while the build is Pending or Running
//	    is not acted on until the builder finishes, so the build keeps the
//	    phase it ends in (Complete, Failed) with status.cancelled=true.
//
// The builder is buildah (buildah.go): see dockerstrategy.go,
// sourcestrategy.go and customstrategy.go for how each strategy maps onto
// it, engine.go for the registry credentials, and images.go for how image
// names map onto the sandbox registry.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Knob names (see the comment at the top of this file).
const (
	KnobDuration       = "OCBUILD_SIM_DURATION"
	KnobFail           = "OCBUILD_SIM_FAIL"
	KnobCompletesFirst = "OCBUILD_SIM_COMPLETES_FIRST"
	KnobStartDelay     = "OCBUILD_SIM_START_DELAY"
	KnobLogLines       = "OCBUILD_SIM_LOG_LINES"
)

// LogLinePrefix starts each line written for KnobLogLines.
const LogLinePrefix = "ocbuild-sim log line "

// StatusMessages are the canonical messages of the build status reasons
// (reference §5.3).
var StatusMessages = map[buildv1.StatusReason]string{
	"CannotCreateBuildPodSpec":        "Failed to create pod spec.",
	"CannotCreateBuildPod":            "Failed creating build pod.",
	"InvalidOutputReference":          "Output image could not be resolved.",
	"InvalidImageReference":           "Referenced image could not be resolved.",
	"CancelBuildFailed":               "Failed to cancel build.",
	"BuildPodDeleted":                 "The pod for this build was deleted before the build completed.",
	"ExceededRetryTimeout":            "Build did not complete and retrying timed out.",
	"MissingPushSecret":               "Missing push secret.",
	"PostCommitHookFailed":            "Build failed because of post commit hook.",
	"PushImageToRegistryFailed":       "Failed to push the image to the registry.",
	"PullBuilderImageFailed":          "Failed pulling builder image.",
	"FetchSourceFailed":               "Failed to fetch the input source.",
	"FetchImageContentFailed":         "Failed to extract image content.",
	"ManageDockerfileFailed":          "Failed to prepare the dockerfile for the build.",
	"InvalidContextDirectory":         "The supplied context directory does not exist.",
	"CancelledBuild":                  "The build was cancelled by the user.",
	"DockerBuildFailed":               "Dockerfile build strategy has failed.",
	"BuildPodExists":                  "The pod for this build already exists and is older than the build.",
	"NoBuildContainerStatus":          "The pod for this build has no container statuses indicating success or failure.",
	"FailedContainer":                 "The pod for this build has at least one container with a non-zero exit status.",
	"UnresolvableEnvironmentVariable": "Unable to resolve build environment variable reference.",
	"GenericBuildFailed":              "Generic Build failure - check logs for details.",
	"OutOfMemoryKilled":               "The build pod was killed due to an out of memory condition.",
	"CannotRetrieveServiceAccount":    "Unable to look up the service account associated with this build.",
	"BuildPodEvicted":                 "The node was low on resource: ephemeral-storage.",
}

// errorPhaseReasons end a build in phase Error rather than Failed.
var errorPhaseReasons = map[buildv1.StatusReason]bool{
	"BuildPodDeleted": true, "FailedContainer": true, "NoBuildContainerStatus": true,
	"ExceededRetryTimeout": true, "CannotCreateBuildPod": true, "CannotCreateBuildPodSpec": true,
	"BuildPodExists": true, "Error": true,
}

// messageFor is the canonical message of reason.
func messageFor(reason buildv1.StatusReason) string {
	if m, ok := StatusMessages[reason]; ok {
		return m
	}
	return "Simulated failure"
}

// knobs are the simulator settings read from the build environment.
type knobs struct {
	duration       time.Duration
	startDelay     time.Duration
	fail           buildv1.StatusReason
	completesFirst bool
	logLines       int
}

func strategyEnv(b *buildv1.Build) []corev1.EnvVar {
	s := b.Spec.Strategy
	switch {
	case s.DockerStrategy != nil:
		return s.DockerStrategy.Env
	case s.SourceStrategy != nil:
		return s.SourceStrategy.Env
	case s.CustomStrategy != nil:
		return s.CustomStrategy.Env
	case s.JenkinsPipelineStrategy != nil:
		return s.JenkinsPipelineStrategy.Env
	}
	return nil
}

// withDefaults adds to env each build default it does not set, as
// OpenShift's build defaults do when the build pod is made (the Build
// object keeps its own env).
func withDefaults(env, defaults []corev1.EnvVar) []corev1.EnvVar {
	if len(defaults) == 0 {
		return env
	}
	out := slices.Clone(env)
	for _, d := range defaults {
		if !slices.ContainsFunc(env, func(e corev1.EnvVar) bool { return e.Name == d.Name }) {
			out = append(out, d)
		}
	}
	return out
}

// readKnobs returns the knobs of b, and a description of a malformed one.
func readKnobs(b *buildv1.Build) (knobs, string) {
	var k knobs
	var bads []string
	duration := func(e corev1.EnvVar, dst *time.Duration) {
		d, err := time.ParseDuration(strings.TrimSpace(e.Value))
		if err != nil || d < 0 {
			bads = append(bads, fmt.Sprintf("%s=%q is not a duration (e.g. 30s); ignored", e.Name, e.Value))
			return
		}
		*dst = d
	}
	for _, e := range strategyEnv(b) {
		switch e.Name {
		case KnobDuration:
			duration(e, &k.duration)
		case KnobStartDelay:
			duration(e, &k.startDelay)
		case KnobFail:
			k.fail = buildv1.StatusReason(strings.TrimSpace(e.Value))
		case KnobCompletesFirst:
			k.completesFirst = strings.EqualFold(strings.TrimSpace(e.Value), "true")
		case KnobLogLines:
			n, err := strconv.Atoi(strings.TrimSpace(e.Value))
			if err != nil || n < 0 {
				bads = append(bads, fmt.Sprintf("%s=%q is not a line count; ignored", e.Name, e.Value))
				continue
			}
			k.logLines = n
		}
	}
	return k, strings.Join(bads, "; ")
}

// outcome is how the builder ended.
type outcome struct {
	phase   buildv1.BuildPhase
	reason  buildv1.StatusReason
	message string
	digest  string
	stages  []buildv1.StageInfo
}

func failed(reason buildv1.StatusReason) outcome {
	phase := buildv1.BuildPhaseFailed
	if errorPhaseReasons[reason] {
		phase = buildv1.BuildPhaseError
	}
	return outcome{phase: phase, reason: reason, message: messageFor(reason)}
}

// executor runs one build.
type executor struct {
	c      *Controller
	key    Key
	b      *buildv1.Build
	work   string
	stages []buildv1.StageInfo
	commit *buildv1.GitSourceRevision // what was checked out (Git builds)
	tag    string                     // temp.builder.openshift.io/<ns>/<build>:<hash>
}

func (e *executor) log(line string) { e.c.o.Logs.Append(e.key, line) }

func (e *executor) logf(format string, args ...any) { e.log(fmt.Sprintf(format, args...)) }

// stage records a status.stages entry.
func (e *executor) stage(name buildv1.StageName, step buildv1.StepName, start time.Time) {
	d := time.Since(start).Milliseconds()
	e.stages = append(e.stages, buildv1.StageInfo{
		Name: name, StartTime: metav1.NewTime(start), DurationMilliseconds: d,
		Steps: []buildv1.StepInfo{{Name: step, StartTime: metav1.NewTime(start), DurationMilliseconds: d}},
	})
}

func isBinary(b *buildv1.Build) bool { return b.Spec.Source.Binary != nil }

// run executes the build; ctx ends when the build is cancelled, deleted,
// exceeds its deadline or the controller stops (the result is then ignored).
func (e *executor) run(ctx context.Context) outcome {
	sum := sha256.Sum256([]byte(string(e.b.UID) + e.b.Namespace + "/" + e.b.Name))
	e.tag = fmt.Sprintf("temp.builder.openshift.io/%s/%s:%s", e.b.Namespace, e.b.Name, hex.EncodeToString(sum[:4]))
	if err := os.MkdirAll(e.work, 0o755); err != nil {
		e.logf("error: %v", err)
		return failed(buildv1.StatusReasonGenericBuildFailed)
	}
	defer os.RemoveAll(e.work)

	k, bad := readKnobs(e.b)
	if k.startDelay > 0 {
		// Still Pending: the pod is not running yet.
		e.c.logf("build %s/%s: held in Pending for %s (%s)", e.key.Namespace, e.key.Name, k.startDelay, KnobStartDelay)
		if !sleepCtx(ctx, k.startDelay) {
			return outcome{}
		}
	}
	// Running: the git-clone init container starts.
	if err := e.c.markRunning(ctx, e.key, e.b.UID); err != nil {
		return outcome{}
	}
	runningSince := time.Now()
	if bad != "" {
		e.log("warning: " + bad)
	}

	start := time.Now()
	src, out, ok := e.fetchSource(ctx)
	if !ok {
		return out
	}
	e.stage(buildv1.StageFetchInputs, buildv1.StepFetchGitSource, start)
	ctxDir := src
	if cd := e.b.Spec.Source.ContextDir; cd != "" {
		ctxDir = filepath.Join(src, filepath.FromSlash(path.Clean("/"+cd)))
		if fi, err := os.Stat(ctxDir); err != nil || !fi.IsDir() {
			e.logf("error: provided context directory does not exist: %s", cd)
			return failed(buildv1.StatusReasonInvalidContextDirectory)
		}
	}
	if df := e.b.Spec.Source.Dockerfile; df != nil {
		p := "Dockerfile"
		if ds := e.b.Spec.Strategy.DockerStrategy; ds != nil && ds.DockerfilePath != "" {
			p = ds.DockerfilePath
		}
		if err := os.WriteFile(filepath.Join(ctxDir, filepath.FromSlash(path.Clean("/"+p))), []byte(*df), 0o644); err != nil {
			e.logf("error: writing the Dockerfile: %v", err)
			return failed(buildv1.StatusReasonManageDockerfileFailed)
		}
	}

	if err := e.c.copyBuildInputs(ctx, e.b, ctxDir, e.log); err != nil {
		if ctx.Err() != nil {
			return outcome{}
		}
		e.logf("error: %v", err)
		return failed(buildv1.StatusReasonFetchSourceFailed)
	}
	if err := e.extractSourceImages(ctx, ctxDir); err != nil {
		if ctx.Err() != nil {
			return outcome{}
		}
		e.logf("error: %v", err)
		return failed(buildv1.StatusReasonFetchImageContentFailed)
	}

	for i := 1; i <= k.logLines; i++ {
		e.log(LogLinePrefix + strconv.Itoa(i))
	}
	if k.duration > 0 {
		if !e.simulateDuration(ctx, runningSince, k.duration) {
			return outcome{}
		}
	}
	if k.fail != "" {
		e.logf("Simulated failure requested (%s=%s)", KnobFail, k.fail)
		e.logf("error: build error: the build failed with reason %s", k.fail)
		e.logf("error: %s", messageFor(k.fail))
		return failed(k.fail)
	}

	env, err := e.c.resolveEnv(ctx, e.b.Namespace, withDefaults(strategyEnv(e.b), e.c.o.BuildDefaults))
	if err != nil {
		e.logf("error: %v", err)
		return failed(buildv1.StatusReasonUnresolvableEnvironmentVariable)
	}

	bh, o, ok := e.engine(ctx)
	if !ok {
		return o
	}
	defer bh.cleanup()
	s := e.b.Spec.Strategy
	switch {
	case s.DockerStrategy != nil:
		return e.dockerBuild(ctx, bh, ctxDir, env)
	case s.SourceStrategy != nil:
		return e.sourceBuild(ctx, bh, ctxDir, env)
	case s.CustomStrategy != nil:
		return e.customBuild(ctx, bh, ctxDir, env)
	default:
		e.log("error: the JenkinsPipeline strategy is not supported by the simulator")
		return failed(buildv1.StatusReasonGenericBuildFailed)
	}
}

// simulateDuration waits until since+d, logging progress every second;
// false if ctx ended.
func (e *executor) simulateDuration(ctx context.Context, since time.Time, d time.Duration) bool {
	e.logf("Simulating a build of %s (%s)", d, KnobDuration)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	end := since.Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return true
		}
		wait := time.NewTimer(min(left, time.Second))
		select {
		case <-ctx.Done():
			wait.Stop()
			return false
		case <-wait.C:
		}
		elapsed := time.Since(since).Round(time.Second)
		if elapsed > d {
			elapsed = d
		}
		e.logf("Building ... %s of %s", elapsed, d)
	}
}

// fetchSource plays the git-clone container; it returns the source root.
func (e *executor) fetchSource(ctx context.Context) (string, outcome, bool) {
	src := e.b.Spec.Source
	switch {
	case src.Binary != nil:
		if src.Binary.AsFile != "" {
			e.logf("Receiving source from STDIN as file %s", src.Binary.AsFile)
		} else {
			e.log("Receiving source from STDIN as archive ...")
		}
		dir, err := e.c.o.Sources.Await(ctx, e.key)
		if err != nil {
			if ctx.Err() != nil {
				return "", outcome{}, false
			}
			e.logf("error: %v", err)
			return "", failed(buildv1.StatusReasonFetchSourceFailed), false
		}
		return dir, outcome{}, true
	case src.Git != nil:
		dir := filepath.Join(e.work, "src")
		if o, ok := e.clone(ctx, src.Git, dir); !ok {
			return "", o, false
		}
		return dir, outcome{}, true
	default:
		dir := filepath.Join(e.work, "src")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			e.logf("error: %v", err)
			return "", failed(buildv1.StatusReasonFetchSourceFailed), false
		}
		return dir, outcome{}, true
	}
}

func (e *executor) gitEnv() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + e.work,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=/bin/false",
		"LC_ALL=C",
	}
}

func (e *executor) git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = e.gitEnv()
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", errors.New(msg)
	}
	return stdout.String(), nil
}

// cloneURL maps a repository URL the sandbox cannot reach onto the sandbox
// git server: <GitURL>/<last path element>.git, if the server has it.
func (e *executor) cloneURL(ctx context.Context, uri string) string {
	g := strings.TrimSuffix(e.c.o.GitURL, "/")
	if g == "" || strings.HasPrefix(uri, g+"/") {
		return uri
	}
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" || u.Scheme == "file" {
		return uri
	}
	if h := u.Hostname(); h == "127.0.0.1" || h == "localhost" || h == "::1" {
		return uri
	}
	repo := strings.TrimSuffix(path.Base(u.Path), ".git")
	if repo == "" || repo == "." || repo == "/" {
		return uri
	}
	cand := g + "/" + repo + ".git"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cand+"/info/refs?service=git-upload-pack", nil)
	if err != nil {
		return uri
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return uri
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return uri
	}
	e.c.logf("build %s/%s: cloning %s from the sandbox git server as %s", e.key.Namespace, e.key.Name, uri, cand)
	return cand
}

func (e *executor) clone(ctx context.Context, g *buildv1.GitBuildSource, dir string) (outcome, bool) {
	e.logf("Cloning %q ...", g.URI)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	fail := func(err error) (outcome, bool) {
		if ctx.Err() != nil {
			return outcome{}, false
		}
		for _, l := range strings.Split(err.Error(), "\n") {
			e.log("error: " + l)
		}
		return failed(buildv1.StatusReasonFetchSourceFailed), false
	}
	if _, err := e.git(cctx, e.work, "clone", "--quiet", "--no-checkout", e.cloneURL(cctx, g.URI), dir); err != nil {
		return fail(fmt.Errorf("failed to clone repository %q: %v", g.URI, err))
	}
	target := g.Ref
	if r := e.b.Spec.Revision; r != nil && r.Git != nil && r.Git.Commit != "" {
		target = r.Git.Commit
	}
	if target == "" {
		target = "HEAD"
	}
	if _, err := e.git(cctx, dir, "checkout", "--quiet", target, "--"); err != nil {
		// a remote branch or tag name that is not yet a local branch
		if _, err2 := e.git(cctx, dir, "checkout", "--quiet", "origin/"+target, "--"); err2 != nil {
			return fail(fmt.Errorf("unable to checkout %q in %q: %v", target, g.URI, err))
		}
	}
	out, err := e.git(cctx, dir, "log", "-1", "--format=%H%x00%an%x00%ae%x00%cn%x00%ce%x00%ad%x00%s")
	if err != nil {
		return fail(err)
	}
	f := strings.Split(strings.TrimRight(out, "\n"), "\x00")
	if len(f) < 7 {
		return fail(fmt.Errorf("unexpected git log output %q", out))
	}
	rev := &buildv1.GitSourceRevision{
		Commit:    f[0],
		Author:    buildv1.SourceControlUser{Name: f[1], Email: f[2]},
		Committer: buildv1.SourceControlUser{Name: f[3], Email: f[4]},
		Message:   f[6],
	}
	e.commit = rev
	e.logf("\tCommit:\t%s (%s)", rev.Commit, rev.Message)
	e.logf("\tAuthor:\t%s <%s>", rev.Author.Name, rev.Author.Email)
	e.logf("\tDate:\t%s", f[5])
	if err := e.c.setRevision(ctx, e.key, e.b.UID, rev); err != nil && ctx.Err() == nil {
		e.c.logf("build %s/%s: setting spec.revision: %v", e.key.Namespace, e.key.Name, err)
	}
	return outcome{}, true
}

// buildInfo is what OpenShift's builder adds to every image: the
// OPENSHIFT_BUILD_* environment and the io.openshift.build.* labels.
func (e *executor) buildInfo() (env, labels []kv) {
	b := e.b
	env = []kv{{"OPENSHIFT_BUILD_NAME", b.Name}, {"OPENSHIFT_BUILD_NAMESPACE", b.Namespace}}
	if g := b.Spec.Source.Git; g != nil {
		env = append(env, kv{"OPENSHIFT_BUILD_SOURCE", g.URI})
		if g.Ref != "" {
			env = append(env, kv{"OPENSHIFT_BUILD_REFERENCE", g.Ref})
		}
	}
	commit := e.commit
	if commit == nil && b.Spec.Revision != nil && b.Spec.Revision.Git != nil {
		commit = b.Spec.Revision.Git
	}
	if commit != nil && commit.Commit != "" {
		env = append(env, kv{"OPENSHIFT_BUILD_COMMIT", commit.Commit})
		if commit.Author.Name != "" {
			labels = append(labels, kv{"io.openshift.build.commit.author", fmt.Sprintf("%s <%s>", commit.Author.Name, commit.Author.Email)})
		}
		labels = append(labels, kv{"io.openshift.build.commit.id", commit.Commit})
		if commit.Message != "" {
			labels = append(labels, kv{"io.openshift.build.commit.message", commit.Message})
		}
	}
	if g := b.Spec.Source.Git; g != nil && g.Ref != "" {
		labels = append(labels, kv{"io.openshift.build.commit.ref", g.Ref})
	}
	labels = append(labels, kv{"io.openshift.build.name", b.Name}, kv{"io.openshift.build.namespace", b.Namespace})
	if g := b.Spec.Source.Git; g != nil {
		labels = append(labels, kv{"io.openshift.build.source-location", g.URI})
	}
	if cd := b.Spec.Source.ContextDir; cd != "" {
		labels = append(labels, kv{"io.openshift.build.source-context-dir", cd})
	}
	return env, labels
}

func (e *executor) imageLabels() []kv {
	var out []kv
	for _, l := range e.b.Spec.Output.ImageLabels {
		out = append(out, kv{l.Name, l.Value})
	}
	return out
}
