package sandbox

// Wheels made from Debian's packaged Python libraries, for the private
// package index (pypi.go): no PyPI is reachable from the sandbox, but
// deb.debian.org is, and Debian packages the libraries a Flask app needs.
// Each .deb is fetched once with `apt-get download`; every Python
// distribution it installs under usr/lib/python3/dist-packages (an egg-info
// or dist-info directory and the packages it names) becomes one wheel, whose
// dependencies come from the upstream metadata and — since Debian strips
// install_requires from the egg-info it ships — from the .deb's Depends,
// mapped to the projects the same call builds.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// FlaskPackages are the Debian packages whose libraries the index serves for
// a Flask app served by gunicorn (bookworm: Flask 2.2.2, Werkzeug 2.2.2,
// Jinja2 3.1.2, MarkupSafe 2.1.2, itsdangerous 2.1.2, click 8.1.3, blinker
// 1.5, gunicorn 20.1.0, setuptools 66.1.1). The gunicorn module is in
// python3-gunicorn (the gunicorn package holds only /usr/bin/gunicorn);
// gunicorn needs pkg_resources at run time, so the index also serves
// setuptools, made of python3-setuptools and python3-pkg-resources. blinker
// is optional for Flask 2.2 (signals).
var FlaskPackages = []string{
	"python3-flask", "python3-werkzeug", "python3-jinja2", "python3-markupsafe",
	"python3-itsdangerous", "python3-click", "python3-blinker",
	"python3-gunicorn", "python3-setuptools", "python3-pkg-resources",
	// What pip's isolated build environment installs to build an sdist
	// with setuptools.build_meta (setuptools' own wheel is above).
	"python3-wheel",
}

// debWheelsFormat is part of the wheel cache's key: bump it when the
// conversion changes.
const debWheelsFormat = "debian-wheels 1"

const distPackages = "usr/lib/python3/dist-packages"

// debianWheels returns wheels made from the Debian packages pkgs (e.g.
// "python3-flask"), cached under cacheDir (e.g. <test>/.cache/pypi): each
// .deb is fetched once with `apt-get download` (`apt-get update` first only
// if the download fails), its files read with `dpkg-deb --fsys-tarfile`, and
// each Python distribution it installs under usr/lib/python3/dist-packages
// becomes one wheel. The wheels are cached too, keyed by the .deb filenames,
// so a second call runs no command at all.
func debianWheels(ctx context.Context, cacheDir string, pkgs []string, log func(string)) ([]distFile, error) {
	if log == nil {
		log = func(string) {}
	}
	start := time.Now()
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	debs, err := fetchDebs(ctx, cacheDir, pkgs, log)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(debs))
	for _, d := range debs {
		names = append(names, filepath.Base(d))
	}
	sort.Strings(names)
	sum := sha256.Sum256([]byte(debWheelsFormat + "\n" + strings.Join(names, "\n")))
	wheelDir := filepath.Join(cacheDir, "wheels", hex.EncodeToString(sum[:8]))
	if ws, err := loadWheels(wheelDir); err == nil {
		log(fmt.Sprintf("python index: %d cached wheels of %d Debian packages (%s)", len(ws), len(debs), time.Since(start).Round(time.Millisecond)))
		return ws, nil
	}
	ws, err := convertDebs(ctx, debs, log)
	if err != nil {
		return nil, err
	}
	if err := saveWheels(wheelDir, ws); err != nil {
		return nil, err
	}
	var made []string
	for _, w := range ws {
		made = append(made, w.filename)
	}
	log(fmt.Sprintf("python index: made %d wheels of %d Debian packages in %s: %s", len(ws), len(debs), time.Since(start).Round(time.Millisecond), strings.Join(made, " ")))
	return ws, nil
}

// fetchDebs returns the .deb file of each package, downloading those not yet
// in cacheDir.
func fetchDebs(ctx context.Context, cacheDir string, pkgs []string, log func(string)) ([]string, error) {
	find := func(pkg string) string {
		matches, _ := filepath.Glob(filepath.Join(cacheDir, pkg+"_*.deb"))
		best, bestTime := "", time.Time{}
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && (best == "" || fi.ModTime().After(bestTime)) {
				best, bestTime = m, fi.ModTime()
			}
		}
		return best
	}
	var missing []string
	for _, p := range pkgs {
		if find(p) == "" {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		if err := aptDownload(ctx, cacheDir, missing, log); err != nil {
			return nil, err
		}
	}
	debs := make([]string, 0, len(pkgs))
	seen := map[string]bool{}
	for _, p := range pkgs {
		d := find(p)
		if d == "" {
			return nil, fmt.Errorf("apt-get download %s left no %s_*.deb in %s", p, p, cacheDir)
		}
		if !seen[d] {
			seen[d] = true
			debs = append(debs, d)
		}
	}
	return debs, nil
}

