package sim

// The executor plays the build pod: the git-clone init container (clone or
// receive the binary upload, write spec.revision), then the docker-build,
// sti-build or custom-build container (build a real image) and the push to
// the sandbox registry.
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
// The image produced is real (layers, config and manifest in the sandbox
// registry); see dockerfile.go for what the Docker strategy interprets and
// images.go for how image names map onto the sandbox registry.

import (
	"archive/tar"
	"bufio"
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
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
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

	env, err := e.c.resolveEnv(ctx, e.b.Namespace, strategyEnv(e.b))
	if err != nil {
		e.logf("error: %v", err)
		return failed(buildv1.StatusReasonUnresolvableEnvironmentVariable)
	}

	start = time.Now()
	var img v1.Image
	var bf error
	s := e.b.Spec.Strategy
	switch {
	case s.DockerStrategy != nil:
		img, bf = e.dockerBuild(ctx, ctxDir, env)
	case s.SourceStrategy != nil:
		img, bf = e.sourceBuild(ctx, ctxDir, env)
	case s.CustomStrategy != nil:
		img, bf = e.customBuild(ctx, ctxDir, env)
	default:
		e.log("error: the JenkinsPipeline strategy is not supported by the simulator")
		return failed(buildv1.StatusReasonGenericBuildFailed)
	}
	if ctx.Err() != nil {
		return outcome{}
	}
	if bf != nil {
		var f *buildFailure
		if errors.As(bf, &f) {
			o := failed(f.Reason)
			if f.Message != "" {
				o.message = f.Message
			}
			return o
		}
		e.logf("error: build error: %v", bf)
		return failed(buildv1.StatusReasonGenericBuildFailed)
	}
	e.stage(buildv1.StageBuild, buildv1.StepDockerBuild, start)
	if cfg, err := img.ConfigName(); err == nil {
		e.log("COMMIT " + e.tag)
		e.log("--> " + cfg.Hex[:12])
		e.log("Successfully tagged " + e.tag)
		e.log(cfg.Hex)
	}

	if pc := e.b.Spec.PostCommit; len(pc.Command) > 0 || len(pc.Args) > 0 || pc.Script != "" {
		e.log("warning: the post-commit hook is not run by the simulator")
	}
	to := e.b.Spec.Output.To
	if to == nil || to.Name == "" {
		e.log("Build complete, no image push requested")
		return outcome{phase: buildv1.BuildPhaseComplete}
	}
	start = time.Now()
	digest, ok := e.push(ctx, to.Name, img)
	if !ok {
		if ctx.Err() != nil {
			return outcome{}
		}
		return failed(buildv1.StatusReasonPushImageToRegistryFailed)
	}
	e.stage(buildv1.StagePushImage, buildv1.StepPushImage, start)
	return outcome{phase: buildv1.BuildPhaseComplete, digest: digest}
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

func (e *executor) pull(ctx context.Context, image string) (v1.Image, error) {
	return pullImage(ctx, e.c.o.Registry, image)
}

func (e *executor) dockerBuild(ctx context.Context, ctxDir string, env []kv) (v1.Image, error) {
	ds := e.b.Spec.Strategy.DockerStrategy
	dfPath := ds.DockerfilePath
	if dfPath == "" {
		dfPath = "Dockerfile"
	}
	var from string
	if ds.From != nil && ds.From.Kind == "DockerImage" {
		from = ds.From.Name
	}
	var args []kv
	for _, a := range ds.BuildArgs {
		args = append(args, kv{a.Name, a.Value})
	}
	infoEnv, labels := e.buildInfo()
	if ds.NoCache {
		e.log("Building without the layer cache (noCache)")
	}
	if ds.ForcePull {
		e.log("Pulling base images even if present (forcePull)")
	}
	e.log(`Caching blobs under "/var/cache/blobs".`)
	return runDockerBuild(ctx, dockerBuildOptions{
		ContextDir:     ctxDir,
		DockerfilePath: path.Clean("/" + filepath.ToSlash(dfPath))[1:],
		BuildArgs:      args,
		FromOverride:   from,
		StrategyEnv:    env,
		BuildInfoEnv:   infoEnv,
		Labels:         append(labels, e.imageLabels()...),
		WorkDir:        e.work,
		Log:            e.log,
		Now:            time.Now().UTC().Truncate(time.Second),
		Pull:           e.pull,
	})
}

// s2iScriptsDir reads the builder's io.openshift.s2i.scripts-url.
func s2iScriptsDir(labels map[string]string) string {
	u := labels["io.openshift.s2i.scripts-url"]
	if u == "" {
		u = labels["io.s2i.scripts-url"]
	}
	if p, ok := strings.CutPrefix(u, "image://"); ok && strings.HasPrefix(p, "/") {
		return path.Clean(p)
	}
	return "/usr/libexec/s2i"
}

// readS2IEnvironment parses .s2i/environment (KEY=VALUE lines).
func readS2IEnvironment(ctxDir string) []kv {
	data, err := os.ReadFile(filepath.Join(ctxDir, ".s2i", "environment"))
	if err != nil {
		return nil
	}
	var out []kv
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && k != "" {
			out = append(out, kv{k, v})
		}
	}
	return out
}

