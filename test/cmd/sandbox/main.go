// Command sandbox runs the ocbuild sandbox in the foreground (`make sandbox`):
// a local kube-apiserver with etcd and kube-controller-manager, the Shipwright
// and Tekton CRDs, the real Shipwright build controller, an OCI registry, a
// git server and a TaskRun executor. Ctrl-C stops everything.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ocbuild/ocbuild/test/sandbox"
)

func main() {
	dir := flag.String("dir", "", "state directory (default: <repo>/.sandbox)")
	keepPod := flag.Bool("keep-pod-on-cancel", false, "start with Tekton's keep-pod-on-cancel feature flag on (SIGKILL on cancel instead of SIGTERM + 30 s grace)")
	stepVersion := flag.String("step-version", "", "version stamped into the ocbuild step binary")
	var ocbuildImages multiFlag
	flag.Var(&ocbuildImages, "ocbuild-image", "further image name run as the ocbuild step binary (repeatable)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	sb, err := sandbox.Start(ctx, sandbox.Options{
		Dir:             *dir,
		KeepPodOnCancel: *keepPod,
		StepVersion:     *stepVersion,
		OcbuildImages:   ocbuildImages,
		ExecutorLog:     os.Stdout,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
	fmt.Printf("\n%s", sb.Summary())
	fmt.Printf("  images run by the executor %s and %s (ocbuild), %s (Shipwright's git step), %s (command[0] from the host)\n",
		sandbox.ShippedOcbuildImage, sandbox.OcbuildImage, sandbox.GitImage, sandbox.HostImage)
	fmt.Printf("\nstarted in %s. Try: KUBECONFIG=%s kubectl get clusterbuildstrategies,builds,buildruns,taskruns,pods -A\n", time.Since(start).Round(time.Second), sb.KubeconfigPath)
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
	sb.Stop()
	fmt.Println("stopped")
	os.Exit(code)
}

type multiFlag []string

func (m *multiFlag) String() string     { return fmt.Sprint(*m) }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
