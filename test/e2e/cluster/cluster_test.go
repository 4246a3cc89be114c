package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

const kubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://api.example.com:6443"}}]
users: [{name: u, user: {token: sha256~secret}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`

func TestFromEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string // the variable the error must name; "" for success
	}{
		{"no opt-in", map[string]string{EnvExistingCluster: "", EnvKubeconfig: path}, EnvExistingCluster},
		{"opt-in not true", map[string]string{EnvExistingCluster: "yes", EnvKubeconfig: path}, EnvExistingCluster},
		{"no kubeconfig", map[string]string{EnvExistingCluster: "true", EnvKubeconfig: ""}, EnvKubeconfig},
		{"bad namespace", map[string]string{EnvExistingCluster: "true", EnvKubeconfig: path, EnvNamespace: "Team_A"}, EnvNamespace},
		{"bad git URL", map[string]string{EnvExistingCluster: "true", EnvKubeconfig: path, EnvGitURL: "github.com/ocbuild"}, EnvGitURL},
		{"bad output", map[string]string{EnvExistingCluster: "true", EnvKubeconfig: path, EnvOutput: "Not A Registry"}, EnvOutput},
		{"bad bool", map[string]string{EnvExistingCluster: "true", EnvKubeconfig: path, EnvSwitchCancelMode: "sure"}, EnvSwitchCancelMode},
		{"bad flags", map[string]string{EnvExistingCluster: "true", EnvKubeconfig: path, EnvTektonFlags: "feature-flags"}, EnvTektonFlags},
		{"defaults", map[string]string{EnvExistingCluster: "true", EnvKubeconfig: path}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{EnvNamespace, EnvGitURL, EnvGitRevision, EnvOutput, EnvRegistry, EnvRegistryInsecure, EnvTektonFlags, EnvSwitchCancelMode} {
				t.Setenv(k, "")
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := FromEnv()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("FromEnv() error = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Admin.Host != "https://api.example.com:6443" || c.Namespace != DefaultNamespace || c.GitURL != DefaultGitURL || c.Output != DefaultOutput || c.SwitchCancelMode {
				t.Errorf("defaults: %+v", c)
			}
			if got := c.OutputImage("team", "app"); got != DefaultOutput+"/team/app:latest" {
				t.Errorf("OutputImage = %s", got)
			}
		})
	}
}

// The test process reads the output at the registry's outside address,
// with the kubeconfig's token, keeping the repository and tag.
func TestReadableImage(t *testing.T) {
	c := &Config{Output: DefaultOutput, Registry: "default-route.apps.example.com"}
	c.Admin = mustAdmin(t)
	ref, opts, err := c.ReadableImage(c.OutputImage("team", "app"))
	if err != nil {
		t.Fatal(err)
	}
	if got := ref.String(); got != "default-route.apps.example.com/team/app:latest" {
		t.Errorf("ReadableImage = %s", got)
	}
	if len(opts) != 1 {
		t.Errorf("%d remote options, want the token's auth", len(opts))
	}
	c.Registry = ""
	if ref, _, _ = c.ReadableImage(DefaultOutput + "/team/app@sha256:" + strings.Repeat("a", 64)); ref.Context().RegistryStr() != DefaultOutput {
		t.Errorf("without a Registry the reference changed: %s", ref)
	}
}

func mustAdmin(t *testing.T) *rest.Config {
	t.Helper()
	return &rest.Config{BearerToken: "sha256~secret"}
}
