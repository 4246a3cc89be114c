package conformance

import (
	"path/filepath"
	"testing"
	"time"
)

// Every shipped strategy builds its sample to success, and the BuildRun's
// digest, size and commit are what the registry holds. The samples run as
// shipped but for their repository and output registry (sampleBuild).
func TestStrategiesBuildSamples(t *testing.T) {
	track(t)
	for _, s := range []struct{ strategy, sample string }{
		{dockerStrategy, "go-hello-docker"},
		{s2iStrategy, "flask-s2i"},
		{buildConfigStrategy, "existing-buildconfig"},
	} {
		t.Run(s.strategy, func(t *testing.T) {
			track(t)
			t.Parallel()
			ctx := testContext(t, runTimeout+2*time.Minute)
			ns := newNamespace(t)
			b := sampleBuild(t, s.sample, ns)
			if b.Spec.Strategy.Name != s.strategy {
				t.Fatalf("samples/%s uses strategy %s, want %s", s.sample, b.Spec.Strategy.Name, s.strategy)
			}
			if s.strategy == buildConfigStrategy {
				// The BuildConfig the sample runs, as its README applies it,
				// with the cluster's repository.
				applySampleBuildConfig(ctx, t, ns, filepath.Join(repoRoot, "samples", s.sample, "buildconfig.yaml"))
			}
			createBuild(t, b)
			br := waitBuildRunDone(ctx, t, ns, createBuildRun(t, ns, b.Name).Name)
			requireSucceeded(t, br)
			checkOutput(ctx, t, br)
		})
	}
}
