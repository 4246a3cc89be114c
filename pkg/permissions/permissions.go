// Package permissions lists every Kubernetes API call the ocbuild step makes,
// and the one permission an admission check demands beyond them (DeleteBuild).
//
// The list is the single source of truth for three things: the shipped Role in
// strategies/rbac must grant each entry (a test derives the check from here),
// the step names the missing entry when the API answers 403, and the README's
// RBAC table. Code that calls the API refers to one of these values, so adding
// a call without adding its permission is visible in review.
package permissions

import "fmt"

// Permission is one verb on one resource (optionally a subresource) of one API group.
type Permission struct {
	Group       string
	Resource    string
	Subresource string
	Verb        string
	// Name restricts the grant to one object (a Role rule's resourceNames).
	Name string
	// Optional calls degrade gracefully when denied (a warning, not a failure).
	Optional bool
	// Why says what the call is for, for people reading the Role.
	Why string
}

// Resource returns "resource" or "resource/subresource", as written in a Role rule.
func (p Permission) ResourceName() string {
	if p.Subresource == "" {
		return p.Resource
	}
	return p.Resource + "/" + p.Subresource
}

// String renders the permission the way kubectl auth can-i takes it.
func (p Permission) String() string {
	g := p.Group
	if g == "" {
		g = "core"
	}
	if p.Name != "" {
		return fmt.Sprintf("%s %s %s (group %s)", p.Verb, p.ResourceName(), p.Name, g)
	}
	return fmt.Sprintf("%s %s (group %s)", p.Verb, p.ResourceName(), g)
}

const (
	buildGroup  = "build.openshift.io"
	imageGroup  = "image.openshift.io"
	tektonGroup = "tekton.dev"
)

// The calls, one variable each so call sites can name the one they need.
var (
	GetBuildConfig    = Permission{Group: buildGroup, Resource: "buildconfigs", Verb: "get", Why: "read the BuildConfig to update or run"}
	CreateBuildConfig = Permission{Group: buildGroup, Resource: "buildconfigs", Verb: "create", Why: "create the BuildConfig ocbuild owns"}
	UpdateBuildConfig = Permission{Group: buildGroup, Resource: "buildconfigs", Verb: "update", Why: "bring the owned BuildConfig to the Build's parameters"}
	Instantiate       = Permission{Group: buildGroup, Resource: "buildconfigs", Subresource: "instantiate", Verb: "create", Why: "start a build that OpenShift clones"}
	InstantiateBinary = Permission{Group: buildGroup, Resource: "buildconfigs", Subresource: "instantiatebinary", Verb: "create", Why: "start a build with the uploaded source"}
	GetBuild          = Permission{Group: buildGroup, Resource: "builds", Verb: "get", Why: "read the build's outcome"}
	ListBuilds        = Permission{Group: buildGroup, Resource: "builds", Verb: "list", Why: "list+watch the build's phase"}
	WatchBuilds       = Permission{Group: buildGroup, Resource: "builds", Verb: "watch", Why: "list+watch the build's phase"}
	PatchBuild        = Permission{Group: buildGroup, Resource: "builds", Verb: "patch", Why: "cancel the build (status.cancelled) and hand its ownership to the TaskRun"}
	// DeleteBuild is never called: OpenShift's OwnerReferencesPermissionEnforcement
	// admission refuses to set ownerReferences (handing the build to the
	// TaskRun, so deleting the BuildRun deletes the build) unless the caller
	// may delete the object ("cannot set an ownerRef on a resource you can't
	// delete").
	DeleteBuild       = Permission{Group: buildGroup, Resource: "builds", Verb: "delete", Why: "OpenShift lets only a caller who may delete a build set its ownerReferences (the TaskRun as owner); ocbuild never deletes builds"}
	GetBuildLog       = Permission{Group: buildGroup, Resource: "builds", Subresource: "log", Verb: "get", Why: "stream the build log into the step log"}
	GetImageStreamImg = Permission{Group: imageGroup, Resource: "imagestreamimages", Verb: "get", Optional: true, Why: "image size for ImageStream outputs"}
	GetTaskRun        = Permission{Group: tektonGroup, Resource: "taskruns", Verb: "get", Optional: true, Why: "notice a cancelled or timed-out TaskRun (keep-pod-on-cancel sends SIGKILL)"}
	ListTaskRuns      = Permission{Group: tektonGroup, Resource: "taskruns", Verb: "list", Optional: true, Why: "watch the TaskRun for cancellation"}
	GetDefaults       = Permission{Resource: "configmaps", Verb: "get", Name: "ocbuild-defaults", Why: "read the platform defaults (ConfigMap ocbuild-defaults, only that one)"}
	WatchTaskRuns     = Permission{Group: tektonGroup, Resource: "taskruns", Verb: "watch", Optional: true, Why: "watch the TaskRun for cancellation"}
)

// All is every API call the step can make.
var All = []Permission{
	GetBuildConfig, CreateBuildConfig, UpdateBuildConfig, Instantiate, InstantiateBinary,
	GetBuild, ListBuilds, WatchBuilds, PatchBuild, DeleteBuild, GetBuildLog,
	GetImageStreamImg, GetTaskRun, ListTaskRuns, WatchTaskRuns, GetDefaults,
}
