package sim

// The image API (image.openshift.io/v1) as far as builds need it, with the
// sandbox registry as OpenShift's integrated registry:
//
//   - imagestreams are a CRD (ImageCRDs); the mutating webhook sets
//     status.dockerImageRepository and keeps status away from users, as
//     OpenShift's status subresource does;
//   - a push to the integrated registry records a tag event in the stream,
//     creating the stream when it does not exist, as OpenShift's registry
//     does (recordPush);
//   - imagestreamtags and imagestreamimages are virtual: the front door
//     builds them from the stream's status and the image in the registry
//     (imageapi.go). Their CRDs exist only so that discovery lists them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	buildv1 "github.com/openshift/api/build/v1"
	"github.com/openshift/api/image/docker10"
	imagev1 "github.com/openshift/api/image/v1"
	imageclient "github.com/openshift/client-go/image/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"
)

// ImageGroup is the image API group.
const ImageGroup = "image.openshift.io"

var (
	imageStreamsGR      = schema.GroupResource{Group: ImageGroup, Resource: "imagestreams"}
	imageStreamTagsGR   = schema.GroupResource{Group: ImageGroup, Resource: "imagestreamtags"}
	imageStreamImagesGR = schema.GroupResource{Group: ImageGroup, Resource: "imagestreamimages"}
)

// dockerImageRepository is a stream's status.dockerImageRepository: its
// repository on the integrated registry.
func dockerImageRepository(namespace, stream string) string {
	return InternalRegistry + "/" + namespace + "/" + stream
}

// splitImageStreamTag splits <stream>[:<tag>]; a missing tag is latest, as
// OpenShift's SplitImageStreamTag has it.
func splitImageStreamTag(s string) (stream, tag string) {
	stream, tag, ok := strings.Cut(s, ":")
	if !ok || tag == "" {
		tag = "latest"
	}
	return stream, tag
}

// imageStreams reads and writes image streams and reads the images they
// point at from the sandbox registry.
type imageStreams struct {
	client   imageclient.Interface // admin: the loopback identity
	registry string                // the sandbox registry (host:port, plain http)
	now      func() time.Time
}

func newImageStreams(client imageclient.Interface, registry string) *imageStreams {
	if client == nil {
		return nil
	}
	return &imageStreams{client: client, registry: registry, now: time.Now}
}

// latestEvent is the newest event of a tag in the stream's status.
func latestEvent(is *imagev1.ImageStream, tag string) (*imagev1.TagEvent, bool) {
	for i := range is.Status.Tags {
		if t := &is.Status.Tags[i]; t.Tag == tag && len(t.Items) > 0 {
			return &t.Items[0], true
		}
	}
	return nil, false
}

