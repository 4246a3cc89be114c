package sim

// Admission webhooks for buildconfigs and builds: OpenShift's defaulting and
// conversion (§2.2), the validation table (§3), updates without
// resourceVersion refused (§1), Build spec immutability and terminal phases
// (§3, §5.1), and the build-strategy permission check (§9.2).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/distribution/reference"
	buildv1 "github.com/openshift/api/build/v1"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
)

// Webhook names (they appear in kube-apiserver's denial prefix, which the
// front door strips again).
const (
	mutatingWebhookName   = "defaults.build.openshift.io"
	validatingWebhookName = "validation.build.openshift.io"
	webhookConfigName     = "build.openshift.io-simulator"
)

// deniedPrefixes are the prefixes kube-apiserver puts before a webhook's
// message; OpenShift has none.
var deniedPrefixes = []string{
	fmt.Sprintf("admission webhook %q denied the request: ", mutatingWebhookName),
	fmt.Sprintf("admission webhook %q denied the request: ", validatingWebhookName),
}

// stripDenied removes kube-apiserver's webhook denial prefix from a message.
func stripDenied(msg string) string {
	for _, p := range deniedPrefixes {
		if s, ok := strings.CutPrefix(msg, p); ok {
			return s
		}
	}
	return msg
}

// ---------------------------------------------------------------------------
// Defaulting (§2.2)

const (
	kindImageStreamTag   = "ImageStreamTag"
	kindImageStreamImage = "ImageStreamImage"
	kindImageStream      = "ImageStream"
	kindDockerImage      = "DockerImage"
)

// joinImageStreamTag is JoinImageStreamTag: name + ":" + tag, tag
// defaulting to latest (it appends even when name already has a tag).
func joinImageStreamTag(name, tag string) string {
	if tag == "" {
		tag = "latest"
	}
	return name + ":" + tag
}

// defaultFrom applies the from-reference defaults: an empty kind becomes
// ImageStreamTag (if defaultKind) and ImageStream becomes ImageStreamTag
// name:latest.
func defaultFrom(ref *corev1.ObjectReference, defaultKind bool) {
	if ref == nil {
		return
	}
	switch ref.Kind {
	case "":
		if defaultKind {
			ref.Kind = kindImageStreamTag
		}
	case kindImageStream:
		ref.Kind = kindImageStreamTag
		ref.Name = joinImageStreamTag(ref.Name, "")
	}
}

// defaultCommonSpec applies §2.2's defaults and conversions to a BuildConfig's
// or Build's spec.
func defaultCommonSpec(spec *buildv1.CommonSpec) {
	src := &spec.Source
	if src.Type == buildv1.BuildSourceBinary && src.Binary == nil {
		src.Binary = &buildv1.BinaryBuildSource{}
	}
	switch {
	case src.Git != nil:
		src.Type = buildv1.BuildSourceGit
	case src.Binary != nil:
		src.Type = buildv1.BuildSourceBinary
	case src.Dockerfile != nil:
		src.Type = buildv1.BuildSourceDockerfile
	case len(src.Images) > 0:
		src.Type = buildv1.BuildSourceImage
	default:
		src.Type = buildv1.BuildSourceNone
	}
	for i := range src.Images {
		defaultFrom(&src.Images[i].From, false)
	}
	// Validation stores the cleaned paths (a valid contextDir or
	// dockerfilePath is cleaned, "." becomes empty).
	if src.ContextDir != "" {
		if c := path.Clean(src.ContextDir); !strings.HasPrefix(c, "..") {
			if c == "." {
				c = ""
			}
			src.ContextDir = c
		}
	}

	st := &spec.Strategy
	if st.Type == buildv1.DockerBuildStrategyType && st.DockerStrategy == nil {
		st.DockerStrategy = &buildv1.DockerBuildStrategy{}
	}
	switch {
	case st.DockerStrategy != nil:
		st.Type = buildv1.DockerBuildStrategyType
	case st.SourceStrategy != nil:
		st.Type = buildv1.SourceBuildStrategyType
	case st.CustomStrategy != nil:
		st.Type = buildv1.CustomBuildStrategyType
	case st.JenkinsPipelineStrategy != nil:
		st.Type = buildv1.JenkinsPipelineBuildStrategyType
	default:
		st.Type = ""
	}
	if s := st.SourceStrategy; s != nil {
		defaultFrom(&s.From, true)
	}
	if s := st.DockerStrategy; s != nil {
		defaultFrom(s.From, true)
		if s.DockerfilePath != "" {
			if c := path.Clean(s.DockerfilePath); !strings.HasPrefix(c, "..") && !strings.HasPrefix(c, "/") {
				if c == "." {
					c = ""
				}
				s.DockerfilePath = c
			}
		}
	}
	if s := st.CustomStrategy; s != nil {
		defaultFrom(&s.From, true)
	}

	if to := spec.Output.To; to != nil && (to.Kind == "" || to.Kind == kindImageStream) {
		to.Kind = kindImageStreamTag
		to.Name = joinImageStreamTag(to.Name, "")
	}
}

