package openshift

// The converter's golden corpus (pkg/convert/testdata: OpenShift's
// documented BuildConfig examples) as a user migrating applies it: every
// Build `ocbuild convert` writes is accepted by the real Shipwright
// controller and every BuildConfig it writes by the build API, and then each
// converted Build runs as a BuildRun to a pushed image carrying the
// BuildConfig's labels.
//
// The corpus names public repositories, registries and hosts the sandbox
// cannot reach. Its builds run against stand-ins, never against edited
// conversions:
//   - its Git URLs are served by the sandbox git server from
//     test/testdata/corpus-repos (git aliases for Shipwright's git step, the
//     URL's last path element for the simulator's builders), with the
//     branches the corpus names;
//   - the builder and base images it names are published under their own
//     names in the sandbox registry's mirror, made of the sandbox's base
//     images (a BusyBox shell where a Dockerfile needs only a shell, the
//     Debian Python S2I builder where an S2I builder is named);
//   - the ImageStreamTags it builds from are filled by builds, as a cluster's
//     are, and the image streams its ImageStreamTag outputs name exist;
//   - the secrets it names are created with the type their use needs;
//   - the Binary example's file is uploaded as `shp build upload` does.
//
// Only three things are rewritten in the BuildConfigs before conversion,
// each an address a migration changes anyway: the namespace (the test's
// own), DockerImage outputs on external registries (pushed to the
// integrated registry of that namespace instead) and the S2I scripts URL
// (served by the test). corpusNotBuilt lists what cannot build here, and why;
// corpusHookFailures what must fail here, and how. A BuildConfig whose
// nodeSelector the sandbox's node does not match (the list example's arm64
// worker, on any other machine) cannot run here either, as on a cluster
// without such nodes: its build must wait Pending with that nodeSelector,
// and cancelling its BuildRun must cancel it.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	imagev1 "github.com/openshift/api/image/v1"
	buildv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/ocbuild/ocbuild/pkg/cli"
	"github.com/ocbuild/ocbuild/test/e2e/openshift/kit"
	"github.com/ocbuild/ocbuild/test/playground"
	"github.com/ocbuild/ocbuild/test/sandbox"
	"github.com/ocbuild/ocbuild/test/sim"
)

// corpusGitAliases are the corpus's repositories and the stand-in each is
// served as (test/testdata/corpus-repos; playground.SamplesRepo is this
// checkout's samples, see TestMain); corpusGitBranches the branches they
// need besides main.
var (
	corpusGitAliases = map[string]string{
		"https://github.com/openshift/ruby-hello-world": "ruby-hello-world",
		"https://github.com/prod/legacy":                "legacy",
		"https://github.com/site/docs":                  "docs",
		"https://github.com/qa/fine":                    "fine",
		"https://github.com/shop/forced":                "forced",
		"git@github.com:team-a/api.git":                 "api",
		"https://github.com/team-a/worker":              "worker",
		playground.SamplesGitURL:                        playground.SamplesRepo,
	}
	corpusGitBranches = map[string][]string{
		"ruby-hello-world": {"beta4"},
		"forced":           {"release"},
		"docs":             {"gh-pages"},
	}
)

// corpusNotBuilt are the corpus files whose Builds are converted and
// accepted but not run, with the reason.
var corpusNotBuilt = map[string]string{
	"inline-dockerfile": "its Dockerfile runs microdnf, UBI's package manager; the sandbox's ubi-minimal is a BusyBox stand-in",
}

// corpusStandIns are the corpus's external builder and base images the
// sandbox registry's mirror serves, and the sandbox image each is made of.
var corpusStandIns = map[string]string{
	// Docker example's dockerStrategy.from: its Dockerfile needs a shell.
	"registry.access.redhat.com/ubi9/ruby-33:latest": sim.BaseImage,
	// The Binary example's Java S2I builder: the Python S2I builder stands
	// in (its assemble, like a Java builder's for a .war, puts the uploaded
	// file into the application directory).
	"registry.access.redhat.com/ubi9/openjdk-21:latest": sim.PythonBuilderImage,
	// The Custom example's builder (the simulator commits it with the
	// source; it never runs a custom builder's own program).
	"openshift/sti-image-builder": sim.BaseImage,
}

