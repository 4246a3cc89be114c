package s2i

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// installScripts places assemble, run and save-artifacts in s2i's priority
// order (see the package comment) and sets g.imageDir, g.uploaded and
// g.res.Scripts.
// ImageScriptsDir is the directory in the image that a script not uploaded
// runs from: an image:// scriptsURL (sourceStrategy.scripts), else, when
// there is no scriptsURL, an image:// io.openshift.s2i.scripts-url label
// (OpenShift passes the label to s2i only then), else DefaultScriptsDir.
// Generate refuses a directory that is empty or not absolute.
func ImageScriptsDir(scriptsURL string, labels map[string]string) string {
	if d, ok := strings.CutPrefix(scriptsURL, "image://"); ok {
		return d
	}
	if scriptsURL == "" {
		if d, ok := strings.CutPrefix(labels[ScriptsURLLabel], "image://"); ok {
			return d
		}
	}
	return DefaultScriptsDir
}

func (g *gen) installScripts(ctx context.Context) error {
	b := g.r.Builder
	g.uploaded = map[string]bool{}
	origin := map[string]Script{}

	// The image's scripts directory. OpenShift's builder passes the
	// builder's io.openshift.s2i.scripts-url label to s2i only when the
	// BuildConfig names no scripts.
	var labelURL string
	if g.r.ScriptsURL == "" {
		labelURL = b.Labels[ScriptsURLLabel]
		if labelURL == "" && b.Labels[DeprecatedScriptsURLLabel] != "" {
			g.warnf("The builder image %s has only the deprecated label %s=%s, which OpenShift does not read; its scripts are looked for in %s",
				b.Image, DeprecatedScriptsURLLabel, b.Labels[DeprecatedScriptsURLLabel], DefaultScriptsDir)
		}
	}
	g.imageDir = ImageScriptsDir(g.r.ScriptsURL, b.Labels)
	if g.imageDir == "" || !path.IsAbs(g.imageDir) {
		return failf(ReasonInstallScriptsFailed, "scripts URL %q names no absolute directory in the image", firstNonEmpty(g.r.ScriptsURL, labelURL))
	}
	if err := checkPath("scripts directory", g.imageDir); err != nil {
		return err
	}

	// A downloadable label (http, https, file) is fetched first, as s2i's
	// Prepare installs the image's scripts before it has the source; the
	// source's scripts then replace what it got. Its failures are not
	// errors (the scripts are optional there).
	if labelURL != "" && !strings.HasPrefix(labelURL, "image://") {
		for _, name := range scriptNames {
			u, err := g.download(ctx, labelURL, name)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				continue
			}
			g.uploaded[name] = true
			origin[name] = Script{Name: name, Origin: FromURL, URL: u}
		}
	}

	switch {
	case strings.HasPrefix(g.r.ScriptsURL, "image://"):
		// Everything from the image; the source's .s2i/bin is left in
		// upload/src, unused.
	case g.r.ScriptsURL != "":
		var causes []string
		for _, name := range scriptNames {
			u, err := g.download(ctx, g.r.ScriptsURL, name)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				causes = append(causes, err.Error())
				g.warnf("Could not download the S2I script %q: %v", name, err)
				continue
			}
			g.uploaded[name] = true
			origin[name] = Script{Name: name, Origin: FromURL, URL: u}
			g.urlScripts = append(g.urlScripts, name)
		}
		if len(causes) == len(scriptNames) {
			return &Error{Reason: ReasonScriptsFetchFailed, Message: reasonMessages[ReasonScriptsFetchFailed],
				Err: fmt.Errorf("could not download any scripts from URL %v", g.r.ScriptsURL)}
		}
		if err := g.sourceScripts(origin, true); err != nil {
			return err
		}
	default:
		if err := g.sourceScripts(origin, false); err != nil {
			return err
		}
	}

	if len(g.urlScripts) > 0 {
		g.warnf("Using S2I scripts downloaded from %s: %s", g.r.ScriptsURL, strings.Join(g.urlScripts, ", "))
	}
	if len(g.srcScripts) > 0 {
		g.warnf("Using S2I scripts from the source's .s2i/bin: %s", strings.Join(g.srcScripts, ", "))
	}
	for _, name := range scriptNames {
		s, ok := origin[name]
		if !ok {
			s = Script{Name: name, Origin: FromImage}
			if g.r.ScriptsURL != "" && !strings.HasPrefix(g.r.ScriptsURL, "image://") && name != SaveArtifacts {
				g.warnf("The S2I script %q is neither at %s nor in the source's .s2i/bin: using %s from the builder image (the build fails if the image has none)",
					name, g.r.ScriptsURL, g.scriptPath(name))
			}
		}
		s.Path = g.scriptPath(name)
		g.res.Scripts = append(g.res.Scripts, s)
	}
	return nil
}

