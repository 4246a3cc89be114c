// Package cli is the ocbuild command line: it parses flags into
// driver.Options, validates every value before anything touches the cluster
// (usage errors exit 2), connects to the API server and runs the driver.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"

	"github.com/ocbuild/ocbuild/pkg/buildconfig"
	"github.com/ocbuild/ocbuild/pkg/driver"
	"github.com/ocbuild/ocbuild/pkg/failure"
	"github.com/ocbuild/ocbuild/pkg/results"
	"github.com/ocbuild/ocbuild/pkg/validate"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// DefaultInternalRegistry is the integrated registry's service address.
const DefaultInternalRegistry = "image-registry.openshift-image-registry.svc:5000"

// Env variables read as flag defaults (set by the strategies via the
// downward API from the pod's Shipwright labels).
const (
	EnvBuildName    = "OCBUILD_BUILD_NAME"
	EnvBuildRunName = "OCBUILD_BUILDRUN_NAME"
)

// arrayFlags take every following argument up to the next one starting with
// "--", so a strategy can pass a Tekton array parameter as $(params.x[*]).
var arrayFlags = map[string]string{
	"--env-array":         "env",
	"--build-arg-array":   "build-arg",
	"--image-label-array": "image-label",
}

// flags holds raw flag values.
type flags struct {
	kubeconfig, namespace, buildConfig                                  string
	strategy, sourceDir, sourceRoot, gitURL, gitRef, sourceSecret       string
	contextDir, dockerfile, builderImage, from, to                      string
	pushSecret, pullSecret, runPolicy, scriptsURL, commit               string
	env, buildArgs, imageLabels                                         []string
	noCache, incremental, forcePull, includeGit, insecure               bool
	timeout, startTimeout                                               time.Duration
	taskRunName, taskRunUID, buildName, buildRunName                    string
	internalRegistry                                                    []string
	resultDigest, resultSize, resultCommit, resultReason, resultMessage string
}

// Command is one parsed invocation.
type Command struct {
	Options    driver.Options
	Kubeconfig string
	Insecure   bool
	Internal   []string
}

const usageHead = `ocbuild runs an OpenShift Build from a Shipwright build step.

Usage:
  ocbuild build [flags]   create or update the BuildConfig ocbuild owns for this
                          Shipwright Build, start it (uploading --source-dir, or
                          letting OpenShift clone --git-url), follow the log, wait,
                          and write the Tekton results
  ocbuild start [flags]   run an existing BuildConfig (--buildconfig) at --commit,
                          with extra --env/--build-arg; the BuildConfig is not changed.
                          A Binary BuildConfig gets --source-dir uploaded.
  ocbuild --version       print the version

Exit codes: 0 build complete, 1 build or cluster failure (reason in
--result-file-error-reason), 2 invalid flags (nothing was written to the cluster).

Array flags: --env-array, --build-arg-array and --image-label-array take every
following argument up to the next "--" flag, for Tekton array parameters:
  --env-array $(params.env[*])
`

