// Package buildapi is the client of the OpenShift API calls ocbuild makes:
// build.openshift.io/v1 buildconfigs (get, create, update, instantiate) and
// builds (get, list, watch, patch, update), and image.openshift.io/v1
// imagestreamimages (get), as small interfaces over REST clients.
//
// openshift/client-go's generated clientsets would do the same, but every
// typed client imports client-go's apply configurations, which import
// discovery and with it the scheme of every Kubernetes API group: over 5 MB
// of the step's binary for calls it never makes. The interfaces here are
// subsets of the generated ones, method for method, so a generated client
// (and its fake, see package buildapifake) satisfies them per namespace.
package buildapi

import (
	"context"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	imagev1 "github.com/openshift/api/image/v1"
	buildscheme "github.com/openshift/client-go/build/clientset/versioned/scheme"
	imagescheme "github.com/openshift/client-go/image/clientset/versioned/scheme"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// Interface is what a run calls.
type Interface interface {
	BuildConfigs(namespace string) BuildConfigInterface
	Builds(namespace string) BuildInterface
	ImageStreamImages(namespace string) ImageStreamImageInterface
}

// BuildConfigInterface is the part of openshift/client-go's
// BuildConfigInterface ocbuild uses.
type BuildConfigInterface interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*buildv1.BuildConfig, error)
	Create(ctx context.Context, bc *buildv1.BuildConfig, opts metav1.CreateOptions) (*buildv1.BuildConfig, error)
	Update(ctx context.Context, bc *buildv1.BuildConfig, opts metav1.UpdateOptions) (*buildv1.BuildConfig, error)
	Instantiate(ctx context.Context, name string, req *buildv1.BuildRequest, opts metav1.CreateOptions) (*buildv1.Build, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// BuildInterface is the part of openshift/client-go's BuildInterface
// ocbuild uses.
type BuildInterface interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*buildv1.Build, error)
	List(ctx context.Context, opts metav1.ListOptions) (*buildv1.BuildList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*buildv1.Build, error)
	Update(ctx context.Context, b *buildv1.Build, opts metav1.UpdateOptions) (*buildv1.Build, error)
}

// ImageStreamImageInterface is the part of openshift/client-go's
// ImageStreamImageInterface ocbuild uses.
type ImageStreamImageInterface interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*imagev1.ImageStreamImage, error)
}

// Client implements Interface over REST clients of the two groups.
type Client struct {
	// Build is the build.openshift.io/v1 REST client; the log and
	// instantiatebinary streams use it directly.
	Build rest.Interface
	Image rest.Interface
}

// NewForConfig makes the REST clients for cfg (which it does not modify).
func NewForConfig(cfg *rest.Config) (*Client, error) {
	build, err := restClient(cfg, buildv1.GroupVersion, buildscheme.Codecs.WithoutConversion())
	if err != nil {
		return nil, err
	}
	image, err := restClient(cfg, imagev1.GroupVersion, imagescheme.Codecs.WithoutConversion())
	if err != nil {
		return nil, err
	}
	return &Client{Build: build, Image: image}, nil
}

func restClient(cfg *rest.Config, gv schema.GroupVersion, codecs runtime.NegotiatedSerializer) (*rest.RESTClient, error) {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &gv
	c.APIPath = "/apis"
	c.NegotiatedSerializer = codecs
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	return rest.RESTClientFor(c)
}

// ServesBuildAPI reports whether the cluster serves build.openshift.io/v1:
// false only when the server says the group version does not exist.
func (c *Client) ServesBuildAPI(ctx context.Context) (bool, error) {
	err := c.Build.Get().AbsPath("/apis", buildv1.GroupVersion.Group, buildv1.GroupVersion.Version).Do(ctx).Error()
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return true, err
}

// BuildConfigs implements Interface.
func (c *Client) BuildConfigs(namespace string) BuildConfigInterface {
	return &buildConfigs{c: c.Build, ns: namespace}
}

// Builds implements Interface.
func (c *Client) Builds(namespace string) BuildInterface { return &builds{c: c.Build, ns: namespace} }

// ImageStreamImages implements Interface.
func (c *Client) ImageStreamImages(namespace string) ImageStreamImageInterface {
	return &imageStreamImages{c: c.Image, ns: namespace}
}

type buildConfigs struct {
	c  rest.Interface
	ns string
}

