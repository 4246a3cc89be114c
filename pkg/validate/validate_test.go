package validate_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ocbuild/ocbuild/pkg/failure"
	"github.com/ocbuild/ocbuild/pkg/validate"
)

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// checkUsage asserts err is a usage error (exit code 2, reason InvalidInput)
// whose message starts with the flag and contains every want.
func checkUsage(t *testing.T, err error, flag string, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want a usage error about --%s", flag)
	}
	var u *failure.Usage
	if !errors.As(err, &u) {
		t.Fatalf("error %T %q is not a *failure.Usage", err, err)
	}
	if !failure.IsUsage(err) {
		t.Errorf("IsUsage(%q) = false", err)
	}
	if got := failure.As(err, "Other").Reason; got != failure.InvalidInput {
		t.Errorf("reason = %q, want %q", got, failure.InvalidInput)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "--"+flag) {
		t.Errorf("message %q does not start with --%s", msg, flag)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q does not contain %q", msg, w)
		}
	}
}

func TestImageReference(t *testing.T) {
	valid := []string{
		"ubuntu",
		"ubuntu:22.04",
		"python:3.11",
		"library/ubuntu",
		"docker.io/library/ubuntu:22.04",
		"quay.io/org/app",
		"quay.io/org/app:v1",
		"quay.io/org/sub/app:v1.2.3-rc_1",
		"localhost:5000/app",
		"localhost:5000/app:v1",
		"image-registry.openshift-image-registry.svc:5000/ns/app",
		"image-registry.openshift-image-registry.svc:5000/ns/app:latest",
		"nginx@" + digest,
		"quay.io/org/app@" + digest,
		"quay.io/org/app:v1@" + digest,
	}
	for _, v := range valid {
		if err := validate.ImageReference("to", v); err != nil {
			t.Errorf("ImageReference(%q) = %v, want nil", v, err)
		}
	}

	invalid := []struct {
		value string
		want  []string
	}{
		{"", []string{"an image reference is required"}},
		{" quay.io/org/app:v1", []string{"remove the surrounding spaces"}},
		{"quay.io/org/app:v1 ", []string{"remove the surrounding spaces"}},
		{"quay.io/Org/App", []string{"not a valid Docker pull specification", "lower case"}},
		{"app:", []string{"not a valid Docker pull specification"}},
		{"quay.io/org/app:v1:v2", []string{"not a valid Docker pull specification"}},
		{"quay.io/org/app@sha256:abc", []string{"not a valid Docker pull specification"}},
		{"quay.io/org/app@" + digest[:20], []string{"not a valid Docker pull specification"}},
		{"my app", []string{"not a valid Docker pull specification"}},
		{"https://quay.io/org/app", []string{"not a valid Docker pull specification", "without a scheme"}},
		{"quay.io//app:v1", []string{"empty path component"}},
		{"quay.io/org/app/", []string{"empty path component"}},
		{"/app", []string{"empty path component"}},
	}
	for _, tc := range invalid {
		t.Run(tc.value, func(t *testing.T) {
			err := validate.ImageReference("from", tc.value)
			checkUsage(t, err, "from", tc.want...)
			if tc.value != "" && !strings.Contains(err.Error(), `"`+tc.value+`"`) {
				t.Errorf("message %q does not quote the value", err)
			}
		})
	}
}

func TestKeyValue(t *testing.T) {
	ok := []struct{ in, k, v string }{
		{"A=1", "A", "1"},
		{"A=", "A", ""},
		{"A=b=c", "A", "b=c"},
		{"A= spaced value ", "A", " spaced value "},
		{"my.var-name_2=x", "my.var-name_2", "x"},
		{"_X=$(HOME)", "_X", "$(HOME)"},
	}
	for _, tc := range ok {
		k, v, err := validate.KeyValue("env", tc.in)
		if err != nil || k != tc.k || v != tc.v {
			t.Errorf("KeyValue(%q) = %q, %q, %v; want %q, %q, nil", tc.in, k, v, err, tc.k, tc.v)
		}
	}
	bad := []struct {
		in   string
		want string
	}{
		{"A", "expected NAME=VALUE (an = is missing); to pass an empty value write NAME="},
		{"", "an = is missing"},
		{"=1", "the name before = is empty"},
		{"1A=x", `invalid name "1A"`},
		{"A B=x", `invalid name "A B"`},
		{"A$=x", `invalid name "A$"`},
	}
	for _, tc := range bad {
		t.Run(tc.in, func(t *testing.T) {
			k, v, err := validate.KeyValue("build-arg", tc.in)
			checkUsage(t, err, "build-arg", tc.want)
			if k != "" || v != "" {
				t.Errorf("got %q, %q with the error", k, v)
			}
		})
	}
}

func TestLabel(t *testing.T) {
	ok := []struct{ in, k, v string }{
		{"io.openshift.tags=a,b", "io.openshift.tags", "a,b"},
		{"example.com/owner=me", "example.com/owner", "me"},
		{"version=", "version", ""},
		{"a=b=c", "a", "b=c"},
	}
	for _, tc := range ok {
		k, v, err := validate.Label("image-label", tc.in)
		if err != nil || k != tc.k || v != tc.v {
			t.Errorf("Label(%q) = %q, %q, %v; want %q, %q, nil", tc.in, k, v, err, tc.k, tc.v)
		}
	}
	bad := []struct{ in, want string }{
		{"version", "expected NAME=VALUE (an = is missing)"},
		{"=x", "the label name before = is empty"},
		{"bad name=x", `invalid label name "bad name"`},
		{"-lead=x", `invalid label name "-lead"`},
		{"a/b/c=x", `invalid label name "a/b/c"`},
		{strings.Repeat("x", 64) + "=y", "invalid label name"},
	}
	for _, tc := range bad {
		t.Run(tc.in, func(t *testing.T) {
			_, _, err := validate.Label("image-label", tc.in)
			checkUsage(t, err, "image-label", tc.want)
		})
	}
}

