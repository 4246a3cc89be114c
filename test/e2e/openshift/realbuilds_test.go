package openshift

// Builds run by the engine OpenShift's build pods run: buildah executes
// every RUN and every S2I script; registries ask for credentials.

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	buildv1 "github.com/openshift/api/build/v1"
	buildv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ocbuild/ocbuild/test/e2e/openshift/kit"
	"github.com/ocbuild/ocbuild/test/sandbox"
	"github.com/ocbuild/ocbuild/test/sim"
)

// registryAuth reads the registry that requires credentials.
var registryAuth = remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: sandbox.AuthRegistryUser, Password: sandbox.AuthRegistryPassword}))

// pushSecretName is the kubernetes.io/dockerconfigjson Secret with the
// credentials of sb.AuthRegistry (createPushSecret).
const pushSecretName = "registry-creds"

func createPushSecret(t *testing.T, ns string) {
	t.Helper()
	_, err := sb.Kube.CoreV1().Secrets(ns).Create(testContext(t, time.Minute), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: pushSecretName},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: sb.AuthRegistryDockerConfig()},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// toAuthRegistry points b's output at the registry with credentials, with
// the push secret both where Shipwright reads it (spec.output.pushSecret:
// the step's docker config, for the image size) and where OpenShift does
// (the strategy's push-secret parameter: BuildConfig output.pushSecret).
func toAuthRegistry(b *buildv1beta1.Build, ns string, withSecret bool) *buildv1beta1.Build {
	b.Spec.Output.Image = sb.AuthRegistry + "/" + ns + "/" + b.Name + ":latest"
	if withSecret {
		b.Spec.Output.PushSecret = ptr.To(pushSecretName)
		b.Spec.ParamValues = append(b.Spec.ParamValues, param("push-secret", pushSecretName))
	}
	return b
}

// A Dockerfile's RUN executes: what it prints is in the step log, and the
// file it writes is in the pushed image.
func TestDockerRunExecutes(t *testing.T) {
	ctx := testContext(t, 6*time.Minute)
	ns := newNamespace(t, true)
	b := createBuild(t, gitBuild(ns, "run-docker", "run-docker", dockerStrategy))
	br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
	requireSucceeded(t, br)
	img := checkOutput(ctx, t, br, b.Spec.Output.Image)

	const said = "RUN executed as uid 0 on Linux"
	if log := stepLog(t, br); !strings.Contains(log, said) {
		t.Errorf("the step log lacks the RUN's output %q:\n%s", said, log)
	}
	got, err := kit.ReadFile(ctx, kit.ByDigest(b.Spec.Output.Image, img.Digest), "/run-output.txt")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != said+"\n" {
		t.Errorf("/run-output.txt in the image = %q, want what RUN wrote: %q", got, said+"\n")
	}
}

// A registry that requires credentials: without the push secret the build
// fails PushImageToRegistryFailed and the BuildRun shows the registry's
// answer; with it the image is pushed, and the step reads the image's size
// with the docker config Shipwright's pushSecret gives it. A base image on
// that registry needs the pull secret the same way (PullBuilderImageFailed).
func TestRegistryWithCredentials(t *testing.T) {
	ctx := testContext(t, 8*time.Minute)
	ns := newNamespace(t, true)
	createPushSecret(t, ns)

	t.Run("without-secret", func(t *testing.T) {
		b := createBuild(t, toAuthRegistry(gitBuild(ns, "nosecret", "hello", dockerStrategy), ns, false))
		br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
		fd := requireFailed(t, br)
		if fd.Reason != string(buildv1.StatusReasonPushImageToRegistryFailed) {
			t.Errorf("failureDetails.reason = %q, want PushImageToRegistryFailed", fd.Reason)
		}
		if !strings.Contains(fd.Message, "authentication required") {
			t.Errorf("failureDetails.message lacks the registry's answer (authentication required):\n%s", fd.Message)
		}
	})
	t.Run("with-secret", func(t *testing.T) {
		b := createBuild(t, toAuthRegistry(gitBuild(ns, "withsecret", "hello", dockerStrategy), ns, true))
		br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
		requireSucceeded(t, br)
		img, err := kit.Inspect(ctx, b.Spec.Output.Image, registryAuth)
		if err != nil {
			t.Fatal(err)
		}
		if br.Status.Output == nil || br.Status.Output.Digest != img.Digest || br.Status.Output.Size != img.Size {
			t.Errorf("status.output = %+v, the registry has %s (%d bytes)", br.Status.Output, img.Digest, img.Size)
		}
		if _, err := kit.Inspect(ctx, b.Spec.Output.Image); err == nil {
			t.Error("the registry answered without credentials: the test proves nothing")
		}
	})

	// The sandbox's base image, copied onto the registry with credentials,
	// as the Dockerfile's base (the strategy's from parameter).
	base := sb.AuthRegistry + "/" + ns + "/base:latest"
	if err := kit.Copy(ctx, sb.Registry+"/"+sim.BaseImage, base, registryAuth); err != nil {
		t.Fatal(err)
	}
	t.Run("pull-without-secret", func(t *testing.T) {
		b := createBuild(t, gitBuild(ns, "nopull", "hello", dockerStrategy, param("from", base)))
		br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
		fd := requireFailed(t, br)
		if fd.Reason != string(buildv1.StatusReasonPullBuilderImageFailed) || !strings.Contains(fd.Message, "unauthorized") {
			t.Errorf("failureDetails %s: %s; want PullBuilderImageFailed with the registry's answer (unauthorized)", fd.Reason, fd.Message)
		}
	})
	t.Run("pull-with-secret", func(t *testing.T) {
		b := createBuild(t, gitBuild(ns, "withpull", "hello", dockerStrategy, param("from", base), param("pull-secret", pushSecretName)))
		br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
		requireSucceeded(t, br)
		if log := stepLog(t, br); !strings.Contains(log, "Pulling image "+base) {
			t.Errorf("the build did not pull its base from %s:\n%s", base, log)
		}
	})
}