func (b *buildConfigs) Get(ctx context.Context, name string, opts metav1.GetOptions) (*buildv1.BuildConfig, error) {
	out := &buildv1.BuildConfig{}
	err := b.c.Get().Namespace(b.ns).Resource("buildconfigs").Name(name).
		VersionedParams(&opts, buildscheme.ParameterCodec).Do(ctx).Into(out)
	return out, err
}

func (b *buildConfigs) Create(ctx context.Context, bc *buildv1.BuildConfig, opts metav1.CreateOptions) (*buildv1.BuildConfig, error) {
	out := &buildv1.BuildConfig{}
	err := b.c.Post().Namespace(b.ns).Resource("buildconfigs").
		VersionedParams(&opts, buildscheme.ParameterCodec).Body(bc).Do(ctx).Into(out)
	return out, err
}

func (b *buildConfigs) Update(ctx context.Context, bc *buildv1.BuildConfig, opts metav1.UpdateOptions) (*buildv1.BuildConfig, error) {
	out := &buildv1.BuildConfig{}
	err := b.c.Put().Namespace(b.ns).Resource("buildconfigs").Name(bc.Name).
		VersionedParams(&opts, buildscheme.ParameterCodec).Body(bc).Do(ctx).Into(out)
	return out, err
}

func (b *buildConfigs) Instantiate(ctx context.Context, name string, req *buildv1.BuildRequest, opts metav1.CreateOptions) (*buildv1.Build, error) {
	out := &buildv1.Build{}
	err := b.c.Post().Namespace(b.ns).Resource("buildconfigs").Name(name).SubResource("instantiate").
		VersionedParams(&opts, buildscheme.ParameterCodec).Body(req).Do(ctx).Into(out)
	return out, err
}

func (b *buildConfigs) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return b.c.Get().Namespace(b.ns).Resource("buildconfigs").
		VersionedParams(&opts, buildscheme.ParameterCodec).Timeout(timeout(opts)).Watch(ctx)
}

type builds struct {
	c  rest.Interface
	ns string
}

func (b *builds) Get(ctx context.Context, name string, opts metav1.GetOptions) (*buildv1.Build, error) {
	out := &buildv1.Build{}
	err := b.c.Get().Namespace(b.ns).Resource("builds").Name(name).
		VersionedParams(&opts, buildscheme.ParameterCodec).Do(ctx).Into(out)
	return out, err
}

func (b *builds) List(ctx context.Context, opts metav1.ListOptions) (*buildv1.BuildList, error) {
	out := &buildv1.BuildList{}
	err := b.c.Get().Namespace(b.ns).Resource("builds").
		VersionedParams(&opts, buildscheme.ParameterCodec).Timeout(timeout(opts)).Do(ctx).Into(out)
	return out, err
}

func (b *builds) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return b.c.Get().Namespace(b.ns).Resource("builds").
		VersionedParams(&opts, buildscheme.ParameterCodec).Timeout(timeout(opts)).Watch(ctx)
}

func (b *builds) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*buildv1.Build, error) {
	out := &buildv1.Build{}
	err := b.c.Patch(pt).Namespace(b.ns).Resource("builds").Name(name).SubResource(subresources...).
		VersionedParams(&opts, buildscheme.ParameterCodec).Body(data).Do(ctx).Into(out)
	return out, err
}

func (b *builds) Update(ctx context.Context, build *buildv1.Build, opts metav1.UpdateOptions) (*buildv1.Build, error) {
	out := &buildv1.Build{}
	err := b.c.Put().Namespace(b.ns).Resource("builds").Name(build.Name).
		VersionedParams(&opts, buildscheme.ParameterCodec).Body(build).Do(ctx).Into(out)
	return out, err
}

type imageStreamImages struct {
	c  rest.Interface
	ns string
}

func (i *imageStreamImages) Get(ctx context.Context, name string, opts metav1.GetOptions) (*imagev1.ImageStreamImage, error) {
	out := &imagev1.ImageStreamImage{}
	err := i.c.Get().Namespace(i.ns).Resource("imagestreamimages").Name(name).
		VersionedParams(&opts, imagescheme.ParameterCodec).Do(ctx).Into(out)
	return out, err
}

// timeout is a list or watch request's server-side timeout, also applied
// to the request itself, as the generated clients do.
func timeout(opts metav1.ListOptions) time.Duration {
	if opts.TimeoutSeconds == nil {
		return 0
	}
	return time.Duration(*opts.TimeoutSeconds) * time.Second
}
