// Package openshift runs BuildRuns of the shipped strategies (strategies/)
// end to end: the real Shipwright controller, the TaskRun executor running
// the ocbuild step, and the OpenShift Build API simulator (test/sim) behind
// the sandbox's front door. TestMain starts one sandbox with the simulator
// and installs the strategies with kustomize, as `kubectl apply -k
// strategies/` would; every test then works in its own namespace.
package openshift

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	buildclient "github.com/openshift/client-go/build/clientset/versioned"

	"github.com/ocbuild/ocbuild/test/e2e/openshift/kit"
	"github.com/ocbuild/ocbuild/test/playground"
	"github.com/ocbuild/ocbuild/test/sandbox"
	"github.com/ocbuild/ocbuild/test/sim"
)

var (
	sb *sandbox.Sandbox
	// simulator is the OpenShift Build API simulator behind the front door.
	simulator *sim.Sim
	// builds reads build.openshift.io objects as the cluster admin.
	builds buildclient.Interface
	// repoRoot is the ocbuild checkout (strategies/, samples/).
	repoRoot string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if repoRoot, err = kit.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "ocbuild-e2e-openshift-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	start := time.Now()
	simulator = sim.New(sim.Options{})
	// The git server serves test/testdata/repos, the samples' apps, the
	// converter corpus's stand-in repositories and (as the playground's
	// samples repository, which a corpus BuildConfig builds from) this
	// checkout's samples.
	checkout, err := playground.SamplesRepos(repoRoot)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(checkout)
	sb, err = sandbox.Start(ctx, sandbox.Options{Dir: dir, FrontDoor: simulator.FrontDoor(),
		MoreRepos: []string{
			filepath.Join(repoRoot, "samples", "apps"),
			filepath.Join(repoRoot, "test", "testdata", "corpus-repos"),
			checkout,
		},
		GitAliases:  corpusGitAliases,
		GitBranches: corpusGitBranches,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the sandbox:", err)
		fmt.Fprintf(os.Stderr, "sandbox state and logs kept in %s\n", dir)
		return 1
	}
	fmt.Fprintf(os.Stderr, "sandbox with the OpenShift Build API simulator started in %s\n%s", time.Since(start).Round(time.Second), sb.Summary())
	code := func() int {
		if builds, err = buildclient.NewForConfig(sb.AdminConfig); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := kit.InstallStrategies(ctx, sb.AdminConfig, repoRoot); err != nil {
			fmt.Fprintln(os.Stderr, "installing strategies/:", err)
			return 1
		}
		return m.Run()
	}()
	sb.Stop()
	if code == 0 {
		_ = os.RemoveAll(dir)
	} else {
		fmt.Fprintf(os.Stderr, "sandbox state and logs kept in %s\n", dir)
	}
	return code
}
