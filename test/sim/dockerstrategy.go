package sim

// The Docker strategy, as OpenShift's builder runs it: the Dockerfile is
// edited (the strategy's from replaces the last FROM, the strategy env is
// inserted after every FROM, the build info is appended as one ENV and the
// build labels as one LABEL), the base images are pulled, and buildah builds
// and pushes. buildah's output is the build log.

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
)

type kv struct{ K, V string }

// quotedPairs renders pairs as OpenShift writes them into a Dockerfile.
func quotedPairs(pairs []kv) string {
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Quote(p.K) + "=" + strconv.Quote(p.V))
	}
	return b.String()
}

// buildFailure is an error that fails the build with a given reason.
type buildFailure struct {
	Reason  buildv1.StatusReason
	Message string // empty: the canonical message of Reason
	Err     error
}

func (f *buildFailure) Error() string { return f.Err.Error() }
func (f *buildFailure) Unwrap() error { return f.Err }

func failWith(reason buildv1.StatusReason, err error) error {
	return &buildFailure{Reason: reason, Err: err}
}

var (
	directiveRE = regexp.MustCompile(`^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`)
	heredocRE   = regexp.MustCompile(`<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)(["']?)`)
	argRefRE    = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)
)

// dfInstruction is one instruction of a Dockerfile: its keyword, its
// arguments (continuations joined) and the raw lines it spans.
type dfInstruction struct {
	Cmd  string
	Args string
	Raw  []string
	Lead int // Raw's leading comment and blank lines
}

// splitDockerfile splits a Dockerfile into its leading lines (parser
// directives, comments) and instructions, each with the comments and blank
// lines before it in Raw. It knows line continuations (and the escape
// directive) and heredocs; buildah parses the rest.
func splitDockerfile(data []byte) (head []string, insts []dfInstruction) {
	escape := `\`
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	i := 0
	for ; i < len(lines); i++ {
		m := directiveRE.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			break
		}
		if strings.EqualFold(m[1], "escape") {
			escape = m[2]
		}
		head = append(head, lines[i])
	}
	blank := func(s string) bool {
		t := strings.TrimSpace(s)
		return t == "" || strings.HasPrefix(t, "#")
	}
	var pending []string
	for ; i < len(lines); i++ {
		if blank(lines[i]) {
			pending = append(pending, lines[i])
			continue
		}
		lead := len(pending)
		raw := append(pending, lines[i])
		pending = nil
		cur := strings.TrimSpace(lines[i])
		for strings.HasSuffix(cur, escape) && i+1 < len(lines) {
			cur = strings.TrimSuffix(cur, escape)
			for i++; i < len(lines); i++ {
				raw = append(raw, lines[i])
				if !blank(lines[i]) {
					cur += strings.TrimSpace(lines[i])
					break
				}
			}
		}
		kw, rest, _ := strings.Cut(strings.Replace(cur, "\t", " ", 1), " ")
		in := dfInstruction{Cmd: strings.ToUpper(kw), Args: strings.TrimSpace(rest), Lead: lead}
		if in.Cmd == "RUN" || in.Cmd == "COPY" || in.Cmd == "ADD" {
			for _, m := range heredocRE.FindAllStringSubmatch(in.Args, -1) {
				for i++; i < len(lines); i++ {
					raw = append(raw, lines[i])
					l := lines[i]
					if m[1] == "-" {
						l = strings.TrimLeft(l, "\t")
					}
					if l == m[3] {
						break
					}
				}
			}
		}
		in.Raw = raw
		insts = append(insts, in)
	}
	return append(head, pending...), insts
}

// lastFrom is the index of the last FROM in insts, -1 if there is none.
func lastFrom(insts []dfInstruction) int {
	last := -1
	for i, in := range insts {
		if in.Cmd == "FROM" {
			last = i
		}
	}
	return last
}

// fromImage splits a FROM's arguments into flags, image and alias.
func fromImage(args string) (flags []string, image, alias string) {
	words := strings.Fields(args)
	for len(words) > 0 && strings.HasPrefix(words[0], "--") {
		flags, words = append(flags, words[0]), words[1:]
	}
	if len(words) > 0 {
		image = words[0]
	}
	if len(words) >= 3 && strings.EqualFold(words[1], "as") {
		alias = words[2]
	}
	return flags, image, alias
}

// dockerfileEdit is what OpenShift's builder changes in a Dockerfile.
type dockerfileEdit struct {
	From        string // dockerStrategy.from (DockerImage): replaces the last FROM's image
	StrategyEnv []kv   // an ENV after every FROM
	BuildEnv    []kv   // the OPENSHIFT_BUILD_* ENV appended at the end
	Labels      []kv   // the LABEL appended at the end
}

// editDockerfile applies e to data and returns the new Dockerfile and the
// images its stages start from (in order, without scratch and stage names),
// with global ARGs and build args substituted.
func editDockerfile(data []byte, e dockerfileEdit, buildArgs []kv, log func(string)) ([]byte, []string, error) {
	head, insts := splitDockerfile(data)
	last := lastFrom(insts)
	if last < 0 {
		return nil, nil, fmt.Errorf("no FROM instruction: a Dockerfile must start with FROM (after global ARGs)")
	}
	args := map[string]string{}
	out := append([]string(nil), head...)
	var bases []string
	aliases := map[string]bool{}
	seenFrom := false
	for i, in := range insts {
		if in.Cmd == "ARG" && !seenFrom {
			name, def, _ := strings.Cut(in.Args, "=")
			args[strings.TrimSpace(name)] = strings.Trim(strings.TrimSpace(def), `"'`)
			for _, a := range buildArgs {
				if a.K == strings.TrimSpace(name) {
					args[a.K] = a.V
				}
			}
		}
		if in.Cmd != "FROM" {
			out = append(out, in.Raw...)
			continue
		}
		seenFrom = true
		flags, image, alias := fromImage(in.Args)
		if i == last && e.From != "" {
			log("Replaced Dockerfile FROM image " + image)
			image = e.From
			line := strings.Join(append(append([]string{"FROM"}, flags...), image), " ")
			if alias != "" {
				line += " AS " + alias
			}
			out = append(out, in.Raw[:in.Lead]...) // the comments before it
			out = append(out, line)
		} else {
			out = append(out, in.Raw...)
		}
		resolved := argRefRE.ReplaceAllStringFunc(image, func(ref string) string {
			return args[argRefRE.FindStringSubmatch(ref)[1]]
		})
		if resolved != "scratch" && !aliases[strings.ToLower(resolved)] && resolved != "" {
			bases = append(bases, resolved)
		}
		if alias != "" {
			aliases[strings.ToLower(alias)] = true
		}
		if len(e.StrategyEnv) > 0 {
			out = append(out, "ENV "+quotedPairs(e.StrategyEnv))
		}
	}
	if len(e.BuildEnv) > 0 {
		out = append(out, "ENV "+quotedPairs(e.BuildEnv))
	}
	if len(e.Labels) > 0 {
		out = append(out, "LABEL "+quotedPairs(e.Labels))
	}
	return []byte(strings.Join(out, "\n") + "\n"), unique(bases), nil
}

