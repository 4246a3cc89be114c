package sandbox

import (
	"context"
	"fmt"
	"time"

	buildv1alpha1 "github.com/shipwright-io/build/pkg/apis/build/v1alpha1"
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
// The same goes for a secret created just before the Build: the
// controller's Secret cache can lag the create (Spec*SecretRefNotFound).
func RegisterBuild(ctx context.Context, c buildclient.Interface, b *buildv1beta1.Build) (*buildv1beta1.Build, error) {
	return registerBuild(ctx, c, b.Namespace, b.Name, func(ctx context.Context) error {
		_, err := c.ShipwrightV1beta1().Builds(b.Namespace).Create(ctx, b.DeepCopy(), metav1.CreateOptions{})
		return err
	})
}

// RegisterBuildV1alpha1 is RegisterBuild for a Build written in
// shipwright.io/v1alpha1 (the API server converts it to the stored v1beta1
// through Shipwright's conversion webhook); it returns the registered Build
// as read through v1alpha1.
func RegisterBuildV1alpha1(ctx context.Context, c buildclient.Interface, b *buildv1alpha1.Build) (*buildv1alpha1.Build, error) {
	builds := c.ShipwrightV1alpha1().Builds(b.Namespace)
	if _, err := registerBuild(ctx, c, b.Namespace, b.Name, func(ctx context.Context) error {
		_, err := builds.Create(ctx, b.DeepCopy(), metav1.CreateOptions{})
		return err
	}); err != nil {
		return nil, err
	}
	got, err := builds.Get(ctx, b.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading Build %s/%s through v1alpha1: %w", b.Namespace, b.Name, err)
	}
	return got, nil
}

// registerBuild calls create (which creates the Build ns/name) until
// Shipwright registers the Build, as RegisterBuild describes.
func registerBuild(ctx context.Context, c buildclient.Interface, ns, name string, create func(context.Context) error) (*buildv1beta1.Build, error) {
	builds := c.ShipwrightV1beta1().Builds(ns)
	backoff := wait.Backoff{Duration: 200 * time.Millisecond, Factor: 1.5, Steps: 12}
	for {
		if err := create(ctx); err != nil {
			return nil, err
		}
		var got *buildv1beta1.Build
		var reason, message string
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			cur, err := builds.Get(ctx, name, metav1.GetOptions{})
			if err != nil || cur.Status.Registered == nil {
				return false, nil
			}
			got, reason, message = cur, string(ptr.Deref(cur.Status.Reason, "")), ptr.Deref(cur.Status.Message, "")
			return true, nil
		})
		if err != nil {
			return nil, fmt.Errorf("waiting for Build %s/%s to be registered: %w", ns, name, err)
		}
		if *got.Status.Registered == corev1.ConditionTrue {
			return got, nil
		}
		stale := false
		switch buildv1beta1.BuildReason(reason) {
		case buildv1beta1.ClusterBuildStrategyNotFound, buildv1beta1.BuildStrategyNotFound,
			buildv1beta1.SpecSourceSecretRefNotFound, buildv1beta1.SpecOutputSecretRefNotFound,
			buildv1beta1.SpecBuilderSecretRefNotFound, buildv1beta1.MultipleSecretRefNotFound:
			stale = true
		}
		if !stale || backoff.Steps <= 1 {
			return got, fmt.Errorf("build %s/%s not registered: %s: %s", ns, name, reason, message)
		}
		if err := deleteAndWait(ctx, c, ns, name); err != nil {
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
