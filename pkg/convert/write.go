package convert

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// Documents returns the YAML documents of a result, in apply order: the
// BuildConfig (openshift-buildconfig Builds from files only), the Build,
// the BuildRun.
func (r *Result) Documents() ([][]byte, error) {
	var docs [][]byte
	add := func(comment string, obj any) error {
		y, err := yaml.Marshal(obj)
		if err != nil {
			return fmt.Errorf("encoding %s: %w", r.Doc.Name(), err)
		}
		docs = append(docs, append([]byte(comment), y...))
		return nil
	}
	if r.BuildConfig != nil {
		if err := add("# The BuildConfig the Build runs, as read from "+r.Doc.Origin+" (server fields removed).\n", r.BuildConfig); err != nil {
			return nil, err
		}
	}
	if r.Build != nil {
		what := "runs the BuildConfig (" + StrategyBuildConfig + ")"
		if !r.RunsBuildConfig() {
			what = "replaces it (" + r.Build.Spec.Strategy.Name + ")"
		}
		if err := add(fmt.Sprintf("# Converted by ocbuild convert from BuildConfig %s (%s): it %s.\n", r.Doc.Name(), r.Doc.Origin, what), r.Build); err != nil {
			return nil, err
		}
	}
	if r.BuildRun != nil {
		if err := add("# Starts the Build once: kubectl create (generateName).\n", r.BuildRun); err != nil {
			return nil, err
		}
	}
	return docs, nil
}

// WriteStream writes the documents of every converted result to w as one
// YAML stream, separated by ---.
func WriteStream(w io.Writer, results []*Result) error {
	first := true
	for _, r := range results {
		docs, err := r.Documents()
		if err != nil {
			return err
		}
		for _, d := range docs {
			if !first {
				if _, err := io.WriteString(w, "---\n"); err != nil {
					return err
				}
			}
			first = false
			if _, err := w.Write(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// FileName is the file a result is written to in an output directory:
// <namespace>-<name>.yaml, or <name>.yaml without a namespace.
func (r *Result) FileName() string {
	if r.Build.Metadata.Namespace == "" {
		return r.Build.Metadata.Name + ".yaml"
	}
	return r.Build.Metadata.Namespace + "-" + r.Build.Metadata.Name + ".yaml"
}

// WriteDir writes one file per converted result into dir (created if
// missing) and returns the paths written. Two BuildConfigs with the same
// file name (the same BuildConfig given twice, or a namespace and name
// pair that joins like another) are an error for the second: nothing is
// overwritten silently.
func WriteDir(dir string, results []*Result) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating output directory: %w", err)
	}
	var written []string
	seen := map[string]string{}
	var errs []error
	for _, r := range results {
		if r.Build == nil {
			continue
		}
		name := r.FileName()
		if prev, ok := seen[name]; ok {
			errs = append(errs, fmt.Errorf("%s: not written: %s holds BuildConfig %s already", r.Doc.Origin, name, prev))
			continue
		}
		seen[name] = r.Doc.Name() + " (" + r.Doc.Origin + ")"
		docs, err := r.Documents()
		if err != nil {
			return written, err
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bytes.Join(docs, []byte("---\n")), 0o644); err != nil {
			return written, fmt.Errorf("writing %s: %w", p, err)
		}
		written = append(written, p)
	}
	if len(errs) > 0 {
		return written, joinErrors(errs)
	}
	return written, nil
}
