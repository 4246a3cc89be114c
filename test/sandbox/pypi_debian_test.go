package sandbox

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseDebDep(t *testing.T) {
	for in, want := range map[string][2]string{
		"python3-werkzeug (>= 2.2.2)":       {"python3-werkzeug", ">=2.2.2"},
		" python3-flask:any (= 1:2.2.2-3) ": {"python3-flask", "==2.2.2"},
		"python3-x (<< 2.0~)":               {"python3-x", "<2.0"},
		"python3-y (>> 1.0+dfsg-1+deb12u1)": {"python3-y", ">1.0"},
		"python3-z(>=3.0)":                  {"python3-z", ">=3.0"},
		"python3-w (>= 1.0~rc1)":            {"python3-w", ">=1.0"},
		"python3-v (>= 2020g)":              {"python3-v", ""},
		"python3:any":                       {"python3", ""},
		"python3-u:any (>= 1.2) [amd64]":    {"python3-u", ">=1.2"},
	} {
		if n, s := parseDebDep(in); n != want[0] || s != want[1] {
			t.Errorf("parseDebDep(%q) = %q, %q; want %q, %q", in, n, s, want[0], want[1])
		}
	}
}

// The wheels made of Debian's Flask and gunicorn install with pip, from the
// index, into a fresh venv, and run.
func TestDebianWheels(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads Debian packages and runs pip")
	}
	for _, c := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("no %s here", c)
		}
	}
	const python = "/usr/bin/python3" // Debian's, not a pyenv one on PATH
	if _, err := os.Stat(python); err != nil {
		t.Skip("no Debian python3 here")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := exec.Command(python, "-c", "import ensurepip, venv").Run(); err != nil {
		if os.Geteuid() != 0 {
			t.Skip("python3 -m venv needs python3-venv: apt-get install python3-venv python3-pip")
		}
		t.Log("installing python3-venv python3-pip with apt-get")
		install := exec.CommandContext(ctx, "apt-get", "install", "-y", "-qq", "python3-venv", "python3-pip")
		install.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := install.CombinedOutput(); err != nil {
			t.Fatalf("apt-get install python3-venv python3-pip: %v\n%s", err, out)
		}
	}

	cache := t.TempDir()
	start := time.Now()
	ws, err := debianWheels(ctx, cache, FlaskPackages, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	cold := time.Since(start)

	// Warm: no command may run (PATH has none), and the same wheels come back.
	t.Setenv("PATH", t.TempDir())
	start = time.Now()
	again, err := debianWheels(ctx, cache, FlaskPackages, func(s string) { t.Log(s) })
	warm := time.Since(start)
	if err != nil {
		t.Fatalf("second call, from the cache: %v", err)
	}
	t.Logf("%d wheels: cold %s, warm %s", len(ws), cold.Round(time.Millisecond), warm.Round(time.Millisecond))
	if len(again) != len(ws) {
		t.Fatalf("cached: %d wheels, made %d", len(again), len(ws))
	}
	for i := range ws {
		if again[i].filename != ws[i].filename || again[i].project != ws[i].project || !bytes.Equal(again[i].data, ws[i].data) {
			t.Errorf("cached wheel %s differs from the made %s", again[i].filename, ws[i].filename)
		}
	}
	if warm > 2*time.Second {
		t.Errorf("the second call took %s", warm)
	}
	t.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")

	byProject := map[string]distFile{}
	for _, w := range ws {
		byProject[w.project] = w
		checkWheel(t, w)
	}
	for _, p := range []string{"flask", "werkzeug", "jinja2", "markupsafe", "itsdangerous", "click", "blinker", "gunicorn", "setuptools"} {
		if _, ok := byProject[p]; !ok {
			t.Errorf("no wheel of %s", p)
		}
	}
	if runtime.GOARCH == "amd64" {
		if f := byProject["markupsafe"].filename; !strings.HasSuffix(f, "-cp311-cp311-linux_x86_64.whl") {
			t.Errorf("markupsafe (with _speedups.so) is %s", f)
		}
	}
	if f := byProject["flask"].filename; !strings.HasSuffix(f, "-py3-none-any.whl") {
		t.Errorf("flask is %s", f)
	}
	if t.Failed() {
		return
	}

	var downloads atomic.Int64
	srv := httptest.NewServer(packageIndex(ws, &downloads))
	defer srv.Close()
	venv := filepath.Join(t.TempDir(), "venv")
	env := []string{"PATH=" + filepath.Join(venv, "bin") + ":/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + t.TempDir(),
		"PIP_CONFIG_FILE=" + os.DevNull, "PIP_TRUSTED_HOST=127.0.0.1", "PIP_NO_CACHE_DIR=1",
		"PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1", "PYTHONNOUSERSITE=1"}
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run(python, "-m", "venv", venv)
	py := filepath.Join(venv, "bin", "python")
	// Without setuptools in the venv, gunicorn's requirement of it (for
	// pkg_resources) comes from the index too.
	run(py, "-m", "pip", "uninstall", "-y", "-q", "setuptools")
	start = time.Now()
	out := run(py, "-m", "pip", "install", "--index-url", srv.URL+"/simple/", "flask", "gunicorn")
	t.Logf("pip install (%s):\n%s", time.Since(start).Round(time.Millisecond), LastLines(out, 3))
	freeze := run(py, "-m", "pip", "list", "--format=freeze")
	for _, p := range []string{"flask", "werkzeug", "jinja2", "markupsafe", "itsdangerous", "click", "gunicorn", "setuptools"} {
		w := byProject[p]
		version := strings.SplitN(strings.TrimSuffix(w.filename, ".whl"), "-", 3)[1]
		found := false
		for _, l := range strings.Split(freeze, "\n") {
			if n, v, ok := strings.Cut(strings.TrimSpace(l), "=="); ok && normalizeProject(n) == p && v == version {
				found = true
			}
		}
		if !found {
			t.Errorf("pip did not install %s %s:\n%s", p, version, freeze)
		}
	}
	if n := downloads.Load(); n != 8 {
		t.Errorf("pip downloaded %d wheels from the index, want 8", n)
	}
	run(py, "-m", "pip", "check")
	flaskVersion := strings.SplitN(byProject["flask"].filename, "-", 3)[1]
	if got := strings.TrimSpace(run(py, "-c", "import flask, gunicorn; print(flask.__version__)")); got != flaskVersion {
		t.Errorf("flask.__version__ = %q, want %q", got, flaskVersion)
	}
	if got := run(py, "-c", "import markupsafe._speedups, pkg_resources; print(markupsafe.escape('<a>'))"); strings.TrimSpace(got) != "&lt;a&gt;" {
		t.Errorf("markupsafe: %q", got)
	}
	if got := run(py, "-m", "gunicorn", "--version"); !strings.Contains(got, "(version 20.") { // prog name: __main__.py
		t.Errorf("python -m gunicorn --version: %q", got)
	}
	if got := run(filepath.Join(venv, "bin", "gunicorn"), "--version"); !strings.Contains(got, "gunicorn (version") {
		t.Errorf("gunicorn --version: %q", got)
	}
}

// checkWheel verifies the wheel's RECORD against its files.
func checkWheel(t *testing.T, w distFile) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(w.data), int64(len(w.data)))
	if err != nil {
		t.Fatalf("%s: %v", w.filename, err)
	}
	parts := strings.SplitN(w.filename, "-", 3)
	info := parts[0] + "-" + parts[1] + ".dist-info/"
	if strings.ReplaceAll(parts[0], "_", "-") != w.project {
		t.Errorf("%s: project %s", w.filename, w.project)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		files[f.Name] = data
		if strings.Contains(f.Name, "__pycache__") || strings.HasSuffix(f.Name, ".pyc") {
			t.Errorf("%s has %s", w.filename, f.Name)
		}
	}
	record := string(files[info+"RECORD"])
	for _, n := range []string{"METADATA", "WHEEL", "RECORD"} {
		if _, ok := files[info+n]; !ok {
			t.Errorf("%s lacks %s%s", w.filename, info, n)
		}
	}
	listed := 0
	for _, l := range strings.Split(strings.TrimSpace(record), "\n") {
		f := strings.Split(l, ",")
		if f[0] == info+"RECORD" {
			continue
		}
		data, ok := files[f[0]]
		sum := sha256.Sum256(data)
		if want := fmt.Sprintf("sha256=%s", base64.RawURLEncoding.EncodeToString(sum[:])); !ok || len(f) != 3 || f[1] != want || f[2] != fmt.Sprint(len(data)) {
			t.Errorf("%s: RECORD line %q does not match the file", w.filename, l)
		}
		listed++
	}
	if listed != len(files)-1 {
		t.Errorf("%s: RECORD lists %d of %d files", w.filename, listed, len(files)-1)
	}
	if w.project == "gunicorn" && !strings.Contains(string(files[info+"entry_points.txt"]), "gunicorn = gunicorn.app.wsgiapp:run") {
		t.Errorf("%s has no gunicorn console script: %q", w.filename, files[info+"entry_points.txt"])
	}
}
