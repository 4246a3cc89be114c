// Package buildconfig renders the BuildConfig ocbuild owns for a Shipwright
// Build and brings the cluster's copy to it.
//
// The BuildConfig is shared by every BuildRun of a Build, so its spec reflects
// the BuildRun that last wrote it, and instantiation copies the spec into the
// new Build. Concurrent BuildRuns therefore take a short start lock (an
// annotation written together with the spec) held until their Build exists;
// Matches lets the caller check the Build it got all the same, since tools
// other than ocbuild may write the BuildConfig.
package buildconfig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ocbuild/ocbuild/pkg/apiretry"
	"github.com/ocbuild/ocbuild/pkg/buildapi"
)

// Labels and annotations ocbuild puts on BuildConfigs and Builds.
const (
	LabelManagedBy       = "app.kubernetes.io/managed-by"
	ManagedByValue       = "ocbuild"
	LabelBuild           = "build.shipwright.io/name"
	LabelBuildRun        = "buildrun.shipwright.io/name"
	LabelTaskRun         = "tekton.dev/taskRun"
	AnnotationTaskRunUID = "ocbuild.io/taskrun-uid"
	AnnotationBuildRun   = "ocbuild.io/last-buildrun"
	AnnotationRequest    = "ocbuild.io/request-id"
)

// Strategy names accepted by Spec.Strategy.
const (
	Docker = "docker"
	Source = "source"
)

// DefaultHistoryLimit keeps enough finished builds to read outputs back and
// debug; it is never 0 so a build cannot be pruned before we read it.
const DefaultHistoryLimit int32 = 5

// Spec is what the user asked for, in ocbuild's terms.
type Spec struct {
	Strategy     string // Docker or Source
	Binary       bool   // source uploaded by instantiatebinary
	GitURL       string
	GitRef       string
	SourceSecret string
	ContextDir   string
	Dockerfile   string // relative to ContextDir
	From         string // docker: base image override; source: builder image
	Env          []corev1.EnvVar
	BuildArgs    []corev1.EnvVar
	NoCache      bool
	Incremental  bool
	ForcePull    bool
	ScriptsURL   string
	Output       string
	PushSecret   string
	PullSecret   string
	ImageLabels  []buildv1.ImageLabel
	RunPolicy    buildv1.BuildRunPolicy
	// CompletionDeadlineSeconds bounds the build pod; 0 leaves OpenShift's default.
	CompletionDeadlineSeconds int64
}

// Render returns the BuildConfig spec for s. Every pointer ocbuild does not use
// is nil, so an Update replaces whatever another tool left behind.
func Render(s Spec) buildv1.BuildConfigSpec {
	limit := DefaultHistoryLimit
	failedLimit := DefaultHistoryLimit
	spec := buildv1.BuildConfigSpec{
		Triggers:                     []buildv1.BuildTriggerPolicy{},
		RunPolicy:                    s.RunPolicy,
		SuccessfulBuildsHistoryLimit: &limit,
		FailedBuildsHistoryLimit:     &failedLimit,
	}
	if spec.RunPolicy == "" {
		spec.RunPolicy = buildv1.BuildRunPolicySerial
	}
	cs := &spec.CommonSpec
	if s.Binary {
		cs.Source = buildv1.BuildSource{Type: buildv1.BuildSourceBinary, Binary: &buildv1.BinaryBuildSource{}}
	} else {
		cs.Source = buildv1.BuildSource{Type: buildv1.BuildSourceGit, Git: &buildv1.GitBuildSource{URI: s.GitURL, Ref: s.GitRef}, ContextDir: s.ContextDir}
		if s.SourceSecret != "" {
			cs.Source.SourceSecret = &corev1.LocalObjectReference{Name: s.SourceSecret}
		}
	}
	var pull *corev1.LocalObjectReference
	if s.PullSecret != "" {
		pull = &corev1.LocalObjectReference{Name: s.PullSecret}
	}
	switch s.Strategy {
	case Source:
		cs.Strategy = buildv1.BuildStrategy{Type: buildv1.SourceBuildStrategyType, SourceStrategy: &buildv1.SourceBuildStrategy{
			From:        corev1.ObjectReference{Kind: "DockerImage", Name: s.From},
			Env:         s.Env,
			Scripts:     s.ScriptsURL,
			Incremental: boolPtr(s.Incremental),
			ForcePull:   s.ForcePull,
			PullSecret:  pull,
		}}
	default:
		ds := &buildv1.DockerBuildStrategy{
			DockerfilePath: s.Dockerfile,
			Env:            s.Env,
			BuildArgs:      s.BuildArgs,
			NoCache:        s.NoCache,
			ForcePull:      s.ForcePull,
			PullSecret:     pull,
		}
		if s.From != "" {
			ds.From = &corev1.ObjectReference{Kind: "DockerImage", Name: s.From}
		}
		cs.Strategy = buildv1.BuildStrategy{Type: buildv1.DockerBuildStrategyType, DockerStrategy: ds}
	}
	cs.Output = buildv1.BuildOutput{
		// Always explicit: an empty kind makes OpenShift treat the name as an
		// ImageStreamTag and append ":latest".
		To:          &corev1.ObjectReference{Kind: "DockerImage", Name: s.Output},
		ImageLabels: s.ImageLabels,
	}
	if s.PushSecret != "" {
		cs.Output.PushSecret = &corev1.LocalObjectReference{Name: s.PushSecret}
	}
	if s.CompletionDeadlineSeconds > 0 {
		d := s.CompletionDeadlineSeconds
		cs.CompletionDeadlineSeconds = &d
	}
	return spec
}

