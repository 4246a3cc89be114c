package openshift

// What OpenShift's CLI sees through the sandbox's OpenShift endpoint (the
// front door, sandbox.OpenShiftKubeconfigPath): `oc start-build
// --from-build` and `oc cancel-build --restart` clone builds, and `get`
// prints openshift-apiserver's columns, builds oldest first.

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildclient "github.com/openshift/client-go/build/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ocbuild/ocbuild/test/sim"
)

func TestOpenShiftCLIView(t *testing.T) {
	ctx := testContext(t, 6*time.Minute)
	ns := newNamespace(t, false)
	oc := openShiftBuilds(t)
	bc := &buildv1.BuildConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "cli"},
		Spec: buildv1.BuildConfigSpec{CommonSpec: buildv1.CommonSpec{
			Source:   buildv1.BuildSource{Git: &buildv1.GitBuildSource{URI: sb.GitRepoURL("hello"), Ref: "main"}},
			Strategy: buildv1.BuildStrategy{DockerStrategy: &buildv1.DockerBuildStrategy{}},
			Output:   buildv1.BuildOutput{To: &corev1.ObjectReference{Kind: "DockerImage", Name: imageRef(ns, "cli", "latest")}},
		}},
	}
	if _, err := oc.BuildV1().BuildConfigs(ns).Create(ctx, bc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	first, err := oc.BuildV1().BuildConfigs(ns).Instantiate(ctx, bc.Name, &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: bc.Name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitPhase(ctx, t, oc, ns, first.Name, buildv1.BuildPhaseComplete)

	// oc start-build --from-build cli-1
	clone, err := oc.BuildV1().Builds(ns).Clone(ctx, first.Name, &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: first.Name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("cloning %s: %v", first.Name, err)
	}
	if clone.Name != "cli-2" || clone.Annotations[buildv1.BuildCloneAnnotation] != first.Name {
		t.Errorf("clone %s annotations %v, want cli-2, a clone of %s", clone.Name, clone.Annotations, first.Name)
	}
	waitPhase(ctx, t, oc, ns, clone.Name, buildv1.BuildPhaseComplete)

	failing, err := oc.BuildV1().BuildConfigs(ns).Instantiate(ctx, bc.Name, &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: bc.Name},
		Env: []corev1.EnvVar{{Name: sim.KnobFail, Value: string(buildv1.StatusReasonDockerBuildFailed)}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitPhase(ctx, t, oc, ns, failing.Name, buildv1.BuildPhaseFailed)

	commit := sb.RepoHeads["hello"][:7]
	table := getTable(ctx, t, oc, ns, "builds")
	wantColumns := []string{"Name", "Type", "From", "Status", "Started", "Duration"}
	if got := columnNames(table); strings.Join(got, " ") != strings.Join(wantColumns, " ") {
		t.Fatalf("build columns %v, want %v", got, wantColumns)
	}
	want := [][]string{
		{"cli-1", "Docker", "Git@" + commit, "Complete"},
		{"cli-2", "Docker", "Git@" + commit, "Complete"},
		{"cli-3", "Docker", "Git@" + commit, "Failed (DockerBuildFailed)"},
	}
	if len(table.Rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(table.Rows), len(want), table.Rows)
	}
	for i, row := range table.Rows {
		cells := make([]string, len(row.Cells))
		for j, c := range row.Cells {
			cells[j], _ = c.(string)
		}
		if strings.Join(cells[:4], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d = %q, want %q", i, cells[:4], want[i])
		}
		if !strings.HasSuffix(cells[4], " ago") {
			t.Errorf("row %d started %q, want \"… ago\"", i, cells[4])
		}
		// A build that failed at once may have run for 0 s: no duration.
		if cells[3] == "Complete" && cells[5] == "" {
			t.Errorf("row %d: a complete build without a duration", i)
		}
	}
	bcTable := getTable(ctx, t, oc, ns, "buildconfigs")
	if len(bcTable.Rows) != 1 || len(bcTable.Rows[0].Cells) != 4 {
		t.Fatalf("buildconfig rows %+v", bcTable.Rows)
	}
	if latest, _ := bcTable.Rows[0].Cells[3].(float64); latest != 3 {
		t.Errorf("buildconfig %s LATEST = %v, want 3", bc.Name, bcTable.Rows[0].Cells[3])
	}
}

func waitPhase(ctx context.Context, t *testing.T, oc buildclient.Interface, ns, name string, phase buildv1.BuildPhase) {
	t.Helper()
	poll(ctx, t, 4*time.Minute, "build "+name+" to be "+string(phase), func(ctx context.Context) (bool, error) {
		b, err := oc.BuildV1().Builds(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return b.Status.Phase == phase, nil
	})
}

// getTable lists resource as kubectl get does.
func getTable(ctx context.Context, t *testing.T, oc buildclient.Interface, ns, resource string) *metav1.Table {
	t.Helper()
	data, err := oc.BuildV1().RESTClient().Get().Namespace(ns).Resource(resource).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json").DoRaw(ctx)
	if err != nil {
		t.Fatalf("listing %s as a table: %v", resource, err)
	}
	var table metav1.Table
	if err := json.Unmarshal(data, &table); err != nil || table.Kind != "Table" {
		t.Fatalf("listing %s as a table: %v: %.300s", resource, err, data)
	}
	return &table
}

func columnNames(t *metav1.Table) []string {
	var names []string
	for _, c := range t.ColumnDefinitions {
		names = append(names, c.Name)
	}
	return names
}
