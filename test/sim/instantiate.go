package sim

// buildconfigs/instantiate and buildconfigs/instantiatebinary (§4).

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
)

const (
	manualTriggerMessage   = "Manually triggered"
	defaultServiceAccount  = "builder"
	instantiateConflictMax = 3 // retries of the lastVersion bump on conflict
	cancelPollDuration     = 30 * time.Second
	maxRequestBody         = 10 << 20
)

var buildConfigGR = schema.GroupResource{Group: Group, Resource: "buildconfigs"}

func (f *frontDoor) serveInstantiate(w http.ResponseWriter, r *http.Request, ns, name string) {
	user, ok := f.caller(w, r, "create", "buildconfigs", "instantiate", ns, name)
	if !ok {
		return
	}
	req, ok := readBuildRequest(w, r, ns)
	if !ok {
		return
	}
	// Build-strategy admission runs on the BuildRequest, for the caller.
	bc, err := f.builds.BuildV1().BuildConfigs(ns).Get(r.Context(), req.Name, metav1.GetOptions{})
	if err != nil {
		writeStatus(w, statusFrom(err))
		return
	}
	if st := checkStrategy(r.Context(), f.access, user, buildConfigGR, ns, req.Name, &bc.Spec.Strategy); st != nil {
		writeStatus(w, st)
		return
	}
	b, st := f.instantiate(r.Context(), ns, req)
	if st != nil {
		writeStatus(w, st)
		return
	}
	if st, drop := f.chaos.lostAnswer(); st != nil {
		f.logf("chaos: instantiate %s/%s created build %s, answer lost (%s)", ns, req.Name, b.Name, lostHow(drop))
		loseAnswer(w, st, drop)
		return
	}
	writeJSON(w, http.StatusCreated, b)
}

// readBuildRequest decodes the BuildRequest body of instantiate or clone
// and checks its namespace and name; on failure it has answered.
func readBuildRequest(w http.ResponseWriter, r *http.Request, ns string) (*buildv1.BuildRequest, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return nil, false
	}
	req := &buildv1.BuildRequest{}
	if err := json.Unmarshal(body, req); err != nil {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("the body of the request was in an unknown format: %v", err)))
		return nil, false
	}
	if req.Namespace != "" && req.Namespace != ns {
		writeStatus(w, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request"))
		return nil, false
	}
	req.Namespace = ns
	if req.Name == "" {
		writeStatus(w, apierrors.NewInvalid(schema.GroupKind{Group: Group, Kind: "BuildRequest"}, "",
			field.ErrorList{field.Required(field.NewPath("metadata", "name"), "")}))
		return nil, false
	}
	return req, true
}

// instantiate runs §4.1 from step 2 on: it bumps the BuildConfig's
// lastVersion, then creates Build <bc>-<n> with the admin (loopback) client.
func (f *frontDoor) instantiate(ctx context.Context, ns string, req *buildv1.BuildRequest) (*buildv1.Build, *apierrors.StatusError) {
	if len(req.TriggeredBy) == 0 {
		req.TriggeredBy = []buildv1.BuildTriggerCause{{Message: manualTriggerMessage}}
	}
	bcs := f.builds.BuildV1().BuildConfigs(ns)
	var b *buildv1.Build
	for attempt := 0; ; attempt++ {
		bc, err := bcs.Get(ctx, req.Name, metav1.GetOptions{})
		if err != nil {
			return nil, statusFrom(err)
		}
		if bc.Annotations[buildv1.BuildConfigPausedAnnotation] == "true" {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("can't instantiate from BuildConfig %s/%s: BuildConfig is paused", ns, bc.Name))
		}
		if req.LastVersion != nil && *req.LastVersion != bc.Status.LastVersion {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the LastVersion(%v) on build config %s/%s does not match the build request LastVersion(%d)",
				bc.Status.LastVersion, ns, bc.Name, *req.LastVersion))
		}
		if st := f.checkServiceAccount(ctx, ns, bc); st != nil {
			return nil, st
		}
		var st *apierrors.StatusError
		if b, st = generateBuild(bc, req); st != nil {
			return nil, st
		}
		// The generator resolves image stream references before it bumps
		// lastVersion; the BuildConfig keeps them.
		if f.streams != nil {
			if ref, err := f.streams.resolveBuildImages(ctx, ns, &b.Spec); err != nil {
				return nil, resolveError(ns, ref, err)
			}
		}
		bc.Status.LastVersion++
		_, err = bcs.Update(ctx, bc, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) && attempt < instantiateConflictMax {
			continue
		}
		if err != nil {
			return nil, statusFrom(err)
		}
		break
	}
	return f.createBuild(ctx, ns, b)
}

