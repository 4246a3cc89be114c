// Package baseimage builds, locally and reproducibly, the base images the
// sandbox's registry publishes in place of the real ones (UBI, busybox):
//
//   - base: BusyBox (Debian's busybox-static) with its applets under /bin,
//     /etc/passwd, /etc/group, /tmp;
//   - go-toolset: base plus this machine's Go toolchain, an S2I Go builder;
//   - python-311: a Debian bookworm root filesystem made by mmdebstrap with
//     python3, pip and venv, an S2I Python builder (an app's libraries come from its package index).
//
// The images are assembled with go-containerregistry from directory trees
// and tar streams (not with a container build tool), as linux/amd64 OCI
// images with gzip layers created at 2024-01-01T00:00:00Z, and cached on disk
// (one OCI image layout per image, keyed by a hash of everything that goes
// into it), so only the first Build pays.
package baseimage

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// created is every image's (and every generated file's) time.
var created = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// recipeVersion is part of every cache key: bump it when a recipe changes in
// a way its other inputs do not show.
const recipeVersion = "ocbuild-baseimage/1"

// Image names.
const (
	Base      = "base"
	GoToolset = "go-toolset"
	Python311 = "python-311"
)

// Options configure Build.
type Options struct {
	// CacheDir holds one OCI image layout per image, named
	// <name>-<hash of its inputs>, and the lock file; e.g.
	// <repo>/test/.cache/images. Required.
	CacheDir string
	// Log receives one human line per event (building, from cache). May be nil.
	Log func(string)
}

// Image is one built image and the references it is published under.
type Image struct {
	Name  string   // short name: "base", "go-toolset", "python-311"
	Refs  []string // external references, e.g. "registry.access.redhat.com/ubi9/go-toolset:latest"
	Image v1.Image
}

// recipe is how to make one image.
type recipe struct {
	name string
	refs []string
	// what names the image in log lines; slow says what a cold build costs.
	what, slow string
	// inputs returns the text that, hashed, keys the cache.
	inputs func(ctx context.Context, b *builder) (string, error)
	// build makes the image; stage is a scratch directory for its layers.
	build func(ctx context.Context, b *builder, stage string) (v1.Image, error)
}

// Refs per image.
var (
	BaseRefs = []string{
		"registry.access.redhat.com/ubi9/ubi-minimal:latest",
		"registry.access.redhat.com/ubi9/ubi:latest",
		"registry.access.redhat.com/ubi9-minimal:latest",
		"docker.io/library/busybox:latest",
		// The placeholder builder of samples/custom-buildconfig: the
		// simulator does not run Custom builder images (it commits them
		// with the source), so any image stands for it.
		"quay.io/example/custom-builder:latest",
	}
	GoToolsetRefs = []string{
		"registry.access.redhat.com/ubi9/go-toolset:latest",
		"registry.access.redhat.com/ubi8/go-toolset:latest",
	}
	Python311Refs = []string{
		"registry.access.redhat.com/ubi9/python-311:latest",
		"registry.access.redhat.com/ubi9/python-312:latest",
	}
)

// builder carries one Build's state.
type builder struct {
	o    Options
	keys map[string]string // image name -> cache key
	imgs map[string]v1.Image
}

func (b *builder) log(format string, args ...any) {
	if b.o.Log != nil {
		b.o.Log(fmt.Sprintf(format, args...))
	}
}

// Build returns every image (base, go-toolset, python-311), building what
// the cache lacks. Two processes may call it at once: the second waits on a
// lock file in CacheDir and then finds the first one's images.
func Build(ctx context.Context, o Options) ([]Image, error) {
	return build(ctx, o, nil)
}

// build builds the images named in only (nil: all), and what they need.
func build(ctx context.Context, o Options, only map[string]bool) ([]Image, error) {
	if o.CacheDir == "" {
		return nil, errors.New("baseimage: Options.CacheDir is required")
	}
	dir, err := filepath.Abs(o.CacheDir)
	if err != nil {
		return nil, err
	}
	o.CacheDir = dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("baseimage: %w", err)
	}
	b := &builder{o: o, keys: map[string]string{}, imgs: map[string]v1.Image{}}
	unlock, err := b.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Scratch directories of builds that died half-way.
	if old, _ := filepath.Glob(filepath.Join(dir, ".build-*")); len(old) > 0 {
		for _, d := range old {
			_ = os.RemoveAll(d)
		}
	}
	var out []Image
	for _, r := range recipes() {
		needed := only == nil || only[r.name] || (r.name == Base && only[GoToolset])
		if !needed {
			continue
		}
		img, err := b.image(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("baseimage: %s: %w", r.name, err)
		}
		if only == nil || only[r.name] {
			out = append(out, Image{Name: r.name, Refs: append([]string(nil), r.refs...), Image: img})
		}
	}
	return out, nil
}

func recipes() []recipe { return []recipe{baseRecipe(), goToolsetRecipe(), pythonRecipe()} }

