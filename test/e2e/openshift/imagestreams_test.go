package openshift

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	imagev1 "github.com/openshift/api/image/v1"
	imageclient "github.com/openshift/client-go/image/clientset/versioned"
	buildv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/ocbuild/ocbuild/test/e2e/openshift/kit"
	"github.com/ocbuild/ocbuild/test/sim"
)

// imageAPI is an admin image.openshift.io client through the front door,
// which serves imagestreamtags and imagestreamimages (image streams
// themselves it forwards to kube-apiserver).
func imageAPI(t *testing.T) imageclient.Interface {
	t.Helper()
	cfg := &rest.Config{
		Host:            sb.FrontDoor.URL,
		BearerToken:     sb.AdminConfig.BearerToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: sb.FrontDoor.CAData},
	}
	c, err := imageclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// internalRef is a pull spec on OpenShift's integrated registry, and
// mirrorRef where the sandbox registry holds it.
func internalRef(ns, stream, tag string) string {
	return sim.InternalRegistry + "/" + ns + "/" + stream + ":" + tag
}

func mirrorRef(ns, stream, tag string) string { return imageRef(ns, stream, tag) }

// createImageStream creates an empty image stream, as `oc new-build` does
// for a BuildConfig's output, and checks the repository the server gives it.
func createImageStream(ctx context.Context, t *testing.T, images imageclient.Interface, ns, name string) {
	t.Helper()
	is, err := images.ImageV1().ImageStreams(ns).Create(ctx, &imagev1.ImageStream{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := sim.InternalRegistry + "/" + ns + "/" + name; is.Status.DockerImageRepository != want {
		t.Errorf("imagestream %s: status.dockerImageRepository = %q, want %q", name, is.Status.DockerImageRepository, want)
	}
}

// imageSizeOf reads dockerImageMetadata.Size of <stream>@<digest>, the
// request ocbuild's step makes for status.output.size.
func imageSizeOf(ctx context.Context, t *testing.T, images imageclient.Interface, ns, stream, digest string) int64 {
	t.Helper()
	isi, err := images.ImageV1().ImageStreamImages(ns).Get(ctx, stream+"@"+digest, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("imagestreamimages %s@%s: %v", stream, digest, err)
	}
	var meta struct{ Size int64 }
	if err := json.Unmarshal(isi.Image.DockerImageMetadata.Raw, &meta); err != nil {
		t.Fatal(err)
	}
	return meta.Size
}

// The chain build of OpenShift's documentation ("seed 001"): a builder
// BuildConfig compiles go-hello into the image stream tag builder:latest;
// a runtime BuildConfig starts FROM scratch and copies the binary out of
// builder:latest (source.images) into its context. Both run through the
// openshift-buildconfig strategy, the runtime one after the builder one.
func TestChainBuildThroughImageStreams(t *testing.T) {
	ctx := testContext(t, 12*time.Minute)
	ns := newNamespace(t, true)
	images := imageAPI(t)
	// Discovery lists the image API's resources, the virtual ones too.
	resources, err := images.Discovery().ServerResourcesForGroupVersion(sim.ImageGroup + "/v1")
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, r := range resources.APIResources {
		served[r.Name] = true
	}
	for _, r := range []string{"imagestreams", "imagestreamtags", "imagestreamimages"} {
		if !served[r] {
			t.Errorf("discovery of %s/v1 lacks %s: %v", sim.ImageGroup, r, resources.APIResources)
		}
	}
	createImageStream(ctx, t, images, ns, "builder")
	createImageStream(ctx, t, images, ns, "runtime")

	const binary = "/opt/app-root/src/go-hello"
	builderDockerfile := strings.Join([]string{
		"FROM registry.access.redhat.com/ubi9/go-toolset:latest",
		"COPY --chown=1001:0 . .",
		"RUN CGO_ENABLED=0 go build -trimpath -o " + binary + " .",
	}, "\n") + "\n"
	builderBC := &buildv1.BuildConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "builder"},
		Spec: buildv1.BuildConfigSpec{
			RunPolicy: buildv1.BuildRunPolicySerial,
			CommonSpec: buildv1.CommonSpec{
				Source: buildv1.BuildSource{
					Git:        &buildv1.GitBuildSource{URI: sb.GitRepoURL("go-hello"), Ref: "main"},
					Dockerfile: &builderDockerfile,
				},
				Strategy: buildv1.BuildStrategy{DockerStrategy: &buildv1.DockerBuildStrategy{}},
				Output:   buildv1.BuildOutput{To: &corev1.ObjectReference{Kind: "ImageStreamTag", Name: "builder:latest"}},
			},
		},
	}
	runtimeDockerfile := "FROM scratch\nCOPY go-hello /go-hello\nENTRYPOINT [\"/go-hello\"]\n"
	runtimeBC := &buildv1.BuildConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "runtime"},
		Spec: buildv1.BuildConfigSpec{
			RunPolicy: buildv1.BuildRunPolicySerial,
			CommonSpec: buildv1.CommonSpec{
				Source: buildv1.BuildSource{
					Dockerfile: &runtimeDockerfile,
					Images: []buildv1.ImageSource{{
						From:  corev1.ObjectReference{Kind: "ImageStreamTag", Name: "builder:latest"},
						Paths: []buildv1.ImageSourcePath{{SourcePath: binary, DestinationDir: "."}},
					}},
				},
				Strategy: buildv1.BuildStrategy{DockerStrategy: &buildv1.DockerBuildStrategy{}},
				Output:   buildv1.BuildOutput{To: &corev1.ObjectReference{Kind: "ImageStreamTag", Name: "runtime:latest"}},
			},
		},
	}
	for _, bc := range []*buildv1.BuildConfig{builderBC, runtimeBC} {
		if _, err := builds.BuildV1().BuildConfigs(ns).Create(ctx, bc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// The builder: a Git source Shipwright resolves and OpenShift builds.
	bb := gitBuild(ns, "builder", "go-hello", buildConfigStrategy, param("buildconfig", "builder"))
	bb.Spec.Output = buildv1beta1.Image{Image: internalRef(ns, "builder", "latest")}
	createBuild(t, bb)
	builderRun := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, bb.Name).Name)
	requireSucceeded(t, builderRun)
	builderImg := checkOutput(ctx, t, builderRun, mirrorRef(ns, "builder", "latest"))
	var ist *imagev1.ImageStreamTag
	ist, err = images.ImageV1().ImageStreamTags(ns).Get(ctx, "builder:latest", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the builder's push did not tag builder:latest: %v", err)
	}
	if ist.Image.Name != builderImg.Digest || ist.Image.DockerImageReference != sim.InternalRegistry+"/"+ns+"/builder@"+builderImg.Digest {
		t.Errorf("builder:latest = %s (%s), the build pushed %s", ist.Image.Name, ist.Image.DockerImageReference, builderImg.Digest)
	}
	if ob := theOpenShiftBuild(ctx, t, ns, builderRun.Name); ob.Status.OutputDockerImageReference != internalRef(ns, "builder", "latest") {
		t.Errorf("builder build outputDockerImageReference = %q", ob.Status.OutputDockerImageReference)
	}

	// The runtime: no source of its own in Shipwright; OpenShift copies
	// the binary out of builder:latest.
	rb := &buildv1beta1.Build{
		ObjectMeta: metav1.ObjectMeta{Name: "runtime", Namespace: ns},
		Spec: buildv1beta1.BuildSpec{
			Strategy:    buildv1beta1.Strategy{Name: buildConfigStrategy, Kind: ptr.To(buildv1beta1.ClusterBuildStrategyKind)},
			ParamValues: []buildv1beta1.ParamValue{param("buildconfig", "runtime")},
			Output:      buildv1beta1.Image{Image: internalRef(ns, "runtime", "latest")},
			Timeout:     &metav1.Duration{Duration: runTimeout},
		},
	}
	createBuild(t, rb)
	runtimeRun := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, rb.Name).Name)
	requireSucceeded(t, runtimeRun)
	runtimeImg := checkOutput(ctx, t, runtimeRun, mirrorRef(ns, "runtime", "latest"))
	if runtimeRun.Status.Output.Size == 0 || runtimeRun.Status.Output.Size != imageSizeOf(ctx, t, images, ns, "runtime", runtimeImg.Digest) {
		t.Errorf("status.output.size = %d, imagestreamimages says %d", runtimeRun.Status.Output.Size, imageSizeOf(ctx, t, images, ns, "runtime", runtimeImg.Digest))
	}
	if runtimeImg.Layers != 1 {
		t.Errorf("runtime image has %d layers, want 1 (FROM scratch plus the binary)", runtimeImg.Layers)
	}
	got, err := kit.ReadFile(ctx, mirrorRef(ns, "runtime", "latest"), "/go-hello")
	if err != nil {
		t.Fatalf("the runtime image lacks the builder's binary: %v", err)
	}
	want, err := kit.ReadFile(ctx, kit.ByDigest(mirrorRef(ns, "builder", "latest"), builderImg.Digest), binary)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || string(got) != string(want) {
		t.Errorf("runtime /go-hello (%d bytes) is not the builder's %s (%d bytes)", len(got), binary, len(want))
	}

	// OpenShift resolved the source image at instantiate; the BuildConfig
	// keeps its ImageStreamTag.
	ob := theOpenShiftBuild(ctx, t, ns, runtimeRun.Name)
	wantFrom := corev1.ObjectReference{Kind: "DockerImage", Name: sim.InternalRegistry + "/" + ns + "/builder@" + builderImg.Digest}
	if len(ob.Spec.Source.Images) != 1 || ob.Spec.Source.Images[0].From != wantFrom {
		t.Errorf("runtime build's source image = %+v, want %+v", ob.Spec.Source.Images, wantFrom)
	}
	after, err := builds.BuildV1().BuildConfigs(ns).Get(ctx, "runtime", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if from := after.Spec.Source.Images[0].From; from.Kind != "ImageStreamTag" || from.Name != "builder:latest" {
		t.Errorf("the runtime BuildConfig's source image changed to %+v", from)
	}
}

