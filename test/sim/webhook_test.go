package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	buildv1 "github.com/openshift/api/build/v1"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

func validBC() *buildv1.BuildConfig {
	return &buildv1.BuildConfig{
		TypeMeta:   metav1.TypeMeta{Kind: "BuildConfig", APIVersion: "build.openshift.io/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns"},
		Spec: buildv1.BuildConfigSpec{
			CommonSpec: buildv1.CommonSpec{
				Source:   buildv1.BuildSource{Git: &buildv1.GitBuildSource{URI: "https://git.example.com/app.git"}},
				Strategy: buildv1.BuildStrategy{DockerStrategy: &buildv1.DockerBuildStrategy{}},
				Output:   buildv1.BuildOutput{To: &corev1.ObjectReference{Kind: "DockerImage", Name: "registry.example.com/app:v1"}},
			},
		},
	}
}

func raw(t *testing.T, v any) runtime.RawExtension {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return runtime.RawExtension{Raw: b}
}

// applyMutation runs the mutating webhook on obj and returns the patched
// object's JSON.
func applyMutation(t *testing.T, a *admitter, op admissionv1.Operation, resource string, obj, old any) ([]byte, *admissionv1.AdmissionResponse) {
	t.Helper()
	req := &admissionv1.AdmissionRequest{
		UID:       types.UID("1"),
		Resource:  metav1.GroupVersionResource{Group: Group, Version: "v1", Resource: resource},
		Operation: op,
		Name:      "app",
		Namespace: "ns",
		Object:    raw(t, obj),
	}
	if old != nil {
		req.OldObject = raw(t, old)
	}
	resp := a.mutate(context.Background(), req)
	if !resp.Allowed || resp.Patch == nil {
		return req.Object.Raw, resp
	}
	p, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Apply(req.Object.Raw)
	if err != nil {
		t.Fatalf("applying %s: %v", resp.Patch, err)
	}
	return out, resp
}

func TestMutateBuildConfigDefaults(t *testing.T) {
	a := &admitter{}
	bc := validBC()
	bc.Spec.Output.To = &corev1.ObjectReference{Name: "app:v1"} // kind empty: :latest appended
	bc.Spec.Strategy = buildv1.BuildStrategy{Type: buildv1.DockerBuildStrategyType}
	bc.Spec.Strategy.DockerStrategy = nil
	bc.Spec.Source = buildv1.BuildSource{Type: buildv1.BuildSourceBinary}
	bc.Spec.Triggers = []buildv1.BuildTriggerPolicy{{Type: "Bogus"}, {Type: buildv1.ConfigChangeBuildTriggerType}, {Type: "github", GitHubWebHook: &buildv1.WebHookTrigger{Secret: "s"}}}
	bc.Status.LastVersion = 7
	out, resp := applyMutation(t, a, admissionv1.Create, "buildconfigs", bc, nil)
	if !resp.Allowed {
		t.Fatalf("denied: %v", resp.Result)
	}
	var got buildv1.BuildConfig
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	s := got.Spec
	if s.Output.To.Kind != "ImageStreamTag" || s.Output.To.Name != "app:v1:latest" {
		t.Errorf("output.to = %+v, want ImageStreamTag app:v1:latest", s.Output.To)
	}
	if s.Strategy.DockerStrategy == nil || s.Strategy.Type != buildv1.DockerBuildStrategyType {
		t.Errorf("strategy = %+v, want dockerStrategy {} and type Docker", s.Strategy)
	}
	if s.Source.Binary == nil || s.Source.Type != buildv1.BuildSourceBinary {
		t.Errorf("source = %+v, want binary {} and type Binary", s.Source)
	}
	if s.RunPolicy != buildv1.BuildRunPolicySerial {
		t.Errorf("runPolicy = %q", s.RunPolicy)
	}
	if s.SuccessfulBuildsHistoryLimit == nil || *s.SuccessfulBuildsHistoryLimit != 5 || s.FailedBuildsHistoryLimit == nil || *s.FailedBuildsHistoryLimit != 5 {
		t.Errorf("history limits = %v/%v, want 5/5", s.SuccessfulBuildsHistoryLimit, s.FailedBuildsHistoryLimit)
	}
	if len(s.Triggers) != 2 || s.Triggers[0].Type != buildv1.ConfigChangeBuildTriggerType || s.Triggers[1].Type != buildv1.GitHubWebHookBuildTriggerType {
		t.Errorf("triggers = %+v, want ConfigChange and GitHub (unknown dropped, deprecated renamed)", s.Triggers)
	}
	if got.Status.LastVersion != 0 {
		t.Errorf("status.lastVersion = %d on create, want 0", got.Status.LastVersion)
	}

	// A second pass changes nothing (no patch).
	_, resp = applyMutation(t, a, admissionv1.Create, "buildconfigs", json.RawMessage(out), nil)
	if resp.Patch != nil {
		t.Errorf("defaulting is not idempotent: second patch %s", resp.Patch)
	}
}

