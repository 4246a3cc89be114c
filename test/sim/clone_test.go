package sim

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	buildv1 "github.com/openshift/api/build/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

const clonePath = "/apis/build.openshift.io/v1/namespaces/ns/builds/app-2/clone"

// builtBuild is build app-2 of BuildConfig app as the generator made it and
// the controller ran it.
func builtBuild(bc *buildv1.BuildConfig, mod func(b *buildv1.Build)) *buildv1.Build {
	b, st := generateBuild(bc, &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: "app"},
		TriggeredBy: []buildv1.BuildTriggerCause{{Message: manualTriggerMessage}}})
	if st != nil {
		panic(st)
	}
	b.Name = "app-2"
	b.Annotations[buildv1.BuildNumberAnnotation] = "2"
	b.Annotations[buildv1.BuildPodNameAnnotation] = "app-2-build"
	b.Status.Phase = buildv1.BuildPhaseFailed
	b.Status.Reason = buildv1.StatusReasonDockerBuildFailed
	if mod != nil {
		mod(b)
	}
	return b
}

func cloneRequest(mod func(*buildv1.BuildRequest)) *buildv1.BuildRequest {
	req := &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: "app-2"}}
	if mod != nil {
		mod(req)
	}
	return req
}

func postClone(t *testing.T, h *harness, req *buildv1.BuildRequest) (*buildv1.Build, *http.Response) {
	t.Helper()
	resp := h.do("POST", clonePath, body(t, req))
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusCreated {
		return nil, resp
	}
	var b buildv1.Build
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatal(err)
	}
	return &b, resp
}

// `oc start-build --from-build app-2` and `oc cancel-build --restart`: the
// next build of the BuildConfig, with app-2's spec.
func TestCloneIsTheNextBuildOfTheBuildConfig(t *testing.T) {
	bc := storedBC(func(bc *buildv1.BuildConfig) {
		bc.Status.LastVersion = 2
		bc.Spec.Strategy.DockerStrategy.Env = []corev1.EnvVar{{Name: "A", Value: "old"}, {Name: "K", Value: "keep"}}
	})
	orig := builtBuild(bc, nil)
	h := newHarness(t, bc, orig)
	b, resp := postClone(t, h, cloneRequest(func(r *buildv1.BuildRequest) {
		r.Env = []corev1.EnvVar{{Name: "A", Value: "new"}}
		r.DockerStrategyOptions = &buildv1.DockerStrategyOptions{BuildArgs: []corev1.EnvVar{{Name: "Y", Value: "y"}}}
	}))
	if b == nil {
		t.Fatalf("HTTP %d: %+v", resp.StatusCode, readStatus(t, resp))
	}
	if b.Name != "app-3" || b.Status.Phase != buildv1.BuildPhaseNew || b.Status.Reason != "" {
		t.Errorf("clone %s phase %s reason %q, want app-3 New", b.Name, b.Status.Phase, b.Status.Reason)
	}
	if b.Annotations[buildv1.BuildCloneAnnotation] != "app-2" || b.Annotations[buildv1.BuildNumberAnnotation] != "3" {
		t.Errorf("annotations = %v, want clone-of app-2 and build number 3", b.Annotations)
	}
	if _, ok := b.Annotations[buildv1.BuildPodNameAnnotation]; ok {
		t.Errorf("the clone kept the original's pod name annotation: %v", b.Annotations)
	}
	if b.Labels[buildv1.BuildConfigLabel] != "app" || len(b.OwnerReferences) != 1 || b.OwnerReferences[0].UID != "bc-uid" {
		t.Errorf("labels %v owners %+v: the original's are kept", b.Labels, b.OwnerReferences)
	}
	if len(b.Spec.TriggeredBy) != 0 {
		t.Errorf("triggeredBy = %+v; a clone carries the request's, none here", b.Spec.TriggeredBy)
	}
	ds := b.Spec.Strategy.DockerStrategy
	if got, _ := json.Marshal(ds.Env); string(got) != `[{"name":"K","value":"keep"},{"name":"A","value":"new"}]` {
		t.Errorf("env = %s", got)
	}
	if got, _ := json.Marshal(ds.BuildArgs); string(got) != `[{"name":"Y","value":"y"}]` {
		t.Errorf("buildArgs = %s", got)
	}
	if b.Spec.Source.Git == nil || b.Spec.Source.Git.URI != orig.Spec.Source.Git.URI {
		t.Errorf("source = %+v, want the original's", b.Spec.Source)
	}
	got, _ := h.builds.BuildV1().BuildConfigs("ns").Get(context.Background(), "app", metav1.GetOptions{})
	if got.Status.LastVersion != 3 {
		t.Errorf("lastVersion = %d, want 3", got.Status.LastVersion)
	}
	if len(h.access.checks) != 2 || h.access.checks[0].Subresource != "clone" || h.access.checks[1].Subresource != "docker" {
		t.Errorf("checks = %+v, want builds/clone then the strategy", h.access.checks)
	}
}

