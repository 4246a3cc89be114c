package imagesize

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/ocbuild/ocbuild/pkg/buildapi/buildapifake"
	imagev1 "github.com/openshift/api/image/v1"
	fakeimage "github.com/openshift/client-go/image/clientset/versioned/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestRegistrySizeIsConfigPlusLayers(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(2048, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host + "/team/app:v1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	m, _ := img.Manifest()
	want := m.Config.Size
	for _, l := range m.Layers {
		want += l.Size
	}
	got, err := Lookup{Insecure: true}.Size(context.Background(), host+"/team/app:v1", digest.String())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("size = %d, want %d", got, want)
	}
	// The tag may have moved on: the digest decides.
	other, _ := random.Image(10, 1)
	if err := remote.Write(ref, other); err != nil {
		t.Fatal(err)
	}
	if again, _ := (Lookup{Insecure: true}).Size(context.Background(), host+"/team/app:v1", digest.String()); again != want {
		t.Errorf("after the tag moved, size = %d, want %d", again, want)
	}
}

func TestInternalRegistryUsesImageStreamImages(t *testing.T) {
	isi := &imagev1.ImageStreamImage{ObjectMeta: metav1.ObjectMeta{Name: "app@sha256:abc", Namespace: "team"},
		Image: imagev1.Image{DockerImageMetadata: runtime.RawExtension{Raw: []byte(`{"kind":"DockerImage","Size":123456}`)}}}
	client := fakeimage.NewSimpleClientset(isi)
	l := Lookup{InternalRegistries: []string{"image-registry.openshift-image-registry.svc:5000"}, Images: buildapifake.Adapt(nil, client.ImageV1())}
	got, err := l.Size(context.Background(), "image-registry.openshift-image-registry.svc:5000/team/app:latest", "sha256:abc")
	if err != nil {
		t.Fatal(err)
	}
	if got != 123456 {
		t.Errorf("size = %d", got)
	}
}

func TestImageSizeCountsSharedLayersOnce(t *testing.T) {
	layer, _ := random.Layer(4096, "application/vnd.oci.image.layer.v1.tar+gzip")
	img, err := mutate.AppendLayers(empty.Image, layer, layer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ImageSize(img)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	if want := m.Config.Size + m.Layers[0].Size; got != want {
		t.Errorf("size = %d, want %d (one copy of the layer)", got, want)
	}
	var _ v1.Image = img
}