// createBuild defaults, validates and creates a build the generator made
// (instantiate or clone) and returns it as the API answers it.
func (f *frontDoor) createBuild(ctx context.Context, ns string, b *buildv1.Build) (*buildv1.Build, *apierrors.StatusError) {
	defaultBuild(b)
	if errs := validateBuild(b); len(errs) > 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Group: Group, Kind: "Build"}, b.Name, errs)
	}
	created, err := f.builds.BuildV1().Builds(ns).Create(ctx, b, metav1.CreateOptions{})
	if err != nil {
		return nil, statusFrom(err)
	}
	setBuildTypeMeta(created)
	return created, nil
}

func setBuildTypeMeta(b *buildv1.Build) {
	b.TypeMeta = metav1.TypeMeta{Kind: "Build", APIVersion: Group + "/v1"}
}

// checkServiceAccount looks up the build's service account (default
// builder) as the generator does for its push/pull secrets. The simulator
// creates builder where missing, as OpenShift does in every namespace.
func (f *frontDoor) checkServiceAccount(ctx context.Context, ns string, bc *buildv1.BuildConfig) *apierrors.StatusError {
	sa := bc.Spec.ServiceAccount
	if sa == "" {
		sa = defaultServiceAccount
	}
	_, err := f.kube.CoreV1().ServiceAccounts(ns).Get(ctx, sa, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && sa == defaultServiceAccount {
		_, err = f.kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("error getting push/pull secrets for service account %s/%s: %v", ns, sa, err))
	}
	return nil
}

// shortHash is an 8-hex-digit FNV-32a hash.
func shortHash(s string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return fmt.Sprintf("%08x", h.Sum32())
}

// buildName is <bc>-<n>, shortened with a hash beyond 253 characters.
func buildName(bc string, n int64) string {
	suffix := strconv.FormatInt(n, 10)
	name := bc + "-" + suffix
	if len(name) <= 253 {
		return name
	}
	return bc[:253-len(suffix)-10] + "-" + shortHash(bc) + "-" + suffix
}

// labelValue shortens a name to a valid label value (63 characters).
func labelValue(name string) string {
	if len(name) <= 63 {
		return name
	}
	return name[:54] + "-" + shortHash(name)
}

// buildPodName is the build's pod name (<build>-build, overridable by
// annotation).
func buildPodName(b *buildv1.Build) string {
	if n := b.Annotations[buildv1.BuildPodNameAnnotation]; n != "" {
		return n
	}
	name := b.Name + "-build"
	if len(name) > 253 {
		name = b.Name[:253-16] + "-" + shortHash(b.Name) + "-build"
	}
	return name
}

// mergeEnv is the generator's env override (§4.1 step 7): the entries of
// env named like an entry of add are removed, then all of add is appended
// ([KEEP, A=old, NEW] + [A=B] gives [KEEP, NEW, A=B]).
func mergeEnv(env, add []corev1.EnvVar) []corev1.EnvVar {
	names := make(map[string]bool, len(add))
	for _, e := range add {
		names[e.Name] = true
	}
	out := make([]corev1.EnvVar, 0, len(env)+len(add))
	for _, e := range env {
		if !names[e.Name] {
			out = append(out, e)
		}
	}
	return append(out, add...)
}

// mergeBuildArgs is the generator's build-args override: merged through a
// map, so the order is lost (sorted here).
func mergeBuildArgs(args, add []corev1.EnvVar) []corev1.EnvVar {
	byName := map[string]corev1.EnvVar{}
	for _, a := range args {
		byName[a.Name] = a
	}
	for _, a := range add {
		byName[a.Name] = a
	}
	var out []corev1.EnvVar
	for _, k := range slices.Sorted(maps.Keys(byName)) {
		out = append(out, byName[k])
	}
	return out
}

