package strategies

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The parameter reference in docs/strategies.md lists every parameter of
// every strategy, under the strategy's own heading.
func TestDocsListEveryParameter(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs", "strategies.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for name, s := range clusterStrategies(t) {
		start := strings.Index(doc, "\n## "+name+"\n")
		if start < 0 {
			t.Errorf("docs/strategies.md has no section ## %s", name)
			continue
		}
		section := doc[start+1:]
		if end := strings.Index(section[3:], "\n## "); end >= 0 {
			section = section[:end+3]
		}
		documented := map[string]bool{}
		for _, line := range strings.Split(section, "\n") {
			if strings.HasPrefix(line, "| `") {
				documented[strings.Trim(strings.Split(line, "|")[1], " `")] = true
			}
		}
		for _, p := range s.Spec.Parameters {
			if !documented[p.Name] {
				t.Errorf("docs/strategies.md, %s: parameter %s is not in the table", name, p.Name)
			}
			delete(documented, p.Name)
		}
		for extra := range documented {
			t.Errorf("docs/strategies.md, %s: documents %s, which the strategy does not declare", name, extra)
		}
	}
}
