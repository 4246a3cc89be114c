package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/ocbuild/ocbuild/pkg/failure"
)

// defaultsDir writes a ConfigMap volume as the kubelet does: the data in a
// ..data directory, each key a symlink into it.
func defaultsDir(t *testing.T, data map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2026_12_02_07_00_00.000000001")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range data {
		if err := os.WriteFile(filepath.Join(ts, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for k := range data {
		if err := os.Symlink(filepath.Join("..data", k), filepath.Join(dir, k)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The strategies pass every parameter, empty when the Build sets none: a
// BuildRun without parameters gets the platform's defaults.
func TestDefaultsApplyToUnsetParameters(t *testing.T) {
	clearEnv(t)
	dir := sourceTree(t)
	defs := defaultsDir(t, map[string]string{
		"internal-registry": "registry.apps.example.com, image-registry.openshift-image-registry.svc:5000\n",
		"push-secret":       "registry-push\n",
		"pull-secret":       "registry-pull",
		"build-env":         "# proxies\nHTTP_PROXY=http://proxy:3128\nPIP_INDEX_URL=https://pypi.example.com/simple\n",
		"image-labels":      "vendor=Example Corp\nauthoritative-source-url=registry.example.com\n",
		"start-timeout":     "20m",
		"run-policy":        "Parallel",
	})
	// As the strategy passes them with the parameters' empty defaults.
	cmd, stderr := parse(t, docker(dir, "--defaults-dir="+defs, "--push-secret=", "--pull-secret=", "--run-policy=", "--start-timeout="))
	s := cmd.Options.Spec
	if s.PushSecret != "registry-push" || s.PullSecret != "registry-pull" || s.RunPolicy != buildv1.BuildRunPolicyParallel {
		t.Errorf("secrets %q %q run policy %q", s.PushSecret, s.PullSecret, s.RunPolicy)
	}
	wantEnv := []corev1.EnvVar{{Name: "HTTP_PROXY", Value: "http://proxy:3128"}, {Name: "PIP_INDEX_URL", Value: "https://pypi.example.com/simple"}}
	if !reflect.DeepEqual(s.Env, wantEnv) {
		t.Errorf("env = %+v, want %+v", s.Env, wantEnv)
	}
	wantLabels := []buildv1.ImageLabel{{Name: "authoritative-source-url", Value: "registry.example.com"}, {Name: "vendor", Value: "Example Corp"}}
	if !reflect.DeepEqual(s.ImageLabels, wantLabels) {
		t.Errorf("labels = %+v, want %+v", s.ImageLabels, wantLabels)
	}
	if cmd.Options.StartTimeout != 20*time.Minute {
		t.Errorf("start timeout %s", cmd.Options.StartTimeout)
	}
	if want := []string{"registry.apps.example.com", "image-registry.openshift-image-registry.svc:5000"}; !reflect.DeepEqual(cmd.Internal, want) {
		t.Errorf("internal registries %v", cmd.Internal)
	}
	if !strings.Contains(stderr, ": applied internal-registry, push-secret, pull-secret, build-env (HTTP_PROXY, PIP_INDEX_URL), image-labels (vendor, authoritative-source-url), start-timeout, run-policy\n") {
		t.Errorf("step log does not say which defaults applied:\n%s", stderr)
	}
	if strings.Contains(stderr, "proxy:3128") {
		t.Errorf("an env default's value was logged:\n%s", stderr)
	}
}

// A parameter the Build sets wins over the ConfigMap; for env and labels
// per name, the defaults' other items staying.
func TestParametersOverrideDefaults(t *testing.T) {
	clearEnv(t)
	dir := sourceTree(t)
	defs := defaultsDir(t, map[string]string{
		"push-secret":   "registry-push",
		"build-env":     "HTTP_PROXY=http://proxy:3128\nPIP_INDEX_URL=https://pypi.example.com/simple\n",
		"start-timeout": "20m",
		"run-policy":    "Parallel",
	})
	cmd, stderr := parse(t, docker(dir, "--defaults-dir="+defs, "--push-secret=mine", "--run-policy=SerialLatestOnly", "--start-timeout=3m",
		"--env-array", "PIP_INDEX_URL=https://pypi.org/simple", "EXTRA=1"))
	s := cmd.Options.Spec
	if s.PushSecret != "mine" || s.RunPolicy != buildv1.BuildRunPolicySerialLatestOnly || cmd.Options.StartTimeout != 3*time.Minute {
		t.Errorf("push secret %q run policy %q start timeout %s", s.PushSecret, s.RunPolicy, cmd.Options.StartTimeout)
	}
	wantEnv := []corev1.EnvVar{{Name: "HTTP_PROXY", Value: "http://proxy:3128"}, {Name: "PIP_INDEX_URL", Value: "https://pypi.org/simple"}, {Name: "EXTRA", Value: "1"}}
	if !reflect.DeepEqual(s.Env, wantEnv) {
		t.Errorf("env = %+v, want %+v", s.Env, wantEnv)
	}
	if !strings.Contains(stderr, "applied build-env (HTTP_PROXY), 1 set by the Build; set by the Build instead: push-secret, start-timeout, run-policy") {
		t.Errorf("step log:\n%s", stderr)
	}
}

// Without the ConfigMap (the optional volume is an empty directory, or
// absent outside a pod) the built-in defaults apply and nothing is logged.
func TestMissingDefaultsConfigMapChangesNothing(t *testing.T) {
	clearEnv(t)
	dir := sourceTree(t)
	for _, defs := range []string{t.TempDir(), filepath.Join(t.TempDir(), "absent")} {
		cmd, stderr := parse(t, docker(dir, "--defaults-dir="+defs, "--run-policy=", "--start-timeout="))
		if cmd.Options.Spec.RunPolicy != buildv1.BuildRunPolicySerial || cmd.Options.StartTimeout != 10*time.Minute || cmd.Options.Spec.PushSecret != "" {
			t.Errorf("%s: %+v", defs, cmd.Options.Spec)
		}
		if strings.Contains(stderr, "defaults") {
			t.Errorf("%s: step log mentions defaults:\n%s", defs, stderr)
		}
	}
}

// Unknown keys and bad values fail the run as InvalidInput, naming the
// ConfigMap key, before anything reaches the cluster.
func TestBadDefaultsNameTheKey(t *testing.T) {
	clearEnv(t)
	dir := sourceTree(t)
	defs := defaultsDir(t, map[string]string{
		"start-timout":  "20m",
		"start-timeout": "soon",
		"run-policy":    "Sometimes",
		"push-secret":   "Not_A_Name",
		"build-env":     "HTTP_PROXY\n",
	})
	var stderr bytes.Buffer
	_, _, err := Parse(docker(dir, "--defaults-dir="+defs), &stderr)
	if err == nil {
		t.Fatal("Parse succeeded with a bad ConfigMap")
	}
	f := failure.As(err, failure.InvalidInput)
	if f.Reason != failure.InvalidInput {
		t.Errorf("reason %q", f.Reason)
	}
	for _, want := range []string{
		"ConfigMap ocbuild-defaults, key start-timout: unknown key; the keys are internal-registry, push-secret",
		`key start-timeout: "soon" is not a positive duration`,
		`key run-policy: "Sometimes" is not a run policy`,
		`key push-secret: "Not_A_Name" is not a Secret name`,
		`key build-env: "HTTP_PROXY" line 1 is not NAME=VALUE`,
	} {
		if !strings.Contains(f.Message, want) {
			t.Errorf("message lacks %q:\n%s", want, f.Message)
		}
	}
}

// A key that is a symlink out of the mounted directory is not followed.
func TestDefaultsKeySymlinkOutIsRefused(t *testing.T) {
	clearEnv(t)
	dir := sourceTree(t)
	defs := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("registry-push"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(defs, "push-secret")); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	_, _, err := Parse(docker(dir, "--defaults-dir="+defs), &stderr)
	if err == nil || !strings.Contains(err.Error(), "key push-secret: is a symlink out of the ConfigMap's directory") {
		t.Errorf("err = %v", err)
	}
}

// ocbuild start runs an existing BuildConfig: only the step's own settings
// come from the ConfigMap, and the log says which keys were not used.
func TestDefaultsInStartMode(t *testing.T) {
	clearEnv(t)
	defs := defaultsDir(t, map[string]string{"start-timeout": "20m", "push-secret": "registry-push", "build-env": "A=1\n"})
	cmd, stderr := parse(t, []string{"start", "--buildconfig=app", "--defaults-dir=" + defs, "--start-timeout="})
	if cmd.Options.StartTimeout != 20*time.Minute || len(cmd.Options.Env) != 0 {
		t.Errorf("start timeout %s env %v", cmd.Options.StartTimeout, cmd.Options.Env)
	}
	if !strings.Contains(stderr, "applied start-timeout; not used when running an existing BuildConfig: push-secret, build-env") {
		t.Errorf("step log:\n%s", stderr)
	}
}