// corpusImageFiles are files a converted Build's image must hold (by base
// name), by Build name: what the BuildConfig's inputs put there.
var corpusImageFiles = map[string]map[string][]byte{
	// The chain's source.images: the file of the input image (see
	// corpusImageStreamTags), injected into the build context.
	"image-build": {"somefile.jar": []byte("the input image of the chain build\n")},
}

// corpusHookFailures are the Builds whose BuildConfig's postCommit hook
// must fail here, with the failure the BuildRun reports: the triggers
// example tests with `bundle exec rake test`, and its Ruby builder's
// stand-in is the Python one, which has no bundle. The hook runs in the
// built image as OpenShift's builder runs it (the simulator appends it as a
// Dockerfile stage), so the build ends GenericBuildFailed and the BuildRun
// says so, naming the hook.
var corpusHookFailures = map[string]struct{ reason, message string }{
	"sample-build": {"GenericBuildFailed", "bundle exec rake test"},
}

// corpusImageStreamTags are ImageStreamTags the corpus builds from, filled
// by a Docker build FROM a stand-in (namespace "" is the test's own).
var corpusImageStreamTags = []struct {
	file, namespace, tag, dockerfile string
}{
	// The S2I examples' ruby:3.3-ubi9 in the shared namespace openshift;
	// the Python builder stands in (the step does not care which language
	// a builder speaks).
	{"imagestreamtag-output", "openshift", "ruby:3.3-ubi9", "FROM registry.access.redhat.com/ubi9/python-311:latest\n"},
	{"source-incremental", "openshift", "ruby:3.3-ubi9", "FROM registry.access.redhat.com/ubi9/python-311:latest\n"},
	{"triggers", "", "ruby-20-centos7:latest", "FROM registry.access.redhat.com/ubi9/python-311:latest\n"},
	// The chain example's input image, with the file it injects.
	{"chain", "", "myinputimage:latest", "FROM registry.access.redhat.com/ubi9/ubi-minimal:latest\n" +
		"RUN mkdir -p /usr/lib && echo 'the input image of the chain build' > /usr/lib/somefile.jar\n"},
}

func TestConvertedCorpus(t *testing.T) {
	yamls, _ := filepath.Glob(filepath.Join(repoRoot, "pkg", "convert", "testdata", "*.yaml"))
	jsons, _ := filepath.Glob(filepath.Join(repoRoot, "pkg", "convert", "testdata", "*.json"))
	files := append(yamls, jsons...)
	if len(files) < 10 {
		t.Fatalf("%d corpus files in pkg/convert/testdata, want the whole corpus", len(files))
	}
	publishStandIns(t)
	scripts := serveS2IScripts(t)
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
		if name == "invalid" {
			continue // BuildConfigs OpenShift refuses: the golden test covers their messages
		}
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t, 12*time.Minute)
			ns := newNamespace(t, true)
			args, input, inputs := localizeCorpusFile(t, file, ns, scripts)
			var stdout, stderr bytes.Buffer
			args = append(args, "--buildrun", input)
			if code := cli.Main(ctx, append([]string{"convert"}, args...), &stdout, &stderr, "e2e"); code != 0 {
				t.Fatalf("ocbuild convert %s exited %d:\n%s", strings.Join(args, " "), code, stderr.String())
			}
			converted := applyConverted(ctx, t, ns, stdout.Bytes())
			converted.inputs = inputs
			if len(converted.builds) == 0 {
				t.Fatalf("ocbuild convert wrote no Build for %s:\n%s", file, stderr.String())
			}
			if why, ok := corpusNotBuilt[name]; ok {
				t.Logf("accepted, not built: %s", why)
				return
			}
			for _, seed := range corpusImageStreamTags {
				if seed.file == name {
					seedNS := seed.namespace
					if seedNS == "" {
						seedNS = ns
					}
					seedImageStreamTag(ctx, t, seedNS, seed.tag, seed.dockerfile)
				}
			}
			for _, bc := range converted.inputs {
				if to := bc.Spec.Output.To; to != nil && to.Kind == "ImageStreamTag" {
					streamNS := to.Namespace
					if streamNS == "" {
						streamNS = ns
					}
					ensureImageStream(ctx, t, streamNS, to.Name)
				}
			}
			if converted.custom {
				grantCustomStrategy(ctx, t, ns)
			}
			for _, b := range converted.builds {
				runConvertedBuild(ctx, t, ns, b, converted)
			}
		})
	}
}