func newFlagSet(mode string, f *flags, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("ocbuild "+mode, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, else the pod's service account)")
	fs.StringVarP(&f.namespace, "namespace", "n", "", "namespace of the build (default: the pod's namespace, else the kubeconfig context's)")
	if mode == driver.ModeBuild {
		fs.StringVar(&f.buildConfig, "buildconfig", "", "name of the BuildConfig ocbuild owns (default: the Shipwright Build name)")
		fs.StringVar(&f.strategy, "strategy", "", "OpenShift build strategy: docker or source (required)")
		fs.StringVar(&f.sourceDir, "source-dir", "", "directory to upload as the build's binary source (exclusive with --git-url)")
		fs.StringVar(&f.gitURL, "git-url", "", "repository OpenShift clones itself (exclusive with --source-dir)")
		fs.StringVar(&f.gitRef, "git-ref", "", "branch or tag to clone with --git-url")
		fs.StringVar(&f.sourceSecret, "source-secret", "", "secret OpenShift uses to clone --git-url")
		fs.StringVar(&f.contextDir, "context-dir", "", "sub-directory of the source holding the build context (relative)")
		fs.StringVar(&f.dockerfile, "dockerfile", "", "Dockerfile path relative to the context directory (docker; default Dockerfile)")
		fs.StringVar(&f.builderImage, "builder-image", "", "S2I builder image (source; required)")
		fs.StringVar(&f.from, "from", "", "image replacing the Dockerfile's last FROM (docker)")
		fs.StringVar(&f.to, "to", "", "output image to push, e.g. quay.io/org/app:tag (required)")
		fs.StringVar(&f.pushSecret, "push-secret", "", "secret OpenShift uses to push the output image")
		fs.StringVar(&f.pullSecret, "pull-secret", "", "secret OpenShift uses to pull the builder/base image")
		fs.StringArrayVar(&f.imageLabels, "image-label", nil, "label NAME=VALUE added to the output image (repeatable)")
		fs.StringVar(&f.runPolicy, "run-policy", "Serial", "BuildConfig run policy: Serial, Parallel or SerialLatestOnly")
		fs.StringVar(&f.scriptsURL, "scripts-url", "", "location of S2I scripts (source)")
		fs.BoolVar(&f.forcePull, "force-pull", false, "always pull the builder/base image")
		fs.BoolVar(&f.includeGit, "include-git", false, "upload the .git directory too (excluded by default)")
	} else {
		fs.StringVar(&f.buildConfig, "buildconfig", "", "existing BuildConfig to run (required)")
		fs.StringVar(&f.sourceDir, "source-dir", "", "directory uploaded when the BuildConfig has a Binary source")
		fs.BoolVar(&f.includeGit, "include-git", false, "upload the .git directory too (excluded by default)")
	}
	fs.StringVar(&f.sourceRoot, "source-root", "", "outermost directory searched for the git checkout of --source-dir (default: --source-dir)")
	fs.StringArrayVar(&f.env, "env", nil, "environment variable NAME=VALUE for the build (repeatable)")
	fs.StringArrayVar(&f.buildArgs, "build-arg", nil, "Docker build argument NAME=VALUE (repeatable)")
	fs.BoolVar(&f.noCache, "no-cache", false, "build without the layer cache (docker)")
	fs.BoolVar(&f.incremental, "incremental", false, "reuse artifacts of the previous image (source)")
	fs.StringVar(&f.commit, "commit", "", "commit to build (start; or with --git-url); binary uploads read it from the source's git checkout")
	fs.DurationVar(&f.timeout, "timeout", 0, "cancel the build if it has not finished after this long (also sets completionDeadlineSeconds); 0 = no limit")
	fs.DurationVar(&f.startTimeout, "start-timeout", 10*time.Minute, "cancel the build if it stays New or Pending this long")
	fs.StringVar(&f.taskRunName, "taskrun-name", "", "the TaskRun running this step: $(context.taskRun.name)")
	fs.StringVar(&f.taskRunUID, "taskrun-uid", "", "its uid: $(context.taskRun.uid); builds are owned by it")
	fs.StringVar(&f.buildName, "build-name", os.Getenv(EnvBuildName), "Shipwright Build name (default $"+EnvBuildName+")")
	fs.StringVar(&f.buildRunName, "buildrun-name", os.Getenv(EnvBuildRunName), "Shipwright BuildRun name (default $"+EnvBuildRunName+")")
	fs.BoolVar(&f.insecure, "insecure-registry", false, "the output registry is reached over plain HTTP or unverified TLS (for the size lookup)")
	fs.StringSliceVar(&f.internalRegistry, "internal-registry", []string{DefaultInternalRegistry}, "hosts of the cluster's integrated registry (sizes come from imagestreamimages)")
	fs.StringVar(&f.resultDigest, "result-file-image-digest", "", "file for the shp-image-digest result")
	fs.StringVar(&f.resultSize, "result-file-image-size", "", "file for the shp-image-size result")
	fs.StringVar(&f.resultCommit, "result-file-commit-sha", "", "file for the shp-source-default-commit-sha result")
	fs.StringVar(&f.resultReason, "result-file-error-reason", "", "file for the shp-error-reason result")
	fs.StringVar(&f.resultMessage, "result-file-error-message", "", "file for the shp-error-message result")
	return fs
}

// Usage returns the full help text.
func Usage() string {
	var b strings.Builder
	b.WriteString(usageHead)
	for _, mode := range []string{driver.ModeBuild, driver.ModeStart} {
		fs := newFlagSet(mode, &flags{}, io.Discard)
		fmt.Fprintf(&b, "\nFlags of ocbuild %s:\n%s", mode, fs.FlagUsages())
	}
	return b.String()
}

var unsubstituted = regexp.MustCompile(`\$\((params|results|context)\.[^)]*\)`)

// preprocess expands array groups and drops values Tekton did not substitute.
func preprocess(args []string, warn func(string)) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if flag, ok := arrayFlags[a]; ok {
			for i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
				i++
				v := args[i]
				if unsubstituted.MatchString(v) {
					warn(fmt.Sprintf("ignoring %s value %q: Tekton did not substitute it", a, v))
					continue
				}
				out = append(out, "--"+flag+"="+v)
			}
			continue
		}
		if strings.HasPrefix(a, "--") {
			if name, v, ok := strings.Cut(a, "="); ok && unsubstituted.MatchString(v) {
				warn(fmt.Sprintf("ignoring %s=%s: Tekton did not substitute it", name, v))
				continue
			}
			// "--flag $(…)": the next argument is a value, never a flag (a
			// boolean flag must not be dropped with the unsubstituted flag after it).
			if i+1 < len(args) && !strings.Contains(a, "=") && !strings.HasPrefix(args[i+1], "--") && unsubstituted.MatchString(args[i+1]) {
				warn(fmt.Sprintf("ignoring %s %s: Tekton did not substitute it", a, args[i+1]))
				i++
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

// Parse turns arguments (without the program name) into a Command. Errors
// are *failure.Usage. help is true when --help was asked for.
func Parse(args []string, stderr io.Writer) (cmd *Command, help bool, err error) {
	warn := func(s string) { fmt.Fprintf(stderr, "ocbuild: warning: %s\n", s) }
	if len(args) == 0 {
		return nil, false, failure.NewUsage("a subcommand is required: ocbuild build or ocbuild start (see ocbuild --help)")
	}
	mode := args[0]
	switch mode {
	case driver.ModeBuild, driver.ModeStart:
	case "-h", "--help", "help":
		return nil, true, nil
	default:
		return nil, false, failure.NewUsage("unknown subcommand %q: use ocbuild build or ocbuild start (see ocbuild --help)", mode)
	}
	f := &flags{}
	fs := newFlagSet(mode, f, io.Discard)
	if err := fs.Parse(preprocess(args[1:], warn)); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, true, nil
		}
		return nil, false, failure.NewUsage("ocbuild %s: %v (see ocbuild --help)", mode, err)
	}
	if fs.NArg() > 0 {
		return nil, false, failure.NewUsage("ocbuild %s: unexpected argument %q; flags take the form --name=value", mode, fs.Arg(0))
	}
	o, err := f.options(mode, fs, warn)
	if err != nil {
		// The result files are known: the caller reports the error through
		// them, so the BuildRun's failureDetails names it.
		return &Command{Options: driver.Options{Results: o.Results}}, false, err
	}
	return &Command{Options: o, Kubeconfig: f.kubeconfig, Insecure: f.insecure, Internal: f.internalRegistry}, false, nil
}