func TestMutateFromAndImageStream(t *testing.T) {
	spec := buildv1.CommonSpec{
		Strategy: buildv1.BuildStrategy{SourceStrategy: &buildv1.SourceBuildStrategy{From: corev1.ObjectReference{Name: "builder:1"}}},
		Output:   buildv1.BuildOutput{To: &corev1.ObjectReference{Kind: "ImageStream", Name: "app"}},
		Source:   buildv1.BuildSource{ContextDir: "./sub/", Git: &buildv1.GitBuildSource{URI: "https://x/y.git"}},
	}
	defaultCommonSpec(&spec)
	if f := spec.Strategy.SourceStrategy.From; f.Kind != "ImageStreamTag" || f.Name != "builder:1" {
		t.Errorf("source from = %+v", f)
	}
	if to := spec.Output.To; to.Kind != "ImageStreamTag" || to.Name != "app:latest" {
		t.Errorf("output.to = %+v", to)
	}
	if spec.Source.ContextDir != "sub" || spec.Source.Type != buildv1.BuildSourceGit {
		t.Errorf("source = %+v", spec.Source)
	}
	if spec.Strategy.Type != buildv1.SourceBuildStrategyType {
		t.Errorf("strategy type = %q", spec.Strategy.Type)
	}
	d := buildv1.CommonSpec{Strategy: buildv1.BuildStrategy{DockerStrategy: &buildv1.DockerBuildStrategy{
		From: &corev1.ObjectReference{Kind: "ImageStream", Name: "base"}, DockerfilePath: "./Dockerfile"}}}
	defaultCommonSpec(&d)
	if f := d.Strategy.DockerStrategy.From; f.Kind != "ImageStreamTag" || f.Name != "base:latest" {
		t.Errorf("docker from = %+v", f)
	}
	if d.Strategy.DockerStrategy.DockerfilePath != "Dockerfile" {
		t.Errorf("dockerfilePath = %q", d.Strategy.DockerStrategy.DockerfilePath)
	}
}

func TestMutateHistoryLimitsOnlyOnCreate(t *testing.T) {
	bc := validBC()
	bc.ResourceVersion = "5"
	old := validBC()
	old.Status.LastVersion = 4
	bc.Status.LastVersion = 2
	out, resp := applyMutation(t, &admitter{}, admissionv1.Update, "buildconfigs", bc, old)
	if !resp.Allowed {
		t.Fatalf("denied: %v", resp.Result)
	}
	var got buildv1.BuildConfig
	_ = json.Unmarshal(out, &got)
	if got.Spec.SuccessfulBuildsHistoryLimit != nil {
		t.Errorf("history limit defaulted on update")
	}
	if got.Status.LastVersion != 4 {
		t.Errorf("lastVersion = %d, want 4 (never decreases)", got.Status.LastVersion)
	}
}

func TestMutateUpdateWithoutResourceVersion(t *testing.T) {
	_, resp := applyMutation(t, &admitter{}, admissionv1.Update, "buildconfigs", validBC(), validBC())
	if resp.Allowed {
		t.Fatal("update without resourceVersion allowed")
	}
	want := `buildconfigs.build.openshift.io "app" is invalid: metadata.resourceVersion: Invalid value: 0: must be specified for an update`
	if resp.Result.Message != want || resp.Result.Code != 422 {
		t.Errorf("got %d %q\nwant 422 %q", resp.Result.Code, resp.Result.Message, want)
	}
}

