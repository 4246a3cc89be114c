// Package cli is the ocbuild command line: it parses flags into
// driver.Options, validates every value before anything touches the cluster
// (usage errors exit 2), connects to the API server and runs the driver.
package cli

import (
	"bytes"
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
	"github.com/ocbuild/ocbuild/pkg/defaults"
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
	defaultsDir, defaultsConfigMap                                      string
	resultDigest, resultSize, resultCommit, resultReason, resultMessage string
}

// Command is one parsed invocation.
type Command struct {
	Options    driver.Options
	Kubeconfig string
	Insecure   bool
	Internal   []string
	// DefaultsConfigMap is read once connected; the arguments are then
	// parsed again with its defaults (see Main).
	DefaultsConfigMap string
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
  ocbuild convert [flags] FILE|DIR|-...
                          convert BuildConfigs into Shipwright Builds of these
                          strategies, losing nothing (see ocbuild convert --help)
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
	fs.StringVar(&f.defaultsConfigMap, "defaults-configmap", "", "ConfigMap in the namespace whose keys default unset flags (the strategies pass "+defaults.ConfigMap+"; missing: built-in defaults)")
	fs.StringVar(&f.defaultsDir, "defaults-dir", "", "directory holding a copy of that ConfigMap, one file per key (instead of --defaults-configmap)")
	fs.StringSliceVar(&f.internalRegistry, "internal-registry", []string{DefaultInternalRegistry}, "hosts of the cluster's integrated registry (sizes come from imagestreamimages)")
	fs.StringVar(&f.resultDigest, "result-file-image-digest", "", "file for the shp-image-digest result")
	fs.StringVar(&f.resultSize, "result-file-image-size", "", "file for the shp-image-size result")
	fs.StringVar(&f.resultCommit, "result-file-commit-sha", "", "file for the shp-source-default-commit-sha result")
	fs.StringVar(&f.resultReason, "result-file-error-reason", "", "file for the shp-error-reason result")
	fs.StringVar(&f.resultMessage, "result-file-error-message", "", "file for the shp-error-message result")
	return fs
}

// arrayFlagOrder lists the array flags in help order.
var arrayFlagOrder = []string{"--env-array", "--build-arg-array", "--image-label-array"}

// Usage returns the full help text.
func Usage() string {
	var b strings.Builder
	b.WriteString(usageHead)
	for _, mode := range []string{driver.ModeBuild, driver.ModeStart} {
		fs := newFlagSet(mode, &flags{}, io.Discard)
		fmt.Fprintf(&b, "\nFlags of ocbuild %s:\n%s%s", mode, fs.FlagUsages(), arrayUsages(fs))
	}
	return b.String()
}

// arrayUsages returns help lines for the array flags fs takes, aligned with
// pflag's own.
func arrayUsages(fs *pflag.FlagSet) string {
	first := fs.Lookup("kubeconfig")
	col := strings.Index(fs.FlagUsages(), first.Usage)
	var b strings.Builder
	for _, name := range arrayFlagOrder {
		target := arrayFlags[name]
		if fs.Lookup(target) == nil {
			continue
		}
		left := fmt.Sprintf("      %s NAME=VALUE...", name)
		pad := col - len(left)
		if pad < 3 {
			pad = 3
		}
		fmt.Fprintf(&b, "%s%s--%s for each following argument up to the next \"--\" flag (a Tekton array parameter)\n", left, strings.Repeat(" ", pad), target)
	}
	return b.String()
}

var unsubstituted = regexp.MustCompile(`\$\((params|results|context)\.[^)]*\)`)

// preprocess expands array groups and drops values Tekton did not
// substitute. known tells whether the subcommand has a flag (nil: all); an
// array flag whose target it lacks is reported to errs with its items.
func preprocess(args []string, warn func(string), known func(string) bool, errs *validate.Errors, mode string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if flag, ok := arrayFlags[a]; ok {
			if known != nil && !known(flag) {
				errs.Add(failure.NewUsage("ocbuild %s: unknown flag: %s (it applies to ocbuild build only; see ocbuild --help)", mode, a))
				for i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
					i++
				}
				continue
			}
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

// wantsHelp reports whether args ask for the help text.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "--help":
			return true
		}
	}
	return false
}