// setStrategyEnv replaces the strategy's env with mergeEnv of it and add.
func setStrategyEnv(st *buildv1.BuildStrategy, add []corev1.EnvVar) {
	switch {
	case st.DockerStrategy != nil:
		st.DockerStrategy.Env = mergeEnv(st.DockerStrategy.Env, add)
	case st.SourceStrategy != nil:
		st.SourceStrategy.Env = mergeEnv(st.SourceStrategy.Env, add)
	case st.CustomStrategy != nil:
		st.CustomStrategy.Env = mergeEnv(st.CustomStrategy.Env, add)
	case st.JenkinsPipelineStrategy != nil:
		st.JenkinsPipelineStrategy.Env = mergeEnv(st.JenkinsPipelineStrategy.Env, add)
	}
}

// generateBuild makes Build <bc>-<lastVersion+1> from bc and the request
// (§4.1 steps 6-9, §4.2). The BuildConfig is not modified.
func generateBuild(bc *buildv1.BuildConfig, req *buildv1.BuildRequest) (*buildv1.Build, *apierrors.StatusError) {
	n := bc.Status.LastVersion + 1
	t := true
	b := &buildv1.Build{
		TypeMeta: metav1.TypeMeta{Kind: "Build", APIVersion: Group + "/v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        buildName(bc.Name, n),
			Namespace:   bc.Namespace,
			Labels:      map[string]string{},
			Annotations: map[string]string{},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: Group + "/v1", Kind: "BuildConfig", Name: bc.Name, UID: bc.UID, Controller: &t,
			}},
		},
		Spec: buildv1.BuildSpec{
			CommonSpec:  *bc.Spec.CommonSpec.DeepCopy(),
			TriggeredBy: append([]buildv1.BuildTriggerCause(nil), req.TriggeredBy...),
		},
		Status: buildv1.BuildStatus{
			Phase:  buildv1.BuildPhaseNew,
			Config: &corev1.ObjectReference{Kind: "BuildConfig", Namespace: bc.Namespace, Name: bc.Name},
		},
	}
	for k, v := range bc.Labels {
		b.Labels[k] = v
	}
	// Request labels and annotations merge in; system keys win.
	for k, v := range req.Labels {
		b.Labels[k] = v
	}
	for k, v := range req.Annotations {
		b.Annotations[k] = v
	}
	b.Labels[buildv1.BuildConfigLabel] = labelValue(bc.Name)
	b.Labels[buildv1.BuildConfigLabelDeprecated] = labelValue(bc.Name)
	b.Labels[buildv1.BuildRunPolicyLabel] = string(bc.Spec.RunPolicy)
	b.Annotations[buildv1.BuildConfigAnnotation] = bc.Name
	b.Annotations[buildv1.BuildNumberAnnotation] = strconv.FormatInt(n, 10)

	spec := &b.Spec
	if spec.ServiceAccount == "" {
		spec.ServiceAccount = defaultServiceAccount
	}
	st := &spec.Strategy
	if len(req.Env) > 0 {
		setStrategyEnv(st, req.Env)
	}
	if o := req.DockerStrategyOptions; o != nil && (len(o.BuildArgs) > 0 || o.NoCache != nil) {
		if st.DockerStrategy == nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("Cannot specify Docker build specific options on %s/%s, not a Docker build.", bc.Namespace, bc.Name))
		}
		if len(o.BuildArgs) > 0 {
			st.DockerStrategy.BuildArgs = mergeBuildArgs(st.DockerStrategy.BuildArgs, o.BuildArgs)
		}
		if o.NoCache != nil {
			st.DockerStrategy.NoCache = *o.NoCache
		}
	}
	if o := req.SourceStrategyOptions; o != nil && o.Incremental != nil {
		if st.SourceStrategy == nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("Cannot specify Source build specific options on %s/%s, not a Source build.", bc.Namespace, bc.Name))
		}
		inc := *o.Incremental
		st.SourceStrategy.Incremental = &inc
	}
	if req.From != nil {
		from := *req.From
		switch {
		case st.DockerStrategy != nil:
			st.DockerStrategy.From = &from
		case st.SourceStrategy != nil:
			st.SourceStrategy.From = from
		case st.CustomStrategy != nil:
			st.CustomStrategy.From = from
		}
	}
	if req.Revision != nil {
		spec.Revision = req.Revision.DeepCopy()
	}
	if req.Binary != nil {
		spec.Source.Binary = req.Binary.DeepCopy()
		spec.Source.Git = nil
		if req.Binary.AsFile == "Dockerfile" {
			spec.Source.Dockerfile = nil
		}
	} else {
		spec.Source.Binary = nil // a Binary BuildConfig instantiated without binary loses it
	}
	spec.Source.Type = "" // derived again from the source set
	return b, nil
}

