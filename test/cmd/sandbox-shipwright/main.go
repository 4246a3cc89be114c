// Command sandbox-shipwright runs the real Shipwright build controller
// (github.com/shipwright-io/build/pkg/controller.NewManager, as upstream's
// cmd/shipwright-build-controller does) with its metrics bound to a loopback
// address of the sandbox's choosing instead of the hard-coded 0.0.0.0:8383.
// Configuration comes from KUBECONFIG and Shipwright's usual environment
// variables (GIT_CONTAINER_IMAGE, …).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/manager/signals"
	"sigs.k8s.io/controller-runtime/pkg/metrics/server"

	buildconfig "github.com/shipwright-io/build/pkg/config"
	"github.com/shipwright-io/build/pkg/controller"
	"github.com/shipwright-io/build/pkg/ctxlog"
	buildmetrics "github.com/shipwright-io/build/pkg/metrics"
)

func main() {
	metricsAddr := pflag.String("metrics-bind-address", "127.0.0.1:0", "address the metrics endpoint binds to")
	pflag.CommandLine.AddGoFlagSet(ctxlog.CustomZapFlagSet())
	pflag.CommandLine.AddGoFlagSet(flag.CommandLine)
	pflag.Parse()

	ctx := ctxlog.NewParentContext(ctxlog.NewLogger("build"))
	fail := func(err error, what string) {
		ctxlog.Error(ctx, err, what)
		fmt.Fprintln(os.Stderr, what+":", err)
		os.Exit(1)
	}

	cfg, err := config.GetConfig()
	if err != nil {
		fail(err, "loading kubeconfig")
	}
	buildCfg := buildconfig.NewDefaultConfig()
	if err := buildCfg.SetConfigFromEnv(); err != nil {
		fail(err, "reading configuration from the environment")
	}
	mgr, err := controller.NewManager(ctx, buildCfg, cfg, manager.Options{
		LeaderElection:          true,
		LeaderElectionID:        "shipwright-build-controller-lock",
		LeaderElectionNamespace: buildCfg.ManagerOptions.LeaderElectionNamespace,
		LeaseDuration:           buildCfg.ManagerOptions.LeaseDuration,
		RenewDeadline:           buildCfg.ManagerOptions.RenewDeadline,
		RetryPeriod:             buildCfg.ManagerOptions.RetryPeriod,
		Metrics:                 server.Options{BindAddress: *metricsAddr},
	})
	if err != nil {
		fail(err, "creating the manager")
	}
	buildmetrics.InitPrometheus(buildCfg)
	ctxlog.Info(ctx, "Starting the Shipwright build controller (sandbox)")
	if err := mgr.Start(signals.SetupSignalHandler()); err != nil {
		fail(err, "manager exited")
	}
}
