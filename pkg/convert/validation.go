package convert

import (
	"net/url"
	"path"
	"regexp"
	"strings"

	buildv1 "github.com/openshift/api/build/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	pkgvalidate "github.com/ocbuild/ocbuild/pkg/validate"
)

// scpLike is git's user@host:path form.
var scpLike = regexp.MustCompile(`^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:.+$`)

// maxInlineDockerfile is OpenShift's limit on source.dockerfile.
const maxInlineDockerfile = 60000

// Validate applies the rules of OpenShift's BuildConfig validation
// (openshift-apiserver pkg/build/apis/build/validation) that an object read
// from a file may break, with the server's messages, so a user learns from
// convert what the server would answer on apply. Objects read from the
// cluster passed them already. The input is the object as written, before
// server defaulting; defaults are applied where the server applies them
// first (from.kind, output.to.kind).
func Validate(bc *buildv1.BuildConfig) field.ErrorList {
	var errs field.ErrorList
	md := field.NewPath("metadata")
	if bc.Name == "" {
		errs = append(errs, field.Required(md.Child("name"), ""))
	} else if msgs := validation.IsDNS1123Subdomain(bc.Name); len(msgs) > 0 {
		errs = append(errs, field.Invalid(md.Child("name"), bc.Name, pkgvalidate.Brief(msgs)))
	}
	if bc.Namespace != "" {
		if msgs := validation.IsDNS1123Label(bc.Namespace); len(msgs) > 0 {
			errs = append(errs, field.Invalid(md.Child("namespace"), bc.Namespace, pkgvalidate.Brief(msgs)))
		}
	}
	spec := field.NewPath("spec")
	s := &bc.Spec
	switch s.RunPolicy {
	case "", buildv1.BuildRunPolicySerial, buildv1.BuildRunPolicyParallel, buildv1.BuildRunPolicySerialLatestOnly:
	default:
		errs = append(errs, field.Invalid(spec.Child("runPolicy"), s.RunPolicy, "run policy must Parallel, Serial, or SerialLatestOnly"))
	}
	for _, l := range []struct {
		name string
		v    *int32
	}{{"successfulBuildsHistoryLimit", s.SuccessfulBuildsHistoryLimit}, {"failedBuildsHistoryLimit", s.FailedBuildsHistoryLimit}} {
		if l.v != nil && *l.v < 0 {
			errs = append(errs, field.Invalid(spec.Child(l.name), *l.v, "must be greater than or equal to 0"))
		}
	}
	if d := s.CompletionDeadlineSeconds; d != nil && *d <= 0 {
		errs = append(errs, field.Invalid(spec.Child("completionDeadlineSeconds"), *d, "completionDeadlineSeconds must be a positive integer greater than 0"))
	}
	errs = append(errs, validateStrategy(s, spec.Child("strategy"))...)
	errs = append(errs, validateSource(s, spec.Child("source"))...)
	errs = append(errs, validateOutput(&s.Output, spec.Child("output"))...)
	for i, t := range s.Triggers {
		p := spec.Child("triggers").Index(i)
		switch t.Type {
		case "":
			errs = append(errs, field.Required(p.Child("type"), ""))
		case buildv1.GitHubWebHookBuildTriggerType, buildv1.GenericWebHookBuildTriggerType, buildv1.GitLabWebHookBuildTriggerType,
			buildv1.BitbucketWebHookBuildTriggerType, buildv1.ImageChangeBuildTriggerType, buildv1.ConfigChangeBuildTriggerType:
		default:
			errs = append(errs, field.Invalid(p.Child("type"), t.Type, "invalid trigger type"))
		}
	}
	return errs
}

