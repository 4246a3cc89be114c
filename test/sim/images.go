package sim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/ocbuild/ocbuild/test/sim/baseimage"
)

// Image names. The sandbox registry plays two roles:
//
//   - OpenShift's internal registry: a reference on InternalRegistry
//     (image-registry.openshift-image-registry.svc:5000/<ns>/<name>:<tag>) is
//     pushed to and pulled from <registry>/<ns>/<name>:<tag>;
//   - a mirror of the registries the sandbox cannot reach
//     (MirroredRegistries): pulling <host>/<path>:<tag> reads
//     <registry>/<host>/<path>:<tag> (see MirrorOf; buildah's
//     registries.conf, buildah.go). Pushes to other registries are attempted
//     for real.
//
// SeedImages publishes the base images under the names below, relative to
// the registry, and as the mirrors of the external images they stand for.
const (
	InternalRegistry = "image-registry.openshift-image-registry.svc:5000"

	// BaseImage is a busybox shell image (baseimage "base").
	BaseImage = "sim/base:latest"
	// PythonBuilderImage is a Python S2I builder made of Debian packages
	// (baseimage "python-311").
	PythonBuilderImage = "sim/python-builder:latest"
	// GolangBuilderImage is a Go toolset image with the machine's Go
	// (baseimage "go-toolset").
	GolangBuilderImage = "sim/golang-builder:latest"
)

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

// Seed names: the locally built base images (package baseimage) are
// published under these names on the sandbox registry, and under each of
// their external references (MirrorOf).
var seedNames = map[string]string{
	"base":       BaseImage,
	"python-311": PythonBuilderImage,
	"go-toolset": GolangBuilderImage,
}

// SeedImages publishes the base images on registry (host:port, plain http):
// under BaseImage, PythonBuilderImage and GolangBuilderImage, and under
// MirrorOf(registry, ref) for each external reference they stand for.
func SeedImages(ctx context.Context, registry string, images []baseimage.Image) error {
	for _, im := range images {
		targets := []string{}
		if n, ok := seedNames[im.Name]; ok {
			targets = append(targets, registry+"/"+n)
		}
		for _, r := range im.Refs {
			m, err := MirrorOf(registry, r)
			if err != nil {
				return err
			}
			targets = append(targets, m)
		}
		for _, t := range targets {
			ref, err := parseRef(t, true)
			if err != nil {
				return err
			}
			if err := remote.Write(ref, im.Image, remote.WithContext(ctx)); err != nil {
				return fmt.Errorf("seeding %s: %w", t, err)
			}
		}
	}
	return nil
}

// within reports whether p is inside root (both cleaned, absolute).
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func osTempDir() string { return os.TempDir() }