// knownTriggers maps accepted trigger types (and their deprecated lower-case
// spellings) to the canonical type.
var knownTriggers = map[buildv1.BuildTriggerType]buildv1.BuildTriggerType{
	buildv1.GitHubWebHookBuildTriggerType:            buildv1.GitHubWebHookBuildTriggerType,
	buildv1.GitHubWebHookBuildTriggerTypeDeprecated:  buildv1.GitHubWebHookBuildTriggerType,
	buildv1.GenericWebHookBuildTriggerType:           buildv1.GenericWebHookBuildTriggerType,
	buildv1.GenericWebHookBuildTriggerTypeDeprecated: buildv1.GenericWebHookBuildTriggerType,
	buildv1.GitLabWebHookBuildTriggerType:            buildv1.GitLabWebHookBuildTriggerType,
	buildv1.BitbucketWebHookBuildTriggerType:         buildv1.BitbucketWebHookBuildTriggerType,
	buildv1.ImageChangeBuildTriggerType:              buildv1.ImageChangeBuildTriggerType,
	buildv1.ImageChangeBuildTriggerTypeDeprecated:    buildv1.ImageChangeBuildTriggerType,
	buildv1.ConfigChangeBuildTriggerType:             buildv1.ConfigChangeBuildTriggerType,
}

// defaultBuildConfig applies the BuildConfig defaults; create adds the
// history limits (set only when created through build.openshift.io).
func defaultBuildConfig(bc *buildv1.BuildConfig, create bool) {
	if bc.Spec.RunPolicy == "" {
		bc.Spec.RunPolicy = buildv1.BuildRunPolicySerial
	}
	if create {
		five := int32(5)
		if bc.Spec.SuccessfulBuildsHistoryLimit == nil {
			bc.Spec.SuccessfulBuildsHistoryLimit = &five
		}
		if bc.Spec.FailedBuildsHistoryLimit == nil {
			f := five
			bc.Spec.FailedBuildsHistoryLimit = &f
		}
	}
	if bc.Spec.Triggers != nil {
		kept := make([]buildv1.BuildTriggerPolicy, 0, len(bc.Spec.Triggers))
		for _, t := range bc.Spec.Triggers {
			canon, ok := knownTriggers[t.Type]
			if !ok {
				continue // unknown trigger types are silently dropped
			}
			t.Type = canon
			if t.ImageChange != nil {
				defaultFrom(t.ImageChange.From, false)
			}
			kept = append(kept, t)
		}
		bc.Spec.Triggers = kept
	}
	defaultCommonSpec(&bc.Spec.CommonSpec)
}

// defaultBuild applies the Build defaults.
func defaultBuild(b *buildv1.Build) {
	defaultCommonSpec(&b.Spec.CommonSpec)
}

// ---------------------------------------------------------------------------
// Validation (§3)

const maxDockerfileLength = 60000

// terminalPhase reports whether a Build phase is terminal.
func terminalPhase(p buildv1.BuildPhase) bool {
	switch p {
	case buildv1.BuildPhaseNew, buildv1.BuildPhasePending, buildv1.BuildPhaseRunning, "":
		return false
	}
	return true
}

func validateBuildConfig(bc *buildv1.BuildConfig) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	errs = append(errs, validateCommonSpec(&bc.Spec.CommonSpec, spec)...)
	errs = append(errs, validateTriggers(bc.Spec.Triggers, strategyFrom(&bc.Spec.Strategy), spec.Child("triggers"))...)
	switch bc.Spec.RunPolicy {
	case buildv1.BuildRunPolicyParallel, buildv1.BuildRunPolicySerial, buildv1.BuildRunPolicySerialLatestOnly:
	default:
		errs = append(errs, field.Invalid(spec.Child("runPolicy"), string(bc.Spec.RunPolicy), "run policy must Parallel, Serial, or SerialLatestOnly"))
	}
	if l := bc.Spec.SuccessfulBuildsHistoryLimit; l != nil && *l < 0 {
		errs = append(errs, field.Invalid(spec.Child("successfulBuildsHistoryLimit"), int64(*l), "must be greater than or equal to 0"))
	}
	if l := bc.Spec.FailedBuildsHistoryLimit; l != nil && *l < 0 {
		errs = append(errs, field.Invalid(spec.Child("failedBuildsHistoryLimit"), int64(*l), "must be greater than or equal to 0"))
	}
	return errs
}

func validateBuild(b *buildv1.Build) field.ErrorList {
	return validateCommonSpec(&b.Spec.CommonSpec, field.NewPath("spec"))
}

// validateBuildUpdate: the spec is immutable except output.pushSecret and a
// revision set where there was none; a terminal phase cannot change.
func validateBuildUpdate(b, old *buildv1.Build) field.ErrorList {
	errs := validateBuild(b)
	if terminalPhase(old.Status.Phase) && b.Status.Phase != old.Status.Phase {
		errs = append(errs, field.Invalid(field.NewPath("status", "phase"), string(b.Status.Phase), "phase cannot be updated from a terminal state"))
	}
	oldSpec, newSpec := old.Spec.DeepCopy(), b.Spec.DeepCopy()
	oldSpec.Output.PushSecret, newSpec.Output.PushSecret = nil, nil
	if oldSpec.Revision == nil {
		newSpec.Revision = nil
	}
	if !apiequality.Semantic.DeepEqual(oldSpec, newSpec) {
		errs = append(errs, field.Invalid(field.NewPath("spec"), "content of spec is not printed out, please refer to the \"details\"",
			"spec is immutable, diff: "+shortDiff(oldSpec, newSpec)))
	}
	return errs
}

// shortDiff is a compact diff of two specs.
func shortDiff(a, b any) string {
	d := diff.Diff(a, b)
	var keep []string
	for _, l := range strings.Split(d, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "-") || strings.HasPrefix(t, "+") {
			keep = append(keep, t)
		}
	}
	s := strings.Join(keep, " ")
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}