// aptDownload fetches the packages' .debs into a scratch directory of
// cacheDir, then moves them into cacheDir, so that an interrupted download
// leaves nothing behind.
func aptDownload(ctx context.Context, cacheDir string, pkgs []string, log func(string)) error {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("the python index needs the Debian packages %s and this machine has no apt-get", strings.Join(pkgs, " "))
	}
	tmp, err := os.MkdirTemp(cacheDir, ".download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	download := func() ([]byte, error) {
		args := []string{"download", "-q"}
		if os.Geteuid() == 0 {
			// apt would otherwise try, and fail, to write into the
			// scratch directory as _apt, and warn.
			args = append(args, "-o", "APT::Sandbox::User=root")
		}
		cmd := exec.CommandContext(ctx, "apt-get", append(args, pkgs...)...)
		cmd.Dir = tmp
		return cmd.CombinedOutput()
	}
	log(fmt.Sprintf("python index: apt-get download %s", strings.Join(pkgs, " ")))
	if out, err := download(); err != nil {
		// A fresh machine may have no (or stale) package lists.
		log(fmt.Sprintf("python index: apt-get download failed (%v: %s); running apt-get update", err, LastLines(string(out), 2)))
		if out, err := exec.CommandContext(ctx, "apt-get", "update", "-qq").CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get update: %v: %s", err, LastLines(string(out), 5))
		}
		if out, err := download(); err != nil {
			return fmt.Errorf("apt-get download %s: %v: %s", strings.Join(pkgs, " "), err, LastLines(string(out), 5))
		}
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".deb") {
			if err := os.Rename(filepath.Join(tmp, e.Name()), filepath.Join(cacheDir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// A debFile is one entry of a .deb's data archive.
type debFile struct {
	pkg  string // the Debian package holding it
	typ  byte   // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	mode int64
	data []byte
	link string // a symlink's target
}

// debTree is the union of the .debs' file trees (paths without a leading
// slash), resolved without touching the host's files.
type debTree struct {
	files    map[string]*debFile
	children map[string]map[string]bool
}

// debControl is the part of a .deb's control file the conversion uses.
type debControl struct {
	pkg, arch string
	depends   string
}

func (t *debTree) add(p string, f *debFile) {
	if _, ok := t.files[p]; !ok || f.typ != tar.TypeDir {
		t.files[p] = f
	}
	for p != "" && p != "." {
		dir, name := path.Dir(p), path.Base(p)
		if dir == "." {
			dir = ""
		}
		if t.children[dir] == nil {
			t.children[dir] = map[string]bool{}
		}
		if t.children[dir][name] {
			return
		}
		t.children[dir][name] = true
		p = dir
	}
}

// readDeb adds the files of deb to the tree and returns its control fields.
func (t *debTree) readDeb(ctx context.Context, deb string) (debControl, error) {
	out, err := exec.CommandContext(ctx, "dpkg-deb", "-f", deb, "Package", "Architecture", "Depends", "Pre-Depends").Output()
	if err != nil {
		return debControl{}, fmt.Errorf("dpkg-deb -f %s: %w", deb, err)
	}
	var c debControl
	var deps []string
	var last *string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, " ") && last != nil {
			*last += " " + strings.TrimSpace(l)
			continue
		}
		k, v, _ := strings.Cut(l, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			c.pkg, last = v, &c.pkg
		case "Architecture":
			c.arch, last = v, &c.arch
		case "Depends", "Pre-Depends":
			deps = append(deps, v)
			last = &deps[len(deps)-1]
		default:
			last = nil
		}
	}
	c.depends = strings.Join(deps, ", ")
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return c, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return c, err
	}
	tr := tar.NewReader(stdout)
	var readErr error
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		p := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if p == "" {
			continue
		}
		f := &debFile{pkg: c.pkg, typ: h.Typeflag, mode: h.Mode, link: h.Linkname}
		switch h.Typeflag {
		case tar.TypeReg:
			if f.data, err = io.ReadAll(tr); err != nil {
				readErr = err
			}
		case tar.TypeLink: // a hard link: the same data as an earlier entry
			if o := t.files[strings.TrimPrefix(path.Clean("/"+h.Linkname), "/")]; o != nil && o.typ == tar.TypeReg {
				f.typ, f.data = tar.TypeReg, o.data
			} else {
				continue
			}
		case tar.TypeDir, tar.TypeSymlink:
		default:
			continue
		}
		if readErr != nil {
			break
		}
		t.add(p, f)
	}
	if readErr != nil {
		_, _ = io.Copy(io.Discard, stdout)
	}
	if err := cmd.Wait(); err != nil {
		return c, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %v: %s", deb, err, LastLines(stderr.String(), 3))
	}
	if readErr != nil {
		return c, fmt.Errorf("reading the files of %s: %w", deb, readErr)
	}
	return c, nil
}

