package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	o := &options{Log: os.Stderr}
	var platforms, epoch string
	flag.StringVar(&o.Version, "version", "dev", "version stamped into the binary (main.version), the labels and the layout's ref name")
	flag.StringVar(&o.Revision, "revision", "", "VCS revision for org.opencontainers.image.revision (default: git rev-parse HEAD)")
	flag.StringVar(&o.Source, "source", "https://github.com/ocbuild/ocbuild", "org.opencontainers.image.source")
	flag.StringVar(&o.Out, "out", "dist/ocbuild-image", "OCI layout directory to write (replaced); empty writes none")
	flag.StringVar(&o.Push, "push", "", "push the index to this image reference (registry credentials from the docker config / default keychain)")
	flag.BoolVar(&o.Insecure, "insecure", false, "push over plain HTTP")
	flag.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated platforms")
	flag.StringVar(&o.CABundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA certificates to copy into the image")
	flag.StringVar(&o.ModuleDir, "module-dir", "", "module root (default: the module of the current directory)")
	flag.StringVar(&o.Package, "package", "./step", "main package to compile, relative to the module root")
	flag.StringVar(&epoch, "epoch", "", "Unix time of every timestamp in the image (default: $SOURCE_DATE_EPOCH, else HEAD's commit time)")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "imagebuild: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	var err error
	if o.Platforms, err = parsePlatforms(platforms); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(2)
	}
	if epoch != "" {
		sec, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "imagebuild: --epoch:", err)
			os.Exit(2)
		}
		o.Epoch = time.Unix(sec, 0).UTC()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := build(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}