func validateCommonSpec(spec *buildv1.CommonSpec, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	s := spec.Strategy
	src := spec.Source
	if s.DockerStrategy != nil && src.Git == nil && src.Binary == nil && src.Dockerfile == nil && len(src.Images) == 0 {
		return append(errs, field.Invalid(fld.Child("source"), src,
			"must provide a value for at least one source input(git, binary, dockerfile, images)."))
	}
	errs = append(errs, validateSource(&spec.Source, s.CustomStrategy != nil, s.DockerStrategy != nil, fld.Child("source"))...)
	if sa := spec.ServiceAccount; sa != "" {
		for _, msg := range validation.IsDNS1123Subdomain(sa) {
			errs = append(errs, field.Invalid(fld.Child("serviceAccount"), sa, msg))
		}
	}
	if d := spec.CompletionDeadlineSeconds; d != nil && *d <= 0 {
		errs = append(errs, field.Invalid(fld.Child("completionDeadlineSeconds"), *d, "completionDeadlineSeconds must be a positive integer greater than 0"))
	}
	errs = append(errs, validateOutput(&spec.Output, fld.Child("output"))...)
	errs = append(errs, validateStrategy(&spec.Strategy, fld.Child("strategy"))...)
	if pc := spec.PostCommit; len(pc.Command) > 0 && pc.Script != "" {
		errs = append(errs, field.Invalid(fld.Child("postCommit"), pc, "cannot use command and script together"))
	}
	for k, v := range spec.NodeSelector {
		if len(validation.IsQualifiedName(k)) > 0 || len(validation.IsValidLabelValue(v)) > 0 {
			errs = append(errs, field.Invalid(fld.Child("nodeSelector").Key(k), v, "must be a valid node selector"))
		}
	}
	return errs
}

var scpLikeURL = regexp.MustCompile(`^(?:[\w.-]+@)?[\w.-]+:[^/].*$|^(?:[\w.-]+@)?[\w.-]+:/.*$`)

// validPOSIXFileName: no slashes, not "." or "..", non-empty, no NUL.
func validPOSIXFileName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00")
}

func validateSource(src *buildv1.BuildSource, isCustom, isDocker bool, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if !isCustom && src.Git != nil && src.Binary != nil {
		errs = append(errs,
			field.Invalid(fld.Child("git"), "", "may not be set when binary is also set"),
			field.Invalid(fld.Child("binary"), "", "may not be set when git is also set"))
		return errs
	}
	if src.Dockerfile != nil && len(*src.Dockerfile) > maxDockerfileLength {
		errs = append(errs, field.Invalid(fld.Child("dockerfile"), "", fmt.Sprintf("must be smaller than %d bytes", maxDockerfileLength)))
	}
	if g := src.Git; g != nil {
		switch {
		case g.URI == "":
			errs = append(errs, field.Required(fld.Child("git", "uri"), ""))
		case scpLikeURL.MatchString(g.URI) && !strings.Contains(g.URI, "://"):
		default:
			if _, err := url.Parse(g.URI); err != nil {
				errs = append(errs, field.Invalid(fld.Child("git", "uri"), g.URI, err.Error()))
			}
		}
		for name, p := range map[string]*string{"httpProxy": g.HTTPProxy, "httpsProxy": g.HTTPSProxy} {
			if p != nil && *p != "" {
				if _, err := url.Parse(*p); err != nil {
					errs = append(errs, field.Invalid(fld.Child("git", name), *p, err.Error()))
				}
			}
		}
	}
	if b := src.Binary; b != nil && b.AsFile != "" && !validPOSIXFileName(b.AsFile) {
		errs = append(errs, field.Invalid(fld.Child("binary", "asFile"), b.AsFile,
			"file name may not contain slashes or relative path segments and must be a valid POSIX filename"))
	}
	for i, img := range src.Images {
		p := fld.Child("images").Index(i)
		errs = append(errs, validateFromImageReference(&img.From, p.Child("from"))...)
		if img.PullSecret != nil && img.PullSecret.Name == "" {
			errs = append(errs, field.Required(p.Child("pullSecret", "name"), ""))
		}
		if len(img.Paths) == 0 && len(img.As) == 0 {
			errs = append(errs, field.Required(p.Child("paths"), "paths or as must be provided"))
		}
		for j, ip := range img.Paths {
			pp := p.Child("paths").Index(j)
			if ip.SourcePath == "" {
				errs = append(errs, field.Required(pp.Child("sourcePath"), ""))
			} else if !path.IsAbs(ip.SourcePath) {
				errs = append(errs, field.Invalid(pp.Child("sourcePath"), ip.SourcePath, "must be an absolute path"))
			}
			if strings.HasPrefix(path.Clean(ip.DestinationDir), "..") {
				errs = append(errs, field.Invalid(pp.Child("destinationDir"), ip.DestinationDir, "destination dir cannot start with '..'"))
			}
		}
	}
	if src.ContextDir != "" && strings.HasPrefix(path.Clean(src.ContextDir), "..") {
		errs = append(errs, field.Invalid(fld.Child("contextDir"), src.ContextDir, "context dir must not be a relative path"))
	}
	if src.SourceSecret != nil && src.SourceSecret.Name == "" {
		errs = append(errs, field.Required(fld.Child("sourceSecret", "name"), ""))
	}
	for i, s := range src.Secrets {
		p := fld.Child("secrets").Index(i)
		if s.Secret.Name == "" {
			errs = append(errs, field.Required(p.Child("secret", "name"), ""))
		}
		errs = append(errs, validateDestinationDir(s.DestinationDir, isDocker, p.Child("destinationDir"))...)
	}
	for i, c := range src.ConfigMaps {
		p := fld.Child("configMaps").Index(i)
		if c.ConfigMap.Name == "" {
			errs = append(errs, field.Required(p.Child("configMap", "name"), ""))
		}
		errs = append(errs, validateDestinationDir(c.DestinationDir, isDocker, p.Child("destinationDir"))...)
	}
	return errs
}

