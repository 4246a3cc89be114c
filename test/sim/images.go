package sim

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image names. The sandbox registry plays two roles:
//
//   - OpenShift's internal registry: a reference on InternalRegistry
//     (image-registry.openshift-image-registry.svc:5000/<ns>/<name>:<tag>) is
//     pushed to and pulled from <registry>/<ns>/<name>:<tag>;
//   - a pull-through mirror for every other registry, which the sandbox cannot
//     reach: pulling <host>/<path>:<tag> reads <registry>/<host>/<path>:<tag>
//     (see MirrorOf). Pushes to other registries are attempted for real (and
//     fail offline with PushImageToRegistryFailed).
//
// SeedImages pushes the images below, relative to the registry, and mirrors
// of the UBI images the samples name (MirroredImages).
const (
	InternalRegistry = "image-registry.openshift-image-registry.svc:5000"

	// BaseImage is a tiny busybox-like base: /etc/passwd, /etc/group, /tmp.
	BaseImage = "sim/base:latest"
	// PythonBuilderImage is an S2I builder (io.openshift.s2i.scripts-url=
	// image:///usr/libexec/s2i) with fake assemble/run/save-artifacts scripts.
	PythonBuilderImage = "sim/python-builder:latest"
	// GolangBuilderImage is a Go S2I builder/toolset image of the same kind.
	GolangBuilderImage = "sim/golang-builder:latest"

	// ArtifactsLayerLabel marks, on images built with the Source strategy,
	// the digest of the layer holding the S2I artifacts; an incremental build
	// reuses that layer.
	ArtifactsLayerLabel = "io.ocbuild.sim.artifacts-layer"
)

// MirroredImages are the external images SeedImages mirrors (each to
// MirrorOf(registry, name)), mapped to the seed image they are a copy of.
var MirroredImages = map[string]string{
	"registry.access.redhat.com/ubi9/ubi-minimal:latest": BaseImage,
	"registry.access.redhat.com/ubi9/ubi:latest":         BaseImage,
	"registry.access.redhat.com/ubi9/go-toolset:latest":  GolangBuilderImage,
	"registry.access.redhat.com/ubi9/python-311:latest":  PythonBuilderImage,
	"registry.access.redhat.com/ubi9/python-312:latest":  PythonBuilderImage,
}

// MirrorOf returns where the sandbox registry holds image: itself for images
// already on registry, <registry>/<path> for the internal registry, and
// <registry>/<host>/<path> for any other registry.
func MirrorOf(registry, image string) (string, error) {
	ref, err := parseRef(image, false)
	if err != nil {
		return "", err
	}
	host := ref.Context().RegistryStr()
	repo := ref.Context().RepositoryStr()
	suffix := ":" + ref.Identifier()
	if _, ok := ref.(name.Digest); ok {
		suffix = "@" + ref.Identifier()
	}
	switch host {
	case registry:
		return image, nil
	case InternalRegistry:
		return registry + "/" + repo + suffix, nil
	default:
		return registry + "/" + host + "/" + repo + suffix, nil
	}
}

func parseRef(image string, insecure bool) (name.Reference, error) {
	opts := []name.Option{name.WeakValidation}
	if insecure {
		opts = append(opts, name.Insecure)
	}
	return name.ParseReference(image, opts...)
}

// pullRef resolves an image to pull through the sandbox registry.
func pullRef(registry, image string) (name.Reference, error) {
	m, err := MirrorOf(registry, image)
	if err != nil {
		return nil, err
	}
	return parseRef(m, true)
}

