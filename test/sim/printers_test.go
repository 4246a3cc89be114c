package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestBuildTableAsOpenShiftPrintsIt(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) *metav1.Time { tm := metav1.NewTime(now.Add(-ago)); return &tm }
	commit := "1a7c31dc2d40f3d3b5422ae2bcbcdb4bfa4aa038"
	docker := buildv1.BuildStrategy{DockerStrategy: &buildv1.DockerBuildStrategy{}}
	list := buildv1.BuildList{
		TypeMeta: metav1.TypeMeta{Kind: "BuildList", APIVersion: "build.openshift.io/v1"},
		Items: []buildv1.Build{
			{ // listed by name first, created last
				ObjectMeta: metav1.ObjectMeta{Name: "a-3", CreationTimestamp: *at(10 * time.Second)},
				Spec: buildv1.BuildSpec{CommonSpec: buildv1.CommonSpec{Strategy: docker,
					Source:   buildv1.BuildSource{Binary: &buildv1.BinaryBuildSource{}},
					Revision: &buildv1.SourceRevision{Git: &buildv1.GitSourceRevision{Commit: commit}}}},
				Status: buildv1.BuildStatus{Phase: buildv1.BuildPhaseRunning, StartTimestamp: at(7 * time.Second)},
			},
			{
				ObjectMeta: metav1.ObjectMeta{Name: "b-1", CreationTimestamp: *at(3 * time.Hour)},
				Spec: buildv1.BuildSpec{CommonSpec: buildv1.CommonSpec{
					Strategy: buildv1.BuildStrategy{SourceStrategy: &buildv1.SourceBuildStrategy{}},
					Source:   buildv1.BuildSource{Git: &buildv1.GitBuildSource{URI: "https://example.com/x", Ref: "main"}}}},
				Status: buildv1.BuildStatus{Phase: buildv1.BuildPhaseFailed, Reason: buildv1.StatusReasonGenericBuildFailed,
					StartTimestamp: at(3 * time.Hour), Duration: 64 * time.Second},
			},
			{
				ObjectMeta: metav1.ObjectMeta{Name: "c-1", CreationTimestamp: *at(2 * time.Minute)},
				Spec: buildv1.BuildSpec{CommonSpec: buildv1.CommonSpec{Strategy: docker,
					Source: buildv1.BuildSource{Dockerfile: ptrTo("FROM scratch")}}},
				Status: buildv1.BuildStatus{Phase: buildv1.BuildPhaseNew},
			},
		},
	}
	data, _ := json.Marshal(list)
	table, err := renderTable(tableAsk{resource: "builds"}, data, now)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]any{
		{"b-1", "Source", "Git@main", "Failed (GenericBuildFailed)", "3 hours ago", "1m4s"},
		{"c-1", "Docker", "Dockerfile", "New", "", ""},
		{"a-3", "Docker", "Binary@1a7c31d", "Running", "7 seconds ago", ""},
	}
	if len(table.Rows) != len(want) {
		t.Fatalf("%d rows", len(table.Rows))
	}
	for i, row := range table.Rows {
		if fmt.Sprint(row.Cells) != fmt.Sprint(want[i]) {
			t.Errorf("row %d = %q, want %q", i, row.Cells, want[i])
		}
		if m, ok := row.Object.Object.(*metav1.PartialObjectMetadata); !ok || m.Name != want[i][0] {
			t.Errorf("row %d object = %#v, want the build's metadata", i, row.Object.Object)
		}
	}

	bc := buildv1.BuildConfig{
		TypeMeta:   metav1.TypeMeta{Kind: "BuildConfig", APIVersion: "build.openshift.io/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: "osbs"},
		Spec: buildv1.BuildConfigSpec{CommonSpec: buildv1.CommonSpec{Strategy: buildv1.BuildStrategy{
			CustomStrategy: &buildv1.CustomBuildStrategy{From: corev1.ObjectReference{Kind: "DockerImage", Name: "quay.io/example/builder:1"}}}}},
		Status: buildv1.BuildConfigStatus{LastVersion: 4},
	}
	data, _ = json.Marshal(bc)
	table, err = renderTable(tableAsk{resource: "buildconfigs"}, data, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(table.Rows[0].Cells); got != "[osbs Custom quay.io/example/builder:1 4]" {
		t.Errorf("buildconfig row = %s", got)
	}
}

func TestTableRequests(t *testing.T) {
	for path, want := range map[string]string{
		"/apis/build.openshift.io/v1/namespaces/ns/builds":                  "builds",
		"/apis/build.openshift.io/v1/namespaces/ns/builds/b-1":              "builds",
		"/apis/build.openshift.io/v1/buildconfigs":                          "buildconfigs",
		"/apis/build.openshift.io/v1/namespaces/ns/builds/b-1/log":          "",
		"/apis/build.openshift.io/v1/namespaces/ns/buildconfigs/x/webhooks": "",
		"/api/v1/namespaces/ns/pods":                                        "",
	} {
		r, _ := http.NewRequest(http.MethodGet, "https://sandbox"+path, nil)
		r.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
		got, _ := tableRequest(r)
		if got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}
