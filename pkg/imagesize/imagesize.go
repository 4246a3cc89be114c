// Package imagesize finds the size of a pushed image: config blob plus
// compressed layers, the figure Shipwright reports as status.output.size.
//
// OpenShift's Build API has no size field. For images pushed to the cluster's
// internal registry the image API knows the size (imagestreamimages); for any
// other registry the manifest is read with go-containerregistry using the
// step's docker credentials ($DOCKER_CONFIG, else $HOME/.docker).
package imagesize

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/ocbuild/ocbuild/pkg/buildapi"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Images gets imagestreamimages (buildapi.Interface does).
type Images interface {
	ImageStreamImages(namespace string) buildapi.ImageStreamImageInterface
}

// Lookup finds image sizes.
type Lookup struct {
	// InternalRegistries are the hosts of the cluster's integrated registry.
	InternalRegistries []string
	// Images is the image.openshift.io client; nil disables internal lookups.
	Images Images
	// Insecure allows plain HTTP and unverified TLS for external registries
	// (Shipwright's shp-output-insecure).
	Insecure bool
	// Keychain resolves registry credentials; nil means authn.DefaultKeychain.
	Keychain authn.Keychain
}

// Size returns the size in bytes of the image ref (the build's output
// reference, any tag is ignored) at digest.
func (l Lookup) Size(ctx context.Context, ref, digest string) (int64, error) {
	if digest == "" {
		return 0, fmt.Errorf("imagesize: no digest to look up")
	}
	opts := []name.Option{}
	if l.Insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return 0, fmt.Errorf("imagesize: parse %q: %w", ref, err)
	}
	repo := r.Context()
	if l.internal(repo.RegistryStr()) && l.Images != nil {
		return l.internalSize(ctx, repo.RepositoryStr(), digest)
	}
	return l.registrySize(ctx, repo, digest)
}

func (l Lookup) internal(host string) bool {
	for _, h := range l.InternalRegistries {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

// internalSize reads imagestreamimages/<stream>@<digest> in the namespace the
// repository path names (<namespace>/<stream>).
func (l Lookup) internalSize(ctx context.Context, repository, digest string) (int64, error) {
	ns, stream, ok := strings.Cut(repository, "/")
	if !ok || strings.Contains(stream, "/") {
		return 0, fmt.Errorf("imagesize: %q is not <namespace>/<imagestream>", repository)
	}
	isi, err := l.Images.ImageStreamImages(ns).Get(ctx, stream+"@"+digest, metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("imagesize: get imagestreamimages %s@%s: %w", stream, digest, err)
	}
	var meta struct {
		Size int64 `json:"Size"`
	}
	if raw := isi.Image.DockerImageMetadata.Raw; len(raw) > 0 {
		if err := json.Unmarshal(raw, &meta); err != nil {
			return 0, fmt.Errorf("imagesize: decode image metadata: %w", err)
		}
	}
	if meta.Size > 0 {
		return meta.Size, nil
	}
	// Fall back to the layer list the image API keeps.
	var sum int64
	for _, layer := range isi.Image.DockerImageLayers {
		sum += layer.LayerSize
	}
	if sum == 0 {
		return 0, fmt.Errorf("imagesize: the image API reports no size for %s@%s", stream, digest)
	}
	return sum, nil
}

func (l Lookup) registrySize(ctx context.Context, repo name.Repository, digest string) (int64, error) {
	d := repo.Digest(digest)
	kc := l.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
	if l.Insecure {
		tr := remote.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // only when the Build says the registry is insecure
		ropts = append(ropts, remote.WithTransport(tr))
	}
	desc, err := remote.Get(d, ropts...)
	if err != nil {
		return 0, fmt.Errorf("imagesize: read manifest %s: %w", d, err)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return 0, fmt.Errorf("imagesize: read index %s: %w", d, err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return 0, fmt.Errorf("imagesize: read index %s: %w", d, err)
		}
		var total int64
		for _, child := range m.Manifests {
			img, err := idx.Image(child.Digest)
			if err != nil {
				return 0, fmt.Errorf("imagesize: read %s: %w", child.Digest, err)
			}
			n, err := ImageSize(img)
			if err != nil {
				return 0, err
			}
			total += n
		}
		return total, nil
	}
	img, err := desc.Image()
	if err != nil {
		return 0, fmt.Errorf("imagesize: read image %s: %w", d, err)
	}
	return ImageSize(img)
}

// ImageSize is the config blob size plus the compressed size of each distinct
// layer, as listed in the manifest.
func ImageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, fmt.Errorf("imagesize: manifest: %w", err)
	}
	total := m.Config.Size
	seen := map[v1.Hash]bool{}
	for _, l := range m.Layers {
		if seen[l.Digest] {
			continue
		}
		seen[l.Digest] = true
		total += l.Size
	}
	return total, nil
}
