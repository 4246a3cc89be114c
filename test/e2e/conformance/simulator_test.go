package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/ocbuild/ocbuild/test/sim"
)

// Under the simulator's fault injection (a fifth of build API requests
// answered 5xx, answers lost after the work was done, watches dropped
// every 2 s, log streams cut) a BuildRun still succeeds with the right
// digest, and its step log holds the complete build log exactly once. Only
// the simulator can do this to a build API, so the test needs one.
func TestSurvivesAnUnreliableBuildAPI(t *testing.T) {
	track(t)
	if c.Simulator == nil {
		skip(t, c.ErrNoSimulator().Error())
	}
	ctx := testContext(t, runTimeout+2*time.Minute)
	ns := newNamespace(t)
	c.Simulator.SetChaos(sim.Chaos{ErrorRate: 0.2, LostAnswerRate: 0.2, WatchDropEvery: 2 * time.Second, LogCutRate: 0.5})
	t.Cleanup(func() { c.Simulator.SetChaos(sim.Chaos{}) })
	b := createBuild(t, gitBuild(ns, "go-hello", "samples/apps/go-hello"))
	br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
	requireSucceeded(t, br)
	checkOutput(ctx, t, br)
	ob := theOpenShiftBuild(ctx, t, ns, br.Name)
	lines, closed := c.Simulator.Logs().Read(sim.Key{Namespace: ns, Name: ob.Name}, time.Time{})
	if !closed || len(lines) == 0 {
		t.Fatalf("the simulator has no complete log for build %s", ob.Name)
	}
	step := strings.Split(stepLog(ctx, t, br), "\n")
	// Each build log line once, in order, among ocbuild's own lines.
	next := 0
	for _, l := range step {
		if next < len(lines) && l == lines[next].Text {
			next++
		}
	}
	if next != len(lines) {
		t.Errorf("the step log has the build log's first %d of %d lines in order; line %d %q is missing or out of order", next, len(lines), next+1, lines[next].Text)
	}
	for _, want := range lines {
		n := 0
		for _, l := range step {
			if l == want.Text {
				n++
			}
		}
		if n > countText(lines, want.Text) {
			t.Errorf("build log line %q appears %d times in the step log", want.Text, n)
		}
	}
}

func countText(lines []sim.Line, text string) int {
	n := 0
	for _, l := range lines {
		if l.Text == text {
			n++
		}
	}
	return n
}