// resolve follows the symlinks of p (in any component) inside the tree; it
// returns the final path and its file (nil for a directory the archives only
// imply, or a dangling link).
func (t *debTree) resolve(p string) (string, *debFile) {
	for hops := 0; hops < 40; hops++ {
		parts := strings.Split(p, "/")
		cur, followed := "", false
		for i, c := range parts {
			next := path.Join(cur, c)
			if f := t.files[next]; f != nil && f.typ == tar.TypeSymlink {
				target := f.link
				if !path.IsAbs(target) {
					target = path.Join("/", path.Dir(next), target)
				}
				p = strings.TrimPrefix(path.Join(append([]string{"/", target}, parts[i+1:]...)...), "/")
				followed = true
				break
			}
			cur = next
		}
		if !followed {
			return p, t.files[p]
		}
	}
	return "", nil
}

func (t *debTree) isDir(p string) bool {
	rp, f := t.resolve(p)
	return rp != "" && ((f != nil && f.typ == tar.TypeDir) || (f == nil && len(t.children[rp]) > 0))
}

// regular returns the file p (after symlinks) if it is a regular file.
func (t *debTree) regular(p string) *debFile {
	if _, f := t.resolve(p); f != nil && f.typ == tar.TypeReg {
		return f
	}
	return nil
}