// sourceScripts moves the source's .s2i/bin/<name> (or the deprecated
// .sti/bin/<name>) into upload/scripts for each script no URL provided, as
// s2i's source script handler does. afterURL tells whether a ScriptsURL was
// tried first (its scripts win).
func (g *gen) sourceScripts(origin map[string]Script, afterURL bool) error {
	for _, name := range scriptNames {
		if afterURL && g.uploaded[name] {
			continue
		}
		rel := ".s2i/bin/" + name
		p := filepath.Join(g.srcDir(), filepath.FromSlash(rel))
		fi, err := os.Lstat(p)
		if os.IsNotExist(err) {
			rel = ".sti/bin/" + name
			p = filepath.Join(g.srcDir(), filepath.FromSlash(rel))
			if fi, err = os.Lstat(p); err == nil {
				g.warnf("DEPRECATED: Use .s2i/bin instead of .sti/bin")
			}
		}
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return fail(ReasonInstallScriptsFailed, err)
		}
		if fi.IsDir() {
			return failf(ReasonInstallScriptsFailed, "the source's %s is a directory, not a script", rel)
		}
		dst := filepath.Join(g.scriptsDir(), name)
		_ = os.Remove(dst) // a label's download, replaced
		if err := os.Rename(p, dst); err != nil {
			return fail(ReasonInstallScriptsFailed, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			// Moved as is (never followed); it must resolve inside the image.
			g.warnf("The source's %s is a symlink (to %s): it is uploaded as a symlink", rel, readlink(dst))
		} else if err := os.Chmod(dst, 0o755); err != nil {
			return fail(ReasonInstallScriptsFailed, err)
		}
		g.uploaded[name] = true
		origin[name] = Script{Name: name, Origin: FromSource, URL: "<source-dir>/" + rel}
		g.srcScripts = append(g.srcScripts, name)
	}
	return nil
}

func readlink(p string) string {
	s, _ := os.Readlink(p)
	return s
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// download fetches <base>/<name> into upload/scripts/<name> (mode 0755) and
// returns the URL it fetched. s2i reads http and https with GET (200 and 201
// are success) and file URLs from the local filesystem; other schemes have
// no handler.
func (g *gen) download(ctx context.Context, base, name string) (string, error) {
	raw := strings.TrimSuffix(base, "/") + "/" + name
	u, err := url.ParseRequestURI(raw)
	if err != nil {
		return raw, fmt.Errorf("invalid script url %q: %v", base, err)
	}
	var data []byte
	switch u.Scheme {
	case "http", "https":
		fetch := g.r.Fetch
		if fetch == nil {
			fetch = httpFetch
		}
		data, err = fetch(ctx, u.String())
	case "file":
		// s2i joins the host in too: file://./dir is a relative path.
		data, err = os.ReadFile(filepath.Clean(filepath.Join(u.Host, filepath.FromSlash(u.Path))))
	default:
		err = fmt.Errorf("no URL handler for %s", u.String())
	}
	if err != nil {
		return u.String(), err
	}
	dst := filepath.Join(g.scriptsDir(), name)
	_ = os.Remove(dst)
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		return u.String(), err
	}
	return u.String(), os.Chmod(dst, 0o755)
}

// httpFetch is the default Fetch: a GET with http.DefaultClient.
func httpFetch(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("failed to retrieve %s, response code %d", u, resp.StatusCode)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("failed to retrieve %s", u), err)
	}
	return data, nil
}