// Seed 003: a Python app whose requirements come from a private package
// index (PIP_INDEX_URL in the build env), built with the S2I builder and
// pushed to a registry that requires credentials. The second, incremental
// build restores the packages the first installed: pip finds every
// requirement already satisfied, downloads nothing, and the build is
// faster.
func TestS2IPrivateIndexIncremental(t *testing.T) {
	ctx := testContext(t, 10*time.Minute)
	ns := newNamespace(t, true)
	createPushSecret(t, ns)
	b := createBuild(t, toAuthRegistry(gitBuild(ns, "flask-private-index", "flask-private-index", s2iStrategy,
		param("builder-image", "registry.access.redhat.com/ubi9/python-311:latest"),
		param("incremental", "true"),
		arrayParam("build-env", "APP_MODULE=app:app", "PIP_INDEX_URL="+sb.PackageIndexURL, "PIP_TRUSTED_HOST=127.0.0.1",
			"PIP_DISABLE_PIP_VERSION_CHECK=1")), ns, true))

	downloads := sb.PackageIndexDownloads()
	first := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
	requireSucceeded(t, first)
	log1 := stepLog(t, first)
	for _, want := range []string{"---> Installing dependencies ...", "Successfully installed", "ocbuild-greeting-1.0.0"} {
		if !strings.Contains(log1, want) {
			t.Errorf("first build's log lacks %q:\n%s", want, log1)
		}
	}
	if n := sb.PackageIndexDownloads() - downloads; n == 0 {
		t.Error("the first build downloaded nothing from the private index")
	}
	img1, err := kit.Inspect(ctx, b.Spec.Output.Image, registryAuth)
	if err != nil {
		t.Fatal(err)
	}

	downloads = sb.PackageIndexDownloads()
	second := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
	requireSucceeded(t, second)
	log2 := stepLog(t, second)
	for _, want := range []string{"Restoring artifacts from the previous image", "Requirement already satisfied: ocbuild-greeting==1.0.0",
		"Requirement already satisfied: Flask", "Requirement already satisfied: gunicorn"} {
		if !strings.Contains(log2, want) {
			t.Errorf("second (incremental) build's log lacks %q:\n%s", want, log2)
		}
	}
	if strings.Contains(log2, "Successfully installed") {
		t.Errorf("the incremental build installed packages again:\n%s", log2)
	}
	if n := sb.PackageIndexDownloads() - downloads; n != 0 {
		t.Errorf("the incremental build downloaded %d files from the index; its packages came with the artifacts", n)
	}
	img2, err := kit.Inspect(ctx, b.Spec.Output.Image, registryAuth)
	if err != nil {
		t.Fatal(err)
	}
	if img1.Digest == img2.Digest {
		t.Errorf("both builds pushed %s", img1.Digest)
	}
	if second.Status.Output == nil || second.Status.Output.Digest != img2.Digest {
		t.Errorf("second BuildRun status.output %+v, registry %s", second.Status.Output, img2.Digest)
	}
	ob1, ob2 := theOpenShiftBuild(ctx, t, ns, first.Name), theOpenShiftBuild(ctx, t, ns, second.Name)
	d1, d2 := assembleTime(t, ob1), assembleTime(t, ob2)
	t.Logf("assemble: first build %s, incremental build %s; whole builds %s and %s", d1, d2, ob1.Status.Duration, ob2.Status.Duration)
	if d2 >= d1 {
		t.Errorf("the incremental build's assemble took %s, the first build's %s: restoring the packages should beat installing them", d2, d1)
	}
}