func TestRelativePath(t *testing.T) {
	for _, p := range []string{"", "Dockerfile", "a/b", "./a", "a/../b", "a/..", ".", "..foo", "a/..b"} {
		if err := validate.RelativePath("context-dir", p, "context dir"); err != nil {
			t.Errorf("RelativePath(%q) = %v, want nil", p, err)
		}
	}
	bad := []struct{ in, want string }{
		{"..", `remove the ".."`},
		{"../x", `remove the ".."`},
		{"a/../../x", `remove the ".."`},
		{"./../x", `remove the ".."`},
		{"/abs", "not an absolute path"},
		{"/", "not an absolute path"},
	}
	for _, tc := range bad {
		t.Run(tc.in, func(t *testing.T) {
			err := validate.RelativePath("dockerfile", tc.in, "dockerfilePath")
			checkUsage(t, err, "dockerfile", tc.want, "dockerfilePath must be a relative path", `"`+tc.in+`"`)
		})
	}
}

func TestObjectName(t *testing.T) {
	for _, n := range []string{"app", "app-1", "app.v1", "a", strings.Repeat("a", 253)} {
		if err := validate.ObjectName("buildconfig", n); err != nil {
			t.Errorf("ObjectName(%q) = %v, want nil", n, err)
		}
	}
	for _, n := range []string{"", "App", "app_1", "-app", "app-", "app name", strings.Repeat("a", 254)} {
		t.Run(n, func(t *testing.T) {
			checkUsage(t, validate.ObjectName("push-secret", n), "push-secret", "not a valid name")
		})
	}
}

func TestGitURL(t *testing.T) {
	valid := []string{
		"https://github.com/org/repo.git",
		"https://github.com/org/repo",
		"http://git.example.com:8080/repo",
		"git://git.example.com/repo.git",
		"ssh://git@github.com/org/repo.git",
		"ssh://git@github.com:2222/org/repo.git",
		"git@github.com:org/repo.git",
		"first.last@git.example.com:team/repo",
		"file:///srv/git/repo.git",
	}
	for _, v := range valid {
		if err := validate.GitURL("git-url", v); err != nil {
			t.Errorf("GitURL(%q) = %v, want nil", v, err)
		}
	}
	bad := []struct{ in, want string }{
		{"", "use an http(s)://, ssh://, git:// or user@host:path repository URL"},
		{"github.com/org/repo", "use an http(s)://"},
		{"/srv/git/repo", "use an http(s)://"},
		{"git@github.com", "use an http(s)://"},
		{"ftp://example.com/repo", "use an http(s)://"},
		{"https://", "the URL has no host"},
		{"https:///org/repo", "the URL has no host"},
		{"http://exa mple.com/repo", "not a valid URL"},
	}
	for _, tc := range bad {
		t.Run(tc.in, func(t *testing.T) {
			checkUsage(t, validate.GitURL("git-url", tc.in), "git-url", tc.want)
		})
	}
}

func TestRunPolicy(t *testing.T) {
	for _, v := range []string{"Serial", "Parallel", "SerialLatestOnly"} {
		if err := validate.RunPolicy("run-policy", v); err != nil {
			t.Errorf("RunPolicy(%q) = %v", v, err)
		}
	}
	for _, v := range []string{"", "serial", "parallel", "Sometimes"} {
		checkUsage(t, validate.RunPolicy("run-policy", v), "run-policy", "run policy must be Parallel, Serial, or SerialLatestOnly")
	}
}

func TestOneOf(t *testing.T) {
	if err := validate.OneOf("strategy", "source", "docker", "source"); err != nil {
		t.Errorf("OneOf(source) = %v", err)
	}
	for _, v := range []string{"", "Docker", "custom"} {
		checkUsage(t, validate.OneOf("strategy", v, "docker", "source"), "strategy", "must be one of docker, source")
	}
}

func TestFail(t *testing.T) {
	err := validate.Fail("include-git", "", "applies only to uploads; add %s", "--source-dir")
	checkUsage(t, err, "include-git")
	if got, want := err.Error(), "--include-git: applies only to uploads; add --source-dir"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	err = validate.Fail("timeout", "-1s", "must not be negative")
	if got, want := err.Error(), `--timeout "-1s": must not be negative`; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

func TestFailQuotesLongValuesShortened(t *testing.T) {
	long := strings.Repeat("a", 200)
	msg := validate.Fail("commit", long, "fix").Error()
	if strings.Contains(msg, long) {
		t.Errorf("message repeats the whole 200-byte value: %q", msg)
	}
	if !strings.Contains(msg, `"`+strings.Repeat("a", 77)+`..."`) {
		t.Errorf("message %q does not hold the shortened value", msg)
	}

	// Multi-byte runes around the cut must not be split.
	for _, r := range []string{"é", "€", "😀"} {
		v := strings.Repeat(r, 100)
		msg := validate.Fail("env", v, "fix").Error()
		if !utf8.ValidString(msg) {
			t.Errorf("message for %d×%q is not valid UTF-8: %q", 100, r, msg)
		}
		if !strings.Contains(msg, `..."`) || !strings.HasSuffix(msg, ": fix") {
			t.Errorf("message %q lacks the shortened value or the fix", msg)
		}
	}
}
