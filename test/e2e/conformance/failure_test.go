package conformance

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A build whose RUN fails ends the BuildRun Failed with the OpenShift
// build's reason in failureDetails and the end of its log in the message.
func TestFailingBuildNamesItsReason(t *testing.T) {
	track(t)
	ctx := testContext(t, runTimeout+2*time.Minute)
	ns := newNamespace(t)
	b := createBuild(t, gitBuild(ns, "failing", failingApp))
	br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
	fd := requireFailed(t, br)
	ob := theOpenShiftBuild(ctx, t, ns, br.Name)
	if ob.Status.Reason == "" {
		t.Errorf("OpenShift build %s ended %s without a reason", ob.Name, ob.Status.Phase)
	}
	if fd.Reason != string(ob.Status.Reason) {
		t.Errorf("failureDetails.reason = %q, want the OpenShift build's reason %q", fd.Reason, ob.Status.Reason)
	}
	const printed = "widget.c:7: error: this build fails on purpose"
	if !strings.Contains(fd.Message, printed) {
		t.Errorf("failureDetails.message does not show what the failing RUN printed (%q):\n%s", printed, fd.Message)
	}
	if fd.Location == nil || fd.Location.Container != stepContainer {
		t.Errorf("failureDetails.location = %+v, want container %s", fd.Location, stepContainer)
	}
}

// A Build with an invalid parameter fails InvalidInput, naming the
// parameter, before anything is written to the build API.
func TestBadInputCreatesNothing(t *testing.T) {
	track(t)
	ctx := testContext(t, runTimeout)
	ns := newNamespace(t)
	b := createBuild(t, gitBuild(ns, "bad", failingApp, param("dockerfile", "../elsewhere/Dockerfile")))
	br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
	fd := requireFailed(t, br)
	if fd.Reason != "InvalidInput" {
		t.Errorf("failureDetails.reason = %q, want InvalidInput", fd.Reason)
	}
	if !strings.Contains(fd.Message, "dockerfile") || !strings.Contains(fd.Message, "../elsewhere/Dockerfile") {
		t.Errorf("failureDetails.message %q does not name the dockerfile parameter and its value", fd.Message)
	}
	bcs, err := builds.BuildV1().BuildConfigs(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := builds.BuildV1().Builds(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(bcs.Items) != 0 || len(obs.Items) != 0 {
		t.Errorf("an invalid Build left %d BuildConfigs and %d OpenShift builds, want none", len(bcs.Items), len(obs.Items))
	}
}
