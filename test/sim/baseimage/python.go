package baseimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/ocbuild/ocbuild/test/sandbox"
)

// The python-311 root filesystem: Debian bookworm's apt variant with these
// packages.
const debianSuite = "bookworm"

var pythonPackages = []string{"python3", "python3-venv", "python3-pip", "ca-certificates"}

// mmdebstrapOptions keep the root filesystem small: no manuals, no info
// pages, no translations, no documentation but the copyright files.
var mmdebstrapOptions = []string{
	"--variant=apt",
	"--architectures=amd64",
	"--dpkgopt=path-exclude=/usr/share/man/*",
	"--dpkgopt=path-exclude=/usr/share/info/*",
	"--dpkgopt=path-exclude=/usr/share/locale/*",
	"--dpkgopt=path-include=/usr/share/locale/locale.alias",
	"--dpkgopt=path-exclude=/usr/share/doc/*",
	"--dpkgopt=path-include=/usr/share/doc/*/copyright",
}

// pythonHook runs inside mmdebstrap (customize hook, $1 the root): the
// virtual environment the S2I scripts install into, and a pip that runs in
// it. Ownership and modes under /opt/app-root are set when the tarball
// becomes a layer.
const pythonHook = `set -e
root="$1"
chroot "$root" python3 -m venv --system-site-packages --without-pip /opt/app-root
mkdir -p "$root/opt/app-root/src"
for p in pip pip3; do
	printf '#!/bin/sh\n# pip of the /opt/app-root virtual environment (Debian pip, run by the venv python)\nexec /opt/app-root/bin/python -m pip "$@"\n' >"$root/opt/app-root/bin/$p"
	chmod 0755 "$root/opt/app-root/bin/$p"
done
`

// appUser is the passwd line of the S2I user.
const appUser = "default:x:1001:0:Default Application User:/opt/app-root/src:/bin/bash\n"

func pythonRecipe() recipe {
	return recipe{
		name: Python311,
		refs: Python311Refs,
		what: "the python-311 S2I builder image",
		slow: "mmdebstrap, first run: ~1 min",
		inputs: func(ctx context.Context, b *builder) (string, error) {
			return lines("image=python-311", "suite="+debianSuite,
				"mirrors="+strings.Join(debianMirrors(), " | "),
				"packages="+strings.Join(pythonPackages, ","),
				"options="+strings.Join(mmdebstrapOptions, " "),
				"hook="+pythonHook, "user="+appUser,
				"scripts="+scriptsHash("s2i/python")), nil
		},
		build: buildPython,
	}
}