func (f *flags) options(mode string, fs *pflag.FlagSet, warn func(string)) (driver.Options, error) {
	o := driver.Options{
		Mode:         mode,
		Namespace:    f.namespace,
		BuildConfig:  f.buildConfig,
		Owner:        buildconfig.Owner{Build: f.buildName, BuildRun: f.buildRunName, TaskRun: f.taskRunName, TaskRunUID: f.taskRunUID},
		SourceDir:    f.sourceDir,
		SourceRoot:   f.sourceRoot,
		IncludeGit:   f.includeGit,
		Commit:       f.commit,
		Timeout:      f.timeout,
		StartTimeout: f.startTimeout,
	}
	o.Results = results.Files{
		results.ImageDigest: f.resultDigest, results.ImageSize: f.resultSize, results.CommitSha: f.resultCommit,
		results.ErrorReason: f.resultReason, results.ErrorMessage: f.resultMessage,
	}.Clean(warn)

	if f.timeout < 0 {
		return o, validate.Fail("timeout", f.timeout.String(), "must not be negative; 0 means no limit")
	}
	if f.startTimeout <= 0 {
		return o, validate.Fail("start-timeout", f.startTimeout.String(), "must be positive, e.g. 10m")
	}
	if o.Owner.TaskRunUID != "" && o.Owner.TaskRun == "" {
		return o, validate.Fail("taskrun-uid", o.Owner.TaskRunUID, "needs --taskrun-name too")
	}
	env, err := envVars("env", f.env)
	if err != nil {
		return o, err
	}
	args, err := envVars("build-arg", f.buildArgs)
	if err != nil {
		return o, err
	}
	if f.sourceDir != "" {
		if err := checkDir("source-dir", f.sourceDir); err != nil {
			return o, err
		}
	}
	if f.sourceRoot != "" {
		if err := checkDir("source-root", f.sourceRoot); err != nil {
			return o, err
		}
	}
	if f.commit != "" && strings.ContainsAny(f.commit, " \t\n") {
		return o, validate.Fail("commit", f.commit, "a commit has no spaces; pass the SHA Shipwright resolved")
	}
	if f.includeGit && f.sourceDir == "" {
		return o, validate.Fail("include-git", "", "applies only to uploads; add --source-dir")
	}

	if mode == driver.ModeStart {
		if f.buildConfig == "" {
			return o, validate.Fail("buildconfig", "", "name the existing BuildConfig to run")
		}
		if err := validate.ObjectName("buildconfig", f.buildConfig); err != nil {
			return o, err
		}
		o.Env, o.BuildArgs = env, args
		if fs.Changed("no-cache") {
			o.NoCache = &f.noCache
		}
		if fs.Changed("incremental") {
			o.Incremental = &f.incremental
		}
		if o.SourceRoot == "" {
			o.SourceRoot = f.sourceDir
		}
		return o, nil
	}
	return o, f.buildOptions(&o, env, args)
}