func setEnvKV(env []string, k, v string) []string {
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// sourceBuild is the Source (S2I) strategy: the builder image, plus a layer
// with the source at <destination>/src (the assemble input), plus an
// artifacts layer (reused from the previous image on incremental builds).
func (e *executor) sourceBuild(ctx context.Context, ctxDir string, env []kv) (v1.Image, error) {
	ss := e.b.Spec.Strategy.SourceStrategy
	builderRef := ss.From.Name
	e.log(`Caching blobs under "/var/cache/blobs".`)
	if ss.ForcePull {
		e.log("Pulling the builder image even if present (forcePull)")
	}
	base, err := pullAndLog(ctx, builderRef, e.pull, e.log)
	if err != nil {
		return nil, err
	}
	bcf, err := base.ConfigFile()
	if err != nil {
		return nil, err
	}
	scripts := s2iScriptsDir(bcf.Config.Labels)
	dest := bcf.Config.Labels["io.openshift.s2i.destination"]
	if dest == "" {
		dest = "/tmp"
	}
	user := bcf.Config.User
	if user == "" || user == "root" || user == "0" {
		user = "1001"
	}
	if ss.Scripts != "" {
		e.logf("warning: the simulator does not download S2I scripts from %s; using the builder image's", ss.Scripts)
	}
	var custom []string
	for _, s := range []string{"assemble", "run", "save-artifacts"} {
		if fi, err := os.Stat(filepath.Join(ctxDir, ".s2i", "bin", s)); err == nil && !fi.IsDir() {
			custom = append(custom, s)
		}
	}

	// Incremental: the previous image's artifacts layer.
	var reuse v1.Layer
	incremental := ss.Incremental != nil && *ss.Incremental
	if to := e.b.Spec.Output.To; incremental && to != nil && to.Name != "" {
		prev, err := e.previousImage(ctx, to.Name)
		switch {
		case err != nil:
			e.logf("Clean build will be performed because there is no previous image %s", to.Name)
		default:
			pcf, _ := prev.ConfigFile()
			var d v1.Hash
			if pcf != nil {
				d, err = v1.NewHash(pcf.Config.Labels[ArtifactsLayerLabel])
			}
			if pcf == nil || err != nil {
				e.logf("Clean build will be performed because the previous image %s has no saved artifacts", to.Name)
				break
			}
			if reuse, err = prev.LayerByDigest(d); err != nil {
				reuse = nil
				e.logf("Clean build will be performed because the artifacts layer of %s cannot be read: %v", to.Name, err)
				break
			}
			e.log("Using artifacts from previous build (incremental)")
			e.logf("Restoring artifacts from %s (layer %s)", to.Name, d.Hex[:12])
		}
	}

	infoEnv, buildLabels := e.buildInfo()
	labels := []kv{{"io.openshift.build.image", builderRef}, {"io.openshift.s2i.build.image", builderRef}}
	for _, l := range buildLabels {
		labels = append(labels, l)
		if strings.HasPrefix(l.K, "io.openshift.build.commit.") || l.K == "io.openshift.build.source-location" || l.K == "io.openshift.build.source-context-dir" {
			labels = append(labels, kv{"io.openshift.s2i.build." + strings.TrimPrefix(l.K, "io.openshift.build."), l.V})
		}
	}
	if to := e.b.Spec.Output.To; to != nil && to.Name != "" {
		labels = append(labels, kv{"io.k8s.display-name", to.Name})
	}
	allEnv := append(append(append([]kv(nil), infoEnv...), readS2IEnvironment(ctxDir)...), env...)

	steps := []string{
		"FROM " + builderRef,
		"LABEL " + quotedPairs(labels),
		"ENV " + quotedPairs(allEnv),
		"USER root",
		"COPY upload/src " + path.Join(dest, "src"),
	}
	if reuse != nil {
		steps = append(steps, "COPY --from=cached /tmp/artifacts /tmp/artifacts")
	}
	steps = append(steps,
		"RUN chown -R "+user+":0 "+path.Join(dest, "src"),
		"USER "+user,
		"RUN "+path.Join(scripts, "assemble"),
		"CMD "+path.Join(scripts, "run"),
	)
	e.log("Generating dockerfile with builder image " + builderRef)
	if len(custom) > 0 {
		e.logf("Using S2I scripts from the source's .s2i/bin: %s", strings.Join(custom, ", "))
	}
	mt := layerMediaType(base)
	uid := 1001
	var srcLayer, artLayer v1.Layer
	for i, s := range steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e.logf("STEP %d/%d: %s", i+1, len(steps), s)
		switch {
		case strings.HasPrefix(s, "COPY upload/src"):
			l, err := e.sourceLayer(ctxDir, strings.TrimPrefix(path.Join(dest, "src"), "/"), uid, mt)
			if err != nil {
				e.logf("error: build error: building at STEP \"%s\": %v", s, err)
				return nil, failWith(buildv1.StatusReasonGenericBuildFailed, err)
			}
			srcLayer = l
			e.log("--> " + l.digest.Hex[:12])
		case strings.HasPrefix(s, "RUN ") && strings.HasSuffix(s, "/assemble"):
			e.log("---> Installing application source...")
			if reuse != nil {
				e.log("---> Restoring build artifacts...")
			}
			e.log(s + ": not executed by the simulator")
			if reuse != nil {
				artLayer = reuse
			} else {
				l, err := buildLayer(e.work, []layerEntry{
					{Name: "var/lib/ocbuild-sim", Type: tar.TypeDir, Mode: 0o755},
					{Name: "var/lib/ocbuild-sim/s2i-artifacts", Type: tar.TypeDir, Mode: 0o775, UID: uid},
					{Name: "var/lib/ocbuild-sim/s2i-artifacts/manifest", Type: tar.TypeReg, Mode: 0o664, UID: uid, Data: []byte(fmt.Sprintf(
						"S2I artifacts saved by build %s/%s (simulated: save-artifacts is not executed)\nsource: %s\n",
						e.b.Namespace, e.b.Name, e.sourceID()))},
				}, mt)
				if err != nil {
					return nil, failWith(buildv1.StatusReasonGenericBuildFailed, err)
				}
				artLayer = l
			}
		case strings.HasPrefix(s, "RUN "):
			e.log(s + ": not executed by the simulator")
		}
	}
	artDigest, err := artLayer.Digest()
	if err != nil {
		return nil, failWith(buildv1.StatusReasonGenericBuildFailed, err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	img, err := mutate.Append(base,
		mutate.Addendum{Layer: srcLayer, History: v1.History{Created: v1.Time{Time: now}, CreatedBy: "COPY upload/src " + path.Join(dest, "src")}},
		mutate.Addendum{Layer: artLayer, History: v1.History{Created: v1.Time{Time: now}, CreatedBy: "RUN " + path.Join(scripts, "assemble")}},
	)
	if err != nil {
		return nil, failWith(buildv1.StatusReasonGenericBuildFailed, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, failWith(buildv1.StatusReasonGenericBuildFailed, err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: now}
	if cf.OS == "" {
		cf.OS, cf.Architecture = "linux", "amd64"
	}
	if cf.Config.Labels == nil {
		cf.Config.Labels = map[string]string{}
	}
	for _, l := range append(append(labels, kv{ArtifactsLayerLabel, artDigest.String()}), e.imageLabels()...) {
		cf.Config.Labels[l.K] = l.V
	}
	for _, v := range allEnv {
		cf.Config.Env = setEnvKV(cf.Config.Env, v.K, v.V)
	}
	cf.Config.User = user
	cf.Config.Cmd = []string{path.Join(scripts, "run")}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, failWith(buildv1.StatusReasonGenericBuildFailed, err)
	}
	return img, nil
}

// sourceID describes the source for the artifacts manifest.
func (e *executor) sourceID() string {
	if e.commit != nil {
		return e.commit.Commit
	}
	if r := e.b.Spec.Revision; r != nil && r.Git != nil && r.Git.Commit != "" {
		return r.Git.Commit
	}
	if isBinary(e.b) {
		return "binary upload"
	}
	return "none"
}

// previousImage reads the current output image (for incremental builds).
func (e *executor) previousImage(ctx context.Context, image string) (v1.Image, error) {
	ref, err := pushRef(e.c.o.Registry, image)
	if err != nil {
		return nil, err
	}
	return remote.Image(ref, remote.WithContext(ctx))
}

// sourceLayer puts the context directory at dest (relative), owned by uid:0.
func (e *executor) sourceLayer(ctxDir, dest string, uid int, mt types.MediaType) (*builtLayer, error) {
	entries := []layerEntry{{Name: dest, Type: tar.TypeDir, Mode: 0o775, UID: uid}}
	err := walkSources(ctxDir, ctxDir, "", nil, func(rel string, fi os.FileInfo, p string) error {
		if rel == ".git" || strings.HasPrefix(rel, ".git/") {
			return nil
		}
		en, err := entryFor(path.Join(dest, rel), fi, p)
		if err != nil {
			return err
		}
		en.UID = uid
		entries = append(entries, en)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return buildLayer(e.work, entries, mt)
}

// customBuild is the Custom strategy: the simulator cannot run the builder
// image; it pushes it with the source added under /tmp/src.
func (e *executor) customBuild(ctx context.Context, ctxDir string, env []kv) (v1.Image, error) {
	cs := e.b.Spec.Strategy.CustomStrategy
	base, err := pullAndLog(ctx, cs.From.Name, e.pull, e.log)
	if err != nil {
		return nil, err
	}
	e.logf("Custom build strategy: the simulator does not run the builder image %s; it adds the source under /tmp/src and pushes the result", cs.From.Name)
	l, err := e.sourceLayer(ctxDir, "tmp/src", 0, layerMediaType(base))
	if err != nil {
		return nil, failWith(buildv1.StatusReasonGenericBuildFailed, err)
	}
	img, err := mutate.Append(base, mutate.Addendum{Layer: l, History: v1.History{Created: v1.Time{Time: time.Now().UTC()}, CreatedBy: "ocbuild simulator: custom build source"}})
	if err != nil {
		return nil, failWith(buildv1.StatusReasonGenericBuildFailed, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, failWith(buildv1.StatusReasonGenericBuildFailed, err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: time.Now().UTC().Truncate(time.Second)}
	infoEnv, labels := e.buildInfo()
	if cf.Config.Labels == nil {
		cf.Config.Labels = map[string]string{}
	}
	for _, x := range append(labels, e.imageLabels()...) {
		cf.Config.Labels[x.K] = x.V
	}
	for _, v := range append(infoEnv, env...) {
		cf.Config.Env = setEnvKV(cf.Config.Env, v.K, v.V)
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, failWith(buildv1.StatusReasonGenericBuildFailed, err)
	}
	return img, nil
}

// push writes img to image, logging like the builder.
func (e *executor) push(ctx context.Context, image string, img v1.Image) (string, bool) {
	e.logf("Pushing image %s ...", image)
	e.log("Getting image source signatures")
	if layers, err := img.Layers(); err == nil {
		for _, l := range layers {
			if d, err := l.Digest(); err == nil {
				e.logf("Copying blob %s", d.Hex[:12])
			}
		}
	}
	if cfg, err := img.ConfigName(); err == nil {
		e.logf("Copying config %s", cfg.Hex[:12])
	}
	e.log("Writing manifest to image destination")
	var digest v1.Hash
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if attempt > 0 {
			e.logf("Warning: Push failed, retrying in 1s ...")
			select {
			case <-ctx.Done():
				return "", false
			case <-time.After(time.Second):
			}
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		digest, err = pushImage(pctx, e.c.o.Registry, image, img)
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			e.logf("error: build error: Failed to push image: %v", err)
		}
		return "", false
	}
	repo := image
	if ref, perr := parseRef(image, false); perr == nil {
		repo = ref.Context().Name()
		if !strings.Contains(image, ref.Context().RegistryStr()) {
			repo = strings.TrimPrefix(repo, "index.docker.io/")
		}
	}
	e.logf("Successfully pushed %s@%s", repo, digest)
	e.log("Push successful")
	return digest.String(), true
}