// recordPush records that the integrated registry received digest as
// <namespace>/<stream>:<tag>: the tag's newest event, the stream created if
// missing (OpenShift's registry does both on push).
func (s *imageStreams) recordPush(ctx context.Context, namespace, stream, tag, digest string) error {
	streams := s.client.ImageV1().ImageStreams(namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		is, err := streams.Get(ctx, stream, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			is, err = streams.Create(ctx, &imagev1.ImageStream{ObjectMeta: metav1.ObjectMeta{Name: stream, Namespace: namespace}}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(imageStreamsGR, stream, err) // created meanwhile: start again
			}
		}
		if err != nil {
			return err
		}
		if is.Status.DockerImageRepository == "" {
			is.Status.DockerImageRepository = dockerImageRepository(namespace, stream)
		}
		if ev, ok := latestEvent(is, tag); ok && ev.Image == digest {
			return nil // the tag already points there: no new event
		}
		ev := imagev1.TagEvent{
			Created:              metav1.NewTime(s.now().UTC().Truncate(time.Second)),
			DockerImageReference: is.Status.DockerImageRepository + "@" + digest,
			Image:                digest,
			Generation:           is.Generation,
		}
		found := false
		for i := range is.Status.Tags {
			if is.Status.Tags[i].Tag == tag {
				is.Status.Tags[i].Items = append([]imagev1.TagEvent{ev}, is.Status.Tags[i].Items...)
				found = true
			}
		}
		if !found {
			is.Status.Tags = append(is.Status.Tags, imagev1.NamedTagEventList{Tag: tag, Items: []imagev1.TagEvent{ev}})
			// OpenShift keeps status tags in a map: the list comes out sorted.
			sort.Slice(is.Status.Tags, func(i, j int) bool { return is.Status.Tags[i].Tag < is.Status.Tags[j].Tag })
		}
		_, err = streams.Update(ctx, is, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("recording %s/%s:%s@%s in the image stream: %w", namespace, stream, tag, digest, err)
	}
	return nil
}

// recordInternalPush records a push whose destination is a pull spec on the
// integrated registry (<InternalRegistry>/<namespace>/<stream>[:<tag>]);
// other destinations are no image stream's business.
func (s *imageStreams) recordInternalPush(ctx context.Context, pullSpec, digest string) error {
	ref, err := parseRef(pullSpec, false)
	if err != nil || ref.Context().RegistryStr() != InternalRegistry {
		return nil
	}
	namespace, stream, ok := strings.Cut(ref.Context().RepositoryStr(), "/")
	if !ok || strings.Contains(stream, "/") {
		return nil // the integrated registry only knows <namespace>/<stream>
	}
	tag := "latest"
	if t, ok := ref.(name.Tag); ok {
		tag = t.TagStr()
	}
	return s.recordPush(ctx, namespace, stream, tag, digest)
}

// tagNotFound is the image API's NotFound for an imagestreamtag.
func tagNotFound(stream, tag string) *apierrors.StatusError {
	return apierrors.NewNotFound(imageStreamTagsGR, stream+":"+tag)
}

// resolveTag returns the pull spec by digest that <stream>[:<tag>] points at.
func (s *imageStreams) resolveTag(ctx context.Context, namespace, ref string) (string, error) {
	stream, tag := splitImageStreamTag(ref)
	is, err := s.client.ImageV1().ImageStreams(namespace).Get(ctx, stream, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	ev, ok := latestEvent(is, tag)
	if !ok {
		return "", tagNotFound(stream, tag)
	}
	return ev.DockerImageReference, nil
}

// findImage returns the newest event of any tag of is whose image is id or
// starts with it (OpenShift accepts a unique prefix of the digest).
func findImage(is *imagev1.ImageStream, id string) (*imagev1.TagEvent, error) {
	var match *imagev1.TagEvent
	for i := range is.Status.Tags {
		for j := range is.Status.Tags[i].Items {
			ev := &is.Status.Tags[i].Items[j]
			if !strings.HasPrefix(ev.Image, id) {
				continue
			}
			if match != nil && match.Image != ev.Image {
				return nil, apierrors.NewConflict(imageStreamImagesGR, is.Name+"@"+id, fmt.Errorf("multiple images match the prefix %q", id))
			}
			if match == nil {
				match = ev
			}
		}
	}
	if match == nil {
		return nil, apierrors.NewNotFound(imageStreamImagesGR, is.Name+"@"+id)
	}
	return match, nil
}

// resolveImage returns the pull spec of <stream>@<id>.
func (s *imageStreams) resolveImage(ctx context.Context, namespace, ref string) (string, error) {
	stream, id, ok := strings.Cut(ref, "@")
	if !ok {
		return "", apierrors.NewBadRequest("ImageStreamImages must be retrieved with <name>@<id>")
	}
	is, err := s.client.ImageV1().ImageStreams(namespace).Get(ctx, stream, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	ev, err := findImage(is, id)
	if err != nil {
		return "", err
	}
	return ev.DockerImageReference, nil
}

// imageStreamTag builds the ImageStreamTag <stream>:<tag> as OpenShift
// serves it: the stream's metadata, the tag's spec and newest event, the
// image without its manifest and config.
func (s *imageStreams) imageStreamTag(ctx context.Context, is *imagev1.ImageStream, tag string) (*imagev1.ImageStreamTag, error) {
	ev, ok := latestEvent(is, tag)
	var ref *imagev1.TagReference
	for i := range is.Spec.Tags {
		if is.Spec.Tags[i].Name == tag {
			ref = is.Spec.Tags[i].DeepCopy()
		}
	}
	if !ok && ref == nil {
		return nil, tagNotFound(is.Name, tag)
	}
	ist := &imagev1.ImageStreamTag{
		TypeMeta: metav1.TypeMeta{Kind: "ImageStreamTag", APIVersion: ImageGroup + "/v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name: is.Name + ":" + tag, Namespace: is.Namespace, UID: is.UID,
			ResourceVersion: is.ResourceVersion, CreationTimestamp: is.CreationTimestamp, Labels: is.Labels,
		},
		Tag:          ref,
		LookupPolicy: is.Spec.LookupPolicy,
	}
	if ref != nil {
		ist.Annotations = ref.Annotations
	}
	for _, t := range is.Status.Tags {
		if t.Tag == tag {
			ist.Conditions = t.Conditions
		}
	}
	if !ok {
		return ist, nil // a spec tag not yet imported: no image
	}
	ist.CreationTimestamp = ev.Created
	ist.Generation = ev.Generation
	img, err := s.image(ctx, ev)
	if err != nil {
		return nil, err
	}
	ist.Image = *img
	return ist, nil
}

// imageStreamImage builds the ImageStreamImage <stream>@<id>.
func (s *imageStreams) imageStreamImage(ctx context.Context, is *imagev1.ImageStream, id string) (*imagev1.ImageStreamImage, error) {
	ev, err := findImage(is, id)
	if err != nil {
		return nil, err
	}
	img, err := s.image(ctx, ev)
	if err != nil {
		return nil, err
	}
	return &imagev1.ImageStreamImage{
		TypeMeta: metav1.TypeMeta{Kind: "ImageStreamImage", APIVersion: ImageGroup + "/v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name: is.Name + "@" + ev.Image, Namespace: is.Namespace,
			CreationTimestamp: img.CreationTimestamp, Annotations: is.Annotations,
		},
		Image: *img,
	}, nil
}

// image reads the image of a tag event from the registry and describes it
// as OpenShift's image API does (imageutil.ImageWithMetadata):
// dockerImageMetadata.Size is the config blob's length plus the compressed
// size of each distinct layer. Manifest and config are left out, as the
// imagestreamtags and imagestreamimages endpoints blank them.
func (s *imageStreams) image(ctx context.Context, ev *imagev1.TagEvent) (*imagev1.Image, error) {
	pullSpec, err := MirrorOf(s.registry, ev.DockerImageReference)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("image %s: %w", ev.DockerImageReference, err))
	}
	ref, err := parseRef(pullSpec, true)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("image %s: %w", ev.DockerImageReference, err))
	}
	img, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
			return nil, apierrors.NewNotFound(schema.GroupResource{Group: ImageGroup, Resource: "images"}, ev.Image)
		}
		return nil, apierrors.NewInternalError(fmt.Errorf("reading image %s from the registry: %w", ev.DockerImageReference, err))
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("reading the manifest of %s: %w", ev.DockerImageReference, err))
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("reading the config of %s: %w", ev.DockerImageReference, err))
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("decoding the config of %s: %w", ev.DockerImageReference, err))
	}
	size := int64(len(rawConfig))
	seen := map[string]bool{}
	var layers []imagev1.ImageLayer
	for _, l := range m.Layers {
		layers = append(layers, imagev1.ImageLayer{Name: l.Digest.String(), LayerSize: l.Size, MediaType: string(l.MediaType)})
		if !seen[l.Digest.String()] {
			seen[l.Digest.String()] = true
			size += l.Size
		}
	}
	meta := docker10.DockerImage{
		TypeMeta:     metav1.TypeMeta{Kind: "DockerImage", APIVersion: "1.0"},
		ID:           m.Config.Digest.String(),
		Created:      metav1.NewTime(cf.Created.Time),
		Author:       cf.Author,
		Architecture: cf.Architecture,
		Size:         size,
		Config: &docker10.DockerConfig{
			User: cf.Config.User, Env: cf.Config.Env, Cmd: cf.Config.Cmd, Entrypoint: cf.Config.Entrypoint,
			WorkingDir: cf.Config.WorkingDir, Labels: cf.Config.Labels,
		},
	}
	rawMeta, err := json.Marshal(meta)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("encoding the metadata of %s: %w", ev.DockerImageReference, err))
	}
	mediaType := string(m.MediaType)
	return &imagev1.Image{
		ObjectMeta: metav1.ObjectMeta{
			Name: ev.Image, CreationTimestamp: ev.Created,
			Annotations: map[string]string{"image.openshift.io/dockerLayersOrder": "ascending"},
		},
		DockerImageReference:         ev.DockerImageReference,
		DockerImageMetadata:          runtime.RawExtension{Raw: rawMeta},
		DockerImageMetadataVersion:   "1.0",
		DockerImageLayers:            layers,
		DockerImageManifestMediaType: mediaType,
	}, nil
}

