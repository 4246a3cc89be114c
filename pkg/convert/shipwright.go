package convert

// Shipwright's v1beta1 Build and BuildRun, reduced to the fields convert
// writes. They are not github.com/shipwright-io/build's types because those
// pull Tekton and controller-runtime into the binary; the JSON names are
// the same, and the tests decode every output strictly into the real ones.

// ShipwrightAPIVersion is the API version of everything convert writes.
const ShipwrightAPIVersion = "shipwright.io/v1beta1"

// Meta is the part of ObjectMeta convert sets.
type Meta struct {
	Name         string            `json:"name,omitempty"`
	GenerateName string            `json:"generateName,omitempty"`
	Namespace    string            `json:"namespace,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// Build is a shipwright.io/v1beta1 Build.
type Build struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Metadata   Meta      `json:"metadata"`
	Spec       BuildSpec `json:"spec"`
}

// BuildSpec is the Build's spec.
type BuildSpec struct {
	Source      *Source      `json:"source,omitempty"`
	Strategy    Strategy     `json:"strategy"`
	ParamValues []ParamValue `json:"paramValues,omitempty"`
	Output      Output       `json:"output"`
	// Timeout is a Go duration, as metav1.Duration writes it.
	Timeout   string     `json:"timeout,omitempty"`
	Retention *Retention `json:"retention,omitempty"`
}

// Source is spec.source; convert writes Git sources only.
type Source struct {
	Type       string  `json:"type"`
	ContextDir *string `json:"contextDir,omitempty"`
	Git        *Git    `json:"git,omitempty"`
}

// Git is spec.source.git.
type Git struct {
	URL         string  `json:"url"`
	Revision    *string `json:"revision,omitempty"`
	CloneSecret *string `json:"cloneSecret,omitempty"`
}

// Strategy is spec.strategy.
type Strategy struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// ParamValue is one entry of spec.paramValues: a string or an array.
type ParamValue struct {
	Name   string        `json:"name"`
	Value  *string       `json:"value,omitempty"`
	Values []SingleValue `json:"values,omitempty"`
}

// SingleValue is one item of an array parameter.
type SingleValue struct {
	Value *string `json:"value"`
}

// Output is spec.output.
type Output struct {
	Image      string  `json:"image"`
	PushSecret *string `json:"pushSecret,omitempty"`
}

// Retention is spec.retention: how many BuildRuns Shipwright keeps.
type Retention struct {
	FailedLimit    *uint `json:"failedLimit,omitempty"`
	SucceededLimit *uint `json:"succeededLimit,omitempty"`
}

// BuildRun is a shipwright.io/v1beta1 BuildRun of a named Build.
type BuildRun struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Metadata   Meta         `json:"metadata"`
	Spec       BuildRunSpec `json:"spec"`
}

// BuildRunSpec is the BuildRun's spec.
type BuildRunSpec struct {
	Build BuildRef `json:"build"`
}

// BuildRef names the Build a BuildRun runs.
type BuildRef struct {
	Name string `json:"name"`
}

func (b *Build) param(name, value string) {
	v := value
	b.Spec.ParamValues = append(b.Spec.ParamValues, ParamValue{Name: name, Value: &v})
}

func (b *Build) arrayParam(name string, items []string) {
	if len(items) == 0 {
		return
	}
	p := ParamValue{Name: name}
	for _, it := range items {
		v := it
		p.Values = append(p.Values, SingleValue{Value: &v})
	}
	b.Spec.ParamValues = append(b.Spec.ParamValues, p)
}
