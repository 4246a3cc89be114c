package convert

// The strategies a converted Build may name and the parameters it may set.
// The names are constants so the binary need not read the strategy YAMLs;
// params_test.go ties every one of them to strategies/*.yaml.
const (
	StrategyDocker      = "openshift-docker"
	StrategyS2I         = "openshift-s2i"
	StrategyBuildConfig = "openshift-buildconfig"
)

// Parameters of openshift-docker and openshift-s2i.
const (
	ParamDockerfile  = "dockerfile"
	ParamBuildArgs   = "build-args"
	ParamBuildEnv    = "build-env"
	ParamFrom        = "from"
	ParamNoCache     = "no-cache"
	ParamForcePull   = "force-pull"
	ParamPushSecret  = "push-secret"
	ParamPullSecret  = "pull-secret"
	ParamImageLabels = "image-labels"
	ParamRunPolicy   = "run-policy"

	ParamBuilderImage = "builder-image"
	ParamIncremental  = "incremental"
	ParamScriptsURL   = "scripts-url"
)

// ParamBuildConfig is openshift-buildconfig's only required parameter.
const ParamBuildConfig = "buildconfig"

// StrategyParams lists, per strategy, the parameters convert may set.
var StrategyParams = map[string][]string{
	StrategyDocker: {
		ParamDockerfile, ParamBuildArgs, ParamBuildEnv, ParamFrom, ParamNoCache, ParamForcePull,
		ParamPushSecret, ParamPullSecret, ParamImageLabels, ParamRunPolicy,
	},
	StrategyS2I: {
		ParamBuilderImage, ParamIncremental, ParamBuildEnv, ParamScriptsURL, ParamForcePull,
		ParamPushSecret, ParamPullSecret, ParamImageLabels, ParamRunPolicy,
	},
	StrategyBuildConfig: {ParamBuildConfig},
}
