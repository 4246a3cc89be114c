package convert

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	buildv1 "github.com/openshift/api/build/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Document is one BuildConfig of the input.
type Document struct {
	// Origin says where it came from: file#document, with items[i] inside
	// a List, or the cluster.
	Origin string
	// Raw is the object as decoded from JSON (numbers as json.Number), the
	// reference for the ledger and for the BuildConfig written back.
	Raw map[string]any
	// BC is the same object, typed.
	BC *buildv1.BuildConfig
	// FromCluster: the BuildConfig exists already and is not written out.
	FromCluster bool
}

// Name is namespace/name, or name alone when the input has no namespace.
func (d *Document) Name() string {
	if d.BC.Namespace == "" {
		return d.BC.Name
	}
	return d.BC.Namespace + "/" + d.BC.Name
}

// InputError is a document that could not be read as a BuildConfig.
type InputError struct {
	Origin string
	Err    error
}

func (e *InputError) Error() string { return e.Origin + ": " + e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// Input is what reading the arguments produced.
type Input struct {
	Docs []*Document
	// Errors are documents that are not valid YAML/JSON or not decodable.
	Errors []error
	// Skipped notes objects of other kinds (an ImageStream next to the
	// BuildConfig, say), which convert leaves alone.
	Skipped []string
}

// ReadPaths reads files, directories (their *.yaml, *.yml and *.json
// files, recursively, in lexical order) and "-" (stdin).
func ReadPaths(paths []string, stdin io.Reader) (*Input, error) {
	in := &Input{}
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("reading stdin: %w", err)
			}
			in.add("stdin", data, false)
			continue
		}
		files, err := expand(p)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", f, err)
			}
			in.add(f, data, false)
		}
	}
	return in, nil
}

// expand returns p itself for a file, or the manifest files under a
// directory; a directory without any is an error, as is a missing path.
func expand(p string) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", p, err)
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != p && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir // .git and the like
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
			if !d.IsDir() {
				files = append(files, path)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading directory %s: %w", p, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("input %s: a directory without .yaml, .yml or .json files", p)
	}
	sort.Strings(files)
	return files, nil
}

// add splits data into documents (multi-document YAML, or JSON) and
// adds the BuildConfigs it holds, directly or in List / BuildConfigList
// items. origin names the source in messages.
func (in *Input) add(origin string, data []byte, fromCluster bool) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		o := fmt.Sprintf("%s#%d", origin, i)
		if fromCluster {
			o = origin // the API server's answer: one list
		}
		if err != nil {
			in.Errors = append(in.Errors, &InputError{o, fmt.Errorf("not YAML or JSON: %w", err)})
			return
		}
		obj, err := decodeObject(doc)
		if err != nil {
			in.Errors = append(in.Errors, &InputError{o, err})
			continue
		}
		if obj == nil {
			i-- // an empty document (comments, a trailing ---) is not counted
			continue
		}
		in.object(o, obj, fromCluster)
	}
}

// AddJSON adds the objects of one JSON or YAML body, e.g. a list read from
// the API server.
func (in *Input) AddJSON(origin string, data []byte, fromCluster bool) {
	in.add(origin, data, fromCluster)
}

func decodeObject(doc []byte) (map[string]any, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("not YAML or JSON: %w", err)
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return nil, nil
	}
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("not an object: %w", err)
	}
	return obj, nil
}

func (in *Input) object(origin string, obj map[string]any, fromCluster bool) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	switch {
	case kind == "List" || kind == "BuildConfigList":
		items, _ := obj["items"].([]any)
		for i, it := range items {
			o := fmt.Sprintf("%s items[%d]", origin, i)
			if fromCluster {
				o = origin
			}
			m, ok := it.(map[string]any)
			if !ok {
				in.Errors = append(in.Errors, &InputError{o, errors.New("not an object")})
				continue
			}
			if kind == "BuildConfigList" && m["kind"] == nil {
				// The API server leaves out the kind of list items.
				m["apiVersion"], m["kind"] = buildv1.GroupVersion.String(), "BuildConfig"
			}
			in.object(o, m, fromCluster)
		}
	case kind == "BuildConfig" && (apiVersion == buildv1.GroupVersion.String() || apiVersion == "v1"):
		if apiVersion == "v1" {
			// oc export's legacy group-less version: the same object.
			obj["apiVersion"] = buildv1.GroupVersion.String()
		}
		js, err := json.Marshal(obj)
		if err != nil {
			in.Errors = append(in.Errors, &InputError{origin, err})
			return
		}
		bc := &buildv1.BuildConfig{}
		if err := json.Unmarshal(js, bc); err != nil {
			in.Errors = append(in.Errors, &InputError{origin, fmt.Errorf("not a valid BuildConfig: %w", err)})
			return
		}
		in.Docs = append(in.Docs, &Document{Origin: origin, Raw: obj, BC: bc, FromCluster: fromCluster})
	case kind == "BuildConfig":
		in.Errors = append(in.Errors, &InputError{origin, fmt.Errorf("apiVersion %q: convert reads build.openshift.io/v1 BuildConfigs", apiVersion)})
	default:
		name := ""
		if md, ok := obj["metadata"].(map[string]any); ok {
			name, _ = md["name"].(string)
		}
		in.Skipped = append(in.Skipped, fmt.Sprintf("%s: %s %s is not a BuildConfig", origin, kindOr(kind), name))
	}
}

func kindOr(kind string) string {
	if kind == "" {
		return "an object without kind"
	}
	return kind
}
