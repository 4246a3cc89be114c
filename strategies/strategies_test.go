package strategies

import (
	"github.com/ocbuild/ocbuild/pkg/defaults"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	shpv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	"github.com/shipwright-io/build/pkg/reconciler/buildrun/resources"
	corev1 "k8s.io/api/core/v1"
)

// The step image as written in the strategy files; kustomize pins the tag.
const stepImage = "ghcr.io/ocbuild/ocbuild"

// systemParams are the parameters Shipwright declares in every TaskRun
// (shipwright-contract.md §2). shp-output-directory is deliberately absent:
// referencing it makes Shipwright push the image itself.
var systemParams = map[string]bool{
	"shp-source-root":     true,
	"shp-source-context":  true,
	"shp-output-image":    true,
	"shp-output-insecure": true,
}

// stepResults are the results a strategy step may write (§3). Never
// shp-image-vulnerabilities.
var stepResults = map[string]bool{
	"shp-image-digest":              true,
	"shp-image-size":                true,
	"shp-error-reason":              true,
	"shp-error-message":             true,
	"shp-source-default-commit-sha": true,
}

var contextVars = map[string]bool{"taskRun.name": true, "taskRun.uid": true, "taskRun.namespace": true}

var reservedSteps = map[string]bool{"source-default": true, "source-local": true, "image-processing": true}

// The ocbuild flag contract. Flags a strategy may pass, per subcommand.
var (
	commonFlags = []string{
		"buildconfig", "env", "build-arg", "no-cache", "incremental", "force-pull", "commit",
		"source-dir", "source-root", "include-git", "timeout", "start-timeout", "taskrun-name", "taskrun-uid", "build-name",
		"buildrun-name", "result-file-image-digest", "result-file-image-size",
		"result-file-commit-sha", "result-file-error-reason", "result-file-error-message",
		"insecure-registry", "internal-registry", "env-array", "build-arg-array", "defaults-configmap",
	}
	buildOnlyFlags = []string{
		"strategy", "git-url", "git-ref", "source-secret", "context-dir", "dockerfile",
		"builder-image", "from", "to", "push-secret", "pull-secret", "image-label",
		"run-policy", "scripts-url", "image-label-array",
	}
	arrayFlags = map[string]bool{"env-array": true, "build-arg-array": true, "image-label-array": true}
)

var (
	varRef    = regexp.MustCompile(`\$\(([^)]*)\)`)
	paramRef  = regexp.MustCompile(`^params\.([a-zA-Z0-9_-]+)(\[\*\])?$`)
	resultRef = regexp.MustCompile(`^results\.([a-zA-Z0-9_-]+)\.path$`)
)

func clusterStrategies(t *testing.T) map[string]*shpv1beta1.ClusterBuildStrategy {
	t.Helper()
	objs, where := ofType[*shpv1beta1.ClusterBuildStrategy](loadAll(t))
	out := map[string]*shpv1beta1.ClusterBuildStrategy{}
	for i, s := range objs {
		if !strings.HasPrefix(where[i].File, "strategies/") {
			t.Errorf("%s: ClusterBuildStrategy outside strategies/", where[i])
		}
		if _, dup := out[s.Name]; dup {
			t.Errorf("ClusterBuildStrategy %q defined twice", s.Name)
		}
		out[s.Name] = s
	}
	return out
}

func TestTheThreeStrategiesExist(t *testing.T) {
	got := clusterStrategies(t)
	for _, name := range []string{"openshift-docker", "openshift-s2i", "openshift-buildconfig"} {
		if got[name] == nil {
			t.Errorf("ClusterBuildStrategy %s missing", name)
		}
	}
	if len(got) != 3 {
		t.Errorf("want 3 strategies, got %d", len(got))
	}
}

