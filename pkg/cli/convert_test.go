package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	old := convertStdin
	convertStdin = strings.NewReader(stdin)
	defer func() { convertStdin = old }()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb, "test")
	return code, out.String(), errb.String()
}

const dockerBC = `apiVersion: build.openshift.io/v1
kind: BuildConfig
metadata: {name: app, namespace: ns}
spec:
  source: {git: {uri: https://example.com/app.git}}
  strategy: {dockerStrategy: {}}
  output: {to: {kind: DockerImage, name: quay.io/ns/app:latest}}
`

// Usage errors exit 2 with a message naming the flag, and write nothing.
func TestConvertUsageErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bc.yaml")
	if err := os.WriteFile(file, []byte(dockerBC), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"convert"}, "no input"},
		{[]string{"convert", "--bogus", file}, "unknown flag: --bogus"},
		{[]string{"convert", "-o", file, file}, `--output "` + file + `": not a directory`},
		{[]string{"convert", "--output=", file}, "--output: name a directory"},
		{[]string{"convert", "--strategy=docker", file}, "--strategy \"docker\": must be one of auto, buildconfig"},
		{[]string{"convert", "-A", file}, "--all-namespaces: applies only with --from-cluster"},
		{[]string{"convert", "--from-cluster", file}, "--from-cluster: reads the cluster"},
		{[]string{"convert", "--registry=https://r.example.com", file}, "--registry \"https://r.example.com\": a registry host, without a scheme"},
		{[]string{"convert", "-n", "Bad_NS", file}, `--namespace "Bad_NS": not a valid namespace`},
		{[]string{"convert", filepath.Join(t.TempDir(), "missing.yaml")}, "missing.yaml: no such file"},
		{[]string{"convert", "-", "-"}, "stdin) given more than once"},
	} {
		code, stdout, stderr := runCLI(t, dockerBC, c.args...)
		if code != ExitUsage || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.args, code, stdout, stderr, c.want)
		}
	}
}

func TestConvertStdinAndHelp(t *testing.T) {
	code, stdout, stderr := runCLI(t, dockerBC, "convert", "-")
	if code != ExitOK || !strings.Contains(stdout, "name: openshift-docker") || !strings.Contains(stderr, "BuildConfig ns/app (stdin#0) -> Build ns/app") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, "", "convert", "--help")
	if code != ExitOK || stdout != ConvertUsage() {
		t.Errorf("convert --help: exit %d, stdout %q", code, stdout)
	}
	if !strings.Contains(Usage(), "ocbuild convert") {
		t.Error("ocbuild --help does not list ocbuild convert")
	}
}

// -o writes one <namespace>-<name>.yaml per BuildConfig, BuildConfig,
// Build and BuildRun together, and nothing to stdout.
func TestConvertOutputDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	in := dockerBC + "---\n" + strings.ReplaceAll(strings.ReplaceAll(dockerBC, "name: app", "name: other"), "dockerStrategy: {}", "dockerStrategy: {volumes: [{name: v, source: {type: Secret, secret: {secretName: s}}, mounts: [{destinationPath: /v}]}]}")
	code, stdout, stderr := runCLI(t, in, "convert", "--buildrun", "-o", dir, "-")
	if code != ExitOK || stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	app, err := os.ReadFile(filepath.Join(dir, "ns-app.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if s := string(app); strings.Count(s, "\n---\n") != 1 || !strings.Contains(s, "kind: Build\n") || !strings.Contains(s, "kind: BuildRun\n") || strings.Contains(s, "kind: BuildConfig\n") {
		t.Errorf("ns-app.yaml:\n%s", s)
	}
	other, err := os.ReadFile(filepath.Join(dir, "ns-other.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if s := string(other); strings.Count(s, "\n---\n") != 2 || !strings.Contains(s, "kind: BuildConfig\n") || !strings.Contains(s, "name: openshift-buildconfig") {
		t.Errorf("ns-other.yaml (volumes: runs the BuildConfig, written first):\n%s", s)
	}
	if !strings.Contains(stderr, "wrote "+filepath.Join(dir, "ns-app.yaml")) {
		t.Errorf("stderr does not list the files written:\n%s", stderr)
	}
	// The same BuildConfig twice: the second is not written over the first.
	code, _, stderr = runCLI(t, dockerBC+"---\n"+dockerBC, "convert", "-o", t.TempDir(), "-")
	if code != ExitFailed || !strings.Contains(stderr, "ns-app.yaml holds BuildConfig ns/app (stdin#0) already") {
		t.Errorf("duplicate: exit %d, stderr:\n%s", code, stderr)
	}
}

// The README documents every flag of ocbuild convert.
func TestReadmeListsConvertFlags(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	newConvertFlagSet(&convertFlags{}, io.Discard).VisitAll(func(f *pflag.Flag) {
		if !strings.Contains(string(readme), "--"+f.Name) {
			t.Errorf("README.md does not document ocbuild convert --%s", f.Name)
		}
	})
}

// The README's convert help block is the help text, verbatim.
func TestReadmeShowsConvertUsage(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```text\n"+ConvertUsage()+"```\n") {
		t.Error("README.md's convert ```text block is not the output of ocbuild convert --help; paste it again")
	}
}
