package openshift

// The round trip of `ocbuild convert` (issue 12): a BuildConfig run
// directly by OpenShift, and the same BuildConfig converted and run as a
// BuildRun of the owned strategy it converts to, produce the same image.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	buildv1 "github.com/openshift/api/build/v1"
	buildclient "github.com/openshift/client-go/build/clientset/versioned"
	buildv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/ocbuild/ocbuild/pkg/cli"
	"github.com/ocbuild/ocbuild/test/e2e/openshift/kit"
	"github.com/ocbuild/ocbuild/test/sim"
)

// roundTrip is one BuildConfig of TestConvertRoundTrip.
type roundTrip struct {
	bc *buildv1.BuildConfig
	// strategy is the owned strategy the conversion must choose.
	strategy string
	// base is the image the build starts from; its layers must be the
	// first layers of both images.
	base string
	// onlyDirect are paths the direct image has and the converted one must
	// not; timestamped are paths whose content holds the build's time, so
	// only their type, mode, owner and size are compared. Each says why.
	onlyDirect, timestamped func(p string) bool
	// check asserts, on one of the two images, what a user of the image
	// would notice if the conversion had lost a field.
	check func(ctx context.Context, t *testing.T, ref string, img *kit.Image)
}

// The labels and environment variables that differ between the two images
// by construction, not by anything the conversion did:
var (
	// io.openshift.build.name is the OpenShift build that made the image
	// (<bc>-1 for the direct build, a build of the step's BuildConfig for
	// the BuildRun); io.k8s.display-name (S2I) is the output image's pull
	// spec, whose tag the migration changes on purpose.
	roundTripOwnLabels = []string{"io.openshift.build.name", "io.k8s.display-name"}
	// OPENSHIFT_BUILD_NAME is the build's name, as the label above.
	roundTripOwnEnv = []string{"OPENSHIFT_BUILD_NAME"}

	// What the owned strategies cannot carry: the step uploads the source
	// Shipwright cloned as a binary build (oc start-build --from-dir with
	// the commit), so OpenShift's builder knows the commit (id, author,
	// message: the same on both images) but not the Git source. These are
	// on the direct image only; the test requires exactly that, so a
	// change either way shows.
	// (S2I repeats them as io.openshift.s2i.build.*; source-context-dir
	// only with a contextDir.)
	roundTripBinaryLostLabels = []string{
		"io.openshift.build.commit.ref", "io.openshift.build.source-context-dir", "io.openshift.build.source-location",
		"io.openshift.s2i.build.commit.ref", "io.openshift.s2i.build.source-context-dir", "io.openshift.s2i.build.source-location",
	}
	roundTripBinaryLostEnv = []string{"OPENSHIFT_BUILD_REFERENCE", "OPENSHIFT_BUILD_SOURCE"}
)

