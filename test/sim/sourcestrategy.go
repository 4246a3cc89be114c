package sim

// The Source (S2I) strategy, as OpenShift's builder runs it: source-to-image
// writes a Dockerfile ("as-dockerfile", package s2i) from the builder image's
// labels, the source's .s2i directory and the build's environment, and
// buildah builds it, so assemble really runs. An incremental build first
// checks that the previous output image exists and has save-artifacts;
// otherwise it logs OpenShift's "Clean build will be performed" warning.

import (
	"context"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"

	buildv1 "github.com/openshift/api/build/v1"

	"github.com/ocbuild/ocbuild/test/sim/s2i"
)

func (e *executor) sourceBuild(ctx context.Context, bh *buildah, ctxDir string, env []kv) outcome {
	ss := e.b.Spec.Strategy.SourceStrategy
	builderRef := ss.From.Name
	if o, ok := e.pullBases(ctx, bh, []string{builderRef}); !ok {
		return o
	}
	bi, err := bh.inspect(ctx, builderRef)
	if err != nil {
		return e.stepFailure(ctx, buildv1.StatusReasonGenericBuildFailed, err)
	}

	var previous string
	if out := e.outputImage(); ss.Incremental != nil && *ss.Incremental && out != "" {
		previous = e.previousWithArtifacts(ctx, bh, out, ss.Scripts, ctxDir)
		if ctx.Err() != nil {
			return outcome{}
		}
	}

	infoEnv, buildLabels := e.buildInfo()
	labels := []s2i.KV{}
	for _, l := range buildLabels {
		labels = append(labels, s2i.KV{Name: l.K, Value: l.V})
		if strings.HasPrefix(l.K, "io.openshift.build.commit.") || l.K == "io.openshift.build.source-location" || l.K == "io.openshift.build.source-context-dir" {
			labels = append(labels, s2i.KV{Name: "io.openshift.s2i.build." + strings.TrimPrefix(l.K, "io.openshift.build."), Value: l.V})
		}
	}
	if out := e.outputImage(); out != "" {
		labels = append(labels, s2i.KV{Name: "io.k8s.display-name", Value: out})
	}
	for _, l := range e.imageLabels() {
		labels = append(labels, s2i.KV{Name: l.K, Value: l.V})
	}
	var buildEnv []s2i.KV
	for _, v := range append(append([]kv(nil), infoEnv...), env...) {
		buildEnv = append(buildEnv, s2i.KV{Name: v.K, Value: v.V})
	}

	out := filepath.Join(e.work, "s2i")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return e.stepFailure(ctx, buildv1.StatusReasonGenericBuildFailed, err)
	}
	e.log("Generating dockerfile with builder image " + builderRef)
	res, err := s2i.Generate(ctx, s2i.Request{
		Builder: s2i.Builder{Image: builderRef, Labels: bi.OCIv1.Config.Labels, User: bi.OCIv1.Config.User,
			Env: bi.OCIv1.Config.Env},
		SourceDir:     ctxDir,
		ScriptsURL:    ss.Scripts,
		Env:           buildEnv,
		Labels:        labels,
		PreviousImage: previous,
	}, out)
	if err != nil {
		if ctx.Err() != nil {
			return outcome{}
		}
		e.logf("error: build error: %v", err)
		var se *s2i.Error
		if errors.As(err, &se) && se.Reason != "" {
			o := failed(buildv1.StatusReason(se.Reason))
			if se.Message != "" {
				o.message = se.Message
			}
			return o
		}
		return failed(buildv1.StatusReasonGenericBuildFailed)
	}
	for _, w := range res.Warnings {
		e.log(w)
	}
	if hook := postCommitCommand(e.b.Spec.PostCommit); hook != "" {
		df, err := os.ReadFile(res.Dockerfile)
		if err == nil {
			err = os.WriteFile(res.Dockerfile, appendPostCommit(df, hook, nil), 0o644)
		}
		if err != nil {
			return e.stepFailure(ctx, buildv1.StatusReasonGenericBuildFailed, err)
		}
	}
	// OpenShift's builder reports a failed S2I build (assemble) as
	// GenericBuildFailed.
	return e.budAndPush(ctx, bh, res.Dockerfile, out, nil, buildv1.StatusReasonGenericBuildFailed)
}

// previousWithArtifacts returns image when it exists and has a save-artifacts
// script (where the generated Dockerfile's cached stage runs it from, or the
// source's .s2i/bin/save-artifacts); else it logs why the build is a clean
// one and returns "".
func (e *executor) previousWithArtifacts(ctx context.Context, bh *buildah, image, scriptsURL, ctxDir string) string {
	quiet := bh.quiet()
	if err := quiet.pull(ctx, image); err != nil {
		e.logf("Clean build will be performed because the previous image %s could not be pulled", image)
		return ""
	}
	restoring := func() string {
		e.logf("Restoring artifacts from the previous image %s (incremental build)", image)
		return image
	}
	if fi, err := os.Stat(filepath.Join(ctxDir, ".s2i", "bin", "save-artifacts")); err == nil && !fi.IsDir() {
		return restoring()
	}
	pi, err := quiet.inspect(ctx, image)
	if err != nil {
		e.logf("Clean build will be performed because the previous image %s cannot be inspected", image)
		return ""
	}
	script := path.Join(s2i.ImageScriptsDir(scriptsURL, pi.OCIv1.Config.Labels), s2i.SaveArtifacts)
	var name strings.Builder
	if err := quiet.run(ctx, &name, "from", "--pull=false", image); err != nil {
		return ""
	}
	ctr := strings.TrimSpace(name.String())
	defer func() { _ = quiet.run(context.Background(), nil, "rm", ctr) }()
	var mnt strings.Builder
	if err := quiet.run(ctx, &mnt, "mount", ctr); err != nil {
		return ""
	}
	if _, err := os.Lstat(filepath.Join(strings.TrimSpace(mnt.String()), script)); err != nil {
		e.logf("Clean build will be performed because %s was not found in the previous image %s", script, image)
		return ""
	}
	return restoring()
}
