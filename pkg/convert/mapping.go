package convert

import (
	"context"
	"fmt"

	buildv1 "github.com/openshift/api/build/v1"
	corev1 "k8s.io/api/core/v1"
)

// mapper walks one BuildConfig: it fills the owned-strategy Build and
// records in the ledger where every field went.
type mapper struct {
	ctx  context.Context
	opts Options
	doc  *Document
	bc   *buildv1.BuildConfig
	ns   string
	l    *ledger
	res  *Result

	meta  Meta
	owned *Build
	// What an openshift-buildconfig Build carries as well.
	git        *Git
	output     string
	outputErr  error
	outputSpec *corev1.ObjectReference
	timeout    string
}

// serverMetadata are metadata fields the API server writes.
var serverMetadata = []string{
	"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink",
	"deletionTimestamp", "deletionGracePeriodSeconds",
}

const (
	annotationLastApplied = "kubectl.kubernetes.io/last-applied-configuration"
	annotationPaused      = "openshift.io/build-config.paused"
)

func (m *mapper) run() {
	m.owned = &Build{APIVersion: ShipwrightAPIVersion, Kind: "Build"}
	m.l.ignored("apiVersion", "the object's type")
	m.l.ignored("kind", "the object's type")
	m.l.ignored("status", "written by the API server")
	m.metadata()
	s := &m.bc.Spec
	m.triggers()
	if s.RunPolicy != "" {
		m.owned.param(ParamRunPolicy, string(s.RunPolicy))
		m.l.mapped("spec.runPolicy", "param "+ParamRunPolicy)
	}
	m.historyLimit("spec.successfulBuildsHistoryLimit", s.SuccessfulBuildsHistoryLimit, "succeededLimit")
	m.historyLimit("spec.failedBuildsHistoryLimit", s.FailedBuildsHistoryLimit, "failedLimit")
	switch s.ServiceAccount {
	case "", "builder":
		m.l.mapped("spec.serviceAccount", "default: ocbuild's BuildConfig runs as builder too")
	default:
		m.l.kept("spec.serviceAccount", "the build pod's service account: ocbuild's BuildConfig runs as builder")
	}
	if s.CompletionDeadlineSeconds != nil {
		m.timeout = seconds(*s.CompletionDeadlineSeconds)
		m.owned.Spec.Timeout = m.timeout
		m.l.both("spec.completionDeadlineSeconds", "spec.timeout")
	} else {
		// OpenShift's default deadline is 7 days; a BuildRun without a
		// timeout gets Tekton's default, which can be far shorter.
		m.warn("no completionDeadlineSeconds: the BuildRun gets Tekton's default timeout (60m unless the cluster changed it), where OpenShift allowed 7 days; set spec.timeout for longer builds")
	}
	if s.MountTrustedCA != nil && !*s.MountTrustedCA {
		m.l.mapped("spec.mountTrustedCA", "default: false")
	} else {
		m.l.kept("spec.mountTrustedCA", "mounts the cluster's trusted CA bundle into the build: no param")
	}
	m.l.kept("spec.nodeSelector", "where the build pod runs: no param")
	m.l.kept("spec.resources", "the build pod's resources: no param")
	m.l.kept("spec.postCommit", "a command run in the image before it is pushed: no param")
	m.l.kept("spec.revision", "a fixed source revision of the BuildConfig")
	m.source()
	m.strategy()
	m.outputs()
}