// TestConvertRoundTrip runs a BuildConfig of each owned strategy directly,
// converts it with `ocbuild convert --from-cluster` and runs the Build it
// writes as a BuildRun, then compares the two images: their labels, their
// configuration, their base layers, and what the build added.
func TestConvertRoundTrip(t *testing.T) {
	t.Run("docker", func(t *testing.T) {
		const base = "registry.access.redhat.com/ubi9/ubi-minimal:latest"
		runRoundTrip(t, roundTrip{
			strategy: dockerStrategy,
			base:     base,
			bc: &buildv1.BuildConfig{
				ObjectMeta: metav1.ObjectMeta{Name: "greeter", Labels: map[string]string{"app": "greeter"}},
				Spec: buildv1.BuildConfigSpec{
					RunPolicy: buildv1.BuildRunPolicySerial,
					CommonSpec: buildv1.CommonSpec{
						CompletionDeadlineSeconds: ptr.To[int64](600),
						Source: buildv1.BuildSource{
							Git:        &buildv1.GitBuildSource{URI: sb.GitRepoURL("roundtrip-docker"), Ref: "main"},
							ContextDir: "app",
						},
						Strategy: buildv1.BuildStrategy{DockerStrategy: &buildv1.DockerBuildStrategy{
							// The Dockerfile's FROM names an image the sandbox
							// does not hold: without from the build fails.
							From:           &corev1.ObjectReference{Kind: "DockerImage", Name: base},
							DockerfilePath: "build.Dockerfile",
							BuildArgs:      []corev1.EnvVar{{Name: "FLAVOUR", Value: "round-trip"}},
							Env:            []corev1.EnvVar{{Name: "GREETING", Value: "hello from the BuildConfig"}},
						}},
						Output: buildv1.BuildOutput{
							To: &corev1.ObjectReference{Kind: "ImageStreamTag", Name: "greeter:latest"},
							ImageLabels: []buildv1.ImageLabel{
								{Name: "org.opencontainers.image.title", Value: "greeter"},
								{Name: "com.example.team", Value: "storefront"},
							},
						},
					},
				},
			},
			check: func(ctx context.Context, t *testing.T, ref string, img *kit.Image) {
				// RUN wrote the build argument and the build env.
				got, err := kit.ReadFile(ctx, ref, "/opt/app/build-info.txt")
				if err != nil {
					t.Fatalf("%s: %v", ref, err)
				}
				if want := "flavour=round-trip\ngreeting=hello from the BuildConfig\n"; string(got) != want {
					t.Errorf("%s: /opt/app/build-info.txt = %q, want %q (buildArgs FLAVOUR and env GREETING, as RUN saw them)", ref, got, want)
				}
				if !hasEnv(img.Config.Config.Env, "GREETING=hello from the BuildConfig") {
					t.Errorf("%s: the image's environment lacks the strategy env GREETING: %q", ref, img.Config.Config.Env)
				}
			},
		})
	})
	t.Run("s2i", func(t *testing.T) {
		const builder = "registry.access.redhat.com/ubi9/python-311:latest"
		runRoundTrip(t, roundTrip{
			strategy: s2iStrategy,
			base:     builder,
			bc: &buildv1.BuildConfig{
				ObjectMeta: metav1.ObjectMeta{Name: "flask", Labels: map[string]string{"app": "flask"}},
				Spec: buildv1.BuildConfigSpec{
					RunPolicy: buildv1.BuildRunPolicySerial,
					CommonSpec: buildv1.CommonSpec{
						CompletionDeadlineSeconds: ptr.To[int64](600),
						Source: buildv1.BuildSource{
							Git: &buildv1.GitBuildSource{URI: sb.GitRepoURL("flask-private-index"), Ref: "main"},
						},
						Strategy: buildv1.BuildStrategy{SourceStrategy: &buildv1.SourceBuildStrategy{
							From: corev1.ObjectReference{Kind: "DockerImage", Name: builder},
							// The requirements come from the private index
							// only: without PIP_INDEX_URL the build fails.
							Env: []corev1.EnvVar{
								{Name: "APP_MODULE", Value: "app:app"},
								{Name: "PIP_INDEX_URL", Value: sb.PackageIndexURL},
								{Name: "PIP_TRUSTED_HOST", Value: "127.0.0.1"},
								{Name: "PIP_DISABLE_PIP_VERSION_CHECK", Value: "1"},
							},
							Incremental: ptr.To(true),
							ForcePull:   true,
						}},
						Output: buildv1.BuildOutput{
							To: &corev1.ObjectReference{Kind: "ImageStreamTag", Name: "flask:latest"},
							ImageLabels: []buildv1.ImageLabel{
								{Name: "org.opencontainers.image.title", Value: "flask-hello"},
								{Name: "com.example.team", Value: "storefront"},
							},
						},
					},
				},
			},
			// OpenShift clones with .git and S2I copies it into the
			// application; the step leaves .git out of its upload
			// (include-git "false", see TestS2IGitDirectory), and the
			// converter does not set include-git.
			onlyDirect: func(p string) bool {
				return p == "/opt/app-root/src/.git" || strings.HasPrefix(p, "/opt/app-root/src/.git/")
			},
			// Found by running: pip compiles every module at install, and a
			// .pyc's header holds its source's mtime (the install time);
			// pip's HTTP cache stores the responses with their Date and
			// the wheel it builds of ocbuild-greeting's sdist is a zip with
			// file times. Everything else assemble writes is byte-identical.
			timestamped: func(p string) bool {
				return strings.HasSuffix(p, ".pyc") || strings.HasPrefix(p, "/opt/app-root/src/.cache/pip/")
			},
			check: func(ctx context.Context, t *testing.T, ref string, img *kit.Image) {
				if !hasEnv(img.Config.Config.Env, "APP_MODULE=app:app") {
					t.Errorf("%s: the image's environment lacks the strategy env APP_MODULE=app:app: %q", ref, img.Config.Config.Env)
				}
				// assemble installed the company package from the private index.
				tree, err := fileTree(ctx, ref)
				if err != nil {
					t.Fatal(err)
				}
				found := false
				for p := range tree {
					if strings.HasSuffix(p, "/site-packages/ocbuild_greeting/__init__.py") {
						found = true
					}
				}
				if !found {
					t.Errorf("%s: no site-packages/ocbuild_greeting: assemble did not install the private index's package", ref)
				}
			},
		})
	})
}