// debianMirrors returns the one-line apt sources mmdebstrap uses: this
// host's Debian bookworm entries (main only), from /etc/apt/sources.list and
// /etc/apt/sources.list.d, or deb.debian.org when the host has none.
func debianMirrors() []string {
	files := []string{"/etc/apt/sources.list"}
	for _, pat := range []string{"/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	return aptSources(files)
}

// aptSources returns the Debian bookworm "main" sources of the apt source
// files (one-line .list or deb822 .sources; missing ones are skipped) as
// one-line entries, or deb.debian.org's when there are none.
func aptSources(files []string) []string {
	suites := map[string]bool{debianSuite: true, debianSuite + "-updates": true, debianSuite + "-security": true}
	seen := map[string]bool{}
	var out []string
	add := func(uri, suite string, comps []string) {
		if !suites[suite] || !strings.HasPrefix(uri, "http") {
			return
		}
		for _, c := range comps {
			if c == "main" {
				l := "deb " + strings.TrimSuffix(uri, "/") + " " + suite + " main"
				if !seen[l] {
					seen[l] = true
					out = append(out, l)
				}
			}
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if strings.HasSuffix(f, ".sources") {
			for _, st := range deb822(string(data)) {
				if st["enabled"] == "no" || !strings.Contains(" "+st["types"]+" ", " deb ") {
					continue
				}
				for _, uri := range strings.Fields(st["uris"]) {
					for _, s := range strings.Fields(st["suites"]) {
						add(uri, s, strings.Fields(st["components"]))
					}
				}
			}
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			l = strings.TrimSpace(l)
			if i := strings.Index(l, "#"); i >= 0 {
				l = strings.TrimSpace(l[:i])
			}
			l = aptOptions.ReplaceAllString(l, "")
			f := strings.Fields(l)
			if len(f) >= 4 && f[0] == "deb" {
				add(f[1], f[2], f[3:])
			}
		}
	}
	if len(out) == 0 {
		out = []string{
			"deb http://deb.debian.org/debian " + debianSuite + " main",
			"deb http://deb.debian.org/debian " + debianSuite + "-updates main",
			"deb http://deb.debian.org/debian-security " + debianSuite + "-security main",
		}
	}
	return out
}

// aptOptions matches the [arch=… signed-by=…] of a one-line apt source.
var aptOptions = regexp.MustCompile(`\[[^]]*\]\s*`)

// deb822 parses the stanzas of a .sources file (keys lowercased).
func deb822(s string) []map[string]string {
	var out []map[string]string
	cur := map[string]string{}
	last := ""
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
		}
		cur, last = map[string]string{}, ""
	}
	for _, l := range strings.Split(s, "\n") {
		switch {
		case strings.TrimSpace(l) == "":
			flush()
		case strings.HasPrefix(l, "#"):
		case (l[0] == ' ' || l[0] == '\t') && last != "":
			cur[last] += " " + strings.TrimSpace(l)
		default:
			k, v, ok := strings.Cut(l, ":")
			if ok {
				last = strings.ToLower(strings.TrimSpace(k))
				cur[last] = strings.TrimSpace(v)
			}
		}
	}
	flush()
	return out
}

func buildPython(ctx context.Context, b *builder, stage string) (v1.Image, error) {
	mm, err := exec.LookPath("mmdebstrap")
	if err != nil {
		return nil, fmt.Errorf("the python-311 image is made by mmdebstrap: %w (install the Debian package mmdebstrap; see EnsurePrerequisites)", err)
	}
	hook := filepath.Join(stage, "hook.sh")
	if err := os.WriteFile(hook, []byte(pythonHook), 0o644); err != nil {
		return nil, err
	}
	rootfs := filepath.Join(stage, "rootfs.tar")
	args := append([]string{}, mmdebstrapOptions...)
	args = append(args,
		"--include="+strings.Join(pythonPackages, ","),
		"--customize-hook=sh "+hook+` "$1"`,
		debianSuite, rootfs)
	args = append(args, debianMirrors()...)
	cmd := exec.CommandContext(ctx, mm, args...)
	// On cancellation, let mmdebstrap unmount and remove its chroot.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	// SOURCE_DATE_EPOCH: mmdebstrap clamps times to it, and Python then
	// writes hash-checked .pyc files, which stay valid whatever the times.
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(created.Unix(), 10))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("mmdebstrap %s: %w\n%s", strings.Join(args, " "), err, sandbox.LastLines(out.String(), 40))
	}

	w, err := newLayerWriter(filepath.Join(stage, "rootfs.tar.gz"))
	if err != nil {
		return nil, err
	}
	pyVersion, err := rootfsLayer(w, rootfs)
	if err != nil {
		w.abort()
		return nil, err
	}
	_ = os.Remove(rootfs)
	root, err := w.close(types.OCILayer)
	if err != nil {
		return nil, err
	}
	sw, err := newLayerWriter(filepath.Join(stage, "s2i.tar.gz"))
	if err != nil {
		return nil, err
	}
	if err := errors.Join(sw.dir("usr", 0o755, 0, 0), sw.dir("usr/libexec", 0o755, 0, 0), s2iScripts(sw, "s2i/python")); err != nil {
		sw.abort()
		return nil, err
	}
	s2i, err := sw.close(types.OCILayer)
	if err != nil {
		return nil, err
	}
	short := strings.ReplaceAll(pyVersion, ".", "")
	return assemble(nil, []layerSpec{
		{root, "mmdebstrap " + strings.Join(mmdebstrapOptions, " ") + " --include=" + strings.Join(pythonPackages, ",") + " " + debianSuite},
		{s2i, "ocbuild baseimage: S2I scripts in /usr/libexec/s2i"},
	}, func(cf *v1.ConfigFile) {
		cf.Config.User = "1001"
		cf.Config.WorkingDir = "/opt/app-root/src"
		cf.Config.Env = []string{
			"PATH=/opt/app-root/src/.local/bin:/opt/app-root/src/bin:/opt/app-root/bin:" + basePath,
			"HOME=/opt/app-root/src",
			"APP_ROOT=/opt/app-root",
			"STI_SCRIPTS_PATH=/usr/libexec/s2i",
			"PYTHON_VERSION=" + pyVersion,
			"VIRTUAL_ENV=/opt/app-root",
			"PYTHONUNBUFFERED=1",
			"PYTHONIOENCODING=UTF-8",
			"LANG=C.UTF-8",
			"LC_ALL=C.UTF-8",
			"PIP_DISABLE_PIP_VERSION_CHECK=1",
		}
		cf.Config.Cmd = []string{"/usr/libexec/s2i/usage"}
		cf.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
		cf.Config.Labels = s2iLabels("builder,python,python" + short)
		cf.Config.Labels["name"] = "ocbuild/python-" + short
		cf.Config.Labels["summary"] = "Python " + pyVersion + " S2I builder of the ocbuild sandbox (Debian " + debianSuite + ")"
		cf.Config.Labels["io.k8s.display-name"] = "Python " + pyVersion
		cf.Config.Labels["org.opencontainers.image.title"] = "ocbuild python-" + short
		cf.Config.Labels["version"] = pyVersion
	})
}

