package sim

import (
	"context"
	"strings"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
)

// customBuild is the Custom strategy. OpenShift runs the builder image as
// the build pod, which builds and pushes what it likes; the sandbox cannot
// stand in for an arbitrary builder, so it commits the builder image with
// the source under /tmp/src and the build's environment and labels, and
// pushes that (test/sandbox/README.md lists the difference).
func (e *executor) customBuild(ctx context.Context, bh *buildah, ctxDir string, env []kv) outcome {
	cs := e.b.Spec.Strategy.CustomStrategy
	if o, ok := e.pullBases(ctx, bh, []string{cs.From.Name}); !ok {
		return o
	}
	e.logf("Custom build strategy: the sandbox does not run the builder image %s; it adds the source under /tmp/src and pushes the result", cs.From.Name)
	start := time.Now()
	var out strings.Builder
	if err := bh.run(ctx, &out, "from", "--pull=false", "--name", "custom-build", cs.From.Name); err != nil {
		return e.stepFailure(ctx, buildv1.StatusReasonGenericBuildFailed, err)
	}
	infoEnv, labels := e.buildInfo()
	config := []string{"config"}
	for _, v := range append(infoEnv, env...) {
		config = append(config, "--env", v.K+"="+v.V)
	}
	for _, l := range append(labels, e.imageLabels()...) {
		config = append(config, "--label", l.K+"="+l.V)
	}
	steps := [][]string{
		{"copy", "--chown", "0:0", "custom-build", ctxDir + "/.", "/tmp/src"},
		append(config, "custom-build"),
		{"commit", "--format", "docker", "custom-build", e.tag},
	}
	for _, args := range steps {
		if err := bh.run(ctx, nil, args...); err != nil {
			return e.stepFailure(ctx, buildv1.StatusReasonGenericBuildFailed, err)
		}
	}
	e.stage(buildv1.StageBuild, buildv1.StepDockerBuild, start)
	return e.pushOutput(ctx, bh)
}

// stepFailure is the outcome of a builder step that failed with err: the
// build fails with reason, unless the build was stopped (no outcome).
func (e *executor) stepFailure(ctx context.Context, reason buildv1.StatusReason, err error) outcome {
	if ctx.Err() != nil {
		return outcome{}
	}
	e.logf("error: build error: %v", err)
	return failed(reason)
}
