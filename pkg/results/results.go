// Package results writes the Tekton result files Shipwright reads into
// BuildRun.status: the image digest and size, the source commit, and on failure
// the error reason and message.
//
// Every result is written by one helper, Files.Write, which drops paths Tekton
// did not substitute (a strategy may pass $(results.shp-source-default-commit-sha.path)
// although Shipwright declares that result only for Git sources) and keeps the
// values within the termination-message budget.
package results

import (
	"fmt"
	"os"
	"strings"
	"unicode/utf8"
)

// Result names, as Shipwright declares them.
const (
	ImageDigest  = "shp-image-digest"
	ImageSize    = "shp-image-size"
	CommitSha    = "shp-source-default-commit-sha"
	ErrorReason  = "shp-error-reason"
	ErrorMessage = "shp-error-message"
)

// Budget is Tekton's limit for a step's termination message (all results of
// the step as JSON, including those re-emitted from the git step).
const Budget = 4096

// MaxMessage bounds shp-error-message, in bytes as JSON-encoded, so our
// results plus the git step's four results (about 250 bytes with JSON
// framing) stay far inside Budget.
const MaxMessage = 1024

// MaxReason bounds shp-error-reason; reasons are single CamelCase words.
const MaxReason = 64

// Files maps result names to the file paths given on the command line.
type Files map[string]string

// Unsubstituted reports whether a path still holds a Tekton variable, which
// means the result is not declared for this TaskRun.
func Unsubstituted(path string) bool {
	return strings.Contains(path, "$(")
}

// Clean drops empty and unsubstituted paths, reporting each dropped variable
// through warn. It returns the usable set.
func (f Files) Clean(warn func(string)) Files {
	out := Files{}
	for name, path := range f {
		switch {
		case path == "":
		case Unsubstituted(path):
			warn(fmt.Sprintf("result %s is not declared for this TaskRun (%s was not substituted); not writing it", name, path))
		default:
			out[name] = path
		}
	}
	return out
}

// Write writes value to the file for result name; a name without a file is a
// no-op. Values are bounded (see MaxMessage) before they are written.
func (f Files) Write(name, value string) error {
	path, ok := f[name]
	if !ok {
		return nil
	}
	switch name {
	case ErrorMessage:
		value = Truncate(value, MaxMessage)
	case ErrorReason:
		value = Truncate(value, MaxReason)
	}
	// 0666 before umask: the git step runs as the same user, and Tekton's
	// entrypoint reads the files back as that user.
	if err := os.WriteFile(path, []byte(value), 0o666); err != nil {
		return fmt.Errorf("results: write %s: %w", name, err)
	}
	return nil
}

// jsonSize returns how many bytes the first rune of s takes inside a JSON
// string as encoding/json writes it (Tekton's entrypoint marshals the
// termination message with it), and the rune's width in s. '<', '>', '&',
// U+2028/U+2029, control characters and invalid bytes become 6-byte \u
// escapes, so a raw byte count understates the budget up to six times.
func jsonSize(s string) (encoded, width int) {
	r, w := utf8.DecodeRuneInString(s)
	switch {
	case r == utf8.RuneError && w == 1:
		return 6, 1 // written as \ufffd
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
		return 2, w
	case r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029':
		return 6, w
	}
	return w, w
}

// jsonLen is the size of s inside a JSON string in Tekton's termination
// message; it is never less than len(s).
func jsonLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		e, w := jsonSize(s[i:])
		n, i = n+e, i+w
	}
	return n
}

// Truncate shortens s to at most max bytes as JSON-encoded (see jsonLen, so
// also at most max raw bytes) without splitting a UTF-8 sequence, marking the
// cut with "…".
func Truncate(s string, max int) string {
	if jsonLen(s) <= max {
		return s
	}
	const mark = "…"
	if max < len(mark) {
		return ""
	}
	n, cut := len(mark), 0
	for cut < len(s) {
		e, w := jsonSize(s[cut:])
		if n+e > max {
			break
		}
		n, cut = n+e, cut+w
	}
	return s[:cut] + mark
}

// ErrorText composes shp-error-message from the build's message and the tail
// of its log snippet, keeping the message whole when it can and the end of the
// snippet (the lines nearest the failure), within MaxMessage bytes as
// JSON-encoded (see jsonLen).
func ErrorText(message, snippet string) string {
	message = strings.TrimSpace(message)
	snippet = strings.TrimRight(snippet, "\n")
	if snippet == "" {
		return Truncate(message, MaxMessage)
	}
	const sep = "\n"
	head := Truncate(message, MaxMessage/2)
	room := MaxMessage - jsonLen(head) - jsonLen(sep)
	if jsonLen(snippet) > room {
		const mark = "…"
		n, start := len(mark), len(snippet)
		for start > 0 {
			_, w := utf8.DecodeLastRuneInString(snippet[:start])
			e, _ := jsonSize(snippet[start-w : start])
			if n+e > room {
				break
			}
			n, start = n+e, start-w
		}
		snippet = mark + snippet[start:]
	}
	if head == "" {
		return snippet
	}
	return head + sep + snippet
}
