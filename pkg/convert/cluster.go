package convert

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
)

// Cluster reads BuildConfigs and image streams from the API server with
// plain REST calls (get and list only), not openshift/client-go's typed
// clientsets: those would add megabytes to the step binary (see
// pkg/buildapi).
type Cluster struct {
	// Build and Image are REST clients of build.openshift.io/v1 and
	// image.openshift.io/v1 (buildapi.Client's).
	Build, Image rest.Interface
}

// listPage is how many BuildConfigs one list call asks for: hundreds of
// BuildConfigs per namespace are common, so the list is paged.
const listPage = 250

// ReadBuildConfigs adds the BuildConfigs of namespace (all namespaces
// when empty) to in.
func (c *Cluster) ReadBuildConfigs(ctx context.Context, namespace string, in *Input) error {
	where := "namespace " + namespace
	if namespace == "" {
		where = "all namespaces"
	}
	cont := ""
	for {
		req := c.Build.Get().Resource("buildconfigs").Param("limit", fmt.Sprint(listPage))
		if namespace != "" {
			req = req.Namespace(namespace)
		}
		if cont != "" {
			req = req.Param("continue", cont)
		}
		body, err := req.DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("listing buildconfigs in %s: %w", where, err)
		}
		var meta struct {
			Metadata struct {
				Continue string `json:"continue"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(body, &meta); err != nil {
			return fmt.Errorf("listing buildconfigs in %s: the answer is not a list: %w", where, err)
		}
		in.AddJSON("cluster", body, true)
		if cont = meta.Metadata.Continue; cont == "" {
			return nil
		}
	}
}

// Repository implements ImageStreams.
func (c *Cluster) Repository(ctx context.Context, namespace, name string) (string, error) {
	var is struct {
		Status struct {
			DockerImageRepository string `json:"dockerImageRepository"`
		} `json:"status"`
	}
	body, err := c.Image.Get().Namespace(namespace).Resource("imagestreams").Name(name).DoRaw(ctx)
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal(body, &is); err != nil {
		return "", fmt.Errorf("not an imagestream: %w", err)
	}
	return is.Status.DockerImageRepository, nil
}

// TagExists implements ImageStreams.
func (c *Cluster) TagExists(ctx context.Context, namespace, name, tag string) (bool, error) {
	err := c.Image.Get().Namespace(namespace).Resource("imagestreamtags").Name(name + ":" + tag).Do(ctx).Error()
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}