func TestStrategyParameters(t *testing.T) {
	for name, s := range clusterStrategies(t) {
		seen := map[string]bool{}
		for _, p := range s.Spec.Parameters {
			where := name + ": parameter " + p.Name
			if seen[p.Name] {
				t.Errorf("%s: declared twice", where)
			}
			seen[p.Name] = true
			if strings.TrimSpace(p.Description) == "" {
				t.Errorf("%s: no description", where)
			}
			if resources.IsSystemReservedParameter(p.Name) {
				t.Errorf("%s: reserved name", where)
			}
			switch p.Type {
			case shpv1beta1.ParameterTypeArray:
				if p.Default != nil {
					t.Errorf("%s: array parameter with a string default", where)
				}
			case "", shpv1beta1.ParameterTypeString:
				if p.Defaults != nil {
					t.Errorf("%s: string parameter with array defaults", where)
				}
			default:
				t.Errorf("%s: unknown type %q", where, p.Type)
			}
		}
	}
}

// stepStrings returns every string of a step in which Tekton substitutes
// variables, with a label saying where it is.
func stepStrings(st shpv1beta1.Step) map[string]string {
	out := map[string]string{"image": st.Image, "workingDir": st.WorkingDir}
	for i, c := range st.Command {
		out["command["+itoa(i)+"]"] = c
	}
	for i, a := range st.Args {
		out["args["+itoa(i)+"]"] = a
	}
	for _, e := range st.Env {
		out["env "+e.Name] = e.Value
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestStrategyVariableReferences(t *testing.T) {
	for name, s := range clusterStrategies(t) {
		declared := map[string]shpv1beta1.Parameter{}
		for _, p := range s.Spec.Parameters {
			declared[p.Name] = p
		}
		used := map[string]bool{}
		for _, st := range s.Spec.Steps {
			for where, v := range stepStrings(st) {
				where = name + " step " + st.Name + " " + where
				if strings.Contains(v, "shp-output-directory") {
					t.Errorf("%s: references shp-output-directory (would make Shipwright push)", where)
				}
				for _, m := range varRef.FindAllStringSubmatch(v, -1) {
					ref := m[1]
					switch {
					case paramRef.MatchString(ref):
						pm := paramRef.FindStringSubmatch(ref)
						pname, star := pm[1], pm[2] != ""
						used[pname] = true
						if systemParams[pname] {
							if star {
								t.Errorf("%s: system parameter %s is not an array", where, pname)
							}
							continue
						}
						p, ok := declared[pname]
						if !ok {
							t.Errorf("%s: $(params.%s) is neither declared nor a system parameter", where, pname)
							continue
						}
						isArray := p.Type == shpv1beta1.ParameterTypeArray
						if isArray && (!star || v != m[0] || !strings.HasPrefix(where, name+" step "+st.Name+" args[")) {
							t.Errorf("%s: array parameter %s must be a whole args item $(params.%s[*])", where, pname, pname)
						}
						if !isArray && star {
							t.Errorf("%s: string parameter %s used as an array", where, pname)
						}
					case resultRef.MatchString(ref):
						r := resultRef.FindStringSubmatch(ref)[1]
						if !stepResults[r] {
							t.Errorf("%s: result %s is not one a strategy step may write", where, r)
						}
					case strings.HasPrefix(ref, "context."):
						if !contextVars[strings.TrimPrefix(ref, "context.")] {
							t.Errorf("%s: unknown context variable %s", where, ref)
						}
					default:
						t.Errorf("%s: unrecognised variable $(%s)", where, ref)
					}
				}
			}
		}
		for pname := range declared {
			if !used[pname] {
				t.Errorf("%s: parameter %s is declared but no step uses it", name, pname)
			}
		}
	}
}

func TestStrategyNamesAndVolumes(t *testing.T) {
	for name, s := range clusterStrategies(t) {
		vols := map[string]bool{}
		for _, v := range s.Spec.Volumes {
			if strings.HasPrefix(v.Name, "shp-") {
				t.Errorf("%s: volume %s uses the reserved shp- prefix", name, v.Name)
			}
			if v.Description == nil || *v.Description == "" {
				t.Errorf("%s: volume %s has no description", name, v.Name)
			}
			if v.EmptyDir == nil {
				t.Errorf("%s: volume %s should be an emptyDir (Shipwright refuses a BuildRun whose strategy mounts a missing ConfigMap or Secret)", name, v.Name)
			}
			vols[v.Name] = true
		}
		steps := map[string]bool{}
		for _, st := range s.Spec.Steps {
			if reservedSteps[st.Name] || steps[st.Name] {
				t.Errorf("%s: step name %s is reserved or duplicated", name, st.Name)
			}
			steps[st.Name] = true
			for _, m := range st.VolumeMounts {
				if !vols[m.Name] {
					t.Errorf("%s step %s: volumeMount %s names no declared volume", name, st.Name, m.Name)
				}
			}
			for _, e := range st.Env {
				if strings.HasPrefix(e.Name, "SHP_") {
					t.Errorf("%s step %s: env %s uses the reserved SHP_ prefix", name, st.Name, e.Name)
				}
			}
		}
	}
}

func envByName(st shpv1beta1.Step) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range st.Env {
		m[e.Name] = e
	}
	return m
}

func TestStrategyStepShape(t *testing.T) {
	for name, s := range clusterStrategies(t) {
		sc := s.Spec.SecurityContext
		if sc == nil || sc.RunAsUser == 0 || sc.RunAsGroup == 0 {
			t.Errorf("%s: strategy securityContext must set a non-root runAsUser and runAsGroup", name)
		}
		if len(s.Spec.Steps) != 1 {
			t.Errorf("%s: want exactly one step, got %d", name, len(s.Spec.Steps))
		}
		for _, st := range s.Spec.Steps {
			where := name + " step " + st.Name
			if st.Image != stepImage {
				t.Errorf("%s: image %q, want %q (kustomize's images: pins the tag)", where, st.Image, stepImage)
			}
			if !slices.Equal(st.Command, []string{"/ocbuild"}) {
				t.Errorf("%s: command %q, want [/ocbuild]", where, st.Command)
			}
			if st.WorkingDir != "$(params.shp-source-root)" {
				t.Errorf("%s: workingDir %q", where, st.WorkingDir)
			}
			c := st.SecurityContext
			switch {
			case c == nil:
				t.Errorf("%s: no securityContext", where)
			default:
				if c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation {
					t.Errorf("%s: allowPrivilegeEscalation must be false", where)
				}
				if c.RunAsNonRoot == nil || !*c.RunAsNonRoot {
					t.Errorf("%s: runAsNonRoot must be true", where)
				}
				if c.ReadOnlyRootFilesystem == nil || !*c.ReadOnlyRootFilesystem {
					t.Errorf("%s: readOnlyRootFilesystem must be true", where)
				}
				if c.Privileged != nil && *c.Privileged {
					t.Errorf("%s: privileged", where)
				}
				if c.Capabilities == nil || !slices.Equal(c.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(c.Capabilities.Add) != 0 {
					t.Errorf("%s: capabilities must drop ALL and add none", where)
				}
			}
			if len(st.VolumeMounts) == 0 {
				t.Errorf("%s: no writable emptyDir mounted (read-only root filesystem)", where)
			}
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, lim := st.Resources.Requests[res], st.Resources.Limits[res]
				if req.IsZero() || lim.IsZero() {
					t.Errorf("%s: %s request and limit must be set", where, res)
				}
			}
			if mem := st.Resources.Requests[corev1.ResourceMemory]; mem.Value() > 256<<20 {
				t.Errorf("%s: memory request %s is not small; the step only streams", where, mem.String())
			}
			env := envByName(st)
			if env["HOME"].Value != "/tekton/home" || env["DOCKER_CONFIG"].Value != "/tekton/home/.docker" {
				t.Errorf("%s: HOME/DOCKER_CONFIG must point at /tekton/home so Tekton's docker credentials reach the step", where)
			}
			for envName, label := range map[string]string{
				"OCBUILD_BUILD_NAME":    "build.shipwright.io/name",
				"OCBUILD_BUILDRUN_NAME": "buildrun.shipwright.io/name",
			} {
				e := env[envName]
				want := "metadata.labels['" + label + "']"
				if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != want {
					t.Errorf("%s: env %s must come from the downward API %s", where, envName, want)
				}
			}
		}
	}
}

// parseArgs splits a step's args into the subcommand, its --flag=value pairs
// and the array sections, following the ocbuild flag contract.
func parseArgs(t *testing.T, where string, args []string) (sub string, flags map[string]string, arrays map[string][]string) {
	t.Helper()
	flags, arrays = map[string]string{}, map[string][]string{}
	if len(args) == 0 {
		t.Fatalf("%s: no args", where)
	}
	sub = args[0]
	current := ""
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "--") {
			if current == "" {
				t.Errorf("%s: stray argument %q (values go in --flag=value form)", where, a)
				continue
			}
			arrays[current] = append(arrays[current], a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if arrayFlags[name] {
			if hasValue {
				t.Errorf("%s: %s takes the following args, not a value", where, name)
			}
			if _, dup := arrays[name]; dup {
				t.Errorf("%s: %s given twice", where, name)
			}
			arrays[name] = nil
			current = name
			continue
		}
		current = ""
		if !hasValue {
			t.Errorf("%s: write --%s=VALUE so an empty parameter cannot swallow the next flag", where, name)
		}
		if _, dup := flags[name]; dup {
			t.Errorf("%s: --%s given twice", where, name)
		}
		flags[name] = value
	}
	return sub, flags, arrays
}

func TestStrategyArgsFollowTheFlagContract(t *testing.T) {
	wantSub := map[string]string{"openshift-docker": "build", "openshift-s2i": "build", "openshift-buildconfig": "start"}
	for name, s := range clusterStrategies(t) {
		for _, st := range s.Spec.Steps {
			where := name + " step " + st.Name
			sub, flags, arrays := parseArgs(t, where, st.Args)
			if sub != wantSub[name] {
				t.Errorf("%s: subcommand %q, want %q", where, sub, wantSub[name])
			}
			allowed := append([]string{}, commonFlags...)
			if sub == "build" {
				allowed = append(allowed, buildOnlyFlags...)
			}
			for f := range flags {
				if !slices.Contains(allowed, f) {
					t.Errorf("%s: --%s is not an `ocbuild %s` flag", where, f, sub)
				}
			}
			for f, items := range arrays {
				if !slices.Contains(allowed, f) {
					t.Errorf("%s: --%s is not an `ocbuild %s` flag", where, f, sub)
				}
				if len(items) != 1 || !strings.HasSuffix(items[0], "[*])") {
					t.Errorf("%s: --%s must be followed by exactly one $(params.X[*])", where, f)
				}
			}
			for _, kv := range [][2]string{
				{"taskrun-name", "$(context.taskRun.name)"},
				{"taskrun-uid", "$(context.taskRun.uid)"},
				{"result-file-image-digest", "$(results.shp-image-digest.path)"},
				{"result-file-image-size", "$(results.shp-image-size.path)"},
				{"result-file-error-reason", "$(results.shp-error-reason.path)"},
				{"result-file-error-message", "$(results.shp-error-message.path)"},
				{"insecure-registry", "$(params.shp-output-insecure)"},
				{"source-dir", "$(params.shp-source-context)"},
				{"source-root", "$(params.shp-source-root)"},
				{"defaults-configmap", defaults.ConfigMap},
			} {
				if flags[kv[0]] != kv[1] {
					t.Errorf("%s: want --%s=%s, got %q", where, kv[0], kv[1], flags[kv[0]])
				}
			}
			switch sub {
			case "build":
				if flags["to"] != "$(params.shp-output-image)" {
					t.Errorf("%s: --to must be $(params.shp-output-image)", where)
				}
				if want := map[string]string{"openshift-docker": "docker", "openshift-s2i": "source"}[name]; flags["strategy"] != want {
					t.Errorf("%s: --strategy=%s, want %s", where, flags["strategy"], want)
				}
				if _, ok := flags["git-url"]; ok {
					t.Errorf("%s: build strategies upload the fetched source; --git-url is for other callers", where)
				}
				// Shipwright writes the commit sha itself for Git sources.
				if _, ok := flags["result-file-commit-sha"]; ok {
					t.Errorf("%s: build strategies must leave shp-source-default-commit-sha to Shipwright", where)
				}
			case "start":
				if flags["buildconfig"] == "" {
					t.Errorf("%s: start needs --buildconfig", where)
				}
				if flags["result-file-commit-sha"] != "$(results.shp-source-default-commit-sha.path)" {
					t.Errorf("%s: start should report the commit OpenShift built", where)
				}
			}
			if name == "openshift-s2i" && flags["builder-image"] == "" {
				t.Errorf("%s: s2i needs --builder-image", where)
			}
		}
	}
}
