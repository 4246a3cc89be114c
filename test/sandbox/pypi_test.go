package sandbox

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// pip finds a project under /simple/<normalised name>/ and downloads the
// linked source distribution: pyproject.toml and the package below
// <dist>-<version>/, with PKG-INFO. Files are cacheable, as on PyPI.
func TestPackageIndex(t *testing.T) {
	w, err := buildSdist("../testdata/python/ocbuild-greeting")
	if err != nil {
		t.Fatal(err)
	}
	if w.filename != "ocbuild_greeting-1.0.0.tar.gz" || w.project != "ocbuild-greeting" {
		t.Fatalf("sdist %s of %s", w.filename, w.project)
	}
	var downloads atomic.Int64
	srv := httptest.NewServer(packageIndex([]distFile{w}, &downloads))
	defer srv.Close()
	var cacheControl string
	get := func(p string) (int, string) {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		cacheControl = resp.Header.Get("Cache-Control")
		return resp.StatusCode, string(b)
	}
	if code, body := get("/simple/"); code != 200 || !strings.Contains(body, `href="/simple/ocbuild-greeting/"`) {
		t.Errorf("/simple/: %d %s", code, body)
	}
	code, body := get("/simple/ocbuild-greeting/")
	if code != 200 || !strings.Contains(body, `href="/packages/ocbuild_greeting-1.0.0.tar.gz#sha256=`) {
		t.Errorf("project page: %d %s", code, body)
	}
	if code, _ := get("/simple/Ocbuild_Greeting/"); code != 200 {
		t.Errorf("a non-normalised name is not redirected to the project: %d", code)
	}
	if code, _ := get("/simple/nope/"); code != 404 {
		t.Errorf("unknown project: %d", code)
	}
	_, data := get("/packages/" + w.filename)
	if !strings.Contains(cacheControl, "max-age=") {
		t.Errorf("a package file without a cache lifetime (Cache-Control %q): pip would not cache it", cacheControl)
	}
	if downloads.Load() != 1 {
		t.Errorf("%d downloads counted, want 1", downloads.Load())
	}
	gz, err := gzip.NewReader(strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	names := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name] = true
	}
	for _, n := range []string{"ocbuild_greeting-1.0.0/PKG-INFO", "ocbuild_greeting-1.0.0/pyproject.toml",
		"ocbuild_greeting-1.0.0/ocbuild_greeting/__init__.py"} {
		if !names[n] {
			t.Errorf("sdist lacks %s (has %v)", n, names)
		}
	}
}
