package s2i

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The builder image's scripts. DEST is set in the image whose destination
// label is not /tmp.
const (
	assembleScript = `#!/bin/sh
set -e
dest=${DEST:-/tmp}
echo "---> Installing application source..."
mkdir -p /opt/app
cp -R "$dest/src/." /opt/app/
n=1
restored=no
if [ -f "$dest/artifacts/counter" ]; then
  echo "---> Restoring build artifacts..."
  n=$(( $(cat "$dest/artifacts/counter") + 1 ))
  restored=yes
fi
echo "$n" > /opt/app/counter
{
  echo "uid=$(id -u)"
  echo "foo=$FOO"
  echo "greeting=$GREETING"
  echo "hello=$(cat "$dest/src/hello.txt")"
  echo "restored=$restored"
} > /opt/app/result
`
	saveArtifactsScript = "#!/bin/sh\ncd /opt/app\nif [ -f counter ]; then tar -cf - counter; fi\n"
	runScript           = "#!/bin/sh\nexec cat /opt/app/result\n"
)

// layerFile is one entry of the builder image's layer.
type layerFile struct {
	name     string
	typ      byte
	mode     int64
	uid      int
	data     []byte
	linkname string
}

func builderLayer(t *testing.T) v1.Layer {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("no /bin/busybox: %v", err)
	}
	files := []layerFile{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/busybox", typ: tar.TypeReg, mode: 0o755, data: bb},
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/passwd", typ: tar.TypeReg, mode: 0o644, data: []byte("root:x:0:0:root:/root:/bin/sh\ndefault:x:1001:0:Default:/opt/app:/bin/sh\n")},
		{name: "etc/group", typ: tar.TypeReg, mode: 0o644, data: []byte("root:x:0:\n")},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: "opt/", typ: tar.TypeDir, mode: 0o755},
		{name: "opt/app/", typ: tar.TypeDir, mode: 0o775, uid: 1001},
		{name: "opt/s2i dest/", typ: tar.TypeDir, mode: 0o775, uid: 1001},
		{name: "usr/", typ: tar.TypeDir, mode: 0o755},
		{name: "usr/libexec/", typ: tar.TypeDir, mode: 0o755},
		{name: "usr/libexec/s2i/", typ: tar.TypeDir, mode: 0o755},
		{name: "usr/libexec/s2i/assemble", typ: tar.TypeReg, mode: 0o755, data: []byte(assembleScript)},
		{name: "usr/libexec/s2i/run", typ: tar.TypeReg, mode: 0o755, data: []byte(runScript)},
		{name: "usr/libexec/s2i/save-artifacts", typ: tar.TypeReg, mode: 0o755, data: []byte(saveArtifactsScript)},
	}
	for _, applet := range []string{"sh", "cat", "cp", "mkdir", "rm", "tar", "touch", "id", "ls", "echo", "test", "[", "env", "chmod", "chown"} {
		files = append(files, layerFile{name: "bin/" + applet, typ: tar.TypeSymlink, mode: 0o777, linkname: "busybox"})
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: f.mode, Uid: f.uid, Size: int64(len(f.data)), Linkname: f.linkname, ModTime: mt, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func builderImage(t *testing.T, layer v1.Layer, labels map[string]string, env ...string) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.User = "1001"
	cf.Config.WorkingDir = "/opt/app"
	cf.Config.Env = append([]string{"PATH=/bin", "STI_SCRIPTS_PATH=/usr/libexec/s2i"}, env...)
	cf.Config.Labels = labels
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// testBuildah runs buildah as root with its own storage and configuration
// under dir.
type testBuildah struct {
	t   *testing.T
	dir string
	env []string
}

func newTestBuildah(t *testing.T, registryHost string) *testBuildah {
	dir := t.TempDir()
	b := &testBuildah{t: t, dir: dir}
	files := map[string]string{
		"registries.conf": fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", registryHost),
		"policy.json":     `{"default":[{"type":"insecureAcceptAnything"}]}` + "\n",
		"storage.conf":    fmt.Sprintf("[storage]\ndriver = \"overlay\"\nrunroot = %q\ngraphroot = %q\n", filepath.Join(dir, "runroot"), filepath.Join(dir, "root")),
		"containers.conf": "[engine]\n",
		"auth.json":       `{"auths":{}}` + "\n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	b.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"TMPDIR=" + filepath.Join(dir, "tmp"),
		"CONTAINERS_REGISTRIES_CONF=" + filepath.Join(dir, "registries.conf"),
		"CONTAINERS_STORAGE_CONF=" + filepath.Join(dir, "storage.conf"),
		"CONTAINERS_CONF=" + filepath.Join(dir, "containers.conf"),
		"REGISTRY_AUTH_FILE=" + filepath.Join(dir, "auth.json"),
	}
	t.Cleanup(b.cleanup)
	return b
}

func (b *testBuildah) run(ctx context.Context, args ...string) string {
	b.t.Helper()
	global := []string{"--root", filepath.Join(b.dir, "root"), "--runroot", filepath.Join(b.dir, "runroot"),
		"--storage-driver", "overlay", "--registries-conf", filepath.Join(b.dir, "registries.conf")}
	cmd := exec.CommandContext(ctx, "buildah", append(global, args...)...)
	cmd.Env = b.env
	cmd.Dir = b.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.t.Fatalf("buildah %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// registryArgs are the flags of the subcommands that talk to the registry.
func (b *testBuildah) registryArgs() []string {
	return []string{"--tls-verify=false", "--signature-policy", filepath.Join(b.dir, "policy.json")}
}

func (b *testBuildah) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "buildah", "--root", filepath.Join(b.dir, "root"), "--runroot", filepath.Join(b.dir, "runroot"),
		"--storage-driver", "overlay", "rm", "--all")
	cmd.Env = b.env
	_ = cmd.Run()
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], b.dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	for _, m := range mounts {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

// build generates into a new context directory, builds it and pushes the
// image as ref.
func (b *testBuildah) build(ctx context.Context, r Request, ref string) *Result {
	b.t.Helper()
	out := filepath.Join(b.t.TempDir(), "context")
	res, err := Generate(ctx, r, out)
	if err != nil {
		b.t.Fatalf("Generate: %v", err)
	}
	df, _ := os.ReadFile(res.Dockerfile)
	b.t.Logf("Dockerfile for %s:\n%s", ref, df)
	args := append([]string{"bud", "--isolation", "chroot", "--pull=true"}, b.registryArgs()...)
	log := b.run(ctx, append(args, "-f", res.Dockerfile, "-t", ref, out)...)
	if !strings.Contains(log, "---> Installing application source...") {
		b.t.Errorf("assemble's output is not in the build log:\n%s", log)
	}
	b.run(ctx, append(append([]string{"push"}, b.registryArgs()...), ref, "docker://"+ref)...)
	return res
}

// imageFiles reads a pushed image: its config and its flattened files.
func imageFiles(t *testing.T, ref string) (*v1.ConfigFile, map[string]*tar.Header, map[string]string) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	hdrs, data := map[string]*tar.Header{}, map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := "/" + strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		hdrs[p] = h
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			data[p] = string(b)
		}
	}
	return cf, hdrs, data
}

