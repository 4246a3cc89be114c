package buildconfig

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// name returns a DNS-subdomain name of n characters.
func name(n int) string {
	b := []byte(strings.Repeat("abcdefghij", n/10+1)[:n])
	return string(b)
}

func TestLabelValue(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		same bool // returned unchanged
	}{
		{"short", "app", true},
		{"63 chars", name(63), true},
		{"64 chars", name(64), false},
		{"70 chars", name(70), false},
		{"253 chars", name(253), false},
		{"cut point on -", name(53) + "-" + name(30), false},
		{"cut point on .", name(53) + "." + name(30), false},
		{"cut point after .-", name(52) + ".-" + name(30), false},
		{"dots and dashes around the cut", name(50) + "-.-.-.-.-" + name(30), false},
		{"63 chars ending in -", name(62) + "-", false},
		{"upper case", "App", true},
		{"empty", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := LabelValue(tc.in)
			if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
				t.Fatalf("LabelValue(%q) = %q: not a label value: %v", tc.in, got, errs)
			}
			if tc.same != (got == tc.in) {
				t.Fatalf("LabelValue(%q) = %q, want it unchanged: %v", tc.in, got, tc.same)
			}
			if tc.same {
				return
			}
			if len(got) > 63 {
				t.Errorf("LabelValue(%q) has %d characters", tc.in, len(got))
			}
			prefix, hash, ok := strings.Cut(got[len(got)-9:], "-")
			if !ok || prefix != "" || len(hash) != 8 {
				t.Errorf("LabelValue(%q) = %q does not end in -<8 hex digits>", tc.in, got)
			}
			if p := strings.TrimSuffix(got, "-"+hash); !strings.HasPrefix(tc.in, p) || p == "" {
				t.Errorf("LabelValue(%q) = %q: %q is not a prefix of the name", tc.in, got, p)
			}
			if LabelValue(tc.in) != got {
				t.Error("LabelValue is not stable")
			}
		})
	}

	// Long names sharing their first 63 characters map to different values.
	a, b := LabelValue(name(63)+"-one"), LabelValue(name(63)+"-two")
	if a == b {
		t.Errorf("two long names both map to %q", a)
	}
	// The full length is used when the name allows it.
	if got := LabelValue(name(70)); len(got) != 63 || got != name(54)+"-"+got[55:] {
		t.Errorf("LabelValue(70 chars) = %q (%d chars), want 54 characters of the name, -, hash", got, len(got))
	}
	// A cut on "-" or "." drops the separator instead of ending the prefix with it.
	if got := LabelValue(name(53) + "-" + name(30)); !strings.HasPrefix(got, name(53)+"-") || strings.Contains(got, "--") || len(got) != 62 {
		t.Errorf("LabelValue(cut on -) = %q", got)
	}
	if got := LabelValue(name(53) + "." + name(30)); strings.Contains(got, ".-") || len(got) != 62 {
		t.Errorf("LabelValue(cut on .) = %q", got)
	}
}

func TestBuildConfigName(t *testing.T) {
	for _, n := range []int{1, 63, 70, MaxBuildConfigName} {
		if got := BuildConfigName(name(n)); got != name(n) {
			t.Errorf("BuildConfigName(%d chars) = %q, want the name unchanged", n, got)
		}
	}
	for _, in := range []string{name(MaxBuildConfigName + 1), name(253), name(232) + "." + name(20), name(232) + "-" + name(20)} {
		got := BuildConfigName(in)
		if len(got) > MaxBuildConfigName {
			t.Errorf("BuildConfigName(%d chars) has %d characters", len(in), len(got))
		}
		// Its builds and their pods have valid names.
		for _, build := range []string{got, got + "-1", got + "-4294967295"} {
			if errs := validation.IsDNS1123Subdomain(build); len(errs) > 0 {
				t.Errorf("BuildConfigName(%d chars): %q is not a valid name: %v", len(in), build, errs)
			}
		}
		if got == BuildConfigName(in+"x") {
			t.Errorf("two long names both map to %q", got)
		}
	}
}

func TestOwnerLabels(t *testing.T) {
	long := name(70)
	o := Owner{Build: long, BuildRun: long + "-run-x7k2p", TaskRun: long + "-run-x7k2p-pod", TaskRunUID: "uid"}
	l := o.Labels()
	want := map[string]string{
		LabelManagedBy: ManagedByValue,
		LabelBuild:     LabelValue(o.Build),
		LabelBuildRun:  LabelValue(o.BuildRun),
		LabelTaskRun:   LabelValue(o.TaskRun),
	}
	if len(l) != len(want) {
		t.Errorf("Labels() = %v, want %v", l, want)
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("label %s = %q, want %q", k, l[k], v)
		}
		if errs := validation.IsValidLabelValue(l[k]); len(errs) > 0 {
			t.Errorf("label %s = %q: %v", k, l[k], errs)
		}
	}
	// The labels are a valid selector, and the selector made of the mapped
	// values matches them.
	sel, err := labels.ValidatedSelectorFromSet(labels.Set{LabelBuild: LabelValue(long)})
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(l)) {
		t.Errorf("selector %s does not match %v", sel, l)
	}

	short := Owner{Build: "app", BuildRun: "app-run-1"}
	if l := short.Labels(); l[LabelBuild] != "app" || l[LabelBuildRun] != "app-run-1" || len(l) != 3 {
		t.Errorf("short names: Labels() = %v", l)
	}
	if l := (Owner{}).Labels(); len(l) != 1 || l[LabelManagedBy] != ManagedByValue {
		t.Errorf("empty owner: Labels() = %v", l)
	}
	if l := o.BuildConfigLabels(); len(l) != 2 || l[LabelBuild] != LabelValue(long) {
		t.Errorf("BuildConfigLabels() = %v", l)
	}
}
