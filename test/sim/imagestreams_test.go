package sim

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	buildv1 "github.com/openshift/api/build/v1"
	imagev1 "github.com/openshift/api/image/v1"
	imageclient "github.com/openshift/client-go/image/clientset/versioned"
	imagefake "github.com/openshift/client-go/image/clientset/versioned/fake"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
)

// emptyStream is an image stream as the webhook stores it on create.
func emptyStream(ns, name string) *imagev1.ImageStream {
	return &imagev1.ImageStream{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Status:     imagev1.ImageStreamStatus{DockerImageRepository: dockerImageRepository(ns, name)},
	}
}

func (h *ctrlHarness) stream(name string) *imagev1.ImageStream {
	h.t.Helper()
	is, err := h.images.ImageV1().ImageStreams("ns").Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return is
}

func inlineDockerBuild(name, bc string, n int, dockerfile string) *buildv1.Build {
	b := mkBuild(name, bc, n, "", "")
	b.Spec.Source = buildv1.BuildSource{Dockerfile: &dockerfile}
	b.Spec.Strategy = buildv1.BuildStrategy{DockerStrategy: &buildv1.DockerBuildStrategy{}}
	return b
}

// A build whose output is an ImageStreamTag pushes to the stream's
// repository on the integrated registry and moves the tag; a second build
// adds the newer event on top. A build copying a path out of that tag
// (source.images) gets the newest image's file.
func TestImageStreamTagOutputAndImageSource(t *testing.T) {
	h := newCtrlHarness(t)
	if _, err := h.images.ImageV1().ImageStreams("ns").Create(h.ctx, emptyStream("ns", "builder"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	builder := func(name string, n int, version string) *buildv1.Build {
		b := inlineDockerBuild(name, "builder", n, "FROM "+h.reg+"/sim/base:latest\nRUN mkdir -p /out && echo "+version+" > /out/app && ln -s app /out/current\n")
		b.Spec.Output.To = &corev1.ObjectReference{Kind: "ImageStreamTag", Name: "builder:latest"}
		return b
	}
	h.create(builder("builder-1", 1, "v1"))
	first := h.waitPhase("builder-1", buildv1.BuildPhaseComplete)
	wantRef := InternalRegistry + "/ns/builder:latest"
	if first.Status.OutputDockerImageReference != wantRef {
		t.Errorf("outputDockerImageReference = %q, want %q", first.Status.OutputDockerImageReference, wantRef)
	}
	if first.Status.Output.To == nil || first.Status.Output.To.ImageDigest == "" {
		t.Fatalf("no imageDigest: %+v", first.Status.Output)
	}
	d1 := first.Status.Output.To.ImageDigest
	desc, err := remote.Head(mustRef(t, h.reg+"/ns/builder:latest"))
	if err != nil {
		t.Fatalf("the push did not reach the registry's ns/builder: %v", err)
	}
	if desc.Digest.String() != d1 {
		t.Errorf("registry ns/builder:latest = %s, build reports %s", desc.Digest, d1)
	}
	ev, ok := latestEvent(h.stream("builder"), "latest")
	if !ok || ev.Image != d1 || ev.DockerImageReference != InternalRegistry+"/ns/builder@"+d1 || ev.Created.IsZero() {
		t.Fatalf("tag latest after the push: %+v", ev)
	}
	if !strings.Contains(h.log("builder-1"), "Pushing image "+wantRef+" ...") {
		t.Errorf("log lacks the push to %s:\n%s", wantRef, h.log("builder-1"))
	}

	h.create(builder("builder-2", 2, "v2"))
	second := h.waitPhase("builder-2", buildv1.BuildPhaseComplete)
	d2 := second.Status.Output.To.ImageDigest
	is := h.stream("builder")
	if len(is.Status.Tags) != 1 || len(is.Status.Tags[0].Items) != 2 || is.Status.Tags[0].Items[0].Image != d2 || is.Status.Tags[0].Items[1].Image != d1 {
		t.Fatalf("tags after the second push (want %s on top of %s): %+v", d2, d1, is.Status.Tags)
	}

	// The runtime image: FROM scratch with the builder's file, copied
	// through a symlink inside the builder image.
	rt := inlineDockerBuild("runtime-1", "runtime", 1, "FROM scratch\nCOPY current /app\n")
	rt.Spec.Source.Images = []buildv1.ImageSource{{
		From:  corev1.ObjectReference{Kind: "ImageStreamTag", Name: "builder:latest"},
		Paths: []buildv1.ImageSourcePath{{SourcePath: "/out/current", DestinationDir: "."}},
	}}
	rt.Spec.Output.To = &corev1.ObjectReference{Kind: "DockerImage", Name: h.reg + "/ns/runtime:latest"}
	h.create(rt)
	h.waitPhase("runtime-1", buildv1.BuildPhaseComplete)
	img, err := pullImage(h.ctx, h.reg, rt.Spec.Output.To.Name)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := imageFiles(t, img)
	if files["app"] != "v2\n" {
		t.Errorf("runtime image /app = %q, want the newest builder's %q (files %v)", files["app"], "v2\n", files)
	}
	log := h.log("runtime-1")
	for _, want := range []string{"Extracting image content from " + InternalRegistry + "/ns/builder@" + d2, `Copying "/out/current" from the image`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	// The stored Build keeps its reference; only the builder resolved it.
	if got := h.get("runtime-1").Spec.Source.Images[0].From; got.Kind != "ImageStreamTag" || got.Name != "builder:latest" {
		t.Errorf("stored source image reference = %+v", got)
	}
}

// Image stream references that do not resolve keep a build New with
// OpenShift's reasons; a push to the integrated registry without a tag is
// recorded as latest, creating the stream.
func TestImageReferencesThatDoNotResolve(t *testing.T) {
	h := newCtrlHarness(t)
	if _, err := h.images.ImageV1().ImageStreams("ns").Create(h.ctx, emptyStream("ns", "builder"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	src := inlineDockerBuild("src-1", "src", 1, "FROM scratch\nCOPY app /app\n")
	src.Spec.Source.Images = []buildv1.ImageSource{{
		From:  corev1.ObjectReference{Kind: "ImageStreamTag", Name: "builder:latest"}, // the stream exists, the tag does not
		Paths: []buildv1.ImageSourcePath{{SourcePath: "/app", DestinationDir: "."}},
	}}
	src.Spec.Output.To = &corev1.ObjectReference{Kind: "DockerImage", Name: InternalRegistry + "/ns/app"}
	h.create(src)
	b := h.waitFor("src-1", "got a reason", func(b *buildv1.Build) bool { return b.Status.Reason != "" })
	if b.Status.Phase != buildv1.BuildPhaseNew || b.Status.Reason != buildv1.StatusReasonInvalidImageReference || b.Status.Message != "Referenced image could not be resolved." {
		t.Errorf("source image of a missing tag: %+v", b.Status)
	}

	// Once the tag exists the waiting build starts, and its push to
	// <internal>/ns/app (no tag) creates stream app with tag latest.
	if err := h.c.streams.recordPush(h.ctx, "ns", "builder", "latest", mustPushRandom(t, h.reg+"/ns/builder:latest", "app")); err != nil {
		t.Fatal(err)
	}
	done := h.waitPhase("src-1", buildv1.BuildPhaseComplete)
	ev, ok := latestEvent(h.stream("app"), "latest")
	if !ok || ev.Image != done.Status.Output.To.ImageDigest {
		t.Errorf("stream app after the push: %+v, build digest %+v", h.stream("app").Status, done.Status.Output.To)
	}
	if done.Status.OutputDockerImageReference != InternalRegistry+"/ns/app" {
		t.Errorf("outputDockerImageReference = %q", done.Status.OutputDockerImageReference)
	}
}

// mustPushRandom pushes an image holding file (content "from the builder")
// to ref on the test registry and returns its digest.
func mustPushRandom(t *testing.T, ref, file string) string {
	t.Helper()
	img := imageWithEntries(t, tarEntry{name: file, body: "from the builder\n", mode: 0o755})
	if err := remote.Write(mustRef(t, ref), img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

type tarEntry struct {
	name, body, link string
	typ              byte
	mode             int64
}

// imageWithEntries is an image of one layer holding entries.
func imageWithEntries(t *testing.T, entries ...tarEntry) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Typeflag: e.typ, Linkname: e.link}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Copying out of an image follows its symlinks only inside the image and
// never writes through a symlink, so nothing lands outside the context.
func TestCopyFromImageStaysInside(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	img := imageWithEntries(t,
		tarEntry{name: "app/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "app/bin/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "app/bin/tool", body: "#!tool\n", mode: 0o755},
		tarEntry{name: "app/bin/host", typ: tar.TypeSymlink, link: secret},
		tarEntry{name: "app/current", typ: tar.TypeSymlink, link: "/app/bin"},
		tarEntry{name: "app/up", typ: tar.TypeSymlink, link: "../../../../../.."},
		tarEntry{name: "app/data/x.txt", body: "x"},
	)
	ctxDir := t.TempDir()
	var logged []string
	log := func(l string) { logged = append(logged, l) }
	err := copyFromImage(img, ctxDir, []imagePath{
		{source: "/app/current/tool", dest: ctxDir},                     // through an absolute link inside the image
		{source: "/app/data/.", dest: filepath.Join(ctxDir, "data")},    // a directory's contents
		{source: "/app/bin", dest: filepath.Join(ctxDir, "copy", "of")}, // a directory with a link to the host
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(logged) != 3 || !strings.Contains(strings.Join(logged, "\n"), `Copying "/app/data/." from the image to `) {
		t.Errorf("log lines %q", logged)
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(ctxDir, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
		}
		return string(b)
	}
	if got := read("tool"); got != "#!tool\n" {
		t.Errorf("tool = %q", got)
	}
	if fi, err := os.Stat(filepath.Join(ctxDir, "tool")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("tool mode: %v %v", fi.Mode(), err)
	}
	if got := read("data/x.txt"); got != "x" {
		t.Errorf("data/x.txt = %q", got)
	}
	if got := read("copy/of/bin/tool"); got != "#!tool\n" {
		t.Errorf("copy/of/bin/tool = %q", got)
	}
	if fi, err := os.Lstat(filepath.Join(ctxDir, "copy/of/bin/host")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("copy/of/bin/host should be copied as the symlink it is: %v %v", fi, err)
	}

	// Sources whose links lead out of the image resolve inside it, where
	// nothing exists: an error, and the host's file is not copied.
	for _, src := range []string{"/app/bin/host", "/app/up" + secret, "/app/current/../../../.." + secret} {
		err := copyFromImage(img, ctxDir, []imagePath{{source: src, dest: filepath.Join(ctxDir, "leak")}}, log)
		if err == nil || !strings.Contains(err.Error(), "no such file or directory in the image") {
			t.Errorf("%s: err = %v, want no such file in the image", src, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(ctxDir, "leak")); err == nil {
		entries, _ := os.ReadDir(filepath.Join(ctxDir, "leak"))
		if len(entries) > 0 {
			t.Errorf("something was copied for sources leaving the image: %v", entries)
		}
	}

	// A destination behind a symlink in the context is refused.
	if err := os.Symlink(outside, filepath.Join(ctxDir, "via")); err != nil {
		t.Fatal(err)
	}
	err = copyFromImage(img, ctxDir, []imagePath{{source: "/app/data/x.txt", dest: filepath.Join(ctxDir, "via")}}, log)
	if err == nil || !strings.Contains(err.Error(), "is a symlink") {
		t.Errorf("writing through a symlink: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "x.txt")); err == nil {
		t.Error("x.txt was written outside the context through a symlink")
	}
}

// imageHarness is a front door with image streams over a test registry.
func imageHarness(t *testing.T) (*harness, *imagefake.Clientset, string) {
	t.Helper()
	h := newHarness(t, storedBC(nil))
	images := imagefake.NewSimpleClientset()
	reg := newTestRegistry(t)
	h.fd.streams = newImageStreams(images, reg)
	return h, images, reg
}

// imagestreamimages report the size OpenShift computes (config blob plus
// distinct compressed layers): the figure pkg/imagesize reads for the
// step's status.output.size, through the request the step makes.
func TestImageStreamImagesSize(t *testing.T) {
	h, images, reg := imageHarness(t)
	ctx := context.Background()
	layer, err := random.Layer(3000, "application/vnd.docker.image.rootfs.diff.tar.gzip")
	if err != nil {
		t.Fatal(err)
	}
	other, err := random.Layer(5000, "application/vnd.docker.image.rootfs.diff.tar.gzip")
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer, other, layer) // one layer twice
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, reg+"/ns/app:latest"), img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	if _, err := images.ImageV1().ImageStreams("ns").Create(ctx, emptyStream("ns", "app"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := h.fd.streams.recordPush(ctx, "ns", "app", "latest", digest.String()); err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	rawConfig, _ := img.RawConfigFile()
	// pkg/imagesize's figure for a registry image (ImageSize): the
	// manifest's config size plus each distinct layer.
	want := m.Config.Size + m.Layers[0].Size + m.Layers[1].Size
	if int64(len(rawConfig)) != m.Config.Size {
		t.Fatalf("config blob %d bytes, manifest says %d", len(rawConfig), m.Config.Size)
	}

	// The step's request (pkg/imagesize internalSize): imagestreamimages
	// <stream>@<digest>, dockerImageMetadata.Size.
	client, err := imageclient.NewForConfig(&rest.Config{Host: h.srv.URL, BearerToken: goodToken})
	if err != nil {
		t.Fatal(err)
	}
	isi, err := client.ImageV1().ImageStreamImages("ns").Get(ctx, "app@"+digest.String(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var meta struct{ Size int64 }
	if err := json.Unmarshal(isi.Image.DockerImageMetadata.Raw, &meta); err != nil {
		t.Fatal(err)
	}
	if meta.Size != want {
		t.Errorf("dockerImageMetadata.Size = %d, want %d (config %d + distinct layers)", meta.Size, want, m.Config.Size)
	}
	if isi.Name != "app@"+digest.String() || isi.Image.Name != digest.String() || isi.Image.DockerImageReference != InternalRegistry+"/ns/app@"+digest.String() ||
		len(isi.Image.DockerImageLayers) != 3 || isi.Image.DockerImageManifest != "" || isi.Image.DockerImageConfig != "" {
		t.Errorf("imagestreamimage %s: image %s ref %s, %d layers", isi.Name, isi.Image.Name, isi.Image.DockerImageReference, len(isi.Image.DockerImageLayers))
	}
	// A unique prefix of the digest names the image too.
	if _, err := client.ImageV1().ImageStreamImages("ns").Get(ctx, "app@"+digest.String()[:20], metav1.GetOptions{}); err != nil {
		t.Errorf("digest prefix: %v", err)
	}
	resp := h.do("GET", "/apis/image.openshift.io/v1/namespaces/ns/imagestreamimages/app@sha256:0000", nil)
	expectStatus(t, resp, http.StatusNotFound, `imagestreamimages.image.openshift.io "app@sha256:0000" not found`)
}

// imagestreamtags: <stream>:<tag> only (no :latest default on reads), the
// newest event's image, NotFound for the stream or the tag, list, RBAC.
func TestImageStreamTags(t *testing.T) {
	h, images, reg := imageHarness(t)
	ctx := context.Background()
	if _, err := images.ImageV1().ImageStreams("ns").Create(ctx, emptyStream("ns", "app"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := mustPushRandom(t, reg+"/ns/app:v1", "bin/app")
	if err := h.fd.streams.recordPush(ctx, "ns", "app", "v1", d); err != nil {
		t.Fatal(err)
	}
	client, err := imageclient.NewForConfig(&rest.Config{Host: h.srv.URL, BearerToken: goodToken})
	if err != nil {
		t.Fatal(err)
	}
	ist, err := client.ImageV1().ImageStreamTags("ns").Get(ctx, "app:v1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ist.Name != "app:v1" || ist.Image.Name != d || ist.Image.DockerImageReference != InternalRegistry+"/ns/app@"+d {
		t.Errorf("imagestreamtag %s: image %s %s", ist.Name, ist.Image.Name, ist.Image.DockerImageReference)
	}
	var meta struct{ Size int64 }
	if err := json.Unmarshal(ist.Image.DockerImageMetadata.Raw, &meta); err != nil || meta.Size == 0 {
		t.Errorf("dockerImageMetadata %s: %v", ist.Image.DockerImageMetadata.Raw, err)
	}
	list, err := client.ImageV1().ImageStreamTags("ns").List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "app:v1" {
		t.Errorf("list: %v %+v", err, list)
	}

	base := "/apis/image.openshift.io/v1/namespaces/ns/imagestreamtags/"
	expectStatus(t, h.do("GET", base+"app", nil), http.StatusBadRequest, "ImageStreamTags must be retrieved with <name>:<tag>")
	expectStatus(t, h.do("GET", base+"app:latest", nil), http.StatusNotFound, `imagestreamtags.image.openshift.io "app:latest" not found`)
	expectStatus(t, h.do("GET", base+"nothere:v1", nil), http.StatusNotFound, `imagestreams.image.openshift.io "nothere" not found`)
	expectStatus(t, h.do("DELETE", base+"app:v1", nil), http.StatusMethodNotAllowed, `delete is not supported on resources of kind "imagestreamtags.image.openshift.io"`)

	h.access.allow = func(_ string, a authorizationv1.ResourceAttributes) bool { return a.Resource != "imagestreamtags" }
	expectStatus(t, h.do("GET", base+"app:v1", nil), http.StatusForbidden,
		`imagestreamtags.image.openshift.io "app:v1" is forbidden: User "`+stepUser+`" cannot get resource "imagestreamtags" in API group "image.openshift.io" in the namespace "ns"`)
}

// instantiate resolves the strategy's from and the source images given as
// ImageStreamTags into pull specs by digest in the Build (the BuildConfig
// keeps them); a tag that does not exist fails the instantiate with the
// generator's 422 before lastVersion moves.
func TestInstantiateResolvesImageStreamTags(t *testing.T) {
	h, images, reg := imageHarness(t)
	ctx := context.Background()
	if _, err := images.ImageV1().ImageStreams("ns").Create(ctx, emptyStream("ns", "builder"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := mustPushRandom(t, reg+"/ns/builder:latest", "app")
	if err := h.fd.streams.recordPush(ctx, "ns", "builder", "latest", d); err != nil {
		t.Fatal(err)
	}
	bc, err := h.builds.BuildV1().BuildConfigs("ns").Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bc.Spec.Strategy.DockerStrategy.From = &corev1.ObjectReference{Kind: "ImageStreamTag", Name: "builder:latest"}
	bc.Spec.Source.Images = []buildv1.ImageSource{{From: corev1.ObjectReference{Kind: "ImageStreamTag", Name: "builder:latest"},
		Paths: []buildv1.ImageSourcePath{{SourcePath: "/app", DestinationDir: "."}}}}
	if _, err := h.builds.BuildV1().BuildConfigs("ns").Update(ctx, bc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	resp := h.do("POST", instantiatePath, body(t, &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: "app"}}))
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("HTTP %d: %+v", resp.StatusCode, readStatus(t, resp))
	}
	var b buildv1.Build
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatal(err)
	}
	want := corev1.ObjectReference{Kind: "DockerImage", Name: InternalRegistry + "/ns/builder@" + d}
	if got := b.Spec.Strategy.DockerStrategy.From; got == nil || *got != want {
		t.Errorf("build's dockerStrategy.from = %+v, want %+v", got, want)
	}
	if got := b.Spec.Source.Images[0].From; got != want {
		t.Errorf("build's source image = %+v, want %+v", got, want)
	}
	after, _ := h.builds.BuildV1().BuildConfigs("ns").Get(ctx, "app", metav1.GetOptions{})
	if got := after.Spec.Strategy.DockerStrategy.From; got.Kind != "ImageStreamTag" || got.Name != "builder:latest" {
		t.Errorf("the BuildConfig's from changed to %+v", got)
	}

	after.Spec.Strategy.DockerStrategy.From = &corev1.ObjectReference{Kind: "ImageStreamTag", Name: "builder:nope"}
	if _, err := h.builds.BuildV1().BuildConfigs("ns").Update(ctx, after, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expectStatus(t, h.do("POST", instantiatePath, body(t, &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: "app"}})), http.StatusUnprocessableEntity,
		`Error resolving ImageStreamTag builder:nope in namespace ns: imagestreamtags.image.openshift.io "builder:nope" not found`)
	if again, _ := h.builds.BuildV1().BuildConfigs("ns").Get(ctx, "app", metav1.GetOptions{}); again.Status.LastVersion != after.Status.LastVersion {
		t.Errorf("lastVersion moved to %d on a failed instantiate", again.Status.LastVersion)
	}
}

// The webhook gives a stream its repository and keeps users from writing
// status (OpenShift's imagestreams/status); the simulator writes it.
func TestMutateImageStream(t *testing.T) {
	a := &admitter{loopbackUser: "admin"}
	const withTags = `{"metadata":{"name":"app","namespace":"ns"},"status":{"tags":[{"tag":"x","items":[]}]}}`
	const stored = `{"metadata":{"name":"app","namespace":"ns"},"status":{"dockerImageRepository":"` + InternalRegistry + `/ns/app","tags":[{"tag":"v1","items":[]}]}}`
	status := func(user string, op admissionv1.Operation, obj, old string) map[string]any {
		t.Helper()
		req := &admissionv1.AdmissionRequest{
			UID: "u", Resource: metav1.GroupVersionResource{Group: ImageGroup, Version: "v1", Resource: "imagestreams"},
			Operation: op, Name: "app", Namespace: "ns", Object: runtime.RawExtension{Raw: []byte(obj)},
			UserInfo: authenticationv1.UserInfo{Username: user},
		}
		if old != "" {
			req.OldObject = runtime.RawExtension{Raw: []byte(old)}
		}
		resp := a.mutate(context.Background(), req)
		if !resp.Allowed {
			t.Fatalf("denied: %+v", resp.Result)
		}
		var ops []patchOp
		if err := json.Unmarshal(resp.Patch, &ops); err != nil || len(ops) != 1 || ops[0].Path != "/status" {
			t.Fatalf("patch %s: %v", resp.Patch, err)
		}
		return ops[0].Value.(map[string]any)
	}
	if st := status("alice", admissionv1.Create, withTags, ""); st["dockerImageRepository"] != InternalRegistry+"/ns/app" || st["tags"] != nil {
		t.Errorf("status of a user's create = %v, want only the repository", st)
	}
	if st := status("alice", admissionv1.Update, withTags, stored); st["tags"].([]any)[0].(map[string]any)["tag"] != "v1" {
		t.Errorf("a user's update changed the status tags: %v", st)
	}
	if st := status("admin", admissionv1.Create, withTags, ""); st["tags"] == nil || st["dockerImageRepository"] == nil {
		t.Errorf("the simulator's own status was not kept: %v", st)
	}
}