func runRoundTrip(t *testing.T, rt roundTrip) {
	ctx := testContext(t, 12*time.Minute)
	ns := newNamespace(t, true)
	images := imageAPI(t)
	stream, _, _ := strings.Cut(rt.bc.Spec.Output.To.Name, ":")
	// As `oc new-build` does: the output's image stream exists first.
	createImageStream(ctx, t, images, ns, stream)

	// 1. The BuildConfig, run directly, as `oc create` and `oc start-build`
	// would, through the OpenShift endpoint (which serves instantiate).
	oc := openShiftBuilds(t)
	bc, err := oc.BuildV1().BuildConfigs(ns).Create(ctx, rt.bc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating BuildConfig %s: %v", rt.bc.Name, err)
	}
	direct, err := oc.BuildV1().BuildConfigs(ns).Instantiate(ctx, bc.Name, &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: bc.Name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("instantiating BuildConfig %s: %v", bc.Name, err)
	}
	direct = waitBuildComplete(ctx, t, ns, direct.Name)
	directRef := mirrorRef(ns, stream, "latest")
	directImg, err := kit.Inspect(ctx, directRef)
	if err != nil {
		t.Fatalf("the direct build %s pushed nothing readable to %s: %v", direct.Name, directRef, err)
	}
	if d := direct.Status.Output.To; d == nil || d.ImageDigest != directImg.Digest {
		t.Errorf("build %s: status.output.to = %+v, the registry has %s", direct.Name, d, directImg.Digest)
	}

	// 2. The same BuildConfig, converted as a user would: ocbuild convert
	// --from-cluster, the Build it writes.
	b := convertFromCluster(t, ns, bc.Name, rt.strategy)
	// What a user migrating changes: the output, to another tag of the
	// same image stream, so the two images do not overwrite each other.
	// Nothing else.
	want := internalRef(ns, stream, "latest")
	if b.Spec.Output.Image != want {
		t.Fatalf("converted spec.output.image = %q, want %q (the image stream's repository and tag)", b.Spec.Output.Image, want)
	}
	b.Spec.Output.Image = internalRef(ns, stream, "shipwright")
	// And as the converter's warning says: the step creates and owns a
	// BuildConfig of the Build's name, so the old one goes first (see
	// deleteBuildConfig for why not --cascade=orphan).
	deleteBuildConfig(ctx, t, ns, bc.Name)

	createBuild(t, b)
	br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
	requireSucceeded(t, br)
	convertedRef := mirrorRef(ns, stream, "shipwright")
	convertedImg := checkOutput(ctx, t, br, convertedRef)
	ob := theOpenShiftBuild(ctx, t, ns, br.Name)

	// 3. The same build, as OpenShift ran it: strategy and labels.
	compareBuilds(t, direct, ob)

	// 4. The same image.
	directRef, convertedRef = kit.ByDigest(directRef, directImg.Digest), kit.ByDigest(convertedRef, convertedImg.Digest)
	for _, l := range rt.bc.Spec.Output.ImageLabels {
		for _, img := range []*kit.Image{directImg, convertedImg} {
			if got := img.Config.Config.Labels[l.Name]; got != l.Value {
				t.Errorf("image %s: label %s = %q, want %q (spec.output.imageLabels)", img.Digest, l.Name, got, l.Value)
			}
		}
	}
	compareLabels(t, directImg, convertedImg)
	compareConfig(t, directImg, convertedImg)
	compareLayers(ctx, t, rt, directRef, convertedRef)
	rt.check(ctx, t, directRef, directImg)
	rt.check(ctx, t, convertedRef, convertedImg)
}

