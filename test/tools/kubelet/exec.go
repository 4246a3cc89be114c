package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	utilexec "k8s.io/utils/exec"
)

// errNoTTY: steps run as plain processes, without a terminal.
var errNoTTY = errors.New("the sandbox's kubelet allocates no terminals (steps are plain processes): run without -t/--tty")

// runningRecord returns the record of a running container, or the error
// the real kubelet gives for one that is not.
func (k *kubelet) runningRecord(namespace, pod, container string) (*containerRecord, error) {
	rec, err := k.readRecord(namespace, pod, container)
	if err != nil {
		return nil, err
	}
	if rec.State != stateRunning || rec.PID == 0 {
		return nil, fmt.Errorf("container %q in pod %s/%s is not running (%s)", container, namespace, pod, rec.State)
	}
	return rec, nil
}

// runInContainer serves pods/exec: the command runs as a local process,
// its arguments' container paths mapped as the step's are and the step's
// image command (e.g. /ko-app/waiter) run as the binary the image maps to,
// with the step's environment (read from the step process, so that no
// secret lands on disk) in the step's working directory, in the step's
// process group, so that it ends with the container as in a real one.
func (k *kubelet) runInContainer(ctx context.Context, namespace, pod, container string, cmd []string, attach api.AttachIO) error {
	if attach.TTY() {
		return errNoTTY
	}
	if len(cmd) == 0 {
		return errors.New("no command given")
	}
	rec, err := k.runningRecord(namespace, pod, container)
	if err != nil {
		return err
	}
	environ, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(rec.PID), "environ"))
	if err != nil {
		return fmt.Errorf("reading the environment of container %q: %w", container, err)
	}
	var env []string
	for _, kv := range bytes.Split(environ, []byte{0}) {
		if len(kv) > 0 {
			env = append(env, string(kv))
		}
	}
	// The command sees the step's container paths, as the step does.
	args := make([]string, len(cmd))
	for i, a := range cmd {
		args[i] = rec.Paths.rewrite(a)
	}
	bin, ok := rec.ImageCommands[cmd[0]]
	if !ok {
		if bin, err = lookPath(args[0], env, rec.WorkingDir); err != nil {
			// What a container runtime answers, with its exit code.
			return utilexec.CodeExitError{Err: err, Code: 127}
		}
	}
	run := func(pgid int) error {
		c := exec.CommandContext(ctx, bin, args[1:]...)
		c.Args[0] = cmd[0]
		c.Env = env
		c.Dir = rec.WorkingDir
		if in := attach.Stdin(); in != nil {
			c.Stdin = in
		}
		if out := attach.Stdout(); out != nil {
			c.Stdout = out
		}
		if out := attach.Stderr(); out != nil {
			c.Stderr = out
		}
		// A client's stdin that stays open must not keep the exec alive
		// once the command has exited.
		c.WaitDelay = 2 * time.Second
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid, Pdeathsig: syscall.SIGKILL}
		return c.Run()
	}
	err = run(rec.PID)
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ESRCH) {
		// The step's group just ended (or is out of reach): the command
		// gets its own group.
		err = run(0)
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code := exitErr.ExitCode()
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		return utilexec.CodeExitError{Err: err, Code: code}
	}
	if err != nil {
		return fmt.Errorf("running %q in container %q: %w", cmd[0], container, err)
	}
	return nil
}

// lookPath finds a command as a container runtime does: on the step's PATH,
// relative to its working directory if the name has a slash.
func lookPath(name string, env []string, dir string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("exec: %q: no such executable file", name)
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		if p := filepath.Join(d, name); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// attachToContainer serves pods/attach: the step's output from now on
// (stdout and stderr to their streams) until the container ends or the
// client detaches.
func (k *kubelet) attachToContainer(ctx context.Context, namespace, pod, container string, attach api.AttachIO) error {
	if attach.TTY() {
		return errNoTTY
	}
	if _, err := k.runningRecord(namespace, pod, container); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Tekton steps have no stdin (v1.Step has no stdin field; the executor
	// gives them /dev/null), so a client's stdin goes nowhere, as with a
	// container without stdin.
	if in := attach.Stdin(); in != nil {
		go func() { _, _ = io.Copy(io.Discard, in) }()
	}
	stdout, stderr := attach.Stdout(), attach.Stderr()
	err := k.readLog(ctx, namespace, pod, container, true, true, nil, func(l logLine) error {
		w := io.Writer(stdout)
		if l.stream == "stderr" {
			w = stderr
		}
		if w == nil {
			return nil
		}
		_, err := w.Write(l.text)
		return err
	})
	if errors.Is(err, context.Canceled) {
		return nil // the client detached
	}
	return err
}