// assembleTime is how long an OpenShift build spent in assemble: from its
// RUN step to the next step, by the build log's timestamps.
func assembleTime(t *testing.T, ob *buildv1.Build) time.Duration {
	t.Helper()
	lines, _ := simulator.Logs().Read(sim.Key{Namespace: ob.Namespace, Name: ob.Name}, time.Time{})
	var start time.Time
	for _, l := range lines {
		switch {
		case start.IsZero() && strings.Contains(l.Text, "STEP") && strings.Contains(l.Text, "RUN /usr/libexec/s2i/assemble"):
			start = l.Time
		case !start.IsZero() && strings.Contains(l.Text, "STEP"):
			return l.Time.Sub(start)
		}
	}
	t.Fatalf("build %s: the log has no assemble step followed by another", ob.Name)
	return 0
}

// Seed 003's failure, on purpose: an incremental build whose previous image
// already holds a .git (its save-artifacts keeps all of $HOME) and whose
// upload includes .git (include-git "true") fails in assemble, with mv's
// message in failureDetails. ocbuild's default leaves .git out of the
// upload, and the same source builds twice.
func TestS2IGitDirectory(t *testing.T) {
	ctx := testContext(t, 10*time.Minute)
	ns := newNamespace(t, true)
	build := func(name, includeGit string) *buildv1beta1.Build {
		return createBuild(t, gitBuild(ns, name, "s2i-save-home", s2iStrategy,
			param("builder-image", "registry.access.redhat.com/ubi9/python-311:latest"),
			param("incremental", "true"),
			param("include-git", includeGit)))
	}

	t.Run("include-git", func(t *testing.T) {
		b := build("with-git", "true")
		first := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
		requireSucceeded(t, first)
		second := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
		fd := requireFailed(t, second)
		// GNU mv says "cannot move" within a filesystem and "inter-device
		// move failed" across overlay layers, as here.
		if !strings.Contains(fd.Message, "mv: ") || !strings.Contains(fd.Message, "'/tmp/src/.git' to '/opt/app-root/src/.git'") {
			t.Errorf("failureDetails.message lacks mv's failure on .git:\n%s", fd.Message)
		}
	})
	t.Run("default", func(t *testing.T) {
		b := build("without-git", "false")
		for i := 0; i < 2; i++ {
			br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
			requireSucceeded(t, br)
		}
	})
}

// samples/flask-s2i, as shipped, builds in the sandbox too (pointed at the
// sandbox's git server, registry and package index): twice, the second
// time restoring pip's cache with the sample's own .s2i scripts.
func TestSampleFlaskS2I(t *testing.T) {
	ctx := testContext(t, 10*time.Minute)
	ns := newNamespace(t, true)
	b := sampleBuild(t, "flask-s2i")
	b.Namespace = ns
	b.Spec.Source.Git.URL = sb.GitRepoURL("flask-hello")
	b.Spec.Source.Git.Revision = ptr.To("main")
	b.Spec.Source.ContextDir = nil // the git server serves samples/apps/flask-hello as its own repository
	b.Spec.Output.Image = imageRef(ns, b.Name, "latest")
	b.Spec.Output.Insecure = ptr.To(true)
	for i, p := range b.Spec.ParamValues {
		if p.Name == "build-env" {
			b.Spec.ParamValues[i].Values = append(p.Values,
				buildv1beta1.SingleValue{Value: ptr.To("PIP_INDEX_URL=" + sb.PackageIndexURL)},
				buildv1beta1.SingleValue{Value: ptr.To("PIP_TRUSTED_HOST=127.0.0.1")})
		}
	}
	createBuild(t, &b)
	first := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
	requireSucceeded(t, first)
	if log := stepLog(t, first); !strings.Contains(log, "No previous pip cache") {
		t.Errorf("first build's log lacks the sample assemble's first-build message:\n%s", log)
	}
	second := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
	requireSucceeded(t, second)
	if log := stepLog(t, second); !strings.Contains(log, "Restoring pip cache from the previous image") {
		t.Errorf("second build's log lacks the sample assemble's restore message:\n%s", log)
	}
	checkOutput(ctx, t, second, b.Spec.Output.Image)
}
