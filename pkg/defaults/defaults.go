// Package defaults reads the platform defaults a cluster administrator sets
// once for every ocbuild run in a namespace: the ConfigMap ocbuild-defaults.
// The strategies have the step read it from the API (a namespace without it
// builds with the built-in defaults): Shipwright refuses to start a BuildRun
// whose strategy mounts a ConfigMap that does not exist, optional or not.
// A copy mounted as a directory (one file per key) works too.
//
// The values are flag defaults: a parameter the Build or BuildRun sets wins,
// then the ConfigMap, then ocbuild's built-in default. For the list keys
// (build-env, image-labels) the ConfigMap's items come first and an item of
// the Build with the same name replaces one, as OpenShift's own cluster
// build defaults do for env.
//
// Every key is checked before anything is sent to the cluster: an unknown
// key or a bad value is an error naming the ConfigMap key and what to write.
package defaults

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ocbuild/ocbuild/pkg/validate"
)

// ConfigMap is the name of the ConfigMap the strategies mount.
const ConfigMap = "ocbuild-defaults"

// The keys of the ConfigMap, each the name of the flag (or parameter) it
// gives a default to.
const (
	KeyInternalRegistry = "internal-registry"
	KeyPushSecret       = "push-secret"
	KeyPullSecret       = "pull-secret"
	KeyBuildEnv         = "build-env"
	KeyImageLabels      = "image-labels"
	KeyStartTimeout     = "start-timeout"
	KeyRunPolicy        = "run-policy"
)

// Keys lists the known keys in the order they are documented.
var Keys = []string{KeyInternalRegistry, KeyPushSecret, KeyPullSecret, KeyBuildEnv, KeyImageLabels, KeyStartTimeout, KeyRunPolicy}

// Item is one NAME=VALUE item of a list key.
type Item struct{ Name, Value string }

// Defaults are the values the ConfigMap sets; zero values are unset.
type Defaults struct {
	InternalRegistry []string
	PushSecret       string
	PullSecret       string
	BuildEnv         []Item
	ImageLabels      []Item
	StartTimeout     time.Duration
	RunPolicy        string

	// Set lists the keys present, in Keys order.
	Set []string
}

// maxValue bounds one key's value: ConfigMaps hold at most 1 MiB in all,
// and a default is a line or a short list.
const maxValue = 64 << 10

