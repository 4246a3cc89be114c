// Package strategies holds the ocbuild Shipwright ClusterBuildStrategies, the
// step's RBAC and their kustomization. It has no code; its tests check the
// manifests here and under samples/ against Shipwright's, Tekton's,
// Kubernetes' and OpenShift's own types and rules.
package strategies