func validateStrategy(s *buildv1.BuildConfigSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	st := &s.Strategy
	n := 0
	for _, set := range []bool{st.SourceStrategy != nil, st.DockerStrategy != nil, st.CustomStrategy != nil, st.JenkinsPipelineStrategy != nil} {
		if set {
			n++
		}
	}
	// A Docker type without dockerStrategy is defaulted to dockerStrategy: {}.
	if n == 0 && st.Type == buildv1.DockerBuildStrategyType {
		n = 1
	}
	if n != 1 {
		errs = append(errs, field.Invalid(p, string(st.Type), "must provide a value for exactly one of sourceStrategy, customStrategy, dockerStrategy, or jenkinsPipelineStrategy"))
		return errs
	}
	switch {
	case st.SourceStrategy != nil:
		sp := p.Child("sourceStrategy")
		errs = append(errs, validateFrom(&st.SourceStrategy.From, sp.Child("from"), true)...)
		errs = append(errs, validateSecretRef(st.SourceStrategy.PullSecret, sp.Child("pullSecret"))...)
		errs = append(errs, validateEnv(st.SourceStrategy.Env, sp.Child("env"))...)
	case st.DockerStrategy != nil:
		dp := p.Child("dockerStrategy")
		ds := st.DockerStrategy
		if ds.From != nil {
			errs = append(errs, validateFrom(ds.From, dp.Child("from"), true)...)
		}
		errs = append(errs, validateSecretRef(ds.PullSecret, dp.Child("pullSecret"))...)
		errs = append(errs, validateEnv(ds.Env, dp.Child("env"))...)
		if ds.DockerfilePath != "" {
			clean := path.Clean(ds.DockerfilePath)
			if strings.HasPrefix(ds.DockerfilePath, "/") || clean == ".." || strings.HasPrefix(clean, "../") {
				errs = append(errs, field.Invalid(dp.Child("dockerfilePath"), ds.DockerfilePath, "dockerfilePath must be a relative path within your source location"))
			}
		}
		if pol := ds.ImageOptimizationPolicy; pol != nil {
			switch *pol {
			case buildv1.ImageOptimizationNone, buildv1.ImageOptimizationSkipLayers, buildv1.ImageOptimizationSkipLayersAndWarn:
			default:
				errs = append(errs, field.Invalid(dp.Child("imageOptimizationPolicy"), *pol, "must be unset, 'None', 'SkipLayers', or 'SkipLayersAndWarn'"))
			}
		}
		src := &s.Source
		if src.Git == nil && src.Binary == nil && src.Dockerfile == nil && len(src.Images) == 0 {
			errs = append(errs, field.Invalid(field.NewPath("spec", "source"), "", "must provide a value for at least one source input(git, binary, dockerfile, images)."))
		}
	case st.CustomStrategy != nil:
		errs = append(errs, validateFrom(&st.CustomStrategy.From, p.Child("customStrategy", "from"), true)...)
	}
	return errs
}

func validateSource(s *buildv1.BuildConfigSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	src := &s.Source
	custom := s.Strategy.CustomStrategy != nil
	if src.Git != nil && src.Binary != nil && !custom {
		errs = append(errs,
			field.Invalid(p.Child("git"), "", "may not be set when binary is also set"),
			field.Invalid(p.Child("binary"), "", "may not be set when git is also set"))
	}
	if g := src.Git; g != nil {
		if g.URI == "" {
			errs = append(errs, field.Required(p.Child("git", "uri"), ""))
		} else if scpLike.MatchString(g.URI) {
			// user@host:path, which OpenShift's git URL parser accepts
		} else if u, err := url.Parse(g.URI); err != nil {
			errs = append(errs, field.Invalid(p.Child("git", "uri"), g.URI, err.Error()))
		} else if u.Scheme == "file" && u.Host != "" {
			errs = append(errs, field.Invalid(p.Child("git", "uri"), g.URI, "file url "+g.URI+" has non-empty host "+u.Host))
		}
	}
	if src.Dockerfile != nil && len(*src.Dockerfile) > maxInlineDockerfile {
		errs = append(errs, field.Invalid(p.Child("dockerfile"), "", "must be smaller than 60000 bytes"))
	}
	if b := src.Binary; b != nil && b.AsFile != "" {
		if strings.ContainsAny(b.AsFile, "/\\") || b.AsFile == "." || b.AsFile == ".." {
			errs = append(errs, field.Invalid(p.Child("binary", "asFile"), b.AsFile, "file name may not contain slashes or relative path segments and must be a valid POSIX filename"))
		}
	}
	if c := src.ContextDir; c != "" && strings.HasPrefix(path.Clean(c), "..") {
		errs = append(errs, field.Invalid(p.Child("contextDir"), c, "context dir must not be a relative path"))
	}
	errs = append(errs, validateSecretRef(src.SourceSecret, p.Child("sourceSecret"))...)
	for i, img := range src.Images {
		errs = append(errs, validateFrom(&img.From, p.Child("images").Index(i).Child("from"), true)...)
	}
	return errs
}

