package sim

import (
	"context"
	"path/filepath"

	buildv1 "github.com/openshift/api/build/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// engine prepares the build's buildah with the credentials OpenShift mounts
// into the build pod: the push secret (spec.output.pushSecret) and the
// strategy's pull secret, each a dockerconfigjson or dockercfg Secret.
func (e *executor) engine(ctx context.Context) (*buildah, outcome, bool) {
	bh, err := newBuildah(filepath.Join(e.work, "buildah"), e.c.o.Registry, e.c.o.InsecureRegistries, e.log)
	if err != nil {
		e.logf("error: preparing the builder: %v", err)
		return nil, failed(buildv1.StatusReasonGenericBuildFailed), false
	}
	var secrets []map[string][]byte
	for _, ref := range []*corev1.LocalObjectReference{pullSecretOf(e.b), e.b.Spec.Output.PushSecret} {
		if ref == nil || ref.Name == "" {
			continue
		}
		s, err := e.c.kube.CoreV1().Secrets(e.b.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			e.logf("warning: reading secret %q: %v", ref.Name, err)
			continue
		}
		secrets = append(secrets, s.Data)
	}
	if err := bh.setAuth(secrets...); err != nil {
		e.logf("error: build error: %v", err)
		bh.cleanup()
		return nil, failed(buildv1.StatusReasonGenericBuildFailed), false
	}
	return bh, outcome{}, true
}

func pullSecretOf(b *buildv1.Build) *corev1.LocalObjectReference {
	s := b.Spec.Strategy
	switch {
	case s.DockerStrategy != nil:
		return s.DockerStrategy.PullSecret
	case s.SourceStrategy != nil:
		return s.SourceStrategy.PullSecret
	case s.CustomStrategy != nil:
		return s.CustomStrategy.PullSecret
	}
	return nil
}