// openShiftBuilds is a build.openshift.io client of the OpenShift endpoint
// (the front door), as oc uses it.
func openShiftBuilds(t *testing.T) buildclient.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", sb.OpenShiftKubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	oc, err := buildclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return oc
}

// waitBuildComplete watches the OpenShift build until it is Complete; any
// other final phase fails the test.
func waitBuildComplete(ctx context.Context, t *testing.T, ns, name string) *buildv1.Build {
	t.Helper()
	var got *buildv1.Build
	err := watchBuilds(ctx, ns, "", nameSelector(name), func(items []*buildv1.Build) (bool, error) {
		if len(items) != 1 {
			return false, nil
		}
		got = items[0]
		switch got.Status.Phase {
		case buildv1.BuildPhaseComplete:
			return true, nil
		case buildv1.BuildPhaseFailed, buildv1.BuildPhaseError, buildv1.BuildPhaseCancelled:
			return false, fmt.Errorf("build %s ended %s (%s): %s", name, got.Status.Phase, got.Status.Reason, got.Status.Message)
		}
		return false, nil
	})
	if err != nil {
		if got != nil {
			log, _ := simLog(ns, name)
			t.Logf("build log of %s:\n%s", name, strings.Join(log, "\n"))
		}
		t.Fatalf("waiting for OpenShift build %s/%s to complete: %v", ns, name, err)
	}
	return got
}

// convertFromCluster runs `ocbuild convert --from-cluster -n ns` against
// the OpenShift endpoint, requires one Build of strategy with nothing left
// with the BuildConfig, and decodes it strictly.
func convertFromCluster(t *testing.T, ns, name, strategy string) *buildv1beta1.Build {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args := []string{"convert", "--from-cluster", "-n", ns, "--kubeconfig", sb.OpenShiftKubeconfigPath}
	code := cli.Main(testContext(t, 2*time.Minute), args, &stdout, &stderr, "e2e")
	t.Logf("ocbuild %s: exit %d; report:\n%s", strings.Join(args, " "), code, stderr.String())
	if code != 0 {
		t.Fatalf("ocbuild convert exited %d:\n%s", code, stderr.String())
	}
	if want := fmt.Sprintf("-> Build %s/%s, strategy %s: nothing stays with the BuildConfig", ns, name, strategy); !strings.Contains(stderr.String(), want) {
		t.Fatalf("the report lacks %q:\n%s", want, stderr.String())
	}
	var found []*buildv1beta1.Build
	r := utilyaml.NewYAMLReader(bufio.NewReader(&stdout))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("ocbuild convert's output is not YAML: %v\n%s", err, stdout.String())
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Kind != "Build" {
			t.Fatalf("ocbuild convert wrote a %s %s; want only the Build:\n%s", meta.APIVersion, meta.Kind, doc)
		}
		b := &buildv1beta1.Build{}
		if err := yaml.UnmarshalStrict(doc, b); err != nil {
			t.Fatalf("the converted Build does not decode strictly: %v\n%s", err, doc)
		}
		found = append(found, b)
	}
	if len(found) != 1 || found[0].Name != name || found[0].Spec.Strategy.Name != strategy {
		t.Fatalf("ocbuild convert wrote %d Builds, want one named %s of %s:\n%s", len(found), name, strategy, stdout.String())
	}
	t.Logf("converted Build:\n%s", stdout.String())
	return found[0]
}

