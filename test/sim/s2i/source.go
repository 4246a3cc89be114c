package s2i

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// copySource copies SourceDir to upload/src as s2i's file downloader does
// with OpenShift's KeepSymlinks: regular files (mode kept), directories and
// symlinks (as symlinks, never followed); paths listed in the source's
// .s2iignore are left out. Other file types (sockets, devices, fifos) are
// skipped with a warning. Nothing is excluded by name: .git is copied when
// SourceDir has it (OpenShift sets no exclude pattern).
func (g *gen) copySource(ctx context.Context) error {
	if g.r.SourceDir == "" {
		return nil
	}
	root, err := filepath.Abs(g.r.SourceDir)
	if err == nil {
		// The source directory itself may be a symlink (the caller's path);
		// nothing under it is followed.
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return fail(ReasonFetchSourceFailed, err)
	}
	if fi, err := os.Stat(root); err != nil {
		return fail(ReasonFetchSourceFailed, err)
	} else if !fi.IsDir() {
		return failf(ReasonFetchSourceFailed, "source %s is not a directory", g.r.SourceDir)
	}
	dst := g.srcDir()
	if absDst, err := filepath.Abs(dst); err == nil {
		if real, err := filepath.EvalSymlinks(absDst); err == nil {
			absDst = real
		}
		if within(root, absDst) {
			return failf(ReasonFetchSourceFailed, "input source directory contains the target directory for the build, check that your Dockerfile output path does not reside within your input source path: recursive copy requested, source directory %q contains the target directory %q", g.r.SourceDir, dst)
		}
	}
	ignored, err := ignoreList(root)
	if err != nil {
		return fail(ReasonFetchSourceFailed, err)
	}

	type dirMeta struct {
		path string
		mode fs.FileMode
		mt   time.Time
	}
	var dirs []dirMeta
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if ignored[p] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch m := fi.Mode(); {
		case m.IsDir():
			if rel != "." {
				if err := os.Mkdir(target, 0o700); err != nil {
					return err
				}
			}
			dirs = append(dirs, dirMeta{target, m, fi.ModTime()})
		case m&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case m.IsRegular():
			return copyFile(p, target, fi)
		default:
			g.warnf("Skipping %s: not a regular file, directory or symlink (%s)", filepath.ToSlash(rel), m.Type())
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fail(ReasonFetchSourceFailed, err)
	}
	// Directory modes and times last (children first), so a read-only
	// directory is still filled.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i].path, fileMode(dirs[i].mode)); err != nil {
			return fail(ReasonFetchSourceFailed, err)
		}
		_ = os.Chtimes(dirs[i].path, dirs[i].mt, dirs[i].mt)
	}
	return nil
}

func fileMode(m fs.FileMode) fs.FileMode {
	return m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

func copyFile(src, dst string, fi fs.FileInfo) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Chmod(dst, fileMode(fi.Mode())); err != nil {
		return err
	}
	return os.Chtimes(dst, fi.ModTime(), fi.ModTime())
}

// within reports whether p is dir or under it.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// ignoreList reads root/.s2iignore as s2i does (its .dockerignore-like
// rules): one glob a line, relative to root and not recursive; blank lines
// and lines starting with # skipped; a line starting with ! takes the
// paths it matches back out of those listed so far. Matches outside root
// are not taken.
func ignoreList(root string) (map[string]bool, error) {
	data, err := os.ReadFile(filepath.Join(root, ".s2iignore"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		spec := strings.Trim(sc.Text(), " ")
		if spec == "" || strings.HasPrefix(spec, "#") {
			continue
		}
		if keep, ok := strings.CutPrefix(spec, "!"); ok {
			pat := filepath.Join(root, keep)
			for p := range out {
				if m, _ := filepath.Match(pat, p); m {
					delete(out, p)
				}
			}
			continue
		}
		list, err := filepath.Glob(filepath.Join(root, spec))
		if err != nil {
			continue // s2i skips a bad pattern
		}
		for _, p := range list {
			if p != root && within(root, p) {
				out[p] = true
			}
		}
	}
	return out, sc.Err()
}

// envName is what an environment variable's name may be in the ENV
// instruction written here (OpenShift's own rule for build env names).
var envName = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)

// environment builds the ENV list as s2i does: the source's
// .s2i/environment (read from the uploaded copy, so after .s2iignore), then
// the build environment; all pairs go into one ENV instruction in that
// order, so a later one wins on the same name. s2i's parsing: lines starting
// with # are comments; NAME=VALUE with both sides trimmed of spaces; other
// lines (blank ones included) are dropped. A name the ENV instruction could
// not carry is dropped with a warning (s2i would write a broken Dockerfile).
func (g *gen) environment() error {
	data, err := os.ReadFile(filepath.Join(g.srcDir(), ".s2i", "environment"))
	switch {
	case err == nil:
		sc := bufio.NewScanner(bytes.NewReader(data))
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			if strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok || k == "" {
				continue
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !envName.MatchString(k) || strings.ContainsRune(v, 0) {
				g.warnf("Ignoring line %d of .s2i/environment: %q is not a valid environment variable", n, line)
				continue
			}
			g.env = append(g.env, KV{k, v})
		}
		if err := sc.Err(); err != nil {
			return fail(ReasonGenericS2IBuildFailed, fmt.Errorf("reading .s2i/environment: %w", err))
		}
	case os.IsNotExist(err):
	default:
		return fail(ReasonGenericS2IBuildFailed, fmt.Errorf("unable to read custom environment file: %w", err))
	}
	for _, e := range g.r.Env {
		if !envName.MatchString(e.Name) {
			return failf(ReasonDockerfileCreate, "invalid environment variable name %q", e.Name)
		}
		if strings.ContainsRune(e.Value, 0) {
			return failf(ReasonDockerfileCreate, "environment variable %s contains a NUL character", e.Name)
		}
		g.env = append(g.env, e)
	}
	return nil
}
