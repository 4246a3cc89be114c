package openshift

import (
	"strings"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// An existing BuildConfig whose nodeSelector no node matches: on OpenShift
// its build stays Pending, with no reason and no end (the sandbox's node
// has no disktype label, and the simulator schedules the build pod as the
// scheduler would). The BuildRun must not hang: it fails StartTimeout after
// the strategy's start-timeout, saying the build stayed Pending, and the
// build is cancelled, not left waiting for a node.
func TestUnschedulableBuildConfig(t *testing.T) {
	ctx := testContext(t, 6*time.Minute)
	ns := newNamespace(t, true)
	const repo = "buildconfig-app"
	out := imageRef(ns, "ssd-only", "latest")
	bc := gitDockerBuildConfig("ssd-only", repo, out)
	bc.Spec.NodeSelector = buildv1.OptionalNodeSelector{"disktype": "ssd"}
	bc, err := builds.BuildV1().BuildConfigs(ns).Create(ctx, bc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	build := gitBuild(ns, "ssd-only", repo, buildConfigStrategy, param("buildconfig", bc.Name), param("start-timeout", "20s"))
	build.Spec.Source.Git.Revision = ptr.To(sb.RepoHeads[repo])
	build.Spec.Output.Image = out
	b := createBuild(t, build)
	br := createBuildRun(t, ns, b.Name)
	ob := waitOpenShiftBuild(ctx, t, ns, br.Name, "the OpenShift build to be Pending", func(b *buildv1.Build) bool {
		return b.Status.Phase == buildv1.BuildPhasePending
	})
	done := waitBuildRunDone(ctx, t, ns, br.Name)
	fd := requireFailed(t, done)
	if fd.Reason != "StartTimeout" || !strings.Contains(fd.Message, "stayed Pending for longer than --start-timeout 20s") {
		t.Errorf("failureDetails %s: %q, want StartTimeout: the build stayed Pending for longer than --start-timeout 20s", fd.Reason, fd.Message)
	}

	waitBuildPhase(ctx, t, ns, ob.Name, buildv1.BuildPhaseCancelled, 30*time.Second, "the BuildRun gave up on it")
}