// ---------------------------------------------------------------------------
// instantiatebinary (§4.3)

func (f *frontDoor) serveInstantiateBinary(w http.ResponseWriter, r *http.Request, ns, name string) {
	// No build-strategy check: this is a Connect request.
	if _, ok := f.caller(w, r, "create", "buildconfigs", "instantiatebinary", ns, name); !ok {
		return
	}
	q := r.URL.Query()
	asFile := q.Get("asFile")
	req := &buildv1.BuildRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Binary:     &buildv1.BinaryBuildSource{AsFile: asFile},
	}
	if commit := q.Get("revision.commit"); commit != "" {
		req.Revision = &buildv1.SourceRevision{
			Type: buildv1.BuildSourceGit,
			Git: &buildv1.GitSourceRevision{
				Commit:    commit,
				Message:   q.Get("revision.message"),
				Author:    buildv1.SourceControlUser{Name: q.Get("revision.authorName"), Email: q.Get("revision.authorEmail")},
				Committer: buildv1.SourceControlUser{Name: q.Get("revision.committerName"), Email: q.Get("revision.committerEmail")},
			},
		}
	}
	// One budget covers instantiating and waiting for Running. Neither the
	// wait nor the stream below takes the request's context (§4.3 step 7):
	// a client that gives up is not noticed; the build is waited for, gets
	// the part of the body that had arrived, and runs on.
	base := f.baseContext()
	budget, cancel := context.WithTimeout(base, f.binaryTimeout)
	defer cancel()
	b, st := f.instantiate(budget, ns, req)
	if st != nil {
		writeStatus(w, st)
		return
	}
	delivered, ended := false, false
	defer func() {
		if !delivered && !ended {
			f.autoCancel(ns, b.Name)
		}
	}()
	running, deleted, err := f.waitForStart(budget, ns, b.Name)
	switch {
	case deleted:
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("build %s was deleted before it started: No logs are available.", b.Name)))
		ended = true
		return
	case err != nil:
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("unable to wait for build %s to run: %v", b.Name, waitErrText(err))))
		return
	}
	switch running.Status.Phase {
	case buildv1.BuildPhaseRunning:
	case buildv1.BuildPhaseError:
		ended = true
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("build %s encountered an error: No logs are available.", b.Name)))
		return
	case buildv1.BuildPhaseFailed:
		ended = true
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("build %s failed: %s: %s", b.Name, running.Status.Reason, running.Status.Message)))
		return
	case buildv1.BuildPhaseCancelled:
		ended = true
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("build %s was cancelled: No logs are available.", b.Name)))
		return
	default:
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("cannot upload file to build %s with status %s", b.Name, running.Status.Phase)))
		return
	}
	// Only now is the body read. A read error (the client went away, the
	// connection broke) ends the input, as it ends the attach stream's
	// stdin: the builder unpacks what it received.
	body := &endAtError{r: r.Body}
	err = f.sources.Deliver(base, Key{Namespace: ns, Name: b.Name}, asFile, body)
	if body.err != nil {
		f.logf("instantiatebinary %s/%s: the request body ended after %d bytes with %v; the build got that much", ns, b.Name, body.n, body.err)
	}
	if err != nil {
		// The executor fails a build whose upload it cannot extract: give it
		// a moment, so the build keeps that outcome instead of a cancel.
		if fb := f.awaitEnd(ns, b.Name, f.deliverFailGrace); fb != nil && selfEnded(fb.Status.Phase) {
			ended = true
		}
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	delivered = true
	if st, drop := f.chaos.lostAnswer(); st != nil {
		// The build runs on with its source; only the answer is lost.
		f.logf("chaos: instantiatebinary %s/%s: build %s running with its source, answer lost (%s)", ns, name, b.Name, lostHow(drop))
		loseAnswer(w, st, drop)
		return
	}
	setBuildTypeMeta(running)
	writeJSON(w, http.StatusCreated, running)
}

