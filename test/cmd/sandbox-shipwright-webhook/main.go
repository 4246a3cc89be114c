// Command sandbox-shipwright-webhook serves Shipwright's CRD conversion
// webhook (github.com/shipwright-io/build/pkg/webhook/conversion, the
// handlers upstream's cmd/shipwright-build-webhook mounts: /convert and
// /health) on an address and with a key pair of the sandbox's choosing.
// Upstream's main cannot be run as it is outside a pod: it listens on the
// fixed :8443 of every interface and reads its key pair from the fixed
// /etc/webhook/certs, and it keeps running when its listener fails, so a
// sandbox could not tell that it never served.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/shipwright-io/build/pkg/ctxlog"
	"github.com/shipwright-io/build/pkg/webhook/conversion"
)

func main() {
	listenAddr := pflag.String("listen-address", "", "host:port the webhook serves HTTPS on (required)")
	certFile := pflag.String("tls-cert-file", "", "PEM serving certificate, followed by its CA (required)")
	keyFile := pflag.String("tls-private-key-file", "", "PEM private key of the serving certificate (required)")
	pflag.CommandLine.AddGoFlagSet(ctxlog.CustomZapFlagSet())
	pflag.CommandLine.AddGoFlagSet(flag.CommandLine)
	pflag.Parse()

	ctx := ctxlog.NewParentContext(ctxlog.NewLogger("shp-build-webhook"))
	if err := serve(ctx, *listenAddr, *certFile, *keyFile); err != nil {
		ctxlog.Error(ctx, err, "webhook failed")
		fmt.Fprintln(os.Stderr, "sandbox-shipwright-webhook:", err)
		os.Exit(1)
	}
}

// serve serves until SIGTERM or SIGINT, or until the listener fails.
func serve(ctx context.Context, listenAddr, certFile, keyFile string) error {
	if listenAddr == "" || certFile == "" || keyFile == "" {
		return errors.New("--listen-address, --tls-cert-file and --tls-private-key-file are required")
	}
	// Loading the pair first turns a bad path into an exit at start instead
	// of a TLS handshake error at the first conversion.
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("loading the serving key pair: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/convert", conversion.CRDConvertHandler(ctx))
	server := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 32 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
	}
	listener, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", listenAddr, err)
	}
	stopCtx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- server.ServeTLS(listener, "", "") }()
	ctxlog.Info(ctx, "serving the Shipwright conversion webhook (sandbox)", "address", listener.Addr().String())
	select {
	case err := <-served:
		return fmt.Errorf("serving on %s: %w", listenAddr, err)
	case <-stopCtx.Done():
	}
	ctxlog.Info(ctx, "shutting down the webhook server")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}
