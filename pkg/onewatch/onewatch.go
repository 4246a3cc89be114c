// Package onewatch follows one object by name with client-go's tools/watch:
// from a resourceVersion the caller holds (From, a RetryWatcher), or with
// list+watch (ByName, for UntilWithSync, which re-lists whenever a watch
// expires or drops).
package onewatch

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
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

// From watches only the object called name from resourceVersion rv — a
// version the caller already holds, so nothing after it is missed and no
// list is needed — with client-go's RetryWatcher, which re-opens a dropped
// watch from the last version seen, until cond is done. An error event
// (410 Expired when rv left the server's watch window; 403) ends it with
// that error as an API status error.
func From(ctx context.Context, name, rv string, watchFn WatchFunc, cond watchtools.ConditionFunc) (*watch.Event, error) {
	rw, err := watchtools.NewRetryWatcherWithContext(ctx, rv, watcher(func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		o.FieldSelector = Selector(name)
		return watchFn(ctx, o)
	}))
	if err != nil {
		return nil, err
	}
	return watchtools.UntilWithoutRetry(ctx, rw, func(e watch.Event) (bool, error) {
		if e.Type == watch.Error {
			return false, apierrors.FromObject(e.Object)
		}
		return cond(e)
	})
}

// watcher is a WatchFunc as the cache.Watcher RetryWatcher takes.
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