func validateDestinationDir(dir string, isDocker bool, fld *field.Path) field.ErrorList {
	if dir == "" {
		return nil
	}
	if isDocker && path.IsAbs(dir) {
		return field.ErrorList{field.Invalid(fld, dir, "for the docker strategy the destinationDir has to be relative path")}
	}
	if strings.HasPrefix(path.Clean(dir), "..") {
		return field.ErrorList{field.Invalid(fld, dir, "destination dir cannot start with '..'")}
	}
	return nil
}

// validImageStreamTag: exactly <name>:<tag>, no digest.
func validImageStreamTag(name string) bool {
	if strings.Contains(name, "@") {
		return false
	}
	parts := strings.Split(name, ":")
	return len(parts) == 2 && parts[0] != "" && parts[1] != ""
}

func validImageStreamImage(name string) bool {
	parts := strings.Split(name, "@")
	return len(parts) == 2 && parts[0] != "" && parts[1] != ""
}

func parsePullSpec(name string) error {
	_, err := reference.Parse(name)
	return err
}

func validateFromImageReference(ref *corev1.ObjectReference, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if ref.Kind == "" {
		errs = append(errs, field.Required(fld.Child("kind"), ""))
	}
	if ref.Name == "" {
		return append(errs, field.Required(fld.Child("name"), ""))
	}
	switch ref.Kind {
	case "":
	case kindImageStreamTag:
		if !validImageStreamTag(ref.Name) {
			errs = append(errs, field.Invalid(fld.Child("name"), ref.Name, "must be <name>:<tag>"))
		}
		if ref.Namespace != "" {
			for _, msg := range validation.IsDNS1123Label(ref.Namespace) {
				errs = append(errs, field.Invalid(fld.Child("namespace"), ref.Namespace, msg))
			}
		}
	case kindImageStreamImage:
		if !validImageStreamImage(ref.Name) {
			errs = append(errs, field.Invalid(fld.Child("name"), ref.Name, "must be <name>@<id>"))
		}
	case kindDockerImage:
		if ref.Namespace != "" {
			errs = append(errs, field.Invalid(fld.Child("namespace"), ref.Namespace, "namespace is not valid when used with a 'DockerImage'"))
		}
		if err := parsePullSpec(ref.Name); err != nil {
			errs = append(errs, field.Invalid(fld.Child("name"), ref.Name, fmt.Sprintf("not a valid Docker pull specification: %v", err)))
		}
	default:
		errs = append(errs, field.Invalid(fld.Child("kind"), ref.Kind, "must be 'ImageStreamTag', 'ImageStreamImage', or 'DockerImage'"))
	}
	return errs
}

func validateOutput(out *buildv1.BuildOutput, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if to := out.To; to != nil {
		p := fld.Child("to")
		switch to.Kind {
		case kindImageStreamTag:
			if !validImageStreamTag(to.Name) {
				errs = append(errs, field.Invalid(p.Child("name"), to.Name, "ImageStreamTag object references must be in the form <name>:<tag>"))
			}
			if to.Namespace != "" {
				for _, msg := range validation.IsDNS1123Label(to.Namespace) {
					errs = append(errs, field.Invalid(p.Child("namespace"), to.Namespace, msg))
				}
			}
		case kindDockerImage:
			if to.Namespace != "" {
				errs = append(errs, field.Invalid(p.Child("namespace"), to.Namespace, "namespace is not valid when used with a 'DockerImage'"))
			}
			if to.Name == "" {
				errs = append(errs, field.Required(p.Child("name"), ""))
			} else if err := parsePullSpec(to.Name); err != nil {
				errs = append(errs, field.Invalid(p.Child("name"), to.Name, fmt.Sprintf("name is not a valid Docker pull specification: %v", err)))
			}
		default:
			errs = append(errs, field.Invalid(p.Child("kind"), to.Kind, "the target of build output must be an 'ImageStreamTag' or 'DockerImage'"))
		}
	}
	if out.PushSecret != nil && out.PushSecret.Name == "" {
		errs = append(errs, field.Required(fld.Child("pushSecret", "name"), ""))
	}
	seen := map[string]bool{}
	for i, l := range out.ImageLabels {
		p := fld.Child("imageLabels").Index(i).Child("name")
		switch {
		case l.Name == "":
			errs = append(errs, field.Required(p, ""))
		case len(validation.IsQualifiedName(l.Name)) > 0:
			for _, msg := range validation.IsQualifiedName(l.Name) {
				errs = append(errs, field.Invalid(p, l.Name, msg))
			}
		case seen[l.Name]:
			errs = append(errs, field.Invalid(p, l.Name, "duplicate name"))
		}
		seen[l.Name] = true
	}
	return errs
}

