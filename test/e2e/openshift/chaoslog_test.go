package openshift

// The log under harsh chaos, as observed against OpenShift's real server:
// a build whose 10,000-line log is written within one second (sinceTime has
// one-second resolution, so every resume re-reads that whole second), 30%
// of build API requests answered 5xx, watches dropped every second, 90% of
// log streams cut after a few lines, and error texts written into the
// stream without a timestamp. Every numbered line reaches the step log
// exactly once, in order, and the BuildRun succeeds.

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocbuild/ocbuild/test/sim"
)

const chaosLogLines = 10000

func TestChaosLog(t *testing.T) {
	ctx := testContext(t, 10*time.Minute)
	ns := newNamespace(t, true)
	b := createBuild(t, gitBuild(ns, "loud", "hello", dockerStrategy,
		arrayParam("build-env", sim.KnobLogLines+"="+strconv.Itoa(chaosLogLines))))
	simulator.SetChaos(sim.Chaos{ErrorRate: 0.3, WatchDropEvery: time.Second, LogCutRate: 0.9, UntimestampedErrors: true})
	t.Cleanup(func() { simulator.SetChaos(sim.Chaos{}) })
	br := createBuildRun(t, ns, b.Name)
	done, err := buildRunDone(ctx, ns, br.Name, 8*time.Minute)
	simulator.SetChaos(sim.Chaos{})
	if err != nil {
		t.Fatal(err)
	}
	requireSucceeded(t, done)
	log := stepLog(t, done)
	var numbered []int
	for _, l := range lines(log) {
		rest, ok := strings.CutPrefix(l, sim.LogLinePrefix)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil {
			t.Errorf("garbled numbered line %q", l)
			continue
		}
		numbered = append(numbered, n)
	}
	bad := 0
	for i, n := range numbered {
		if n != i+1 && bad < 10 {
			bad++
			t.Errorf("step log line %d of the numbered ones is %d, want %d (a line lost, repeated or out of order)", i+1, n, i+1)
		}
	}
	if len(numbered) != chaosLogLines {
		t.Errorf("the step log has %d numbered lines, want exactly %d", len(numbered), chaosLogLines)
	}
	// An untimestamped error text may be passed through, but only once per
	// time the server wrote it, never on every re-read.
	repeated := map[string]int{}
	for _, l := range lines(log) {
		if strings.HasPrefix(l, "error while getting build logs") {
			repeated[l]++
		}
	}
	for l, n := range repeated {
		if n > 1 {
			t.Errorf("%q printed %d times", l, n)
		}
	}
	if strings.Contains(log, "may be incomplete") {
		t.Errorf("the step reported an incomplete log:\n%s", tail(log, 20))
	}
	t.Logf("%d numbered lines, in order, exactly once; step log %d lines", len(numbered), len(lines(log)))
}

func tail(s string, n int) string {
	l := lines(s)
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
