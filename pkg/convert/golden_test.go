package convert_test

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocbuild/ocbuild/pkg/cli"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// corpus lists the inputs of the golden tests: every testdata file but the
// goldens.
func corpus(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"testdata/*.yaml", "testdata/*.json"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 10 {
		t.Fatalf("corpus has only %d files", len(files))
	}
	return files
}

// argsOf reads the "# args: …" line of a corpus file: the flags the golden
// run passes before the file.
func argsOf(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "# args:"); ok {
			return strings.Fields(rest)
		}
	}
	return nil
}

// run runs `ocbuild convert args…` as a user would and returns what they
// see.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Main(context.Background(), append([]string{"convert"}, args...), &out, &errb, "test")
	return code, out.String(), errb.String()
}

func goldenOf(file string) string {
	return strings.TrimSuffix(file, filepath.Ext(file)) + ".golden"
}

// Each corpus file converts to its golden: exit code, the YAML on stdout,
// the report on stderr.
func TestGolden(t *testing.T) {
	for _, file := range corpus(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			args := append(argsOf(t, file), file)
			code, stdout, stderr := run(t, args...)
			got := fmt.Sprintf("$ ocbuild convert %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, stdout, stderr)
			g := goldenOf(file)
			if *update {
				if err := os.WriteFile(g, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(g)
			if err != nil {
				t.Fatalf("%v (run go test ./pkg/convert -update)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (go test ./pkg/convert -update rewrites it):\n%s", g, got)
			}
		})
	}
}