// pushRef resolves an output image: the sandbox registry (directly or as the
// internal registry) over plain http, any other registry as is.
func pushRef(registry, image string) (name.Reference, error) {
	ref, err := parseRef(image, false)
	if err != nil {
		return nil, err
	}
	switch ref.Context().RegistryStr() {
	case registry, InternalRegistry:
		m, err := MirrorOf(registry, image)
		if err != nil {
			return nil, err
		}
		return parseRef(m, true)
	}
	return ref, nil
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

// pushImage writes img to image and returns the manifest digest.
func pushImage(ctx context.Context, registry, image string, img v1.Image) (v1.Hash, error) {
	ref, err := pushRef(registry, image)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

// layerEntry is one member of a layer tarball.
type layerEntry struct {
	Name     string // path in the image, without the leading slash
	Type     byte   // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	Mode     int64  // permission bits
	UID, GID int
	Linkname string
	Data     []byte // content of a regular file, or
	Path     string // a file on disk holding it
}

// layerMTime is the modification time of every layer member, so that the same
// content always makes the same layer.
var layerMTime = time.Unix(0, 0).UTC()

// sortEntries orders entries by name, keeping the last of duplicates.
func sortEntries(entries []layerEntry) []layerEntry {
	idx := map[string]int{}
	var out []layerEntry
	for _, e := range entries {
		e.Name = strings.TrimPrefix(path.Clean("/"+e.Name), "/")
		if e.Name == "" {
			continue
		}
		if i, ok := idx[e.Name]; ok {
			out[i] = e
			continue
		}
		idx[e.Name] = len(out)
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// writeLayerTar writes a deterministic tar of entries.
func writeLayerTar(w io.Writer, entries []layerEntry) error {
	tw := tar.NewWriter(w)
	for _, e := range sortEntries(entries) {
		hdr := &tar.Header{
			Name:     e.Name,
			Typeflag: e.Type,
			Mode:     e.Mode,
			Uid:      e.UID,
			Gid:      e.GID,
			ModTime:  layerMTime,
			Linkname: e.Linkname,
			Format:   tar.FormatPAX,
		}
		var content io.Reader
		switch e.Type {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeReg:
			if e.Path != "" {
				f, err := os.Open(e.Path)
				if err != nil {
					return err
				}
				fi, err := f.Stat()
				if err != nil {
					f.Close()
					return err
				}
				hdr.Size = fi.Size()
				content = f
			} else {
				hdr.Size = int64(len(e.Data))
				content = bytes.NewReader(e.Data)
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			closeIf(content)
			return err
		}
		if content != nil {
			n, err := io.Copy(tw, content)
			closeIf(content)
			if err != nil {
				return err
			}
			if n != hdr.Size {
				return fmt.Errorf("%s changed while being read", e.Name)
			}
		}
	}
	return tw.Close()
}

func closeIf(r io.Reader) {
	if c, ok := r.(io.Closer); ok {
		_ = c.Close()
	}
}

// builtLayer is a gzip'd layer built once, in memory or in a file, with its
// digests computed while writing (no second compression at push time).
type builtLayer struct {
	digest, diffID v1.Hash
	size           int64
	mediaType      types.MediaType
	data           []byte
	file           string
}

func (l *builtLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *builtLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *builtLayer) Size() (int64, error)     { return l.size, nil }
func (l *builtLayer) MediaType() (types.MediaType, error) {
	return l.mediaType, nil
}
func (l *builtLayer) Compressed() (io.ReadCloser, error) {
	if l.file != "" {
		return os.Open(l.file)
	}
	return io.NopCloser(bytes.NewReader(l.data)), nil
}
func (l *builtLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, rc}, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// buildLayer makes a layer of entries, in a file under dir (or in memory if
// dir is empty), with the media type mt (a gzip'd Docker or OCI layer).
func buildLayer(dir string, entries []layerEntry, mt types.MediaType) (*builtLayer, error) {
	l := &builtLayer{mediaType: mt}
	var sink io.Writer
	var buf bytes.Buffer
	var f *os.File
	if dir != "" {
		var err error
		if f, err = os.CreateTemp(dir, "layer-*.tar.gz"); err != nil {
			return nil, err
		}
		defer f.Close()
		l.file = f.Name()
		sink = f
	} else {
		sink = &buf
	}
	compressedHash := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(sink, compressedHash)}
	zw, err := gzip.NewWriterLevel(cw, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	diffHash := sha256.New()
	if err := writeLayerTar(io.MultiWriter(zw, diffHash), entries); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return nil, err
		}
	}
	l.size = cw.n
	l.digest = toHash(compressedHash)
	l.diffID = toHash(diffHash)
	if dir == "" {
		l.data = buf.Bytes()
	}
	return l, nil
}

func toHash(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// layerMediaType is the layer media type that goes with an image's manifest.
func layerMediaType(img v1.Image) types.MediaType {
	if mt, err := img.MediaType(); err == nil && mt == types.OCIManifestSchema1 {
		return types.OCILayer
	}
	return types.DockerLayer
}

// materialize extracts img's flattened filesystem into dir (regular files,
// directories and links; owners are not kept).
func materialize(img v1.Image, dir string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	return extractTar(dir, rc)
}

// imagePaths lists the type of every path (without leading slash) in img's
// flattened filesystem.
func imagePaths(img v1.Image) (map[string]byte, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]byte{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")] = hdr.Typeflag
	}
}

// readImageFile returns the content of one regular file of img.
func readImageFile(img v1.Image, p string) ([]byte, error) {
	want := strings.TrimPrefix(path.Clean("/"+p), "/")
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil, os.ErrNotExist
		}
		if err != nil {
			return nil, err
		}
		if strings.TrimPrefix(path.Clean("/"+hdr.Name), "/") == want && hdr.Typeflag == tar.TypeReg {
			return io.ReadAll(io.LimitReader(tr, 1<<20))
		}
	}
}

// seedTime is the creation time of the seeded images, so their digests are
// the same at every sandbox start.
var seedTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

const seedPasswd = `root:x:0:0:root:/root:/bin/sh
bin:x:1:1:bin:/bin:/sbin/nologin
nobody:x:65534:65534:Kernel Overflow User:/:/sbin/nologin
default:x:1001:0:Default Application User:/opt/app-root/src:/sbin/nologin
`

const seedGroup = `root:x:0:
bin:x:1:
nobody:x:65534:
`

func seedBase() (v1.Image, error) {
	l, err := buildLayer("", []layerEntry{
		{Name: "bin", Type: tar.TypeDir, Mode: 0o755},
		{Name: "etc", Type: tar.TypeDir, Mode: 0o755},
		{Name: "etc/passwd", Type: tar.TypeReg, Mode: 0o644, Data: []byte(seedPasswd)},
		{Name: "etc/group", Type: tar.TypeReg, Mode: 0o644, Data: []byte(seedGroup)},
		{Name: "etc/os-release", Type: tar.TypeReg, Mode: 0o644, Data: []byte("NAME=\"ocbuild sandbox base\"\nID=ocbuild-sim\nVERSION_ID=1\n")},
		{Name: "root", Type: tar.TypeDir, Mode: 0o700},
		{Name: "tmp", Type: tar.TypeDir, Mode: 0o1777},
		{Name: "usr", Type: tar.TypeDir, Mode: 0o755},
		{Name: "usr/bin", Type: tar.TypeDir, Mode: 0o755},
		{Name: "var", Type: tar.TypeDir, Mode: 0o755},
	}, types.DockerLayer)
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: l, History: v1.History{
		Created: v1.Time{Time: seedTime}, CreatedBy: "ocbuild sim: base filesystem"}})
	if err != nil {
		return nil, err
	}
	return withConfig(img, func(cf *v1.ConfigFile) {
		cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		cf.Config.Cmd = []string{"/bin/sh"}
		cf.Config.Labels = map[string]string{
			"io.k8s.display-name": "ocbuild sandbox base image",
			"name":                "ocbuild-sim/base",
		}
	})
}