// deleteBuildConfig is `oc delete bc/<name>` and waits until the
// BuildConfig and its builds are gone.
//
// As docs/migration.md says, not --cascade=orphan: the step's new
// BuildConfig of the same name numbers its first build <name>-1 again, and
// instantiatebinary fails with builds.build.openshift.io "<name>-1" already
// exists (seen in this test's first runs). The old builds go; their images
// stay.
func deleteBuildConfig(ctx context.Context, t *testing.T, ns, name string) {
	t.Helper()
	bcs := builds.BuildV1().BuildConfigs(ns)
	if err := bcs.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}); err != nil {
		t.Fatalf("deleting BuildConfig %s: %v", name, err)
	}
	poll(ctx, t, time.Minute, "BuildConfig "+name+" and its builds to be deleted", func(ctx context.Context) (bool, error) {
		if _, err := bcs.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return false, nil
		}
		list, err := builds.BuildV1().Builds(ns).List(ctx, metav1.ListOptions{LabelSelector: buildv1.BuildConfigLabel + "=" + name})
		return err == nil && len(list.Items) == 0, nil
	})
}

// compareBuilds checks that OpenShift ran the same build: the strategy
// (env, build args, from, Dockerfile path, incremental, forcePull) and the
// output's labels. The source differs by design: the direct build clones
// Git, ocbuild uploads what Shipwright cloned.
func compareBuilds(t *testing.T, direct, converted *buildv1.Build) {
	t.Helper()
	if !reflect.DeepEqual(direct.Spec.Strategy, converted.Spec.Strategy) {
		t.Errorf("OpenShift builds' strategies differ:\ndirect %s:    %s\nconverted %s: %s", direct.Name, mustJSON(direct.Spec.Strategy), converted.Name, mustJSON(converted.Spec.Strategy))
	}
	// As a set: the step writes them sorted by name; an image's labels are
	// a map.
	if !reflect.DeepEqual(imageLabelMap(direct.Spec.Output.ImageLabels), imageLabelMap(converted.Spec.Output.ImageLabels)) {
		t.Errorf("OpenShift builds' output.imageLabels differ: direct %s %v, converted %s %v", direct.Name, direct.Spec.Output.ImageLabels, converted.Name, converted.Spec.Output.ImageLabels)
	}
}

func imageLabelMap(labels []buildv1.ImageLabel) map[string]string {
	m := map[string]string{}
	for _, l := range labels {
		m[l.Name] = l.Value
	}
	return m
}