// The go-hello-docker sample pushes to the integrated registry: the push
// creates the image stream, and the step reports status.output.size from
// imagestreamimages — the registry manifest's config plus layers.
func TestSampleOutputToInternalRegistry(t *testing.T) {
	ctx := testContext(t, 10*time.Minute)
	ns := newNamespace(t, true)
	b := sampleBuild(t, "go-hello-docker")
	if want := internalRef("ocbuild-samples", "go-hello", "latest"); b.Spec.Output.Image != want {
		t.Fatalf("the sample's output is %q; this test expects %q", b.Spec.Output.Image, want)
	}
	b.Namespace = ns
	b.Spec.Source.Git.URL = sb.GitRepoURL("go-hello")
	b.Spec.Source.Git.Revision = ptr.To("main")
	b.Spec.Source.ContextDir = nil // the git server serves samples/apps/go-hello as its own repository
	b.Spec.Output.Image = internalRef(ns, "go-hello", "latest")
	createBuild(t, &b)
	br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
	requireSucceeded(t, br)
	img := checkOutput(ctx, t, br, mirrorRef(ns, "go-hello", "latest"))
	if br.Status.Output.Size == 0 {
		t.Error("status.output.size is 0")
	}
	images := imageAPI(t)
	ist, err := images.ImageV1().ImageStreamTags(ns).Get(ctx, "go-hello:latest", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the push did not create go-hello:latest: %v", err)
	}
	if ist.Image.Name != img.Digest {
		t.Errorf("go-hello:latest = %s, pushed %s", ist.Image.Name, img.Digest)
	}
	if size := imageSizeOf(ctx, t, images, ns, "go-hello", img.Digest); size != br.Status.Output.Size {
		t.Errorf("imagestreamimages size %d, status.output.size %d", size, br.Status.Output.Size)
	}
	if log := stepLog(t, br); !strings.Contains(log, "image size ") {
		t.Errorf("step log lacks the image size line:\n%s", log)
	}
}
