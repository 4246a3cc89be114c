// Command kubelet is the kubelet API of the ocbuild sandbox's node
// "sandbox": it registers the Node (address 127.0.0.1, Ready, kept fresh by
// a lease) and serves the endpoints kube-apiserver proxies pods/log,
// pods/exec and pods/attach to, for the pods of the sandbox's TaskRun
// executor (test/sandbox/executor.go), whose steps are local processes.
// virtual-kubelet's node/api routes the requests and speaks the streaming
// protocols (SPDY, websocket); the answers come from the records and logs
// the executor writes under --pods-dir.
//
// It runs neither virtual-kubelet's pod controller nor its node
// controller: the executor owns pods and their status.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

type kubelet struct {
	// podsDir holds <namespace>/<pod>/containers/<container>.json.
	podsDir string
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	nodeName := flag.String("node-name", "sandbox", "the Node to register")
	port := flag.Int("port", 0, "the port to serve the kubelet API on, on 127.0.0.1")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig to register the Node with")
	certFile := flag.String("tls-cert-file", "", "serving certificate (PEM), valid for 127.0.0.1")
	keyFile := flag.String("tls-private-key-file", "", "key of the serving certificate (PEM)")
	clientCA := flag.String("client-ca-file", "", "CA whose client certificates (kube-apiserver's) are accepted; every request needs one")
	podsDir := flag.String("pods-dir", "", "directory of the executor's container records")
	version := flag.String("kubelet-version", "v0.0.0-sandbox", "the version the Node reports")
	flag.Parse()
	if *port == 0 || *kubeconfig == "" || *certFile == "" || *keyFile == "" || *clientCA == "" || *podsDir == "" {
		return errors.New("--port, --kubeconfig, --tls-cert-file, --tls-private-key-file, --client-ca-file and --pods-dir are required")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return fmt.Errorf("loading the serving certificate: %w", err)
	}
	caPEM, err := os.ReadFile(*clientCA)
	if err != nil {
		return fmt.Errorf("reading the client CA: %w", err)
	}
	clientCAs := x509.NewCertPool()
	if !clientCAs.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("no certificate in %s", *clientCA)
	}

	k := &kubelet{podsDir: *podsDir}
	mux := http.NewServeMux()
	api.AttachPodRoutes(api.PodHandlerConfig{
		GetContainerLogs:  k.containerLogs,
		RunInContainer:    k.runInContainer,
		AttachToContainer: k.attachToContainer,
		// Long enough for an attach that waits on a quiet step.
		StreamIdleTimeout:     4 * time.Hour,
		StreamCreationTimeout: 30 * time.Second,
	}, mux, false)
	srv := &http.Server{
		Handler:           logRequests(mux),
		ReadHeaderTimeout: 30 * time.Second,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			// Only kube-apiserver holds a certificate of this CA.
			ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs:  clientCAs,
			MinVersion: tls.VersionTLS12,
		},
		ErrorLog: log.Default(),
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, "", "") }()

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s: %w", *kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	n := &node{client: client, name: *nodeName, port: *port, version: *version}
	if err := n.register(ctx); err != nil {
		return err
	}
	log.Printf("node %s registered; kubelet API on %s", *nodeName, ln.Addr())
	go n.heartbeat(ctx)

	select {
	case err := <-served:
		return fmt.Errorf("serving the kubelet API: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	return nil
}
