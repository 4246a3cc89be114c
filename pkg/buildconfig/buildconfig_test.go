package buildconfig

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	fakebuild "github.com/openshift/client-go/build/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"
)

func TestRenderDocker(t *testing.T) {
	s := Spec{Strategy: Docker, Binary: true, Dockerfile: "build/Dockerfile", From: "quay.io/base/go:1.26",
		Env: []corev1.EnvVar{{Name: "A", Value: "1"}}, BuildArgs: []corev1.EnvVar{{Name: "V", Value: "2"}}, NoCache: true, ForcePull: true,
		Output: "quay.io/team/app:v1", PushSecret: "push", PullSecret: "pull", ImageLabels: []buildv1.ImageLabel{{Name: "team", Value: "x"}},
		CompletionDeadlineSeconds: 900}
	spec := Render(s)
	if spec.Output.To == nil || spec.Output.To.Kind != "DockerImage" || spec.Output.To.Name != "quay.io/team/app:v1" {
		t.Errorf("output.to = %+v: the kind must be explicit DockerImage", spec.Output.To)
	}
	if len(spec.Triggers) != 0 || spec.Triggers == nil {
		t.Errorf("triggers = %#v, want an explicit empty list", spec.Triggers)
	}
	if *spec.SuccessfulBuildsHistoryLimit < 1 || *spec.FailedBuildsHistoryLimit < 1 {
		t.Error("history limits must be at least 1 so a build is not pruned before its outputs are read")
	}
	if spec.RunPolicy != buildv1.BuildRunPolicySerial {
		t.Errorf("runPolicy = %q, want Serial by default", spec.RunPolicy)
	}
	if spec.Source.Binary == nil || spec.Source.Git != nil {
		t.Errorf("source = %+v, want binary only", spec.Source)
	}
	ds := spec.Strategy.DockerStrategy
	if ds == nil || spec.Strategy.SourceStrategy != nil || ds.From.Kind != "DockerImage" || ds.DockerfilePath != "build/Dockerfile" ||
		!ds.NoCache || !ds.ForcePull || ds.PullSecret.Name != "pull" || len(ds.BuildArgs) != 1 || len(ds.Env) != 1 {
		t.Errorf("docker strategy = %+v", ds)
	}
	if spec.Output.PushSecret.Name != "push" || len(spec.Output.ImageLabels) != 1 || *spec.CompletionDeadlineSeconds != 900 {
		t.Errorf("output = %+v deadline %v", spec.Output, spec.CompletionDeadlineSeconds)
	}
}

func TestRenderSourceFromGit(t *testing.T) {
	spec := Render(Spec{Strategy: Source, GitURL: "https://git.example.com/a.git", GitRef: "main", ContextDir: "app", SourceSecret: "git",
		From: "registry.example.com/ubi9/python-311", Incremental: true, ScriptsURL: "image:///s2i", Output: "quay.io/t/a:1", RunPolicy: "Parallel"})
	if spec.Source.Git == nil || spec.Source.Git.Ref != "main" || spec.Source.ContextDir != "app" || spec.Source.SourceSecret.Name != "git" || spec.Source.Binary != nil {
		t.Errorf("source = %+v", spec.Source)
	}
	ss := spec.Strategy.SourceStrategy
	if ss == nil || spec.Strategy.DockerStrategy != nil || ss.From.Kind != "DockerImage" || !*ss.Incremental || ss.Scripts != "image:///s2i" {
		t.Errorf("source strategy = %+v", ss)
	}
	if spec.RunPolicy != "Parallel" || spec.CompletionDeadlineSeconds != nil {
		t.Errorf("runPolicy %q deadline %v", spec.RunPolicy, spec.CompletionDeadlineSeconds)
	}
}

func TestApplyCreatesThenUpdatesAndRetriesConflicts(t *testing.T) {
	c := fakebuild.NewSimpleClientset()
	bcs := c.BuildV1().BuildConfigs("ns")
	owner := Owner{Build: "app", BuildRun: "run-1"}
	bc, err := Apply(context.Background(), bcs, "app", Spec{Strategy: Docker, Binary: true, Output: "quay.io/t/a:1"}, owner, Lock{})
	if err != nil {
		t.Fatal(err)
	}
	if bc.Labels[LabelBuild] != "app" || bc.Labels[LabelManagedBy] != ManagedByValue || bc.Annotations[AnnotationBuildRun] != "run-1" {
		t.Errorf("metadata = %+v", bc.ObjectMeta)
	}
	// Someone else's field survives; the spec is ours again.
	bc.Labels["keep"] = "me"
	bc.Spec.Triggers = []buildv1.BuildTriggerPolicy{{Type: buildv1.ConfigChangeBuildTriggerType}}
	if _, err := bcs.Update(context.Background(), bc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	conflicts := 2
	c.PrependReactor("update", "buildconfigs", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if conflicts > 0 {
			conflicts--
			return true, nil, apierrors.NewConflict(buildv1.Resource("buildconfigs"), "app", nil)
		}
		return false, nil, nil
	})
	bc, err = Apply(context.Background(), bcs, "app", Spec{Strategy: Docker, Binary: true, Output: "quay.io/t/a:2"}, Owner{Build: "app", BuildRun: "run-2"}, Lock{})
	if err != nil {
		t.Fatalf("Apply after conflicts: %v", err)
	}
	if conflicts != 0 {
		t.Errorf("%d conflicts not consumed", conflicts)
	}
	if bc.Spec.Output.To.Name != "quay.io/t/a:2" || len(bc.Spec.Triggers) != 0 || bc.Labels["keep"] != "me" || bc.Annotations[AnnotationBuildRun] != "run-2" {
		t.Errorf("updated BuildConfig = %+v / %+v", bc.ObjectMeta, bc.Spec)
	}
}