// parseFlags sets fs from args like pflag's Parse, but records every
// unknown flag, missing or malformed value and stray argument in errs
// instead of stopping at the first.
func parseFlags(fs *pflag.FlagSet, mode string, args []string, errs *validate.Errors) {
	shape := func(format string, a ...any) {
		errs.Add(failure.NewUsage("ocbuild %s: %s (see ocbuild --help)", mode, fmt.Sprintf(format, a...)))
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		var f *pflag.Flag
		var value string
		var hasValue bool
		switch {
		case a == "--":
			for _, rest := range args[i+1:] {
				errs.Add(failure.NewUsage("ocbuild %s: unexpected argument %q; flags take the form --name=value", mode, rest))
			}
			return
		case strings.HasPrefix(a, "--"):
			var name string
			name, value, hasValue = strings.Cut(a[2:], "=")
			if f = fs.Lookup(name); f == nil {
				shape("unknown flag: --%s", name)
				if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
					i++ // most likely its value
				}
				continue
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			if f = fs.ShorthandLookup(a[1:2]); f == nil {
				shape("unknown shorthand flag: %q in %s", a[1:2], a)
				continue
			}
			if rest := strings.TrimPrefix(a[2:], "="); rest != "" {
				value, hasValue = rest, true
			}
		default:
			errs.Add(failure.NewUsage("ocbuild %s: unexpected argument %q; flags take the form --name=value", mode, a))
			continue
		}
		if !hasValue {
			switch {
			case f.NoOptDefVal != "":
				value = f.NoOptDefVal
			case i+1 < len(args):
				i++
				value = args[i]
			default:
				shape("flag needs an argument: --%s", f.Name)
				continue
			}
		}
		if err := fs.Set(f.Name, value); err != nil {
			errs.Add(badValue(f, value, err))
		}
	}
}

// badValue explains a value the flag's type rejects.
func badValue(f *pflag.Flag, value string, err error) error {
	switch f.Value.Type() {
	case "duration":
		return validate.Fail(f.Name, value, "not a duration; write e.g. 90s, 10m or 1h30m (see ocbuild --help)")
	case "bool":
		return validate.Fail(f.Name, value, "not a boolean; write true or false (see ocbuild --help)")
	}
	return validate.Fail(f.Name, value, "%v (see ocbuild --help)", err)
}

// Parse turns arguments (without the program name) into a Command. Errors
// are *failure.Usage, holding every problem found, one a line. help is true
// when --help was asked for.
func Parse(args []string, stderr io.Writer) (cmd *Command, help bool, err error) {
	return parseArgs(args, stderr, nil)
}

// parseArgs is Parse with the data of the --defaults-configmap ConfigMap, once
// read from the cluster (nil: not read yet).
func parseArgs(args []string, stderr io.Writer, cm *configMapData) (cmd *Command, help bool, err error) {
	warn := func(s string) { fmt.Fprintf(stderr, "ocbuild: warning: %s\n", s) }
	if len(args) == 0 {
		return nil, false, failure.NewUsage("a subcommand is required: ocbuild build or ocbuild start, or ocbuild convert (see ocbuild --help)")
	}
	mode := args[0]
	switch mode {
	case driver.ModeBuild, driver.ModeStart:
	case "-h", "--help", "help":
		return nil, true, nil
	default:
		return nil, false, failure.NewUsage("unknown subcommand %q: use ocbuild build or ocbuild start, or ocbuild convert (see ocbuild --help)", mode)
	}
	if wantsHelp(args[1:]) {
		return nil, true, nil
	}
	f := &flags{}
	fs := newFlagSet(mode, f, io.Discard)
	errs := &validate.Errors{}
	known := func(name string) bool { return fs.Lookup(name) != nil }
	parseFlags(fs, mode, dropEmpty(preprocess(args[1:], warn, known, errs, mode)), errs)
	applyDefaults(fs, f, mode, stderr, errs, cm)
	o := f.options(mode, fs, warn, errs)
	if err := errs.Err(); err != nil {
		// The result files are known: the caller reports the error through
		// them, so the BuildRun's failureDetails names it.
		return &Command{Options: driver.Options{Results: o.Results}}, false, err
	}
	return &Command{Options: o, Kubeconfig: f.kubeconfig, Insecure: f.insecure, Internal: f.internalRegistry,
		DefaultsConfigMap: f.defaultsConfigMap}, false, nil
}