// lock takes the exclusive flock on CacheDir/.lock.
func (b *builder) lock(ctx context.Context) (func(), error) {
	p := filepath.Join(b.o.CacheDir, ".lock")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("baseimage: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		return func() { f.Close() }, nil
	}
	b.log("waiting for another process building base images (lock %s)…", p)
	done := make(chan error, 1)
	go func() { done <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("baseimage: lock %s: %w", p, err)
		}
		return func() { f.Close() }, nil
	case <-ctx.Done():
		go func() { <-done; f.Close() }()
		return nil, ctx.Err()
	}
}

// image returns r's image from the cache, building it if missing.
func (b *builder) image(ctx context.Context, r recipe) (v1.Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	in, err := r.inputs(ctx, b)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%x", sha256.Sum256([]byte(recipeVersion+"\n"+in)))[:20]
	b.keys[r.name] = key
	final := filepath.Join(b.o.CacheDir, r.name+"-"+key)
	if img, err := loadLayout(final); err == nil {
		b.log("%s from cache", r.what)
		b.imgs[r.name] = img
		return img, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		b.log("%s: cached copy unusable (%v), building it again", r.what, err)
	}
	start := time.Now()
	b.log("building %s (%s)…", r.what, r.slow)
	stage, err := os.MkdirTemp(b.o.CacheDir, ".build-"+r.name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)
	img, err := r.build(ctx, b, stage)
	if err != nil {
		return nil, err
	}
	tmp := filepath.Join(stage, "layout")
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return nil, err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": r.name,
	})); err != nil {
		return nil, fmt.Errorf("writing the image layout: %w", err)
	}
	_ = os.RemoveAll(final)
	if err := os.Rename(tmp, final); err != nil {
		return nil, err
	}
	// Older builds of the same image (other inputs) are dead weight.
	if old, _ := filepath.Glob(filepath.Join(b.o.CacheDir, r.name+"-*")); len(old) > 0 {
		for _, d := range old {
			if d != final && len(filepath.Base(d)) == len(r.name)+1+len(key) {
				_ = os.RemoveAll(d)
			}
		}
	}
	img, err = loadLayout(final)
	if err != nil {
		return nil, err
	}
	size, _ := imageSize(img)
	b.log("built %s in %s (%s compressed)", r.what, time.Since(start).Round(100*time.Millisecond), humanSize(size))
	b.imgs[r.name] = img
	return img, nil
}

// loadLayout reads the one image of the OCI layout at dir, checking that its
// blobs are all there. A missing layout is os.ErrNotExist.
func loadLayout(dir string) (v1.Image, error) {
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		return nil, err
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(im.Manifests) != 1 {
		return nil, fmt.Errorf("%s: %d manifests, want 1", dir, len(im.Manifests))
	}
	img, err := p.Image(im.Manifests[0].Digest)
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		fi, err := os.Stat(filepath.Join(dir, "blobs", d.Digest.Algorithm, d.Digest.Hex))
		if err != nil {
			return nil, fmt.Errorf("incomplete layout: blob %s is missing", d.Digest)
		}
		if fi.Size() != d.Size {
			return nil, fmt.Errorf("blob %s has %d bytes, want %d", d.Digest, fi.Size(), d.Size)
		}
	}
	return img, nil
}

// layerSpec is a layer and how its history entry describes it.
type layerSpec struct {
	layer     v1.Layer
	createdBy string
}

// assemble stacks layers on base (nil: an empty OCI image) and edits the
// config; the result is linux/amd64, created at the fixed time.
func assemble(base v1.Image, layers []layerSpec, edit func(cf *v1.ConfigFile)) (v1.Image, error) {
	if base == nil {
		base = mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	}
	img := base
	for _, l := range layers {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{Layer: l.layer, History: v1.History{
			Created: v1.Time{Time: created}, CreatedBy: l.createdBy, Comment: "ocbuild baseimage"}})
		if err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = "linux", "amd64", ""
	cf.Created = v1.Time{Time: created}
	cf.Author = "ocbuild"
	edit(cf)
	return mutate.ConfigFile(img, cf)
}

// imageSize is the sum of the image's compressed layer sizes.
func imageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// mergeLabels returns base's labels with add over them.
func mergeLabels(base, add map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range add {
		out[k] = v
	}
	return out
}

// s2iLabels are the labels of an S2I builder image.
func s2iLabels(tags string) map[string]string {
	return map[string]string{
		"io.openshift.s2i.scripts-url":   "image:///usr/libexec/s2i",
		"io.s2i.scripts-url":             "image:///usr/libexec/s2i",
		"io.openshift.s2i.destination":   "/tmp",
		"io.openshift.s2i.assemble-user": "1001",
		"io.openshift.expose-services":   "8080:http",
		"io.openshift.tags":              tags,
	}
}

// lines joins its arguments, one a line: the text of cache keys.
func lines(s ...string) string { return strings.Join(s, "\n") + "\n" }
