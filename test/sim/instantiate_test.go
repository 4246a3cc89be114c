package sim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	instantiatePath = "/apis/build.openshift.io/v1/namespaces/ns/buildconfigs/app/instantiate"
	binaryPath      = "/apis/build.openshift.io/v1/namespaces/ns/buildconfigs/app/instantiatebinary"
)

func storedBC(mod func(bc *buildv1.BuildConfig)) *buildv1.BuildConfig {
	bc := validBC()
	bc.UID = "bc-uid"
	bc.Labels = map[string]string{"team": "a"}
	defaultBuildConfig(bc, true)
	if mod != nil {
		mod(bc)
	}
	return bc
}

func body(t *testing.T, v any) *strings.Reader {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReader(string(b))
}

func TestInstantiate(t *testing.T) {
	h := newHarness(t, storedBC(func(bc *buildv1.BuildConfig) {
		bc.Status.LastVersion = 2
		bc.Spec.Strategy.DockerStrategy.Env = []corev1.EnvVar{{Name: "A", Value: "old"}, {Name: "K", Value: "keep"}}
		bc.Spec.Strategy.DockerStrategy.BuildArgs = []corev1.EnvVar{{Name: "Z", Value: "z"}}
	}))
	noCache := true
	req := &buildv1.BuildRequest{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "app",
			Labels:      map[string]string{"buildrun": "br-1", buildv1.BuildConfigLabel: "evil"},
			Annotations: map[string]string{"x": "y", buildv1.BuildNumberAnnotation: "99"},
		},
		Env:                   []corev1.EnvVar{{Name: "A", Value: "new"}, {Name: "B", Value: "b"}},
		DockerStrategyOptions: &buildv1.DockerStrategyOptions{BuildArgs: []corev1.EnvVar{{Name: "Y", Value: "y"}}, NoCache: &noCache},
		Revision:              &buildv1.SourceRevision{Type: buildv1.BuildSourceGit, Git: &buildv1.GitSourceRevision{Commit: "abc123"}},
	}
	resp := h.do("POST", instantiatePath, body(t, req))
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("HTTP %d: %+v", resp.StatusCode, readStatus(t, resp))
	}
	var b buildv1.Build
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatal(err)
	}
	if b.Kind != "Build" || b.APIVersion != "build.openshift.io/v1" || b.Name != "app-3" || b.Status.Phase != buildv1.BuildPhaseNew {
		t.Errorf("build %s/%s %s phase %s", b.APIVersion, b.Kind, b.Name, b.Status.Phase)
	}
	wantLabels := map[string]string{"team": "a", "buildrun": "br-1", buildv1.BuildConfigLabel: "app", buildv1.BuildConfigLabelDeprecated: "app", buildv1.BuildRunPolicyLabel: "Serial"}
	for k, v := range wantLabels {
		if b.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, b.Labels[k], v)
		}
	}
	if b.Annotations[buildv1.BuildNumberAnnotation] != "3" || b.Annotations[buildv1.BuildConfigAnnotation] != "app" || b.Annotations["x"] != "y" {
		t.Errorf("annotations = %v", b.Annotations)
	}
	if len(b.OwnerReferences) != 1 || b.OwnerReferences[0].Kind != "BuildConfig" || b.OwnerReferences[0].UID != "bc-uid" || b.OwnerReferences[0].Controller == nil || !*b.OwnerReferences[0].Controller {
		t.Errorf("ownerReferences = %+v", b.OwnerReferences)
	}
	if len(b.Spec.TriggeredBy) != 1 || b.Spec.TriggeredBy[0].Message != "Manually triggered" {
		t.Errorf("triggeredBy = %+v", b.Spec.TriggeredBy)
	}
	ds := b.Spec.Strategy.DockerStrategy
	if got, _ := json.Marshal(ds.Env); string(got) != `[{"name":"K","value":"keep"},{"name":"A","value":"new"},{"name":"B","value":"b"}]` {
		t.Errorf("env = %s", got)
	}
	if got, _ := json.Marshal(ds.BuildArgs); string(got) != `[{"name":"Y","value":"y"},{"name":"Z","value":"z"}]` || !ds.NoCache {
		t.Errorf("buildArgs = %s noCache %v", got, ds.NoCache)
	}
	if b.Spec.Revision == nil || b.Spec.Revision.Git.Commit != "abc123" || b.Spec.ServiceAccount != "builder" {
		t.Errorf("revision %+v serviceAccount %q", b.Spec.Revision, b.Spec.ServiceAccount)
	}
	if b.Status.Config == nil || b.Status.Config.Name != "app" {
		t.Errorf("status.config = %+v", b.Status.Config)
	}
	bc, _ := h.builds.BuildV1().BuildConfigs("ns").Get(context.Background(), "app", metav1.GetOptions{})
	if bc.Status.LastVersion != 3 {
		t.Errorf("lastVersion = %d, want 3", bc.Status.LastVersion)
	}
	// The lastVersion bump came before the Build.
	var order []string
	for _, a := range h.builds.Actions() {
		if a.GetVerb() == "update" || a.GetVerb() == "create" {
			order = append(order, a.GetVerb()+" "+a.GetResource().Resource)
		}
	}
	if strings.Join(order, ",") != "update buildconfigs,create builds" {
		t.Errorf("writes = %v", order)
	}
	if _, err := h.kube.CoreV1().ServiceAccounts("ns").Get(context.Background(), "builder", metav1.GetOptions{}); err != nil {
		t.Errorf("builder ServiceAccount not created: %v", err)
	}
	// Both SARs: instantiate, then the strategy.
	if len(h.access.checks) != 2 || h.access.checks[0].Subresource != "instantiate" || h.access.checks[1].Subresource != "docker" || h.access.checks[1].Resource != "builds" {
		t.Errorf("checks = %+v", h.access.checks)
	}
}