func (m *mapper) metadata() {
	md := m.bc.ObjectMeta
	m.meta = Meta{Name: md.Name, Namespace: m.ns}
	m.l.both("metadata.name", "metadata.name")
	m.l.both("metadata.namespace", "metadata.namespace")
	for _, f := range serverMetadata {
		m.l.ignored("metadata."+f, "written by the API server")
	}
	m.l.ignored("metadata.ownerReferences", "owners by uid, meaningful only where the BuildConfig was read")
	m.l.kept("metadata.finalizers", "finalizers of the BuildConfig")
	m.l.kept("metadata.generateName", "a generated BuildConfig name")
	if len(md.Labels) > 0 {
		m.meta.Labels = md.Labels
		m.l.both("metadata.labels", "metadata.labels")
	}
	for k, v := range md.Annotations {
		p := child("metadata.annotations", k)
		switch k {
		case annotationLastApplied:
			m.l.ignored(p, "kubectl's record of the last apply")
		case annotationPaused:
			if v == "true" {
				m.l.kept(p, "the BuildConfig is paused: OpenShift refuses to start it")
			} else {
				m.l.mapped(p, "nothing: not paused")
			}
		default:
			if m.meta.Annotations == nil {
				m.meta.Annotations = map[string]string{}
			}
			m.meta.Annotations[k] = v
			m.l.both(p, "metadata.annotations")
		}
	}
}

func (m *mapper) triggers() {
	for i, t := range m.bc.Spec.Triggers {
		p := fmt.Sprintf("spec.triggers[%d]", i)
		switch t.Type {
		case buildv1.ConfigChangeBuildTriggerType:
			if m.opts.BuildRun {
				m.l.mapped(p, "the BuildRun (--buildrun) builds once, as ConfigChange does on creation")
			} else {
				m.l.kept(p, "ConfigChange builds when the BuildConfig is created: pass --buildrun for a BuildRun instead")
			}
		case buildv1.ImageChangeBuildTriggerType:
			m.l.kept(p, "ImageChange rebuilds when an image stream tag moves: it stays with the BuildConfig")
		default:
			m.l.kept(p, "%s webhook: OpenShift builds on a push; it stays with the BuildConfig", t.Type)
		}
	}
}

func (m *mapper) historyLimit(path string, v *int32, dest string) {
	if v == nil {
		return
	}
	if *v < 1 {
		m.l.kept(path, "0 keeps no finished build; Shipwright's retention limits start at 1")
		return
	}
	if m.owned.Spec.Retention == nil {
		m.owned.Spec.Retention = &Retention{}
	}
	n := uint(*v)
	if dest == "succeededLimit" {
		m.owned.Spec.Retention.SucceededLimit = &n
	} else {
		m.owned.Spec.Retention.FailedLimit = &n
	}
	m.l.mapped(path, "spec.retention."+dest+" (BuildRuns kept)")
}

func (m *mapper) source() {
	src := &m.bc.Spec.Source
	m.l.ignored("spec.source.type", "implied by the source set (OpenShift ignores it on input)")
	m.l.kept("spec.source.dockerfile", "inline Dockerfile: the owned strategies build the source's own Dockerfile")
	m.l.kept("spec.source.binary", "Binary source: the BuildConfig takes an upload (shp build upload)")
	m.l.kept("spec.source.images", "images copied into the source (chain builds): no param")
	m.l.kept("spec.source.secrets", "secrets mounted into the build: no param")
	m.l.kept("spec.source.configMaps", "config maps mounted into the build: no param")
	for _, f := range []string{"httpProxy", "httpsProxy", "noProxy"} {
		m.l.kept("spec.source.git."+f, "a proxy for OpenShift's clone: no param")
	}
	if src.Git == nil {
		m.l.keptAlways("spec.source", "no Git source: the owned strategies build a Git source Shipwright clones")
		return
	}
	m.git = &Git{URL: src.Git.URI}
	m.l.both("spec.source.git.uri", "spec.source.git.url")
	if src.Git.Ref != "" {
		ref := src.Git.Ref
		m.git.Revision = &ref
		m.l.both("spec.source.git.ref", "spec.source.git.revision")
	}
	if src.SourceSecret != nil {
		name := src.SourceSecret.Name
		m.git.CloneSecret = &name
		m.l.both("spec.source.sourceSecret", "spec.source.git.cloneSecret")
	}
	m.owned.Spec.Source = &Source{Type: "Git", Git: m.git}
	if src.ContextDir != "" {
		dir := src.ContextDir
		m.owned.Spec.Source.ContextDir = &dir
		m.l.mapped("spec.source.contextDir", "spec.source.contextDir")
	}
}