func validateStrategy(s *buildv1.BuildStrategy, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	for _, set := range []bool{s.SourceStrategy != nil, s.DockerStrategy != nil, s.CustomStrategy != nil, s.JenkinsPipelineStrategy != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return append(errs, field.Invalid(fld, s, "must provide a value for exactly one of sourceStrategy, customStrategy, dockerStrategy, or jenkinsPipelineStrategy"))
	}
	pullSecret := func(ps *corev1.LocalObjectReference, p *field.Path) {
		if ps != nil && ps.Name == "" {
			errs = append(errs, field.Required(p.Child("pullSecret", "name"), ""))
		}
	}
	switch {
	case s.SourceStrategy != nil:
		p := fld.Child("sourceStrategy")
		errs = append(errs, validateFromImageReference(&s.SourceStrategy.From, p.Child("from"))...)
		pullSecret(s.SourceStrategy.PullSecret, p)
		errs = append(errs, validateEnv(s.SourceStrategy.Env, p.Child("env"))...)
	case s.DockerStrategy != nil:
		p := fld.Child("dockerStrategy")
		d := s.DockerStrategy
		if d.From != nil {
			errs = append(errs, validateFromImageReference(d.From, p.Child("from"))...)
		}
		pullSecret(d.PullSecret, p)
		errs = append(errs, validateEnv(d.Env, p.Child("env"))...)
		errs = append(errs, validateEnv(d.BuildArgs, p.Child("buildArgs"))...)
		if d.DockerfilePath != "" {
			c := path.Clean(d.DockerfilePath)
			if strings.HasPrefix(c, "/") || strings.HasPrefix(c, "..") {
				errs = append(errs, field.Invalid(p.Child("dockerfilePath"), d.DockerfilePath, "dockerfilePath must be a relative path within your source location"))
			}
		}
		if pol := d.ImageOptimizationPolicy; pol != nil {
			switch *pol {
			case buildv1.ImageOptimizationNone, buildv1.ImageOptimizationSkipLayers, buildv1.ImageOptimizationSkipLayersAndWarn:
			default:
				errs = append(errs, field.Invalid(p.Child("imageOptimizationPolicy"), string(*pol), "must be unset, 'None', 'SkipLayers', or 'SkipLayersAndWarn'"))
			}
		}
	case s.CustomStrategy != nil:
		p := fld.Child("customStrategy")
		errs = append(errs, validateFromImageReference(&s.CustomStrategy.From, p.Child("from"))...)
		pullSecret(s.CustomStrategy.PullSecret, p)
		errs = append(errs, validateEnv(s.CustomStrategy.Env, p.Child("env"))...)
		for i, sec := range s.CustomStrategy.Secrets {
			sp := p.Child("secrets").Index(i)
			if sec.SecretSource.Name == "" {
				errs = append(errs, field.Required(sp.Child("secretSource", "name"), ""))
			}
			if sec.MountPath == "" {
				errs = append(errs, field.Required(sp.Child("mountPath"), ""))
			}
		}
	case s.JenkinsPipelineStrategy != nil:
		p := fld.Child("jenkinsPipelineStrategy")
		j := s.JenkinsPipelineStrategy
		if j.Jenkinsfile != "" && j.JenkinsfilePath != "" {
			errs = append(errs, field.Invalid(p.Child("jenkinsfile"), "", "must provide a value for exactly one of jenkinsfilePath or jenkinsfile"))
		}
		errs = append(errs, validateEnv(j.Env, p.Child("env"))...)
	}
	return errs
}

func validateEnv(env []corev1.EnvVar, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, e := range env {
		p := fld.Index(i)
		if e.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		} else {
			for _, msg := range validation.IsEnvVarName(e.Name) {
				errs = append(errs, field.Invalid(p.Child("name"), e.Name, msg))
			}
		}
		if e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil {
			errs = append(errs, field.Invalid(p.Child("valueFrom", "ResourceFieldRef"), "", "ResourceFieldRef is not valid for valueFrom in build environment variables"))
		}
	}
	return errs
}

// strategyFrom is the strategy's from reference (for default ImageChange
// triggers).
func strategyFrom(s *buildv1.BuildStrategy) *corev1.ObjectReference {
	switch {
	case s.SourceStrategy != nil:
		return &s.SourceStrategy.From
	case s.DockerStrategy != nil:
		return s.DockerStrategy.From
	case s.CustomStrategy != nil:
		return &s.CustomStrategy.From
	}
	return nil
}

func validateTriggers(triggers []buildv1.BuildTriggerPolicy, from *corev1.ObjectReference, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	tags := map[string]bool{}
	for i, t := range triggers {
		p := fld.Index(i)
		webhook := func(w *buildv1.WebHookTrigger, child string, isGit bool) {
			if w == nil {
				errs = append(errs, field.Required(p.Child(child), ""))
				return
			}
			if w.Secret == "" && w.SecretReference == nil {
				errs = append(errs, field.Invalid(p.Child(child), "", "must provide a value for at least one of secret or secretReference"))
			}
			if w.SecretReference != nil && w.SecretReference.Name == "" {
				errs = append(errs, field.Required(p.Child(child, "secretReference", "name"), ""))
			}
			if isGit && w.AllowEnv {
				errs = append(errs, field.Invalid(p.Child(child, "allowEnv"), w.AllowEnv, "git webhooks cannot allow env vars"))
			}
		}
		switch t.Type {
		case "":
			errs = append(errs, field.Required(p.Child("type"), ""))
		case buildv1.GitHubWebHookBuildTriggerType:
			webhook(t.GitHubWebHook, "github", true)
		case buildv1.GitLabWebHookBuildTriggerType:
			webhook(t.GitLabWebHook, "gitlab", true)
		case buildv1.BitbucketWebHookBuildTriggerType:
			webhook(t.BitbucketWebHook, "bitbucket", true)
		case buildv1.GenericWebHookBuildTriggerType:
			webhook(t.GenericWebHook, "generic", false)
		case buildv1.ConfigChangeBuildTriggerType:
		case buildv1.ImageChangeBuildTriggerType:
			ic := t.ImageChange
			if ic == nil {
				errs = append(errs, field.Required(p.Child("imageChange"), ""))
				continue
			}
			ref := ic.From
			if ref == nil {
				if from == nil || from.Kind != kindImageStreamTag {
					errs = append(errs, field.Invalid(p.Child("imageChange"), "", "a default ImageChange trigger can only be used when the build strategy includes an ImageStreamTag reference."))
					continue
				}
				ref = from
			} else if ref.Kind != kindImageStreamTag {
				errs = append(errs, field.Invalid(p.Child("imageChange", "from", "kind"), ref.Kind, "only an ImageStreamTag type of reference is allowed"))
				continue
			}
			key := ref.Namespace + "/" + ref.Name
			if tags[key] {
				errs = append(errs, field.Invalid(fld, "", "multiple ImageChange triggers refer to the same image stream tag"))
			}
			tags[key] = true
		default:
			errs = append(errs, field.Invalid(p.Child("type"), string(t.Type), "invalid trigger type"))
		}
	}
	return errs
}