func mustJSON(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// compareLabels requires the same labels on both images but those naming
// the build itself (roundTripOwnLabels).
func compareLabels(t *testing.T, direct, converted *kit.Image) {
	t.Helper()
	a, b := without(direct.Config.Config.Labels, roundTripOwnLabels), without(converted.Config.Config.Labels, roundTripOwnLabels)
	if _, ok := a["io.openshift.build.source-location"]; !ok {
		t.Errorf("label io.openshift.build.source-location is not on the direct image: OpenShift sets it for a Git build")
	}
	for _, k := range roundTripBinaryLostLabels {
		if v, ok := b[k]; ok {
			t.Errorf("label %s=%q is on the converted image: the step's binary builds did not carry it before; move it out of roundTripBinaryLostLabels", k, v)
		}
	}
	a, b = without(a, roundTripBinaryLostLabels), without(b, roundTripBinaryLostLabels)
	for _, k := range unionKeys(a, b) {
		va, oka := a[k]
		vb, okb := b[k]
		switch {
		case !oka:
			t.Errorf("label %s=%q only on the converted image", k, vb)
		case !okb:
			t.Errorf("label %s=%q only on the direct image", k, va)
		case va != vb:
			t.Errorf("label %s: direct %q, converted %q", k, va, vb)
		}
	}
	t.Logf("labels compared (%d; not %v, %v): %v", len(a), roundTripOwnLabels, roundTripBinaryLostLabels, a)
}

// compareConfig requires the same runtime configuration: environment (but
// roundTripOwnEnv), entrypoint, command, user, working directory, ports.
func compareConfig(t *testing.T, direct, converted *kit.Image) {
	t.Helper()
	envMap := func(env []string) map[string]string {
		m := map[string]string{}
		for _, e := range env {
			k, v, _ := strings.Cut(e, "=")
			m[k] = v
		}
		return without(m, roundTripOwnEnv)
	}
	a, b := envMap(direct.Config.Config.Env), envMap(converted.Config.Config.Env)
	for _, k := range roundTripBinaryLostEnv {
		if _, ok := a[k]; !ok {
			t.Errorf("env %s is not in the direct image: OpenShift sets it for a Git build", k)
		}
		if v, ok := b[k]; ok {
			t.Errorf("env %s=%q is in the converted image: move it out of roundTripBinaryLostEnv", k, v)
		}
	}
	a, b = without(a, roundTripBinaryLostEnv), without(b, roundTripBinaryLostEnv)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("environments differ (not %v, %v):\ndirect    %v\nconverted %v", roundTripOwnEnv, roundTripBinaryLostEnv, a, b)
	}
	ca, cb := direct.Config.Config, converted.Config.Config
	for _, f := range []struct {
		name string
		a, b any
	}{
		{"entrypoint", ca.Entrypoint, cb.Entrypoint},
		{"cmd", ca.Cmd, cb.Cmd},
		{"user", ca.User, cb.User},
		{"workingDir", ca.WorkingDir, cb.WorkingDir},
		{"exposedPorts", ca.ExposedPorts, cb.ExposedPorts},
	} {
		if !reflect.DeepEqual(f.a, f.b) {
			t.Errorf("config %s: direct %v, converted %v", f.name, f.a, f.b)
		}
	}
}

