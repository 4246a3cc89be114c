package main

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const maxCompressed = 20 << 20 // the budget per platform

// caBundle returns the build machine's CA bundle, or a stand-in when the
// machine has none (the test checks placement, not the certificates).
func caBundle(t *testing.T) string {
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		return "/etc/ssl/certs/ca-certificates.crt"
	}
	p := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(p, []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// files extracts an image's flattened filesystem: name -> header and content.
func files(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdrs, data := map[string]*tar.Header{}, map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		hdrs[name] = h
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			data[name] = b
		}
	}
	return hdrs, data
}

func TestBuildImage(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the step for two platforms")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "ocbuild-image")
	var logBuf bytes.Buffer
	o := &options{
		Package:   "./step",
		Version:   "v0.0.0-imagebuild-test",
		Revision:  "0123456789abcdef0123456789abcdef01234567",
		Source:    "https://github.com/ocbuild/ocbuild",
		Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}},
		CABundle:  caBundle(t),
		Epoch:     time.Unix(1700000000, 0).UTC(),
		Out:       out,
		WorkDir:   t.TempDir(),
		Log:       &logBuf,
	}
	res, err := build(ctx, o)
	t.Log("\n" + logBuf.String())
	if err != nil {
		t.Fatal(err)
	}

	// The OCI layout names one index, by version, that has both platforms.
	lp, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	topManifest, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(topManifest.Manifests) != 1 || topManifest.Manifests[0].Annotations[refNameAnnotation] != o.Version {
		t.Fatalf("index.json should name one index %q, got %+v", o.Version, topManifest.Manifests)
	}
	if topManifest.Manifests[0].MediaType != types.OCIImageIndex {
		t.Fatalf("index.json entry is %s, want an OCI image index", topManifest.Manifests[0].MediaType)
	}
	idx, err := top.ImageIndex(topManifest.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	wantDigest, _ := res.Index.Digest()
	if got, _ := idx.Digest(); got != wantDigest {
		t.Errorf("layout index %s, built %s", got, wantDigest)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	byPlatform := map[string]v1.Descriptor{}
	for _, d := range im.Manifests {
		if d.Platform == nil {
			t.Fatalf("manifest %s has no platform", d.Digest)
		}
		byPlatform[platformKey(*d.Platform)] = d
		if d.MediaType != types.OCIManifestSchema1 {
			t.Errorf("%s: media type %s", platformKey(*d.Platform), d.MediaType)
		}
	}
	for _, want := range []string{"linux/amd64", "linux/arm64"} {
		if _, ok := byPlatform[want]; !ok {
			t.Errorf("index lacks %s (has %v)", want, byPlatform)
		}
	}
	if im.Annotations["org.opencontainers.image.version"] != o.Version {
		t.Errorf("index annotations %v", im.Annotations)
	}

	for key, d := range byPlatform {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		size, err := compressedSize(img)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %.2f MB compressed", key, float64(size)/1e6)
		if size > maxCompressed {
			t.Errorf("%s: %d bytes compressed, over the %d budget", key, size, maxCompressed)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS+"/"+cf.Architecture != key {
			t.Errorf("%s: config says %s/%s", key, cf.OS, cf.Architecture)
		}
		if cf.Config.User != "65532:65532" {
			t.Errorf("%s: user %q, want non-root 65532:65532", key, cf.Config.User)
		}
		if strings.Join(cf.Config.Entrypoint, " ") != "/ocbuild" || len(cf.Config.Cmd) != 0 {
			t.Errorf("%s: entrypoint %q cmd %q", key, cf.Config.Entrypoint, cf.Config.Cmd)
		}
		for _, l := range []string{"source", "version", "revision", "licenses", "title"} {
			if cf.Config.Labels["org.opencontainers.image."+l] == "" {
				t.Errorf("%s: label org.opencontainers.image.%s missing", key, l)
			}
		}
		if !cf.Created.Time.Equal(o.Epoch) {
			t.Errorf("%s: created %v, want the epoch %v", key, cf.Created, o.Epoch)
		}

		hdrs, data := files(t, img)
		bin := hdrs["ocbuild"]
		if bin == nil || bin.Typeflag != tar.TypeReg || bin.Mode&0o777 != 0o755 {
			t.Fatalf("%s: /ocbuild missing or not 0755: %+v", key, bin)
		}
		for _, f := range []string{"etc/ssl/certs/ca-certificates.crt", "etc/passwd", "etc/group"} {
			if len(data[f]) == 0 {
				t.Errorf("%s: %s missing or empty", key, f)
			}
		}
		if !strings.Contains(string(data["etc/passwd"]), ":65532:65532:") {
			t.Errorf("%s: no user 65532 in /etc/passwd", key)
		}
		for _, shell := range []string{"bin/sh", "bin/bash", "usr/bin/sh"} {
			if hdrs[shell] != nil {
				t.Errorf("%s: image has a shell at /%s", key, shell)
			}
		}
		if h := hdrs["tmp"]; h == nil || h.Mode&0o1777 != 0o1777 {
			t.Errorf("%s: /tmp missing or not 1777", key)
		}
		for name, h := range hdrs {
			if !h.ModTime.Equal(o.Epoch) {
				t.Errorf("%s: %s has time %v, want the epoch", key, name, h.ModTime)
			}
		}

		// The entrypoint, taken from the image's own filesystem, runs.
		if key == runtime.GOOS+"/"+runtime.GOARCH {
			exe := filepath.Join(t.TempDir(), "ocbuild")
			if err := os.WriteFile(exe, data["ocbuild"], 0o755); err != nil {
				t.Fatal(err)
			}
			got, err := exec.CommandContext(ctx, exe, "--version").CombinedOutput()
			if err != nil {
				t.Fatalf("%s --version: %v\n%s", key, err, got)
			}
			if !strings.Contains(string(got), o.Version) {
				t.Errorf("%s: `ocbuild --version` printed %q, want it to contain %q", key, got, o.Version)
			}
			t.Logf("%s: /ocbuild --version: %s", key, strings.TrimSpace(string(got)))
		}
	}

	// The base layer is shared across platforms.
	amd, _ := idx.Image(byPlatform["linux/amd64"].Digest)
	arm, _ := idx.Image(byPlatform["linux/arm64"].Digest)
	la, _ := amd.Layers()
	lr, _ := arm.Layers()
	da, _ := la[0].Digest()
	dr, _ := lr[0].Digest()
	if da != dr {
		t.Errorf("base layers differ across platforms: %s vs %s", da, dr)
	}

	// Pushing to a registry (an in-memory one on loopback) gives back the
	// same index.
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	target := strings.TrimPrefix(srv.URL, "http://") + "/ocbuild/ocbuild:" + o.Version
	ref, err := push(ctx, res.Index, target, true)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Index(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := pulled.Digest(); d != wantDigest {
		t.Errorf("pushed index reads back as %s, want %s", d, wantDigest)
	}

	// Same inputs, same digest: the assembly is reproducible.
	again, err := assemble(o, res.Binaries)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := again.Index.Digest(); d != wantDigest {
		t.Errorf("assembling twice gave %s then %s", wantDigest, d)
	}
}

func TestParsePlatforms(t *testing.T) {
	ps, err := parsePlatforms("linux/amd64, linux/arm64/v8")
	if err != nil || len(ps) != 2 || platformKey(ps[1]) != "linux/arm64/v8" {
		t.Fatalf("got %v, %v", ps, err)
	}
	for _, bad := range []string{"", "windows/amd64", "amd64", "linux/amd64/v1/x"} {
		if _, err := parsePlatforms(bad); err == nil {
			t.Errorf("parsePlatforms(%q) accepted", bad)
		}
	}
}
