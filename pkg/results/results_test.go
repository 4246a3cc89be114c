package results_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tektoncd/pipeline/pkg/result"

	"github.com/ocbuild/ocbuild/pkg/results"
)

// jsonLen is the size of s inside a JSON string as Tekton's entrypoint
// (encoding/json) writes it.
func jsonLen(t *testing.T, s string) int {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return len(b) - 2
}

func TestClean(t *testing.T) {
	var warnings []string
	in := results.Files{
		results.ImageDigest:  "/tekton/results/shp-image-digest",
		results.ImageSize:    "",
		results.CommitSha:    "$(results.shp-source-default-commit-sha.path)",
		results.ErrorReason:  "/tekton/results/shp-error-reason",
		results.ErrorMessage: "/x/$(params.odd)/y",
	}
	got := in.Clean(func(s string) { warnings = append(warnings, s) })
	want := results.Files{
		results.ImageDigest: "/tekton/results/shp-image-digest",
		results.ErrorReason: "/tekton/results/shp-error-reason",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Clean = %v, want %v", got, want)
	}
	if len(in) != 5 {
		t.Errorf("Clean modified its receiver: %v", in)
	}
	sort.Strings(warnings)
	if len(warnings) != 2 {
		t.Fatalf("warnings = %q, want one per unsubstituted path", warnings)
	}
	for i, w := range []string{results.ErrorMessage, results.CommitSha} { // sorted by text
		if !strings.Contains(warnings[i], w) || !strings.Contains(warnings[i], "not substituted") {
			t.Errorf("warning %q does not name %s", warnings[i], w)
		}
	}
	if !strings.Contains(strings.Join(warnings, "\n"), "$(results.shp-source-default-commit-sha.path)") {
		t.Errorf("warnings %q do not show the unsubstituted variable", warnings)
	}
}

