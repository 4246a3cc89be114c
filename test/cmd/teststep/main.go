// Command teststep is a step binary for the sandbox's end-to-end tests. The
// executor runs it for the image sandbox.local/teststep.
//
//	teststep fail --reason R --message M --reason-file F --message-file F [--exit N]
//	    writes shp-error-reason/shp-error-message result files, exits N (1).
//	teststep wait-signal --ready F --record F
//	    writes its pid to --ready, waits for a signal, writes the signal's
//	    name to --record and exits 128+signal.
//	teststep kube-list --resource R [--reason-file F --message-file F]
//	    lists R (secrets, configmaps) in its namespace with the kubeconfig in
//	    $KUBECONFIG; on error writes the API status reason and message as
//	    results and exits 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: teststep fail|wait-signal|kube-list [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	reason := fs.String("reason", "", "failure reason")
	message := fs.String("message", "", "failure message")
	reasonFile := fs.String("reason-file", "", "shp-error-reason result file")
	messageFile := fs.String("message-file", "", "shp-error-message result file")
	exit := fs.Int("exit", 1, "exit code")
	ready := fs.String("ready", "", "file to write the pid to once waiting")
	record := fs.String("record", "", "file to write the received signal to")
	resource := fs.String("resource", "secrets", "resource to list")
	_ = fs.Parse(os.Args[2:])

	switch os.Args[1] {
	case "fail":
		writeResults(*reasonFile, *reason, *messageFile, *message)
		fmt.Printf("failing on purpose: %s: %s\n", *reason, *message)
		os.Exit(*exit)

	case "wait-signal":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		must(os.WriteFile(*ready, []byte(strconv.Itoa(os.Getpid())), 0o644))
		fmt.Println("waiting for a signal")
		sig := <-sigs
		s := sig.(syscall.Signal)
		must(os.WriteFile(*record, []byte(unix(s)), 0o644))
		fmt.Println("received", unix(s))
		os.Exit(128 + int(s))

	case "kube-list":
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
		ns, _, err := cc.Namespace()
		must(err)
		cfg, err := cc.ClientConfig()
		must(err)
		client, err := kubernetes.NewForConfig(cfg)
		must(err)
		ctx := context.Background()
		switch *resource {
		case "secrets":
			_, err = client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		case "configmaps":
			_, err = client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		default:
			err = fmt.Errorf("unknown resource %q", *resource)
		}
		if err != nil {
			var status apierrors.APIStatus
			r := "Error"
			if errors.As(err, &status) {
				r = string(status.Status().Reason)
				fmt.Printf("HTTP %d\n", status.Status().Code)
			}
			writeResults(*reasonFile, r, *messageFile, err.Error())
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Printf("listed %s in %s\n", *resource, ns)

	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}

func unix(s syscall.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return s.String()
}

func writeResults(reasonFile, reason, messageFile, message string) {
	if reasonFile != "" {
		must(os.WriteFile(reasonFile, []byte(reason), 0o666))
	}
	if messageFile != "" {
		must(os.WriteFile(messageFile, []byte(message), 0o666))
	}
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(70)
	}
}