// validateFrom checks an ObjectReference to an image, after the server's
// defaulting of an empty kind to ImageStreamTag (and ImageStream to
// ImageStreamTag name:latest).
func validateFrom(ref *corev1.ObjectReference, p *field.Path, required bool) field.ErrorList {
	kind, name := defaultFrom(ref)
	switch {
	case name == "" && required:
		return field.ErrorList{field.Required(p.Child("name"), "")}
	case kind == "ImageStreamTag":
		if _, _, _, ok := splitStreamRef(kind, name); !ok {
			return field.ErrorList{field.Invalid(p.Child("name"), name, "ImageStreamTag object references must be in the form <name>:<tag>")}
		}
	case kind == "ImageStreamImage":
		if _, _, _, ok := splitStreamRef(kind, name); !ok {
			return field.ErrorList{field.Invalid(p.Child("name"), name, "ImageStreamImage object references must be in the form <name>@<digest>")}
		}
	case kind == "DockerImage":
		if problem := pkgvalidate.PullSpecProblem(name); problem != "" {
			return field.ErrorList{field.Invalid(p.Child("name"), name, "not a valid Docker pull specification: "+problem)}
		}
	default:
		return field.ErrorList{field.Invalid(p.Child("kind"), ref.Kind, "must be 'ImageStreamTag', 'ImageStreamImage', or 'DockerImage'")}
	}
	return nil
}

// defaultFrom is the server's defaulting of a strategy's from: an empty
// kind means ImageStreamTag, ImageStream means ImageStreamTag name:latest.
func defaultFrom(ref *corev1.ObjectReference) (kind, name string) {
	switch ref.Kind {
	case "":
		return "ImageStreamTag", ref.Name
	case "ImageStream":
		return "ImageStreamTag", ref.Name + ":latest"
	}
	return ref.Kind, ref.Name
}

// defaultOutput is the server's conversion of output.to: an empty kind or
// ImageStream becomes ImageStreamTag with ":latest" appended to the name,
// even when it has a tag already (then the name is invalid).
func defaultOutput(ref *corev1.ObjectReference) (kind, name string) {
	switch ref.Kind {
	case "", "ImageStream":
		return "ImageStreamTag", ref.Name + ":latest"
	}
	return ref.Kind, ref.Name
}

func validateOutput(o *buildv1.BuildOutput, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateSecretRef(o.PushSecret, p.Child("pushSecret"))...)
	seen := map[string]bool{}
	for i, l := range o.ImageLabels {
		lp := p.Child("imageLabels").Index(i).Child("name")
		switch {
		case l.Name == "":
			errs = append(errs, field.Required(lp, ""))
		case seen[l.Name]:
			errs = append(errs, field.Invalid(lp, l.Name, "duplicate name"))
		default:
			if msgs := validation.IsQualifiedName(l.Name); len(msgs) > 0 {
				errs = append(errs, field.Invalid(lp, l.Name, pkgvalidate.Brief(msgs)))
			}
		}
		seen[l.Name] = true
	}
	if o.To == nil {
		return errs
	}
	tp := p.Child("to")
	kind, name := defaultOutput(o.To)
	switch kind {
	case "ImageStreamTag":
		if _, _, _, ok := splitStreamRef(kind, name); !ok {
			hint := ""
			if o.To.Kind == "" {
				hint = " (without kind, OpenShift appends :latest to the name: set kind: ImageStreamTag)"
			}
			errs = append(errs, field.Invalid(tp.Child("name"), name, "ImageStreamTag object references must be in the form <name>:<tag>"+hint))
		}
	case "DockerImage":
		if problem := pkgvalidate.PullSpecProblem(name); problem != "" {
			errs = append(errs, field.Invalid(tp.Child("name"), name, "name is not a valid Docker pull specification: "+problem))
		}
		if o.To.Namespace != "" {
			errs = append(errs, field.Invalid(tp.Child("namespace"), o.To.Namespace, "namespace is not valid when used with a 'DockerImage'"))
		}
	default:
		errs = append(errs, field.Invalid(tp.Child("kind"), o.To.Kind, "the target of build output must be an 'ImageStreamTag' or 'DockerImage'"))
	}
	return errs
}

func validateSecretRef(s *corev1.LocalObjectReference, p *field.Path) field.ErrorList {
	if s != nil && s.Name == "" {
		return field.ErrorList{field.Required(p.Child("name"), "")}
	}
	return nil
}

func validateEnv(env []corev1.EnvVar, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, e := range env {
		np := p.Index(i).Child("name")
		if e.Name == "" {
			errs = append(errs, field.Required(np, ""))
		} else if msgs := validation.IsEnvVarName(e.Name); len(msgs) > 0 {
			errs = append(errs, field.Invalid(np, e.Name, pkgvalidate.Brief(msgs)))
		}
		if e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil {
			errs = append(errs, field.Invalid(p.Index(i).Child("valueFrom", "resourceFieldRef"), "", "ResourceFieldRef is not valid for valueFrom in build environment variables"))
		}
	}
	return errs
}
