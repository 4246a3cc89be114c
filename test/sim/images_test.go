package sim

import (
	"archive/tar"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/ocbuild/ocbuild/test/sim/baseimage"
)

// newTestRegistry serves go-containerregistry's registry over plain http and
// returns its host:port.
func newTestRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// testImages are the base images, built once into the shared cache
// (test/.cache/images) and loaded once per test binary.
var testImages = sync.OnceValues(func() ([]baseimage.Image, error) {
	if err := baseimage.EnsurePrerequisites(context.Background(), func(string) {}); err != nil {
		return nil, err
	}
	return baseimage.Build(context.Background(), baseimage.Options{CacheDir: filepath.Join("..", ".cache", "images"), Log: func(string) {}})
})

// seededRegistry is a test registry with the base images named (all when
// none is).
func seededRegistry(t *testing.T, names ...string) string {
	t.Helper()
	all, err := testImages()
	if err != nil {
		t.Fatal(err)
	}
	var images []baseimage.Image
	for _, im := range all {
		if len(names) == 0 || slices.Contains(names, im.Name) {
			images = append(images, im)
		}
	}
	reg := newTestRegistry(t)
	if err := SeedImages(context.Background(), reg, images); err != nil {
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

// Each base image is published under its sandbox name and as the mirror of
// every external reference it stands for, with the same digest.
func TestSeedImages(t *testing.T) {
	reg := seededRegistry(t)
	ctx := context.Background()
	for short, refs := range map[string][]string{
		BaseImage:          {"registry.access.redhat.com/ubi9/ubi-minimal:latest", "registry.access.redhat.com/ubi9/ubi:latest"},
		PythonBuilderImage: {"registry.access.redhat.com/ubi9/python-311:latest"},
		GolangBuilderImage: {"registry.access.redhat.com/ubi9/go-toolset:latest"},
	} {
		img, err := pullImage(ctx, reg, reg+"/"+short)
		if err != nil {
			t.Fatalf("pull %s: %v", short, err)
		}
		want, _ := img.Digest()
		for _, r := range refs {
			mirror, err := pullImage(ctx, reg, r)
			if err != nil {
				t.Fatalf("pull %s through its mirror: %v", r, err)
			}
			if d, _ := mirror.Digest(); d != want {
				t.Errorf("%s is %s, want %s's %s", r, d, short, want)
			}
		}
	}
	py, _ := pullImage(ctx, reg, reg+"/"+PythonBuilderImage)
	cf, _ := py.ConfigFile()
	if cf.Config.Labels["io.openshift.s2i.scripts-url"] != "image:///usr/libexec/s2i" || cf.Config.User != "1001" {
		t.Errorf("python builder config: %+v", cf.Config)
	}
}

// writeTree writes files (path → content; a path ending in / is a
// directory, *.sh is executable) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") || strings.Contains(name, ".s2i/bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// imageFiles lists the flattened filesystem: path → content ("<dir>",
// "-> target" for links), with uid:gid for regular files in owners.
func imageFiles(t *testing.T, img v1.Image) (map[string]string, map[string]string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	files, owners := map[string]string{}, map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, owners
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		switch h.Typeflag {
		case tar.TypeDir:
			files[name] = "<dir>"
		case tar.TypeSymlink:
			files[name] = "-> " + h.Linkname
		default:
			b, _ := io.ReadAll(tr)
			files[name] = string(b)
		}
		owners[name] = strconv.Itoa(h.Uid) + ":" + strconv.Itoa(h.Gid)
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

// pullRef resolves an image to pull through the sandbox registry.
func pullRef(registry, image string) (name.Reference, error) {
	m, err := MirrorOf(registry, image)
	if err != nil {
		return nil, err
	}
	return parseRef(m, true)
}

// pullImage fetches image (linux/amd64 from an index) through the sandbox
// registry.
func pullImage(ctx context.Context, registry, image string) (v1.Image, error) {
	ref, err := pullRef(registry, image)
	if err != nil {
		return nil, err
	}
	return remote.Image(ref, remote.WithContext(ctx))
}
