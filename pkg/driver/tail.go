package driver

import (
	"strings"
	"sync"
)

// tailLines is how many log lines stand in for a missing logSnippet, as
// many as OpenShift's snippet keeps.
const tailLines = 5

// logTail keeps the last complete lines written to it: the build log's
// tail as the step streamed it.
type logTail struct {
	mu      sync.Mutex
	lines   []string
	partial strings.Builder
}

func (t *logTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(p)
	for {
		line, rest, ok := strings.Cut(s, "\n")
		if !ok {
			t.partial.WriteString(line)
			return len(p), nil
		}
		t.partial.WriteString(line)
		t.lines = append(t.lines, t.partial.String())
		t.partial.Reset()
		if len(t.lines) > tailLines {
			t.lines = t.lines[len(t.lines)-tailLines:]
		}
		s = rest
	}
}

// Lines returns the last lines, oldest first, without trailing empty ones.
func (t *logTail) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.lines...)
	for len(out) > 0 && strings.TrimSpace(out[len(out)-1]) == "" {
		out = out[:len(out)-1]
	}
	return out
}