// resolveReference resolves an ImageStreamTag or ImageStreamImage
// reference (in namespace unless it names one) into the DockerImage pull
// spec by digest it points at now; other kinds are left alone.
func (s *imageStreams) resolveReference(ctx context.Context, namespace string, ref *corev1.ObjectReference) error {
	if ref.Namespace != "" {
		namespace = ref.Namespace
	}
	var spec string
	var err error
	switch ref.Kind {
	case kindImageStreamTag, kindImageStream:
		spec, err = s.resolveTag(ctx, namespace, ref.Name)
	case kindImageStreamImage:
		spec, err = s.resolveImage(ctx, namespace, ref.Name)
	default:
		return nil
	}
	if err != nil {
		return err
	}
	*ref = corev1.ObjectReference{Kind: "DockerImage", Name: spec}
	return nil
}

// resolveBuildImages resolves the strategy's from and the source images of
// spec (resolveReference). The first that does not resolve is returned with
// its error, the spec then partly resolved.
func (s *imageStreams) resolveBuildImages(ctx context.Context, namespace string, spec *buildv1.BuildSpec) (*corev1.ObjectReference, error) {
	refs := []*corev1.ObjectReference{}
	if from := strategyFrom(&spec.Strategy); from != nil {
		refs = append(refs, from)
	}
	for i := range spec.Source.Images {
		refs = append(refs, &spec.Source.Images[i].From)
	}
	for _, ref := range refs {
		orig := *ref
		if err := s.resolveReference(ctx, namespace, ref); err != nil {
			return &orig, err
		}
	}
	return nil, nil
}

