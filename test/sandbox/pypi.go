package sandbox

// A private Python package index, as a company runs behind its firewall
// (devpi, Artifactory, Nexus): PEP 503's "simple" layout over plain http.
// No PyPI is reachable from the sandbox, so the index holds wheels the
// sandbox builds at start from the pure-Python projects under
// testdata/python/<project>/ (each a pyproject.toml project, served as a
// source distribution that pip builds), and Debian's
// packaged Python libraries for a Flask app, repackaged as wheels
// (pypi_debian.go).

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
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

// distFile is one distribution file the index serves (a wheel or an sdist).
type distFile struct {
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
		w, err := buildSdist(filepath.Join(root, e.Name()))
		if err != nil {
			return fmt.Errorf("building the source distribution of %s: %w", e.Name(), err)
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
func packageIndex(wheels []distFile, downloads *atomic.Int64) http.Handler {
	byProject := map[string][]distFile{}
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
		w.Header().Set("Cache-Control", "max-age=600, public") // as PyPI's simple pages
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
		// As PyPI's file host: a file never changes, so pip's HTTP cache
		// keeps it (what an S2I pip cache then carries to the next build).
		w.Header().Set("Cache-Control", "max-age=365000000, immutable, public")
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(data)
	})
	return mux
}

var (
	projectNameRE    = regexp.MustCompile(`(?m)^name\s*=\s*"([^"]+)"`)
	projectVersionRE = regexp.MustCompile(`(?m)^version\s*=\s*"([^"]+)"`)
	projectSummaryRE = regexp.MustCompile(`(?m)^description\s*=\s*"([^"]*)"`)
)

// buildSdist makes the source distribution of the project in dir, whose
// pyproject.toml names its build backend and its [project] name, version
// and description: a <dist>-<version>.tar.gz (PEP 625) of every file under
// dir below <dist>-<version>/, with the PKG-INFO pip reads. Times are
// fixed, so the same files give the same bytes.
func buildSdist(dir string) (distFile, error) {
	pp, err := os.ReadFile(filepath.Join(dir, "pyproject.toml"))
	if err != nil {
		return distFile{}, err
	}
	field := func(re *regexp.Regexp) string {
		if m := re.FindSubmatch(pp); m != nil {
			return string(m[1])
		}
		return ""
	}
	name, version := field(projectNameRE), field(projectVersionRE)
	if name == "" || version == "" {
		return distFile{}, fmt.Errorf("%s/pyproject.toml needs name and version in [project]", dir)
	}
	dist := strings.ReplaceAll(normalizeProject(name), "-", "_")
	prefix := dist + "-" + version + "/"
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(p string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: prefix + p, Mode: 0o644, Size: int64(len(data)), ModTime: wheelStamp, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	pkgInfo := fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: %s\n", name, version, field(projectSummaryRE))
	if err := add("PKG-INFO", []byte(pkgInfo)); err != nil {
		return distFile{}, err
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return add(filepath.ToSlash(rel), data)
	})
	if err != nil {
		return distFile{}, err
	}
	if err := tw.Close(); err != nil {
		return distFile{}, err
	}
	if err := gz.Close(); err != nil {
		return distFile{}, err
	}
	return distFile{project: normalizeProject(name), filename: dist + "-" + version + ".tar.gz", data: buf.Bytes()}, nil
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
