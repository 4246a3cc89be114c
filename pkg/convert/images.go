package convert

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ImageStreams answers the image.openshift.io/v1 questions of a live
// conversion. Only get calls: convert never writes.
type ImageStreams interface {
	// Repository returns the image stream's status.dockerImageRepository,
	// the pull spec of the stream in the integrated registry.
	Repository(ctx context.Context, namespace, name string) (string, error)
	// TagExists reports whether the imagestreamtag name:tag exists.
	TagExists(ctx context.Context, namespace, name, tag string) (bool, error)
}

// errOffline: an image stream reference cannot be turned into a pull spec
// without the cluster or --registry.
var errOffline = errors.New("an ImageStreamTag needs --from-cluster, or --registry=<host> to be written as <host>/<namespace>/<name>:<tag>")

// Resolver turns ImageStreamTag and ImageStreamImage references into pull
// specs: live through ImageStreams, else through the Registry mapping.
type Resolver struct {
	Streams ImageStreams
	// Registry is the integrated registry's host for offline conversion,
	// e.g. image-registry.openshift-image-registry.svc:5000.
	Registry string
}

// ref is an image stream reference: ns/name with :tag or @digest.
type ref struct {
	Namespace, Name, Tag, Digest string
}

func (r ref) String() string {
	if r.Digest != "" {
		return fmt.Sprintf("%s/%s@%s", r.Namespace, r.Name, r.Digest)
	}
	return fmt.Sprintf("%s/%s:%s", r.Namespace, r.Name, r.Tag)
}

// splitStreamRef splits an ImageStreamTag name (name:tag) or an
// ImageStreamImage name (name@digest).
func splitStreamRef(kind, name string) (stream, tag, digest string, ok bool) {
	switch kind {
	case "ImageStreamTag":
		s, t, found := strings.Cut(name, ":")
		return s, t, "", found && s != "" && t != "" && !strings.Contains(t, ":")
	case "ImageStreamImage":
		s, d, found := strings.Cut(name, "@")
		return s, "", d, found && s != "" && d != ""
	}
	return "", "", "", false
}

// pullSpec resolves r. builder says the image is pulled (a builder or base
// image), so its tag must exist; an output tag is created by the push.
// live tells whether the answer came from the cluster.
func (rs *Resolver) pullSpec(ctx context.Context, r ref, builder bool) (spec string, live bool, err error) {
	if rs.Streams == nil {
		if rs.Registry == "" {
			return "", false, errOffline
		}
		return join(rs.Registry+"/"+r.Namespace+"/"+r.Name, r), false, nil
	}
	if builder && r.Tag != "" {
		exists, err := rs.Streams.TagExists(ctx, r.Namespace, r.Name, r.Tag)
		if err != nil {
			return "", true, fmt.Errorf("reading imagestreamtag %s/%s:%s: %w", r.Namespace, r.Name, r.Tag, err)
		}
		if !exists {
			return "", true, fmt.Errorf("imagestreamtag %s/%s:%s not found: OpenShift could not start this build either", r.Namespace, r.Name, r.Tag)
		}
	}
	repo, err := rs.Streams.Repository(ctx, r.Namespace, r.Name)
	if err != nil {
		return "", true, fmt.Errorf("reading imagestream %s/%s: %w", r.Namespace, r.Name, err)
	}
	if repo == "" {
		return "", true, fmt.Errorf("imagestream %s/%s has no status.dockerImageRepository: is the integrated registry enabled?", r.Namespace, r.Name)
	}
	return join(repo, r), true, nil
}

func join(repo string, r ref) string {
	if r.Digest != "" {
		return repo + "@" + r.Digest
	}
	return repo + ":" + r.Tag
}