func TestMutateBuildSetsPhaseNew(t *testing.T) {
	b := &buildv1.Build{ObjectMeta: metav1.ObjectMeta{Name: "app-1"}, Spec: buildv1.BuildSpec{CommonSpec: validBC().Spec.CommonSpec}}
	out, _ := applyMutation(t, &admitter{}, admissionv1.Create, "builds", b, nil)
	var got buildv1.Build
	_ = json.Unmarshal(out, &got)
	if got.Status.Phase != buildv1.BuildPhaseNew {
		t.Errorf("phase = %q, want New", got.Status.Phase)
	}
}

func TestValidateBuildConfig(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	i32 := func(v int32) *int32 { return &v }
	str := func(s string) *string { return &s }
	cases := []struct {
		name string
		mod  func(bc *buildv1.BuildConfig)
		want []string // each must appear in the error list
	}{
		{"valid", func(*buildv1.BuildConfig) {}, nil},
		{"no strategy", func(bc *buildv1.BuildConfig) { bc.Spec.Strategy = buildv1.BuildStrategy{} },
			[]string{"spec.strategy: Invalid value: ", ": must provide a value for exactly one of sourceStrategy, customStrategy, dockerStrategy, or jenkinsPipelineStrategy"}},
		{"two strategies", func(bc *buildv1.BuildConfig) {
			bc.Spec.Strategy.SourceStrategy = &buildv1.SourceBuildStrategy{From: corev1.ObjectReference{Kind: "DockerImage", Name: "x"}}
		}, []string{"must provide a value for exactly one of"}},
		{"docker without source", func(bc *buildv1.BuildConfig) { bc.Spec.Source = buildv1.BuildSource{} },
			[]string{`spec.source: Invalid value: {"type":"None"}: must provide a value for at least one source input(git, binary, dockerfile, images).`}},
		{"source strategy without source is fine", func(bc *buildv1.BuildConfig) {
			bc.Spec.Source = buildv1.BuildSource{}
			bc.Spec.Strategy = buildv1.BuildStrategy{SourceStrategy: &buildv1.SourceBuildStrategy{From: corev1.ObjectReference{Kind: "DockerImage", Name: "builder"}}}
		}, nil},
		{"git and binary", func(bc *buildv1.BuildConfig) { bc.Spec.Source.Binary = &buildv1.BinaryBuildSource{} },
			[]string{`spec.source.git: Invalid value: "": may not be set when binary is also set`, `spec.source.binary: Invalid value: "": may not be set when git is also set`}},
		{"git uri required", func(bc *buildv1.BuildConfig) { bc.Spec.Source.Git.URI = "" }, []string{"spec.source.git.uri: Required value"}},
		{"git uri invalid", func(bc *buildv1.BuildConfig) { bc.Spec.Source.Git.URI = "http://[::1" },
			[]string{`spec.source.git.uri: Invalid value: "http://[::1": parse "http://[::1": missing ']' in host`}},
		{"git scp uri", func(bc *buildv1.BuildConfig) { bc.Spec.Source.Git.URI = "git@github.com:org/repo.git" }, nil},
		{"dockerfile too long", func(bc *buildv1.BuildConfig) { bc.Spec.Source.Dockerfile = str(strings.Repeat("x", 60001)) },
			[]string{"spec.source.dockerfile: Invalid value: \"\": must be smaller than 60000 bytes"}},
		{"asFile", func(bc *buildv1.BuildConfig) {
			bc.Spec.Source.Git = nil
			bc.Spec.Source.Binary = &buildv1.BinaryBuildSource{AsFile: "a/b"}
		}, []string{`spec.source.binary.asFile: Invalid value: "a/b": file name may not contain slashes or relative path segments and must be a valid POSIX filename`}},
		{"contextDir", func(bc *buildv1.BuildConfig) { bc.Spec.Source.ContextDir = "../up" },
			[]string{`spec.source.contextDir: Invalid value: "../up": context dir must not be a relative path`}},
		{"dockerfilePath escapes", func(bc *buildv1.BuildConfig) { bc.Spec.Strategy.DockerStrategy.DockerfilePath = "sub/../../Dockerfile" },
			[]string{`spec.strategy.dockerStrategy.dockerfilePath: Invalid value: "sub/../../Dockerfile": dockerfilePath must be a relative path within your source location`}},
		{"dockerfilePath absolute", func(bc *buildv1.BuildConfig) { bc.Spec.Strategy.DockerStrategy.DockerfilePath = "/Dockerfile" },
			[]string{"dockerfilePath must be a relative path within your source location"}},
		{"imageOptimizationPolicy", func(bc *buildv1.BuildConfig) {
			p := buildv1.ImageOptimizationPolicy("Fast")
			bc.Spec.Strategy.DockerStrategy.ImageOptimizationPolicy = &p
		}, []string{`spec.strategy.dockerStrategy.imageOptimizationPolicy: Invalid value: "Fast": must be unset, 'None', 'SkipLayers', or 'SkipLayersAndWarn'`}},
		{"from kind required", func(bc *buildv1.BuildConfig) {
			bc.Spec.Source.Images = []buildv1.ImageSource{{From: corev1.ObjectReference{Name: "x"}, Paths: []buildv1.ImageSourcePath{{SourcePath: "/a", DestinationDir: "b"}}}}
		}, []string{"spec.source.images[0].from.kind: Required value"}},
		{"from kind defaulted", func(bc *buildv1.BuildConfig) {
			bc.Spec.Strategy.DockerStrategy.From = &corev1.ObjectReference{Name: "x"}
		}, []string{`spec.strategy.dockerStrategy.from.name: Invalid value: "x": must be <name>:<tag>`}},
		{"from kind invalid", func(bc *buildv1.BuildConfig) {
			bc.Spec.Strategy.DockerStrategy.From = &corev1.ObjectReference{Kind: "Pod", Name: "x"}
		}, []string{`spec.strategy.dockerStrategy.from.kind: Invalid value: "Pod": must be 'ImageStreamTag', 'ImageStreamImage', or 'DockerImage'`}},
		{"from istag form", func(bc *buildv1.BuildConfig) {
			bc.Spec.Strategy.DockerStrategy.From = &corev1.ObjectReference{Kind: "ImageStreamTag", Name: "base"}
		}, []string{`spec.strategy.dockerStrategy.from.name: Invalid value: "base": must be <name>:<tag>`}},
		{"from docker pull spec", func(bc *buildv1.BuildConfig) {
			bc.Spec.Strategy.DockerStrategy.From = &corev1.ObjectReference{Kind: "DockerImage", Name: "Registry/Base"}
		}, []string{`spec.strategy.dockerStrategy.from.name: Invalid value: "Registry/Base": not a valid Docker pull specification: repository name must be lowercase`}},
		{"source from required", func(bc *buildv1.BuildConfig) {
			bc.Spec.Strategy = buildv1.BuildStrategy{SourceStrategy: &buildv1.SourceBuildStrategy{From: corev1.ObjectReference{Kind: "DockerImage"}}}
		}, []string{"spec.strategy.sourceStrategy.from.name: Required value"}},
		{"output kind", func(bc *buildv1.BuildConfig) { bc.Spec.Output.To.Kind = "Pod" },
			[]string{`spec.output.to.kind: Invalid value: "Pod": the target of build output must be an 'ImageStreamTag' or 'DockerImage'`}},
		{"output istag with tag appended", func(bc *buildv1.BuildConfig) {
			bc.Spec.Output.To = &corev1.ObjectReference{Name: "app:v1"}
		}, []string{`spec.output.to.name: Invalid value: "app:v1:latest": ImageStreamTag object references must be in the form <name>:<tag>`}},
		{"output docker namespace", func(bc *buildv1.BuildConfig) { bc.Spec.Output.To.Namespace = "other" },
			[]string{`spec.output.to.namespace: Invalid value: "other": namespace is not valid when used with a 'DockerImage'`}},
		{"output docker pull spec", func(bc *buildv1.BuildConfig) { bc.Spec.Output.To.Name = "reg.example.com/app:v1:v2" },
			[]string{`spec.output.to.name: Invalid value: "reg.example.com/app:v1:v2": name is not a valid Docker pull specification: invalid reference format`}},
		{"push secret name", func(bc *buildv1.BuildConfig) { bc.Spec.Output.PushSecret = &corev1.LocalObjectReference{} },
			[]string{"spec.output.pushSecret.name: Required value"}},
		{"pull secret name", func(bc *buildv1.BuildConfig) {
			bc.Spec.Strategy.DockerStrategy.PullSecret = &corev1.LocalObjectReference{}
		},
			[]string{"spec.strategy.dockerStrategy.pullSecret.name: Required value"}},
		{"source secret name", func(bc *buildv1.BuildConfig) { bc.Spec.Source.SourceSecret = &corev1.LocalObjectReference{} },
			[]string{"spec.source.sourceSecret.name: Required value"}},
		{"image labels", func(bc *buildv1.BuildConfig) {
			bc.Spec.Output.ImageLabels = []buildv1.ImageLabel{{Name: ""}, {Name: "a"}, {Name: "a"}, {Name: "bad label"}}
		}, []string{"spec.output.imageLabels[0].name: Required value", `spec.output.imageLabels[2].name: Invalid value: "a": duplicate name`, `spec.output.imageLabels[3].name: Invalid value: "bad label"`}},
		{"env names", func(bc *buildv1.BuildConfig) {
			bc.Spec.Strategy.DockerStrategy.Env = []corev1.EnvVar{{Name: ""}, {Name: "1X"}, {Name: "R", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}}}
		}, []string{"spec.strategy.dockerStrategy.env[0].name: Required value", `spec.strategy.dockerStrategy.env[1].name: Invalid value: "1X"`, "ResourceFieldRef is not valid for valueFrom in build environment variables"}},
		{"postCommit", func(bc *buildv1.BuildConfig) {
			bc.Spec.PostCommit = buildv1.BuildPostCommitSpec{Command: []string{"x"}, Script: "y"}
		}, []string{"spec.postCommit: Invalid value: ", "cannot use command and script together"}},
		{"deadline", func(bc *buildv1.BuildConfig) { bc.Spec.CompletionDeadlineSeconds = i64(0) },
			[]string{"spec.completionDeadlineSeconds: Invalid value: 0: completionDeadlineSeconds must be a positive integer greater than 0"}},
		{"runPolicy", func(bc *buildv1.BuildConfig) { bc.Spec.RunPolicy = "Whenever" },
			[]string{`spec.runPolicy: Invalid value: "Whenever": run policy must Parallel, Serial, or SerialLatestOnly`}},
		{"history limits", func(bc *buildv1.BuildConfig) {
			bc.Spec.SuccessfulBuildsHistoryLimit, bc.Spec.FailedBuildsHistoryLimit = i32(-1), i32(-2)
		}, []string{"spec.successfulBuildsHistoryLimit: Invalid value: -1: must be greater than or equal to 0", "spec.failedBuildsHistoryLimit: Invalid value: -2: must be greater than or equal to 0"}},
		{"history limit zero ok", func(bc *buildv1.BuildConfig) { bc.Spec.SuccessfulBuildsHistoryLimit = i32(0) }, nil},
		{"docker secret destination", func(bc *buildv1.BuildConfig) {
			bc.Spec.Source.Secrets = []buildv1.SecretBuildSource{{Secret: corev1.LocalObjectReference{Name: "s"}, DestinationDir: "/etc/x"}}
		}, []string{`spec.source.secrets[0].destinationDir: Invalid value: "/etc/x": for the docker strategy the destinationDir has to be relative path`}},
		{"triggers", func(bc *buildv1.BuildConfig) {
			bc.Spec.Triggers = []buildv1.BuildTriggerPolicy{
				{Type: buildv1.GitHubWebHookBuildTriggerType, GitHubWebHook: &buildv1.WebHookTrigger{AllowEnv: true}},
				{Type: buildv1.ImageChangeBuildTriggerType, ImageChange: &buildv1.ImageChangeTrigger{}},
			}
		}, []string{"spec.triggers[0].github: Invalid value: \"\": must provide a value for at least one of secret or secretReference",
			"git webhooks cannot allow env vars",
			"a default ImageChange trigger can only be used when the build strategy includes an ImageStreamTag reference."}},
		{"node selector", func(bc *buildv1.BuildConfig) { bc.Spec.NodeSelector = map[string]string{"bad key!": "v"} },
			[]string{"must be a valid node selector"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bc := validBC()
			c.mod(bc)
			defaultBuildConfig(bc, false)
			if bc.Spec.RunPolicy == "" {
				bc.Spec.RunPolicy = buildv1.BuildRunPolicySerial
			}
			errs := validateBuildConfig(bc)
			var msgs []string
			for _, e := range errs {
				msgs = append(msgs, e.Error())
			}
			all := strings.Join(msgs, "\n")
			if len(c.want) == 0 && len(errs) > 0 {
				t.Fatalf("unexpected errors:\n%s", all)
			}
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("missing %q in:\n%s", w, all)
				}
			}
		})
	}
}