// resolveError is the build generator's answer to a reference it cannot
// resolve at instantiate: 422 Invalid, field "from".
func resolveError(namespace string, ref *corev1.ObjectReference, err error) *apierrors.StatusError {
	msg := fmt.Sprintf("Error resolving %s %s in namespace %s: %v", ref.Kind, ref.Name, namespace, err)
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusUnprocessableEntity,
		Reason:  metav1.StatusReasonInvalid,
		Message: msg,
		Details: &metav1.StatusDetails{
			Kind: ref.Kind, Name: ref.Name,
			Causes: []metav1.StatusCause{{Field: "from", Message: msg}},
		},
	}}
}

// outputReference is status.outputDockerImageReference for spec.output.to:
// a DockerImage as given, an ImageStreamTag <stream>:<tag> as the stream's
// repository on the integrated registry with the tag. ok is false when the
// output stream does not exist (the build waits: InvalidOutputReference).
func (s *imageStreams) outputReference(ctx context.Context, namespace string, to *corev1.ObjectReference) (ref string, ok bool, err error) {
	if to == nil || to.Name == "" {
		return "", true, nil
	}
	if to.Kind == "DockerImage" {
		return to.Name, true, nil
	}
	if s == nil {
		return "", false, nil
	}
	if to.Namespace != "" {
		namespace = to.Namespace
	}
	stream, tag := splitImageStreamTag(to.Name)
	is, err := s.client.ImageV1().ImageStreams(namespace).Get(ctx, stream, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	repo := is.Status.DockerImageRepository
	if repo == "" {
		return "", false, nil // OpenShift: "no docker image repository defined"
	}
	return repo + ":" + tag, true, nil
}
