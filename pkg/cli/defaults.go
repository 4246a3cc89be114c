package cli

// Platform defaults: the ocbuild-defaults ConfigMap (--defaults-configmap,
// read from the API once connected; or a copy in --defaults-dir) gives
// defaults to flags a Build leaves unset. An explicit parameter wins, then
// the ConfigMap, then the built-in default.

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"

	"github.com/ocbuild/ocbuild/pkg/apiretry"
	"github.com/ocbuild/ocbuild/pkg/cancellation"
	"github.com/ocbuild/ocbuild/pkg/failure"
	"github.com/ocbuild/ocbuild/pkg/permissions"

	"github.com/ocbuild/ocbuild/pkg/defaults"
	"github.com/ocbuild/ocbuild/pkg/driver"
	"github.com/ocbuild/ocbuild/pkg/validate"
)

// unsetWhenEmpty are flags the strategies always pass, whose parameter's
// empty default means "not set by the Build": the defaults file, then the
// built-in default, applies.
var unsetWhenEmpty = map[string]bool{"--start-timeout=": true, "--run-policy=": true}

// dropEmpty removes the unsetWhenEmpty flags given with an empty value.
func dropEmpty(args []string) []string {
	out := args[:0:0]
	for _, a := range args {
		if !unsetWhenEmpty[a] {
			out = append(out, a)
		}
	}
	return out
}

// applyDefaults loads the ConfigMap at f.defaultsDir and sets the flags the
// run left unset; it logs one line saying what applied.
func applyDefaults(fs *pflag.FlagSet, f *flags, mode string, log io.Writer, errs *validate.Errors, cm *configMapData) {
	if f.defaultsDir != "" && f.defaultsConfigMap != "" {
		errs.Add(validate.Fail("defaults-dir", f.defaultsDir, "give either --defaults-dir or --defaults-configmap, not both"))
		return
	}
	if f.defaultsConfigMap != "" {
		errs.Add(validate.ObjectName("defaults-configmap", f.defaultsConfigMap))
	}
	var d *defaults.Defaults
	var err error
	source := f.defaultsDir
	switch {
	case f.defaultsConfigMap != "" && cm == nil:
		return // read once connected; Main parses again
	case cm != nil:
		source = "ConfigMap " + cm.namespace + "/" + cm.name
		d, err = defaults.FromData(cm.data)
	default:
		d, err = defaults.Load(f.defaultsDir)
	}
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			errs.Add(fmt.Errorf("%s (fix the ConfigMap, or delete the key)", line))
		}
		return
	}
	if len(d.Set) == 0 {
		return
	}
	var applied, overridden, unused []string
	use := func(key string, unset bool, set func()) {
		if !unset {
			overridden = append(overridden, key)
			return
		}
		set()
		applied = append(applied, key)
	}
	for _, key := range d.Set {
		switch key {
		case defaults.KeyInternalRegistry:
			use(key, !fs.Changed("internal-registry"), func() { f.internalRegistry = d.InternalRegistry })
		case defaults.KeyStartTimeout:
			use(key, !fs.Changed("start-timeout"), func() { f.startTimeout = d.StartTimeout })
		case defaults.KeyPushSecret, defaults.KeyPullSecret, defaults.KeyBuildEnv, defaults.KeyImageLabels, defaults.KeyRunPolicy:
			if mode != driver.ModeBuild {
				// An existing BuildConfig keeps its own secrets, env,
				// labels and policy.
				unused = append(unused, key)
				continue
			}
			switch key {
			case defaults.KeyPushSecret:
				use(key, f.pushSecret == "", func() { f.pushSecret = d.PushSecret })
			case defaults.KeyPullSecret:
				use(key, f.pullSecret == "", func() { f.pullSecret = d.PullSecret })
			case defaults.KeyRunPolicy:
				use(key, !fs.Changed("run-policy"), func() { f.runPolicy = d.RunPolicy })
			case defaults.KeyBuildEnv:
				var names []string
				f.env, names = mergeItems(d.BuildEnv, f.env)
				applied = append(applied, itemsNote(key, names, len(d.BuildEnv)))
			case defaults.KeyImageLabels:
				var names []string
				f.imageLabels, names = mergeItems(d.ImageLabels, f.imageLabels)
				applied = append(applied, itemsNote(key, names, len(d.ImageLabels)))
			}
		}
	}
	line := "defaults from " + source + ":"
	if len(applied) > 0 {
		line += " applied " + strings.Join(applied, ", ")
	}
	if len(overridden) > 0 {
		line += "; set by the Build instead: " + strings.Join(overridden, ", ")
	}
	if len(unused) > 0 {
		line += "; not used when running an existing BuildConfig: " + strings.Join(unused, ", ")
	}
	fmt.Fprintf(log, "ocbuild: %s\n", line)
}

