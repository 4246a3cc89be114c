package driver

// What the API said, in the run's terms: a failure with a named reason, the
// permission a 403 lacks, and the TaskRun handed the build so deleting the
// BuildRun deletes it.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	buildv1 "github.com/openshift/api/build/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ocbuild/ocbuild/pkg/apiretry"
	"github.com/ocbuild/ocbuild/pkg/buildconfig"
	"github.com/ocbuild/ocbuild/pkg/cancellation"
	"github.com/ocbuild/ocbuild/pkg/failure"
	"github.com/ocbuild/ocbuild/pkg/permissions"
)

// startFailure classifies an error from instantiate or instantiatebinary.
func (d *Driver) startFailure(err error, p permissions.Permission, o Options) *failure.Error {
	msg := err.Error()
	switch {
	case apierrors.IsNotFound(err) && strings.Contains(msg, "imagestreamtag"):
		return failure.Wrap(failure.BuilderImageNotFound, err, "the builder image of BuildConfig %s does not exist", o.BuildConfig)
	case apierrors.IsBadRequest(err) && strings.Contains(msg, "is paused"):
		return failure.Wrap(failure.BuildConfigPaused, err, "BuildConfig %s is paused", o.BuildConfig)
	}
	return d.apiFailure(err, p, o)
}

func (d *Driver) apiFailure(err error, p permissions.Permission, o Options) *failure.Error {
	who := ""
	if o.Owner.TaskRun != "" {
		who = "the TaskRun's service account"
	}
	f := failure.FromAPI(err, p, o.Namespace, who)
	if f.Reason == failure.BuildConfigNotFound {
		f.Message = fmt.Sprintf("BuildConfig %s not found in namespace %s: create it, or check the buildconfig parameter", o.BuildConfig, o.Namespace)
	}
	return f
}

// claim links the build to the TaskRun: labels for people and selectors, and
// the TaskRun as its only owner so deleting the BuildRun deletes the build.
// (Kubernetes collects an object only when all its owners are gone, so the
// BuildConfig's ownerReference is replaced.) It returns the build as the
// patch left it, the state the watch starts from, or b when no patch took.
func (d *Driver) claim(ctx context.Context, o Options, b *buildv1.Build) *buildv1.Build {
	meta := map[string]any{"labels": o.Owner.Labels()}
	if o.Owner.TaskRunUID != "" {
		meta["annotations"] = map[string]string{buildconfig.AnnotationTaskRunUID: o.Owner.TaskRunUID}
		meta["ownerReferences"] = []metav1.OwnerReference{{
			APIVersion: "tekton.dev/v1", Kind: "TaskRun", Name: o.Owner.TaskRun, UID: types.UID(o.Owner.TaskRunUID),
		}}
	}
	patched, err := d.patchMeta(ctx, o, b.Name, meta)
	if err == nil {
		return patched
	}
	if ctx.Err() != nil {
		return b
	}
	hint := ""
	if _, owned := meta["ownerReferences"]; owned && apierrors.IsForbidden(err) {
		// OwnerReferencesPermissionEnforcement refuses the whole patch:
		// keep at least the labels and annotation people select by.
		hint = fmt.Sprintf("; setting ownerReferences needs %s: apply strategies/rbac", permissions.DeleteBuild)
		delete(meta, "ownerReferences")
		if p, lerr := d.patchMeta(ctx, o, b.Name, meta); lerr != nil && ctx.Err() == nil {
			d.logf("warning: cannot label build %s either (%v)", b.Name, lerr)
		} else if lerr == nil {
			b = p
		}
	}
	d.logf("warning: cannot link build %s to TaskRun %s (%v)%s; deleting the BuildRun will not delete it", b.Name, o.Owner.TaskRun, err, hint)
	return b
}

// patchMeta merge-patches the build's metadata, retrying transient errors.
func (d *Driver) patchMeta(ctx context.Context, o Options, name string, meta map[string]any) (*buildv1.Build, error) {
	patch, _ := json.Marshal(map[string]any{"metadata": meta})
	var out *buildv1.Build
	err := apiretry.OnError(apiRetry, cancellation.Retryable, func() error {
		var err error
		out, err = d.Clients.Builds.Builds(o.Namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
	if err == nil && out == nil {
		err = fmt.Errorf("patching build %s returned no build", name)
	}
	return out, err
}