func (f *flags) buildOptions(o *driver.Options, env, args []corev1.EnvVar) error {
	if o.BuildConfig == "" {
		o.BuildConfig = f.buildName
	}
	if o.BuildConfig == "" {
		return validate.Fail("buildconfig", "", "name the BuildConfig to own, or pass --build-name (the Shipwright Build)")
	}
	if err := validate.ObjectName("buildconfig", o.BuildConfig); err != nil {
		return err
	}
	if f.strategy == "" {
		return validate.Fail("strategy", "", "choose docker or source")
	}
	if err := validate.OneOf("strategy", f.strategy, buildconfig.Docker, buildconfig.Source); err != nil {
		return err
	}
	switch {
	case f.sourceDir != "" && f.gitURL != "":
		return validate.Fail("git-url", f.gitURL, "give either --source-dir (upload) or --git-url (OpenShift clones), not both")
	case f.sourceDir == "" && f.gitURL == "":
		return validate.Fail("source-dir", "", "give the directory to upload, or --git-url for OpenShift to clone")
	}
	if f.gitURL != "" {
		if err := validate.GitURL("git-url", f.gitURL); err != nil {
			return err
		}
	} else if f.gitRef != "" || f.sourceSecret != "" {
		flag := "git-ref"
		if f.gitRef == "" {
			flag = "source-secret"
		}
		return validate.Fail(flag, "", "applies only with --git-url")
	}
	if err := validate.RelativePath("context-dir", f.contextDir, "context dir"); err != nil {
		return err
	}
	if err := validate.ImageReference("to", f.to); err != nil {
		return err
	}
	for flag, name := range map[string]string{"push-secret": f.pushSecret, "pull-secret": f.pullSecret, "source-secret": f.sourceSecret} {
		if name != "" {
			if err := validate.ObjectName(flag, name); err != nil {
				return err
			}
		}
	}
	if err := validate.RunPolicy("run-policy", f.runPolicy); err != nil {
		return err
	}
	labels, err := imageLabels(f.imageLabels)
	if err != nil {
		return err
	}
	spec := buildconfig.Spec{
		Strategy: f.strategy, Binary: f.sourceDir != "", GitURL: f.gitURL, GitRef: f.gitRef, SourceSecret: f.sourceSecret,
		Env: env, ForcePull: f.forcePull, Output: f.to, PushSecret: f.pushSecret, PullSecret: f.pullSecret,
		ImageLabels: labels, RunPolicy: buildv1.BuildRunPolicy(f.runPolicy),
	}
	if f.timeout > 0 {
		spec.CompletionDeadlineSeconds = int64((f.timeout + time.Second - 1) / time.Second)
	}
	uploadDir := f.sourceDir
	if spec.Binary {
		// Upload only the context directory: the build sees it as its root.
		uploadDir = filepath.Join(f.sourceDir, filepath.FromSlash(f.contextDir))
		if err := checkDir("context-dir", uploadDir); err != nil {
			return err
		}
		if o.SourceRoot == "" {
			o.SourceRoot = f.sourceDir
		}
		o.SourceDir = uploadDir
	} else {
		spec.ContextDir = f.contextDir
	}
	switch f.strategy {
	case buildconfig.Docker:
		for flag, set := range map[string]bool{"builder-image": f.builderImage != "", "incremental": f.incremental, "scripts-url": f.scriptsURL != ""} {
			if set {
				return validate.Fail(flag, "", "applies only to --strategy source")
			}
		}
		if err := validate.RelativePath("dockerfile", f.dockerfile, "dockerfilePath"); err != nil {
			return err
		}
		if f.from != "" {
			if err := validate.ImageReference("from", f.from); err != nil {
				return err
			}
		}
		if spec.Binary {
			df := f.dockerfile
			if df == "" {
				df = "Dockerfile"
			}
			if _, err := os.Lstat(filepath.Join(uploadDir, filepath.FromSlash(df))); err != nil {
				return validate.Fail("dockerfile", df, "no such file in %s; pass the Dockerfile's path relative to the context directory", uploadDir)
			}
		}
		spec.Dockerfile, spec.From, spec.BuildArgs, spec.NoCache = f.dockerfile, f.from, args, f.noCache
	case buildconfig.Source:
		switch {
		case f.from != "":
			return validate.Fail("from", f.from, "for --strategy source the image is the S2I builder: use --builder-image")
		case f.dockerfile != "":
			return validate.Fail("dockerfile", f.dockerfile, "applies only to --strategy docker")
		case len(args) > 0:
			return validate.Fail("build-arg", "", "applies only to --strategy docker")
		case f.noCache:
			return validate.Fail("no-cache", "", "applies only to --strategy docker")
		}
		if f.builderImage == "" {
			return validate.Fail("builder-image", "", "--strategy source needs the S2I builder image, e.g. registry.access.redhat.com/ubi9/python-311")
		}
		if err := validate.ImageReference("builder-image", f.builderImage); err != nil {
			return err
		}
		spec.From, spec.Incremental, spec.ScriptsURL = f.builderImage, f.incremental, f.scriptsURL
	}
	o.Spec = spec
	return nil
}

