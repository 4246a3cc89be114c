package upload

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildscheme "github.com/openshift/client-go/build/clientset/versioned/scheme"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

func restClient(t *testing.T, h http.Handler) rest.Interface {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	rc, err := rest.RESTClientFor(&rest.Config{Host: srv.URL, APIPath: "/apis", ContentConfig: rest.ContentConfig{
		GroupVersion: &buildv1.GroupVersion, NegotiatedSerializer: buildscheme.Codecs.WithoutConversion()}})
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func tree(t *testing.T) string {
	dir := t.TempDir()
	for name, body := range map[string]string{"Dockerfile": "FROM scratch\n", "src/main.go": "package main\n", ".git/HEAD": "ref: x\n"} {
		p := filepath.Join(dir, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestStartWaitsForTheServerAndReportsProgress(t *testing.T) {
	progressed := make(chan string, 100)
	var mu sync.Mutex
	var query string
	var names []string
	rc := restClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/namespaces/ns/buildconfigs/app/instantiatebinary") {
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		}
		// Like OpenShift, read nothing until the build runs: here, until
		// the client has reported progress twice, once saying it waits.
		waited, n := false, 0
		for line := range progressed {
			n++
			waited = waited || strings.Contains(line, "waiting for the build to start")
			if waited && n >= 2 {
				break
			}
		}
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Error(err)
			return
		}
		tr := tar.NewReader(gz)
		mu.Lock()
		query = r.URL.RawQuery
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			names = append(names, h.Name)
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(&buildv1.Build{ObjectMeta: metav1.ObjectMeta{Name: "app-4"}, Status: buildv1.BuildStatus{Phase: buildv1.BuildPhaseRunning}})
	}))
	var lines []string
	res, err := Start(context.Background(), Request{Client: rc, Namespace: "ns", BuildConfig: "app", Dir: tree(t),
		Revision: buildv1.BinaryBuildRequestOptions{Commit: "abc123", AuthorName: "Dev", Message: "fix"},
		Interval: 5 * time.Millisecond,
		Progress: func(s string) {
			mu.Lock()
			lines = append(lines, s)
			mu.Unlock()
			select {
			case progressed <- s:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Build.Name != "app-4" || res.Sent == 0 || res.Stats.Files != 2 {
		t.Errorf("result = %+v", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(query, "revision.commit=abc123") || !strings.Contains(query, "revision.authorName=Dev") || !strings.Contains(query, "revision.message=fix") {
		t.Errorf("query %q lacks the revision", query)
	}
	for _, n := range names {
		if strings.Contains(n, ".git") {
			t.Errorf("uploaded %s", n)
		}
	}
	if len(lines) < 2 || !strings.Contains(strings.Join(lines, "\n"), "waiting for the build to start") {
		t.Errorf("progress lines = %q", lines)
	}
}

func TestRevisionWithoutCommitIsNotSent(t *testing.T) {
	var query string
	rc := restClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"metadata":{"name":"app-1"}}`)
	}))
	if _, err := Start(context.Background(), Request{Client: rc, Namespace: "ns", BuildConfig: "app", Dir: tree(t),
		Revision: buildv1.BinaryBuildRequestOptions{AuthorName: "Dev"}}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(query, "revision.") {
		t.Errorf("query %q carries a revision without a commit", query)
	}
}

func TestServerErrorsComeBackAsStatus(t *testing.T) {
	rc := restClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := apierrors.NewBadRequest("build app-3 failed: DockerBuildFailed: Dockerfile build strategy has failed.").Status()
		st.Kind, st.APIVersion = "Status", "v1"
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(st)
	}))
	_, err := Start(context.Background(), Request{Client: rc, Namespace: "ns", BuildConfig: "app", Dir: tree(t)})
	if !apierrors.IsBadRequest(err) {
		t.Fatalf("err = %v, want the server's 400", err)
	}
	if name, ok := BuildName(err.Error()); !ok || name != "app-3" {
		t.Errorf("BuildName = %q %v", name, ok)
	}
}

func TestCancelStopsTheUpload(t *testing.T) {
	entered := make(chan struct{})
	rc := restClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		// Returns once the client abandons the request.
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-entered; cancel() }()
	_, err := Start(ctx, Request{Client: rc, Namespace: "ns", BuildConfig: "app", Dir: tree(t)})
	if err == nil || !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("err = %v, want cancellation", err)
	}
}

func TestBuildName(t *testing.T) {
	for msg, want := range map[string]string{
		"build app-3 was cancelled: No logs are available.":                          "app-3",
		"unable to wait for build app-3 to run: timed out waiting for the condition": "app-3",
		"build app-3 was deleted before it started: No logs are available.":          "app-3",
		"cannot upload file to build app-3 with status Complete":                     "app-3",
		"build app-3 encountered an error: No logs are available.":                   "app-3",
		`buildconfigs.build.openshift.io "app" not found`:                            "",
	} {
		got, _ := BuildName(msg)
		if got != want {
			t.Errorf("BuildName(%q) = %q, want %q", msg, got, want)
		}
	}
	if Bytes(1536) != "1.5 KiB" || Bytes(12) != "12 B" || Bytes(3<<30) != "3.0 GiB" {
		t.Errorf("Bytes: %s %s %s", Bytes(1536), Bytes(12), Bytes(3<<30))
	}
}