func (m *mapper) strategy() {
	st := &m.bc.Spec.Strategy
	m.l.ignored("spec.strategy.type", "implied by the strategy set (OpenShift ignores it on input)")
	// By the pointer set; type: Docker alone is defaulted to
	// dockerStrategy: {} by the server.
	switch {
	case st.CustomStrategy != nil:
		m.l.keptAlways("spec.strategy.customStrategy", "Custom strategy: only the BuildConfig runs it")
	case st.JenkinsPipelineStrategy != nil:
		m.l.keptAlways("spec.strategy.jenkinsPipelineStrategy", "JenkinsPipeline strategy: only the BuildConfig runs it")
	case st.SourceStrategy != nil:
		m.s2i(st.SourceStrategy)
	case st.DockerStrategy != nil || st.Type == buildv1.DockerBuildStrategyType:
		m.docker(st.DockerStrategy)
	default:
		m.l.keptAlways("spec.strategy", "no strategy convert knows")
	}
}

func (m *mapper) docker(ds *buildv1.DockerBuildStrategy) {
	m.owned.Spec.Strategy = Strategy{Name: StrategyDocker, Kind: "ClusterBuildStrategy"}
	if ds == nil {
		return
	}
	p := "spec.strategy.dockerStrategy"
	if ds.From != nil {
		if spec, ok := m.image(p+".from", ds.From, true); ok {
			m.owned.param(ParamFrom, spec)
			m.l.mapped(p+".from", "param "+ParamFrom)
		}
	}
	if ds.DockerfilePath != "" {
		m.owned.param(ParamDockerfile, ds.DockerfilePath)
		m.l.mapped(p+".dockerfilePath", "param "+ParamDockerfile)
	}
	m.keyValues(p+".buildArgs", ds.BuildArgs, ParamBuildArgs)
	m.keyValues(p+".env", ds.Env, ParamBuildEnv)
	m.flag(p+".noCache", ds.NoCache, ParamNoCache)
	m.flag(p+".forcePull", ds.ForcePull, ParamForcePull)
	m.secret(p+".pullSecret", ds.PullSecret, ParamPullSecret)
	m.l.kept(p+".imageOptimizationPolicy", "no param")
	m.l.kept(p+".volumes", "volumes mounted into the build: no param")
}

func (m *mapper) s2i(ss *buildv1.SourceBuildStrategy) {
	m.owned.Spec.Strategy = Strategy{Name: StrategyS2I, Kind: "ClusterBuildStrategy"}
	p := "spec.strategy.sourceStrategy"
	if spec, ok := m.image(p+".from", &ss.From, true); ok {
		m.owned.param(ParamBuilderImage, spec)
		m.l.mapped(p+".from", "param "+ParamBuilderImage)
	}
	m.keyValues(p+".env", ss.Env, ParamBuildEnv)
	if ss.Scripts != "" {
		m.owned.param(ParamScriptsURL, ss.Scripts)
		m.l.mapped(p+".scripts", "param "+ParamScriptsURL)
	}
	if ss.Incremental != nil {
		m.flag(p+".incremental", *ss.Incremental, ParamIncremental)
	}
	m.flag(p+".forcePull", ss.ForcePull, ParamForcePull)
	m.secret(p+".pullSecret", ss.PullSecret, ParamPullSecret)
	m.l.kept(p+".volumes", "volumes mounted into the build: no param")
}

// flag maps a boolean; false is the strategies' default, so only true is
// written.
func (m *mapper) flag(path string, v bool, param string) {
	if v {
		m.owned.param(param, "true")
	}
	m.l.mapped(path, "param "+param)
}

func (m *mapper) secret(path string, s *corev1.LocalObjectReference, param string) {
	if s == nil {
		return
	}
	m.owned.param(param, s.Name)
	m.l.mapped(path, "param "+param)
}

