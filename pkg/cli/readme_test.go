package cli

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/ocbuild/ocbuild/pkg/driver"
)

// The README documents every flag of both subcommands.
func TestReadmeListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{driver.ModeBuild, driver.ModeStart} {
		newFlagSet(mode, &flags{}, io.Discard).VisitAll(func(f *pflag.Flag) {
			if !strings.Contains(string(readme), "--"+f.Name+" ") {
				t.Errorf("README.md does not document --%s (ocbuild %s)", f.Name, mode)
			}
		})
	}
	for name := range arrayFlags {
		if !strings.Contains(string(readme), name) {
			t.Errorf("README.md does not document %s", name)
		}
	}
}

// The README's help block is the help text, verbatim.
func TestReadmeShowsUsage(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```text\n"+Usage()+"```\n") {
		t.Error("README.md's ```text block is not the output of ocbuild --help; paste it again")
	}
}
