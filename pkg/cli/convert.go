package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ocbuild/ocbuild/pkg/buildapi"
	"github.com/ocbuild/ocbuild/pkg/convert"
	"github.com/ocbuild/ocbuild/pkg/failure"
	"github.com/ocbuild/ocbuild/pkg/validate"
)

// ModeConvert is the subcommand that converts BuildConfigs.
const ModeConvert = "convert"

// convertTimeout bounds the API calls of one convert --from-cluster run:
// a list of every BuildConfig and one or two gets per image stream
// reference, which a responsive server answers in seconds.
const convertTimeout = 5 * time.Minute

// convertStdin is what "-" reads; tests replace it.
var convertStdin io.Reader = os.Stdin

type convertFlags struct {
	output, namespace, kubeconfig, registry, strategy string
	fromCluster, allNamespaces, buildRun              bool
}

const convertUsageHead = `ocbuild convert turns OpenShift BuildConfigs into Shipwright Builds.

Usage:
  ocbuild convert [flags] FILE|DIR|- ...   BuildConfigs from YAML or JSON files
                                           (multi-document, List, BuildConfigList),
                                           directories, or stdin
  ocbuild convert --from-cluster [flags]   BuildConfigs read from the cluster (get/list only)

A BuildConfig whose every field has a parameter becomes a Build of
openshift-docker (Docker strategy) or openshift-s2i (Source strategy); any
other becomes a Build of openshift-buildconfig, which runs that very
BuildConfig, so nothing is lost. The Builds go to stdout as one YAML stream,
or with -o into one file each; a report on stderr says where every field went.

Exit codes: 0 every BuildConfig converted; 1 some could not be (each is
named, the others are still written); 2 invalid flags or unreadable input.

Flags of ocbuild convert:
`

func newConvertFlagSet(f *convertFlags, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("ocbuild convert", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.Usage = func() {}
	fs.StringVarP(&f.output, "output", "o", "", "directory to write one <namespace>-<name>.yaml per BuildConfig into (created if missing; default: stdout)")
	fs.BoolVar(&f.fromCluster, "from-cluster", false, "read the BuildConfigs from the cluster instead of files, and resolve ImageStreamTags there")
	fs.StringVarP(&f.namespace, "namespace", "n", "", "namespace to read with --from-cluster (default: the kubeconfig context's); for files, the namespace of BuildConfigs without one")
	fs.BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "with --from-cluster, read the BuildConfigs of every namespace")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file for --from-cluster (default $KUBECONFIG, else the pod's service account, else ~/.kube/config)")
	fs.StringVar(&f.registry, "registry", "", "integrated registry host for offline conversion: ImageStreamTag ns/name:tag becomes <registry>/<ns>/<name>:<tag>, e.g. "+convert.InternalRegistry)
	fs.StringVar(&f.strategy, "strategy", convert.Auto, "auto: openshift-docker or openshift-s2i when nothing would be lost, else openshift-buildconfig; buildconfig: openshift-buildconfig for all")
	fs.BoolVar(&f.buildRun, "buildrun", false, "also write a BuildRun (generateName, for kubectl create) of each Build")
	return fs
}

// ConvertUsage returns the help text of ocbuild convert.
func ConvertUsage() string {
	return convertUsageHead + newConvertFlagSet(&convertFlags{}, io.Discard).FlagUsages()
}

// convertCommand is a parsed ocbuild convert invocation.
type convertCommand struct {
	flags convertFlags
	paths []string
}

// parseConvert parses the arguments after "convert"; every usage problem
// is reported at once, naming its flag.
func parseConvert(args []string) (*convertCommand, bool, error) {
	if wantsHelp(args) {
		return nil, true, nil
	}
	c := &convertCommand{}
	fs := newConvertFlagSet(&c.flags, io.Discard)
	if err := fs.Parse(args); err != nil {
		return nil, false, failure.NewUsage("ocbuild convert: %v (see ocbuild convert --help)", err)
	}
	c.paths = fs.Args()
	f := &c.flags
	errs := &validate.Errors{}
	switch {
	case f.fromCluster && len(c.paths) > 0:
		errs.Add(validate.Fail("from-cluster", "", "reads the cluster: drop the file arguments %s, or --from-cluster", strings.Join(c.paths, " ")))
	case !f.fromCluster && len(c.paths) == 0:
		errs.Add(failure.NewUsage("ocbuild convert: no input: give BuildConfig files or directories, - for stdin, or --from-cluster"))
	}
	if !f.fromCluster {
		if f.allNamespaces {
			errs.Add(validate.Fail("all-namespaces", "", "applies only with --from-cluster"))
		}
		if f.kubeconfig != "" {
			errs.Add(validate.Fail("kubeconfig", f.kubeconfig, "applies only with --from-cluster"))
		}
	}
	if f.allNamespaces && f.namespace != "" {
		errs.Add(validate.Fail("namespace", f.namespace, "give either --namespace or --all-namespaces"))
	}
	if f.namespace != "" {
		errs.Add(validate.Namespace("namespace", f.namespace))
	}
	errs.Add(validate.OneOf("strategy", f.strategy, convert.Auto, convert.ForceBuildConfig))
	if f.registry != "" {
		switch {
		case strings.Contains(f.registry, "://"):
			errs.Add(validate.Fail("registry", f.registry, "a registry host, without a scheme: e.g. %s", convert.InternalRegistry))
		case validate.PullSpecProblem(strings.TrimSuffix(f.registry, "/")+"/namespace/name:tag") != "":
			errs.Add(validate.Fail("registry", f.registry, "not a registry host[:port][/path]: %s", validate.PullSpecProblem(f.registry+"/namespace/name:tag")))
		}
	}
	if fs.Changed("output") {
		if f.output == "" {
			errs.Add(validate.Fail("output", "", "name a directory"))
		} else if st, err := os.Stat(f.output); err == nil && !st.IsDir() {
			errs.Add(validate.Fail("output", f.output, "not a directory: -o takes a directory, one file per BuildConfig is written into it"))
		}
	}
	for _, p := range c.paths {
		if p == "-" && countDash(c.paths) > 1 {
			errs.Add(failure.NewUsage("ocbuild convert: - (stdin) given more than once"))
			break
		}
	}
	return c, false, errs.Err()
}

func countDash(paths []string) int {
	n := 0
	for _, p := range paths {
		if p == "-" {
			n++
		}
	}
	return n
}

// runConvert runs ocbuild convert and returns its exit code.
func runConvert(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	say := func(format string, a ...any) { fmt.Fprintf(stderr, "ocbuild convert: "+format+"\n", a...) }
	c, help, err := parseConvert(args)
	if help {
		fmt.Fprint(stdout, ConvertUsage())
		return ExitOK
	}
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "ocbuild: %s\n", line)
		}
		return ExitUsage
	}
	f := &c.flags
	opts := convert.Options{
		Strategy: f.strategy, BuildRun: f.buildRun, Namespace: f.namespace,
		Resolver: &convert.Resolver{Registry: strings.TrimSuffix(f.registry, "/")},
	}
	var in *convert.Input
	if f.fromCluster {
		ctx, cancel := context.WithTimeout(ctx, convertTimeout)
		defer cancel()
		cluster, ns, err := connectConvert(f)
		if err != nil {
			say("%v", err)
			return ExitUsage
		}
		in = &convert.Input{}
		if err := cluster.ReadBuildConfigs(ctx, ns, in); err != nil {
			say("%v", err)
			return ExitFailed
		}
		opts.Resolver.Streams = cluster
		code := convertAll(ctx, in, opts, f.output, stdout, stderr)
		return code
	}
	in, err = convert.ReadPaths(c.paths, convertStdin)
	if err != nil {
		say("%v", err)
		return ExitUsage
	}
	return convertAll(ctx, in, opts, f.output, stdout, stderr)
}

