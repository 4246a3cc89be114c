// Command e2e-against-sandbox proves that `make e2e-cluster` works against
// an existing cluster: it starts `make sandbox`'s command (cmd/sandbox) as a
// separate process, waits until it is up and has written its
// e2e-cluster.env, runs `make e2e-cluster` with those variables, as a
// platform engineer runs it against their cluster, and stops the sandbox.
// It exits with the suite's exit code.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	sandboxBin := flag.String("sandbox", "", "the cmd/sandbox binary")
	root := flag.String("root", ".", "the ocbuild checkout (where make e2e-cluster runs)")
	flag.Parse()
	if *sandboxBin == "" {
		fmt.Fprintln(os.Stderr, "e2e-against-sandbox: --sandbox is required (go build -o bin/sandbox ./test/cmd/sandbox)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, *sandboxBin, *root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e-against-sandbox:", err)
	}
	os.Exit(code)
}

func run(ctx context.Context, sandboxBin, root string) (int, error) {
	dir, err := os.MkdirTemp("", "ocbuild-sandbox-cluster-")
	if err != nil {
		return 1, err
	}
	out, err := os.Create(filepath.Join(dir, "sandbox.out"))
	if err != nil {
		return 1, err
	}
	defer out.Close()
	sandbox := exec.Command(sandboxBin, "-dir", filepath.Join(dir, "state"))
	sandbox.Dir = root
	sandbox.Stdin = nil
	pr, pw := io.Pipe()
	sandbox.Stdout, sandbox.Stderr = pw, pw
	if err := sandbox.Start(); err != nil {
		return 1, err
	}
	exited := make(chan error, 1)
	go func() { err := sandbox.Wait(); _ = pw.Close(); exited <- err }()
	stopSandbox := func() {
		_ = sandbox.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(2 * time.Minute):
			_ = sandbox.Process.Kill()
			<-exited
		}
	}
	fmt.Printf("e2e-against-sandbox: starting `make sandbox` (output in %s)…\n", out.Name())
	// Up when it prints how to stop it; everything goes to sandbox.out.
	up := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		env := ""
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(out, line)
			if _, rest, ok := strings.Cut(line, "conformance suite against this sandbox: (set -a; . "); ok {
				env, _, _ = strings.Cut(rest, ";")
			}
			if strings.HasPrefix(line, "Press Ctrl-C to stop.") {
				up <- env
			}
		}
		_, _ = io.Copy(out, pr)
	}()
	var envFile string
	select {
	case envFile = <-up:
	case err := <-exited:
		return 1, fmt.Errorf("the sandbox exited before it was up (%v); see %s", err, out.Name())
	case <-ctx.Done():
		stopSandbox()
		return 1, ctx.Err()
	}
	if envFile == "" {
		stopSandbox()
		return 1, fmt.Errorf("the sandbox did not say where its e2e-cluster.env is; see %s", out.Name())
	}
	env, err := readEnv(envFile)
	if err != nil {
		stopSandbox()
		return 1, err
	}
	fmt.Printf("e2e-against-sandbox: the sandbox is up; make e2e-cluster with %s\n", envFile)
	suite := exec.CommandContext(ctx, "make", "--no-print-directory", "e2e-cluster")
	suite.Dir = root
	suite.Env = append(os.Environ(), env...)
	suite.Stdout, suite.Stderr = os.Stdout, os.Stderr
	suiteErr := suite.Run()
	stopSandbox()
	var exit *exec.ExitError
	switch {
	case suiteErr == nil:
		_ = os.RemoveAll(dir)
		return 0, nil
	case errors.As(suiteErr, &exit):
		return exit.ExitCode(), fmt.Errorf("make e2e-cluster failed; the sandbox's output and state are in %s", dir)
	default:
		return 1, suiteErr
	}
}

// readEnv reads the VAR=value lines of an e2e-cluster.env.
func readEnv(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var env []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			if !strings.Contains(l, "=") {
				return nil, fmt.Errorf("%s: %q is not VAR=value", path, l)
			}
			env = append(env, l)
		}
	}
	return env, nil
}
