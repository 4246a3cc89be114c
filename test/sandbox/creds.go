package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// credsInit does Tekton's creds-init for registry credentials: every
// kubernetes.io/dockerconfigjson and kubernetes.io/dockercfg Secret listed
// in the service account's secrets (Shipwright links a Build's
// spec.output.pushSecret there) is merged into /tekton/creds/.docker/
// config.json, which the entrypoint copies into $HOME (/tekton/home), where
// the strategies point DOCKER_CONFIG.
func (r *run) credsInit(ctx context.Context) error {
	sa, err := r.e.kube.CoreV1().ServiceAccounts(r.tr.Namespace).Get(ctx, r.sa, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading service account %q: %w", r.sa, err)
	}
	auths := map[string]json.RawMessage{}
	seen := map[string]bool{}
	for _, ref := range sa.Secrets {
		if ref.Name == "" || seen[ref.Name] {
			continue
		}
		seen[ref.Name] = true
		s, err := r.e.kube.CoreV1().Secrets(r.tr.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			r.logf("secret %q of service account %s not found, skipping (as Tekton does)", ref.Name, r.sa)
			continue
		}
		if err != nil {
			return err
		}
		if s.Type != corev1.SecretTypeDockerConfigJson && s.Type != corev1.SecretTypeDockercfg {
			continue
		}
		entries, err := RegistryAuths(s.Data)
		if err != nil {
			return fmt.Errorf("secret %q: %w", s.Name, err)
		}
		for host, e := range entries {
			auths[host] = e
		}
	}
	if len(auths) == 0 {
		return nil
	}
	data, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		return err
	}
	for _, dir := range []string{filepath.Join(r.dir, "creds", ".docker"), filepath.Join(r.dir, "home", ".docker")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// RegistryAuths reads the registry entries (host → auth entry) of a
// docker-registry Secret's data: its .dockerconfigjson ({"auths": {…}}) or
// its legacy .dockercfg ({…}). Data with neither has none.
func RegistryAuths(data map[string][]byte) (map[string]json.RawMessage, error) {
	if j, ok := data[corev1.DockerConfigJsonKey]; ok {
		var c struct {
			Auths map[string]json.RawMessage `json:"auths"`
		}
		if err := json.Unmarshal(j, &c); err != nil {
			return nil, fmt.Errorf("reading %s: %v", corev1.DockerConfigJsonKey, err)
		}
		return c.Auths, nil
	}
	if j, ok := data[corev1.DockerConfigKey]; ok {
		var auths map[string]json.RawMessage
		if err := json.Unmarshal(j, &auths); err != nil {
			return nil, fmt.Errorf("reading %s: %v", corev1.DockerConfigKey, err)
		}
		return auths, nil
	}
	return nil, nil
}