// connectConvert loads the API server configuration and picks the
// namespace to read ("" for all namespaces).
func connectConvert(f *convertFlags) (*convert.Cluster, string, error) {
	cfg, ns, err := load(f.kubeconfig)
	if err != nil {
		return nil, "", fmt.Errorf("cannot load the API server configuration (--kubeconfig): %w", err)
	}
	switch {
	case f.allNamespaces:
		ns = ""
	case f.namespace != "":
		ns = f.namespace
	case ns == "":
		return nil, "", errors.New("no namespace: pass --namespace or --all-namespaces")
	}
	cfg.UserAgent = "ocbuild-convert"
	api, err := buildapi.NewForConfig(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("cannot make the API clients: %w", err)
	}
	return &convert.Cluster{Build: api.Build, Image: api.Image}, ns, nil
}

// convertAll converts, reports and writes; the exit code is 0 only when
// every BuildConfig read was converted.
func convertAll(ctx context.Context, in *convert.Input, opts convert.Options, outDir string, stdout, stderr io.Writer) int {
	say := func(format string, a ...any) { fmt.Fprintf(stderr, "ocbuild convert: "+format+"\n", a...) }
	failed := len(in.Errors)
	for _, e := range in.Errors {
		say("InvalidInput: %v", e)
	}
	for _, s := range in.Skipped {
		say("skipped %s", s)
	}
	if len(in.Docs) == 0 {
		say("no BuildConfig in the input")
		return ExitFailed
	}
	var results []*convert.Result
	counts := map[string]int{}
	for _, doc := range in.Docs {
		r := convert.Convert(ctx, doc, opts)
		if err := convert.WriteReport(stderr, r); err != nil {
			say("writing the report: %v", err)
			return ExitFailed
		}
		if r.Build == nil {
			failed++
			continue
		}
		counts[r.Build.Spec.Strategy.Name]++
		results = append(results, r)
	}
	if outDir != "" {
		written, err := convert.WriteDir(outDir, results)
		for _, p := range written {
			say("wrote %s", p)
		}
		if err != nil {
			say("%v", err)
			return ExitFailed
		}
	} else if err := convert.WriteStream(stdout, results); err != nil {
		say("writing the output: %v", err)
		return ExitFailed
	}
	say("%s", summary(len(in.Docs)+len(in.Errors), counts, failed))
	if failed > 0 {
		return ExitFailed
	}
	return ExitOK
}

func summary(total int, counts map[string]int, failed int) string {
	var parts []string
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%d %s", counts[n], n))
	}
	if failed > 0 {
		parts = append(parts, fmt.Sprintf("%d not converted", failed))
	}
	noun := "BuildConfigs"
	if total == 1 {
		noun = "BuildConfig"
	}
	return fmt.Sprintf("%d %s: %s", total, noun, strings.Join(parts, ", "))
}
