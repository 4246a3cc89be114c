package sim

import (
	"reflect"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testNode is a node as the sandbox's kubelet registers it.
func testNode() *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "sandbox", Labels: map[string]string{
		corev1.LabelHostname: "sandbox", corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64"}}}
}

// A build whose pod no node matches stays Pending, with no reason, past its
// completion deadline, until a node matches: then it runs. Cancelled while
// Pending, it ends Cancelled and never runs.
func TestControllerNodeSelector(t *testing.T) {
	h := newCtrlHarness(t)
	build := func(name, bc string, selector map[string]string) *buildv1.Build {
		b := mkBuild(name, bc, 1, "", "")
		b.Spec.Source.Dockerfile = ptr("FROM scratch\nLABEL a=b\n")
		b.Spec.Strategy = buildv1.BuildStrategy{DockerStrategy: &buildv1.DockerBuildStrategy{}}
		b.Spec.Output.To = &corev1.ObjectReference{Kind: "DockerImage", Name: h.reg + "/ns/" + bc + ":" + name}
		b.Spec.NodeSelector = selector
		return b
	}
	const deadline = 4 // seconds
	waiting := build("ssd-1", "ssd", map[string]string{"disktype": "ssd"})
	waiting.Spec.CompletionDeadlineSeconds = ptrInt64(deadline)
	h.create(waiting)
	h.create(build("gpu-1", "gpu", map[string]string{"gpu": "true"}))

	h.waitPhase("ssd-1", buildv1.BuildPhasePending)
	h.waitPhase("gpu-1", buildv1.BuildPhasePending)
	// Past the deadline: it counts from the pod's start, and an
	// unscheduled pod has not started. Nothing happens meanwhile to wait for.
	held := time.NewTimer((deadline + 1) * time.Second)
	<-held.C
	for _, name := range []string{"ssd-1", "gpu-1"} {
		if b := h.get(name); b.Status.Phase != buildv1.BuildPhasePending || b.Status.Reason != "" || b.Status.Message != "" {
			t.Errorf("%s: %s %q %q, want Pending without reason or message", name, b.Status.Phase, b.Status.Reason, b.Status.Message)
		}
	}

	h.cancel("gpu-1")
	h.waitPhase("gpu-1", buildv1.BuildPhaseCancelled)
	h.noRun("gpu-1")

	n := testNode()
	n.Labels["disktype"] = "ssd"
	if _, err := h.kube.CoreV1().Nodes().Update(h.ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitPhase("ssd-1", buildv1.BuildPhaseComplete)
	if got := h.phases("ssd-1"); !reflect.DeepEqual(got, []buildv1.BuildPhase{"New", "Pending", "Running", "Complete"}) {
		t.Errorf("phases %v", got)
	}
}

func ptrInt64(v int64) *int64 { return &v }

// The pod always selects Linux nodes, whatever the build asks.
func TestPodNodeSelector(t *testing.T) {
	own := map[string]string{corev1.LabelOSStable: "windows", "zone": "a"}
	got := PodNodeSelector(own)
	if got[corev1.LabelOSStable] != "linux" || got["zone"] != "a" || len(got) != 2 {
		t.Errorf("pod node selector %v", got)
	}
	if own[corev1.LabelOSStable] != "windows" {
		t.Error("the build's own selector was changed")
	}
	n := testNode()
	if !NodeFits(n, nil) || NodeFits(n, own) {
		t.Errorf("node %v: fits no selector %v, fits %v %v", n.Labels, NodeFits(n, nil), own, NodeFits(n, own))
	}
	n.Spec.Unschedulable = true
	if NodeFits(n, nil) {
		t.Error("a cordoned node took the pod")
	}
}