func (f *flags) options(mode string, fs *pflag.FlagSet, warn func(string), errs *validate.Errors) driver.Options {
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
		errs.Add(validate.Fail("timeout", f.timeout.String(), "must not be negative; 0 means no limit"))
	}
	if f.startTimeout <= 0 {
		errs.Add(validate.Fail("start-timeout", f.startTimeout.String(), "must be positive, e.g. 10m"))
	}
	if f.namespace != "" {
		errs.Add(validate.Namespace("namespace", f.namespace))
	}
	for _, n := range []struct{ flag, value string }{
		{"taskrun-name", f.taskRunName}, {"build-name", f.buildName}, {"buildrun-name", f.buildRunName},
	} {
		if n.value != "" {
			errs.Add(validate.ObjectName(n.flag, n.value))
		}
	}
	if o.Owner.TaskRunUID != "" && o.Owner.TaskRun == "" {
		errs.Add(validate.Fail("taskrun-uid", o.Owner.TaskRunUID, "needs --taskrun-name too"))
	}
	env := envVars("env", f.env, errs)
	args := envVars("build-arg", f.buildArgs, errs)
	sourceOK := checkSource(f.sourceDir, f.sourceRoot, errs)
	if f.commit != "" && strings.ContainsAny(f.commit, " \t\n") {
		errs.Add(validate.Fail("commit", f.commit, "a commit has no spaces; pass the SHA Shipwright resolved"))
	}
	if f.includeGit && f.sourceDir == "" {
		errs.Add(validate.Fail("include-git", "", "applies only to uploads; add --source-dir"))
	}

	if mode == driver.ModeStart {
		if f.buildConfig == "" {
			errs.Add(validate.Fail("buildconfig", "", "name the existing BuildConfig to run"))
		} else {
			errs.Add(validate.ObjectName("buildconfig", f.buildConfig))
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
		return o
	}
	f.buildOptions(&o, env, args, sourceOK, errs)
	return o
}

