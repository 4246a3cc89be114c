// Command sandbox runs the ocbuild playground in the foreground (`make
// sandbox`): the sandbox cluster (kube-apiserver with etcd,
// kube-controller-manager, the Shipwright and Tekton CRDs, the real Shipwright
// build controller, registries, a git server, a package index and the TaskRun
// executor) with the OpenShift Build API simulator, the shipped strategies and
// the samples' namespace, so that samples/*.yaml apply unchanged (see
// package playground). It writes <dir>/e2e-cluster.env, the variables that
// point `make e2e-cluster` at it. Ctrl-C stops everything and exits 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ocbuild/ocbuild/test/playground"
	"github.com/ocbuild/ocbuild/test/sandbox"
	"github.com/ocbuild/ocbuild/test/sim"
)

func main() {
	dir := flag.String("dir", "", "state directory (default: <repo>/.sandbox)")
	keepPod := flag.Bool("keep-pod-on-cancel", false, "start with Tekton's keep-pod-on-cancel feature flag on (SIGKILL on cancel instead of SIGTERM + 30 s grace)")
	stepVersion := flag.String("step-version", "", "version stamped into the ocbuild step binary")
	var ocbuildImages multiFlag
	flag.Var(&ocbuildImages, "ocbuild-image", "further image name run as the ocbuild step binary (repeatable)")
	flag.Parse()

	// Ctrl-C is read from the terminal rather than taken as SIGINT: make,
	// which runs this, would otherwise get the signal too and report an
	// error however cleanly the sandbox stops.
	keys, restore := interruptKeys()
	defer restore()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		select {
		case <-keys:
			stop()
		case <-ctx.Done():
		}
	}()

	start := time.Now()
	p, err := playground.Start(ctx, playground.Options{
		Dir:             *dir,
		Out:             os.Stdout,
		KeepPodOnCancel: *keepPod,
		StepVersion:     *stepVersion,
		OcbuildImages:   ocbuildImages,
	})
	if err != nil {
		restore()
		if ctx.Err() != nil {
			fmt.Println("stopped before the sandbox was up")
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
	sb := p.Sandbox
	fmt.Printf("\n%s", sb.Summary())
	fmt.Printf("  images run by the executor %s and %s (ocbuild), %s (Shipwright's git step), %s (command[0] from the host); builder images: %s, %s, %s\n",
		sandbox.ShippedOcbuildImage, sandbox.OcbuildImage, sandbox.GitImage, sandbox.HostImage,
		sim.BaseImage, sim.PythonBuilderImage, sim.GolangBuilderImage)
	fmt.Printf("  %s is served as %s (the samples' source); %s/<namespace>/<name> is the sandbox registry\n",
		playground.SamplesGitURL, sb.GitRepoURL("ocbuild"), sim.InternalRegistry)
	// The sandbox as an "existing cluster" for the conformance suite.
	clusterEnv := filepath.Join(sb.Dir, "e2e-cluster.env")
	if err := p.WriteClusterEnv(clusterEnv); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		p.Stop()
		restore()
		os.Exit(1)
	}
	fmt.Printf("  conformance suite against this sandbox: (set -a; . %s; make e2e-cluster)\n", clusterEnv)
	fmt.Printf("\nstarted in %s. %s", time.Since(start).Round(time.Second), p.TryThis())
	fmt.Println("Press Ctrl-C to stop.")

	failed := make(chan error, 1)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for range t.C {
			if err := sb.Err(); err != nil {
				failed <- err
				return
			}
		}
	}()
	code := 0
	select {
	case <-ctx.Done():
		fmt.Println("\nstopping…")
	case err := <-failed:
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		code = 1
	}
	p.Stop()
	restore()
	fmt.Println("stopped")
	os.Exit(code)
}

type multiFlag []string

func (m *multiFlag) String() string     { return fmt.Sprint(*m) }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