// convertedCorpus is what ocbuild convert wrote for one corpus file, as
// applied in the test's namespace.
type convertedCorpus struct {
	builds    []*buildv1beta1.Build
	buildRuns map[string]*buildv1beta1.BuildRun // the BuildRun convert wrote, by Build name
	inputs    map[string]*buildv1.BuildConfig   // the localized BuildConfigs converted, by name
	custom    bool                              // a BuildConfig it wrote has the Custom strategy
}

// localizeCorpusFile writes the corpus file's BuildConfigs, localized for
// namespace ns (see the file comment), to a temporary file and returns the
// file's "# args:" flags (a --namespace flag becomes ns), that file and
// its BuildConfigs by name.
func localizeCorpusFile(t *testing.T, file, ns, scripts string) ([]string, string, map[string]*buildv1.BuildConfig) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "# args:"); ok {
			for _, a := range strings.Fields(rest) {
				if strings.HasPrefix(a, "--namespace=") {
					a = "--namespace=" + ns
				}
				args = append(args, a)
			}
		}
	}
	objs, err := playground.ReadObjects(file)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	inputs := map[string]*buildv1.BuildConfig{}
	for _, o := range objs {
		for _, m := range localizeObject(t, o.Object, false, ns, scripts) {
			var bc buildv1.BuildConfig
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &bc); err != nil {
				t.Fatal(err)
			}
			inputs[bc.Name] = &bc
		}
		doc, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString("---\n")
		out.Write(doc)
	}
	input := filepath.Join(t.TempDir(), filepath.Base(file))
	if strings.HasSuffix(input, ".json") {
		input = strings.TrimSuffix(input, ".json") + ".yaml"
	}
	if err := os.WriteFile(input, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return args, input, inputs
}

// localizeObject localizes a BuildConfig, or the BuildConfigs of a List,
// and returns them. (The items of a BuildConfigList, as the API server
// writes one, carry no kind: inList says obj is one.)
func localizeObject(t *testing.T, obj map[string]any, inList bool, ns, scripts string) []map[string]any {
	t.Helper()
	if items, ok := obj["items"].([]any); ok {
		var bcs []map[string]any
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				bcs = append(bcs, localizeObject(t, m, obj["kind"] == "BuildConfigList", ns, scripts)...)
			}
		}
		return bcs
	}
	if kind, _ := obj["kind"].(string); kind != "BuildConfig" && !(inList && kind == "") {
		return nil
	}
	bcName, _, _ := unstructured.NestedString(obj, "metadata", "name")
	orig, hasNS, _ := unstructured.NestedString(obj, "metadata", "namespace")
	if hasNS {
		_ = unstructured.SetNestedField(obj, ns, "metadata", "namespace")
		// ImageStreamTags of the BuildConfig's own namespace move with it.
		walkMaps(obj, func(m map[string]any) {
			if m["kind"] == "ImageStreamTag" && m["namespace"] == orig {
				m["namespace"] = ns
			}
		})
	}
	if kind, _, _ := unstructured.NestedString(obj, "spec", "output", "to", "kind"); kind == "DockerImage" {
		to, _, _ := unstructured.NestedString(obj, "spec", "output", "to", "name")
		if host, repo, ok := strings.Cut(to, "/"); ok && host != sim.InternalRegistry {
			local := sim.InternalRegistry + "/" + ns + "/" + path.Base(repo)
			_ = unstructured.SetNestedField(obj, local, "spec", "output", "to", "name")
			t.Logf("BuildConfig %s: output %s pushed to %s instead", bcName, to, local)
		}
	}
	if u, _, _ := unstructured.NestedString(obj, "spec", "strategy", "sourceStrategy", "scripts"); strings.HasPrefix(u, "http") {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		local := scripts + p.Path
		_ = unstructured.SetNestedField(obj, local, "spec", "strategy", "sourceStrategy", "scripts")
		t.Logf("BuildConfig %s: scripts %s served from %s instead", bcName, u, local)
	}
	return []map[string]any{obj}
}

