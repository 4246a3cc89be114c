package deps

import (
	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/openshift/api/build/v1"
	_ "github.com/openshift/api/image/v1"
	_ "github.com/openshift/client-go/build/clientset/versioned"
	_ "github.com/openshift/client-go/build/clientset/versioned/fake"
	_ "github.com/openshift/client-go/image/clientset/versioned"
	_ "github.com/spf13/pflag"
	_ "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	_ "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	_ "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	_ "k8s.io/client-go/tools/watch"
	_ "k8s.io/client-go/util/retry"
	_ "k8s.io/client-go/rest/fake"
)