func TestApplyLeavesAnUnchangedBuildConfigAlone(t *testing.T) {
	c := fakebuild.NewSimpleClientset()
	bcs := c.BuildV1().BuildConfigs("ns")
	s := Spec{Strategy: Docker, Binary: true, Output: "quay.io/t/a:1"}
	if _, err := Apply(context.Background(), bcs, "app", s, Owner{Build: "app"}, Lock{}); err != nil {
		t.Fatal(err)
	}
	c.ClearActions()
	if _, err := Apply(context.Background(), bcs, "app", s, Owner{Build: "app"}, Lock{}); err != nil {
		t.Fatal(err)
	}
	for _, a := range c.Actions() {
		if a.GetVerb() == "update" {
			t.Errorf("an identical Apply wrote the BuildConfig: %v", a)
		}
	}
}

func TestMatchesIgnoresWhatInstantiationRewrites(t *testing.T) {
	want := Render(Spec{Strategy: Docker, Binary: true, Output: "quay.io/t/a:1",
		Env: []corev1.EnvVar{{Name: "B", Value: "2"}, {Name: "A", Value: "1"}}}).CommonSpec
	got := *want.DeepCopy()
	got.Strategy.Type = buildv1.DockerBuildStrategyType
	got.Strategy.DockerStrategy.Env = []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}}
	got.Revision = &buildv1.SourceRevision{Git: &buildv1.GitSourceRevision{Commit: "abc"}}
	got.Source = buildv1.BuildSource{Binary: &buildv1.BinaryBuildSource{AsFile: ""}}
	if !Matches(got, want) {
		t.Errorf("a build generated from the spec does not match:\n%s\n%s", Fingerprint(got), Fingerprint(want))
	}
	other := *got.DeepCopy()
	other.Output.To = &corev1.ObjectReference{Kind: "DockerImage", Name: "quay.io/t/a:2"}
	if Matches(other, want) {
		t.Error("a build with another output matches")
	}
}

func TestStartLockMakesOtherRunsWait(t *testing.T) {
	c := fakebuild.NewSimpleClientset()
	bcs := c.BuildV1().BuildConfigs("ns")
	ctx := context.Background()
	if _, err := Apply(ctx, bcs, "app", Spec{Strategy: Docker, Binary: true, Output: "quay.io/t/a:1"}, Owner{}, Lock{Holder: "run-a"}); err != nil {
		t.Fatal(err)
	}
	done := make(chan *buildv1.BuildConfig, 1)
	go func() {
		bc, err := Apply(ctx, bcs, "app", Spec{Strategy: Docker, Binary: true, Output: "quay.io/t/b:1"}, Owner{}, Lock{Holder: "run-b"})
		if err != nil {
			t.Error(err)
		}
		done <- bc
	}()
	// While run-a holds the lock, run-b must not have rewritten the spec.
	bc, _ := bcs.Get(ctx, "app", metav1.GetOptions{})
	if bc.Spec.Output.To.Name != "quay.io/t/a:1" {
		t.Fatalf("spec rewritten while locked: %s", bc.Spec.Output.To.Name)
	}
	if err := Release(ctx, bcs, "app", "run-a"); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.Spec.Output.To.Name != "quay.io/t/b:1" || !strings.HasPrefix(got.Annotations[AnnotationStartLock], "run-b ") {
		t.Errorf("after release: output %s lock %q", got.Spec.Output.To.Name, got.Annotations[AnnotationStartLock])
	}
	// Releasing someone else's lock does nothing.
	if err := Release(ctx, bcs, "app", "run-a"); err != nil {
		t.Fatal(err)
	}
	if bc, _ := bcs.Get(ctx, "app", metav1.GetOptions{}); !strings.HasPrefix(bc.Annotations[AnnotationStartLock], "run-b ") {
		t.Errorf("run-a released run-b's lock: %q", bc.Annotations[AnnotationStartLock])
	}
}

