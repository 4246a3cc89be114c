// Command ocbuild is the Shipwright build step that runs an OpenShift Build:
// see pkg/cli for its flags and pkg/driver for what a run does.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"github.com/ocbuild/ocbuild/pkg/cli"
)

// version is stamped at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	// client-go's reflectors log dropped watches and shutdown through klog;
	// the step log is for people, and ocbuild reports what matters itself.
	// (A discarding logger: errors would bypass SetOutput via stderrthreshold.)
	klog.SetLogger(logr.Discard())
	// SIGTERM is how Tekton stops a cancelled or timed-out step: the driver
	// cancels the OpenShift build within the 30 s grace period.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, version)
	stop()
	os.Exit(code)
}