// FromData checks the ConfigMap's data (as read from the API) and returns
// the defaults it sets. Errors name the key; all of them are reported.
func FromData(data map[string]string) (*Defaults, error) {
	d := &Defaults{}
	var errs []error
	var unknown []string
	for k := range data {
		if !slices.Contains(Keys, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		errs = append(errs, fail(k, "", "unknown key; the keys are %s", strings.Join(Keys, ", ")))
	}
	for _, k := range Keys {
		v, ok := data[k]
		if !ok {
			continue
		}
		if err := d.set(k, v); err != nil {
			errs = append(errs, err)
			continue
		}
		d.Set = append(d.Set, k)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

// Load reads a copy of the ConfigMap mounted at dir (one file per key, as
// the kubelet writes a ConfigMap volume). A missing or empty directory
// gives no defaults.
func Load(dir string) (*Defaults, error) {
	if dir == "" {
		return &Defaults{}, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return &Defaults{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the %s ConfigMap at %s: %w", ConfigMap, dir, err)
	}
	data := map[string]string{}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		// The kubelet's atomic writer keeps the data in ..data and
		// timestamped ..<date> directories, with each key a symlink into
		// ..data: dot entries are its own.
		if strings.HasPrefix(name, ".") {
			continue
		}
		if !slices.Contains(Keys, name) {
			data[name] = "" // reported as unknown by FromData
			continue
		}
		v, err := readKey(dir, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		data[name] = v
	}
	d, err := FromData(data)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

// readKey reads one key's file, which must stay inside dir (the kubelet's
// symlink into ..data does; one pointing elsewhere is not followed).
func readKey(dir, key string) (string, error) {
	p := filepath.Join(dir, key)
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fail(key, "", "cannot be read: %v", err)
	}
	base, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fail(key, "", "cannot be read: %v", err)
	}
	if rel, err := filepath.Rel(base, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fail(key, "", "is a symlink out of the ConfigMap's directory; write the value into the ConfigMap")
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", fail(key, "", "cannot be read: %v", err)
	}
	if !st.Mode().IsRegular() {
		return "", fail(key, "", "is not a file; a key holds its value as text")
	}
	if st.Size() > maxValue {
		return "", fail(key, "", "value of %d bytes is larger than %d; a default is a line or a short list", st.Size(), maxValue)
	}
	b, err := os.ReadFile(real)
	if err != nil {
		return "", fail(key, "", "cannot be read: %v", err)
	}
	if !utf8.Valid(b) {
		return "", fail(key, "", "is not text; put it under data, not binaryData")
	}
	return string(b), nil
}

func (d *Defaults) set(key, v string) error {
	one := strings.TrimSpace(v)
	switch key {
	case KeyInternalRegistry:
		hosts := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' })
		if len(hosts) == 0 {
			return fail(key, v, "is empty; write the registry hosts, comma-separated, e.g. image-registry.openshift-image-registry.svc:5000")
		}
		for _, h := range hosts {
			if strings.Contains(h, "/") {
				return fail(key, h, "is not a host[:port]; write the registry host without a scheme or path, e.g. image-registry.openshift-image-registry.svc:5000")
			}
		}
		d.InternalRegistry = hosts
	case KeyPushSecret, KeyPullSecret:
		if err := validate.ObjectName(key, one); err != nil {
			return fail(key, one, "is not a Secret name (lowercase letters, digits, '-' and '.')")
		}
		if key == KeyPushSecret {
			d.PushSecret = one
		} else {
			d.PullSecret = one
		}
	case KeyBuildEnv, KeyImageLabels:
		items, err := parseItems(key, v)
		if err != nil {
			return err
		}
		if key == KeyBuildEnv {
			d.BuildEnv = items
		} else {
			d.ImageLabels = items
		}
	case KeyStartTimeout:
		t, err := time.ParseDuration(one)
		if err != nil || t <= 0 {
			return fail(key, one, "is not a positive duration; write e.g. 10m or 1h")
		}
		d.StartTimeout = t
	case KeyRunPolicy:
		if err := validate.RunPolicy(key, one); err != nil {
			return fail(key, one, "is not a run policy; write Serial, Parallel or SerialLatestOnly")
		}
		d.RunPolicy = one
	}
	return nil
}

// parseItems reads NAME=VALUE lines; blank lines and lines starting with #
// are skipped, a name given twice is an error.
func parseItems(key, v string) ([]Item, error) {
	var items []Item
	seen := map[string]bool{}
	for i, line := range strings.Split(v, "\n") {
		line = strings.TrimRight(line, "\r")
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fail(key, line, "line %d is not NAME=VALUE", i+1)
		}
		if seen[name] {
			return nil, fail(key, name, "line %d sets %s a second time", i+1, name)
		}
		seen[name] = true
		items = append(items, Item{Name: name, Value: value})
	}
	return items, nil
}

func fail(key, value, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if value != "" && !strings.ContainsRune(value, '\n') {
		msg = fmt.Sprintf("%q %s", value, msg)
	}
	return fmt.Errorf("ConfigMap %s, key %s: %s", ConfigMap, key, msg)
}

// Merge returns the items of defaults followed by own, an own item
// replacing a default of the same name (in the default's place).
func Merge(defaults, own []Item) []Item {
	out := append([]Item(nil), defaults...)
	for _, o := range own {
		if i := slices.IndexFunc(out, func(d Item) bool { return d.Name == o.Name }); i >= 0 && i < len(defaults) {
			out[i] = o
			continue
		}
		out = append(out, o)
	}
	return out
}
