package kit

import (
	"context"

	buildv1 "github.com/openshift/api/build/v1"
	buildtyped "github.com/openshift/client-go/build/clientset/versioned/typed/build/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// WatchBuilds lists and watches the OpenShift builds matching
// labelSelector and fieldSelector until cond, evaluated on every change with
// the current set of builds, is true.
func WatchBuilds(ctx context.Context, bc buildtyped.BuildInterface, labelSelector, fieldSelector string, cond func(items []*buildv1.Build) (bool, error)) error {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector, o.FieldSelector = labelSelector, fieldSelector
			return bc.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector, o.FieldSelector = labelSelector, fieldSelector
			return bc.Watch(ctx, o)
		},
	}
	var store cache.Store
	check := func() (bool, error) {
		var items []*buildv1.Build
		for _, o := range store.List() {
			items = append(items, o.(*buildv1.Build))
		}
		return cond(items)
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &buildv1.Build{},
		func(s cache.Store) (bool, error) { store = s; return check() },
		func(watch.Event) (bool, error) { return check() })
	return err
}
