package sandbox

import (
	"context"
	"fmt"
	"time"

	buildv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	buildclient "github.com/shipwright-io/build/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

// RegisterBuild creates b and waits until Shipwright's Build controller has
// registered it, and returns it as registered.
//
// The controller validates a Build's strategy against its informer cache
// and never looks again when the strategy shows up later: it watches
// Builds (generation changes) and Secrets, not strategies. A Build created
// right after its strategy can therefore stay ClusterBuildStrategyNotFound
// (or BuildStrategyNotFound) for good. Such a Build is deleted and created
// again until the controller's view has the strategy, as a user would do.
func RegisterBuild(ctx context.Context, c buildclient.Interface, b *buildv1beta1.Build) (*buildv1beta1.Build, error) {
	builds := c.ShipwrightV1beta1().Builds(b.Namespace)
	backoff := wait.Backoff{Duration: 200 * time.Millisecond, Factor: 1.5, Steps: 12}
	for {
		if _, err := builds.Create(ctx, b.DeepCopy(), metav1.CreateOptions{}); err != nil {
			return nil, err
		}
		var got *buildv1beta1.Build
		var reason, message string
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			cur, err := builds.Get(ctx, b.Name, metav1.GetOptions{})
			if err != nil || cur.Status.Registered == nil {
				return false, nil
			}
			got, reason, message = cur, string(ptr.Deref(cur.Status.Reason, "")), ptr.Deref(cur.Status.Message, "")
			return true, nil
		})
		if err != nil {
			return nil, fmt.Errorf("waiting for Build %s/%s to be registered: %w", b.Namespace, b.Name, err)
		}
		if *got.Status.Registered == corev1.ConditionTrue {
			return got, nil
		}
		stale := reason == string(buildv1beta1.ClusterBuildStrategyNotFound) || reason == string(buildv1beta1.BuildStrategyNotFound)
		if !stale || backoff.Steps <= 1 {
			return got, fmt.Errorf("build %s/%s not registered: %s: %s", b.Namespace, b.Name, reason, message)
		}
		if err := deleteAndWait(ctx, c, b.Namespace, b.Name); err != nil {
			return nil, err
		}
		select {
		case <-time.After(backoff.Step()):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func deleteAndWait(ctx context.Context, c buildclient.Interface, ns, name string) error {
	builds := c.ShipwrightV1beta1().Builds(ns)
	if err := builds.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := builds.Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}