// mergeItems puts the defaults' NAME=VALUE items before the run's own, an
// own item replacing the default of the same name; it returns the merged
// items and the names of the defaults that applied. Values are never
// logged (an env default may hold a proxy's credentials).
func mergeItems(def []defaults.Item, own []string) ([]string, []string) {
	ownItems := make([]defaults.Item, 0, len(own))
	for _, kv := range own {
		name, value, _ := strings.Cut(kv, "=")
		ownItems = append(ownItems, defaults.Item{Name: name, Value: value})
	}
	isOwn := map[string]bool{}
	for _, o := range ownItems {
		isOwn[o.Name] = true
	}
	var names []string
	for _, d := range def {
		if !isOwn[d.Name] {
			names = append(names, d.Name)
		}
	}
	merged := defaults.Merge(def, ownItems)
	out := make([]string, len(merged))
	for i, it := range merged {
		out[i] = it.Name + "=" + it.Value
	}
	return out, names
}

func itemsNote(key string, names []string, all int) string {
	s := key + " (" + strings.Join(names, ", ") + ")"
	if len(names) == 0 {
		s = key + " (none: the Build sets them all)"
	}
	if n := all - len(names); n > 0 && len(names) > 0 {
		s += fmt.Sprintf(", %d set by the Build", n)
	}
	return s
}

// configMapData is the defaults ConfigMap as read from the cluster; a nil
// data map means it does not exist.
type configMapData struct {
	name, namespace string
	data            map[string]string
}

// readDefaults reads the ConfigMap name: nil data when it does not exist.
// Any other failure stops the run before a build is started: building
// without the platform's proxies or secrets would be silently wrong.
func readDefaults(ctx context.Context, d *driver.Driver, ns, name string) (map[string]string, *failure.Error) {
	var obj *unstructured.Unstructured
	err := apiretry.OnError(retry.DefaultBackoff, cancellation.Retryable, func() error {
		var err error
		obj, err = d.Clients.Dynamic.Resource(configMaps).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		return err
	})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil && ctx.Err() != nil:
		return nil, failure.New(failure.BuildCancelled, "the step was stopped (SIGTERM/SIGINT) before any build was started")
	case err != nil:
		return nil, failure.FromAPI(err, permissions.GetDefaults, ns, "")
	}
	if bin, _, _ := unstructured.NestedMap(obj.Object, "binaryData"); len(bin) > 0 {
		keys := make([]string, 0, len(bin))
		for k := range bin {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return nil, failure.New(failure.InvalidInput, "ConfigMap %s, binaryData %s: the defaults are text; put them under data", name, strings.Join(keys, ", "))
	}
	data, _, err := unstructured.NestedStringMap(obj.Object, "data")
	if err != nil {
		return nil, failure.New(failure.InvalidInput, "ConfigMap %s: data is not a map of strings: %v", name, err)
	}
	if data == nil {
		data = map[string]string{}
	}
	return data, nil
}

var configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