// withConfig edits img's config file; the image is linux/amd64, created at
// seedTime unless edit sets another time.
func withConfig(img v1.Image, edit func(cf *v1.ConfigFile)) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: seedTime}
	edit(cf)
	return mutate.ConfigFile(img, cf)
}

func s2iScript(name, body string) layerEntry {
	return layerEntry{Name: "usr/libexec/s2i/" + name, Type: tar.TypeReg, Mode: 0o755,
		Data: []byte("#!/bin/sh\n# Placeholder S2I script of the ocbuild sandbox; the simulator never runs it.\n" + body)}
}

func seedBuilder(base v1.Image, lang, version string, env []string) (v1.Image, error) {
	l, err := buildLayer("", []layerEntry{
		{Name: "opt", Type: tar.TypeDir, Mode: 0o755},
		{Name: "opt/app-root", Type: tar.TypeDir, Mode: 0o755, UID: 1001},
		{Name: "opt/app-root/src", Type: tar.TypeDir, Mode: 0o775, UID: 1001},
		{Name: "usr/libexec", Type: tar.TypeDir, Mode: 0o755},
		{Name: "usr/libexec/s2i", Type: tar.TypeDir, Mode: 0o755},
		s2iScript("assemble", "echo \"---> Installing application source...\"\ncp -Rf /tmp/src/. ./\n"),
		s2iScript("run", "exec echo \"ocbuild sandbox "+lang+" application\"\n"),
		s2iScript("save-artifacts", "[ -d \"$HOME/.cache\" ] && tar cf - .cache\n"),
		s2iScript("usage", "echo \"This is a simulated "+lang+" "+version+" S2I builder image.\"\n"),
	}, types.DockerLayer)
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(base, mutate.Addendum{Layer: l, History: v1.History{
		Created: v1.Time{Time: seedTime}, CreatedBy: "ocbuild sim: " + lang + " S2I scripts"}})
	if err != nil {
		return nil, err
	}
	return withConfig(img, func(cf *v1.ConfigFile) {
		cf.Config.Env = append([]string{
			"PATH=/opt/app-root/src/bin:/opt/app-root/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"HOME=/opt/app-root/src",
			"STI_SCRIPTS_PATH=/usr/libexec/s2i",
			"APP_ROOT=/opt/app-root",
			"PLATFORM=el9",
		}, env...)
		cf.Config.Labels = map[string]string{
			"io.openshift.s2i.scripts-url":   "image:///usr/libexec/s2i",
			"io.s2i.scripts-url":             "image:///usr/libexec/s2i",
			"io.openshift.expose-services":   "8080:http",
			"io.openshift.tags":              "builder," + lang,
			"io.k8s.display-name":            lang + " " + version + " (ocbuild sandbox)",
			"io.k8s.description":             "A simulated " + lang + " S2I builder image.",
			"name":                           "ocbuild-sim/" + lang + "-builder",
			"io.openshift.s2i.assemble-user": "1001",
		}
		cf.Config.User = "1001"
		cf.Config.WorkingDir = "/opt/app-root/src"
		cf.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
		cf.Config.Cmd = []string{"/usr/libexec/s2i/usage"}
	})
}