// endAtError reads a request body and turns the first read error into the
// end of input, remembering it.
type endAtError struct {
	r   io.Reader
	n   int64
	err error
}

func (e *endAtError) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, io.EOF
	}
	n, err := e.r.Read(p)
	e.n += int64(n)
	if err != nil && err != io.EOF {
		e.err = err
		err = io.EOF
	}
	return n, err
}

// waitErrText is the wait error as OpenShift words a timeout.
func waitErrText(err error) string {
	if wait.Interrupted(err) {
		return "timed out waiting for the condition"
	}
	return err.Error()
}

// selfEnded: phases in which instantiatebinary does not auto-cancel.
func selfEnded(p buildv1.BuildPhase) bool {
	return p == buildv1.BuildPhaseError || p == buildv1.BuildPhaseFailed || p == buildv1.BuildPhaseCancelled
}

// waitForStart waits until build name leaves New and Pending (Get, then
// Watch by metadata.name, re-watching on errors). It returns the build, or
// deleted, or ctx's error.
func (f *frontDoor) waitForStart(ctx context.Context, ns, name string) (*buildv1.Build, bool, error) {
	return f.waitFor(ctx, ns, name, func(b *buildv1.Build) bool {
		return b.Status.Phase != buildv1.BuildPhaseNew && b.Status.Phase != buildv1.BuildPhasePending && b.Status.Phase != ""
	})
}

func (f *frontDoor) waitFor(ctx context.Context, ns, name string, done func(*buildv1.Build) bool) (*buildv1.Build, bool, error) {
	builds := f.builds.BuildV1().Builds(ns)
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	for {
		b, err := builds.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil, true, nil
		case err != nil:
			if ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			if !sleepCtx(ctx, 200*time.Millisecond) {
				return nil, false, ctx.Err()
			}
			continue
		case done(b):
			return b, false, nil
		}
		w, err := builds.Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: b.ResourceVersion})
		if err != nil {
			if !sleepCtx(ctx, 200*time.Millisecond) {
				return nil, false, ctx.Err()
			}
			continue
		}
		got, deleted, stop := watchUntil(ctx, w, name, done)
		w.Stop()
		if stop {
			return got, deleted, nil
		}
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
	}
}

// watchUntil reads events for name until done, a deletion, the watch ends
// (stop=false: re-list) or ctx ends (stop=false).
func watchUntil(ctx context.Context, w watch.Interface, name string, done func(*buildv1.Build) bool) (b *buildv1.Build, deleted, stop bool) {
	for {
		select {
		case <-ctx.Done():
			return nil, false, false
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, false, false
			}
			switch ev.Type {
			case watch.Error:
				return nil, false, false
			case watch.Deleted:
				if b, ok := ev.Object.(*buildv1.Build); ok && b.Name == name {
					return nil, true, true
				}
			case watch.Added, watch.Modified:
				if b, ok := ev.Object.(*buildv1.Build); ok && b.Name == name && done(b) {
					return b, false, true
				}
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// awaitEnd waits up to d for the build to reach a terminal phase and
// returns it (nil if it did not).
func (f *frontDoor) awaitEnd(ns, name string, d time.Duration) *buildv1.Build {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	b, _, err := f.waitFor(ctx, ns, name, func(b *buildv1.Build) bool { return terminalPhase(b.Status.Phase) })
	if err != nil {
		return nil
	}
	return b
}

// autoCancel sets status.cancelled on a build whose binary upload did not
// happen, retrying conflicts for up to 30 s, unless the build reached
// Error, Failed or Cancelled by itself.
func (f *frontDoor) autoCancel(ns, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), cancelPollDuration)
	defer cancel()
	builds := f.builds.BuildV1().Builds(ns)
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, cancelPollDuration, true, func(ctx context.Context) (bool, error) {
		b, err := builds.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, nil
		}
		if selfEnded(b.Status.Phase) || b.Status.Cancelled {
			return true, nil
		}
		b.Status.Cancelled = true
		_, err = builds.Update(ctx, b, metav1.UpdateOptions{})
		if err == nil || apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		f.logf("auto-cancel of build %s/%s failed: %v", ns, name, err)
	}
}