func boolPtr(b bool) *bool { return &b }

// Lock is the start lock a run takes on the shared BuildConfig when it
// changes the spec: from that update until OpenShift has generated the
// run's Build from it, no other ocbuild run rewrites the spec. (A run that
// finds its spec in place writes nothing and takes no lock.) Holder
// identifies the run (the TaskRun uid); an empty Holder takes no lock. A
// lock older than TTL is taken over, so a run killed while holding it
// blocks others only briefly.
type Lock struct {
	Holder string
	TTL    time.Duration
}

// AnnotationStartLock holds "<holder> <expiry RFC 3339>" while a run starts.
const AnnotationStartLock = "ocbuild.io/start-lock"

// lockedError says another run holds the start lock until a time.
type lockedError struct {
	holder string
	until  time.Time
}

func (e *lockedError) Error() string {
	return fmt.Sprintf("BuildConfig is being started by %s (lock until %s)", e.holder, e.until.Format(time.RFC3339))
}

func heldBy(bc *buildv1.BuildConfig, now time.Time) (string, time.Time, bool) {
	v := bc.Annotations[AnnotationStartLock]
	holder, exp, ok := strings.Cut(v, " ")
	if !ok {
		return "", time.Time{}, false
	}
	until, err := time.Parse(time.RFC3339, exp)
	if err != nil || !now.Before(until) {
		return "", time.Time{}, false
	}
	return holder, until, true
}

// Apply creates the BuildConfig name from s, or updates its spec (keeping the
// object's other fields and its status), retrying on conflicts, and takes
// the start lock l in the same write. While another run holds the lock it
// waits (bounded by ctx and the lock's expiry). A BuildConfig that already
// has the spec is not written and no lock is taken (see Holds). It returns
// the BuildConfig as stored.
func Apply(ctx context.Context, c buildapi.BuildConfigInterface, name string, s Spec, o Owner, l Lock) (*buildv1.BuildConfig, error) {
	if l.TTL == 0 {
		l.TTL = time.Minute
	}
	backoff := wait.Backoff{Duration: 50 * time.Millisecond, Factor: 1.5, Jitter: 0.5, Steps: 1 << 30, Cap: time.Second}
	for {
		bc, err := apply(ctx, c, name, s, o, l)
		var locked *lockedError
		if !errors.As(err, &locked) {
			return bc, err
		}
		d := backoff.Step()
		if until := time.Until(locked.until); until < d {
			d = until + 10*time.Millisecond
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("waiting for the start lock on BuildConfig %s: %w", name, ctx.Err())
		}
	}
}

