package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"

	"github.com/ocbuild/ocbuild/pkg/buildconfig"
	"github.com/ocbuild/ocbuild/pkg/driver"
	"github.com/ocbuild/ocbuild/pkg/failure"
	"github.com/ocbuild/ocbuild/pkg/results"
	"github.com/ocbuild/ocbuild/pkg/validate"
)

// clearEnv makes the flag defaults read from the environment empty.
func clearEnv(t *testing.T) {
	t.Helper()
	t.Setenv(EnvBuildName, "")
	t.Setenv(EnvBuildRunName, "")
}

// sourceTree returns a source directory holding a Dockerfile at its root and
// in sub/, and a plain file "notadir".
func sourceTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"Dockerfile", "sub/Dockerfile", "sub/build/Containerfile", "notadir"} {
		p := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("FROM scratch\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	// out: a link to a directory outside the tree; linked/Dockerfile: a
	// link to the root's Dockerfile, outside the linked/ context.
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "linked"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"out": outside, "linked/Dockerfile": "../Dockerfile"} {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// gitBuild is a valid docker build of a repository OpenShift clones, plus extra.
func gitBuild(extra ...string) []string {
	return append([]string{"build", "--buildconfig=app", "--strategy=docker", "--git-url=https://github.com/o/r", "--to=quay.io/o/a"}, extra...)
}

func docker(dir string, extra ...string) []string {
	return append([]string{"build", "--buildconfig=app", "--strategy=docker", "--source-dir=" + dir, "--to=quay.io/org/app:v1"}, extra...)
}

func source(dir string, extra ...string) []string {
	return append([]string{"build", "--buildconfig=app", "--strategy=source", "--source-dir=" + dir,
		"--builder-image=registry.access.redhat.com/ubi9/python-311", "--to=quay.io/org/app:v1"}, extra...)
}

func parse(t *testing.T, args []string) (*Command, string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd, help, err := Parse(args, &stderr)
	if err != nil || help || cmd == nil {
		t.Fatalf("Parse(%q) = %v, help %v, err %v", args, cmd, help, err)
	}
	return cmd, stderr.String()
}

func TestParseErrors(t *testing.T) {
	clearEnv(t)
	dir := sourceTree(t)
	tests := []struct {
		name string
		args []string
		want []string // all substrings of the message
	}{
		// Image references.
		{"malformed --to", docker(dir, "--to=quay.io/Org/App:v1"), []string{`--to "quay.io/Org/App:v1"`, "not a valid Docker pull specification"}},
		{"empty --to", docker(dir, "--to="), []string{"--to", "an image reference is required"}},
		{"missing --to", []string{"build", "--buildconfig=app", "--strategy=docker", "--source-dir=" + dir}, []string{"--to", "an image reference is required"}},
		{"malformed --from", docker(dir, "--from=ubi9:"), []string{`--from "ubi9:"`, "not a valid Docker pull specification"}},
		{"malformed --builder-image", source(dir, "--builder-image=registry.access.redhat.com/UBI9/python"), []string{"--builder-image", "not a valid Docker pull specification"}},
		// OpenShift's reference grammar: a path component is [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*.
		{"--to with a component ending in -", docker(dir, "--to=quay.io/a-/b"), []string{`--to "quay.io/a-/b": not a valid Docker pull specification: invalid reference format`, `path component "a-"`}},
		{"--to with a port and a bad component", docker(dir, "--to=127.0.0.1:5000/a-/b:tag"), []string{`--to "127.0.0.1:5000/a-/b:tag"`, "invalid reference format", `path component "a-"`}},
		{"--to with a..b", docker(dir, "--to=quay.io/a..b/c"), []string{"--to", "invalid reference format", `path component "a..b"`}},
		{"--from with a bad component", docker(dir, "--from=quay.io/-a/base"), []string{`--from "quay.io/-a/base"`, "invalid reference format"}},
		{"--builder-image with a bad component", source(dir, "--builder-image=quay.io/a-/s2i"), []string{`--builder-image "quay.io/a-/s2i"`, "invalid reference format"}},
		{"--to with a scheme", docker(dir, "--to=https://quay.io/o/a"), []string{"--to", "without a scheme"}},
		{"--to with a bad digest", docker(dir, "--to=quay.io/o/a@sha256:"+strings.Repeat("0", 63)), []string{"--to", "invalid checksum digest length"}},
		// K=V.
		{"--env without =", docker(dir, "--env=FOO"), []string{`--env "FOO"`, "expected NAME=VALUE", "NAME="}},
		{"--build-arg without =", docker(dir, "--build-arg", "VERSION"), []string{`--build-arg "VERSION"`, "an = is missing"}},
		{"--image-label without =", docker(dir, "--image-label=version"), []string{`--image-label "version"`, "expected NAME=VALUE"}},
		{"--env-array item without =", docker(dir, "--env-array", "A=1", "BROKEN"), []string{`--env "BROKEN"`, "an = is missing"}},
		{"--build-arg-array item without =", docker(dir, "--build-arg-array", "BROKEN"), []string{`--build-arg "BROKEN"`, "an = is missing"}},
		{"--image-label-array item without =", docker(dir, "--image-label-array", "BROKEN"), []string{`--image-label "BROKEN"`, "an = is missing"}},
		{"invalid env name", docker(dir, "--env=1FOO=x"), []string{"--env", `invalid name "1FOO"`}},
		{"env name with space", docker(dir, "--env", "MY VAR=x"), []string{"--env", `invalid name "MY VAR"`}},
		{"empty env name", docker(dir, "--env==x"), []string{"--env", "the name before = is empty"}},
		{"invalid label name", docker(dir, "--image-label=bad name=x"), []string{"--image-label", "invalid label name"}},
		{"invalid build-arg in start", []string{"start", "--buildconfig=app", "--build-arg=X"}, []string{"--build-arg", "an = is missing"}},
		// Paths.
		{"--dockerfile with ..", docker(dir, "--dockerfile=../Dockerfile"), []string{`--dockerfile "../Dockerfile"`, "dockerfilePath", `remove the ".."`}},
		{"--dockerfile escaping later", docker(dir, "--dockerfile=a/../../Dockerfile"), []string{"--dockerfile", `remove the ".."`}},
		{"--dockerfile absolute", docker(dir, "--dockerfile=/Dockerfile"), []string{"--dockerfile", "not an absolute path"}},
		{"--context-dir with ..", docker(dir, "--context-dir=../other"), []string{`--context-dir "../other"`, "context dir", `remove the ".."`}},
		{"--context-dir absolute", docker(dir, "--context-dir=/src"), []string{"--context-dir", "not an absolute path"}},
		{"--context-dir absolute with git", []string{"build", "--buildconfig=app", "--strategy=docker", "--git-url=https://github.com/o/r", "--context-dir=/src", "--to=quay.io/o/a"}, []string{"--context-dir", "not an absolute path"}},
		{"--context-dir ..foo with git", gitBuild("--context-dir=..foo"), []string{`--context-dir "..foo": context dir must not be a relative path`, `starts with ".."`}},
		{"--context-dir a/../..foo with git", gitBuild("--context-dir=a/../..foo"), []string{`--context-dir "a/../..foo"`, "context dir must not be a relative path", `"..foo"`}},
		{"--context-dir ../x with git", gitBuild("--context-dir=../x"), []string{"--context-dir", "context dir must not be a relative path"}},
		{"--dockerfile escaping with git", gitBuild("--dockerfile=../Dockerfile"), []string{"--dockerfile", "dockerfilePath must be a relative path within your source location"}},
		{"--context-dir through a symlink out of the source", docker(dir, "--context-dir=out"), []string{`--context-dir "out": leads out of --source-dir`, "through a symlink", "never follows links out of the source tree"}},
		{"Dockerfile a symlink out of the context", docker(dir, "--context-dir=linked", "--dockerfile=Dockerfile"), []string{`--dockerfile "Dockerfile": a symlink to`, "outside the uploaded directory"}},
		{"Dockerfile a directory", docker(dir, "--dockerfile=sub"), []string{`--dockerfile "sub": is a directory`}},
		{"--context-dir missing in the source", docker(dir, "--context-dir=nope"), []string{"--context-dir", "nope", "directory not found"}},
		{"--context-dir is a file", docker(dir, "--context-dir=notadir"), []string{"--context-dir", "not a directory"}},
		{"missing --source-dir", docker(filepath.Join(dir, "missing")), []string{"--source-dir", "missing", "directory not found", "shp-source-root"}},
		{"--source-dir is a file", docker(filepath.Join(dir, "notadir")), []string{"--source-dir", "not a directory"}},
		{"missing --source-dir in start", []string{"start", "--buildconfig=app", "--source-dir=" + filepath.Join(dir, "missing")}, []string{"--source-dir", "directory not found"}},
		{"missing --source-root", docker(dir, "--source-root="+filepath.Join(dir, "missing")), []string{"--source-root", "directory not found"}},
		{"missing Dockerfile", docker(filepath.Join(dir, "empty")), []string{`--dockerfile "Dockerfile"`, "no such file in " + filepath.Join(dir, "empty"), "relative to the context directory"}},
		{"missing custom Dockerfile", docker(dir, "--context-dir=sub", "--dockerfile=Containerfile"), []string{`--dockerfile "Containerfile"`, "no such file in " + filepath.Join(dir, "sub")}},
		{"Dockerfile outside the context dir", docker(dir, "--context-dir=empty"), []string{"--dockerfile", "no such file"}},
		// Sources.
		{"both --source-dir and --git-url", docker(dir, "--git-url=https://github.com/o/r"), []string{"--git-url", "not both"}},
		{"neither --source-dir nor --git-url", []string{"build", "--buildconfig=app", "--strategy=docker", "--to=quay.io/o/a"}, []string{"--source-dir", "--git-url"}},
		{"invalid --git-url", []string{"build", "--buildconfig=app", "--strategy=docker", "--git-url=github.com/o/r", "--to=quay.io/o/a"}, []string{`--git-url "github.com/o/r"`, "http(s)://"}},
		{"file --git-url with a host", gitBuild("--git-url=file://server/srv/repo.git"), []string{"--git-url", `has non-empty host "server"`, "file:///"}},
		{"--git-ref like an option", gitBuild("--git-ref=-b"), []string{`--git-ref "-b"`, `does not start with "-"`}},
		{"--git-ref with a space", gitBuild("--git-ref=my branch"), []string{`--git-ref "my branch"`, "no spaces"}},
		{"--scripts-url without a scheme", source(dir, "--scripts-url=/usr/libexec/s2i"), []string{`--scripts-url "/usr/libexec/s2i"`, "image:///path"}},
		{"--git-ref without --git-url", docker(dir, "--git-ref=main"), []string{"--git-ref", "only with --git-url"}},
		{"--source-secret without --git-url", docker(dir, "--source-secret=git"), []string{"--source-secret", "only with --git-url"}},
		{"--include-git without --source-dir", []string{"build", "--buildconfig=app", "--strategy=docker", "--git-url=https://github.com/o/r", "--to=quay.io/o/a", "--include-git"}, []string{"--include-git", "add --source-dir"}},
		{"--include-git without --source-dir in start", []string{"start", "--buildconfig=app", "--include-git"}, []string{"--include-git", "add --source-dir"}},
		// Strategy.
		{"unknown --strategy", docker(dir, "--strategy=custom"), []string{`--strategy "custom"`, "must be one of docker, source"}},
		{"missing --strategy", []string{"build", "--buildconfig=app", "--source-dir=" + dir, "--to=quay.io/o/a"}, []string{"--strategy", "choose docker or source"}},
		{"--incremental with docker", docker(dir, "--incremental"), []string{"--incremental", "only to --strategy source"}},
		{"--builder-image with docker", docker(dir, "--builder-image=ubi9/python-311"), []string{"--builder-image", "only to --strategy source"}},
		{"--scripts-url with docker", docker(dir, "--scripts-url=https://x/s"), []string{"--scripts-url", "only to --strategy source"}},
		{"--no-cache with source", source(dir, "--no-cache"), []string{"--no-cache", "only to --strategy docker"}},
		{"--build-arg with source", source(dir, "--build-arg=A=1"), []string{"--build-arg", "only to --strategy docker"}},
		{"--dockerfile with source", source(dir, "--dockerfile=Dockerfile"), []string{`--dockerfile "Dockerfile"`, "only to --strategy docker"}},
		{"--from with source", source(dir, "--from=ubi9/ubi"), []string{`--from "ubi9/ubi"`, "use --builder-image"}},
		{"missing --builder-image for source", []string{"build", "--buildconfig=app", "--strategy=source", "--source-dir=" + dir, "--to=quay.io/o/a"}, []string{"--builder-image", "S2I builder image"}},
		// Names and policies.
		{"--run-policy invalid", docker(dir, "--run-policy=Sometimes"), []string{`--run-policy "Sometimes"`, "Parallel, Serial, or SerialLatestOnly"}},
		{"missing buildconfig name", []string{"build", "--strategy=docker", "--source-dir=" + dir, "--to=quay.io/o/a"}, []string{"--buildconfig", "--build-name"}},
		{"invalid --buildconfig", docker(dir, "--buildconfig=My_App"), []string{`--buildconfig "My_App"`, "not a valid name"}},
		{"invalid --build-name as buildconfig", []string{"build", "--build-name=Bad_Name", "--strategy=docker", "--source-dir=" + dir, "--to=quay.io/o/a"}, []string{`--build-name "Bad_Name"`, "not a valid name"}},
		{"--buildconfig too long for its builds", docker(dir, "--buildconfig="+strings.Repeat("a", 243)), []string{"--buildconfig", "too long (243 characters)", "at most 242"}},
		{"invalid --buildrun-name", docker(dir, "--buildrun-name=Run_1"), []string{`--buildrun-name "Run_1"`, "not a valid name"}},
		{"invalid --taskrun-name", docker(dir, "--taskrun-name=-tr"), []string{`--taskrun-name "-tr"`, "not a valid name"}},
		{"invalid --namespace", docker(dir, "--namespace=Team.A"), []string{`--namespace "Team.A"`, "not a valid namespace"}},
		{"invalid -n in start", []string{"start", "--buildconfig=app", "-n", "a_b"}, []string{`--namespace "a_b"`, "not a valid namespace"}},
		{"invalid --push-secret", docker(dir, "--push-secret=Push_Secret"), []string{`--push-secret "Push_Secret"`, "not a valid name"}},
		{"invalid --pull-secret", docker(dir, "--pull-secret=-x"), []string{"--pull-secret", "not a valid name"}},
		{"start without --buildconfig", []string{"start", "--commit=abc"}, []string{"--buildconfig", "name the existing BuildConfig to run"}},
		{"start with invalid --buildconfig", []string{"start", "--buildconfig=UPPER"}, []string{`--buildconfig "UPPER"`, "not a valid name"}},
		{"--commit with spaces", []string{"start", "--buildconfig=app", "--commit=abc def"}, []string{"--commit", "no spaces"}},
		// Owner and timeouts.
		{"--taskrun-uid without --taskrun-name", docker(dir, "--taskrun-uid=1234"), []string{`--taskrun-uid "1234"`, "needs --taskrun-name"}},
		{"negative --timeout", docker(dir, "--timeout=-1s"), []string{`--timeout "-1s"`, "must not be negative"}},
		{"zero --start-timeout", docker(dir, "--start-timeout=0"), []string{`--start-timeout "0s"`, "must be positive"}},
		{"negative --start-timeout in start", []string{"start", "--buildconfig=app", "--start-timeout=-5m"}, []string{"--start-timeout", "must be positive"}},
		{"--timeout not a duration", docker(dir, "--timeout=10"), []string{`--timeout "10": not a duration`, "90s", "see ocbuild --help"}},
		{"--no-cache not a boolean", docker(dir, "--no-cache=yes"), []string{`--no-cache "yes": not a boolean`, "true or false"}},
		{"--image-label-array in start", []string{"start", "--buildconfig=app", "--image-label-array", "a=b", "c=d"}, []string{"ocbuild start: unknown flag: --image-label-array", "ocbuild build only"}},
		{"unknown shorthand", docker(dir, "-x"), []string{"unknown shorthand flag", `"x"`}},
		// Command line shape.
		{"no arguments", []string{}, []string{"a subcommand is required", "ocbuild build or ocbuild start"}},
		{"unknown subcommand", []string{"deploy", "--to=x"}, []string{`unknown subcommand "deploy"`, "ocbuild build or ocbuild start"}},
		{"flag instead of subcommand", []string{"--to=x"}, []string{`unknown subcommand "--to=x"`}},
		{"unknown flag in start", []string{"start", "--to", "x"}, []string{"ocbuild start", "unknown flag: --to", "see ocbuild --help"}},
		{"build-only flag in start", []string{"start", "--buildconfig=app", "--strategy=docker"}, []string{"unknown flag: --strategy"}},
		{"unknown flag in build", docker(dir, "--frobnicate"), []string{"ocbuild build", "unknown flag: --frobnicate"}},
		{"missing flag value", docker(dir, "--to"), []string{"--to", "needs an argument"}},
		{"positional argument", docker(dir, "extra"), []string{`unexpected argument "extra"`, "--name=value"}},
		{"positional after bool flag", docker(dir, "--no-cache", "true"), []string{`unexpected argument "true"`, "--name=value"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cmd, help, err := Parse(tc.args, &stderr)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded: %+v", tc.args, cmd.Options)
			}
			if help || cmd != nil && (cmd.Options.Mode != "" || cmd.Options.Spec.Output != "") {
				// Only the result files may come back, to report the error.
				t.Errorf("Parse returned a runnable command (%+v) or help (%v) with the error", cmd, help)
			}
			var u *failure.Usage
			if !errors.As(err, &u) {
				t.Fatalf("error %T %q is not a *failure.Usage", err, err)
			}
			if f := failure.As(err, ""); f.Reason != failure.InvalidInput || !f.Usage {
				t.Errorf("failure = %+v, want a usage failure with reason InvalidInput", f)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseDockerBuild(t *testing.T) {
	clearEnv(t)
	dir := sourceTree(t)
	res := t.TempDir()
	args := []string{
		"build", "--buildconfig=app", "--strategy=docker",
		"--source-dir=" + dir, "--context-dir=sub", "--dockerfile=build/Containerfile",
		"--from=registry.access.redhat.com/ubi9/ubi:latest", "--to=quay.io/org/app:v1",
		"--push-secret=push", "--pull-secret=pull",
		"--env=B=1", "--env", "A=2", "--env=B=3", "--env=C=",
		"--build-arg=V=1", "--build-arg=W=x=y",
		"--image-label=z.label=1", "--image-label=a.label=2", "--image-label", "io.openshift.tags=x,y", "--image-label=a.label=3",
		"--run-policy=Parallel", "--no-cache", "--force-pull", "--include-git",
		"--timeout=90500ms", "--start-timeout=5m",
		"--taskrun-name=tr", "--taskrun-uid=uid-1", "--build-name=b", "--buildrun-name=br",
		"-n", "team-a", "--commit=abc123", "--kubeconfig=/kc", "--insecure-registry",
		"--internal-registry=r1:5000,r2",
		"--result-file-image-digest=" + filepath.Join(res, "digest"),
		"--result-file-image-size=" + filepath.Join(res, "size"),
		"--result-file-commit-sha=" + filepath.Join(res, "commit"),
		"--result-file-error-reason=" + filepath.Join(res, "reason"),
		"--result-file-error-message=" + filepath.Join(res, "message"),
	}
	cmd, stderr := parse(t, args)
	if stderr != "" {
		t.Errorf("unexpected warnings: %s", stderr)
	}
	want := driver.Options{
		Mode:        driver.ModeBuild,
		Namespace:   "team-a",
		BuildConfig: "app",
		Owner:       buildconfig.Owner{Build: "b", BuildRun: "br", TaskRun: "tr", TaskRunUID: "uid-1"},
		Spec: buildconfig.Spec{
			Strategy:   buildconfig.Docker,
			Binary:     true,
			Dockerfile: "build/Containerfile",
			From:       "registry.access.redhat.com/ubi9/ubi:latest",
			Env:        []corev1.EnvVar{{Name: "B", Value: "3"}, {Name: "A", Value: "2"}, {Name: "C", Value: ""}},
			BuildArgs:  []corev1.EnvVar{{Name: "V", Value: "1"}, {Name: "W", Value: "x=y"}},
			NoCache:    true,
			ForcePull:  true,
			Output:     "quay.io/org/app:v1",
			PushSecret: "push",
			PullSecret: "pull",
			ImageLabels: []buildv1.ImageLabel{
				{Name: "a.label", Value: "3"}, {Name: "io.openshift.tags", Value: "x,y"}, {Name: "z.label", Value: "1"},
			},
			RunPolicy:                 buildv1.BuildRunPolicyParallel,
			CompletionDeadlineSeconds: 91,
		},
		SourceDir:    filepath.Join(dir, "sub"),
		SourceRoot:   dir,
		IncludeGit:   true,
		Commit:       "abc123",
		Timeout:      90500 * time.Millisecond,
		StartTimeout: 5 * time.Minute,
		Results: results.Files{
			results.ImageDigest:  filepath.Join(res, "digest"),
			results.ImageSize:    filepath.Join(res, "size"),
			results.CommitSha:    filepath.Join(res, "commit"),
			results.ErrorReason:  filepath.Join(res, "reason"),
			results.ErrorMessage: filepath.Join(res, "message"),
		},
	}
	if !reflect.DeepEqual(cmd.Options, want) {
		t.Errorf("Options =\n%+v\nwant\n%+v", cmd.Options, want)
	}
	if cmd.Kubeconfig != "/kc" || !cmd.Insecure || !reflect.DeepEqual(cmd.Internal, []string{"r1:5000", "r2"}) {
		t.Errorf("Command = kubeconfig %q insecure %v internal %v", cmd.Kubeconfig, cmd.Insecure, cmd.Internal)
	}
}

func TestParseDockerDefaults(t *testing.T) {
	clearEnv(t)
	dir := sourceTree(t)
	cmd, _ := parse(t, docker(dir))
	o := cmd.Options
	if o.SourceDir != dir || o.SourceRoot != dir {
		t.Errorf("SourceDir %q SourceRoot %q, want both %q", o.SourceDir, o.SourceRoot, dir)
	}
	s := o.Spec
	if s.Dockerfile != "" || s.From != "" || s.NoCache || s.ForcePull || s.ContextDir != "" || s.Env != nil || s.BuildArgs != nil || s.ImageLabels != nil {
		t.Errorf("unexpected spec values: %+v", s)
	}
	if s.RunPolicy != buildv1.BuildRunPolicySerial || s.CompletionDeadlineSeconds != 0 || !s.Binary {
		t.Errorf("RunPolicy %q deadline %d binary %v", s.RunPolicy, s.CompletionDeadlineSeconds, s.Binary)
	}
	if o.StartTimeout != 10*time.Minute || o.Timeout != 0 {
		t.Errorf("timeouts %v %v", o.Timeout, o.StartTimeout)
	}
	if len(o.Results) != 0 {
		t.Errorf("Results = %v, want none", o.Results)
	}
	if o.NoCache != nil || o.Incremental != nil || o.Env != nil || o.BuildArgs != nil {
		t.Errorf("start-mode overrides set in build mode: %+v", o)
	}
	if cmd.Kubeconfig != "" || cmd.Insecure || !reflect.DeepEqual(cmd.Internal, []string{DefaultInternalRegistry}) {
		t.Errorf("Command defaults: %+v", cmd)
	}

	// An explicit --source-root is kept; the context dir is what is uploaded.
	root := filepath.Dir(dir)
	cmd, _ = parse(t, docker(dir, "--source-root="+root, "--context-dir=./sub/"))
	if cmd.Options.SourceRoot != root || cmd.Options.SourceDir != filepath.Join(dir, "sub") {
		t.Errorf("SourceRoot %q SourceDir %q", cmd.Options.SourceRoot, cmd.Options.SourceDir)
	}
}

func TestParseSourceBuild(t *testing.T) {
	clearEnv(t)
	t.Setenv(EnvBuildName, "shp-build")
	args := []string{
		"build", "--strategy=source",
		"--git-url=git@github.com:org/repo.git", "--git-ref=main", "--source-secret=git-ssh",
		"--context-dir=services/api", "--commit=0123456789abcdef0123456789abcdef01234567",
		"--builder-image=registry.access.redhat.com/ubi9/python-311", "--incremental", "--scripts-url=https://example.com/s2i",
		"--to=image-registry.openshift-image-registry.svc:5000/team-a/api",
		"--env=PIP_INDEX_URL=https://pypi.example.com", "--run-policy=SerialLatestOnly", "--timeout=1h",
		"--image-label=io.k8s.display-name=api",
	}
	cmd, _ := parse(t, args)
	want := driver.Options{
		Mode:        driver.ModeBuild,
		BuildConfig: "shp-build",
		Owner:       buildconfig.Owner{Build: "shp-build"},
		Spec: buildconfig.Spec{
			Strategy:                  buildconfig.Source,
			GitURL:                    "git@github.com:org/repo.git",
			GitRef:                    "main",
			SourceSecret:              "git-ssh",
			ContextDir:                "services/api",
			From:                      "registry.access.redhat.com/ubi9/python-311",
			Env:                       []corev1.EnvVar{{Name: "PIP_INDEX_URL", Value: "https://pypi.example.com"}},
			Incremental:               true,
			ScriptsURL:                "https://example.com/s2i",
			Output:                    "image-registry.openshift-image-registry.svc:5000/team-a/api",
			ImageLabels:               []buildv1.ImageLabel{{Name: "io.k8s.display-name", Value: "api"}},
			RunPolicy:                 buildv1.BuildRunPolicySerialLatestOnly,
			CompletionDeadlineSeconds: 3600,
		},
		Commit:       "0123456789abcdef0123456789abcdef01234567",
		Timeout:      time.Hour,
		StartTimeout: 10 * time.Minute,
		Results:      results.Files{},
	}
	if !reflect.DeepEqual(cmd.Options, want) {
		t.Errorf("Options =\n%+v\nwant\n%+v", cmd.Options, want)
	}
}

func TestParseSourceBinaryBuild(t *testing.T) {
	clearEnv(t)
	dir := sourceTree(t)
	cmd, _ := parse(t, source(filepath.Join(dir, "empty"), "--incremental=false", "--no-cache=false"))
	s := cmd.Options.Spec
	if !s.Binary || s.Strategy != buildconfig.Source || s.From != "registry.access.redhat.com/ubi9/python-311" || s.Incremental || s.NoCache {
		t.Errorf("Spec = %+v", s)
	}
	if s.ContextDir != "" || cmd.Options.SourceDir != filepath.Join(dir, "empty") || cmd.Options.SourceRoot != filepath.Join(dir, "empty") {
		t.Errorf("ContextDir %q SourceDir %q SourceRoot %q", s.ContextDir, cmd.Options.SourceDir, cmd.Options.SourceRoot)
	}
}

func TestCompletionDeadlineRoundsUp(t *testing.T) {
	clearEnv(t)
	dir := sourceTree(t)
	for timeout, want := range map[string]int64{
		"0": 0, "1ns": 1, "999ms": 1, "1s": 1, "1001ms": 2, "1m30s": 90, "2h": 7200,
	} {
		cmd, _ := parse(t, docker(dir, "--timeout="+timeout))
		if got := cmd.Options.Spec.CompletionDeadlineSeconds; got != want {
			t.Errorf("--timeout=%s: CompletionDeadlineSeconds = %d, want %d", timeout, got, want)
		}
	}
}

func TestParseStart(t *testing.T) {
	clearEnv(t)
	dir := sourceTree(t)
	cmd, _ := parse(t, []string{
		"start", "--buildconfig=existing", "--commit=abc", "--env=A=1", "--env=A=2", "--build-arg=B=2",
		"--source-dir=" + dir, "--include-git", "--namespace=ns", "--taskrun-name=tr",
	})
	o := cmd.Options
	if o.Mode != driver.ModeStart || o.BuildConfig != "existing" || o.Commit != "abc" || o.Namespace != "ns" {
		t.Errorf("Options = %+v", o)
	}
	if !reflect.DeepEqual(o.Env, []corev1.EnvVar{{Name: "A", Value: "2"}}) || !reflect.DeepEqual(o.BuildArgs, []corev1.EnvVar{{Name: "B", Value: "2"}}) {
		t.Errorf("Env %v BuildArgs %v", o.Env, o.BuildArgs)
	}
	if o.SourceDir != dir || o.SourceRoot != dir || !o.IncludeGit {
		t.Errorf("SourceDir %q SourceRoot %q IncludeGit %v: start uploads --source-dir as given, searching git metadata no higher", o.SourceDir, o.SourceRoot, o.IncludeGit)
	}
	if o.NoCache != nil || o.Incremental != nil {
		t.Errorf("NoCache %v Incremental %v, want nil when the flags were not given", o.NoCache, o.Incremental)
	}
	if !reflect.DeepEqual(o.Spec, buildconfig.Spec{}) {
		t.Errorf("Spec = %+v, want empty in start mode", o.Spec)
	}
	if o.Owner != (buildconfig.Owner{TaskRun: "tr"}) {
		t.Errorf("Owner = %+v", o.Owner)
	}

	for _, tc := range []struct {
		args                   []string
		wantNoCache, wantIncre bool
	}{
		{args: []string{"--no-cache"}, wantNoCache: true},
		{args: []string{"--no-cache=false"}, wantNoCache: true},
		{args: []string{"--incremental"}, wantIncre: true},
		{args: []string{"--incremental=false", "--no-cache=true"}, wantNoCache: true, wantIncre: true},
	} {
		cmd, _ := parse(t, append([]string{"start", "--buildconfig=bc"}, tc.args...))
		o := cmd.Options
		if (o.NoCache != nil) != tc.wantNoCache || (o.Incremental != nil) != tc.wantIncre {
			t.Errorf("%q: NoCache set %v, Incremental set %v", tc.args, o.NoCache != nil, o.Incremental != nil)
			continue
		}
		for _, a := range tc.args {
			name, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			want := v != "false"
			p := o.NoCache
			if name == "incremental" {
				p = o.Incremental
			}
			if *p != want {
				t.Errorf("%q: --%s = %v, want %v", tc.args, name, *p, want)
			}
		}
	}
}

func TestArrayGroups(t *testing.T) {
	clearEnv(t)
	dir := sourceTree(t)

	t.Run("expands until the next flag", func(t *testing.T) {
		cmd, stderr := parse(t, []string{
			"build", "--buildconfig=app", "--strategy=docker", "--source-dir=" + dir,
			"--env-array", "A=1", "B=2", "--build-arg-array", "X=1", "Y=--not-a-flag", "--image-label-array", "l.b=2", "l.a=1",
			"--to", "quay.io/org/app:v1",
		})
		o := cmd.Options
		if !reflect.DeepEqual(o.Spec.Env, []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}}) {
			t.Errorf("Env = %v", o.Spec.Env)
		}
		if !reflect.DeepEqual(o.Spec.BuildArgs, []corev1.EnvVar{{Name: "X", Value: "1"}, {Name: "Y", Value: "--not-a-flag"}}) {
			t.Errorf("BuildArgs = %v", o.Spec.BuildArgs)
		}
		if !reflect.DeepEqual(o.Spec.ImageLabels, []buildv1.ImageLabel{{Name: "l.a", Value: "1"}, {Name: "l.b", Value: "2"}}) {
			t.Errorf("ImageLabels = %v", o.Spec.ImageLabels)
		}
		if o.Spec.Output != "quay.io/org/app:v1" || stderr != "" {
			t.Errorf("Output %q, stderr %q", o.Spec.Output, stderr)
		}
	})
	t.Run("mixes with single flags, last wins", func(t *testing.T) {
		cmd, _ := parse(t, docker(dir, "--env=A=0", "--env-array", "A=1", "B=2", "--env=B=3"))
		if !reflect.DeepEqual(cmd.Options.Spec.Env, []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "3"}}) {
			t.Errorf("Env = %v", cmd.Options.Spec.Env)
		}
	})
	t.Run("empty arrays", func(t *testing.T) {
		cmd, stderr := parse(t, append(docker(dir, "--env-array", "--build-arg-array", "--image-label-array"), "--env-array"))
		s := cmd.Options.Spec
		if s.Env != nil || s.BuildArgs != nil || s.ImageLabels != nil || stderr != "" {
			t.Errorf("Env %v BuildArgs %v Labels %v stderr %q", s.Env, s.BuildArgs, s.ImageLabels, stderr)
		}
	})
	t.Run("start mode", func(t *testing.T) {
		cmd, _ := parse(t, []string{"start", "--buildconfig=bc", "--env-array", "A=1", "--build-arg-array", "B=2"})
		if len(cmd.Options.Env) != 1 || len(cmd.Options.BuildArgs) != 1 {
			t.Errorf("Env %v BuildArgs %v", cmd.Options.Env, cmd.Options.BuildArgs)
		}
	})
	t.Run("unsubstituted items are dropped with a warning", func(t *testing.T) {
		cmd, stderr := parse(t, docker(dir, "--env-array", "$(params.env[*])", "A=1", "--build-arg-array", "$(params.build-args[*])"))
		if !reflect.DeepEqual(cmd.Options.Spec.Env, []corev1.EnvVar{{Name: "A", Value: "1"}}) || cmd.Options.Spec.BuildArgs != nil {
			t.Errorf("Env %v BuildArgs %v", cmd.Options.Spec.Env, cmd.Options.Spec.BuildArgs)
		}
		for _, w := range []string{
			`ocbuild: warning: ignoring --env-array value "$(params.env[*])": Tekton did not substitute it`,
			`ignoring --build-arg-array value "$(params.build-args[*])"`,
		} {
			if !strings.Contains(stderr, w) {
				t.Errorf("stderr %q does not contain %q", stderr, w)
			}
		}
	})
}

func TestUnsubstitutedFlagsDropped(t *testing.T) {
	clearEnv(t)
	dir := sourceTree(t)
	res := t.TempDir()

	t.Run("--no-cache=$(params.no-cache)", func(t *testing.T) {
		cmd, stderr := parse(t, docker(dir, "--no-cache=$(params.no-cache)"))
		if cmd.Options.Spec.NoCache {
			t.Error("NoCache set from an unsubstituted value")
		}
		if !strings.Contains(stderr, "warning: ignoring --no-cache=$(params.no-cache): Tekton did not substitute it") {
			t.Errorf("stderr = %q", stderr)
		}
	})
	t.Run("separate unsubstituted value", func(t *testing.T) {
		cmd, stderr := parse(t, docker(dir,
			"--result-file-error-reason="+filepath.Join(res, "reason"),
			"--result-file-commit-sha", "$(results.shp-source-default-commit-sha.path)"))
		if _, ok := cmd.Options.Results[results.CommitSha]; ok {
			t.Errorf("Results = %v holds the commit result", cmd.Options.Results)
		}
		if !strings.Contains(stderr, "ignoring --result-file-commit-sha $(results.shp-source-default-commit-sha.path)") {
			t.Errorf("stderr = %q", stderr)
		}
		if err := cmd.Options.Results.Write(results.CommitSha, "abc"); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Options.Results.Write(results.ErrorReason, "X"); err != nil {
			t.Fatal(err)
		}
		entries, _ := os.ReadDir(res)
		if len(entries) != 1 || entries[0].Name() != "reason" {
			t.Errorf("files written: %v, want only reason", entries)
		}
		if _, err := os.Stat("$(results.shp-source-default-commit-sha.path)"); err == nil {
			t.Error("a file named after the Tekton variable was written")
		}
	})
	t.Run("= form", func(t *testing.T) {
		cmd, stderr := parse(t, docker(dir, "--result-file-commit-sha=$(results.shp-source-default-commit-sha.path)"))
		if len(cmd.Options.Results) != 0 || !strings.Contains(stderr, "ignoring --result-file-commit-sha=$(results.") {
			t.Errorf("Results %v stderr %q", cmd.Options.Results, stderr)
		}
	})
	t.Run("a boolean flag before an unsubstituted flag is kept", func(t *testing.T) {
		for _, tail := range [][]string{
			{"--result-file-commit-sha=$(results.shp-source-default-commit-sha.path)"},
			{"--result-file-commit-sha", "$(results.shp-source-default-commit-sha.path)"},
		} {
			args := append(docker(dir, "--force-pull", "--include-git", "--no-cache"), tail...)
			cmd, stderr := parse(t, args)
			s := cmd.Options.Spec
			if !s.ForcePull || !s.NoCache || !cmd.Options.IncludeGit {
				t.Errorf("%q: ForcePull %v NoCache %v IncludeGit %v, want all true", tail, s.ForcePull, s.NoCache, cmd.Options.IncludeGit)
			}
			if strings.Contains(stderr, "--no-cache") {
				t.Errorf("%q: warning names --no-cache: %q", tail, stderr)
			}
		}
	})
	t.Run("substituted values are untouched", func(t *testing.T) {
		cmd, stderr := parse(t, docker(dir, "--env=HOME=$(pwd)", "--env", "X=$HOME"))
		if !reflect.DeepEqual(cmd.Options.Spec.Env, []corev1.EnvVar{{Name: "HOME", Value: "$(pwd)"}, {Name: "X", Value: "$HOME"}}) || stderr != "" {
			t.Errorf("Env %v stderr %q", cmd.Options.Spec.Env, stderr)
		}
	})
}

func TestPreprocess(t *testing.T) {
	var warnings []string
	got := preprocess([]string{
		"--env-array", "A=1", "$(params.x[*])", "-n", "--to=x", "--no-cache=$(params.nc)",
		"--commit", "$(params.rev)", "--force-pull", "--image-label-array",
	}, func(s string) { warnings = append(warnings, s) }, nil, &validate.Errors{}, driver.ModeBuild)
	want := []string{"--env=A=1", "--env=-n", "--to=x", "--force-pull"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("preprocess = %q, want %q", got, want)
	}
	if len(warnings) != 3 {
		t.Errorf("warnings = %q, want 3", warnings)
	}
}

func TestEnvDefaults(t *testing.T) {
	dir := sourceTree(t)
	t.Setenv(EnvBuildName, "shp-app")
	t.Setenv(EnvBuildRunName, "shp-app-run-x7")
	args := []string{"build", "--strategy=docker", "--source-dir=" + dir, "--to=quay.io/o/a"}

	cmd, _ := parse(t, args)
	o := cmd.Options
	if o.BuildConfig != "shp-app" || o.Owner.Build != "shp-app" || o.Owner.BuildRun != "shp-app-run-x7" {
		t.Errorf("from env: BuildConfig %q Owner %+v", o.BuildConfig, o.Owner)
	}

	cmd, _ = parse(t, append(args, "--build-name=other", "--buildrun-name=run2"))
	o = cmd.Options
	if o.BuildConfig != "other" || o.Owner.Build != "other" || o.Owner.BuildRun != "run2" {
		t.Errorf("flags override env: BuildConfig %q Owner %+v", o.BuildConfig, o.Owner)
	}

	cmd, _ = parse(t, append(args, "--buildconfig=explicit"))
	if cmd.Options.BuildConfig != "explicit" || cmd.Options.Owner.Build != "shp-app" {
		t.Errorf("--buildconfig: BuildConfig %q Owner %+v", cmd.Options.BuildConfig, cmd.Options.Owner)
	}

	cmd, _ = parse(t, []string{"start", "--buildconfig=bc"})
	if cmd.Options.Owner.Build != "shp-app" || cmd.Options.Owner.BuildRun != "shp-app-run-x7" {
		t.Errorf("start: Owner %+v", cmd.Options.Owner)
	}

	// The environment is read each time flags are created.
	t.Setenv(EnvBuildName, "")
	var stderr bytes.Buffer
	if _, _, err := Parse(args, &stderr); err == nil || !strings.Contains(err.Error(), "--buildconfig") {
		t.Errorf("without env or flags: err = %v, want a --buildconfig usage error", err)
	}
}

func TestMainUsageErrors(t *testing.T) {
	clearEnv(t)
	dir := sourceTree(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{docker(dir, "--to=quay.io/Org/App"), `ocbuild: --to "quay.io/Org/App": not a valid Docker pull specification`},
		{docker(dir, "--env=NOPE"), `ocbuild: --env "NOPE": expected NAME=VALUE`},
		{[]string{"start", "--to", "x"}, "ocbuild: ocbuild start: unknown flag: --to"},
		{[]string{"start"}, "ocbuild: --buildconfig: name the existing BuildConfig to run"},
		{nil, "ocbuild: a subcommand is required"},
		{[]string{"bogus"}, `ocbuild: unknown subcommand "bogus"`},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(context.Background(), tc.args, &stdout, &stderr, "v1.2.3")
		if code != ExitUsage {
			t.Errorf("%q: exit %d, want %d", tc.args, code, ExitUsage)
		}
		if !strings.HasPrefix(stderr.String(), tc.want) {
			t.Errorf("%q: stderr = %q, want prefix %q", tc.args, stderr.String(), tc.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: stdout = %q", tc.args, stdout.String())
		}
	}
}

func TestMainVersion(t *testing.T) {
	for _, arg := range []string{"--version", "version"} {
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), []string{arg}, &stdout, &stderr, "v1.2.3"); code != ExitOK {
			t.Errorf("%s: exit %d", arg, code)
		}
		if stdout.String() != "ocbuild v1.2.3\n" || stderr.Len() != 0 {
			t.Errorf("%s: stdout %q stderr %q", arg, stdout.String(), stderr.String())
		}
	}
}

func TestMainHelp(t *testing.T) {
	clearEnv(t)
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"build", "--help"}, {"start", "-h"}, {"build", "--strategy=docker", "--help"}} {
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), args, &stdout, &stderr, "v"); code != ExitOK {
			t.Errorf("%q: exit %d, want 0", args, code)
		}
		if stdout.String() != Usage() {
			t.Errorf("%q: stdout is not the usage text", args)
		}
	}

	usage := Usage()
	buildPart, startPart, ok := strings.Cut(usage, "Flags of ocbuild start:")
	if !ok || !strings.Contains(buildPart, "Flags of ocbuild build:") {
		t.Fatalf("usage lacks the per-subcommand sections:\n%s", usage)
	}
	_, buildPart, _ = strings.Cut(buildPart, "Flags of ocbuild build:")
	for mode, part := range map[string]string{driver.ModeBuild: buildPart, driver.ModeStart: startPart} {
		n := 0
		newFlagSet(mode, &flags{}, io.Discard).VisitAll(func(f *pflag.Flag) {
			n++
			if !strings.Contains(part, "--"+f.Name+" ") {
				t.Errorf("help for ocbuild %s does not list --%s", mode, f.Name)
			}
		})
		if n < 20 {
			t.Errorf("ocbuild %s has only %d flags", mode, n)
		}
	}
	// Spot checks independent of the flag set.
	for _, f := range []string{"--strategy", "--source-dir", "--git-url", "--to", "--builder-image", "--dockerfile", "--timeout", "--result-file-error-message"} {
		if !strings.Contains(buildPart, f+" ") {
			t.Errorf("build help lacks %s", f)
		}
	}
	for _, f := range []string{"--buildconfig", "--commit", "--env", "--build-arg", "--no-cache", "--incremental", "--source-dir"} {
		if !strings.Contains(startPart, f+" ") {
			t.Errorf("start help lacks %s", f)
		}
	}
	for _, f := range []string{"--strategy ", "--to ", "--git-url "} {
		if strings.Contains(startPart, f) {
			t.Errorf("start help lists the build-only flag %s", f)
		}
	}
	for _, f := range []string{"--env-array", "--build-arg-array", "--image-label-array", "Exit codes"} {
		if !strings.Contains(usage, f) {
			t.Errorf("usage lacks %s", f)
		}
	}
	if !strings.Contains(usage, "-n, --namespace") {
		t.Error("usage lacks the -n shorthand")
	}
}