func (f *flags) buildOptions(o *driver.Options, env, args []corev1.EnvVar, sourceOK bool, errs *validate.Errors) {
	switch {
	case o.BuildConfig != "":
		errs.Add(validate.BuildConfigName("buildconfig", o.BuildConfig, buildconfig.MaxBuildConfigName))
	case f.buildName == "":
		errs.Add(validate.Fail("buildconfig", "", "name the BuildConfig to own, or pass --build-name (the Shipwright Build)"))
	default:
		// Named after the Shipwright Build (already checked as --build-name),
		// shortened when OpenShift's build names would not fit.
		o.BuildConfig = buildconfig.BuildConfigName(f.buildName)
	}
	if f.strategy == "" {
		errs.Add(validate.Fail("strategy", "", "choose docker or source"))
	} else {
		errs.Add(validate.OneOf("strategy", f.strategy, buildconfig.Docker, buildconfig.Source))
	}
	switch {
	case f.sourceDir != "" && f.gitURL != "":
		errs.Add(validate.Fail("git-url", f.gitURL, "give either --source-dir (upload) or --git-url (OpenShift clones), not both"))
	case f.sourceDir == "" && f.gitURL == "":
		errs.Add(validate.Fail("source-dir", "", "give the directory to upload, or --git-url for OpenShift to clone"))
	}
	if f.gitURL != "" {
		errs.Add(validate.GitURL("git-url", f.gitURL))
		if f.gitRef != "" {
			errs.Add(validate.GitRef("git-ref", f.gitRef))
		}
		errs.Add(validate.ContextDir("context-dir", f.contextDir))
	} else {
		if f.gitRef != "" {
			errs.Add(validate.Fail("git-ref", "", "applies only with --git-url"))
		}
		if f.sourceSecret != "" {
			errs.Add(validate.Fail("source-secret", "", "applies only with --git-url"))
		}
	}
	errs.Add(validate.ImageReference("to", f.to))
	for _, s := range []struct{ flag, name string }{{"push-secret", f.pushSecret}, {"pull-secret", f.pullSecret}, {"source-secret", f.sourceSecret}} {
		if s.name != "" {
			errs.Add(validate.ObjectName(s.flag, s.name))
		}
	}
	errs.Add(validate.RunPolicy("run-policy", f.runPolicy))
	labels := imageLabels(f.imageLabels, errs)

	binary := f.sourceDir != "" && f.gitURL == ""
	uploadDir := ""
	if binary {
		// Upload only the context directory: the build sees it as its root.
		if errs.Add(validate.RelativePath("context-dir", f.contextDir, "context dir")) && sourceOK {
			uploadDir = filepath.Join(f.sourceDir, filepath.FromSlash(f.contextDir))
			if f.contextDir != "" && !errs.Add(checkContextDir(f.sourceDir, f.contextDir, uploadDir)) {
				uploadDir = ""
			}
		}
	}
	switch f.strategy {
	case buildconfig.Docker:
		for _, x := range []struct {
			flag string
			set  bool
		}{{"builder-image", f.builderImage != ""}, {"incremental", f.incremental}, {"scripts-url", f.scriptsURL != ""}} {
			if x.set {
				errs.Add(validate.Fail(x.flag, "", "applies only to --strategy source"))
			}
		}
		if errs.Add(validate.RelativePath("dockerfile", f.dockerfile, "dockerfilePath")) && uploadDir != "" {
			errs.Add(checkDockerfile(uploadDir, f.dockerfile))
		}
		if f.from != "" {
			errs.Add(validate.ImageReference("from", f.from))
		}
	case buildconfig.Source:
		if f.from != "" {
			errs.Add(validate.Fail("from", f.from, "for --strategy source the image is the S2I builder: use --builder-image"))
		}
		if f.dockerfile != "" {
			errs.Add(validate.Fail("dockerfile", f.dockerfile, "applies only to --strategy docker"))
		}
		if len(f.buildArgs) > 0 {
			errs.Add(validate.Fail("build-arg", "", "applies only to --strategy docker"))
		}
		if f.noCache {
			errs.Add(validate.Fail("no-cache", "", "applies only to --strategy docker"))
		}
		if f.builderImage == "" {
			errs.Add(validate.Fail("builder-image", "", "--strategy source needs the S2I builder image, e.g. registry.access.redhat.com/ubi9/python-311"))
		} else {
			errs.Add(validate.ImageReference("builder-image", f.builderImage))
		}
		if f.scriptsURL != "" {
			errs.Add(validate.ScriptsURL("scripts-url", f.scriptsURL))
		}
	}
	if errs.Len() > 0 {
		return
	}

	spec := buildconfig.Spec{
		Strategy: f.strategy, Binary: binary, GitURL: f.gitURL, GitRef: f.gitRef, SourceSecret: f.sourceSecret,
		Env: env, ForcePull: f.forcePull, Output: f.to, PushSecret: f.pushSecret, PullSecret: f.pullSecret,
		ImageLabels: labels, RunPolicy: buildv1.BuildRunPolicy(f.runPolicy),
	}
	if f.timeout > 0 {
		// At least 1: OpenShift rejects completionDeadlineSeconds <= 0.
		spec.CompletionDeadlineSeconds = int64((f.timeout + time.Second - 1) / time.Second)
	}
	if binary {
		if o.SourceRoot == "" {
			o.SourceRoot = f.sourceDir
		}
		o.SourceDir = uploadDir
	} else {
		spec.ContextDir = f.contextDir
	}
	switch f.strategy {
	case buildconfig.Docker:
		spec.Dockerfile, spec.From, spec.BuildArgs, spec.NoCache = f.dockerfile, f.from, args, f.noCache
	case buildconfig.Source:
		spec.From, spec.Incremental, spec.ScriptsURL = f.builderImage, f.incremental, f.scriptsURL
	}
	o.Spec = spec
}

func envVars(flag string, in []string, errs *validate.Errors) []corev1.EnvVar {
	var out []corev1.EnvVar
	seen := map[string]int{}
	for _, kv := range in {
		k, v, err := validate.KeyValue(flag, kv)
		if !errs.Add(err) {
			continue
		}
		if i, ok := seen[k]; ok {
			out[i].Value = v // the last one wins, as in a shell
			continue
		}
		seen[k] = len(out)
		out = append(out, corev1.EnvVar{Name: k, Value: v})
	}
	return out
}