func TestInstantiateErrors(t *testing.T) {
	lv := int64(5)
	inc := true
	cases := []struct {
		name string
		bc   func(*buildv1.BuildConfig)
		req  *buildv1.BuildRequest
		deny string // subresource the caller may not use
		code int
		msg  string
	}{
		{name: "paused", bc: func(bc *buildv1.BuildConfig) {
			bc.Annotations = map[string]string{buildv1.BuildConfigPausedAnnotation: "true"}
		}, code: 400, msg: "can't instantiate from BuildConfig ns/app: BuildConfig is paused"},
		{name: "lastVersion", req: &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: "app"}, LastVersion: &lv},
			code: 400, msg: "the LastVersion(0) on build config ns/app does not match the build request LastVersion(5)"},
		{name: "source options on docker", req: &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: "app"}, SourceStrategyOptions: &buildv1.SourceStrategyOptions{Incremental: &inc}},
			code: 400, msg: "Cannot specify Source build specific options on ns/app, not a Source build."},
		{name: "docker options on source", bc: func(bc *buildv1.BuildConfig) {
			bc.Spec.Strategy = buildv1.BuildStrategy{Type: "Source", SourceStrategy: &buildv1.SourceBuildStrategy{From: corev1.ObjectReference{Kind: "DockerImage", Name: "b"}}}
		}, req: &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: "app"}, DockerStrategyOptions: &buildv1.DockerStrategyOptions{NoCache: &inc}},
			code: 400, msg: "Cannot specify Docker build specific options on ns/app, not a Docker build."},
		{name: "no name", req: &buildv1.BuildRequest{}, code: 422, msg: `BuildRequest.build.openshift.io "" is invalid: metadata.name: Required value`},
		{name: "unknown", req: &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: "nope"}}, code: 404, msg: `buildconfigs.build.openshift.io "nope" not found`},
		{name: "forbidden", deny: "instantiate", code: 403,
			msg: `buildconfigs.build.openshift.io "app" is forbidden: User "system:serviceaccount:ns:pipeline" cannot create resource "buildconfigs/instantiate" in API group "build.openshift.io" in the namespace "ns"`},
		{name: "strategy", deny: "docker", code: 403, msg: `buildconfigs.build.openshift.io "app" is forbidden: build strategy Docker is not allowed`},
		{name: "binary bc without binary", bc: func(bc *buildv1.BuildConfig) {
			bc.Spec.Source = buildv1.BuildSource{Type: "Binary", Binary: &buildv1.BinaryBuildSource{}}
		}, code: 422, msg: `Build.build.openshift.io "app-1" is invalid: spec.source: Invalid value: {"type":"None"}: must provide a value for at least one source input(git, binary, dockerfile, images).`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, storedBC(c.bc))
			h.access.allow = func(_ string, a authorizationv1.ResourceAttributes) bool { return a.Subresource != c.deny }
			req := c.req
			if req == nil {
				req = &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: "app"}}
			}
			expectStatus(t, h.do("POST", instantiatePath, body(t, req)), c.code, c.msg)
		})
	}
}

