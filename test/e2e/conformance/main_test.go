// Package conformance checks an ocbuild installation end to end, the way a
// platform engineer wants it proven before developers use it: every shipped
// strategy builds a sample whose digest, size and commit the registry
// confirms; a failing build names its reason and shows its log's tail;
// cancelling ends the OpenShift build Cancelled in both of Tekton's cancel
// modes; the shipped Role is all the step needs; deleting a BuildRun removes
// its OpenShift builds; bad input fails before a BuildConfig exists.
//
// As envtest's Environment does, TestMain starts a local cluster (the
// sandbox with the OpenShift Build API simulator, package playground) unless
// OCBUILD_E2E_EXISTING_CLUSTER=true points it at the cluster in KUBECONFIG
// (package cluster lists the variables; `make e2e-cluster` runs it so). The
// tests only see the cluster.Config: slow and failing builds come from real
// Dockerfiles in samples/apps, never from simulator knobs, and the one test
// that needs the simulator's fault injection says so and is skipped where
// there is none.
//
// On an existing cluster the suite creates only namespaces of its own
// (<OCBUILD_E2E_NAMESPACE>-<test>-<random>, labelled cluster.LabelRun) and
// the namespaced objects in them, and deletes them at the end. It ends
// with a table: test | result | seconds.
package conformance

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	buildclient "github.com/openshift/client-go/build/clientset/versioned"
	shipwrightclient "github.com/shipwright-io/build/pkg/client/clientset/versioned"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/ocbuild/ocbuild/test/e2e/cluster"
	"github.com/ocbuild/ocbuild/test/e2e/openshift/kit"
	"github.com/ocbuild/ocbuild/test/playground"
)

var (
	// c is the cluster under test.
	c *cluster.Config
	// Clients, all with c.Admin.
	kube       kubernetes.Interface
	shipwright shipwrightclient.Interface
	tekton     tektonclient.Interface
	builds     buildclient.Interface
	// runID labels this run's namespaces.
	runID = rand.String(6)
	// repoRoot is the ocbuild checkout (strategies/, samples/).
	repoRoot string
	// summary collects the table printed at the end.
	summary = &table{}
)

// The shipped strategies an installation must have.
var shippedStrategies = []string{dockerStrategy, s2iStrategy, buildConfigStrategy}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if repoRoot, err = kit.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if cluster.Requested() {
		if c, err = cluster.FromEnv(); err != nil {
			fmt.Fprintln(os.Stderr, "conformance:", err)
			return 2
		}
	} else {
		dir, err := os.MkdirTemp("", "ocbuild-e2e-conformance-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "%s is not true: starting a sandbox in %s\n", cluster.EnvExistingCluster, dir)
		pg, err := playground.Start(ctx, playground.Options{Dir: dir, Out: os.Stderr})
		if err != nil {
			fmt.Fprintln(os.Stderr, "starting the sandbox:", err)
			return 1
		}
		defer func() {
			pg.Stop()
			_ = os.RemoveAll(dir)
		}()
		if c, err = pg.Cluster(true); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if err := connect(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		return 1
	}
	fmt.Printf("conformance suite against %s\n  namespaces %s-*-* (label %s=%s), git %s@%s, output %s/<namespace>/<name>\n",
		c.Description, c.Namespace, cluster.LabelRun, runID, c.GitURL, c.GitRevision, c.Output)
	code := m.Run()
	if err := removeNamespaces(); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		code = 1
	}
	summary.print(os.Stdout)
	return code
}

// connect makes the clients and checks that ocbuild is installed: the
// suite checks an installation, it does not make one.
func connect(ctx context.Context) error {
	if err := c.Check(); err != nil {
		return err
	}
	var err error
	if kube, err = kubernetes.NewForConfig(c.Admin); err != nil {
		return err
	}
	if shipwright, err = shipwrightclient.NewForConfig(c.Admin); err != nil {
		return err
	}
	if tekton, err = tektonclient.NewForConfig(c.Admin); err != nil {
		return err
	}
	if builds, err = buildclient.NewForConfig(c.Admin); err != nil {
		return err
	}
	for _, s := range shippedStrategies {
		_, err := shipwright.ShipwrightV1beta1().ClusterBuildStrategies().Get(ctx, s, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("ClusterBuildStrategy %s is not installed on %s: install ocbuild first (kubectl apply -k strategies/, docs/install.md)", s, c.Description)
		}
		if err != nil {
			return fmt.Errorf("reading ClusterBuildStrategy %s: %w", s, err)
		}
	}
	return nil
}