func (t *debTree) list(dir string) []string {
	rp, _ := t.resolve(dir)
	names := make([]string, 0, len(t.children[rp]))
	for n := range t.children[rp] {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// walk calls fn with each regular file under dir (following symlinks; no
// __pycache__ or byte code), named relative to dir.
func (t *debTree) walk(dir string, fn func(rel string, f *debFile), skipped func(p string)) {
	var rec func(dir, rel string, depth int)
	rec = func(dir, rel string, depth int) {
		if depth > 32 {
			return
		}
		for _, n := range t.list(dir) {
			if n == "__pycache__" || strings.HasSuffix(n, ".pyc") || strings.HasSuffix(n, ".pyo") {
				continue
			}
			p, r := dir+"/"+n, path.Join(rel, n)
			if f := t.regular(p); f != nil {
				fn(r, f)
			} else if t.isDir(p) {
				rec(p, r, depth+1)
			} else if skipped != nil {
				skipped(p)
			}
		}
	}
	rec(dir, "", 0)
}

// A pyDist is one Python distribution found in the tree.
type pyDist struct {
	name, version string
	info          string // its egg-info or dist-info path in the tree
	meta          string // PKG-INFO or METADATA
	files         map[string]*debFile
	infoFiles     map[string][]byte // files kept for the wheel's dist-info
	debs          map[string]bool   // the packages holding its files
	requires      []string          // requires.txt before its first section
	conditional   map[string]bool   // projects requires.txt names only under a [section]
}

var (
	versionRE   = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*((a|b|rc)[0-9]+)?(\.post[0-9]+)?(\.dev[0-9]+)?$`)
	reqNameRE   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?`)
	debDepRE    = regexp.MustCompile(`^\s*([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9-]+)?\s*(?:\(\s*(>=|<=|>>|<<|=|>|<)\s*([^)\s]+)\s*\))?\s*(?:\[[^]]*\])?\s*(?:<[^>]*>\s*)*$`)
	cpythonSoRE = regexp.MustCompile(`\.cpython-3([0-9]+)[a-z]*-([a-z0-9_]+)-linux-gnu[a-z]*\.so$`)
)

func metaField(meta, key string) string {
	for _, l := range strings.Split(meta, "\n") {
		if l == "" {
			break
		}
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// convertDebs makes the wheels of the distributions the .debs install.
func convertDebs(ctx context.Context, debs []string, log func(string)) ([]distFile, error) {
	t := &debTree{files: map[string]*debFile{}, children: map[string]map[string]bool{}}
	controls := map[string]debControl{}
	for _, d := range debs {
		c, err := t.readDeb(ctx, d)
		if err != nil {
			return nil, err
		}
		controls[c.pkg] = c
	}
	var dists []*pyDist
	byProject := map[string]*pyDist{}
	claimed := map[string]bool{}
	for _, n := range t.list(distPackages) {
		if !strings.HasSuffix(n, ".egg-info") && !strings.HasSuffix(n, ".dist-info") {
			continue
		}
		d, err := readDist(t, n, log)
		if err != nil {
			return nil, err
		}
		if d == nil {
			continue
		}
		if o := byProject[normalizeProject(d.name)]; o != nil {
			log(fmt.Sprintf("python index: %s: %s and %s both install %s; keeping the first", distPackages, o.info, d.info, d.name))
			continue
		}
		byProject[normalizeProject(d.name)] = d
		dists = append(dists, d)
		claimed[path.Base(d.info)] = true
		for p := range d.files {
			claimed[strings.Split(p, "/")[0]] = true
		}
	}
	// The distributions each Debian package holds files of.
	pkgDists := map[string][]*pyDist{}
	for _, d := range dists {
		for pkg := range d.debs {
			pkgDists[pkg] = append(pkgDists[pkg], d)
		}
	}
	for _, c := range controls {
		if len(pkgDists[c.pkg]) == 0 {
			log(fmt.Sprintf("python index: %s installs no Python distribution under /%s; skipped", c.pkg, distPackages))
		}
	}
	var unclaimed []string
	for _, n := range t.list(distPackages) {
		if !claimed[n] && n != "__pycache__" {
			unclaimed = append(unclaimed, n)
		}
	}
	if len(unclaimed) > 0 {
		log(fmt.Sprintf("python index: left out (no distribution names them): %s", strings.Join(unclaimed, " ")))
	}
	var wheels []distFile
	for _, d := range dists {
		reqs := distRequirements(d, controls, pkgDists, byProject, log)
		w, err := makeWheel(t, d, reqs, controls)
		if err != nil {
			return nil, fmt.Errorf("the wheel of %s: %w", d.name, err)
		}
		wheels = append(wheels, w)
	}
	return wheels, nil
}

// readDist reads the distribution whose metadata is dist-packages/<info>.
func readDist(t *debTree, info string, log func(string)) (*pyDist, error) {
	dp := distPackages
	ip := dp + "/" + info
	base := strings.TrimSuffix(strings.TrimSuffix(info, ".egg-info"), ".dist-info")
	dirName, dirVersion, _ := strings.Cut(base, "-")
	dirVersion, _, _ = strings.Cut(dirVersion, "-") // Name-1.0-py3.11.egg-info
	d := &pyDist{info: ip, files: map[string]*debFile{}, infoFiles: map[string][]byte{}, debs: map[string]bool{}, conditional: map[string]bool{}}
	read := func(name string) (string, bool) {
		if f := t.regular(ip + "/" + name); f != nil {
			return string(f.data), true
		}
		return "", false
	}
	isDir := t.isDir(ip)
	switch {
	case !isDir && t.regular(ip) != nil: // a distutils PKG-INFO file
		f := t.regular(ip)
		d.meta = string(f.data)
		d.debs[f.pkg] = true
	case strings.HasSuffix(info, ".egg-info"):
		d.meta, _ = read("PKG-INFO")
	default:
		d.meta, _ = read("METADATA")
	}
	if d.meta == "" {
		log(fmt.Sprintf("python index: %s has no metadata; skipped", ip))
		return nil, nil
	}
	d.name = metaField(d.meta, "Name")
	if d.name == "" {
		d.name = dirName
	}
	d.version = dirVersion
	if !versionRE.MatchString(d.version) {
		d.version = metaField(d.meta, "Version")
	}
	if d.version == "" {
		return nil, fmt.Errorf("%s: no version", ip)
	}
	if isDir {
		t.walk(ip, func(rel string, f *debFile) {
			d.debs[f.pkg] = true
			switch rel {
			case "PKG-INFO", "METADATA", "RECORD", "WHEEL", "INSTALLER", "REQUESTED", "direct_url.json",
				"SOURCES.txt", "installed-files.txt", "dependency_links.txt", "requires.txt", "not-zip-safe", "zip-safe":
				return
			}
			d.infoFiles[rel] = f.data
		}, nil)
	}
	if req, ok := read("requires.txt"); ok {
		section := false
		for _, l := range strings.Split(req, "\n") {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			if strings.HasPrefix(l, "[") {
				section = true
				continue
			}
			if section {
				d.conditional[normalizeProject(reqNameRE.FindString(l))] = true
			} else {
				d.requires = append(d.requires, l)
			}
		}
	}

	// The top-level packages and modules of the distribution.
	var tops []string
	addFile := func(rel string) {
		if f := t.regular(dp + "/" + rel); f != nil {
			d.files[rel] = f
			d.debs[f.pkg] = true
		}
	}
	if s, ok := read("top_level.txt"); ok {
		tops = strings.Fields(s)
	} else if s, ok := read("RECORD"); ok {
		rows, _ := csv.NewReader(strings.NewReader(s)).ReadAll()
		for _, r := range rows {
			if len(r) == 0 {
				continue
			}
			p := path.Clean(r[0])
			if strings.HasPrefix(p, "../") || strings.HasPrefix(p, "/") || strings.HasPrefix(p, info+"/") ||
				strings.Contains("/"+p+"/", "/__pycache__/") || strings.HasSuffix(p, ".pyc") {
				continue
			}
			addFile(p)
		}
	} else if s, ok := read("installed-files.txt"); ok {
		for _, l := range strings.Split(s, "\n") {
			p := path.Join(info, strings.TrimSpace(l))
			if l == "" || strings.HasPrefix(p, "../") || strings.HasPrefix(p, info+"/") ||
				strings.Contains("/"+p+"/", "/__pycache__/") || strings.HasSuffix(p, ".pyc") {
				continue
			}
			addFile(p)
		}
	} else if s, ok := read("SOURCES.txt"); ok {
		seen := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			l = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(l), "src/"), "lib/")
			first, _, nested := strings.Cut(l, "/")
			top := strings.TrimSuffix(first, ".py")
			if top == "" || seen[top] || (!nested && !strings.HasSuffix(first, ".py")) {
				continue
			}
			seen[top] = true
			if t.isDir(dp+"/"+top) || t.regular(dp+"/"+top+".py") != nil {
				tops = append(tops, top)
			}
		}
	}
	if len(tops) == 0 && len(d.files) == 0 {
		for _, n := range []string{strings.ReplaceAll(normalizeProject(d.name), "-", "_"), d.name, dirName} {
			if t.isDir(dp+"/"+n) || t.regular(dp+"/"+n+".py") != nil {
				tops = []string{n}
				break
			}
		}
	}
	for _, top := range tops {
		if t.isDir(dp + "/" + top) {
			t.walk(dp+"/"+top, func(rel string, f *debFile) {
				d.files[top+"/"+rel] = f
				d.debs[f.pkg] = true
			}, func(p string) {
				log(fmt.Sprintf("python index: %s: left out %s (a link to a file no package given holds)", d.name, "/"+p))
			})
			continue
		}
		for _, n := range t.list(dp) {
			if n == top+".py" || (strings.HasPrefix(n, top+".") && strings.HasSuffix(n, ".so")) {
				addFile(n)
			}
		}
	}
	if len(d.files) == 0 {
		log(fmt.Sprintf("python index: %s (%s) has no files; skipped", d.name, ip))
		return nil, nil
	}
	return d, nil
}

