package sim

// The front door's image API: imagestreamtags (get, list) and
// imagestreamimages (get), made from the image streams and the registry
// (imagestreams.go). Everything else of image.openshift.io (imagestreams
// above all) is proxied to kube-apiserver, where it is a CRD.

import (
	"net/http"
	"strings"
	"time"

	imagev1 "github.com/openshift/api/image/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// imageRoute is a request for a virtual image resource:
// /apis/image.openshift.io/v1/[watch/]namespaces/{ns}/{resource}[/{name}].
type imageRoute struct {
	namespace, resource, name string
	watch                     bool
}

func parseImageRoute(p string) (imageRoute, bool) {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	if len(segs) < 3 || segs[0] != "apis" || segs[1] != ImageGroup || segs[2] != "v1" {
		return imageRoute{}, false
	}
	var r imageRoute
	rest := segs[3:]
	if len(rest) > 0 && rest[0] == "watch" {
		r.watch, rest = true, rest[1:]
	}
	if len(rest) < 3 || len(rest) > 4 || rest[0] != "namespaces" || rest[1] == "" {
		return imageRoute{}, false
	}
	r.namespace, r.resource = rest[1], rest[2]
	if len(rest) == 4 {
		r.name = rest[3]
	}
	switch r.resource {
	case "imagestreamtags", "imagestreamimages":
		return r, true
	}
	return imageRoute{}, false
}

func isImageAPI(p string) bool { return strings.HasPrefix(p, "/apis/"+ImageGroup+"/") }

// serveImageAPI answers a request for imagestreamtags or imagestreamimages.
func (f *frontDoor) serveImageAPI(w http.ResponseWriter, r *http.Request, rt imageRoute) {
	gr := schema.GroupResource{Group: ImageGroup, Resource: rt.resource}
	verb := "get"
	switch {
	case r.Method != http.MethodGet:
		writeStatus(w, apierrors.NewMethodNotSupported(gr, strings.ToLower(r.Method)))
		return
	case rt.watch || isWatch(r):
		writeStatus(w, apierrors.NewMethodNotSupported(gr, "watch"))
		return
	case rt.name == "":
		verb = "list"
		if rt.resource == "imagestreamimages" {
			writeStatus(w, apierrors.NewMethodNotSupported(gr, "list"))
			return
		}
	}
	if _, ok := f.authorize(w, r, authorizationv1.ResourceAttributes{
		Namespace: rt.namespace, Verb: verb, Group: ImageGroup, Resource: rt.resource, Name: rt.name,
	}); !ok {
		return
	}
	if f.streams == nil {
		writeStatus(w, apierrors.NewServiceUnavailable("the image API is not configured"))
		return
	}
	ctx := r.Context()
	streams := f.streams.client.ImageV1().ImageStreams(rt.namespace)
	switch {
	case rt.resource == "imagestreamtags" && rt.name == "":
		list, err := streams.List(ctx, metav1.ListOptions{LabelSelector: r.URL.Query().Get("labelSelector")})
		if err != nil {
			writeStatus(w, statusFrom(err))
			return
		}
		out := &imagev1.ImageStreamTagList{
			TypeMeta: metav1.TypeMeta{Kind: "ImageStreamTagList", APIVersion: ImageGroup + "/v1"},
			ListMeta: metav1.ListMeta{ResourceVersion: list.ResourceVersion},
			Items:    []imagev1.ImageStreamTag{},
		}
		for i := range list.Items {
			is := &list.Items[i]
			for _, t := range is.Status.Tags {
				if len(t.Items) == 0 {
					continue
				}
				ist, err := f.streams.imageStreamTag(ctx, is, t.Tag)
				if err != nil {
					// An image gone from the registry leaves the tag out
					// of the list rather than failing it.
					f.logf("imagestreamtags %s/%s:%s: %v", rt.namespace, is.Name, t.Tag, err)
					continue
				}
				ist.TypeMeta = metav1.TypeMeta{}
				out.Items = append(out.Items, *ist)
			}
		}
		writeJSON(w, http.StatusOK, out)
	case rt.resource == "imagestreamtags":
		stream, tag, ok := strings.Cut(rt.name, ":")
		if !ok || stream == "" || tag == "" || strings.Contains(tag, ":") {
			writeStatus(w, apierrors.NewBadRequest("ImageStreamTags must be retrieved with <name>:<tag>"))
			return
		}
		is, err := streams.Get(ctx, stream, metav1.GetOptions{})
		if err != nil {
			writeStatus(w, statusFrom(err))
			return
		}
		ist, err := f.streams.imageStreamTag(ctx, is, tag)
		if err != nil {
			writeStatus(w, statusFrom(err))
			return
		}
		writeJSON(w, http.StatusOK, ist)
	default: // imagestreamimages
		stream, id, ok := strings.Cut(rt.name, "@")
		if !ok || stream == "" || id == "" {
			writeStatus(w, apierrors.NewBadRequest("ImageStreamImages must be retrieved with <name>@<id>"))
			return
		}
		is, err := streams.Get(ctx, stream, metav1.GetOptions{})
		if err != nil {
			writeStatus(w, statusFrom(err))
			return
		}
		isi, err := f.streams.imageStreamImage(ctx, is, id)
		if err != nil {
			writeStatus(w, statusFrom(err))
			return
		}
		writeJSON(w, http.StatusOK, isi)
	}
}

// logImageRequest is the access log line of an image API request the front
// door serves itself.
func (f *frontDoor) logImageRequest(r *http.Request, rec *statusRecorder, start time.Time) {
	f.logf("%s %s -> %d (%s)", r.Method, r.URL.RequestURI(), rec.code, time.Since(start).Round(time.Millisecond))
}