func imageLabels(in []string, errs *validate.Errors) []buildv1.ImageLabel {
	m := map[string]string{}
	for _, kv := range in {
		k, v, err := validate.Label("image-label", kv)
		if errs.Add(err) {
			m[k] = v // the last one wins: OpenShift rejects duplicate names
		}
	}
	var out []buildv1.ImageLabel
	for k, v := range m {
		out = append(out, buildv1.ImageLabel{Name: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
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

// within reports whether p is base or lies under it (both clean and of the
// same kind, absolute or relative).
func within(base, p string) bool {
	rel, err := filepath.Rel(base, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// contextField names the Shipwright field behind --source-dir.
const contextField = "the Shipwright Build's spec.source.contextDir"

// checkSource checks --source-dir and --source-root. Shipwright passes
// $(params.shp-source-context), the source root joined with the Build's
// spec.source.contextDir, and $(params.shp-source-root): the context must
// lie inside the root, lexically and after resolving symlinks, so a
// contextDir that escapes the source names that field. It reports whether
// --source-dir can be used.
func checkSource(dir, root string, errs *validate.Errors) bool {
	if root != "" && !errs.Add(checkDir("source-root", root)) {
		root = "" // checked alone below
	}
	if dir == "" {
		return false
	}
	if root == "" {
		return errs.Add(checkDir("source-dir", dir))
	}
	absRoot, err1 := filepath.Abs(root)
	absDir, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return errs.Add(checkDir("source-dir", dir))
	}
	rel, _ := filepath.Rel(absRoot, absDir)
	ctx := filepath.ToSlash(rel)
	if !within(absRoot, absDir) {
		return errs.Add(validate.Fail("source-dir", dir,
			"outside --source-root %q: %s %q escapes the source; set it to a directory inside the repository, or leave it empty",
			root, contextField, ctx))
	}
	st, err := os.Stat(absDir)
	switch {
	case err != nil && ctx == ".":
		return errs.Add(checkDir("source-dir", dir))
	case err != nil:
		return errs.Add(validate.Fail("source-dir", dir,
			"%s %q does not exist in the source (fetched into --source-root %q); set it to a directory of the repository, or leave it empty",
			contextField, ctx, root))
	case !st.IsDir():
		return errs.Add(validate.Fail("source-dir", dir, "%s %q is a file in the source, not a directory", contextField, ctx))
	}
	realRoot, err1 := filepath.EvalSymlinks(absRoot)
	realDir, err2 := filepath.EvalSymlinks(absDir)
	if err1 != nil || err2 != nil {
		return errs.Add(validate.Fail("source-dir", dir, "cannot resolve its symlinks: %v", errors.Join(err1, err2)))
	}
	if !within(realRoot, realDir) {
		return errs.Add(validate.Fail("source-dir", dir,
			"%s %q leads out of the source through a symlink (to %q); ocbuild never follows links out of the source tree: use a real directory of the repository",
			contextField, ctx, realDir))
	}
	return true
}

// checkContextDir checks the directory --context-dir names in --source-dir
// (lexically inside already): it must exist and, symlinks resolved, stay
// inside --source-dir.
func checkContextDir(sourceDir, contextDir, dir string) error {
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		return validate.Fail("context-dir", contextDir, "directory not found in --source-dir %q", sourceDir)
	case !st.IsDir():
		return validate.Fail("context-dir", contextDir, "not a directory in --source-dir %q", sourceDir)
	}
	realBase, err1 := filepath.EvalSymlinks(sourceDir)
	realDir, err2 := filepath.EvalSymlinks(dir)
	if err1 != nil || err2 != nil {
		return validate.Fail("context-dir", contextDir, "cannot resolve its symlinks: %v", errors.Join(err1, err2))
	}
	if !within(realBase, realDir) {
		return validate.Fail("context-dir", contextDir,
			"leads out of --source-dir %q through a symlink (to %q); ocbuild never follows links out of the source tree", sourceDir, realDir)
	}
	return nil
}

// checkDockerfile checks that the Dockerfile is in the uploaded directory:
// a file there, or a link to one inside it (the upload keeps links as links,
// so one pointing elsewhere would dangle in the build).
func checkDockerfile(uploadDir, dockerfile string) error {
	df := dockerfile
	if df == "" {
		df = "Dockerfile"
	}
	p := filepath.Join(uploadDir, filepath.FromSlash(df))
	st, err := os.Lstat(p)
	if err != nil {
		return validate.Fail("dockerfile", df, "no such file in %s; pass the Dockerfile's path relative to the context directory", uploadDir)
	}
	if st.Mode()&os.ModeSymlink == 0 {
		if st.IsDir() {
			return validate.Fail("dockerfile", df, "is a directory in %s; pass the Dockerfile's path relative to the context directory", uploadDir)
		}
		return nil
	}
	realBase, err1 := filepath.EvalSymlinks(uploadDir)
	real, err2 := filepath.EvalSymlinks(p)
	if err1 != nil || err2 != nil {
		return validate.Fail("dockerfile", df, "a symlink that does not resolve in %s; the build would not find the Dockerfile", uploadDir)
	}
	if !within(realBase, real) {
		return validate.Fail("dockerfile", df, "a symlink to %q, outside the uploaded directory %s; the build would not find it: copy the Dockerfile into the context directory", real, uploadDir)
	}
	return nil
}

// Main runs ocbuild with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, version string) int {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "version") {
		fmt.Fprintf(stdout, "ocbuild %s\n", version)
		return ExitOK
	}
	if len(args) > 0 && args[0] == ModeConvert {
		return runConvert(ctx, args[1:], stdout, stderr)
	}
	// Warnings are held back while a defaults ConfigMap may make a second
	// parse print them again.
	var first bytes.Buffer
	cmd, help, err := Parse(args, &first)
	if err != nil || cmd == nil || cmd.DefaultsConfigMap == "" {
		_, _ = stderr.Write(first.Bytes())
	}
	if help {
		fmt.Fprint(stdout, Usage())
		return ExitOK
	}
	if err != nil {
		var files results.Files
		if cmd != nil {
			files = cmd.Options.Results
		}
		return usageFailure(stderr, files, err)
	}
	fmt.Fprintf(stderr, "ocbuild %s\n", version)
	d, ns, err := Connect(cmd.Kubeconfig, cmd.Options.Namespace)
	if err != nil {
		var f *failure.Error
		var nc *noClusterError
		if errors.As(err, &nc) {
			f = failure.New(failure.InvalidInput, "%s", nc.Error())
		} else {
			f = failure.Wrap(failure.InvalidInput, err, "cannot load the API server configuration (--kubeconfig)")
		}
		fmt.Fprintf(stderr, "ocbuild: %v\n", f)
		writeFailure(cmd.Options.Results, f)
		return ExitUsage
	}
	if name := cmd.DefaultsConfigMap; name != "" {
		data, f := readDefaults(ctx, d, ns, name)
		if f != nil {
			fmt.Fprintf(stderr, "ocbuild: %v\n", f)
			writeFailure(cmd.Options.Results, f)
			return ExitFailed
		}
		if data == nil {
			fmt.Fprintf(stderr, "ocbuild: no ConfigMap %s in namespace %s: the built-in defaults apply\n", name, ns)
		}
		again, _, err := parseArgs(args, stderr, &configMapData{name: name, namespace: ns, data: data})
		if err != nil {
			return usageFailure(stderr, cmd.Options.Results, err)
		}
		cmd = again
	}
	d.Out, d.Log = stdout, stderr
	cmd.Options.Namespace = ns
	cmd.Options.Sizes.InternalRegistries = cmd.Internal
	cmd.Options.Sizes.Insecure = cmd.Insecure
	cmd.Options.Sizes.Images = d.Clients.Builds
	_, err = d.Run(ctx, cmd.Options)
	switch {
	case err == nil:
		return ExitOK
	case failure.IsUsage(err):
		return ExitUsage
	}
	return ExitFailed
}

// usageFailure prints a usage error, one line per problem, reports it
// through the result files (so the BuildRun's failureDetails name it) and
// returns ExitUsage.
func usageFailure(stderr io.Writer, files results.Files, err error) int {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(stderr, "ocbuild: %s\n", line)
	}
	writeFailure(files, failure.As(err, failure.InvalidInput))
	return ExitUsage
}

// writeFailure writes a failure that ends the step before the driver runs
// to the error result files (the driver writes its own, outcome.go).
func writeFailure(files results.Files, f *failure.Error) {
	_ = files.Write(results.ErrorReason, f.Reason)
	_ = files.Write(results.ErrorMessage, f.Message)
}
