package openshift

import (
	"strings"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The platform defaults ConfigMap: a BuildRun without parameters gets the
// namespace's build env, image labels and start timeout; a parameter the
// Build sets overrides one; a bad key fails the run with InvalidInput
// naming the key, before any BuildConfig is written. (The strategies read
// the ConfigMap from the API: Shipwright refuses a BuildRun whose strategy
// mounts a missing ConfigMap, optional or not, which this suite found.)
func TestPlatformDefaults(t *testing.T) {
	ctx := testContext(t, 8*time.Minute)
	ns := newNamespace(t, true)
	cms := sb.Kube.CoreV1().ConfigMaps(ns)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "ocbuild-defaults"},
		Data: map[string]string{
			"build-env":     "# the platform's\nPLATFORM_PROXY=http://proxy.example.com:3128\nTEAM=platform\n",
			"image-labels":  "vendor=Example Corp\nteam=platform\n",
			"start-timeout": "7m",
		},
	}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	plain := createBuild(t, gitBuild(ns, "plain", "hello", dockerStrategy))
	br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, plain.Name).Name)
	requireSucceeded(t, br)
	img := checkOutput(ctx, t, br, plain.Spec.Output.Image)
	for k, want := range map[string]string{"vendor": "Example Corp", "team": "platform"} {
		if got := img.Config.Config.Labels[k]; got != want {
			t.Errorf("image label %s = %q, want %q (from the ConfigMap)", k, got, want)
		}
	}
	ob := theOpenShiftBuild(ctx, t, ns, br.Name)
	if got := envOf(ob); got["PLATFORM_PROXY"] != "http://proxy.example.com:3128" || got["TEAM"] != "platform" {
		t.Errorf("OpenShift build env = %v, want the ConfigMap's build-env", got)
	}
	log := stepLog(t, br)
	if !strings.Contains(log, "defaults from ConfigMap "+ns+"/ocbuild-defaults: applied build-env (PLATFORM_PROXY, TEAM), image-labels (vendor, team), start-timeout") {
		t.Errorf("step log does not say which defaults applied:\n%s", log)
	}
	// ocbuild's own lines (the build log, passed through, is the build's).
	for _, l := range lines(log) {
		if strings.HasPrefix(l, "ocbuild: ") && strings.Contains(l, "proxy.example.com") {
			t.Errorf("ocbuild logged an env default's value: %s", l)
		}
	}

	own := createBuild(t, gitBuild(ns, "own", "hello", dockerStrategy,
		arrayParam("image-labels", "team=app"), arrayParam("build-env", "TEAM=app")))
	br = waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, own.Name).Name)
	requireSucceeded(t, br)
	img = checkOutput(ctx, t, br, own.Spec.Output.Image)
	if got := img.Config.Config.Labels["team"]; got != "app" {
		t.Errorf("image label team = %q, want the Build's app over the ConfigMap's platform", got)
	}
	if got := img.Config.Config.Labels["vendor"]; got != "Example Corp" {
		t.Errorf("image label vendor = %q, want the ConfigMap's", got)
	}
	if got := envOf(theOpenShiftBuild(ctx, t, ns, br.Name)); got["TEAM"] != "app" || got["PLATFORM_PROXY"] == "" {
		t.Errorf("OpenShift build env = %v, want TEAM=app and the platform's PLATFORM_PROXY", got)
	}

	cm.Data["start-timeout"] = "soon"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	bad := createBuild(t, gitBuild(ns, "bad", "hello", dockerStrategy))
	br = waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, bad.Name).Name)
	fd := requireFailed(t, br)
	if fd.Reason != "InvalidInput" || !strings.Contains(fd.Message, `ConfigMap ocbuild-defaults, key start-timeout: "soon" is not a positive duration`) {
		t.Errorf("failureDetails = %s: %s, want InvalidInput naming the key", fd.Reason, fd.Message)
	}
	if _, err := builds.BuildV1().BuildConfigs(ns).Get(ctx, "bad", metav1.GetOptions{}); err == nil {
		t.Errorf("BuildConfig bad was created although the defaults were invalid")
	}
}

func envOf(b *buildv1.Build) map[string]string {
	out := map[string]string{}
	if b.Spec.Strategy.DockerStrategy != nil {
		for _, e := range b.Spec.Strategy.DockerStrategy.Env {
			out[e.Name] = e.Value
		}
	}
	return out
}