func TestCloneRefusals(t *testing.T) {
	cases := []struct {
		name    string
		objs    func() []runtime.Object
		req     *buildv1.BuildRequest
		code    int
		message string
	}{
		{"unknown build", func() []runtime.Object { return nil }, cloneRequest(nil), http.StatusNotFound, `builds.build.openshift.io "app-2" not found`},
		{"paused BuildConfig", func() []runtime.Object {
			bc := storedBC(func(bc *buildv1.BuildConfig) {
				bc.Annotations = map[string]string{buildv1.BuildConfigPausedAnnotation: "true"}
			})
			return []runtime.Object{bc, builtBuild(bc, nil)}
		}, cloneRequest(nil), http.StatusInternalServerError, "can't instantiate from BuildConfig ns/app: BuildConfig is paused"},
		{"build args on a Source build", func() []runtime.Object {
			bc := storedBC(nil)
			return []runtime.Object{bc, builtBuild(bc, func(b *buildv1.Build) {
				b.Spec.Strategy = buildv1.BuildStrategy{Type: buildv1.SourceBuildStrategyType,
					SourceStrategy: &buildv1.SourceBuildStrategy{From: corev1.ObjectReference{Kind: "DockerImage", Name: "example.com/builder:1"}}}
			})}
		}, cloneRequest(func(r *buildv1.BuildRequest) {
			r.DockerStrategyOptions = &buildv1.DockerStrategyOptions{BuildArgs: []corev1.EnvVar{{Name: "Y", Value: "y"}}}
		}), http.StatusBadRequest, "Cannot specify build args on ns/app, not a Docker build."},
		// The upload cannot be replayed: the clone has no source left.
		{"binary build", func() []runtime.Object {
			bc := storedBC(nil)
			return []runtime.Object{bc, builtBuild(bc, func(b *buildv1.Build) {
				b.Spec.Source = buildv1.BuildSource{Type: buildv1.BuildSourceBinary, Binary: &buildv1.BinaryBuildSource{}}
			})}
		}, cloneRequest(nil), http.StatusUnprocessableEntity, "spec.source"},
		{"no name", func() []runtime.Object { return nil }, cloneRequest(func(r *buildv1.BuildRequest) { r.Name = "" }), http.StatusUnprocessableEntity, "metadata.name: Required value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.objs()...)
			b, resp := postClone(t, h, tc.req)
			if b != nil {
				t.Fatalf("clone %s created, want HTTP %d", b.Name, tc.code)
			}
			st := readStatus(t, resp)
			if resp.StatusCode != tc.code || !strings.Contains(st.Message, tc.message) {
				t.Errorf("HTTP %d %q, want %d containing %q", resp.StatusCode, st.Message, tc.code, tc.message)
			}
		})
	}
}

// A build whose BuildConfig is gone is cloned under its own name with a
// timestamp suffix, which a clone of the clone replaces.
func TestCloneWithoutBuildConfig(t *testing.T) {
	bc := storedBC(nil)
	for _, orig := range []string{"app-2", "app-2-1733011200"} {
		t.Run(orig, func(t *testing.T) {
			h := newHarness(t, builtBuild(bc, func(b *buildv1.Build) { b.Name = orig }))
			b, resp := postClone(t, h, cloneRequest(func(r *buildv1.BuildRequest) { r.Name = orig }))
			if b == nil {
				t.Fatalf("HTTP %d: %+v", resp.StatusCode, readStatus(t, resp))
			}
			if !regexp.MustCompile(`^app-2-\d{10}$`).MatchString(b.Name) || b.Name == orig {
				t.Errorf("clone of %s is %s, want app-2-<10 digits>", orig, b.Name)
			}
			if _, ok := b.Annotations[buildv1.BuildNumberAnnotation]; ok {
				t.Errorf("a clone without BuildConfig has a build number: %v", b.Annotations)
			}
		})
	}
}