func apply(ctx context.Context, c buildapi.BuildConfigInterface, name string, s Spec, o Owner, l Lock) (*buildv1.BuildConfig, error) {
	want := Render(s)
	var out *buildv1.BuildConfig
	err := apiretry.OnConflict(func() error {
		now := time.Now()
		ann := annotations(o)
		if l.Holder != "" {
			ann[AnnotationStartLock] = l.Holder + " " + now.Add(l.TTL).UTC().Format(time.RFC3339)
		}
		cur, err := c.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			bc := &buildv1.BuildConfig{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: buildConfigLabels(o), Annotations: ann},
				Spec:       want,
			}
			out, err = c.Create(ctx, bc, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				// Another BuildRun created it first: take the update path.
				return apierrors.NewConflict(buildv1.Resource("buildconfigs"), name, err)
			}
			return callError("create", err)
		}
		if err != nil {
			return callError("get", err)
		}
		if cur.Labels[LabelManagedBy] != ManagedByValue {
			return &NotOwnedError{Name: name}
		}
		if unchanged(cur, want, o) {
			// Nothing to write, so no lock to take: a run holding it
			// wrote this very spec, and one about to change it cannot
			// make our start build its spec unnoticed (the driver checks
			// the build's spec and starts again).
			out = cur
			return nil
		}
		if holder, until, ok := heldBy(cur, now); ok && holder != l.Holder {
			return &lockedError{holder: holder, until: until}
		}
		upd := cur.DeepCopy()
		upd.Spec = want
		if upd.Labels == nil {
			upd.Labels = map[string]string{}
		}
		for k, v := range buildConfigLabels(o) {
			upd.Labels[k] = v
		}
		if upd.Annotations == nil {
			upd.Annotations = map[string]string{}
		}
		for k, v := range ann {
			upd.Annotations[k] = v
		}
		out, err = c.Update(ctx, upd, metav1.UpdateOptions{})
		return callError("update", err)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// unchanged reports whether cur already has the spec and the labels a run
// would write; the annotations (last writer, lock) do not count.
func unchanged(cur *buildv1.BuildConfig, want buildv1.BuildConfigSpec, o Owner) bool {
	for k, v := range buildConfigLabels(o) {
		if cur.Labels[k] != v {
			return false
		}
	}
	// Triggers are compared as the API stores them: an empty list is
	// omitted from the JSON and reads back as nil.
	sameTriggers := (len(cur.Spec.Triggers) == 0 && len(want.Triggers) == 0) || reflect.DeepEqual(cur.Spec.Triggers, want.Triggers)
	return Matches(cur.Spec.CommonSpec, want.CommonSpec) && sameTriggers && cur.Spec.RunPolicy == want.RunPolicy
}

// Holds reports whether holder holds the start lock on bc (as Apply
// returned it: Apply takes the lock only when it writes the spec).
func Holds(bc *buildv1.BuildConfig, holder string) bool {
	if bc == nil || holder == "" {
		return false
	}
	h, _, _ := strings.Cut(bc.Annotations[AnnotationStartLock], " ")
	return h == holder
}

// CallError names the API call (verb on buildconfigs) that failed, so a 403
// can name the missing permission.
type CallError struct {
	Verb string
	Err  error
}

func (e *CallError) Error() string { return e.Err.Error() }

func (e *CallError) Unwrap() error { return e.Err }

func callError(verb string, err error) error {
	if err == nil {
		return nil
	}
	return &CallError{Verb: verb, Err: err}
}

// NotOwnedError is returned by Apply for a BuildConfig ocbuild did not
// create (it lacks the managed-by label): ocbuild never rewrites those.
type NotOwnedError struct{ Name string }

func (e *NotOwnedError) Error() string {
	return fmt.Sprintf("BuildConfig %s exists and is not managed by ocbuild (no label %s=%s); ocbuild does not change it", e.Name, LabelManagedBy, ManagedByValue)
}

// Release drops the start lock if holder still holds it.
func Release(ctx context.Context, c buildapi.BuildConfigInterface, name, holder string) error {
	if holder == "" {
		return nil
	}
	return apiretry.OnConflict(func() error {
		cur, err := c.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !Holds(cur, holder) {
			return nil
		}
		upd := cur.DeepCopy()
		delete(upd.Annotations, AnnotationStartLock)
		_, err = c.Update(ctx, upd, metav1.UpdateOptions{})
		return err
	})
}

func buildConfigLabels(o Owner) map[string]string { return o.BuildConfigLabels() }

func annotations(o Owner) map[string]string {
	a := map[string]string{}
	if o.BuildRun != "" {
		a[AnnotationBuildRun] = o.BuildRun
	}
	return a
}

// Matches reports whether a Build's spec was generated from want: the fields
// ocbuild sets (output, strategy, source location) agree. Fields OpenShift
// rewrites at instantiation (binary source, revision, request env) are ignored.
func Matches(got, want buildv1.CommonSpec) bool {
	return fingerprint(got) == fingerprint(want)
}

// Fingerprint is a stable text form of the fields Matches compares; it is
// printed when a mismatch is detected.
func Fingerprint(cs buildv1.CommonSpec) string { return fingerprint(cs) }

func fingerprint(cs buildv1.CommonSpec) string {
	type view struct {
		Output   buildv1.BuildOutput
		Strategy buildv1.BuildStrategy
		Git      *buildv1.GitBuildSource
		Context  string
	}
	v := view{Output: cs.Output, Strategy: *cs.Strategy.DeepCopy(), Git: cs.Source.Git, Context: cs.Source.ContextDir}
	v.Strategy.Type = ""
	if v.Output.PushSecret != nil && v.Output.PushSecret.Name == "" {
		v.Output.PushSecret = nil
	}
	if d := v.Strategy.DockerStrategy; d != nil {
		d.Env = sortedEnv(d.Env)
		d.BuildArgs = sortedEnv(d.BuildArgs)
		if d.DockerfilePath == "Dockerfile" || d.DockerfilePath == "./Dockerfile" {
			d.DockerfilePath = ""
		}
	}
	if s := v.Strategy.SourceStrategy; s != nil {
		s.Env = sortedEnv(s.Env)
		if s.Incremental == nil {
			s.Incremental = boolPtr(false)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("unmarshalable: %v", err)
	}
	return string(b)
}

func sortedEnv(in []corev1.EnvVar) []corev1.EnvVar {
	if len(in) == 0 {
		return nil
	}
	out := append([]corev1.EnvVar(nil), in...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
