package sandbox

import (
	"archive/zip"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// pip finds a project under /simple/<normalised name>/ and downloads the
// linked wheel, whose RECORD lists every file with its sha256.
func TestPackageIndex(t *testing.T) {
	w, err := buildWheel("../testdata/python/ocbuild-greeting")
	if err != nil {
		t.Fatal(err)
	}
	if w.filename != "ocbuild_greeting-1.0.0-py3-none-any.whl" || w.project != "ocbuild-greeting" {
		t.Fatalf("wheel %s of %s", w.filename, w.project)
	}
	var downloads atomic.Int64
	srv := httptest.NewServer(packageIndex([]wheel{w}, &downloads))
	defer srv.Close()
	get := func(p string) (int, string) {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/simple/"); code != 200 || !strings.Contains(body, `href="/simple/ocbuild-greeting/"`) {
		t.Errorf("/simple/: %d %s", code, body)
	}
	code, body := get("/simple/ocbuild-greeting/")
	if code != 200 || !strings.Contains(body, `href="/packages/ocbuild_greeting-1.0.0-py3-none-any.whl#sha256=`) {
		t.Errorf("project page: %d %s", code, body)
	}
	if code, _ := get("/simple/Ocbuild_Greeting/"); code != 200 {
		t.Errorf("a non-normalised name is not redirected to the project: %d", code)
	}
	if code, _ := get("/simple/nope/"); code != 404 {
		t.Errorf("unknown project: %d", code)
	}
	_, data := get("/packages/" + w.filename)
	if downloads.Load() != 1 {
		t.Errorf("%d downloads counted, want 1", downloads.Load())
	}
	zr, err := zip.NewReader(bytes.NewReader([]byte(data)), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range zr.File {
		names[f.Name] = true
	}
	for _, n := range []string{"ocbuild_greeting/__init__.py", "ocbuild_greeting-1.0.0.dist-info/METADATA",
		"ocbuild_greeting-1.0.0.dist-info/WHEEL", "ocbuild_greeting-1.0.0.dist-info/RECORD"} {
		if !names[n] {
			t.Errorf("wheel lacks %s (has %v)", n, names)
		}
	}
}
