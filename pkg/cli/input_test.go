package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ocbuild/ocbuild/pkg/buildconfig"
	"github.com/ocbuild/ocbuild/pkg/failure"
	"github.com/ocbuild/ocbuild/pkg/results"
)

// shipwrightTree returns a source root under a long path (longer than the
// 80 characters values used to be cut at) holding Dockerfile, app/Dockerfile, a file "notadir", a link
// "inside" to app and a link "escape" to a directory outside the root.
func shipwrightTree(t *testing.T) (root, outside string) {
	t.Helper()
	base := filepath.Join(t.TempDir(), strings.Repeat("long-directory-name/", 5))
	root = filepath.Join(base, "workspace", "source")
	outside = filepath.Join(base, "workspace", "x")
	for _, d := range []string{filepath.Join(root, "app"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(root, "Dockerfile"), filepath.Join(root, "app", "Dockerfile"), filepath.Join(root, "notadir"), filepath.Join(outside, "Dockerfile")} {
		if err := os.WriteFile(f, []byte("FROM scratch\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("app", filepath.Join(root, "inside")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	return root, outside
}

// shipwright is how the strategies call ocbuild: --source-dir is
// $(params.shp-source-context), the root joined with spec.source.contextDir.
func shipwright(root, contextDir string, extra ...string) []string {
	return append([]string{"build", "--buildconfig=app", "--strategy=docker", "--to=quay.io/org/app:v1",
		"--source-dir=" + filepath.Join(root, contextDir), "--source-root=" + root}, extra...)
}

func TestShipwrightContextDir(t *testing.T) {
	clearEnv(t)
	root, _ := shipwrightTree(t)
	for _, tc := range []struct {
		name, contextDir string
		start            bool
		want             []string
	}{
		{"escapes the source", "../x", false, []string{
			`--source-dir "` + filepath.Join(root, "../x") + `": outside --source-root "` + root + `"`,
			`the Shipwright Build's spec.source.contextDir "../x" escapes the source`, "inside the repository"}},
		{"escapes to a missing directory", "../../nowhere", false, []string{`spec.source.contextDir "../../nowhere" escapes the source`}},
		{"escapes in start", "../x", true, []string{`spec.source.contextDir "../x" escapes the source`}},
		{"does not exist", "app2", false, []string{
			`--source-dir "` + filepath.Join(root, "app2") + `"`,
			`the Shipwright Build's spec.source.contextDir "app2" does not exist in the source`, `--source-root "` + root + `"`}},
		{"nested, does not exist", "services/api", false, []string{`spec.source.contextDir "services/api" does not exist in the source`}},
		{"a file", "notadir", false, []string{`spec.source.contextDir "notadir" is a file in the source, not a directory`}},
		{"a symlink out of the source", "escape", false, []string{
			`spec.source.contextDir "escape" leads out of the source through a symlink`, "never follows links out of the source tree"}},
		{"a symlink out of the source in start", "escape", true, []string{`spec.source.contextDir "escape" leads out of the source through a symlink`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := shipwright(root, tc.contextDir)
			if tc.start {
				args = []string{"start", "--buildconfig=bc", "--source-dir=" + filepath.Join(root, tc.contextDir), "--source-root=" + root}
			}
			res := t.TempDir()
			args = append(args, "--result-file-error-reason="+filepath.Join(res, "reason"), "--result-file-error-message="+filepath.Join(res, "message"))
			var stdout, stderr bytes.Buffer
			if code := Main(context.Background(), args, &stdout, &stderr, "v"); code != ExitUsage {
				t.Fatalf("exit %d, want %d; stderr %s", code, ExitUsage, stderr.String())
			}
			msg, _ := os.ReadFile(filepath.Join(res, "message"))
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q does not contain %q", stderr.String(), w)
				}
				if !strings.Contains(string(msg), w) {
					t.Errorf("message result %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(stderr.String(), "...") {
				t.Errorf("stderr %q shortens a value", stderr.String())
			}
			if reason, _ := os.ReadFile(filepath.Join(res, "reason")); string(reason) != failure.InvalidInput {
				t.Errorf("reason %q, want %s", reason, failure.InvalidInput)
			}
		})
	}

	// Inside the root, also through a link that stays inside: accepted.
	for _, c := range []string{"", "app", "inside", "app/../app"} {
		cmd, _ := parse(t, shipwright(root, c))
		if cmd.Options.SourceRoot != root || cmd.Options.SourceDir != filepath.Join(root, c) {
			t.Errorf("contextDir %q: SourceDir %q SourceRoot %q", c, cmd.Options.SourceDir, cmd.Options.SourceRoot)
		}
	}
}

// Every bad flag is reported, one a line, not only the first.
func TestAllErrorsReported(t *testing.T) {
	clearEnv(t)
	dir := sourceTree(t)
	res := t.TempDir()
	args := []string{"build", "--buildconfig=My_App", "--strategy=docker", "--source-dir=" + dir,
		"--to=quay.io/a-/b", "--from=127.0.0.1:5000/a-/b:tag", "--env=1BAD=x", "--env=GOOD=1", "--build-arg=NOEQUALS",
		"--image-label=bad name=x", "--run-policy=Sometimes", "--timeout=10", "--frobnicate", "value", "--push-secret=Push_Secret",
		"--dockerfile=../Dockerfile", "--start-timeout=0",
		"--result-file-error-message=" + filepath.Join(res, "message")}
	want := []string{
		`--timeout "10": not a duration`,
		"ocbuild build: unknown flag: --frobnicate (see ocbuild --help)",
		`--start-timeout "0s": must be positive`,
		`--env "1BAD=x": invalid name "1BAD"`,
		`--build-arg "NOEQUALS": expected NAME=VALUE`,
		`--buildconfig "My_App": not a valid name`,
		`--to "quay.io/a-/b": not a valid Docker pull specification: invalid reference format`,
		`--push-secret "Push_Secret": not a valid name`,
		`--run-policy "Sometimes"`,
		`--image-label "bad name=x"`,
		`--dockerfile "../Dockerfile": dockerfilePath must be a relative path within your source location`,
		`--from "127.0.0.1:5000/a-/b:tag": not a valid Docker pull specification`,
	}
	var stderr, stdout bytes.Buffer
	if code := Main(context.Background(), args, &stdout, &stderr, "v"); code != ExitUsage {
		t.Fatalf("exit %d, want %d", code, ExitUsage)
	}
	lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Errorf("%d lines, want %d:\n%s", len(lines), len(want), stderr.String())
	}
	for i, w := range want {
		if i < len(lines) && !strings.HasPrefix(lines[i], "ocbuild: "+w) {
			t.Errorf("line %d = %q, want prefix %q", i+1, lines[i], "ocbuild: "+w)
		}
	}
	// The message result (at most 1 KiB) holds them too, as many as fit.
	msg, _ := os.ReadFile(filepath.Join(res, "message"))
	for _, w := range want[:6] {
		if !strings.Contains(string(msg), w) {
			t.Errorf("message result lacks %q:\n%s", w, msg)
		}
	}
}

func TestHelpListsArrayFlags(t *testing.T) {
	usage := Usage()
	buildPart, startPart, _ := strings.Cut(usage, "Flags of ocbuild start:")
	for _, f := range []string{"--env-array", "--build-arg-array", "--image-label-array"} {
		if !strings.Contains(buildPart, "      "+f+" NAME=VALUE...") {
			t.Errorf("build flags do not list %s:\n%s", f, buildPart)
		}
	}
	for _, f := range []string{"--env-array", "--build-arg-array"} {
		if !strings.Contains(startPart, "      "+f+" NAME=VALUE...") {
			t.Errorf("start flags do not list %s", f)
		}
	}
	if strings.Contains(startPart, "--image-label-array") {
		t.Error("start flags list --image-label-array, which start does not take")
	}
	// Aligned with pflag's usage column.
	for _, line := range strings.Split(usage, "\n") {
		if strings.HasPrefix(line, "      --env-array") {
			if i, j := strings.Index(line, "--env for each"), strings.Index(usage, "kubeconfig file"); i < 0 || i != j-strings.LastIndex(usage[:j], "\n")-1 {
				t.Errorf("array flag line not aligned: %q", line)
			}
		}
	}
}

// A Shipwright Build name may have 253 characters; label values only 63.
func TestLongBuildName(t *testing.T) {
	clearEnv(t)
	dir := sourceTree(t)
	for _, n := range []int{63, 64, 70, 242, 243, 253} {
		name := strings.Repeat("a", n-2) + "-b"
		run := strings.Repeat("r", n-5) + "-run1"
		cmd, _ := parse(t, []string{"build", "--build-name=" + name, "--buildrun-name=" + run,
			"--taskrun-name=" + strings.Repeat("t", n), "--strategy=docker", "--source-dir=" + dir, "--to=quay.io/o/a"})
		o := cmd.Options
		if o.Owner.Build != name || o.Owner.BuildRun != run {
			t.Errorf("%d chars: Owner %+v does not keep the names", n, o.Owner)
		}
		if n <= buildconfig.MaxBuildConfigName && o.BuildConfig != name {
			t.Errorf("%d chars: BuildConfig %q, want the Build name", n, o.BuildConfig)
		}
		for _, b := range []string{o.BuildConfig, o.BuildConfig + "-1", o.BuildConfig + "-4294967295"} {
			if errs := validation.IsDNS1123Subdomain(b); len(errs) > 0 {
				t.Errorf("%d chars: %q is not a valid name: %v", n, b, errs)
			}
		}
		for k, v := range o.Owner.Labels() {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Errorf("%d chars: label %s=%q: %v", n, k, v, errs)
			}
		}
	}
}

// Without a kubeconfig and outside a pod, ocbuild says so in its own words.
func TestMainNoCluster(t *testing.T) {
	clearEnv(t)
	dir := sourceTree(t)
	res := t.TempDir()
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	t.Setenv("HOME", t.TempDir())
	for _, tc := range []struct {
		kubeconfigEnv string
		want          string
	}{
		{"", "ocbuild: InvalidInput: no cluster to talk to: not running in a pod (KUBERNETES_SERVICE_HOST unset) and no kubeconfig (set KUBECONFIG or --kubeconfig)\n"},
		{filepath.Join(res, "missing"), `no cluster to talk to: KUBECONFIG="` + filepath.Join(res, "missing") + `" names no kubeconfig file`},
	} {
		t.Setenv("KUBECONFIG", tc.kubeconfigEnv)
		args := docker(dir, "--namespace=ns", "--result-file-error-reason="+filepath.Join(res, "reason"), "--result-file-error-message="+filepath.Join(res, "message"))
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), args, &stdout, &stderr, "v9"); code != ExitUsage {
			t.Errorf("exit %d, want %d", code, ExitUsage)
		}
		if !strings.Contains(stderr.String(), tc.want) || strings.Contains(stderr.String(), "KUBERNETES_MASTER") {
			t.Errorf("stderr = %q, want %q", stderr.String(), tc.want)
		}
		if b, _ := os.ReadFile(filepath.Join(res, "reason")); string(b) != failure.InvalidInput {
			t.Errorf("reason = %q", b)
		}
		if b, _ := os.ReadFile(filepath.Join(res, "message")); !strings.HasPrefix(string(b), "no cluster to talk to: ") {
			t.Errorf("message = %q", b)
		}
	}
	_ = results.ErrorReason
}
