package convert

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Strategy choices of --strategy.
const (
	// Auto picks openshift-docker or openshift-s2i when nothing would be
	// lost, else openshift-buildconfig.
	Auto = "auto"
	// ForceBuildConfig makes every Build run its BuildConfig.
	ForceBuildConfig = "buildconfig"
)

// InternalRegistry is the integrated registry's service address, the
// usual --registry value.
const InternalRegistry = "image-registry.openshift-image-registry.svc:5000"

// Options control a conversion.
type Options struct {
	// Strategy is Auto or ForceBuildConfig.
	Strategy string
	// Resolver turns image stream references into pull specs.
	Resolver *Resolver
	// BuildRun adds a BuildRun of each Build.
	BuildRun bool
	// Namespace is used for BuildConfigs without metadata.namespace.
	Namespace string
}

// Result is the conversion of one BuildConfig.
type Result struct {
	Doc *Document
	// Errors, when any, say why the BuildConfig was not converted; then
	// Build is nil.
	Errors []string
	Build  *Build
	// BuildRun is set with Options.BuildRun.
	BuildRun *BuildRun
	// BuildConfig is the BuildConfig to write next to an
	// openshift-buildconfig Build read from a file, cleaned of what the
	// server wrote (status, uid, …), so applying the output creates it.
	BuildConfig map[string]any
	// Entries say where every field went, sorted by path.
	Entries  []Entry
	Warnings []string
}

// RunsBuildConfig reports whether the Build runs the BuildConfig.
func (r *Result) RunsBuildConfig() bool {
	return r.Build != nil && r.Build.Spec.Strategy.Name == StrategyBuildConfig
}

// Convert converts one BuildConfig. It never fails as a whole: problems
// are in Result.Errors.
func Convert(ctx context.Context, doc *Document, opts Options) *Result {
	res := &Result{Doc: doc}
	if !doc.FromCluster {
		for _, e := range Validate(doc.BC) {
			res.Errors = append(res.Errors, e.Error())
		}
		if len(res.Errors) > 0 {
			return res
		}
	}
	if opts.Resolver == nil {
		opts.Resolver = &Resolver{}
	}
	m := &mapper{ctx: ctx, opts: opts, doc: doc, bc: doc.BC, l: &ledger{}, res: res}
	m.ns = doc.BC.Namespace
	if m.ns == "" {
		m.ns = opts.Namespace
	}
	m.run()
	leaves := Leaves(doc.Raw)
	for _, leaf := range m.l.unclaimed(leaves) {
		m.l.kept(leaf, "not known to ocbuild convert")
	}
	m.l.prune(leaves)
	if opts.Strategy == ForceBuildConfig || m.l.hasKept() {
		m.runBuildConfig()
	} else {
		m.owned.Metadata = m.meta
		res.Build = m.owned
		// Not --cascade=orphan: the step's new BuildConfig numbers its
		// builds from 1 again and OpenShift refuses a build name that
		// exists ("builds.build.openshift.io "<name>-1" already exists").
		m.warn("the step of %s creates and owns a BuildConfig named %s, and refuses to change one it does not own: delete this one and its builds before the first BuildRun (oc delete bc/%s), or rename the Build to keep them",
			m.owned.Spec.Strategy.Name, doc.BC.Name, doc.BC.Name)
	}
	if len(res.Errors) > 0 {
		res.Build = nil
		res.BuildConfig = nil
		return res
	}
	if opts.BuildRun {
		res.BuildRun = buildRunFor(res.Build)
	}
	res.Entries = m.l.entries
	sort.SliceStable(res.Entries, func(i, j int) bool { return res.Entries[i].Path < res.Entries[j].Path })
	return res
}

// buildRunFor returns a BuildRun of b: generateName, so each
// `kubectl create` starts another run.
func buildRunFor(b *Build) *BuildRun {
	// A BuildRun's name must be a label value (63 characters); the server
	// appends 5 to generateName.
	prefix := b.Metadata.Name
	if len(prefix) > 57 {
		prefix = prefix[:57]
	}
	return &BuildRun{
		APIVersion: ShipwrightAPIVersion, Kind: "BuildRun",
		Metadata: Meta{GenerateName: prefix + "-", Namespace: b.Metadata.Namespace},
		Spec:     BuildRunSpec{Build: BuildRef{Name: b.Metadata.Name}},
	}
}

func seconds(s int64) string { return (time.Duration(s) * time.Second).String() }

func (m *mapper) warn(format string, args ...any) {
	m.res.Warnings = append(m.res.Warnings, fmt.Sprintf(format, args...))
}