// walkMaps calls f on every map in v, depth first.
func walkMaps(v any, f func(map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		f(v)
		for _, e := range v {
			walkMaps(e, f)
		}
	case []any:
		for _, e := range v {
			walkMaps(e, f)
		}
	}
}

// applyConverted applies convert's output in ns: the BuildConfigs as
// written (as kubectl apply does: the server decides), the secrets the
// BuildConfigs and Builds name, then the Builds, each strictly decoded.
func applyConverted(ctx context.Context, t *testing.T, ns string, out []byte) *convertedCorpus {
	t.Helper()
	c := &convertedCorpus{buildRuns: map[string]*buildv1beta1.BuildRun{}}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	var bcs []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "BuildConfig":
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(doc, &u.Object); err != nil {
				t.Fatal(err)
			}
			u.SetNamespace(ns)
			bcs = append(bcs, u)
			if _, ok, _ := unstructured.NestedMap(u.Object, "spec", "strategy", "customStrategy"); ok {
				c.custom = true
			}
		case "Build":
			var b buildv1beta1.Build
			if err := yaml.UnmarshalStrict(doc, &b); err != nil {
				t.Fatalf("converted Build: %v\n%s", err, doc)
			}
			b.Namespace = ns
			c.builds = append(c.builds, &b)
		case "BuildRun":
			var br buildv1beta1.BuildRun
			if err := yaml.UnmarshalStrict(doc, &br); err != nil {
				t.Fatalf("converted BuildRun: %v\n%s", err, doc)
			}
			if br.Spec.Build.Name == nil {
				t.Fatalf("converted BuildRun names no Build:\n%s", doc)
			}
			c.buildRuns[*br.Spec.Build.Name] = &br
		default:
			t.Fatalf("ocbuild convert wrote a %s %s", meta.APIVersion, meta.Kind)
		}
	}
	var named []string
	for _, u := range bcs {
		named = append(named, secretsNamed(u.Object)...)
	}
	for _, b := range c.builds {
		named = append(named, buildSecrets(b)...)
	}
	slices.Sort(named)
	for _, n := range slices.Compact(named) {
		createCorpusSecret(ctx, t, ns, n)
	}
	for _, u := range bcs {
		if err := kit.Apply(ctx, sb.AdminConfig, ns, []*unstructured.Unstructured{u}); err != nil {
			t.Fatalf("the build API refuses the converted BuildConfig %s: %v", u.GetName(), err)
		}
		if _, err := builds.BuildV1().BuildConfigs(ns).Get(ctx, u.GetName(), metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range c.builds {
		createBuild(t, b) // fails unless Shipwright registers it
		t.Logf("accepted: Build %s (%s)", b.Name, b.Spec.Strategy.Name)
	}
	return c
}

// secretsNamed are the secrets a BuildConfig names: source, pull and push
// secrets, the Custom strategy's and the build's secrets, env valueFrom.
func secretsNamed(obj map[string]any) []string {
	var names []string
	walkMaps(obj, func(m map[string]any) {
		for _, k := range []string{"sourceSecret", "pullSecret", "pushSecret", "secretSource", "secretKeyRef"} {
			if ref, ok := m[k].(map[string]any); ok {
				if n, ok := ref["name"].(string); ok && n != "" {
					names = append(names, n)
				}
			}
		}
		if ref, ok := m["secret"].(map[string]any); ok { // source.secrets[].secret
			if n, ok := ref["name"].(string); ok && n != "" {
				names = append(names, n)
			}
		}
	})
	return names
}

// buildSecrets are the secrets a Build names.
func buildSecrets(b *buildv1beta1.Build) []string {
	var names []string
	if b.Spec.Source != nil && b.Spec.Source.Git != nil && b.Spec.Source.Git.CloneSecret != nil {
		names = append(names, *b.Spec.Source.Git.CloneSecret)
	}
	if b.Spec.Output.PushSecret != nil {
		names = append(names, *b.Spec.Output.PushSecret)
	}
	for _, p := range b.Spec.ParamValues {
		if p.SingleValue != nil && p.SecretValue != nil {
			names = append(names, p.SecretValue.Name)
		}
		for _, v := range p.Values {
			if v.SecretValue != nil {
				names = append(names, v.SecretValue.Name)
			}
		}
	}
	return names
}

// createCorpusSecret creates a secret the corpus names, of the type its use
// needs, as the migrating namespace has it. The sandbox's git server and
// registry ask for no credentials; the values only have to be well formed.
func createCorpusSecret(ctx context.Context, t *testing.T, ns, name string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}}
	switch name {
	case "basicsecret": // a Git source secret, for https
		s.Type = corev1.SecretTypeBasicAuth
		s.StringData = map[string]string{"username": "developer", "password": "a-token"}
	case "github-ssh": // a Git source secret, for git@ URLs
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		s.Type = corev1.SecretTypeSSHAuth
		s.Data = map[string][]byte{"ssh-privatekey": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})}
	case "dockerhub", "quay-push", "redhat-registry": // pull and push secrets
		auth := base64.StdEncoding.EncodeToString([]byte("developer:a-token"))
		auths := map[string]any{}
		for _, host := range []string{sb.Registry, sim.InternalRegistry, "quay.io", "registry.redhat.io", "docker.io"} {
			auths[host] = map[string]string{"auth": auth}
		}
		cfg, err := json.Marshal(map[string]any{"auths": auths})
		if err != nil {
			t.Fatal(err)
		}
		s.Type = corev1.SecretTypeDockerConfigJson
		s.Data = map[string][]byte{corev1.DockerConfigJsonKey: cfg}
	case "pip": // env valueFrom: the package index
		s.StringData = map[string]string{"url": sb.PackageIndexURL}
	case "secret1": // mounted into the Custom build
		s.StringData = map[string]string{"token": "a-token"}
	default:
		t.Fatalf("the converted corpus names secret %q, which createCorpusSecret does not know: add its type", name)
	}
	if _, err := sb.Kube.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// publishStandIns publishes corpusStandIns in the sandbox registry's mirror.
