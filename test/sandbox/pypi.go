package sandbox

// A private Python package index, as a company runs behind its firewall
// (devpi, Artifactory, Nexus): PEP 503's "simple" layout over plain http.
// No PyPI is reachable from the sandbox, so the index holds wheels the
// sandbox builds at start from the pure-Python projects under
// testdata/python/<project>/ (each with a PKG-INFO-style `metadata` file
// holding Name and Version, and its package directory), and Debian's
// packaged Python libraries for a Flask app, repackaged as wheels
// (pypi_debian.go).

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// wheel is one built distribution the index serves.
type wheel struct {
	project  string // normalised (PEP 503)
	filename string
	data     []byte
}

var pep503RE = regexp.MustCompile(`[-_.]+`)

func normalizeProject(name string) string {
	return strings.ToLower(pep503RE.ReplaceAllString(name, "-"))
}

// startPackageIndex builds the wheels and serves the index; its URL (…/simple/)
// is PackageIndexURL.
func (sb *Sandbox) startPackageIndex(ctx context.Context) error {
	root := filepath.Join(sb.modDir, "testdata", "python")
	entries, err := os.ReadDir(root)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	wheels, err := debianWheels(ctx, filepath.Join(sb.CacheDir(), "pypi"), FlaskPackages, sb.Say)
	if err != nil {
		return fmt.Errorf("repackaging Debian's Python libraries: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		w, err := buildWheel(filepath.Join(root, e.Name()))
		if err != nil {
			return fmt.Errorf("building the wheel of %s: %w", e.Name(), err)
		}
		wheels = append(wheels, w)
	}
	addr, err := sb.serve(packageIndex(wheels, &sb.indexDownloads))
	if err != nil {
		return err
	}
	sb.PackageIndexURL = "http://" + addr + "/simple/"
	return nil
}

// PackageIndexDownloads is the number of files the package index has served.
func (sb *Sandbox) PackageIndexDownloads() int64 { return sb.indexDownloads.Load() }

// packageIndex serves /simple/, /simple/<project>/ and /packages/<file>,
// counting the files served in downloads.
func packageIndex(wheels []wheel, downloads *atomic.Int64) http.Handler {
	byProject := map[string][]wheel{}
	files := map[string][]byte{}
	for _, w := range wheels {
		byProject[w.project] = append(byProject[w.project], w)
		files[w.filename] = w.data
	}
	projects := make([]string, 0, len(byProject))
	for p := range byProject {
		projects = append(projects, p)
	}
	sort.Strings(projects)
	page := func(w http.ResponseWriter, title string, links [][2]string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>%s</title></head><body>\n", html.EscapeString(title))
		for _, l := range links {
			fmt.Fprintf(w, "<a href=\"%s\">%s</a><br>\n", html.EscapeString(l[0]), html.EscapeString(l[1]))
		}
		fmt.Fprint(w, "</body></html>\n")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /simple/{$}", func(w http.ResponseWriter, r *http.Request) {
		var links [][2]string
		for _, p := range projects {
			links = append(links, [2]string{"/simple/" + p + "/", p})
		}
		page(w, "Simple index", links)
	})
	mux.HandleFunc("GET /simple/{project}/{$}", func(w http.ResponseWriter, r *http.Request) {
		p := normalizeProject(r.PathValue("project"))
		if p != r.PathValue("project") {
			http.Redirect(w, r, "/simple/"+p+"/", http.StatusMovedPermanently)
			return
		}
		ws, ok := byProject[p]
		if !ok {
			http.NotFound(w, r)
			return
		}
		var links [][2]string
		for _, wh := range ws {
			sum := sha256.Sum256(wh.data)
			links = append(links, [2]string{"/packages/" + wh.filename + "#sha256=" + hex.EncodeToString(sum[:]), wh.filename})
		}
		page(w, "Links for "+p, links)
	})
	mux.HandleFunc("GET /packages/{file}", func(w http.ResponseWriter, r *http.Request) {
		data, ok := files[r.PathValue("file")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		downloads.Add(1)
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(data)
	})
	return mux
}

// buildWheel makes a py3-none-any wheel of the project in dir: its
// `metadata` file (Name:, Version:, Summary:, Requires-Dist: lines) and
// every other file under dir, with the dist-info METADATA, WHEEL and RECORD
// pip checks.
func buildWheel(dir string) (wheel, error) {
	meta, err := os.ReadFile(filepath.Join(dir, "metadata"))
	if err != nil {
		return wheel{}, err
	}
	var name, version string
	for _, l := range strings.Split(string(meta), "\n") {
		if v, ok := strings.CutPrefix(l, "Name: "); ok {
			name = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(l, "Version: "); ok {
			version = strings.TrimSpace(v)
		}
	}
	if name == "" || version == "" {
		return wheel{}, fmt.Errorf("%s/metadata needs Name: and Version: lines", dir)
	}
	dist := strings.ReplaceAll(normalizeProject(name), "-", "_")
	info := dist + "-" + version + ".dist-info"
	wa := newWheelArchive(info)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "metadata" || !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return wa.add(filepath.ToSlash(rel), data, 0o644)
	})
	if err != nil {
		return wheel{}, err
	}
	if err := wa.add(info+"/METADATA", append([]byte("Metadata-Version: 2.1\n"), meta...), 0o644); err != nil {
		return wheel{}, err
	}
	if err := wa.add(info+"/WHEEL", []byte("Wheel-Version: 1.0\nGenerator: ocbuild-sandbox\nRoot-Is-Purelib: true\nTag: py3-none-any\n"), 0o644); err != nil {
		return wheel{}, err
	}
	data, err := wa.close()
	if err != nil {
		return wheel{}, err
	}
	return wheel{project: normalizeProject(name), filename: dist + "-" + version + "-py3-none-any.whl", data: data}, nil
}

// wheelArchive writes a wheel's zip: every file added is listed in the
// dist-info RECORD with its sha256 (urlsafe base64, unpadded) and size, as
// pip checks; times are fixed, so the same files give the same bytes.
type wheelArchive struct {
	buf    bytes.Buffer
	zw     *zip.Writer
	record strings.Builder
	info   string // <dist>-<version>.dist-info
}

var wheelStamp = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

func newWheelArchive(info string) *wheelArchive {
	w := &wheelArchive{info: info}
	w.zw = zip.NewWriter(&w.buf)
	return w
}

// add writes p (executable if mode has an x bit).
func (w *wheelArchive) add(p string, data []byte, mode int64) error {
	h := &zip.FileHeader{Name: p, Method: zip.Deflate, Modified: wheelStamp}
	perm := fs.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	h.SetMode(perm)
	f, err := w.zw.CreateHeader(h)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	fmt.Fprintf(&w.record, "%s,sha256=%s,%d\n", csvField(p), base64.RawURLEncoding.EncodeToString(sum[:]), len(data))
	return nil
}

// close writes RECORD and returns the wheel's bytes.
func (w *wheelArchive) close() ([]byte, error) {
	fmt.Fprintf(&w.record, "%s/RECORD,,\n", w.info)
	h := &zip.FileHeader{Name: w.info + "/RECORD", Method: zip.Deflate, Modified: wheelStamp}
	h.SetMode(0o644)
	f, err := w.zw.CreateHeader(h)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write([]byte(w.record.String())); err != nil {
		return nil, err
	}
	if err := w.zw.Close(); err != nil {
		return nil, err
	}
	return w.buf.Bytes(), nil
}