func unique(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// dockerBuild runs the Docker strategy and pushes the result.
func (e *executor) dockerBuild(ctx context.Context, bh *buildah, ctxDir string, env []kv) outcome {
	ds := e.b.Spec.Strategy.DockerStrategy
	dfRel := ds.DockerfilePath
	if dfRel == "" {
		dfRel = "Dockerfile"
	}
	dfRel = path.Clean("/" + filepath.ToSlash(dfRel))[1:]
	dfPath := filepath.Join(ctxDir, filepath.FromSlash(dfRel))
	data, err := os.ReadFile(dfPath)
	if err != nil {
		e.logf("error: build error: failed to read Dockerfile %q: no such file or directory", dfRel)
		return failed(buildv1.StatusReasonDockerBuildFailed)
	}
	var from string
	if ds.From != nil && ds.From.Kind == "DockerImage" {
		from = ds.From.Name
	}
	var buildArgs []kv
	for _, a := range ds.BuildArgs {
		buildArgs = append(buildArgs, kv{a.Name, a.Value})
	}
	infoEnv, labels := e.buildInfo()
	edited, bases, err := editDockerfile(data, dockerfileEdit{
		From: from, StrategyEnv: env, BuildEnv: infoEnv, Labels: append(labels, e.imageLabels()...),
	}, buildArgs, e.log)
	if err != nil {
		e.log("error: build error: " + err.Error())
		return failed(buildv1.StatusReasonDockerBuildFailed)
	}
	edited = appendPostCommit(edited, postCommitCommand(e.b.Spec.PostCommit), env)
	if err := os.WriteFile(dfPath, edited, 0o644); err != nil {
		e.logf("error: writing the Dockerfile: %v", err)
		return failed(buildv1.StatusReasonManageDockerfileFailed)
	}

	if o, ok := e.pullBases(ctx, bh, bases); !ok {
		return o
	}

	var opts []string
	if ds.NoCache {
		opts = append(opts, "--no-cache")
	}
	if p := ds.ImageOptimizationPolicy; p != nil && (*p == buildv1.ImageOptimizationSkipLayers || *p == buildv1.ImageOptimizationSkipLayersAndWarn) {
		opts = append(opts, "--squash")
	}
	for _, a := range buildArgs {
		opts = append(opts, "--build-arg", a.K+"="+a.V)
	}
	return e.budAndPush(ctx, bh, dfPath, ctxDir, opts, buildv1.StatusReasonDockerBuildFailed)
}

// budAndPush builds dockerfile in ctxDir with buildah (a failure is
// failReason) and pushes the result to spec.output.to.
func (e *executor) budAndPush(ctx context.Context, bh *buildah, dockerfile, ctxDir string, opts []string, failReason buildv1.StatusReason) outcome {
	start := time.Now()
	// Every stage is built, used or not, as the builder does (it runs the
	// post-commit hook in a stage nothing depends on).
	args := append([]string{"bud", "--isolation", "chroot", "--format", "docker", "--layers", "--skip-unused-stages=false",
		"-f", dockerfile, "-t", e.tag}, bh.authArgs()...)
	args = append(append(args, opts...), ctxDir)
	if err := bh.run(ctx, nil, args...); err != nil {
		return e.stepFailure(ctx, failReason, err)
	}
	e.stage(buildv1.StageBuild, buildv1.StepDockerBuild, start)
	return e.pushOutput(ctx, bh)
}

// pullBases pulls the images the build starts from, as the builder does
// before it builds; a failure is PullBuilderImageFailed. forcePull changes
// nothing: every build starts with empty storage, so each image is pulled.
func (e *executor) pullBases(ctx context.Context, bh *buildah, images []string) (outcome, bool) {
	start := time.Now()
	for _, img := range images {
		e.logf("Pulling image %s ...", img)
		if err := bh.pull(ctx, img); err != nil {
			if ctx.Err() != nil {
				return outcome{}, false
			}
			e.logf("error: build error: failed to pull image %s: %v", img, err)
			return failed(buildv1.StatusReasonPullBuilderImageFailed), false
		}
	}
	if len(images) > 0 {
		e.stage(buildv1.StagePullImages, buildv1.StepPullBaseImage, start)
	}
	return outcome{}, true
}

// outputImage is the pull spec the build pushes to: spec.output.to's
// DockerImage, or for an ImageStreamTag the stream's repository on the
// integrated registry (status.outputDockerImageReference, resolved when the
// build started); "" without an output.
func (e *executor) outputImage() string {
	to := e.b.Spec.Output.To
	switch {
	case to == nil || to.Name == "":
		return ""
	case to.Kind == "DockerImage":
		return to.Name
	}
	return e.b.Status.OutputDockerImageReference
}

// pushOutput pushes the built image to spec.output.to.
func (e *executor) pushOutput(ctx context.Context, bh *buildah) outcome {
	to := e.b.Spec.Output.To
	if to == nil || to.Name == "" {
		e.log("Build complete, no image push requested")
		return outcome{phase: buildv1.BuildPhaseComplete}
	}
	start := time.Now()
	target := e.outputImage()
	dest, err := pushRef(e.c.o.Registry, target)
	if err != nil {
		e.logf("error: build error: invalid output image %q: %v", target, err)
		return failed(buildv1.StatusReasonInvalidOutputReference)
	}
	e.logf("Pushing image %s ...", target)
	digest, err := bh.push(ctx, e.tag, dest.String())
	if err != nil {
		if ctx.Err() != nil {
			return outcome{}
		}
		e.logf("error: build error: Failed to push image: %v", err)
		return failed(buildv1.StatusReasonPushImageToRegistryFailed)
	}
	// The integrated registry records the push in the image stream (and
	// creates the stream) before it answers.
	if e.c.streams != nil {
		if err := e.c.streams.recordInternalPush(ctx, target, digest); err != nil {
			if ctx.Err() != nil {
				return outcome{}
			}
			e.logf("error: build error: Failed to push image: %v", err)
			return failed(buildv1.StatusReasonPushImageToRegistryFailed)
		}
	}
	repo := target
	if ref, err := parseRef(target, false); err == nil {
		repo = ref.Context().Name()
		if !strings.Contains(target, ref.Context().RegistryStr()) {
			repo = strings.TrimPrefix(repo, "index.docker.io/")
		}
	}
	e.logf("Successfully pushed %s@%s", repo, digest)
	e.log("Push successful")
	e.stage(buildv1.StagePushImage, buildv1.StepPushImage, start)
	return outcome{phase: buildv1.BuildPhaseComplete, digest: digest}
}
