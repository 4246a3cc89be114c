// Package onewatch builds the ListerWatcher for following one object by
// name with client-go's tools/watch (UntilWithSync), which re-lists whenever
// a watch expires or drops.
package onewatch

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// ListFunc and WatchFunc are a typed or dynamic client's List and Watch.
type (
	ListFunc  func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error)
	WatchFunc func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error)
)

// ByName lists and watches only the object called name.
//
// It lists then watches instead of using the streaming watch-list protocol:
// one object is cheap to list, and servers or proxies that ignore
// sendInitialEvents would otherwise leave the reflector waiting for a
// bookmark that never comes.
func ByName(name string, list ListFunc, watchFn WatchFunc) cache.ListerWatcher {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	return listOnly{&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return watchFn(ctx, o)
		},
	}}
}

// WatcherByName watches only the object called name, for client-go's
// RetryWatcher (tools/watch): a watch from a resourceVersion the caller
// already holds, re-opened from the last version seen when it drops, with
// no list.
func WatcherByName(name string, watchFn WatchFunc) cache.WatcherWithContext {
	sel := Selector(name)
	return watcher(func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		o.FieldSelector = sel
		return watchFn(ctx, o)
	})
}

type watcher func(context.Context, metav1.ListOptions) (watch.Interface, error)

func (w watcher) Watch(o metav1.ListOptions) (watch.Interface, error) {
	return w(context.Background(), o)
}

func (w watcher) WatchWithContext(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	return w(ctx, o)
}

// Selector is the field selector ByName uses.
func Selector(name string) string {
	return fields.OneTermEqualSelector("metadata.name", name).String()
}

type listOnly struct{ *cache.ListWatch }

func (listOnly) IsWatchListSemanticsUnSupported() bool { return true }