// SeedImages pushes the images the samples and the end-to-end tests use to
// registry (host:port, plain http): BaseImage, PythonBuilderImage and
// GolangBuilderImage under <registry>/, and the MirroredImages under
// MirrorOf(registry, name). Their content and digests are the same at every
// start.
func SeedImages(ctx context.Context, registry string) error {
	base, err := seedBase()
	if err != nil {
		return err
	}
	py, err := seedBuilder(base, "python", "3.11", []string{"PYTHON_VERSION=3.11", "PIP_NO_CACHE_DIR=off"})
	if err != nil {
		return err
	}
	golang, err := seedBuilder(base, "golang", "1.26", []string{"GO_VERSION=1.26", "GOPATH=/opt/app-root/src/go"})
	if err != nil {
		return err
	}
	seeds := map[string]v1.Image{BaseImage: base, PythonBuilderImage: py, GolangBuilderImage: golang}
	names := make([]string, 0, len(seeds))
	for n := range seeds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := pushImage(ctx, registry, registry+"/"+n, seeds[n]); err != nil {
			return fmt.Errorf("seeding %s: %w", n, err)
		}
	}
	mirrors := make([]string, 0, len(MirroredImages))
	for n := range MirroredImages {
		mirrors = append(mirrors, n)
	}
	sort.Strings(mirrors)
	for _, n := range mirrors {
		img := seeds[MirroredImages[n]]
		if img == nil {
			return fmt.Errorf("mirror %s: no seed image %s", n, MirroredImages[n])
		}
		m, err := MirrorOf(registry, n)
		if err != nil {
			return err
		}
		if _, err := pushImage(ctx, registry, m, img); err != nil {
			return fmt.Errorf("seeding %s: %w", m, err)
		}
	}
	return nil
}

// isNotFound tells whether a registry error means the image does not exist.
func isNotFound(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusNotFound {
			return true
		}
		for _, d := range te.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return true
			}
		}
	}
	return false
}

// within reports whether p is inside root (both cleaned, absolute).
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func osTempDir() string { return os.TempDir() }
