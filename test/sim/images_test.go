package sim

import (
	"archive/tar"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// newTestRegistry serves go-containerregistry's registry over plain http and
// returns its host:port.
func newTestRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// seededRegistry is a test registry with the seed images.
func seededRegistry(t *testing.T) string {
	t.Helper()
	reg := newTestRegistry(t)
	if err := SeedImages(context.Background(), reg); err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestMirrorOf(t *testing.T) {
	const reg = "127.0.0.1:5000"
	for in, want := range map[string]string{
		reg + "/sim/base:latest":                            reg + "/sim/base:latest",
		InternalRegistry + "/ns/app:v1":                     reg + "/ns/app:v1",
		"registry.access.redhat.com/ubi9/ubi-minimal":       reg + "/registry.access.redhat.com/ubi9/ubi-minimal:latest",
		"quay.io/org/img@sha256:" + strings.Repeat("a", 64): reg + "/quay.io/org/img@sha256:" + strings.Repeat("a", 64),
		"busybox": reg + "/index.docker.io/library/busybox:latest",
	} {
		got, err := MirrorOf(reg, in)
		if err != nil || got != want {
			t.Errorf("MirrorOf(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	// pushes go to the sandbox registry only for it and the internal registry
	for in, want := range map[string]string{
		InternalRegistry + "/ns/app:v1": reg + "/ns/app:v1",
		reg + "/x/y:z":                  reg + "/x/y:z",
		"quay.io/org/app:1":             "quay.io/org/app:1",
	} {
		ref, err := pushRef(reg, in)
		if err != nil || ref.Name() != want {
			t.Errorf("pushRef(%q) = %v, %v; want %q", in, ref, err, want)
		}
	}
}

func TestSeedImages(t *testing.T) {
	reg := seededRegistry(t)
	ctx := context.Background()
	digests := map[string]v1.Hash{}
	for _, n := range []string{reg + "/" + BaseImage, reg + "/" + PythonBuilderImage, reg + "/" + GolangBuilderImage,
		"registry.access.redhat.com/ubi9/python-311:latest", "registry.access.redhat.com/ubi9/go-toolset:latest"} {
		img, err := pullImage(ctx, reg, n)
		if err != nil {
			t.Fatalf("pull %s: %v", n, err)
		}
		d, _ := img.Digest()
		digests[n] = d
		if mt, _ := img.MediaType(); mt != types.DockerManifestSchema2 {
			t.Errorf("%s: media type %s", n, mt)
		}
	}
	if digests[reg+"/"+PythonBuilderImage] != digests["registry.access.redhat.com/ubi9/python-311:latest"] {
		t.Error("the python-311 mirror is not the python builder")
	}
	py, _ := pullImage(ctx, reg, reg+"/"+PythonBuilderImage)
	cf, _ := py.ConfigFile()
	if cf.Config.Labels["io.openshift.s2i.scripts-url"] != "image:///usr/libexec/s2i" || cf.Config.User != "1001" {
		t.Errorf("python builder config: %+v", cf.Config)
	}
	if b, err := readImageFile(py, "/usr/libexec/s2i/assemble"); err != nil || !strings.Contains(string(b), "Installing application source") {
		t.Errorf("assemble: %q %v", b, err)
	}
	if b, err := readImageFile(py, "etc/passwd"); err != nil || !strings.Contains(string(b), "root:x:0:0") {
		t.Errorf("passwd: %q %v", b, err)
	}
	// Seeding again gives the same digests (fixed times, deterministic tars).
	reg2 := seededRegistry(t)
	img, err := pullImage(ctx, reg2, reg2+"/"+BaseImage)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d != digests[reg+"/"+BaseImage] {
		t.Errorf("base digest differs between seedings: %s vs %s", d, digests[reg+"/"+BaseImage])
	}
}

func TestBuildLayerDeterministic(t *testing.T) {
	dir := t.TempDir()
	f := dir + "/content"
	if err := os.WriteFile(f, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	entries := []layerEntry{
		{Name: "b/file", Type: tar.TypeReg, Mode: 0o644, Path: f},
		{Name: "a", Type: tar.TypeDir, Mode: 0o755},
		{Name: "/b/link", Type: tar.TypeSymlink, Linkname: "file"},
		{Name: "a", Type: tar.TypeDir, Mode: 0o700, UID: 5}, // the last duplicate wins
	}
	l1, err := buildLayer(dir, entries, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := buildLayer("", entries, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	if l1.digest != l2.digest || l1.diffID != l2.diffID || l1.size != l2.size {
		t.Fatalf("file and memory layers differ: %+v %+v", l1, l2)
	}
	rc, err := l1.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "a/" && (h.Mode != 0o700 || h.Uid != 5) {
			t.Errorf("a/: mode %o uid %d", h.Mode, h.Uid)
		}
		if !h.ModTime.Equal(layerMTime) {
			t.Errorf("%s: mtime %v", h.Name, h.ModTime)
		}
	}
	if got := strings.Join(names, ","); got != "a/,b/file,b/link" {
		t.Errorf("entries %s", got)
	}
	// the digests are those of the bytes
	c, _ := l1.Compressed()
	d, n, err := v1.SHA256(c)
	c.Close()
	if err != nil || d != l1.digest || n != l1.size {
		t.Errorf("digest %s/%d, want %s/%d", d, n, l1.digest, l1.size)
	}
}

func TestPushUnreachable(t *testing.T) {
	reg := seededRegistry(t)
	img, err := pullImage(context.Background(), reg, reg+"/"+BaseImage)
	if err != nil {
		t.Fatal(err)
	}
	// a closed port on loopback: connection refused
	srv := httptest.NewServer(nil)
	dead := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	if _, err := pushImage(context.Background(), reg, dead+"/x/y:z", img); err == nil {
		t.Fatal("push to a closed port succeeded")
	}
	if _, err := remote.Head(mustRef(t, reg+"/"+BaseImage)); err != nil {
		t.Fatal(err)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := parseRef(s, true)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
