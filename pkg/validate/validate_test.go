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
		// docker/distribution's grammar: "__", any number of dashes.
		"quay.io/a--b/c",
		"quay.io/a__b/c",
		"quay.io/a.b_c-d/e",
		"quay.io/org/app:V1_x.y-z",
		"localhost/app",
		"127.0.0.1:5000/a/b:tag",
		"app@sha512:" + strings.Repeat("0", 128),
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
		// Path components as OpenShift parses them: [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
		{"quay.io/a-/b", []string{"not a valid Docker pull specification: invalid reference format", `path component "a-"`}},
		{"127.0.0.1:5000/a-/b:tag", []string{"invalid reference format", `path component "a-"`}},
		{"quay.io/-a/b", []string{"invalid reference format", `path component "-a"`}},
		{"quay.io/a..b/c", []string{"invalid reference format", `path component "a..b"`}},
		{"quay.io/a___b/c", []string{"invalid reference format", `path component "a___b"`}},
		{"quay.io/a._b/c", []string{"invalid reference format", `path component "a._b"`}},
		{"app-", []string{"invalid reference format", `path component "app-"`}},
		{"my_registry:5000/app", []string{"invalid reference format", `registry host "my_registry:5000"`}},
		{"[::1]:5000/app", []string{"invalid reference format", "registry host"}},
		{"app:.v1", []string{"invalid reference format", `tag ".v1"`}},
		{"app:" + strings.Repeat("x", 129), []string{"invalid reference format", "1 to 128"}},
		{"app:", []string{"invalid reference format", "empty tag"}},
		{"app@", []string{"invalid reference format", `nothing after "@"`}},
		{"app@md5:0123456789abcdef0123456789abcdef", []string{"unsupported digest algorithm", `"md5"`}},
		{"app@sha256:" + strings.Repeat("a", 63), []string{"invalid checksum digest length"}},
		{"quay.io/" + strings.Repeat("a", 250), []string{"repository name must not be more than 255 characters"}},
		{"quay.io/Org/App", []string{"repository name must be lowercase", `write "Org", "App" in lower case`}},
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
	// dockerfilePath: OpenShift rejects only ".." and "../…" (unlike contextDir).
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
		{"file://host/srv/repo", `file url "file://host/srv/repo" has non-empty host "host"`},
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

// Values the user has to fix are quoted in full: names (up to 253
// characters), image references and paths; only values longer than 512
// bytes are shortened,
// keeping their start and their end.
func TestFailQuotesValues(t *testing.T) {
	for _, v := range []string{strings.Repeat("a", 253), "/workspace/source/" + strings.Repeat("deep/", 40) + "app"} {
		if msg := validate.Fail("source-dir", v, "fix").Error(); !strings.Contains(msg, `"`+v+`"`) {
			t.Errorf("message %q does not quote the %d-byte value in full", msg, len(v))
		}
	}

	long := strings.Repeat("a", 500) + strings.Repeat("b", 500) + "END"
	msg := validate.Fail("commit", long, "fix").Error()
	if strings.Contains(msg, long) {
		t.Errorf("message repeats the whole 1003-byte value: %q", msg)
	}
	if !strings.Contains(msg, `"`+strings.Repeat("a", 254)+"...") || !strings.Contains(msg, `bEND"`) || len(msg) > 540 {
		t.Errorf("message %q does not keep the start and the end of the value", msg)
	}

	// Multi-byte runes around the cuts must not be split.
	for _, r := range []string{"é", "€", "😀"} {
		v := strings.Repeat(r, 600)
		msg := validate.Fail("env", v, "fix").Error()
		if !utf8.ValidString(msg) {
			t.Errorf("message for %d×%q is not valid UTF-8: %q", 600, r, msg)
		}
		if !strings.Contains(msg, "...") || !strings.HasSuffix(msg, r+`": fix`) {
			t.Errorf("message %q lacks the shortened value or the fix", msg)
		}
	}
}