// compareLayers requires both images to start with the base image's
// layers, and compares what the builds added on top.
func compareLayers(ctx context.Context, t *testing.T, rt roundTrip, directRef, convertedRef string) {
	t.Helper()
	base := rt.base
	baseRef, err := sim.MirrorOf(sb.Registry, base)
	if err != nil {
		t.Fatal(err)
	}
	baseLayers := layerDigests(ctx, t, baseRef)
	da, db := layerDigests(ctx, t, directRef), layerDigests(ctx, t, convertedRef)
	for _, img := range []struct {
		what   string
		layers []string
	}{{"direct", da}, {"converted", db}} {
		if len(img.layers) < len(baseLayers) || !reflect.DeepEqual(img.layers[:len(baseLayers)], baseLayers) {
			t.Fatalf("the %s image's layers %v do not start with the base %s's %v", img.what, img.layers, base, baseLayers)
		}
	}
	addedA, addedB := da[len(baseLayers):], db[len(baseLayers):]
	t.Logf("base %s: %d layers, the same in both; added layers: direct %v, converted %v", base, len(baseLayers), addedA, addedB)
	if len(addedA) != len(addedB) {
		t.Errorf("the builds added %d and %d layers", len(addedA), len(addedB))
	}
	if reflect.DeepEqual(addedA, addedB) {
		t.Logf("the added layers have the same digests")
		return
	}
	ta, err := fileTree(ctx, directRef)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := fileTree(ctx, convertedRef)
	if err != nil {
		t.Fatal(err)
	}
	// The added layers' digests differ: buildah's layers carry file times
	// (COPY keeps the mtime of the checkout, which each build makes anew;
	// RUN's files are written at build time). So the files are compared.
	var diffs []string
	onlyDirect, timestamped, stamped := 0, 0, func(p string) bool { return rt.timestamped != nil && rt.timestamped(p) }
	for _, p := range unionKeys(ta, tb) {
		ea, oka := ta[p]
		eb, okb := tb[p]
		if rt.onlyDirect != nil && rt.onlyDirect(p) {
			onlyDirect++
			if okb || !oka {
				diffs = append(diffs, fmt.Sprintf("%s: want it in the direct image only (direct %v, converted %v)", p, oka, okb))
			}
			continue
		}
		if stamped(p) && oka && okb {
			timestamped++
			ea.SHA256, eb.SHA256 = "", ""
		}
		switch {
		case !oka:
			diffs = append(diffs, fmt.Sprintf("%s: only in the converted image (%s)", p, eb))
		case !okb:
			diffs = append(diffs, fmt.Sprintf("%s: only in the direct image (%s)", p, ea))
		case ea != eb:
			diffs = append(diffs, fmt.Sprintf("%s: direct %s, converted %s", p, ea, eb))
		}
	}
	if len(diffs) > 0 {
		t.Errorf("the images' files differ (%d of %d paths):\n%s", len(diffs), len(ta), strings.Join(diffs, "\n"))
	} else {
		t.Logf("the images hold the same %d paths with the same content, mode and owner (%d of them timestamped: content not compared; %d only in the direct image, as expected)", len(tb), timestamped, onlyDirect)
	}
}

// layerDigests are ref's layer digests as content (uncompressed: the
// config's diff IDs). The compressed digests of the base layers are not
// comparable: buildah compresses them again when it pushes.
func layerDigests(ctx context.Context, t *testing.T, ref string) []string {
	t.Helper()
	img, err := remoteImage(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatalf("%s: layers: %v", ref, err)
	}
	var out []string
	for _, l := range layers {
		d, err := l.DiffID()
		if err != nil {
			t.Fatalf("%s: layer digest: %v", ref, err)
		}
		out = append(out, d.String())
	}
	return out
}

func remoteImage(ctx context.Context, ref string) (v1.Image, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return img, nil
}

// fileEntry is one path of an image's flattened filesystem, without times.
type fileEntry struct {
	Type     byte
	Mode     int64
	UID, GID int
	Link     string
	Size     int64
	SHA256   string
}

func (e fileEntry) String() string {
	s := fmt.Sprintf("type %q mode %o owner %d:%d", e.Type, e.Mode, e.UID, e.GID)
	if e.Link != "" {
		s += " -> " + e.Link
	}
	if e.Type == tar.TypeReg {
		s += fmt.Sprintf(" %d bytes sha256:%.12s", e.Size, e.SHA256)
	}
	return s
}

// fileTree reads the flattened filesystem of ref: every path with its type,
// mode, owner, link target and content digest.
func fileTree(ctx context.Context, ref string) (map[string]fileEntry, error) {
	img, err := remoteImage(ctx, ref)
	if err != nil {
		return nil, err
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]fileEntry{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", ref, err)
		}
		e := fileEntry{Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid, Link: h.Linkname}
		if h.Typeflag == tar.TypeReg {
			sum := sha256.New()
			n, err := io.Copy(sum, tr)
			if err != nil {
				return nil, fmt.Errorf("reading %s in %s: %w", h.Name, ref, err)
			}
			e.Size, e.SHA256 = n, hex.EncodeToString(sum.Sum(nil))
		}
		out[path.Clean("/"+h.Name)] = e
	}
}

func hasEnv(env []string, kv string) bool {
	for _, e := range env {
		if e == kv {
			return true
		}
	}
	return false
}

func without(m map[string]string, keys []string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

func unionKeys[V any](a, b map[string]V) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range []map[string]V{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}