func TestInstantiateBinary(t *testing.T) {
	h := newHarness(t, storedBC(nil)) // a Git BuildConfig: converted to binary
	var phaseAtDelivery buildv1.BuildPhase
	h.sources.onDeliver = func(k Key) error {
		phaseAtDelivery = h.getBuild(k.Namespace, k.Name).Status.Phase
		return nil
	}
	go func() {
		h.awaitWatch()
		h.setPhase("ns", "app-1", buildv1.BuildPhasePending, "", "")
		h.setPhase("ns", "app-1", buildv1.BuildPhaseRunning, "", "")
	}()
	resp := h.do("POST", binaryPath+"?asFile=app.jar&revision.commit=abc&revision.authorName=me&revision.message=msg", strings.NewReader("the-archive"))
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("HTTP %d: %+v", resp.StatusCode, readStatus(t, resp))
	}
	var b buildv1.Build
	_ = json.NewDecoder(resp.Body).Decode(&b)
	if b.Status.Phase != buildv1.BuildPhaseRunning || b.Name != "app-1" || b.Kind != "Build" {
		t.Errorf("answer: %s phase %s", b.Name, b.Status.Phase)
	}
	if phaseAtDelivery != buildv1.BuildPhaseRunning {
		t.Errorf("body read in phase %q, want Running", phaseAtDelivery)
	}
	k := Key{"ns", "app-1"}
	if h.sources.delivered[k] != "the-archive" || h.sources.asFile[k] != "app.jar" {
		t.Errorf("delivered %q as %q", h.sources.delivered[k], h.sources.asFile[k])
	}
	s := h.getBuild("ns", "app-1").Spec
	if s.Source.Git != nil || s.Source.Binary == nil || s.Source.Binary.AsFile != "app.jar" || s.Source.Type != buildv1.BuildSourceBinary {
		t.Errorf("source = %+v", s.Source)
	}
	if r := s.Revision; r == nil || r.Git.Commit != "abc" || r.Git.Author.Name != "me" || r.Git.Message != "msg" {
		t.Errorf("revision = %+v", s.Revision)
	}
	if h.getBuild("ns", "app-1").Status.Cancelled {
		t.Error("delivered build cancelled")
	}
	for _, c := range h.access.checks {
		if c.Resource == "builds" {
			t.Errorf("strategy check on instantiatebinary: %+v", c)
		}
	}
}

func TestInstantiateBinaryOutcomes(t *testing.T) {
	cases := []struct {
		name      string
		act       func(h *harness)
		timeout   time.Duration
		deliver   error
		code      int
		msg       string
		cancelled bool
	}{
		{name: "failed", act: func(h *harness) {
			h.setPhase("ns", "app-1", buildv1.BuildPhaseFailed, "DockerBuildFailed", "Dockerfile build strategy has failed.")
		}, code: 400, msg: "build app-1 failed: DockerBuildFailed: Dockerfile build strategy has failed."},
		{name: "error", act: func(h *harness) { h.setPhase("ns", "app-1", buildv1.BuildPhaseError, "", "") },
			code: 400, msg: "build app-1 encountered an error: No logs are available."},
		{name: "cancelled", act: func(h *harness) { h.setPhase("ns", "app-1", buildv1.BuildPhaseCancelled, "", "") },
			code: 400, msg: "build app-1 was cancelled: No logs are available."},
		{name: "deleted", act: func(h *harness) {
			_ = h.builds.BuildV1().Builds("ns").Delete(context.Background(), "app-1", metav1.DeleteOptions{})
		}, code: 400, msg: "build app-1 was deleted before it started: No logs are available."},
		{name: "complete", act: func(h *harness) { h.setPhase("ns", "app-1", buildv1.BuildPhaseComplete, "", "") },
			code: 400, msg: "cannot upload file to build app-1 with status Complete", cancelled: true},
		{name: "timeout", timeout: 300 * time.Millisecond,
			code: 400, msg: "unable to wait for build app-1 to run: timed out waiting for the condition", cancelled: true},
		{name: "upload fails", act: func(h *harness) { h.setPhase("ns", "app-1", buildv1.BuildPhaseRunning, "", "") },
			deliver: errors.New("unable to extract binary build input, must be a zip, tar, or gzipped tar, or specified as a file: EOF"),
			code:    500, msg: "Internal error occurred: unable to extract binary build input, must be a zip, tar, or gzipped tar, or specified as a file: EOF", cancelled: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, storedBC(nil))
			if c.timeout > 0 {
				h.fd.binaryTimeout = c.timeout
			}
			h.sources.onDeliver = func(Key) error { return c.deliver }
			if c.act != nil {
				go func() {
					h.awaitWatch()
					c.act(h)
				}()
			}
			expectStatus(t, h.do("POST", binaryPath, strings.NewReader("x")), c.code, c.msg)
			if c.name == "deleted" {
				return
			}
			if got := h.getBuild("ns", "app-1").Status.Cancelled; got != c.cancelled {
				t.Errorf("cancelled = %v, want %v", got, c.cancelled)
			}
		})
	}
}

