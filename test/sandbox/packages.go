package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// AptInstall installs Debian packages with apt-get (running apt-get update
// and trying again when the first try fails: a fresh machine's package
// lists may be missing or stale). It needs root, as the sandbox's builds
// that use these packages do.
func AptInstall(ctx context.Context, log func(string), pkgs ...string) error {
	list := strings.Join(pkgs, " ")
	if os.Geteuid() != 0 {
		return fmt.Errorf("the sandbox's builds need the Debian packages %s: install them (apt-get install -y %s) or run as root", list, list)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("the sandbox's builds need the Debian packages %s and this machine has no apt-get: install them by hand", list)
	}
	if log != nil {
		log("installing " + list + " with apt-get (needed by the sandbox's builds)…")
	}
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %v: %s", strings.Join(args, " "), err, LastLines(string(out), 5))
		}
		return nil
	}
	install := append([]string{"install", "-y", "-qq"}, pkgs...)
	if err := run(install...); err == nil {
		return nil
	}
	if err := run("update", "-qq"); err != nil {
		return err
	}
	return run(install...)
}

// LastLines is the last n lines of a command's output, for an error message.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
