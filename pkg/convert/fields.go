package convert

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Disposition says where one field of a BuildConfig went.
type Disposition int

const (
	// Mapped: a Build field or parameter carries it.
	Mapped Disposition = iota
	// Kept: only the BuildConfig can carry it, so the Build runs the
	// BuildConfig (strategy openshift-buildconfig).
	Kept
	// Ignored: written by the API server (status, uid, …), not by the user.
	Ignored
)

// Entry is one line of the report: a field path of the BuildConfig and
// where it went.
type Entry struct {
	Path string
	How  Disposition
	// Dest is the Build field or "param <name>" (Mapped), or why only the
	// BuildConfig can carry the field (Kept, Ignored).
	Dest string
	// AlsoInBuild marks a Mapped entry the openshift-buildconfig Build
	// carries too (name, Git source, output image, timeout).
	AlsoInBuild bool
	// always: the entry stands even when no field of the input is under
	// Path (a missing Git source, an image that did not resolve).
	always bool
}

// ledger records the disposition of field paths and finds the fields of
// the input nobody claimed.
type ledger struct {
	entries []Entry
}

func (l *ledger) mapped(path, dest string) {
	l.entries = append(l.entries, Entry{Path: path, How: Mapped, Dest: dest})
}

// both records a field the openshift-buildconfig Build carries as well.
func (l *ledger) both(path, dest string) {
	l.entries = append(l.entries, Entry{Path: path, How: Mapped, Dest: dest, AlsoInBuild: true})
}

func (l *ledger) kept(path, why string, args ...any) {
	l.entries = append(l.entries, Entry{Path: path, How: Kept, Dest: fmt.Sprintf(why, args...)})
}

func (l *ledger) keptAlways(path, why string, args ...any) {
	l.entries = append(l.entries, Entry{Path: path, How: Kept, Dest: fmt.Sprintf(why, args...), always: true})
}

func (l *ledger) ignored(path, why string) {
	l.entries = append(l.entries, Entry{Path: path, How: Ignored, Dest: why})
}

// covers reports whether a claimed path p covers the leaf path leaf.
func covers(p, leaf string) bool {
	if !strings.HasPrefix(leaf, p) {
		return false
	}
	return len(leaf) == len(p) || leaf[len(p)] == '.' || leaf[len(p)] == '['
}

// unclaimed returns the leaves no entry covers.
func (l *ledger) unclaimed(leaves []string) []string {
	var out []string
	for _, leaf := range leaves {
		found := false
		for _, e := range l.entries {
			if covers(e.Path, leaf) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, leaf)
		}
	}
	return out
}

// prune drops the entries about fields the input does not have: the
// mapping claims every path it knows, present or not.
func (l *ledger) prune(leaves []string) {
	var out []Entry
	for _, e := range l.entries {
		keep := e.always
		for _, leaf := range leaves {
			if keep {
				break
			}
			keep = covers(e.Path, leaf)
		}
		if keep {
			out = append(out, e)
		}
	}
	l.entries = out
}

func (l *ledger) hasKept() bool {
	for _, e := range l.entries {
		if e.How == Kept {
			return true
		}
	}
	return false
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// child is the path of key under parent: a.b, or a["k.with/dots"] for map
// keys that are data (labels, annotations, node selectors).
func child(parent, key string) string {
	if !identifier.MatchString(key) {
		return fmt.Sprintf("%s[%q]", parent, key)
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// meaningfulEmpty lists the paths whose empty object still means
// something: `nodeSelector: {}` disables the cluster's default build node
// selector, `binary: {}` makes a Binary source. Other empty objects and
// lists (the server writes `resources: {}`, `postCommit: {}`, `triggers: []`)
// carry nothing.
var meaningfulEmpty = map[string]bool{
	"spec.nodeSelector":  true,
	"spec.source.binary": true,
}

// Leaves lists the paths of every non-empty field of a decoded JSON object
// (scalars, false and 0 included; null excluded), sorted.
func Leaves(obj map[string]any) []string {
	var out []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case nil:
		case map[string]any:
			if len(x) == 0 && meaningfulEmpty[path] {
				out = append(out, path)
			}
			for k, c := range x {
				walk(child(path, k), c)
			}
		case []any:
			for i, c := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		case string, bool, json.Number, float64:
			out = append(out, path)
		default:
			out = append(out, path)
		}
	}
	walk("", obj)
	sort.Strings(out)
	return out
}
