package baseimage

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// sharedCache is the cache the sandbox uses (test/.cache/images): tests that
// build the slow images use it too, so only the first run anywhere pays.
func sharedCache(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", ".cache", "images"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func testLog(t *testing.T) func(string) {
	return func(s string) { t.Log(s) }
}

// needPrerequisites installs what Build needs, or skips when that cannot be.
func needPrerequisites(t *testing.T) {
	t.Helper()
	if err := EnsurePrerequisites(context.Background(), testLog(t)); err != nil {
		t.Skipf("the Debian packages Build needs are missing and cannot be installed: %v", err)
	}
}

// needBuildah installs buildah when missing, or skips when that cannot be.
func needBuildah(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("buildah"); err == nil {
		if os.Geteuid() != 0 {
			t.Skip("the buildah tests run buildah as root (overlay storage, chroot isolation); not root")
		}
		return
	}
	if err := aptInstall(context.Background(), testLog(t), "buildah"); err != nil {
		t.Skipf("buildah is missing and cannot be installed: %v", err)
	}
}

func buildImages(t *testing.T, cache string, names ...string) map[string]Image {
	t.Helper()
	only := map[string]bool{}
	for _, n := range names {
		only[n] = true
	}
	start := time.Now()
	imgs, err := build(context.Background(), Options{CacheDir: cache, Log: testLog(t)}, only)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("build(%s) took %s", strings.Join(names, ", "), time.Since(start).Round(time.Millisecond))
	out := map[string]Image{}
	for _, img := range imgs {
		out[img.Name] = img
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			t.Fatalf("build returned no %s image", n)
		}
	}
	return out
}

// files flattens img's layers: path -> last header (whiteouts aside, which
// these images do not have), with the content of files up to 64 KiB.
type entry struct {
	hdr  *tar.Header
	data []byte
}

func files(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]entry{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			e := entry{hdr: h}
			if h.Typeflag == tar.TypeReg && h.Size <= 64<<10 {
				e.data, _ = io.ReadAll(tr)
			}
			out[strings.TrimSuffix(h.Name, "/")] = e
		}
		rc.Close()
	}
	return out
}

func config(t *testing.T, img v1.Image) *v1.ConfigFile {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s, want linux/amd64", cf.OS, cf.Architecture)
	}
	if !cf.Created.Time.Equal(created) {
		t.Errorf("created %s, want %s", cf.Created.Time, created)
	}
	return cf
}

func wantEntry(t *testing.T, fs map[string]entry, name string, typ byte, mode int64, uid, gid int) entry {
	t.Helper()
	e, ok := fs[name]
	if !ok {
		t.Errorf("%s is missing", name)
		return e
	}
	if e.hdr.Typeflag != typ || e.hdr.Mode&0o7777 != mode || e.hdr.Uid != uid || e.hdr.Gid != gid {
		t.Errorf("%s: type %c mode %o owner %d:%d, want type %c mode %o owner %d:%d",
			name, e.hdr.Typeflag, e.hdr.Mode&0o7777, e.hdr.Uid, e.hdr.Gid, typ, mode, uid, gid)
	}
	return e
}

func TestLayerWriterIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	write := func(name string) v1.Layer {
		w, err := newLayerWriter(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(
			w.file("a/b/c.txt", 0o640, 1001, 0, []byte("hello")),
			w.symlink("a/link", "b/c.txt"),
			w.write(&tar.Header{Typeflag: tar.TypeLink, Name: "./a/hard", Linkname: "./a/b/c.txt"}, nil),
			w.dir("tmp", 0o1777, 0, 0),
		); err != nil {
			t.Fatal(err)
		}
		l, err := w.close("application/vnd.oci.image.layer.v1.tar+gzip")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l1, l2 := write("1.tar.gz"), write("2.tar.gz")
	d1, _ := l1.Digest()
	d2, _ := l2.Digest()
	if d1 != d2 {
		t.Errorf("same entries, different digests: %s, %s", d1, d2)
	}
	// The hashes the writer computed are those of the bytes it wrote.
	rc, _ := l1.Compressed()
	h := sha256.New()
	n, _ := io.Copy(h, rc)
	rc.Close()
	if size, _ := l1.Size(); fmt.Sprintf("%x", h.Sum(nil)) != d1.Hex || n != size {
		t.Errorf("digest/size %s/%d, file has sha256:%x/%d", d1, size, h.Sum(nil), n)
	}
	rc, _ = l1.Uncompressed()
	tr := tar.NewReader(rc)
	var got []string
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		got = append(got, fmt.Sprintf("%s %c %o %d:%d %s", hdr.Name, hdr.Typeflag, hdr.Mode, hdr.Uid, hdr.Gid, hdr.Linkname))
		if !hdr.ModTime.Equal(created) {
			t.Errorf("%s: mtime %s", hdr.Name, hdr.ModTime)
		}
	}
	rc.Close()
	want := []string{
		"a/ 5 755 0:0 ", "a/b/ 5 755 0:0 ", "a/b/c.txt 0 640 1001:0 ",
		"a/link 2 777 0:0 b/c.txt", "a/hard 1 0 0:0 a/b/c.txt", "tmp/ 5 1777 0:0 ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAptSources(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "sources.list")
	sources := filepath.Join(dir, "debian.sources")
	other := filepath.Join(dir, "nodesource.sources")
	os.WriteFile(list, []byte("# comment\ndeb [arch=amd64] http://mirror.example/debian bookworm main contrib\ndeb-src http://x/debian bookworm main\n"), 0o644)
	os.WriteFile(sources, []byte("Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n"), 0o644)
	os.WriteFile(other, []byte("Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n"), 0o644)
	got := aptSources([]string{list, filepath.Join(dir, "missing.list"), sources, other})
	want := []string{
		"deb http://mirror.example/debian bookworm main",
		"deb http://deb.debian.org/debian bookworm main",
		"deb http://deb.debian.org/debian bookworm-updates main",
		"deb http://deb.debian.org/debian-security bookworm-security main",
	}
	if !slices.Equal(got, want) {
		t.Errorf("aptSources:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := aptSources(nil); len(got) != 3 || !strings.Contains(got[0], "deb.debian.org") {
		t.Errorf("aptSources(nil) = %q, want deb.debian.org's", got)
	}
}

// The base image: content, config, reproducibility across caches, the
// cache, and the lock.
func TestBase(t *testing.T) {
	needPrerequisites(t)
	c1, c2 := t.TempDir(), t.TempDir()
	img := buildImages(t, c1, Base)[Base]
	if d1, d2 := digest(t, img.Image), digest(t, buildImages(t, c2, Base)[Base].Image); d1 != d2 {
		t.Errorf("two caches, two digests: %s, %s", d1, d2)
	}
	if !slices.Contains(img.Refs, "registry.access.redhat.com/ubi9/ubi-minimal:latest") || !slices.Contains(img.Refs, "docker.io/library/busybox:latest") {
		t.Errorf("refs %q", img.Refs)
	}
	fs := files(t, img.Image)
	wantEntry(t, fs, "bin/busybox", tar.TypeReg, 0o755, 0, 0)
	for _, a := range []string{"sh", "ls", "tar", "mv", "cp", "mkdir", "chown", "id", "wget"} {
		if e := wantEntry(t, fs, "bin/"+a, tar.TypeSymlink, 0o777, 0, 0); e.hdr != nil && e.hdr.Linkname != "/bin/busybox" {
			t.Errorf("bin/%s -> %s", a, e.hdr.Linkname)
		}
	}
	wantEntry(t, fs, "tmp", tar.TypeDir, 0o1777, 0, 0)
	wantEntry(t, fs, "root", tar.TypeDir, 0o700, 0, 0)
	wantEntry(t, fs, "etc/os-release", tar.TypeReg, 0o644, 0, 0)
	pw := string(wantEntry(t, fs, "etc/passwd", tar.TypeReg, 0o644, 0, 0).data)
	for _, l := range []string{"root:x:0:0:", "nobody:x:65534:65534:", "default:x:1001:0:Default Application User:/opt/app-root/src:"} {
		if !strings.Contains(pw, "\n"+l) && !strings.HasPrefix(pw, l) {
			t.Errorf("/etc/passwd lacks %q:\n%s", l, pw)
		}
	}
	cf := config(t, img.Image)
	if !slices.Equal(cf.Config.Cmd, []string{"/bin/sh"}) || !slices.Contains(cf.Config.Env, "PATH="+basePath) {
		t.Errorf("config: cmd %q env %q", cf.Config.Cmd, cf.Config.Env)
	}

	// From the cache: the same image, and quickly.
	start := time.Now()
	again := buildImages(t, c1, Base)[Base]
	if digest(t, again.Image) != digest(t, img.Image) {
		t.Error("the cached image differs from the built one")
	}
	t.Logf("base from cache in %s", time.Since(start))

	// Two builders at once on an empty cache: one builds, the other waits
	// for the lock and then reads the cache.
	c3 := t.TempDir()
	var mu sync.Mutex
	var events []string
	o := Options{CacheDir: c3, Log: func(s string) { mu.Lock(); events = append(events, s); mu.Unlock() }}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = build(context.Background(), o, map[string]bool{Base: true})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	built, cached := 0, 0
	for _, e := range events {
		switch {
		case strings.HasPrefix(e, "built "):
			built++
		case strings.HasSuffix(e, " from cache"):
			cached++
		}
	}
	if built != 1 || cached != 1 {
		t.Errorf("two concurrent builds: %d built, %d from cache; events:\n%s", built, cached, strings.Join(events, "\n"))
	}
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// buildah runs real buildah bud against an in-process registry.
type buildah struct {
	t        *testing.T
	registry string // host:port
	root     string
	conf     string
}

func newBuildah(t *testing.T) *buildah {
	t.Helper()
	needBuildah(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	b := &buildah{t: t, registry: strings.TrimPrefix(srv.URL, "http://"), root: t.TempDir()}
	b.conf = filepath.Join(b.root, "registries.conf")
	conf := fmt.Sprintf("unqualified-search-registries = []\n\n[[registry]]\nlocation = %q\ninsecure = true\n", b.registry)
	if err := os.WriteFile(b.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.cleanup)
	return b
}

// push puts img at <registry>/<name>:latest and returns that reference.
func (b *buildah) push(img Image) string {
	b.t.Helper()
	ref := b.registry + "/" + img.Name + ":latest"
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := remote.Write(r, img.Image); err != nil {
		b.t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}

func (b *buildah) args(a ...string) []string {
	return append([]string{"--root", filepath.Join(b.root, "storage"), "--runroot", filepath.Join(b.root, "run"),
		"--storage-driver", "overlay", "--registries-conf", b.conf}, a...)
}

// bud builds the Dockerfile and context in files; it returns the output.
func (b *buildah) bud(files map[string]string) (string, error) {
	b.t.Helper()
	dir, err := os.MkdirTemp(b.root, "context-")
	if err != nil {
		b.t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	cmd := exec.Command("buildah", b.args("bud", "--isolation", "chroot", "--tls-verify=false",
		"--layers=false", "-t", "localhost/test:latest", dir)...)
	out, err := cmd.CombinedOutput()
	b.t.Logf("buildah bud:\n%s", out)
	return string(out), err
}

// cleanup removes buildah's storage; overlay mounts left behind would make
// the temporary directory impossible to remove.
func (b *buildah) cleanup() {
	_ = exec.Command("buildah", b.args("rm", "--all")...).Run()
	_ = exec.Command("buildah", b.args("rmi", "--all", "--force")...).Run()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fl := strings.Fields(sc.Text()); len(fl) > 4 && strings.HasPrefix(fl[4], b.root+"/") {
			mounts = append(mounts, fl[4])
		}
	}
	slices.Reverse(mounts)
	for _, m := range mounts {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

func TestBaseWithBuildah(t *testing.T) {
	needPrerequisites(t)
	imgs := buildImages(t, sharedCache(t), Base)
	b := newBuildah(t)
	ref := b.push(imgs[Base])
	out, err := b.bud(map[string]string{"Dockerfile": "FROM " + ref + `
RUN echo hi > /x && sh -c 'id -u' && test "$(cat /x)" = hi && for c in ls tar mv cp mkdir chown id wget; do which $c; done
USER 1001
RUN echo "uid=$(id -u) gid=$(id -g) user=$(id -un)" && touch /tmp/ok
`})
	if err != nil {
		t.Fatalf("buildah bud: %v", err)
	}
	for _, want := range []string{"\n0\n", "/bin/wget", "uid=1001 gid=0 user=default"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

const goApp = `package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from go-toolset")
	}))
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("app says: %s\n", body)
}
`

func TestGoToolsetWithBuildah(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: building the go-toolset image and compiling net/http in it take a minute or more")
	}
	needPrerequisites(t)
	img := buildImages(t, sharedCache(t), GoToolset)[GoToolset]
	fs := files(t, img.Image)
	wantEntry(t, fs, "usr/local/go/bin/go", tar.TypeReg, 0o755, 0, 0)
	wantEntry(t, fs, "usr/local/go/src/net/http/server.go", tar.TypeReg, 0o644, 0, 0)
	wantEntry(t, fs, "usr/bin/go", tar.TypeSymlink, 0o777, 0, 0)
	wantEntry(t, fs, "opt/app-root/src", tar.TypeDir, 0o775, 1001, 0)
	wantEntry(t, fs, "usr/libexec/s2i/assemble", tar.TypeReg, 0o755, 0, 0)
	wantEntry(t, fs, "bin/sh", tar.TypeSymlink, 0o777, 0, 0)
	for p := range fs {
		if strings.HasPrefix(p, "usr/local/go/test/") || strings.HasPrefix(p, "usr/local/go/doc/") ||
			strings.Contains(p, "/testdata/") || strings.HasSuffix(p, "_test.go") {
			t.Errorf("%s should have been trimmed", p)
			break
		}
	}
	cf := config(t, img.Image)
	if cf.Config.User != "1001" || cf.Config.WorkingDir != "/opt/app-root/src" {
		t.Errorf("user %q workdir %q", cf.Config.User, cf.Config.WorkingDir)
	}
	for _, e := range []string{"GOPROXY=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0", "HOME=/opt/app-root/src"} {
		if !slices.Contains(cf.Config.Env, e) {
			t.Errorf("env %q lacks %s", cf.Config.Env, e)
		}
	}
	for _, e := range cf.Config.Env {
		if strings.HasPrefix(e, "GOFLAGS=") {
			t.Errorf("env has %s", e)
		}
	}
	if cf.Config.Labels["io.openshift.s2i.scripts-url"] != "image:///usr/libexec/s2i" {
		t.Errorf("labels %v", cf.Config.Labels)
	}

	b := newBuildah(t)
	ref := b.push(img)
	out, err := b.bud(map[string]string{
		"Dockerfile": "FROM " + ref + `
COPY --chown=1001:0 app/ /opt/app-root/src/
RUN id -u && go version && CGO_ENABLED=0 go build -o /tmp/app . && /tmp/app
USER root
COPY app/ /tmp/src/
RUN chown -R 1001:0 /tmp/src
USER 1001
RUN /usr/libexec/s2i/assemble && /usr/libexec/s2i/run && rm -rf "$HOME/.cache"
`,
		"app/go.mod":  "module example.com/app\n\ngo 1.22\n",
		"app/main.go": goApp,
	})
	if err != nil {
		t.Fatalf("buildah bud: %v", err)
	}
	for _, want := range []string{"\n1001\n", "app says: hello from go-toolset", "---> Building application from source", "/opt/app-root/gobinary"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Count(out, "app says: hello from go-toolset") < 2 {
		t.Error("the S2I-built binary did not run")
	}
}

// wheel returns a tiny pure-Python wheel: hello_ocbuild 1.0.
func wheel(t *testing.T) []byte {
	t.Helper()
	files := [][2]string{
		{"hello_ocbuild/__init__.py", "MSG = 'hello from a local wheel'\n"},
		{"hello_ocbuild-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: hello-ocbuild\nVersion: 1.0\n"},
		{"hello_ocbuild-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: ocbuild-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var record strings.Builder
	for _, f := range files {
		w, _ := zw.Create(f[0])
		io.WriteString(w, f[1])
		sum := sha256.Sum256([]byte(f[1]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f[0], base64.RawURLEncoding.EncodeToString(sum[:]), len(f[1]))
	}
	record.WriteString("hello_ocbuild-1.0.dist-info/RECORD,,\n")
	w, _ := zw.Create("hello_ocbuild-1.0.dist-info/RECORD")
	io.WriteString(w, record.String())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPythonWithBuildah(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the python-311 image is made by mmdebstrap (a minute or two on the first run)")
	}
	needPrerequisites(t)
	img := buildImages(t, sharedCache(t), Python311)[Python311]
	if !slices.Contains(img.Refs, "registry.access.redhat.com/ubi9/python-311:latest") {
		t.Errorf("refs %q", img.Refs)
	}
	fs := files(t, img.Image)
	for _, s := range []string{"assemble", "run", "save-artifacts", "usage"} {
		wantEntry(t, fs, "usr/libexec/s2i/"+s, tar.TypeReg, 0o755, 0, 0)
	}
	wantEntry(t, fs, "opt/app-root", tar.TypeDir, 0o775, 1001, 0)
	wantEntry(t, fs, "opt/app-root/src", tar.TypeDir, 0o775, 1001, 0)
	wantEntry(t, fs, "opt/app-root/bin/python", tar.TypeSymlink, 0o777, 1001, 0)
	if e := fs["etc/passwd"]; !strings.Contains(string(e.data), "\n"+appUser) {
		t.Errorf("/etc/passwd lacks the S2I user:\n%s", e.data)
	}
	for p, e := range fs {
		if strings.HasPrefix(p, "var/lib/apt/lists/") || strings.HasPrefix(p, "var/cache/apt/") || e.hdr.Typeflag == tar.TypeChar {
			t.Errorf("%s should not be in the image", p)
		}
	}
	cf := config(t, img.Image)
	labels := map[string]string{
		"io.openshift.s2i.scripts-url": "image:///usr/libexec/s2i", "io.s2i.scripts-url": "image:///usr/libexec/s2i",
		"io.openshift.s2i.destination": "/tmp", "io.openshift.expose-services": "8080:http",
		"io.openshift.tags": "builder,python,python311",
	}
	for k, v := range labels {
		if cf.Config.Labels[k] != v {
			t.Errorf("label %s=%q, want %q", k, cf.Config.Labels[k], v)
		}
	}
	for _, e := range []string{"HOME=/opt/app-root/src", "APP_ROOT=/opt/app-root", "STI_SCRIPTS_PATH=/usr/libexec/s2i", "PYTHON_VERSION=3.11"} {
		if !slices.Contains(cf.Config.Env, e) {
			t.Errorf("env %q lacks %s", cf.Config.Env, e)
		}
	}
	for _, e := range cf.Config.Env {
		if strings.HasPrefix(e, "PIP_NO_CACHE_DIR=") || (strings.HasPrefix(e, "PATH=") && !strings.HasPrefix(e, "PATH=/opt/app-root/")) {
			t.Errorf("env has %s", e)
		}
	}
	if cf.Config.User != "1001" || cf.Config.WorkingDir != "/opt/app-root/src" {
		t.Errorf("user %q workdir %q", cf.Config.User, cf.Config.WorkingDir)
	}

	b := newBuildah(t)
	ref := b.push(img)
	whl := string(wheel(t))
	app := "import hello_ocbuild\n"
	// An S2I build, then an incremental one from its save-artifacts: the
	// second finds hello-ocbuild only because the first saved it.
	out, err := b.bud(map[string]string{
		"Dockerfile": "FROM " + ref + ` AS first
RUN python3 -c 'import pip, venv; print("imports ok")' && test -x /usr/libexec/s2i/assemble && python -c 'import sys; print("venv", sys.prefix)' && bash -n /usr/libexec/s2i/run
USER root
COPY src1/ /tmp/src/
RUN chown -R 1001:0 /tmp/src
USER 1001
RUN /usr/libexec/s2i/assemble && python -c 'import hello_ocbuild; print("first:", hello_ocbuild.MSG)'
RUN /usr/libexec/s2i/save-artifacts > /tmp/artifacts.tar && tar tf /tmp/artifacts.tar | grep -E '^\.venv-site-packages/hello_ocbuild/__init__\.py$'

FROM ` + ref + `
USER root
COPY --from=first /tmp/artifacts.tar /tmp/artifacts.tar
COPY src2/ /tmp/src/
RUN mkdir /tmp/artifacts && tar xf /tmp/artifacts.tar -C /tmp/artifacts && rm /tmp/artifacts.tar && chown -R 1001:0 /tmp/artifacts /tmp/src
USER 1001
RUN /usr/libexec/s2i/assemble && python -c 'import hello_ocbuild; print("second:", hello_ocbuild.MSG)'
`,
		"src1/app.py":           app,
		"src1/requirements.txt": "--no-index\n--find-links ./wheels\nhello-ocbuild\n",
		"src1/wheels/hello_ocbuild-1.0-py3-none-any.whl": whl,
		"src2/app.py":           app,
		"src2/requirements.txt": "--no-index\nhello-ocbuild\n",
	})
	if err != nil {
		t.Fatalf("buildah bud: %v", err)
	}
	for _, want := range []string{
		"imports ok", "venv /opt/app-root", "---> Installing application source ...", "---> Installing dependencies ...",
		"first: hello from a local wheel", "Requirement already satisfied: hello-ocbuild",
		".venv-site-packages/hello_ocbuild/__init__.py",
		"---> Restoring build artifacts ...", "second: hello from a local wheel",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// Like sclorg's, assemble moves the source: a .git already in $HOME
	// makes it fail.
	out, err = b.bud(map[string]string{
		"Dockerfile": "FROM " + ref + `
USER root
COPY src/ /tmp/src/
RUN mkdir -p /opt/app-root/src/.git/refs && touch /opt/app-root/src/.git/refs/old && chown -R 1001:0 /tmp/src /opt/app-root/src
USER 1001
RUN /usr/libexec/s2i/assemble
`,
		"src/app.py":    app,
		"src/.git/HEAD": "ref: refs/heads/main\n",
	})
	if err == nil {
		t.Fatal("assemble with a .git in $HOME succeeded; want mv's failure")
	}
	if !strings.Contains(out, "mv: cannot move '/tmp/src/.git'") || !(strings.Contains(out, "Directory not empty") || strings.Contains(out, "File exists")) {
		t.Errorf("output lacks mv's failure on .git")
	}
}

// Every image, a second time from the cache: well under a few seconds.
func TestBuildFromCache(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the first Build of all images takes minutes")
	}
	needPrerequisites(t)
	o := Options{CacheDir: sharedCache(t), Log: testLog(t)}
	start := time.Now()
	first, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first Build: %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	second, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	warm := time.Since(start)
	t.Logf("second Build (cache): %s", warm.Round(time.Millisecond))
	if warm > 3*time.Second {
		t.Errorf("Build from the cache took %s", warm)
	}
	if len(first) != 3 || len(second) != 3 {
		t.Fatalf("%d and %d images, want 3", len(first), len(second))
	}
	for i := range first {
		if first[i].Name != second[i].Name || digest(t, first[i].Image) != digest(t, second[i].Image) {
			t.Errorf("%s: a different image from the cache", first[i].Name)
		}
		size, _ := imageSize(second[i].Image)
		t.Logf("%s: %s, %s compressed, refs %s", second[i].Name, digest(t, second[i].Image), humanSize(size), strings.Join(second[i].Refs, " "))
	}
}
