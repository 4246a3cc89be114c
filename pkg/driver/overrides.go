package driver

// Overrides a ModeStart run carries in its BuildRequest, checked against the
// existing BuildConfig with OpenShift's own messages before anything starts.

import (
	buildv1 "github.com/openshift/api/build/v1"

	"github.com/ocbuild/ocbuild/pkg/failure"
)

// CheckOverrides rejects overrides the BuildConfig's strategy cannot take,
// with the messages OpenShift would give, before anything is started.
func CheckOverrides(bc *buildv1.BuildConfig, o Options) *failure.Error {
	st := bc.Spec.Strategy
	usage := func(flag, format string, args ...any) *failure.Error {
		u := failure.NewUsage("--%s: "+format, append([]any{flag}, args...)...)
		return u.Failure
	}
	if (len(o.BuildArgs) > 0 || o.NoCache != nil && *o.NoCache) && st.DockerStrategy == nil {
		flag := "build-arg"
		if len(o.BuildArgs) == 0 {
			flag = "no-cache"
		}
		return usage(flag, "Cannot specify Docker build specific options on %s/%s, not a Docker build", o.Namespace, bc.Name)
	}
	if o.Incremental != nil && *o.Incremental && st.SourceStrategy == nil {
		return usage("incremental", "Cannot specify Source build specific options on %s/%s, not a Source build", o.Namespace, bc.Name)
	}
	if bc.Spec.Source.Binary != nil {
		if o.SourceDir == "" {
			return usage("source-dir", "BuildConfig %s has a Binary source: pass the directory to upload", bc.Name)
		}
		if len(o.Env) > 0 || len(o.BuildArgs) > 0 {
			return usage("env", "a binary build request carries no env or build args; set them on BuildConfig %s instead", bc.Name)
		}
	}
	if bc.Annotations[buildv1.BuildConfigPausedAnnotation] == "true" {
		return failure.New(failure.BuildConfigPaused, "BuildConfig %s/%s is paused (annotation %s): unpause it to run builds",
			o.Namespace, bc.Name, buildv1.BuildConfigPausedAnnotation)
	}
	return nil
}