func TestValidateBuildUpdate(t *testing.T) {
	old := &buildv1.Build{ObjectMeta: metav1.ObjectMeta{Name: "app-1"}, Spec: buildv1.BuildSpec{CommonSpec: validBC().Spec.CommonSpec}}
	defaultBuild(old)
	old.Status.Phase = buildv1.BuildPhaseRunning

	b := old.DeepCopy()
	b.Spec.Output.PushSecret = &corev1.LocalObjectReference{Name: "push"}
	b.Spec.Revision = &buildv1.SourceRevision{Type: "Git", Git: &buildv1.GitSourceRevision{Commit: "abc"}}
	b.Status.Phase = buildv1.BuildPhaseComplete
	if errs := validateBuildUpdate(b, old); len(errs) > 0 {
		t.Errorf("pushSecret and first revision rejected: %v", errs)
	}

	c := b.DeepCopy()
	c.Spec.Revision.Git.Commit = "def"
	c.Spec.Strategy.DockerStrategy.NoCache = true
	errs := validateBuildUpdate(c, b)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "spec is immutable, diff: ") || !strings.Contains(errs[0].Error(), "noCache") {
		t.Errorf("got %v, want one spec is immutable error naming noCache", errs)
	}

	d := b.DeepCopy()
	d.Status.Phase = buildv1.BuildPhaseRunning
	d.Status.Cancelled = true
	errs = validateBuildUpdate(d, b)
	if len(errs) != 1 || errs[0].Error() != `status.phase: Invalid value: "Running": phase cannot be updated from a terminal state` {
		t.Errorf("got %v", errs)
	}
	e := b.DeepCopy()
	e.Status.Cancelled = true
	if errs := validateBuildUpdate(e, b); len(errs) > 0 {
		t.Errorf("cancelled flag on a terminal build rejected: %v", errs)
	}
}