func TestExpiredStartLockIsTakenOver(t *testing.T) {
	stale := &buildv1.BuildConfig{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", Labels: map[string]string{LabelManagedBy: ManagedByValue},
		Annotations: map[string]string{AnnotationStartLock: "dead-run " + time.Now().Add(-time.Second).UTC().Format(time.RFC3339)}}}
	c := fakebuild.NewSimpleClientset(stale)
	bc, err := Apply(context.Background(), c.BuildV1().BuildConfigs("ns"), "app", Spec{Strategy: Docker, Binary: true, Output: "quay.io/t/a:1"},
		Owner{}, Lock{Holder: "run-b"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(bc.Annotations[AnnotationStartLock], "run-b ") {
		t.Errorf("lock = %q", bc.Annotations[AnnotationStartLock])
	}
}

func TestApplyRefusesABuildConfigItDoesNotOwn(t *testing.T) {
	theirs := &buildv1.BuildConfig{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns"},
		Spec: buildv1.BuildConfigSpec{CommonSpec: buildv1.CommonSpec{Output: buildv1.BuildOutput{To: &corev1.ObjectReference{Kind: "DockerImage", Name: "quay.io/theirs:1"}}}}}
	c := fakebuild.NewSimpleClientset(theirs)
	_, err := Apply(context.Background(), c.BuildV1().BuildConfigs("ns"), "app", Spec{Strategy: Docker, Binary: true, Output: "quay.io/t/a:1"}, Owner{}, Lock{})
	var notOwned *NotOwnedError
	if !errors.As(err, &notOwned) {
		t.Fatalf("err = %v, want NotOwnedError", err)
	}
	got, _ := c.BuildV1().BuildConfigs("ns").Get(context.Background(), "app", metav1.GetOptions{})
	if got.Spec.Output.To.Name != "quay.io/theirs:1" {
		t.Error("a foreign BuildConfig was changed")
	}
}

// Running the same Build again writes nothing: not the last BuildRun's
// annotation, and no lock, even while another run with the same spec holds
// it (it wrote this very spec); a different spec still waits for the lock.
func TestUnchangedSpecIsNeitherWrittenNorLocked(t *testing.T) {
	ctx := context.Background()
	c := fakebuild.NewSimpleClientset()
	bcs := c.BuildV1().BuildConfigs("ns")
	s := Spec{Strategy: Docker, Binary: true, Output: "quay.io/t/a:1"}
	if _, err := Apply(ctx, bcs, "app", s, Owner{Build: "app", BuildRun: "run-1"}, Lock{Holder: "run-a"}); err != nil {
		t.Fatal(err)
	}
	c.ClearActions()
	bc, err := Apply(ctx, bcs, "app", s, Owner{Build: "app", BuildRun: "run-2"}, Lock{Holder: "run-b"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range c.Actions() {
		if a.GetVerb() != "get" {
			t.Errorf("unchanged spec: %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
	if Holds(bc, "run-b") || !Holds(bc, "run-a") {
		t.Errorf("lock = %q, want run-a's still", bc.Annotations[AnnotationStartLock])
	}
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	other := Spec{Strategy: Docker, Binary: true, Output: "quay.io/t/b:1"}
	if _, err := Apply(wctx, bcs, "app", other, Owner{Build: "app"}, Lock{Holder: "run-c"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a different spec did not wait for run-a's lock: %v", err)
	}
}

// The API server stores JSON: empty lists (triggers) read back as nil. A
// BuildConfig read back that way is still unchanged, so a rerun of the same
// Build writes nothing (issue 9: the bench against the simulator saw a lock
// and a release on every run).
func TestUnchangedAsTheAPIServerStoresIt(t *testing.T) {
	ctx := context.Background()
	c := fakebuild.NewSimpleClientset()
	bcs := c.BuildV1().BuildConfigs("ns")
	s := Spec{Strategy: Docker, Binary: true, Output: "quay.io/t/a:1"}
	created, err := Apply(ctx, bcs, "app", s, Owner{Build: "app", BuildRun: "run-1"}, Lock{Holder: "run-a"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(created)
	if err != nil {
		t.Fatal(err)
	}
	var stored buildv1.BuildConfig
	if err := json.Unmarshal(data, &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Spec.Triggers != nil {
		t.Fatalf("triggers read back as %#v; the test needs what the API server returns (nil)", stored.Spec.Triggers)
	}
	if err := c.Tracker().Update(buildv1.GroupVersion.WithResource("buildconfigs"), &stored, "ns"); err != nil {
		t.Fatal(err)
	}
	c.ClearActions()
	if _, err := Apply(ctx, bcs, "app", s, Owner{Build: "app", BuildRun: "run-2"}, Lock{Holder: "run-b"}); err != nil {
		t.Fatal(err)
	}
	for _, a := range c.Actions() {
		if a.GetVerb() != "get" {
			t.Errorf("rerun of an unchanged spec as stored by the API server: %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}
