// Command bench-measure runs a command and reports its wall time and
// rusage: `bench-measure -out FILE -- CMD ARGS…` runs CMD with this
// process's stdin, stdout, stderr and environment, waits for it, writes
//
//	wall=<ns> maxrss=<KiB> utime=<ns> stime=<ns> exit=<code>
//
// to FILE and exits with CMD's exit code.
//
// The bench needs it because a child's rusage maxrss is polluted by its
// parent: Go starts children with vfork (CLONE_VM), so until exec the child
// runs on the parent's address space, and Linux carries that address space's
// high-water mark into the child's maxrss at exec. For the bench, whose
// process holds the whole simulator (hundreds of MiB), every child then
// "peaks" at the bench's size. This program is small and has no
// dependencies, so the floor it leaves in its children's maxrss is its own
// few MiB.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	out := flag.String("out", "", "file to write the measurement to")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: bench-measure -out FILE -- CMD [ARGS…]")
		os.Exit(2)
	}
	// Signals are for the command: it decides how to stop.
	signal.Ignore(os.Interrupt, syscall.SIGTERM)
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench-measure:", err)
		os.Exit(127)
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if ru == nil {
		ru = &syscall.Rusage{}
	}
	line := fmt.Sprintf("wall=%d maxrss=%d utime=%d stime=%d exit=%d\n",
		wall.Nanoseconds(), ru.Maxrss, ru.Utime.Nano(), ru.Stime.Nano(), code)
	if err := os.WriteFile(*out, []byte(line), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench-measure:", err)
		os.Exit(127)
	}
	os.Exit(code)
}