func TestGenerateBuildNames(t *testing.T) {
	long := strings.Repeat("a", 253)
	bc := storedBC(nil)
	bc.Name = long
	b, st := generateBuild(bc, &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: long}})
	if st != nil {
		t.Fatal(st)
	}
	if len(b.Name) > 253 || !strings.HasSuffix(b.Name, "-1") {
		t.Errorf("name %q (%d)", b.Name, len(b.Name))
	}
	if v := b.Labels[buildv1.BuildConfigLabel]; len(v) > 63 {
		t.Errorf("label value %q too long", v)
	}
	if b.Annotations[buildv1.BuildConfigAnnotation] != long {
		t.Errorf("annotation shortened")
	}
	// Dockerfile dropped only for asFile=Dockerfile.
	bc = storedBC(func(bc *buildv1.BuildConfig) { bc.Spec.Source.Dockerfile = ptrTo("FROM x") })
	b, _ = generateBuild(bc, &buildv1.BuildRequest{Binary: &buildv1.BinaryBuildSource{AsFile: "Dockerfile"}})
	if b.Spec.Source.Dockerfile != nil || b.Spec.Source.Git != nil {
		t.Errorf("source = %+v", b.Spec.Source)
	}
	b, _ = generateBuild(bc, &buildv1.BuildRequest{Binary: &buildv1.BinaryBuildSource{}})
	if b.Spec.Source.Dockerfile == nil {
		t.Errorf("inline Dockerfile dropped without asFile=Dockerfile")
	}
}

// TestMergeEnv: same-named strategy entries are removed, then every request
// entry is appended (§4.1 step 7).
func TestMergeEnv(t *testing.T) {
	env := func(kvs ...string) []corev1.EnvVar {
		var out []corev1.EnvVar
		for _, kv := range kvs {
			n, v, _ := strings.Cut(kv, "=")
			out = append(out, corev1.EnvVar{Name: n, Value: v})
		}
		return out
	}
	str := func(e []corev1.EnvVar) string {
		var s []string
		for _, x := range e {
			s = append(s, x.Name+"="+x.Value)
		}
		return strings.Join(s, " ")
	}
	for _, c := range []struct{ base, add, want []corev1.EnvVar }{
		{env("KEEP=1", "A=old", "NEW=2"), env("A=B"), env("KEEP=1", "NEW=2", "A=B")},
		{env("A=1", "B=2", "A=3"), env("A=x", "C=y"), env("B=2", "A=x", "C=y")},
		{nil, env("A=x", "A=y"), env("A=x", "A=y")},
		{env("A=1"), nil, env("A=1")},
	} {
		if got := mergeEnv(c.base, c.add); str(got) != str(c.want) {
			t.Errorf("mergeEnv(%s, %s) = %s, want %s", str(c.base), str(c.add), str(got), str(c.want))
		}
	}
	// Through instantiate: BC env [KEEP, A=old, NEW] + request A=B.
	h := newHarness(t, storedBC(func(bc *buildv1.BuildConfig) {
		bc.Spec.Strategy.DockerStrategy.Env = env("KEEP=1", "A=old", "NEW=2")
	}))
	resp := h.do("POST", instantiatePath, body(t, &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: "app"}, Env: env("A=B")}))
	defer resp.Body.Close()
	var b buildv1.Build
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("HTTP %d: %v", resp.StatusCode, err)
	}
	if got := str(b.Spec.Strategy.DockerStrategy.Env); got != "KEEP=1 NEW=2 A=B" {
		t.Errorf("build env %s, want KEEP=1 NEW=2 A=B", got)
	}
}