// A kubeconfig that cannot be loaded fails before the cluster is touched,
// with exit code 2 and the reason in the result files.
func TestMainBadKubeconfig(t *testing.T) {
	clearEnv(t)
	dir := sourceTree(t)
	res := t.TempDir()
	args := docker(dir,
		"--kubeconfig="+filepath.Join(res, "missing-kubeconfig"), "--namespace=ns",
		"--result-file-error-reason="+filepath.Join(res, "reason"),
		"--result-file-error-message="+filepath.Join(res, "message"),
		"--result-file-image-digest="+filepath.Join(res, "digest"))
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), args, &stdout, &stderr, "v9"); code != ExitUsage {
		t.Errorf("exit %d, want %d", code, ExitUsage)
	}
	if !strings.HasPrefix(stderr.String(), "ocbuild v9\n") || !strings.Contains(stderr.String(), "ocbuild: InvalidInput: cannot load the API server configuration (--kubeconfig)") {
		t.Errorf("stderr = %q", stderr.String())
	}
	if b, _ := os.ReadFile(filepath.Join(res, "reason")); string(b) != failure.InvalidInput {
		t.Errorf("reason = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(res, "message")); !strings.Contains(string(b), "--kubeconfig") || !strings.Contains(string(b), "missing-kubeconfig") {
		t.Errorf("message = %q", b)
	}
	if _, err := os.Stat(filepath.Join(res, "digest")); err == nil {
		t.Error("a digest was written for a failed run")
	}
}