// fakeAccess allows what allow says; it records the checks.
type fakeAccess struct {
	allow  func(user string, a authorizationv1.ResourceAttributes) bool
	checks []authorizationv1.ResourceAttributes
}

func (f *fakeAccess) check(_ context.Context, u authenticationv1.UserInfo, a authorizationv1.ResourceAttributes) (bool, string, error) {
	f.checks = append(f.checks, a)
	return f.allow(u.Username, a), "", nil
}

func TestValidateStrategyAdmission(t *testing.T) {
	denyDocker := &fakeAccess{allow: func(_ string, a authorizationv1.ResourceAttributes) bool { return a.Subresource != "docker" }}
	a := &admitter{access: denyDocker, loopbackUser: "admin"}
	req := func(user string, op admissionv1.Operation, obj, old any) *admissionv1.AdmissionRequest {
		r := &admissionv1.AdmissionRequest{
			UID: "u", Resource: metav1.GroupVersionResource{Group: Group, Version: "v1", Resource: "buildconfigs"},
			Operation: op, Name: "app", Namespace: "ns", Object: raw(t, obj),
			UserInfo: authenticationv1.UserInfo{Username: user},
		}
		if old != nil {
			r.OldObject = raw(t, old)
		}
		return r
	}
	bc := validBC()
	defaultBuildConfig(bc, true)
	resp := a.validate(context.Background(), req("system:serviceaccount:ns:pipeline", admissionv1.Create, bc, nil))
	if resp.Allowed || resp.Result.Code != 403 || resp.Result.Message != `buildconfigs.build.openshift.io "app" is forbidden: build strategy Docker is not allowed` {
		t.Fatalf("got %+v", resp.Result)
	}
	c := denyDocker.checks[0]
	if c.Verb != "create" || c.Group != Group || c.Resource != "builds" || c.Subresource != "docker" || c.Name != "app" || c.Namespace != "ns" {
		t.Errorf("SAR attributes = %+v", c)
	}
	if resp := a.validate(context.Background(), req("admin", admissionv1.Create, bc, nil)); !resp.Allowed {
		t.Errorf("loopback identity denied: %+v", resp.Result)
	}
	// An update that only changes ownerReferences is exempt.
	nb := bc.DeepCopy()
	nb.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "X", Name: "x", UID: "1"}}
	nb.ResourceVersion = "9"
	if resp := a.validate(context.Background(), req("gc", admissionv1.Update, nb, bc)); !resp.Allowed {
		t.Errorf("ownerReferences-only update denied: %+v", resp.Result)
	}
	nb.Labels = map[string]string{"x": "y"}
	if resp := a.validate(context.Background(), req("gc", admissionv1.Update, nb, bc)); resp.Allowed {
		t.Errorf("label update by a user without the docker strategy allowed")
	}
	// optimizeddocker when imageOptimizationPolicy is set.
	p := buildv1.ImageOptimizationSkipLayers
	bc.Spec.Strategy.DockerStrategy.ImageOptimizationPolicy = &p
	if resp := a.validate(context.Background(), req("u", admissionv1.Create, bc, nil)); !resp.Allowed {
		t.Errorf("optimizeddocker denied: %+v", resp.Result)
	}
	// Validation errors come first, as 422.
	bc.Spec.RunPolicy = "x"
	resp = a.validate(context.Background(), req("u", admissionv1.Create, bc, nil))
	if resp.Allowed || resp.Result.Code != 422 || resp.Result.Reason != metav1.StatusReasonInvalid ||
		!strings.HasPrefix(resp.Result.Message, `BuildConfig.build.openshift.io "app" is invalid: spec.runPolicy`) ||
		len(resp.Result.Details.Causes) != 1 || resp.Result.Details.Causes[0].Field != "spec.runPolicy" {
		t.Errorf("got %+v", resp.Result)
	}
}