// ---------------------------------------------------------------------------
// Build-strategy admission (§9.2)

// strategyOf returns the builds/<subresource> a strategy needs and its
// display name ("" when no strategy is set).
func strategyOf(s *buildv1.BuildStrategy) (subresource, display string) {
	switch {
	case s.DockerStrategy != nil:
		if p := s.DockerStrategy.ImageOptimizationPolicy; p != nil && *p != buildv1.ImageOptimizationNone {
			return "optimizeddocker", "Docker"
		}
		return "docker", "Docker"
	case s.SourceStrategy != nil:
		return "source", "Source"
	case s.CustomStrategy != nil:
		return "custom", "Custom"
	case s.JenkinsPipelineStrategy != nil:
		return "jenkinspipeline", "JenkinsPipeline"
	}
	return "", ""
}

// accessChecker answers SubjectAccessReviews.
type accessChecker interface {
	// check reports whether user may do attrs; reason is the authorizer's.
	check(ctx context.Context, user authenticationv1.UserInfo, attrs authorizationv1.ResourceAttributes) (allowed bool, reason string, err error)
}

// sarChecker checks with SubjectAccessReview through the admin client.
type sarChecker struct{ kube kubernetes.Interface }

func (c sarChecker) check(ctx context.Context, user authenticationv1.UserInfo, attrs authorizationv1.ResourceAttributes) (bool, string, error) {
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar, err := c.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			ResourceAttributes: &attrs,
			User:               user.Username,
			Groups:             user.Groups,
			UID:                user.UID,
			Extra:              extra,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, "", err
	}
	return sar.Status.Allowed, sar.Status.Reason, nil
}

// strategyDenied is the 403 for a strategy the user may not use, on the
// resource gr named name.
func strategyDenied(gr schema.GroupResource, name, display string) *apierrors.StatusError {
	return apierrors.NewForbidden(gr, name, fmt.Errorf("build strategy %s is not allowed", display))
}

// checkStrategy runs the build-strategy SubjectAccessReview for user; nil
// means allowed.
func checkStrategy(ctx context.Context, ac accessChecker, user authenticationv1.UserInfo, gr schema.GroupResource, namespace, name string, s *buildv1.BuildStrategy) *apierrors.StatusError {
	sub, display := strategyOf(s)
	if sub == "" {
		return nil
	}
	allowed, _, err := ac.check(ctx, user, authorizationv1.ResourceAttributes{
		Namespace: namespace, Verb: "create", Group: Group, Resource: "builds", Subresource: sub, Name: name,
	})
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("checking build strategy permission: %w", err))
	}
	if !allowed {
		return strategyDenied(gr, name, display)
	}
	return nil
}

// ---------------------------------------------------------------------------
// The webhook server

// admitter holds what the admission handlers need.
type admitter struct {
	access accessChecker
	// loopbackUser is the simulator's own (admin) identity, standing for
	// OpenShift's loopback client: no strategy check.
	loopbackUser string
	// secrets lists secrets as the requesting user, for source-secret
	// injection (nil: no injection).
	secrets secretLister
	// log receives diagnostics (nil: discarded).
	log func(format string, args ...any)
}

func (a *admitter) logf(format string, args ...any) {
	if a.log != nil {
		a.log(format, args...)
	}
}

func (a *admitter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, fmt.Sprintf("bad AdmissionReview: %v", err), http.StatusBadRequest)
		return
	}
	var resp *admissionv1.AdmissionResponse
	switch r.URL.Path {
	case "/mutate":
		resp = a.mutate(r.Context(), review.Request)
	case "/validate":
		resp = a.validate(r.Context(), review.Request)
	default:
		http.NotFound(w, r)
		return
	}
	resp.UID = review.Request.UID
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	if out.APIVersion == "" {
		out.APIVersion, out.Kind = "admission.k8s.io/v1", "AdmissionReview"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func allowed() *admissionv1.AdmissionResponse { return &admissionv1.AdmissionResponse{Allowed: true} }

func denied(err *apierrors.StatusError) *admissionv1.AdmissionResponse {
	st := err.ErrStatus
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &st}
}

func kindOf(resource string) string {
	if resource == "buildconfigs" {
		return "BuildConfig"
	}
	return "Build"
}

// rawMap decodes a raw object into a generic map.
func rawMap(raw []byte) (map[string]any, error) {
	m := map[string]any{}
	if len(raw) == 0 {
		return m, nil
	}
	err := json.Unmarshal(raw, &m)
	return m, err
}

// toGeneric round-trips v through JSON into generic values.
func toGeneric(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	err = json.Unmarshal(b, &out)
	return out, err
}

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

