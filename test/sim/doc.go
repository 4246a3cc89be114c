// Package sim is the sandbox's stand-in for OpenShift's build service
// (openshift-apiserver's build REST handlers plus openshift-controller-manager's
// build controller plus the builder pod), written to the behaviour in
// shared/reference/openshift-build-api.md. Deviations are listed in
// test/sandbox/README.md.
//
// Storage, watch, resourceVersion and RBAC are the real kube-apiserver's:
// buildconfigs and builds (build.openshift.io/v1) and imagestreams
// (image.openshift.io/v1) are CRDs. The simulator adds OpenShift's
// behaviour in these places:
//
//   - admission webhooks (webhook.go): defaulting, the validation table,
//     updates without resourceVersion refused, the builds/<strategy>
//     permission check, source-secret injection as the caller
//     (secretinject.go);
//   - a front door (frontdoor.go): the URL steps talk to; it proxies to
//     kube-apiserver and serves buildconfigs/instantiate,
//     buildconfigs/instantiatebinary and builds/log itself, with TokenReview
//     and SubjectAccessReview; like OpenShift's, instantiatebinary does not
//     notice a client that gives up; it can inject chaos (chaos.go);
//   - a controller and executor (controller.go, executor.go): runPolicy,
//     phases, cancellation, history pruning, and real images pushed to the
//     sandbox registry;
//   - the image API (imagestreams.go, imageapi.go): imagestreams are a CRD,
//     imagestreamtags and imagestreamimages are served by the front door
//     from the streams and the registry; pushes to the integrated registry
//     move stream tags, and image stream references resolve at instantiate
//     and when a build starts; image sources are copied into the context
//     (sourceimages.go).
//
// The two halves share the Logs and Sources stores defined in store.go.
package sim