func envVars(flag string, in []string) ([]corev1.EnvVar, error) {
	var out []corev1.EnvVar
	seen := map[string]int{}
	for _, kv := range in {
		k, v, err := validate.KeyValue(flag, kv)
		if err != nil {
			return nil, err
		}
		if i, ok := seen[k]; ok {
			out[i].Value = v // the last one wins, as in a shell
			continue
		}
		seen[k] = len(out)
		out = append(out, corev1.EnvVar{Name: k, Value: v})
	}
	return out, nil
}

func imageLabels(in []string) ([]buildv1.ImageLabel, error) {
	m := map[string]string{}
	for _, kv := range in {
		k, v, err := validate.Label("image-label", kv)
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	var out []buildv1.ImageLabel
	for k, v := range m {
		out = append(out, buildv1.ImageLabel{Name: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func checkDir(flag, dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return validate.Fail(flag, dir, "directory not found; Shipwright fetches the source into $(params.shp-source-root)")
	}
	if !st.IsDir() {
		return validate.Fail(flag, dir, "not a directory")
	}
	return nil
}

// Main runs ocbuild with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, version string) int {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "version") {
		fmt.Fprintf(stdout, "ocbuild %s\n", version)
		return ExitOK
	}
	cmd, help, err := Parse(args, stderr)
	if help {
		fmt.Fprint(stdout, Usage())
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "ocbuild: %v\n", err)
		if cmd != nil {
			f := failure.As(err, failure.InvalidInput)
			_ = cmd.Options.Results.Write(results.ErrorReason, f.Reason)
			_ = cmd.Options.Results.Write(results.ErrorMessage, f.Message)
		}
		return ExitUsage
	}
	fmt.Fprintf(stderr, "ocbuild %s\n", version)
	d, ns, err := Connect(cmd.Kubeconfig, cmd.Options.Namespace)
	if err != nil {
		f := failure.Wrap(failure.InvalidInput, err, "cannot load the API server configuration (--kubeconfig)")
		fmt.Fprintf(stderr, "ocbuild: %v\n", f)
		_ = cmd.Options.Results.Write(results.ErrorReason, f.Reason)
		_ = cmd.Options.Results.Write(results.ErrorMessage, f.Message)
		return ExitUsage
	}
	d.Out, d.Log = stdout, stderr
	cmd.Options.Namespace = ns
	cmd.Options.Sizes.InternalRegistries = cmd.Internal
	cmd.Options.Sizes.Insecure = cmd.Insecure
	cmd.Options.Sizes.Images = d.Clients.Images
	_, err = d.Run(ctx, cmd.Options)
	switch {
	case err == nil:
		return ExitOK
	case failure.IsUsage(err):
		return ExitUsage
	}
	return ExitFailed
}