func (a *admitter) mutate(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	res := req.Resource.Resource
	if req.Resource.Group == ImageGroup && res == "imagestreams" && req.SubResource == "" {
		return a.mutateImageStream(req)
	}
	if req.Resource.Group != Group || (res != "buildconfigs" && res != "builds") || req.SubResource != "" {
		return allowed()
	}
	obj, err := rawMap(req.Object.Raw)
	if err != nil {
		return denied(apierrors.NewBadRequest(err.Error()))
	}
	if req.Operation == admissionv1.Update {
		meta, _ := obj["metadata"].(map[string]any)
		if rv, _ := meta["resourceVersion"].(string); rv == "" {
			// AllowUnconditionalUpdate() is false for builds and buildconfigs.
			qualifiedKind := schema.GroupKind{Group: Group, Kind: res}
			return denied(apierrors.NewInvalid(qualifiedKind, req.Name, field.ErrorList{
				field.Invalid(field.NewPath("metadata", "resourceVersion"), uint64(0), "must be specified for an update")}))
		}
	}
	var spec, status any
	switch res {
	case "buildconfigs":
		var bc buildv1.BuildConfig
		if err := json.Unmarshal(req.Object.Raw, &bc); err != nil {
			return denied(apierrors.NewBadRequest(err.Error()))
		}
		defaultBuildConfig(&bc, req.Operation == admissionv1.Create)
		if req.Operation == admissionv1.Create {
			bc.Status.LastVersion = 0 // written only by the server
			if bc.Name == "" {
				bc.Name = req.Name
			}
			a.injectSourceSecret(ctx, req.UserInfo, req.Namespace, &bc)
		} else {
			var old buildv1.BuildConfig
			if err := json.Unmarshal(req.OldObject.Raw, &old); err == nil && bc.Status.LastVersion < old.Status.LastVersion {
				bc.Status.LastVersion = old.Status.LastVersion // never decreases
			}
		}
		spec, err = toGeneric(bc.Spec)
		if err == nil {
			status, err = mergeStatus(obj["status"], map[string]any{"lastVersion": bc.Status.LastVersion})
		}
	case "builds":
		var b buildv1.Build
		if err := json.Unmarshal(req.Object.Raw, &b); err != nil {
			return denied(apierrors.NewBadRequest(err.Error()))
		}
		defaultBuild(&b)
		spec, err = toGeneric(b.Spec)
		if err == nil && req.Operation == admissionv1.Create && b.Status.Phase == "" {
			status, err = mergeStatus(obj["status"], map[string]any{"phase": string(buildv1.BuildPhaseNew)})
		} else {
			status = obj["status"]
		}
	}
	if err != nil {
		return denied(apierrors.NewInternalError(err))
	}
	var ops []patchOp
	if cur, ok := obj["spec"]; !ok || !reflect.DeepEqual(cur, spec) {
		ops = append(ops, patchOp{Op: "add", Path: "/spec", Value: spec})
	}
	if cur, ok := obj["status"]; status != nil && (!ok || !reflect.DeepEqual(cur, status)) {
		ops = append(ops, patchOp{Op: "add", Path: "/status", Value: status})
	}
	resp := allowed()
	if len(ops) > 0 {
		p, err := json.Marshal(ops)
		if err != nil {
			return denied(apierrors.NewInternalError(err))
		}
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = p, &pt
	}
	return resp
}