// distRequirements returns the Requires-Dist values to add to the
// distribution's metadata: the unconditional requirements of requires.txt,
// and the .debs' Depends on packages holding distributions the index serves
// (Debian strips install_requires from the egg-info it installs).
func distRequirements(d *pyDist, controls map[string]debControl, pkgDists map[string][]*pyDist, byProject map[string]*pyDist, log func(string)) []string {
	self := normalizeProject(d.name)
	have := map[string]bool{}
	for _, l := range strings.Split(strings.SplitN(d.meta, "\n\n", 2)[0], "\n") {
		if v, ok := strings.CutPrefix(l, "Requires-Dist:"); ok {
			have[normalizeProject(reqNameRE.FindString(strings.TrimSpace(v)))] = true
		}
	}
	var reqs, unserved []string
	for _, r := range d.requires {
		n := normalizeProject(reqNameRE.FindString(r))
		if n == "" || have[n] {
			continue
		}
		have[n] = true
		reqs = append(reqs, r)
		if byProject[n] == nil {
			unserved = append(unserved, r)
		}
	}
	specs := map[string][]string{}
	var order []string
	var dropped []string
	pkgs := make([]string, 0, len(d.debs))
	for p := range d.debs {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	for _, pkg := range pkgs {
	clauses:
		for _, clause := range strings.Split(controls[pkg].depends, ",") {
			if strings.TrimSpace(clause) == "" {
				continue
			}
			alts := strings.Split(clause, "|")
			var target []*pyDist
			var spec string
			for _, alt := range alts {
				name, ver := parseDebDep(alt)
				if name == "python3" || strings.HasPrefix(name, "python3.") || name == "python3-minimal" {
					continue clauses // the interpreter satisfies it
				}
				if target == nil && len(pkgDists[name]) > 0 {
					target, spec = pkgDists[name], ver
				}
			}
			if target == nil {
				if name, _ := parseDebDep(alts[0]); strings.HasPrefix(name, "python3-") && controls[name].pkg == "" {
					dropped = append(dropped, strings.TrimSpace(clause))
				}
				continue
			}
			for _, td := range target {
				n := normalizeProject(td.name)
				if n == self || have[n] && specs[n] == nil {
					continue
				}
				if d.conditional[n] {
					dropped = append(dropped, strings.TrimSpace(clause)+" (upstream: only under a condition or extra)")
					continue
				}
				if specs[n] == nil {
					order = append(order, n)
					specs[n] = []string{}
					have[n] = true
				}
				if spec != "" && len(target) == 1 {
					specs[n] = append(specs[n], spec)
				}
			}
		}
	}
	for _, n := range order {
		reqs = append(reqs, byProject[n].name+strings.Join(specs[n], ","))
	}
	if len(dropped) > 0 {
		log(fmt.Sprintf("python index: %s: Debian dependencies not carried over: %s", d.name, strings.Join(dropped, "; ")))
	}
	if len(unserved) > 0 {
		log(fmt.Sprintf("python index: warning: %s requires %s, which the index does not serve", d.name, strings.Join(unserved, ", ")))
	}
	return reqs
}

// parseDebDep parses one alternative of a Depends clause, "name:any (>= 1:2.0-3)",
// into the package name and a PEP 440 specifier of the upstream version
// ("" when there is none or it does not translate).
func parseDebDep(alt string) (name, spec string) {
	m := debDepRE.FindStringSubmatch(alt)
	if m == nil {
		return strings.TrimSpace(alt), ""
	}
	name = m[1]
	op := map[string]string{">=": ">=", "<=": "<=", ">>": ">", "<<": "<", "=": "==", ">": ">=", "<": "<="}[m[2]]
	v := m[3]
	if i := strings.Index(v, ":"); i >= 0 {
		v = v[i+1:]
	}
	if i := strings.LastIndex(v, "-"); i >= 0 {
		v = v[:i]
	}
	if i := strings.IndexAny(v, "+~"); i >= 0 {
		v = v[:i]
	}
	if op == "" || !versionRE.MatchString(v) {
		return name, ""
	}
	return name, op + v
}

// wheelTag returns the wheel's tag: py3-none-any, or for a distribution with
// a compiled extension the CPython version and platform it was built for.
func wheelTag(d *pyDist, controls map[string]debControl) (tag string, pure bool) {
	debArch := map[string]string{"amd64": "x86_64", "arm64": "aarch64", "i386": "i686", "armhf": "armv7l",
		"ppc64el": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
	tripletArch := map[string]string{"x86_64": "x86_64", "aarch64": "aarch64", "i386": "i686",
		"powerpc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
	names := make([]string, 0, len(d.files))
	for p := range d.files {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		if m := cpythonSoRE.FindStringSubmatch(p); m != nil {
			arch := tripletArch[m[2]]
			if arch == "" {
				arch = debArch[controls[d.files[p].pkg].arch]
			}
			return fmt.Sprintf("cp3%s-cp3%s-linux_%s", m[1], m[1], arch), false
		}
	}
	for _, p := range names {
		if strings.HasSuffix(p, ".so") {
			arch := debArch[controls[d.files[p].pkg].arch]
			if strings.HasSuffix(p, ".abi3.so") {
				return "cp32-abi3-linux_" + arch, false
			}
			return "py3-none-linux_" + arch, false
		}
	}
	return "py3-none-any", true
}

// wheelMetadata is the distribution's metadata with the version of its
// wheel and the requirements added.
func wheelMetadata(meta, name, version string, reqs []string) string {
	header, body, hasBody := strings.Cut(strings.ReplaceAll(meta, "\r\n", "\n"), "\n\n")
	var out strings.Builder
	hasName, hasMetaVersion, hasVersion := false, false, false
	for _, l := range strings.Split(header, "\n") {
		switch {
		case l == "":
			continue
		case strings.HasPrefix(l, "Metadata-Version:"):
			hasMetaVersion = true
			if v := strings.TrimSpace(strings.TrimPrefix(l, "Metadata-Version:")); v == "1.0" || v == "1.1" {
				l = "Metadata-Version: 2.1"
			}
		case strings.HasPrefix(l, "Version:"):
			l, hasVersion = "Version: "+version, true
		case strings.HasPrefix(l, "Name:"):
			hasName = true
		}
		out.WriteString(l + "\n")
	}
	if !hasMetaVersion {
		s := out.String()
		out.Reset()
		out.WriteString("Metadata-Version: 2.1\n" + s)
	}
	if !hasName {
		out.WriteString("Name: " + name + "\n")
	}
	if !hasVersion {
		out.WriteString("Version: " + version + "\n")
	}
	for _, r := range reqs {
		out.WriteString("Requires-Dist: " + r + "\n")
	}
	if hasBody && strings.TrimSpace(body) != "" {
		out.WriteString("\n" + body)
	}
	return out.String()
}

func makeWheel(t *debTree, d *pyDist, reqs []string, controls map[string]debControl) (distFile, error) {
	tag, pure := wheelTag(d, controls)
	dist := strings.ReplaceAll(normalizeProject(d.name), "-", "_")
	info := dist + "-" + d.version + ".dist-info"
	wa := newWheelArchive(info)
	add := wa.add
	names := make([]string, 0, len(d.files))
	for p := range d.files {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		if err := add(p, d.files[p].data, d.files[p].mode); err != nil {
			return distFile{}, err
		}
	}
	if err := add(info+"/METADATA", []byte(wheelMetadata(d.meta, d.name, d.version, reqs)), 0o644); err != nil {
		return distFile{}, err
	}
	wheelFile := fmt.Sprintf("Wheel-Version: 1.0\nGenerator: ocbuild-sandbox (from Debian packages)\nRoot-Is-Purelib: %t\nTag: %s\n", pure, tag)
	if err := add(info+"/WHEEL", []byte(wheelFile), 0o644); err != nil {
		return distFile{}, err
	}
	extra := make([]string, 0, len(d.infoFiles))
	for p := range d.infoFiles {
		extra = append(extra, p)
	}
	sort.Strings(extra)
	for _, p := range extra {
		if err := add(info+"/"+p, d.infoFiles[p], 0o644); err != nil {
			return distFile{}, err
		}
	}
	data, err := wa.close()
	if err != nil {
		return distFile{}, err
	}
	return distFile{project: normalizeProject(d.name), filename: dist + "-" + d.version + "-" + tag + ".whl", data: data}, nil
}

func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

// saveWheels writes the wheels and their index file into dir, atomically.
func saveWheels(dir string, ws []distFile) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-")
	if err != nil {
		return err
	}
	var index strings.Builder
	for _, w := range ws {
		if err := os.WriteFile(filepath.Join(tmp, w.filename), w.data, 0o644); err != nil {
			os.RemoveAll(tmp)
			return err
		}
		fmt.Fprintf(&index, "%s %s\n", w.project, w.filename)
	}
	if err := os.WriteFile(filepath.Join(tmp, "index"), []byte(index.String()), 0o644); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if _, statErr := os.Stat(filepath.Join(dir, "index")); statErr == nil {
			return nil // another process saved them first
		}
		return err
	}
	return nil
}

func loadWheels(dir string) ([]distFile, error) {
	f, err := os.Open(filepath.Join(dir, "index"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ws []distFile
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		project, filename, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			return nil, errors.New("bad wheel index line " + sc.Text())
		}
		data, err := os.ReadFile(filepath.Join(dir, filename))
		if err != nil {
			return nil, err
		}
		ws = append(ws, distFile{project: project, filename: filename, data: data})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(ws) == 0 {
		return nil, errors.New("no wheels")
	}
	return ws, nil
}