func TestContextDir(t *testing.T) {
	for _, p := range []string{"", "app", "a/b", "./a", "a/../b", ".", "a/..b", "a.."} {
		if err := validate.ContextDir("context-dir", p); err != nil {
			t.Errorf("ContextDir(%q) = %v, want nil", p, err)
		}
	}
	// OpenShift: path.Clean(contextDir) starting with ".." is rejected.
	for _, p := range []string{"..", "../x", "..foo", "./..foo", "a/../..b", "a/../../x"} {
		t.Run(p, func(t *testing.T) {
			checkUsage(t, validate.ContextDir("context-dir", p), "context-dir",
				`"`+p+`"`, "context dir must not be a relative path", `starts with ".."`, "e.g. app")
		})
	}
	for _, p := range []string{"/src", "/"} {
		checkUsage(t, validate.ContextDir("context-dir", p), "context-dir", "not an absolute path")
	}
}

func TestBuildConfigName(t *testing.T) {
	for _, n := range []string{"app", strings.Repeat("a", 242)} {
		if err := validate.BuildConfigName("buildconfig", n, 242); err != nil {
			t.Errorf("BuildConfigName(%d chars) = %v", len(n), err)
		}
	}
	checkUsage(t, validate.BuildConfigName("buildconfig", strings.Repeat("a", 243), 242), "buildconfig",
		"too long (243 characters)", "<buildconfig>-<number>", "at most 242")
	checkUsage(t, validate.BuildConfigName("buildconfig", "My_App", 242), "buildconfig", "not a valid name")
}

func TestNamespace(t *testing.T) {
	for _, n := range []string{"team-a", "a", strings.Repeat("a", 63)} {
		if err := validate.Namespace("namespace", n); err != nil {
			t.Errorf("Namespace(%q) = %v", n, err)
		}
	}
	for _, n := range []string{"Team", "team.a", "-a", strings.Repeat("a", 64)} {
		checkUsage(t, validate.Namespace("namespace", n), "namespace", "not a valid namespace")
	}
}

func TestGitRef(t *testing.T) {
	for _, v := range []string{"main", "v1.2.3", "feature/x", "refs/heads/main", "0123abc", "main~1"} {
		if err := validate.GitRef("git-ref", v); err != nil {
			t.Errorf("GitRef(%q) = %v", v, err)
		}
	}
	checkUsage(t, validate.GitRef("git-ref", "-b"), "git-ref", `does not start with "-"`)
	checkUsage(t, validate.GitRef("git-ref", "my branch"), "git-ref", "no spaces")
	checkUsage(t, validate.GitRef("git-ref", "main\n"), "git-ref", "no spaces")
}

func TestScriptsURL(t *testing.T) {
	for _, v := range []string{"image:///usr/libexec/s2i", "https://example.com/s2i", "http://x/s", "file:///s2i"} {
		if err := validate.ScriptsURL("scripts-url", v); err != nil {
			t.Errorf("ScriptsURL(%q) = %v", v, err)
		}
	}
	for _, v := range []string{"/usr/libexec/s2i", "ftp://x/s", "example.com/s2i", "http://exa mple.com"} {
		checkUsage(t, validate.ScriptsURL("scripts-url", v), "scripts-url", "image:///path")
	}
}

func TestErrors(t *testing.T) {
	var errs validate.Errors
	if errs.Err() != nil || errs.Len() != 0 {
		t.Fatal("an empty list has an error")
	}
	if !errs.Add(nil) {
		t.Error("Add(nil) = false")
	}
	if errs.Add(validate.Fail("to", "", "required")) || errs.Add(validate.Fail("env", "X", "bad")) || errs.Add(validate.Fail("to", "", "required")) {
		t.Error("Add(error) = true")
	}
	err := errs.Err()
	checkUsage(t, err, "to")
	if got, want := err.Error(), "--to: required\n--env \"X\": bad"; got != want || errs.Len() != 2 {
		t.Errorf("Err() = %q (%d), want %q: every error once, one a line", got, errs.Len(), want)
	}
}
