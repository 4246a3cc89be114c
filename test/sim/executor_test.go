package sim

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	buildv1 "github.com/openshift/api/build/v1"
	buildclient "github.com/openshift/client-go/build/clientset/versioned"
	buildscheme "github.com/openshift/client-go/build/clientset/versioned/scheme"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/ocbuild/ocbuild/test/sandbox"
)

// TestSandboxBuilds runs the simulator in the real sandbox (kube-apiserver,
// webhooks, front door): a Docker build from the git server, two incremental
// S2I builds from binary uploads, and a cancel. It starts a sandbox, so it
// runs only with OCBUILD_SIM_SANDBOX=1 (the e2e suite covers the same ground
// through Shipwright).
func TestSandboxBuilds(t *testing.T) {
	if os.Getenv("OCBUILD_SIM_SANDBOX") == "" {
		t.Skip("set OCBUILD_SIM_SANDBOX=1 to run the simulator in a sandbox")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	dir := t.TempDir()
	s := New(Options{Out: testWriter{t}})
	sb, err := sandbox.Start(ctx, sandbox.Options{Dir: filepath.Join(dir, "sb"), FrontDoor: s.FrontDoor(), Out: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Stop()
	ns := "simtest"
	if _, err := sb.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(sb.AdminConfig)
	cfg.Host = sb.FrontDoor.URL
	cfg.TLSClientConfig = rest.TLSClientConfig{CAData: sb.FrontDoor.CAData}
	bc, err := buildclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	builds := bc.BuildV1().Builds(ns)
	waitEnd := func(name string) *buildv1.Build {
		t.Helper()
		var b *buildv1.Build
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
			var err error
			b, err = builds.Get(ctx, name, metav1.GetOptions{})
			return err == nil && isTerminal(b.Status.Phase), nil
		})
		if err != nil {
			t.Fatalf("build %s did not end: %+v", name, b)
		}
		return b
	}
	buildLog := func(name string) string {
		t.Helper()
		rc, err := bc.BuildV1().RESTClient().Get().Namespace(ns).Resource("builds").Name(name).SubResource("log").
			VersionedParams(&buildv1.BuildLogOptions{Follow: true}, buildscheme.ParameterCodec).Stream(ctx)
		if err != nil {
			t.Fatalf("log of %s: %v", name, err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return string(b)
	}
	one, two := int32(1), int32(2)

	// Docker from the git server; the hello Dockerfile's UBI base comes
	// from the registry's mirror.
	out := sb.Registry + "/" + ns + "/hello:latest"
	_, err = bc.BuildV1().BuildConfigs(ns).Create(ctx, &buildv1.BuildConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: buildv1.BuildConfigSpec{
			RunPolicy: buildv1.BuildRunPolicySerial, SuccessfulBuildsHistoryLimit: &two, FailedBuildsHistoryLimit: &one,
			CommonSpec: buildv1.CommonSpec{
				Source:   buildv1.BuildSource{Git: &buildv1.GitBuildSource{URI: sb.GitRepoURL("hello"), Ref: "main"}},
				Strategy: buildv1.BuildStrategy{DockerStrategy: &buildv1.DockerBuildStrategy{}},
				Output:   buildv1.BuildOutput{To: &corev1.ObjectReference{Kind: "DockerImage", Name: out}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bc.BuildV1().BuildConfigs(ns).Instantiate(ctx, "hello", &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: "hello"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	log := buildLog(b.Name)
	b = waitEnd(b.Name)
	if b.Status.Phase != buildv1.BuildPhaseComplete {
		t.Fatalf("%s: %+v\n%s", b.Name, b.Status, log)
	}
	desc, err := remote.Head(mustRef(t, out))
	if err != nil {
		t.Fatal(err)
	}
	if b.Status.Output.To == nil || b.Status.Output.To.ImageDigest != desc.Digest.String() {
		t.Errorf("digest %+v, registry %s", b.Status.Output.To, desc.Digest)
	}
	if b.Spec.Revision == nil || b.Spec.Revision.Git.Commit != sb.RepoHeads["hello"] {
		t.Errorf("revision %+v, HEAD %s", b.Spec.Revision, sb.RepoHeads["hello"])
	}
	for _, want := range []string{`Cloning "` + sb.GitRepoURL("hello") + `" ...`, "STEP 1/", "Push successful"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	// S2I from binary uploads, twice: the second is incremental.
	yes := true
	_, err = bc.BuildV1().BuildConfigs(ns).Create(ctx, &buildv1.BuildConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "py"},
		Spec: buildv1.BuildConfigSpec{
			RunPolicy: buildv1.BuildRunPolicySerial, SuccessfulBuildsHistoryLimit: &two, FailedBuildsHistoryLimit: &one,
			CommonSpec: buildv1.CommonSpec{
				Source: buildv1.BuildSource{Binary: &buildv1.BinaryBuildSource{}},
				Strategy: buildv1.BuildStrategy{SourceStrategy: &buildv1.SourceBuildStrategy{
					From: corev1.ObjectReference{Kind: "DockerImage", Name: "registry.access.redhat.com/ubi9/python-311:latest"}, Incremental: &yes}},
				Output: buildv1.BuildOutput{To: &corev1.ObjectReference{Kind: "DockerImage", Name: InternalRegistry + "/" + ns + "/py:latest"}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	upload := tarGz(t, map[string]string{"app.py": "print('hi')\n", "requirements.txt": "flask\n"})
	for i, want := range []string{"Clean build will be performed", "Using artifacts from previous build (incremental)"} {
		started := &buildv1.Build{}
		err := bc.BuildV1().RESTClient().Post().Namespace(ns).Resource("buildconfigs").Name("py").SubResource("instantiatebinary").
			VersionedParams(&buildv1.BinaryBuildRequestOptions{Commit: "abc123"}, buildscheme.ParameterCodec).
			Body(strings.NewReader(string(upload))).Do(ctx).Into(started)
		if err != nil {
			t.Fatalf("instantiatebinary %d: %v", i, err)
		}
		log := buildLog(started.Name)
		end := waitEnd(started.Name)
		if end.Status.Phase != buildv1.BuildPhaseComplete || !strings.Contains(log, want) {
			t.Errorf("%s: %s, log lacks %q:\n%s", started.Name, end.Status.Phase, want, log)
		}
		if end.Spec.Revision == nil || end.Spec.Revision.Git.Commit != "abc123" {
			t.Errorf("%s: revision %+v", started.Name, end.Spec.Revision)
		}
	}

	// Cancel a long build: Cancelled at once.
	_, err = bc.BuildV1().BuildConfigs(ns).Create(ctx, &buildv1.BuildConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "slow"},
		Spec: buildv1.BuildConfigSpec{
			RunPolicy: buildv1.BuildRunPolicySerial, SuccessfulBuildsHistoryLimit: &two, FailedBuildsHistoryLimit: &one,
			CommonSpec: buildv1.CommonSpec{
				Source: buildv1.BuildSource{Dockerfile: ptr("FROM scratch\nLABEL a=b\n")},
				Strategy: buildv1.BuildStrategy{DockerStrategy: &buildv1.DockerBuildStrategy{
					Env: []corev1.EnvVar{{Name: KnobDuration, Value: "1h"}}}},
				Output: buildv1.BuildOutput{To: &corev1.ObjectReference{Kind: "DockerImage", Name: sb.Registry + "/" + ns + "/slow:latest"}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err = bc.BuildV1().BuildConfigs(ns).Instantiate(ctx, "slow", &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: "slow"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		x, err := builds.Get(ctx, b.Name, metav1.GetOptions{})
		return err == nil && x.Status.Phase == buildv1.BuildPhaseRunning, nil
	}); err != nil {
		t.Fatal("the slow build never ran")
	}
	t0 := time.Now()
	if _, err := builds.Patch(ctx, b.Name, types.MergePatchType, []byte(`{"status":{"cancelled":true}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	b = waitEnd(b.Name)
	if b.Status.Phase != buildv1.BuildPhaseCancelled || time.Since(t0) > 5*time.Second {
		t.Errorf("cancel: %s after %s", b.Status.Phase, time.Since(t0))
	}
}