func publishStandIns(t *testing.T) {
	t.Helper()
	ctx := testContext(t, 2*time.Minute)
	for ext, from := range corpusStandIns {
		dst, err := sim.MirrorOf(sb.Registry, ext)
		if err != nil {
			t.Fatal(err)
		}
		if err := kit.Copy(ctx, sb.Registry+"/"+from, dst); err != nil {
			t.Fatal(err)
		}
	}
}

// serveS2IScripts serves the S2I scripts directory the corpus names: an
// assemble that says where it came from and runs the builder's own.
func serveS2IScripts(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path.Base(r.URL.Path) != "assemble" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "#!/bin/sh\necho '---> assemble from the BuildConfig scripts URL'\nexec /usr/libexec/s2i/assemble \"$@\"\n")
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// seedImageStreamTag fills the ImageStreamTag ns/tag with a Docker build of
// dockerfile, as a cluster's builder streams are filled (once per namespace
// and tag).
func seedImageStreamTag(ctx context.Context, t *testing.T, ns, tag, dockerfile string) {
	t.Helper()
	if _, err := imageAPI(t).ImageV1().ImageStreamTags(ns).Get(ctx, tag, metav1.GetOptions{}); err == nil {
		return
	}
	if _, err := sb.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if err := sb.CreateNamespace(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	// An ImageStreamTag output needs its stream: without it the build
	// stays New (InvalidOutputReference).
	ensureImageStream(ctx, t, ns, tag)
	name := "seed-" + strings.NewReplacer(":", "-", ".", "-").Replace(tag)
	bc := &buildv1.BuildConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: buildv1.BuildConfigSpec{CommonSpec: buildv1.CommonSpec{
			Source:   buildv1.BuildSource{Dockerfile: &dockerfile},
			Strategy: buildv1.BuildStrategy{DockerStrategy: &buildv1.DockerBuildStrategy{}},
			Output:   buildv1.BuildOutput{To: &corev1.ObjectReference{Kind: "ImageStreamTag", Name: tag}},
		}},
	}
	// Through the build API's endpoint: the admin config reaches the
	// stored objects only, not the subresources the build API serves.
	oc := openShiftBuilds(t)
	if _, err := oc.BuildV1().BuildConfigs(ns).Create(ctx, bc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	b, err := oc.BuildV1().BuildConfigs(ns).Instantiate(ctx, name, &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitBuildComplete(ctx, t, ns, b.Name)
	t.Logf("ImageStreamTag %s/%s filled by build %s (%s)", ns, tag, b.Name, strings.TrimSpace(strings.ReplaceAll(dockerfile, "\n", "; ")))
}

// ensureImageStream creates the image stream of ImageStreamTag tag in ns
// unless it exists, as `oc new-app` or `oc create imagestream` did for the
// BuildConfigs the corpus is made of.
func ensureImageStream(ctx context.Context, t *testing.T, ns, tag string) {
	t.Helper()
	stream, _, _ := strings.Cut(tag, ":")
	_, err := imageAPI(t).ImageV1().ImageStreams(ns).Create(ctx, &imagev1.ImageStream{ObjectMeta: metav1.ObjectMeta{Name: stream}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating image stream %s/%s: %v", ns, stream, err)
	}
}

// grantCustomStrategy applies the template a cluster admin applies for
// Custom BuildConfigs (strategies/rbac/custom-strategy-rolebinding.yaml).
func grantCustomStrategy(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	objs, err := playground.ReadObjects(filepath.Join(repoRoot, "strategies", "rbac", "custom-strategy-rolebinding.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := kit.Apply(ctx, sb.AdminConfig, ns, objs); err != nil {
		t.Fatal(err)
	}
}

// runConvertedBuild runs a converted Build as the BuildRun convert wrote
// for it (or a plain one) and checks that it succeeded with the image it
// reports, carrying the BuildConfig's output labels.
func runConvertedBuild(ctx context.Context, t *testing.T, ns string, b *buildv1beta1.Build, c *convertedCorpus) {
	t.Helper()
	bc, hasBC := c.inputs[b.Name]
	// A Binary BuildConfig's Build has no source: it runs as `shp build
	// upload <build> <dir>` runs it, with the file the BuildConfig takes.
	var uploaded map[string][]byte
	if hasBC && bc.Spec.Source.Binary != nil {
		name := bc.Spec.Source.Binary.AsFile
		if name == "" {
			name = "index.html"
		}
		uploaded = map[string][]byte{name: []byte("the binary input of BuildConfig " + bc.Name + ", uploaded by the test\n")}
	}
	br := createBuildRun(t, ns, b.Name, func(br *buildv1beta1.BuildRun) {
		if conv, ok := c.buildRuns[b.Name]; ok {
			br.Spec = conv.Spec
		}
		if uploaded != nil {
			withLocalSource(br)
		}
	})
	if uploaded != nil {
		uploadLocalSource(ctx, t, ns, br.Name, writeFiles(t, uploaded))
	}
	if hasBC && !schedulableHere(ctx, t, bc) {
		cancelUnschedulable(ctx, t, ns, br.Name, bc)
		return
	}
	done := waitBuildRunDone(ctx, t, ns, br.Name)
	if want, ok := corpusHookFailures[b.Name]; ok {
		fd := requireFailed(t, done)
		if fd.Reason != want.reason || !strings.Contains(fd.Message, want.message) {
			t.Errorf("Build %s: failureDetails %s: %q, want %s naming the failed post-commit hook %q", b.Name, fd.Reason, fd.Message, want.reason, want.message)
		}
		return
	}
	requireSucceeded(t, done)
	ref, err := sim.MirrorOf(sb.Registry, b.Spec.Output.Image)
	if err != nil {
		t.Fatal(err)
	}
	img := checkOutput(ctx, t, done, ref)
	if uploaded != nil {
		checkImageFiles(ctx, t, ref, uploaded)
	}
	if want, ok := corpusImageFiles[b.Name]; ok {
		checkImageFiles(ctx, t, ref, want)
	}
	if hasBC {
		for _, l := range bc.Spec.Output.ImageLabels {
			if got := img.Config.Config.Labels[l.Name]; got != l.Value {
				t.Errorf("Build %s: image %s has label %s=%q, want %q (the BuildConfig's output.imageLabels)", b.Name, ref, l.Name, got, l.Value)
			}
		}
	}
	t.Logf("Build %s (%s): BuildRun %s pushed %s@%s", b.Name, b.Spec.Strategy.Name, done.Name, b.Spec.Output.Image, done.Status.Output.Digest)
}

// schedulableHere tells whether bc's build pod (its nodeSelector plus
// kubernetes.io/os=linux) fits the sandbox's node. The list example's
// worker asks for arm64 nodes; on any other machine it cannot run here.
func schedulableHere(ctx context.Context, t *testing.T, bc *buildv1.BuildConfig) bool {
	t.Helper()
	node, err := sb.Kube.CoreV1().Nodes().Get(ctx, sandbox.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return sim.NodeFits(node, bc.Spec.NodeSelector)
}

// cancelUnschedulable checks what a user of a BuildConfig no node can take
// sees: the BuildRun's OpenShift build waits Pending with the BuildConfig's
// nodeSelector (the migration kept it), and cancelling the BuildRun
// cancels that build.
func cancelUnschedulable(ctx context.Context, t *testing.T, ns, buildRun string, bc *buildv1.BuildConfig) {
	t.Helper()
	ob := waitOpenShiftBuild(ctx, t, ns, buildRun, "the OpenShift build to be Pending", func(b *buildv1.Build) bool {
		return b.Status.Phase == buildv1.BuildPhasePending
	})
	for k, v := range bc.Spec.NodeSelector {
		if ob.Spec.NodeSelector[k] != v {
			t.Errorf("OpenShift build %s has nodeSelector %v, want the BuildConfig's %v", ob.Name, ob.Spec.NodeSelector, bc.Spec.NodeSelector)
		}
	}
	patch := []byte(`{"spec":{"state":"` + buildv1beta1.BuildRunStateCancel + `"}}`)
	if _, err := sb.Shipwright.ShipwrightV1beta1().BuildRuns(ns).Patch(ctx, buildRun, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	done := waitBuildRunDone(ctx, t, ns, buildRun)
	if status, reason, msg := condition(done); status != corev1.ConditionFalse || reason != buildv1beta1.BuildRunStateCancel {
		t.Errorf("BuildRun %s condition = %s/%s: %s, want False/%s", buildRun, status, reason, msg, buildv1beta1.BuildRunStateCancel)
	}
	waitBuildPhase(ctx, t, ns, ob.Name, buildv1.BuildPhaseCancelled, time.Minute, "its BuildRun was cancelled")
	t.Logf("BuildConfig %s: no node here matches nodeSelector %v; its build %s waited Pending and the BuildRun's cancel cancelled it", bc.Name, bc.Spec.NodeSelector, ob.Name)
}

// checkImageFiles checks that image ref holds each file (by base name,
// wherever the build put it) with the content given.
func checkImageFiles(ctx context.Context, t *testing.T, ref string, files map[string][]byte) {
	t.Helper()
	tree, err := fileTree(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		sum := sha256.Sum256(content)
		want := hex.EncodeToString(sum[:])
		var found []string
		for p, e := range tree {
			if path.Base(p) == name && e.SHA256 == want {
				found = append(found, p)
			}
		}
		if len(found) == 0 {
			t.Errorf("image %s has no file %s with the content %q", ref, name, content)
			continue
		}
		t.Logf("image %s holds %s at %s", ref, name, strings.Join(found, ", "))
	}
}
