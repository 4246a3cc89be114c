package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// runBuildConfig makes the Build run the BuildConfig (strategy
// openshift-buildconfig): OpenShift builds exactly as before, with every
// field. The Build carries only what Shipwright itself needs or shows:
// the name, the Git source (Shipwright resolves the commit, and ocbuild
// asks OpenShift to build that one), the output image (Shipwright requires
// one; the BuildConfig decides where OpenShift pushes) and the timeout.
func (m *mapper) runBuildConfig() {
	b := &Build{APIVersion: ShipwrightAPIVersion, Kind: "Build", Metadata: m.meta}
	b.Spec.Strategy = Strategy{Name: StrategyBuildConfig, Kind: "ClusterBuildStrategy"}
	b.param(ParamBuildConfig, m.bc.Name)
	b.Spec.Timeout = m.timeout
	if m.git != nil {
		b.Spec.Source = &Source{Type: "Git", Git: m.git}
	}
	b.Spec.Output.Image = m.output
	if b.Spec.Output.Image == "" && m.outputSpec != nil {
		b.Spec.Output.Image = m.guessOutput()
	}
	for i := range m.l.entries {
		e := &m.l.entries[i]
		if e.How == Mapped && !e.AlsoInBuild {
			e.How, e.Dest = Kept, "the BuildConfig"
		}
	}
	m.res.Build = b
	if !m.doc.FromCluster {
		m.res.BuildConfig = cleanBuildConfig(m.doc.Raw)
		if m.bc.Namespace == "" && m.ns != "" {
			// -n placed the Build; the BuildConfig it runs goes with it.
			if md, ok := m.res.BuildConfig["metadata"].(map[string]any); ok {
				md["namespace"] = m.ns
			}
		}
	}
	m.notes()
}

// guessOutput writes spec.output.image for an ImageStreamTag output that
// did not resolve. The BuildConfig decides where OpenShift pushes, so the
// Build only shows it: the integrated registry's usual address is a
// reasonable guess, said as such.
func (m *mapper) guessOutput() string {
	kind, name := defaultOutput(m.outputSpec)
	stream, tag, digest, ok := splitStreamRef(kind, name)
	ns := m.outputSpec.Namespace
	if ns == "" {
		ns = m.ns
	}
	if !ok || ns == "" {
		m.res.Errors = append(m.res.Errors, fmt.Sprintf("spec.output.to: %s %s: %v; a Shipwright Build needs spec.output.image", kind, name, m.outputErr))
		return ""
	}
	guess := join(InternalRegistry+"/"+ns+"/"+stream, ref{Tag: tag, Digest: digest})
	m.warn("spec.output.image of the Build is %s, a guess (OpenShift pushes where the BuildConfig says; Shipwright shows this one): pass --registry or --from-cluster", guess)
	return guess
}

// notes warns about what an openshift-buildconfig Build needs at run time.
func (m *mapper) notes() {
	s := &m.bc.Spec
	if s.Source.Binary != nil {
		m.warn("Binary source: the Build has no source; run it with `shp build upload %s <dir>`, which uploads <dir> to the BuildConfig", m.bc.Name)
	}
	if s.Strategy.CustomStrategy != nil {
		m.warn("Custom strategy: the step's service account needs system:build-strategy-custom (docs/install.md)")
	}
	for _, t := range s.Triggers {
		if t.Type == "ConfigChange" && m.res.BuildConfig != nil {
			m.warn("the ConfigChange trigger starts an OpenShift build as soon as the BuildConfig is created, outside Shipwright")
			break
		}
	}
}

// cleanBuildConfig returns a copy of the BuildConfig without what the API
// server wrote (status, uid, resourceVersion, managedFields, …) or what
// refers to the cluster it was read from (ownerReferences), so that
// applying it creates the same BuildConfig anywhere.
func cleanBuildConfig(raw map[string]any) map[string]any {
	js, _ := json.Marshal(raw) // it was decoded from JSON: it encodes
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber() // 3600 stays 3600, not 3.6e+03
	_ = dec.Decode(&out)
	delete(out, "status")
	if md, ok := out["metadata"].(map[string]any); ok {
		for _, f := range serverMetadata {
			delete(md, f)
		}
		delete(md, "ownerReferences")
		if ann, ok := md["annotations"].(map[string]any); ok {
			delete(ann, annotationLastApplied)
			if len(ann) == 0 {
				delete(md, "annotations")
			}
		}
	}
	return out
}