// TestBuildah builds generated Dockerfiles with the real buildah against a
// builder image in an in-process registry: assemble runs as the assemble
// user with the build's environment, and an incremental build restores the
// previous image's save-artifacts output.
func TestBuildah(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images with buildah")
	}
	if _, err := exec.LookPath("buildah"); err != nil {
		t.Skip("no buildah")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (buildah with overlay storage and chroot isolation)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	layer := builderLayer(t)
	push := func(ref string, img v1.Image) {
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, img); err != nil {
			t.Fatal(err)
		}
	}
	builderLabels := map[string]string{ScriptsURLLabel: "image:///usr/libexec/s2i", "io.k8s.display-name": "test builder"}
	builderRef := host + "/ns/builder:latest"
	push(builderRef, builderImage(t, layer, builderLabels))
	bh := newTestBuildah(t, host)

	// Build 1: a clean build, with the source's own run script and
	// .s2i/environment, and a symlink in the source.
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"hello.txt":         "v1",
		".s2i/environment":  "FOO=from env file\nGREETING=overridden\n",
		".s2i/bin/run":      "#!/bin/sh\necho custom run\n",
		"link-to-passwd":    "-> /etc/passwd",
		".s2i/bin/helper":   "kept",
		"dir with space/f1": "x",
	})
	appRef := host + "/ns/app:latest"
	greeting := `hello "world" $HOME \ ` + "\nline2"
	req := Request{
		Builder:   Builder{Image: builderRef, Labels: builderLabels, User: "1001"},
		SourceDir: src,
		Env:       []KV{{"OPENSHIFT_BUILD_NAME", "app-1"}, {"GREETING", greeting}},
		Labels:    []KV{{"io.openshift.build.name", "app-1"}, {"io.k8s.display-name", "my $app"}},
	}
	res := bh.build(ctx, req, appRef)
	if res.User != "1001" {
		t.Errorf("user %q", res.User)
	}
	cf, hdrs, files := imageFiles(t, appRef)
	wantResult := "uid=1001\nfoo=from env file\ngreeting=hello \"world\" $HOME \\ \\nline2\nhello=v1\nrestored=no\n"
	if files["/opt/app/result"] != wantResult || files["/opt/app/counter"] != "1\n" {
		t.Errorf("assemble wrote result %q counter %q, want %q", files["/opt/app/result"], files["/opt/app/counter"], wantResult)
	}
	if h := hdrs["/opt/app/result"]; h == nil || h.Uid != 1001 {
		t.Errorf("result header %+v", h)
	}
	if h := hdrs["/tmp/src/link-to-passwd"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "/etc/passwd" {
		t.Errorf("the source's symlink in the image: %+v", h)
	}
	if h := hdrs["/tmp/src/hello.txt"]; h == nil || h.Uid != 1001 || h.Gid != 0 {
		t.Errorf("the source's owner in the image: %+v", h)
	}
	if _, ok := hdrs["/tmp/src/.s2i/bin/run"]; ok {
		t.Errorf("the source's run script stayed in the source")
	}
	if files["/tmp/src/.s2i/bin/helper"] != "kept" || files["/tmp/scripts/run"] != "#!/bin/sh\necho custom run\n" || hdrs["/tmp/scripts/run"].Mode&0o777 != 0o755 {
		t.Errorf("scripts in the image: helper %q run %q", files["/tmp/src/.s2i/bin/helper"], files["/tmp/scripts/run"])
	}
	if !reflect.DeepEqual(cf.Config.Cmd, []string{"/bin/sh", "-c", "/tmp/scripts/run"}) || cf.Config.User != "1001" {
		t.Errorf("config Cmd %q User %q", cf.Config.Cmd, cf.Config.User)
	}
	env := map[string]string{}
	for _, e := range cf.Config.Env {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	if env["GREETING"] != `hello "world" $HOME \ \nline2` || env["FOO"] != "from env file" || env["OPENSHIFT_BUILD_NAME"] != "app-1" || env["STI_SCRIPTS_PATH"] != "/usr/libexec/s2i" {
		t.Errorf("config Env %q", cf.Config.Env)
	}
	for k, v := range map[string]string{
		BuildImageLabel: builderRef, S2IBuildImageLabel: builderRef, "io.openshift.build.name": "app-1",
		"io.k8s.display-name": "my $app", ScriptsURLLabel: "image:///usr/libexec/s2i",
	} {
		if cf.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], v)
		}
	}

	// Build 2: incremental from build 1's image, pulled from the registry.
	bh.run(ctx, "rmi", appRef)
	writeTree(t, src, map[string]string{"hello.txt": "v2"})
	req.PreviousImage = appRef
	req.Env[0].Value = "app-2"
	bh.build(ctx, req, host+"/ns/app:2")
	_, hdrs, files = imageFiles(t, host+"/ns/app:2")
	if files["/opt/app/counter"] != "2\n" || !strings.Contains(files["/opt/app/result"], "hello=v2\nrestored=yes\n") {
		t.Errorf("incremental build: counter %q result %q", files["/opt/app/counter"], files["/opt/app/result"])
	}
	if h := hdrs["/tmp/artifacts/counter"]; h == nil || h.Uid != 1001 {
		t.Errorf("restored artifacts: %+v", h)
	}
	if _, ok := hdrs["/tmp/artifacts.tar"]; ok {
		t.Errorf("/tmp/artifacts.tar left in the image")
	}

	// Build 3: a destination with a space, incremental from an image
	// without save-artifacts output (an empty tar).
	spaced := map[string]string{ScriptsURLLabel: "image:///usr/libexec/s2i", DestinationLabel: "/opt/s2i dest"}
	spacedRef := host + "/ns/builder:spaced"
	push(spacedRef, builderImage(t, layer, spaced, "DEST=/opt/s2i dest"))
	src3 := t.TempDir()
	writeTree(t, src3, map[string]string{"hello.txt": "v3"})
	bh.build(ctx, Request{Builder: Builder{Image: spacedRef, Labels: spaced, User: "1001"}, SourceDir: src3, PreviousImage: spacedRef}, host+"/ns/app:3")
	cf, hdrs, files = imageFiles(t, host+"/ns/app:3")
	if !strings.Contains(files["/opt/app/result"], "hello=v3\nrestored=no\n") || files["/opt/s2i dest/src/hello.txt"] != "v3" {
		t.Errorf("spaced destination: result %q", files["/opt/app/result"])
	}
	if _, ok := hdrs["/opt/s2i dest/artifacts"]; ok {
		t.Errorf("an empty artifacts tar was extracted")
	}
	if cf.Config.Labels[DestinationLabel] != "/opt/s2i dest" {
		t.Errorf("labels %q", cf.Config.Labels)
	}
}
