package sim

// Table output for builds and buildconfigs (`kubectl get`, `oc get`):
// openshift-apiserver prints its own columns, which a CRD's
// additionalPrinterColumns cannot express (`Failed (DockerBuildFailed)`,
// `Git@1a7c31d`, `7 seconds ago`), and lists builds by creation. The front
// door asks kube-apiserver for JSON instead of a Table, as the caller, and
// turns the answer into the Table openshift-apiserver would send. Watches
// keep the CRD's columns.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	buildv1 "github.com/openshift/api/build/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// tableRequestKey marks a proxied request whose answer becomes a Table.
type tableRequestKey struct{}

// tableRequest reports whether r asks for a Table of builds or
// buildconfigs (a list or one object, not a watch), and which resource.
func tableRequest(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet || isWatch(r) || !strings.Contains(r.Header.Get("Accept"), "as=Table") {
		return "", false
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	// apis/build.openshift.io/v1[/namespaces/{ns}]/{resource}[/{name}]
	if len(segs) < 4 || segs[0] != "apis" || segs[1] != Group || segs[2] != "v1" {
		return "", false
	}
	rest := segs[3:]
	if rest[0] == "namespaces" {
		if len(rest) < 3 {
			return "", false
		}
		rest = rest[2:]
	}
	if len(rest) > 2 {
		return "", false // a subresource
	}
	switch rest[0] {
	case "builds", "buildconfigs":
		return rest[0], true
	}
	return "", false
}

// asJSONForTable rewrites a proxied Table request into a JSON one and marks
// it; the transport then negotiates (and undoes) compression itself.
func asJSONForTable(in, out *http.Request) *http.Request {
	resource, ok := tableRequest(in)
	if !ok {
		return out
	}
	out.Header.Set("Accept", "application/json")
	out.Header.Del("Accept-Encoding")
	include := in.URL.Query().Get("includeObject")
	return out.WithContext(context.WithValue(out.Context(), tableRequestKey{}, tableAsk{resource: resource, include: metav1.IncludeObjectPolicy(include)}))
}

type tableAsk struct {
	resource string
	include  metav1.IncludeObjectPolicy
}

// toTable replaces a successful JSON answer to a marked request by a Table.
func toTable(resp *http.Response, now time.Time) error {
	ask, ok := resp.Request.Context().Value(tableRequestKey{}).(tableAsk)
	if !ok || resp.StatusCode != http.StatusOK {
		return nil
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	table, err := renderTable(ask, data, now)
	if err != nil {
		return err
	}
	out, err := json.Marshal(table)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	resp.Header.Set("Content-Type", "application/json")
	return nil
}

// renderTable turns a Build(Config) or its list, as JSON, into a Table.
func renderTable(ask tableAsk, data []byte, now time.Time) (*metav1.Table, error) {
	var kind struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(data, &kind); err != nil {
		return nil, err
	}
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"}}
	switch ask.resource {
	case "builds":
		t.ColumnDefinitions = buildColumns
		var builds []buildv1.Build
		if strings.HasSuffix(kind.Kind, "List") {
			var l buildv1.BuildList
			if err := json.Unmarshal(data, &l); err != nil {
				return nil, err
			}
			t.ListMeta, builds = l.ListMeta, l.Items
			// As openshift-apiserver's printer: oldest first.
			slices.SortStableFunc(builds, func(a, b buildv1.Build) int {
				return a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time)
			})
		} else {
			var b buildv1.Build
			if err := json.Unmarshal(data, &b); err != nil {
				return nil, err
			}
			builds = []buildv1.Build{b}
		}
		for i := range builds {
			b := &builds[i]
			t.Rows = append(t.Rows, metav1.TableRow{Cells: buildCells(b, now), Object: rowObject(b, &b.ObjectMeta, ask.include)})
		}
	case "buildconfigs":
		t.ColumnDefinitions = buildConfigColumns
		var bcs []buildv1.BuildConfig
		if strings.HasSuffix(kind.Kind, "List") {
			var l buildv1.BuildConfigList
			if err := json.Unmarshal(data, &l); err != nil {
				return nil, err
			}
			t.ListMeta, bcs = l.ListMeta, l.Items
		} else {
			var bc buildv1.BuildConfig
			if err := json.Unmarshal(data, &bc); err != nil {
				return nil, err
			}
			bcs = []buildv1.BuildConfig{bc}
		}
		for i := range bcs {
			bc := &bcs[i]
			t.Rows = append(t.Rows, metav1.TableRow{Cells: buildConfigCells(bc), Object: rowObject(bc, &bc.ObjectMeta, ask.include)})
		}
	default:
		return nil, fmt.Errorf("no table for %s", ask.resource)
	}
	return t, nil
}

var buildColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: "Name of the build"},
	{Name: "Type", Type: "string", Description: "Strategy of the build"},
	{Name: "From", Type: "string", Description: "Source of the build, and the commit"},
	{Name: "Status", Type: "string", Description: "Phase of the build, and the reason of a failure"},
	{Name: "Started", Type: "string", Description: "When the build started"},
	{Name: "Duration", Type: "string", Description: "How long the build ran"},
}

var buildConfigColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: "Name of the build config"},
	{Name: "Type", Type: "string", Description: "Strategy of the build config"},
	{Name: "From", Type: "string", Description: "Source of the builds"},
	{Name: "Latest", Type: "integer", Description: "Number of the latest build"},
}

func buildCells(b *buildv1.Build, now time.Time) []any {
	started := ""
	if b.Status.StartTimestamp != nil {
		started = units.HumanDuration(now.Sub(b.Status.StartTimestamp.Time)) + " ago"
	}
	duration := ""
	if b.Status.Duration > 0 {
		duration = b.Status.Duration.String()
	}
	status := string(b.Status.Phase)
	if b.Status.Reason != "" {
		status = fmt.Sprintf("%s (%s)", status, b.Status.Reason)
	}
	return []any{b.Name, strategyType(b.Spec.Strategy), sourceShort(b.Spec.CommonSpec), status, started, duration}
}

func buildConfigCells(bc *buildv1.BuildConfig) []any {
	from := sourceShort(bc.Spec.CommonSpec)
	if s := bc.Spec.Strategy.CustomStrategy; s != nil {
		from = s.From.Name
	}
	return []any{bc.Name, strategyType(bc.Spec.Strategy), from, bc.Status.LastVersion}
}

// rowObject is what a row carries: metadata by default, as the API server
// does, the object itself, or nothing.
func rowObject(obj runtime.Object, meta *metav1.ObjectMeta, include metav1.IncludeObjectPolicy) runtime.RawExtension {
	switch include {
	case metav1.IncludeNone:
		return runtime.RawExtension{}
	case metav1.IncludeObject:
		return runtime.RawExtension{Object: obj}
	}
	return runtime.RawExtension{Object: &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"},
		ObjectMeta: *meta,
	}}
}

func strategyType(s buildv1.BuildStrategy) string {
	switch {
	case s.DockerStrategy != nil:
		return string(buildv1.DockerBuildStrategyType)
	case s.SourceStrategy != nil:
		return string(buildv1.SourceBuildStrategyType)
	case s.CustomStrategy != nil:
		return string(buildv1.CustomBuildStrategyType)
	case s.JenkinsPipelineStrategy != nil:
		return string(buildv1.JenkinsPipelineBuildStrategyType)
	}
	return ""
}

// sourceShort is the From column: the source kind, and the commit (or ref)
// where one applies.
func sourceShort(spec buildv1.CommonSpec) string {
	src := spec.Source
	withRev := func(from string) string {
		if rev := gitRevision(spec); rev != "" {
			return from + "@" + rev
		}
		return from
	}
	switch {
	case src.Binary != nil:
		return withRev("Binary")
	case src.Dockerfile != nil && src.Git != nil:
		return withRev("Dockerfile,Git")
	case src.Dockerfile != nil:
		return "Dockerfile"
	case src.Git != nil:
		return withRev("Git")
	}
	return ""
}

var nonHex = regexp.MustCompile(`[^a-fA-F0-9]`)

// gitRevision is the built commit, else the source ref; a full commit id
// is shortened to 7 characters.
func gitRevision(spec buildv1.CommonSpec) string {
	var rev string
	if spec.Revision != nil && spec.Revision.Git != nil {
		rev = spec.Revision.Git.Commit
	}
	if rev == "" && spec.Source.Git != nil {
		rev = spec.Source.Git.Ref
	}
	if !nonHex.MatchString(rev) && len(rev) > 20 {
		rev = rev[:7]
	}
	return rev
}