func TestAdmissionReviewOverHTTP(t *testing.T) {
	a := &admitter{access: &fakeAccess{allow: func(string, authorizationv1.ResourceAttributes) bool { return true }}}
	srv := httptest.NewServer(a)
	defer srv.Close()
	bc := validBC()
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "abc", Resource: metav1.GroupVersionResource{Group: Group, Version: "v1", Resource: "buildconfigs"},
			Operation: admissionv1.Create, Name: "app", Namespace: "ns", Object: raw(t, bc),
		},
	}
	for _, p := range []string{"/mutate", "/validate"} {
		if p == "/validate" {
			defaultBuildConfig(bc, true)
			review.Request.Object = raw(t, bc)
		}
		body, _ := json.Marshal(review)
		resp, err := http.Post(srv.URL+p, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var out admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if out.Response == nil || out.Response.UID != "abc" || !out.Response.Allowed || out.Kind != "AdmissionReview" {
			t.Errorf("%s: got %+v", p, out)
		}
		if p == "/mutate" && (out.Response.PatchType == nil || *out.Response.PatchType != admissionv1.PatchTypeJSONPatch) {
			t.Errorf("no JSON patch from /mutate")
		}
	}
}

func TestStripDenied(t *testing.T) {
	msg := `admission webhook "validation.build.openshift.io" denied the request: BuildConfig.build.openshift.io "x" is invalid: spec.strategy: Invalid value: ...`
	if got := stripDenied(msg); !strings.HasPrefix(got, "BuildConfig.build.openshift.io") {
		t.Errorf("stripDenied = %q", got)
	}
	if got := stripDenied("other"); got != "other" {
		t.Errorf("stripDenied changed an unrelated message")
	}
}
