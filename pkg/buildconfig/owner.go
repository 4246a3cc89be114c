package buildconfig

import (
	"fmt"
	"hash/fnv"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Owner identifies the Shipwright objects a BuildConfig or Build belongs to.
// The fields hold the objects' names as they are; labels carry LabelValue of
// them.
type Owner struct {
	Build      string
	BuildRun   string
	TaskRun    string
	TaskRunUID string
}

// Labels returns the labels linking an object to o (empty values omitted).
// Every value is LabelValue of the name, so a name longer than a label
// value may be (Build and BuildRun names are DNS subdomains of up to 253
// characters) still labels the object; select with the same mapped value.
func (o Owner) Labels() map[string]string {
	l := o.BuildConfigLabels()
	if o.BuildRun != "" {
		l[LabelBuildRun] = LabelValue(o.BuildRun)
	}
	if o.TaskRun != "" {
		l[LabelTaskRun] = LabelValue(o.TaskRun)
	}
	return l
}

// BuildConfigLabels returns the labels of the BuildConfig ocbuild owns for
// o.Build: the managed-by label and the Build's (LabelValue of its name).
func (o Owner) BuildConfigLabels() map[string]string {
	l := map[string]string{LabelManagedBy: ManagedByValue}
	if o.Build != "" {
		l[LabelBuild] = LabelValue(o.Build)
	}
	return l
}

// MaxLabelValue is the longest label value Kubernetes accepts.
const MaxLabelValue = validation.LabelValueMaxLength

// MaxBuildConfigName is the longest BuildConfig name ocbuild uses: OpenShift
// names builds <buildconfig>-<number>, and a Build name is a DNS subdomain
// (at most 253 characters), so 11 characters are kept free for "-" and a
// build number of up to 10 digits.
const MaxBuildConfigName = validation.DNS1123SubdomainMaxLength - 11

// LabelValue maps a name to a valid label value: a valid label value (at
// most 63 characters, alphanumeric at both ends) is returned as it is; any
// other name becomes a prefix of it, "-", and an 8-digit hex hash of the
// whole name, at most 63 characters in all, as OpenShift's naming.GetName
// shortens names. Different long names sharing the prefix get different
// values; the mapping is stable, so selectors built from LabelValue(name)
// find the objects labelled with it.
func LabelValue(name string) string {
	if len(validation.IsValidLabelValue(name)) == 0 {
		return name
	}
	return shortName(name, MaxLabelValue)
}

// BuildConfigName is the BuildConfig name ocbuild derives from a Shipwright
// Build name: the name itself when builds named after it fit (at most
// MaxBuildConfigName characters), else a prefix of it, "-" and a hash of
// the whole name, MaxBuildConfigName characters in all.
func BuildConfigName(build string) string {
	if len(build) <= MaxBuildConfigName {
		return build
	}
	return shortName(build, MaxBuildConfigName)
}

// shortName returns <prefix of name>-<hash of name>, at most max
// characters, with the prefix cut back to end in a letter or digit and
// holding only characters valid in label values and DNS names. max must be
// at least 8.
func shortName(name string, max int) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	sum := fmt.Sprintf("%08x", h.Sum32())
	keep := max - len(sum) - 1
	prefix := make([]byte, 0, keep)
	for i := 0; i < len(name) && len(prefix) < keep; i++ {
		switch c := name[i]; {
		case isAlphaNumeric(c), c == '-', c == '.', c == '_':
			if len(prefix) == 0 && !isAlphaNumeric(c) {
				continue // start with a letter or digit
			}
			prefix = append(prefix, c)
		}
	}
	for len(prefix) > 0 && !isAlphaNumeric(prefix[len(prefix)-1]) {
		prefix = prefix[:len(prefix)-1]
	}
	if len(prefix) == 0 {
		return sum
	}
	return string(prefix) + "-" + sum
}

func isAlphaNumeric(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
