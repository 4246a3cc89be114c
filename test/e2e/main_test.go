// Package e2e runs BuildRuns end to end in the sandbox: real kube-apiserver,
// real Shipwright controller, the TaskRun executor. TestMain starts the
// sandbox once for the package.
package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ocbuild/ocbuild/test/sandbox"
)

// testStepImage runs ./cmd/teststep.
const testStepImage = "sandbox.local/teststep:latest"

var sb *sandbox.Sandbox

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ocbuild-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	start := time.Now()
	sb, err = sandbox.Start(ctx, sandbox.Options{
		Dir:         dir,
		BuildImages: map[string]string{testStepImage: "./cmd/teststep"},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the sandbox:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "sandbox started in %s\n%s", time.Since(start).Round(time.Second), sb.Summary())
	code := m.Run()
	sb.Stop()
	if code == 0 {
		_ = os.RemoveAll(dir)
	} else {
		fmt.Fprintf(os.Stderr, "sandbox state and logs kept in %s\n", dir)
	}
	return code
}
