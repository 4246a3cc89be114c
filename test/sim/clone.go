package sim

// builds/clone: a new build with the spec of an existing one, as
// openshift-apiserver's generator makes it (`oc start-build --from-build`,
// `oc cancel-build --restart`).

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var buildGR = schema.GroupResource{Group: Group, Resource: "builds"}

// Annotations a clone does not inherit: they describe the original's pod
// and its Jenkins run.
var notCloned = []string{
	buildv1.BuildPodNameAnnotation,
	buildv1.BuildJenkinsStatusJSONAnnotation,
	buildv1.BuildJenkinsLogURLAnnotation,
	buildv1.BuildJenkinsConsoleLogURLAnnotation,
	buildv1.BuildJenkinsBlueOceanLogURLAnnotation,
	buildv1.BuildJenkinsBuildURIAnnotation,
}

func (f *frontDoor) serveClone(w http.ResponseWriter, r *http.Request, ns, name string) {
	user, ok := f.caller(w, r, "create", "builds", "clone", ns, name)
	if !ok {
		return
	}
	req, ok := readBuildRequest(w, r, ns)
	if !ok {
		return
	}
	// As for instantiate, the body's name selects the build.
	orig, err := f.builds.BuildV1().Builds(ns).Get(r.Context(), req.Name, metav1.GetOptions{})
	if err != nil {
		writeStatus(w, statusFrom(err))
		return
	}
	if st := checkStrategy(r.Context(), f.access, user, buildGR, ns, req.Name, &orig.Spec.Strategy); st != nil {
		writeStatus(w, st)
		return
	}
	b, st := f.clone(r.Context(), ns, req)
	if st != nil {
		writeStatus(w, st)
		return
	}
	writeJSON(w, http.StatusCreated, b)
}

// clone makes the new build; with a BuildConfig it is <bc>-<lastVersion+1>
// and the BuildConfig's lastVersion is bumped first, as for instantiate.
func (f *frontDoor) clone(ctx context.Context, ns string, req *buildv1.BuildRequest) (*buildv1.Build, *apierrors.StatusError) {
	bcs := f.builds.BuildV1().BuildConfigs(ns)
	var b *buildv1.Build
	for attempt := 0; ; attempt++ {
		orig, err := f.builds.BuildV1().Builds(ns).Get(ctx, req.Name, metav1.GetOptions{})
		if err != nil {
			return nil, statusFrom(err)
		}
		var bc *buildv1.BuildConfig
		if orig.Status.Config != nil {
			bc, err = bcs.Get(ctx, orig.Status.Config.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				bc = nil
			case err != nil:
				return nil, statusFrom(err)
			case strings.EqualFold(bc.Annotations[buildv1.BuildConfigPausedAnnotation], "true"):
				return nil, apierrors.NewInternalError(fmt.Errorf("can't instantiate from BuildConfig %s/%s: BuildConfig is paused", ns, bc.Name))
			}
		}
		var st *apierrors.StatusError
		if b, st = cloneBuild(orig, bc, req, time.Now()); st != nil {
			return nil, st
		}
		if bc == nil {
			break
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

// timestampSuffix is the suffix a clone without a BuildConfig gets (and
// loses again when cloned).
var timestampSuffix = regexp.MustCompile(`^.+-\d{10}$`)

// cloneBuild is the generator's copy of orig: its spec (without a binary
// source: the upload cannot be replayed), labels, annotations and owners,
// phase New, the request's triggers, env and build args. bc is orig's
// BuildConfig if it still exists; it is not modified.
func cloneBuild(orig *buildv1.Build, bc *buildv1.BuildConfig, req *buildv1.BuildRequest, now time.Time) (*buildv1.Build, *apierrors.StatusError) {
	c := orig.DeepCopy()
	b := &buildv1.Build{
		TypeMeta: metav1.TypeMeta{Kind: "Build", APIVersion: Group + "/v1"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       orig.Namespace,
			Labels:          c.Labels,
			Annotations:     c.Annotations,
			OwnerReferences: c.OwnerReferences,
		},
		Spec:   c.Spec,
		Status: buildv1.BuildStatus{Phase: buildv1.BuildPhaseNew, Config: c.Status.Config},
	}
	b.Spec.Source.Type = ""
	b.Spec.Source.Binary = nil
	b.Spec.TriggeredBy = append([]buildv1.BuildTriggerCause(nil), req.TriggeredBy...)
	if b.Annotations == nil {
		b.Annotations = map[string]string{}
	}
	b.Annotations[buildv1.BuildCloneAnnotation] = orig.Name
	for _, k := range notCloned {
		delete(b.Annotations, k)
	}
	if bc != nil {
		n := bc.Status.LastVersion + 1
		b.Name = buildName(bc.Name, n)
		b.Annotations[buildv1.BuildNumberAnnotation] = strconv.FormatInt(n, 10)
	} else {
		base := orig.Name
		if timestampSuffix.MatchString(base) {
			base = base[:strings.LastIndexByte(base, '-')]
		}
		suffix := strconv.FormatInt(now.UnixNano(), 10)
		b.Name = base + "-" + suffix[len(suffix)-10:]
		delete(b.Annotations, buildv1.BuildNumberAnnotation)
	}
	if len(req.Env) > 0 {
		setStrategyEnv(&b.Spec.Strategy, req.Env)
	}
	if o := req.DockerStrategyOptions; o != nil && len(o.BuildArgs) > 0 {
		if b.Spec.Strategy.DockerStrategy == nil {
			cfg := orig.Name
			if orig.Status.Config != nil {
				cfg = orig.Status.Config.Name
			}
			return nil, apierrors.NewBadRequest(fmt.Sprintf("Cannot specify build args on %s/%s, not a Docker build.", orig.Namespace, cfg))
		}
		b.Spec.Strategy.DockerStrategy.BuildArgs = mergeBuildArgs(b.Spec.Strategy.DockerStrategy.BuildArgs, o.BuildArgs)
	}
	return b, nil
}
