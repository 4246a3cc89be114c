// Package convert turns OpenShift BuildConfigs into Shipwright Builds that
// use ocbuild's strategies, without losing anything: a BuildConfig whose
// every field has a place in openshift-docker or openshift-s2i becomes a
// Build of that strategy, and any other becomes a Build of
// openshift-buildconfig, which runs that very BuildConfig.
//
// The guarantee rests on a ledger (fields.go): every non-empty field of the
// input object, as read from the file or the API server (so fields this
// code does not know yet count too), must be claimed by the mapping, either
// as carried by the Build or as kept by the BuildConfig. An unclaimed field
// is kept by the BuildConfig, so the owned strategies are chosen only when
// nothing would be lost.
//
// The binary must stay small, so the Shipwright objects written here are
// this package's own types (shipwright.go) with Shipwright's JSON names;
// the tests decode them strictly into Shipwright's API types.
package convert
