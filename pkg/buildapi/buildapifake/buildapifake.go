// Package buildapifake adapts openshift/client-go's generated typed clients
// (in tests, their fakes) to buildapi.Interface. Only tests import it: the
// typed clients are what buildapi keeps out of the step's binary.
package buildapifake

import (
	buildclient "github.com/openshift/client-go/build/clientset/versioned/typed/build/v1"
	imageclient "github.com/openshift/client-go/image/clientset/versioned/typed/image/v1"

	"github.com/ocbuild/ocbuild/pkg/buildapi"
)

// Adapt returns b and i (either may be nil) as a buildapi.Interface.
func Adapt(b buildclient.BuildV1Interface, i imageclient.ImageV1Interface) buildapi.Interface {
	return adapter{b: b, i: i}
}

type adapter struct {
	b buildclient.BuildV1Interface
	i imageclient.ImageV1Interface
}

func (a adapter) BuildConfigs(ns string) buildapi.BuildConfigInterface { return a.b.BuildConfigs(ns) }

func (a adapter) Builds(ns string) buildapi.BuildInterface { return a.b.Builds(ns) }

func (a adapter) ImageStreamImages(ns string) buildapi.ImageStreamImageInterface {
	return a.i.ImageStreamImages(ns)
}