// rootfsLayer copies the mmdebstrap tarball at file into w: regular files,
// directories, symlinks and hard links as they are (numeric owners, modes,
// times), without device nodes, apt's caches and lists, or the host's
// resolv.conf and hostname; with the S2I user in /etc/passwd and
// /opt/app-root owned by 1001:0 and group-writable. It returns the Python
// version (from usr/bin/python3 -> python3.X).
func rootfsLayer(w *layerWriter, file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReaderSize(f, 1<<20))
	skipped := map[string]bool{}
	pyVersion := ""
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		name := clean(h.Name)
		if skipRootfs(name, h) {
			skipped[name] = true
			continue
		}
		if h.Typeflag == tar.TypeLink && skipped[clean(h.Linkname)] {
			continue
		}
		if name == "usr/bin/python3" && h.Typeflag == tar.TypeSymlink {
			pyVersion = strings.TrimPrefix(filepath.Base(h.Linkname), "python")
		}
		hdr := *h
		hdr.Mode &= 0o7777
		if name == "opt/app-root" || strings.HasPrefix(name, "opt/app-root/") {
			hdr.Uid, hdr.Gid = 1001, 0
			if h.Typeflag == tar.TypeDir {
				hdr.Mode |= 0o070
			} else if h.Typeflag == tar.TypeReg {
				hdr.Mode |= 0o060
			}
		}
		var r io.Reader = tr
		if name == "etc/passwd" && h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				return "", err
			}
			if !bytes.HasSuffix(data, []byte("\n")) && len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, appUser...)
			hdr.Size = int64(len(data))
			r = bytes.NewReader(data)
		}
		if err := w.write(&hdr, r); err != nil {
			return "", err
		}
	}
	if pyVersion == "" {
		return "", errors.New("the root filesystem has no usr/bin/python3 -> python3.X")
	}
	return pyVersion, nil
}

func skipRootfs(name string, h *tar.Header) bool {
	switch h.Typeflag {
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return true
	}
	switch name {
	case "etc/resolv.conf", "etc/hostname":
		return true
	}
	for _, dir := range []string{"dev/", "var/cache/apt/", "var/lib/apt/lists/", "var/log/apt/"} {
		if strings.HasPrefix(name, dir) {
			return true
		}
	}
	return false
}