func TestUnsubstituted(t *testing.T) {
	for p, want := range map[string]bool{
		"$(results.shp-image-digest.path)": true,
		"/tekton/$(params.x)":              true,
		"/tekton/results/shp-image-digest": false,
		"":                                 false,
		"/tmp/$HOME":                       false,
	} {
		if got := results.Unsubstituted(p); got != want {
			t.Errorf("Unsubstituted(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestWriteOnlyConfigured(t *testing.T) {
	dir := t.TempDir()
	files := results.Files{
		results.ImageDigest: filepath.Join(dir, "digest"),
		results.ErrorReason: filepath.Join(dir, "reason"),
	}
	if err := files.Write(results.ImageDigest, "sha256:abc"); err != nil {
		t.Fatal(err)
	}
	if err := files.Write(results.ErrorReason, "BuildFailed"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{results.CommitSha, results.ImageSize, results.ErrorMessage} {
		if err := files.Write(name, "ignored"); err != nil {
			t.Errorf("Write(%s) without a file = %v, want nil", name, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "digest,reason" {
		t.Errorf("files written: %v, want digest and reason only", names)
	}
	for file, want := range map[string]string{"digest": "sha256:abc", "reason": "BuildFailed"} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", file, b, err, want)
		}
	}

	// Writing again replaces the value (the file is truncated).
	if err := files.Write(results.ImageDigest, "sha256:d"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "digest")); string(b) != "sha256:d" {
		t.Errorf("rewritten digest = %q", b)
	}
}

func TestWriteError(t *testing.T) {
	files := results.Files{results.ErrorReason: filepath.Join(t.TempDir(), "missing", "reason")}
	err := files.Write(results.ErrorReason, "BuildFailed")
	if err == nil || !strings.Contains(err.Error(), results.ErrorReason) {
		t.Errorf("Write into a missing directory = %v, want an error naming the result", err)
	}
}

func TestWriteBoundsMessageAndReason(t *testing.T) {
	dir := t.TempDir()
	files := results.Files{
		results.ErrorMessage: filepath.Join(dir, "message"),
		results.ErrorReason:  filepath.Join(dir, "reason"),
		results.ImageDigest:  filepath.Join(dir, "digest"),
	}
	msg := strings.Repeat("x", 3*results.MaxMessage)
	if err := files.Write(results.ErrorMessage, msg); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(files[results.ErrorMessage])
	if len(b) > results.MaxMessage || len(b) < results.MaxMessage-8 {
		t.Errorf("message is %d bytes, want close to MaxMessage (%d)", len(b), results.MaxMessage)
	}
	if !strings.HasSuffix(string(b), "…") || !strings.HasPrefix(string(b), "xxxx") {
		t.Errorf("message does not keep the head and mark the cut: %q…", b[:16])
	}

	if err := files.Write(results.ErrorReason, strings.Repeat("R", 500)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(files[results.ErrorReason]); len(b) > results.MaxReason {
		t.Errorf("reason is %d bytes, want at most %d", len(b), results.MaxReason)
	}

	// Other results are written verbatim.
	long := strings.Repeat("d", 2000)
	if err := files.Write(results.ImageDigest, long); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(files[results.ImageDigest]); string(b) != long {
		t.Errorf("digest was changed (%d bytes)", len(b))
	}
}

func TestTruncate(t *testing.T) {
	if got := results.Truncate("short", 10); got != "short" {
		t.Errorf("Truncate(short) = %q", got)
	}
	if got := results.Truncate("exactly10!", 10); got != "exactly10!" {
		t.Errorf("Truncate at the limit = %q", got)
	}
	if got := results.Truncate("abcdefghijk", 10); got != "abcdefg…" {
		t.Errorf("Truncate(abcdefghijk, 10) = %q, want %q", got, "abcdefg…")
	}
	for max := 0; max < 3; max++ {
		if got := results.Truncate("abcdef", max); len(got) > max {
			t.Errorf("Truncate(abcdef, %d) = %q", max, got)
		}
	}
	// Escaped characters count as Tekton's JSON writes them.
	if got := results.Truncate("a<b&c>d", 10); got != "a<…" { // 1+6+3 bytes
		t.Errorf("Truncate(a<b&c>d, 10) = %q, want %q", got, "a<…")
	}
	// Multi-byte runes at every position of the cut.
	for _, r := range []string{"é", "€", "😀"} {
		for prefix := 0; prefix < 4; prefix++ {
			s := strings.Repeat("a", prefix) + strings.Repeat(r, 50)
			for max := 4; max < 40; max++ {
				got := results.Truncate(s, max)
				if !utf8.ValidString(got) {
					t.Fatalf("Truncate(%q, %d) = %q splits a rune", s, max, got)
				}
				if len(got) > max {
					t.Fatalf("Truncate(%q, %d) = %d bytes", s, max, len(got))
				}
				if !strings.HasSuffix(got, "…") || !strings.HasPrefix(s, strings.TrimSuffix(got, "…")) {
					t.Fatalf("Truncate(%q, %d) = %q is not a marked prefix", s, max, got)
				}
			}
		}
	}
}

func TestErrorMessageNeverSplitsUTF8(t *testing.T) {
	dir := t.TempDir()
	files := results.Files{results.ErrorMessage: filepath.Join(dir, "m")}
	for _, r := range []string{"é", "€", "😀"} {
		for pad := 0; pad < 4; pad++ {
			msg := strings.Repeat("a", pad) + strings.Repeat(r, results.MaxMessage)
			if err := files.Write(results.ErrorMessage, msg); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(files[results.ErrorMessage])
			if !utf8.Valid(b) {
				t.Errorf("pad %d rune %q: message is not valid UTF-8 at the cut: %q", pad, r, b[len(b)-8:])
			}
			if len(b) > results.MaxMessage {
				t.Errorf("pad %d rune %q: %d bytes > MaxMessage", pad, r, len(b))
			}
		}
	}
}

func numberedLines(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "line %04d: step output\n", i)
	}
	return b.String()
}

func TestErrorText(t *testing.T) {
	t.Run("message only", func(t *testing.T) {
		if got := results.ErrorText("  Docker build strategy has failed.\n", ""); got != "Docker build strategy has failed." {
			t.Errorf("ErrorText = %q", got)
		}
		if got := results.ErrorText(strings.Repeat("m", 5000), "\n\n"); len(got) > results.MaxMessage || !strings.HasPrefix(got, "mmm") {
			t.Errorf("ErrorText of a long message: %d bytes", len(got))
		}
	})
	t.Run("short snippet kept whole", func(t *testing.T) {
		got := results.ErrorText("Docker build strategy has failed.", "error: exit status 1\n")
		if want := "Docker build strategy has failed.\nerror: exit status 1"; got != want {
			t.Errorf("ErrorText = %q, want %q", got, want)
		}
	})
	t.Run("snippet only", func(t *testing.T) {
		if got := results.ErrorText("", "boom\n"); got != "boom" {
			t.Errorf("ErrorText = %q, want %q", got, "boom")
		}
	})
	t.Run("long snippet keeps the tail", func(t *testing.T) {
		msg := "Docker build strategy has failed."
		snippet := numberedLines(500)
		got := results.ErrorText(msg, snippet)
		if len(got) > results.MaxMessage {
			t.Fatalf("%d bytes > MaxMessage", len(got))
		}
		if len(got) < results.MaxMessage-64 {
			t.Errorf("only %d bytes used of %d", len(got), results.MaxMessage)
		}
		if !strings.HasPrefix(got, msg+"\n…") {
			t.Errorf("does not start with the whole message and a cut mark: %q", got[:60])
		}
		if !strings.HasSuffix(got, "line 0500: step output") {
			t.Errorf("the last line is missing: %q", got[len(got)-60:])
		}
		if !strings.Contains(got, "line 0490: step output\nline 0491") {
			t.Errorf("the lines before the last are missing")
		}
		if strings.Contains(got, "line 0001") || strings.Contains(got, "line 0100:") {
			t.Errorf("the head of the snippet was kept instead of its tail")
		}
	})
	t.Run("long message and long snippet share the budget", func(t *testing.T) {
		msg := "M" + strings.Repeat("m", 3000)
		got := results.ErrorText(msg, numberedLines(500))
		if len(got) > results.MaxMessage {
			t.Fatalf("%d bytes > MaxMessage", len(got))
		}
		head, tail, ok := strings.Cut(got, "\n")
		if !ok || !strings.HasPrefix(head, "Mmmm") || !strings.HasSuffix(head, "…") || len(head) > results.MaxMessage/2 {
			t.Errorf("message head = %d bytes %q…", len(head), head[:10])
		}
		if !strings.HasSuffix(tail, "line 0500: step output") || len(tail) < results.MaxMessage/3 {
			t.Errorf("snippet tail = %d bytes", len(tail))
		}
	})
	t.Run("multi-byte runes at the cut", func(t *testing.T) {
		for _, r := range []string{"é", "€", "😀"} {
			for pad := 0; pad < 4; pad++ {
				snippet := strings.Repeat(r, 2000) + strings.Repeat("z", pad)
				msg := strings.Repeat(r, 1000)
				got := results.ErrorText(msg, snippet)
				if !utf8.ValidString(got) {
					t.Fatalf("rune %q pad %d: not valid UTF-8", r, pad)
				}
				if len(got) > results.MaxMessage {
					t.Fatalf("rune %q pad %d: %d bytes", r, pad, len(got))
				}
				if !strings.HasSuffix(got, r+strings.Repeat("z", pad)) {
					t.Errorf("rune %q pad %d: the snippet's end is missing", r, pad)
				}
			}
		}
	})
	t.Run("result survives Write unchanged", func(t *testing.T) {
		text := results.ErrorText("failed", numberedLines(300))
		files := results.Files{results.ErrorMessage: filepath.Join(t.TempDir(), "m")}
		if err := files.Write(results.ErrorMessage, text); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(files[results.ErrorMessage]); string(b) != text {
			t.Errorf("Write cut ErrorText's result again: the snippet's tail would be lost")
		}
	})
}

// The bound must hold for the JSON Tekton writes, where '<', '>', '&' and
// control characters (ANSI colour codes in build logs) take six bytes each.
func TestErrorMessageBoundedAsJSON(t *testing.T) {
	hostile := []string{
		strings.Repeat("<&>", 2000),
		strings.Repeat("\x1b[31merror\x1b[0m && make install\n", 200),
		strings.Repeat("\x01", 5000),
		strings.Repeat("\"\\", 3000),
		strings.Repeat("\u2028", 2000),
		strings.Repeat("\xff", 3000), // invalid UTF-8 becomes \ufffd
	}
	dir := t.TempDir()
	files := results.Files{results.ErrorMessage: filepath.Join(dir, "m")}
	for i, h := range hostile {
		for name, text := range map[string]string{
			"Write":             h,
			"ErrorText snippet": results.ErrorText("RUN make && make install failed <exit 2>", h),
			"ErrorText message": results.ErrorText(h, h),
		} {
			if err := files.Write(results.ErrorMessage, text); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(files[results.ErrorMessage])
			if n := jsonLen(t, string(b)); n > results.MaxMessage {
				t.Errorf("case %d %s: message takes %d bytes as JSON, want at most %d", i, name, n, results.MaxMessage)
			}
			if len(b) == 0 {
				t.Errorf("case %d %s: empty message", i, name)
			}
		}
	}
	// The snippet's tail still wins over its head.
	got := results.ErrorText("failed", strings.Repeat("<x>\n", 1000)+"LAST LINE")
	if !strings.HasSuffix(got, "<x>\nLAST LINE") || jsonLen(t, got) > results.MaxMessage {
		t.Errorf("hostile snippet: tail lost or over budget (%d JSON bytes)", jsonLen(t, got))
	}
}

// TestTerminationMessageBudget composes the termination message Tekton's
// entrypoint writes for the ocbuild step: every declared result (ours at their
// largest, plus the four the git step wrote and every later step re-emits) and
// the entrypoint's own entries, marshalled as pkg/termination does.
func TestTerminationMessageBudget(t *testing.T) {
	dir := t.TempDir()
	files := results.Files{}
	for _, name := range []string{results.ImageDigest, results.ImageSize, results.CommitSha, results.ErrorReason, results.ErrorMessage} {
		files[name] = filepath.Join(dir, name)
	}
	digest := "sha256:" + strings.Repeat("f", 64)
	messages := map[string]string{
		"ascii":      results.ErrorText(strings.Repeat("m", 4000), numberedLines(400)),
		"multi-byte": results.ErrorText(strings.Repeat("é€", 4000), strings.Repeat("😀\n", 4000)),
		"escaped":    results.ErrorText(strings.Repeat("<&>", 2000), strings.Repeat("\x1b[1m&&\x1b[0m\t\"\\\n", 2000)),
	}
	for name, message := range messages {
		t.Run(name, func(t *testing.T) {
			for k, v := range map[string]string{
				results.ImageDigest:  digest,
				results.ImageSize:    "9223372036854775807",
				results.CommitSha:    strings.Repeat("a", 40),
				results.ErrorReason:  strings.Repeat("R", 1000),
				results.ErrorMessage: message,
			} {
				if err := files.Write(k, v); err != nil {
					t.Fatal(err)
				}
			}
			entries := []result.RunResult{}
			for _, k := range []string{results.ImageDigest, results.ImageSize, results.CommitSha, results.ErrorReason, results.ErrorMessage} {
				b, err := os.ReadFile(files[k])
				if err != nil {
					t.Fatal(err)
				}
				entries = append(entries, result.RunResult{Key: k, Value: string(b), ResultType: result.TaskRunResultType})
			}
			// The git step's results, re-emitted by this step.
			for k, v := range map[string]string{
				"shp-source-default-commit-author":    strings.Repeat("A", 100),
				"shp-source-default-branch-name":      "feature/" + strings.Repeat("b", 92),
				"shp-source-default-source-timestamp": "1767225600",
			} {
				entries = append(entries, result.RunResult{Key: k, Value: v, ResultType: result.TaskRunResultType})
			}
			// The entrypoint's internal entries.
			entries = append(entries,
				result.RunResult{Key: "StartedAt", Value: "2026-01-01T00:00:00.000Z", ResultType: result.InternalTektonResultType},
				result.RunResult{Key: "ExitCode", Value: "1", ResultType: result.InternalTektonResultType},
			)
			b, err := json.Marshal(entries)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) >= results.Budget {
				t.Errorf("termination message is %d bytes, want < %d", len(b), results.Budget)
			}
			// And with room to spare for Tekton's own additions.
			if len(b) > results.Budget*3/4 {
				t.Errorf("termination message is %d bytes, over three quarters of the budget", len(b))
			}
			var back []result.RunResult
			if err := json.Unmarshal(b, &back); err != nil || len(back) != len(entries) {
				t.Fatalf("round trip: %v", err)
			}
			if back[4].Key != results.ErrorMessage || back[1].Value != "9223372036854775807" {
				t.Errorf("round trip changed entries")
			}
		})
	}
}
