package baseimage

import (
	"context"
	"debug/elf"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/ocbuild/ocbuild/test/sandbox"
)

// scripts holds the S2I scripts: s2i/go/* and s2i/python/*.
//
//go:embed s2i
var scripts embed.FS

// debianKeyring is what mmdebstrap checks bookworm's Release files with.
const debianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// Prerequisites returns the Debian packages Build needs that this machine
// lacks: busybox-static (a static /bin/busybox, for base and go-toolset),
// mmdebstrap and debian-archive-keyring (for python-311). Build also needs a
// Go toolchain on PATH (go-toolset copies it), which is no Debian package.
func Prerequisites() []string {
	var missing []string
	if _, err := os.Stat(hostBusybox); err != nil || !isStatic(hostBusybox) {
		missing = append(missing, "busybox-static")
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		missing = append(missing, "mmdebstrap")
	}
	if _, err := os.Stat(debianKeyring); err != nil {
		missing = append(missing, "debian-archive-keyring")
	}
	return missing
}

// EnsurePrerequisites installs the missing Prerequisites with
// sandbox.AptInstall (apt-get install, after an apt-get update when
// the first try fails). It does nothing when nothing is missing; it needs
// root and apt-get otherwise.
func EnsurePrerequisites(ctx context.Context, log func(string)) error {
	missing := Prerequisites()
	if len(missing) == 0 {
		return nil
	}
	if err := aptInstall(ctx, log, missing...); err != nil {
		return err
	}
	if still := Prerequisites(); len(still) > 0 {
		return fmt.Errorf("baseimage: still missing after apt-get install: %s", strings.Join(still, " "))
	}
	return nil
}

// aptInstall installs Debian packages with apt-get.
func aptInstall(ctx context.Context, log func(string), pkgs ...string) error {
	return sandbox.AptInstall(ctx, log, pkgs...)
}

// isStatic reports whether the ELF executable at p needs no dynamic loader.
func isStatic(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}