// keyValues maps env or build args to an array parameter of NAME=VALUE
// items; a valueFrom (a Secret or ConfigMap key) has no item form, so that
// entry stays with the BuildConfig.
func (m *mapper) keyValues(path string, env []corev1.EnvVar, param string) {
	var items []string
	for i, e := range env {
		p := fmt.Sprintf("%s[%d]", path, i)
		if e.ValueFrom != nil {
			m.l.kept(p, "valueFrom: the param takes NAME=VALUE items only")
			continue
		}
		items = append(items, e.Name+"="+e.Value)
		m.l.mapped(p, "param "+param)
	}
	m.owned.arrayParam(param, items)
}

// image resolves a strategy's from to a pull spec. On failure the field
// stays with the BuildConfig and a warning says why.
func (m *mapper) image(path string, from *corev1.ObjectReference, builder bool) (string, bool) {
	kind, name := defaultFrom(from)
	if kind == "DockerImage" {
		return name, true
	}
	spec, err := m.resolve(kind, name, from.Namespace, builder)
	if err != nil {
		m.l.keptAlways(path, "%s %s not resolved", kind, name)
		m.warn("%s: %s %s not resolved: %v", path, kind, name, err)
		return "", false
	}
	return spec, true
}

func (m *mapper) resolve(kind, name, namespace string, builder bool) (string, error) {
	stream, tag, digest, ok := splitStreamRef(kind, name)
	if !ok {
		return "", fmt.Errorf("%s %q is not a valid reference", kind, name)
	}
	if namespace == "" {
		namespace = m.ns
	}
	if namespace == "" {
		return "", fmt.Errorf("the BuildConfig has no namespace: pass -n/--namespace")
	}
	spec, _, err := m.opts.Resolver.pullSpec(m.ctx, ref{Namespace: namespace, Name: stream, Tag: tag, Digest: digest}, builder)
	return spec, err
}

func (m *mapper) outputs() {
	o := &m.bc.Spec.Output
	p := "spec.output"
	for i := range o.ImageLabels {
		m.l.mapped(fmt.Sprintf("%s.imageLabels[%d]", p, i), "param "+ParamImageLabels)
	}
	var labels []string
	for _, l := range o.ImageLabels {
		labels = append(labels, l.Name+"="+l.Value)
	}
	m.owned.arrayParam(ParamImageLabels, labels)
	if o.PushSecret != nil {
		m.owned.param(ParamPushSecret, o.PushSecret.Name)
	}
	if o.To == nil || o.To.Name == "" {
		m.res.Errors = append(m.res.Errors, "spec.output.to: Required value: a Shipwright Build needs an output image (spec.output.image), and this BuildConfig pushes none")
		return
	}
	m.outputSpec = o.To
	kind, name := defaultOutput(o.To)
	if kind == "DockerImage" {
		m.output = name
		m.l.both(p+".to", "spec.output.image")
		if o.PushSecret != nil {
			// ocbuild reads the pushed image's size from an external
			// registry with the credentials Shipwright links from the
			// Build's pushSecret.
			s := o.PushSecret.Name
			m.owned.Spec.Output.PushSecret = &s
			m.l.mapped(p+".pushSecret", "param "+ParamPushSecret+", spec.output.pushSecret")
		}
	} else {
		spec, err := m.resolve(kind, name, o.To.Namespace, false)
		if err != nil {
			m.outputErr = err
			m.l.keptAlways(p+".to", "%s %s not resolved", kind, name)
			m.warn("%s: %s %s not resolved: %v", p+".to", kind, name, err)
		} else {
			m.output = spec
			m.l.both(p+".to", "spec.output.image")
		}
	}
	if o.PushSecret != nil && m.owned.Spec.Output.PushSecret == nil {
		m.l.mapped(p+".pushSecret", "param "+ParamPushSecret)
	}
	m.owned.Spec.Output.Image = m.output
}
