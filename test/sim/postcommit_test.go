package sim

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	buildv1 "github.com/openshift/api/build/v1"
)

func TestPostCommitCommand(t *testing.T) {
	for _, c := range []struct {
		pc   buildv1.BuildPostCommitSpec
		want string
	}{
		{buildv1.BuildPostCommitSpec{}, ""},
		{buildv1.BuildPostCommitSpec{Script: "bundle exec rake test"}, "/bin/sh -ic 'bundle exec rake test'"},
		{buildv1.BuildPostCommitSpec{Script: "rake test", Args: []string{"--verbose"}}, "/bin/sh -ic 'rake test --verbose'"},
		{buildv1.BuildPostCommitSpec{Command: []string{"/bin/bash", "-c"}, Args: []string{"make check"}}, "/bin/bash -c make check"},
		{buildv1.BuildPostCommitSpec{Args: []string{"python", "-m", "pytest"}}, "python -m pytest"},
	} {
		if got := postCommitCommand(c.pc); got != c.want {
			t.Errorf("%+v: %q, want %q", c.pc, got, c.want)
		}
	}
}

var aliasRE = regexp.MustCompile(`appimage[0-9a-f]{32}`)

func TestAppendPostCommit(t *testing.T) {
	env := []kv{{"MODE", "test"}}
	for _, c := range []struct {
		name, in, want string
	}{
		{"alias added", "FROM base\n# copy it\nCOPY . /app\n",
			"FROM base AS ALIAS\n# copy it\nCOPY . /app\nFROM ALIAS\nENV \"MODE\"=\"test\"\nRUN hook\nFROM ALIAS\nENV \"MODE\"=\"test\"\n"},
		{"last stage's alias kept, flags kept", "FROM golang AS build\nRUN go build\n# runtime\nFROM --platform=linux/amd64 base AS app\nCOPY --from=build /x /x\n",
			"FROM golang AS build\nRUN go build\n# runtime\nFROM --platform=linux/amd64 base AS app\nCOPY --from=build /x /x\nFROM app\nENV \"MODE\"=\"test\"\nRUN hook\nFROM app\nENV \"MODE\"=\"test\"\n"},
		{"no FROM: unchanged", "RUN x\n", "RUN x\n"},
	} {
		got := string(appendPostCommit([]byte(c.in), "hook", env))
		if aliasRE.ReplaceAllString(got, "ALIAS") != c.want {
			t.Errorf("%s:\n%s\nwant\n%s", c.name, got, c.want)
		}
	}
	if got := string(appendPostCommit([]byte("FROM base\n"), "", env)); got != "FROM base\n" {
		t.Errorf("no hook changed the Dockerfile: %q", got)
	}
}

// The hook runs in the built image as OpenShift's builder runs it, in a
// throwaway stage: its output is in the build log, what it writes is not in
// the pushed image, and a failing hook fails the build (DockerBuildFailed)
// before anything is pushed.
func TestControllerPostCommitHook(t *testing.T) {
	h := newCtrlHarness(t)
	repo, _ := gitRepo(t, map[string]string{"app/README.md": "hello"})
	df := strings.ReplaceAll("FROM REG/sim/base:latest\nCOPY . /app\nCMD [\"cat\", \"/app/README.md\"]\n", "REG", h.reg)
	if err := os.WriteFile(filepath.Join(repo, "app", "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	gitCommitAll(t, repo)

	pass := dockerGitBuild("hook-1", "hook", 1, repo, h.reg)
	pass.Spec.PostCommit = buildv1.BuildPostCommitSpec{Script: `grep -q hello /app/README.md && echo "hook sees the app with MODE=$MODE" && touch /app/hook-was-here`}
	withEnv(pass, "MODE", "check")
	command := dockerGitBuild("cmd-1", "cmd", 1, repo, h.reg)
	command.Spec.PostCommit = buildv1.BuildPostCommitSpec{Command: []string{"grep"}, Args: []string{"-c", "hello", "/app/README.md"}}
	fail := dockerGitBuild("bad-1", "bad", 1, repo, h.reg)
	fail.Spec.PostCommit = buildv1.BuildPostCommitSpec{Script: "echo the tests failed >&2; exit 3"}
	for _, b := range []*buildv1.Build{pass, command, fail} {
		h.create(b)
	}

	h.waitPhase("hook-1", buildv1.BuildPhaseComplete)
	h.waitLogClosed("hook-1")
	if log := h.log("hook-1"); !strings.Contains(log, "hook sees the app with MODE=check") {
		t.Errorf("the hook's output is not in the log:\n%s", log)
	}
	img, err := pullImage(h.ctx, h.reg, pass.Spec.Output.To.Name)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := imageFiles(t, img)
	if files["app/README.md"] != "hello" {
		t.Errorf("the image lacks the app: %v", files)
	}
	if _, ok := files["app/hook-was-here"]; ok {
		t.Error("what the hook wrote is in the pushed image")
	}
	cf, _ := img.ConfigFile()
	if strings.Join(cf.Config.Cmd, " ") != "cat /app/README.md" || cf.Config.Labels["io.openshift.build.name"] != "hook-1" {
		t.Errorf("the pushed image is not the app image: cmd %v, labels %v", cf.Config.Cmd, cf.Config.Labels)
	}

	h.waitPhase("cmd-1", buildv1.BuildPhaseComplete)
	h.waitLogClosed("cmd-1")
	if log := h.log("cmd-1"); !strings.Contains(log, "RUN grep -c hello /app/README.md") {
		t.Errorf("the command hook did not run as RUN <command> <args>:\n%s", log)
	}

	done := h.waitPhase("bad-1", buildv1.BuildPhaseFailed)
	h.waitLogClosed("bad-1")
	if done.Status.Reason != buildv1.StatusReasonDockerBuildFailed || done.Status.Message != "Dockerfile build strategy has failed." {
		t.Errorf("a failing hook ended %s/%q, want DockerBuildFailed", done.Status.Reason, done.Status.Message)
	}
	if log := h.log("bad-1"); !strings.Contains(log, "the tests failed") {
		t.Errorf("the failing hook's output is not in the log:\n%s", log)
	}
	if _, err := remote.Head(mustRef(t, fail.Spec.Output.To.Name)); err == nil {
		t.Error("a build whose hook failed pushed its image")
	}
}