// mutateImageStream sets status.dockerImageRepository and, standing in for
// OpenShift's imagestreams/status subresource, keeps a user's create or
// update from writing status: only the simulator (the loopback identity)
// records tag events.
func (a *admitter) mutateImageStream(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	obj, err := rawMap(req.Object.Raw)
	if err != nil {
		return denied(apierrors.NewBadRequest(err.Error()))
	}
	loopback := a.loopbackUser != "" && req.UserInfo.Username == a.loopbackUser
	var status any = map[string]any{}
	switch {
	case loopback:
		status = obj["status"]
	case req.Operation == admissionv1.Update:
		old, err := rawMap(req.OldObject.Raw)
		if err != nil {
			return denied(apierrors.NewBadRequest(err.Error()))
		}
		status = old["status"]
	}
	name := req.Name
	if meta, ok := obj["metadata"].(map[string]any); ok && name == "" {
		name, _ = meta["name"].(string)
	}
	status, err = mergeStatus(status, map[string]any{"dockerImageRepository": dockerImageRepository(req.Namespace, name)})
	if err != nil {
		return denied(apierrors.NewInternalError(err))
	}
	resp := allowed()
	if cur, ok := obj["status"]; ok && reflect.DeepEqual(cur, status) {
		return resp
	}
	p, err := json.Marshal([]patchOp{{Op: "add", Path: "/status", Value: status}})
	if err != nil {
		return denied(apierrors.NewInternalError(err))
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = p, &pt
	return resp
}

// mergeStatus sets keys (JSON-normalised) into a copy of a status value.
func mergeStatus(cur any, set map[string]any) (any, error) {
	out := map[string]any{}
	if m, ok := cur.(map[string]any); ok {
		for k, v := range m {
			out[k] = v
		}
	}
	g, err := toGeneric(set)
	if err != nil {
		return nil, err
	}
	for k, v := range g.(map[string]any) {
		out[k] = v
	}
	return out, nil
}

// onlyOwnerRefsOrFinalizersChanged reports an update that changes nothing
// but metadata.ownerReferences or metadata.finalizers (exempt from the
// strategy check).
func onlyOwnerRefsOrFinalizersChanged(newRaw, oldRaw []byte) bool {
	n, err1 := rawMap(newRaw)
	o, err2 := rawMap(oldRaw)
	if err1 != nil || err2 != nil {
		return false
	}
	for _, m := range []map[string]any{n, o} {
		if meta, ok := m["metadata"].(map[string]any); ok {
			for _, k := range []string{"ownerReferences", "finalizers", "managedFields", "resourceVersion", "generation"} {
				delete(meta, k)
			}
		}
	}
	return reflect.DeepEqual(n, o)
}

func (a *admitter) validate(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	res := req.Resource.Resource
	if req.Resource.Group != Group || (res != "buildconfigs" && res != "builds") || req.SubResource != "" {
		return allowed()
	}
	gk := schema.GroupKind{Group: Group, Kind: kindOf(res)}
	var errs field.ErrorList
	var strategy *buildv1.BuildStrategy
	switch res {
	case "buildconfigs":
		var bc buildv1.BuildConfig
		if err := json.Unmarshal(req.Object.Raw, &bc); err != nil {
			return denied(apierrors.NewBadRequest(err.Error()))
		}
		errs = validateBuildConfig(&bc)
		strategy = &bc.Spec.Strategy
	case "builds":
		var b buildv1.Build
		if err := json.Unmarshal(req.Object.Raw, &b); err != nil {
			return denied(apierrors.NewBadRequest(err.Error()))
		}
		if req.Operation == admissionv1.Update {
			var old buildv1.Build
			if err := json.Unmarshal(req.OldObject.Raw, &old); err != nil {
				return denied(apierrors.NewBadRequest(err.Error()))
			}
			errs = validateBuildUpdate(&b, &old)
		} else {
			errs = validateBuild(&b)
		}
		strategy = &b.Spec.Strategy
	}
	if len(errs) > 0 {
		return denied(apierrors.NewInvalid(gk, req.Name, errs))
	}
	if req.UserInfo.Username == a.loopbackUser && a.loopbackUser != "" {
		return allowed()
	}
	if req.Operation == admissionv1.Update && onlyOwnerRefsOrFinalizersChanged(req.Object.Raw, req.OldObject.Raw) {
		return allowed()
	}
	gr := schema.GroupResource{Group: Group, Resource: res}
	if st := checkStrategy(ctx, a.access, req.UserInfo, gr, req.Namespace, req.Name, strategy); st != nil {
		return denied(st)
	}
	return allowed()
}

// webhookConfigurations returns the mutating and validating configurations
// pointing at base (https://127.0.0.1:port) and trusting caPEM.
func webhookConfigurations(base string, caPEM []byte) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration) {
	rules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule: admissionregistrationv1.Rule{
			APIGroups:   []string{Group},
			APIVersions: []string{"v1"},
			Resources:   []string{"buildconfigs", "builds"},
			Scope:       ptrTo(admissionregistrationv1.NamespacedScope),
		},
	}}
	// Image streams get only the mutating webhook (status, mutateImageStream).
	mutRules := append(append([]admissionregistrationv1.RuleWithOperations(nil), rules...), admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule: admissionregistrationv1.Rule{
			APIGroups:   []string{ImageGroup},
			APIVersions: []string{"v1"},
			Resources:   []string{"imagestreams"},
			Scope:       ptrTo(admissionregistrationv1.NamespacedScope),
		},
	})
	none := admissionregistrationv1.SideEffectClassNone
	fail := admissionregistrationv1.Fail
	timeout := int32(10)
	equivalent := admissionregistrationv1.Equivalent
	mutURL, valURL := base+"/mutate", base+"/validate"
	never := admissionregistrationv1.NeverReinvocationPolicy
	m := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: webhookConfigName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    mutatingWebhookName,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &mutURL, CABundle: caPEM},
			Rules:                   mutRules,
			FailurePolicy:           &fail,
			MatchPolicy:             &equivalent,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
			ReinvocationPolicy:      &never,
		}},
	}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: webhookConfigName},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    validatingWebhookName,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &valURL, CABundle: caPEM},
			Rules:                   rules,
			FailurePolicy:           &fail,
			MatchPolicy:             &equivalent,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	return m, v
}

func ptrTo[T any](v T) *T { return &v }

// registerWebhooks creates (or replaces) the webhook configurations and
// waits until kube-apiserver calls them: a dry-run create of an invalid
// BuildConfig must come back with the webhook's validation message.
func registerWebhooks(ctx context.Context, kube kubernetes.Interface, base string, caPEM []byte, namespace string) error {
	m, v := webhookConfigurations(base, caPEM)
	mw := kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	vw := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	_ = mw.Delete(ctx, m.Name, metav1.DeleteOptions{})
	_ = vw.Delete(ctx, v.Name, metav1.DeleteOptions{})
	if _, err := mw.Create(ctx, m, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating MutatingWebhookConfiguration: %w", err)
	}
	if _, err := vw.Create(ctx, v, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating ValidatingWebhookConfiguration: %w", err)
	}
	probe := []byte(`{"apiVersion":"build.openshift.io/v1","kind":"BuildConfig","metadata":{"name":"webhook-probe"},"spec":{"source":{"git":{"uri":"https://example.com/x.git"}},"strategy":{}}}`)
	deadline := time.Now().Add(time.Minute)
	var last error
	for time.Now().Before(deadline) {
		err := kube.Discovery().RESTClient().Post().AbsPath("/apis/build.openshift.io/v1/namespaces", namespace, "buildconfigs").
			Param("dryRun", "All").SetHeader("Content-Type", "application/json").Body(probe).Do(ctx).Error()
		if err != nil && strings.Contains(err.Error(), "must provide a value for exactly one of") {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("webhooks not called by kube-apiserver after a minute (last answer: %v)", last)
}
