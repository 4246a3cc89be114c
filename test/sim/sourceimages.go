package sim

// Image sources (spec.source.images): before the build, OpenShift's builder
// copies paths out of other images into the context directory (the
// extract-image-content step). The simulator reads the image from the
// registry with go-containerregistry and copies the paths out of its
// flattened filesystem. Symlinks inside the image are resolved as in a
// chroot (an absolute target or ".." never leaves the image root); nothing
// is written through a symlink, so neither the image nor the copied files
// can reach outside the context directory.

import (
	"archive/tar"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	buildv1 "github.com/openshift/api/build/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ocbuild/ocbuild/test/sandbox"
)

// maxSymlinkHops bounds symlink resolution, as the kernel's ELOOP does.
const maxSymlinkHops = 40

// extractSourceImages copies the paths of every spec.source.images entry
// (references already resolved to DockerImage pull specs) into ctxDir.
func (e *executor) extractSourceImages(ctx context.Context, ctxDir string) error {
	for _, src := range e.b.Spec.Source.Images {
		if src.From.Kind != "DockerImage" {
			return fmt.Errorf("image source %s %s was not resolved", src.From.Kind, src.From.Name)
		}
		start := time.Now()
		e.logf("Extracting image content from %s ...", src.From.Name)
		img, err := e.pullSourceImage(ctx, src)
		if err != nil {
			return err
		}
		var paths []imagePath
		for _, p := range src.Paths {
			dest := filepath.Join(ctxDir, filepath.FromSlash(path.Clean("/"+p.DestinationDir)))
			if !within(ctxDir, dest) {
				return fmt.Errorf("destinationDir %q leaves the context directory", p.DestinationDir)
			}
			paths = append(paths, imagePath{source: p.SourcePath, dest: dest})
		}
		if err := copyFromImage(img, ctxDir, paths, e.log); err != nil {
			return fmt.Errorf("extracting image content from %s: %w", src.From.Name, err)
		}
		e.c.logf("build %s/%s: extracted %d path(s) of %s in %s", e.key.Namespace, e.key.Name, len(paths), src.From.Name, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// pullSourceImage reads an image source from its registry: the sandbox
// registry (also as the integrated registry and the mirrors) over plain
// http, the further plain-http registries with the source's pull secret,
// anything else as it is.
func (e *executor) pullSourceImage(ctx context.Context, src buildv1.ImageSource) (v1.Image, error) {
	ref, err := parseRef(src.From.Name, false)
	if err != nil {
		return nil, fmt.Errorf("image source %q: %w", src.From.Name, err)
	}
	host := ref.Context().RegistryStr()
	switch {
	case host == e.c.o.Registry || host == InternalRegistry || slices.Contains(MirroredRegistries, host) || host == name.DefaultRegistry:
		m, err := MirrorOf(e.c.o.Registry, src.From.Name)
		if err != nil {
			return nil, err
		}
		if ref, err = parseRef(m, true); err != nil {
			return nil, err
		}
	case slices.Contains(e.c.o.InsecureRegistries, host):
		if ref, err = parseRef(src.From.Name, true); err != nil {
			return nil, err
		}
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"})}
	if ps := src.PullSecret; ps != nil && ps.Name != "" {
		s, err := e.c.kube.CoreV1().Secrets(e.b.Namespace).Get(ctx, ps.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("reading pull secret %q: %w", ps.Name, err)
		}
		auths, err := sandbox.RegistryAuths(s.Data)
		if err != nil {
			return nil, fmt.Errorf("pull secret %q: %w", ps.Name, err)
		}
		opts = append(opts, remote.WithAuthFromKeychain(secretKeychain(auths)))
	}
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("pulling image %s: %w", src.From.Name, err)
	}
	return img, nil
}

// secretKeychain serves the credentials of a docker config's auths.
type secretKeychain map[string]json.RawMessage

func (k secretKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	raw, ok := k[r.RegistryStr()]
	if !ok {
		return authn.Anonymous, nil
	}
	var a struct{ Username, Password, Auth string }
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", r.RegistryStr(), err)
	}
	if a.Username == "" && a.Auth != "" {
		dec, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", r.RegistryStr(), err)
		}
		a.Username, a.Password, _ = strings.Cut(string(dec), ":")
	}
	return authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password}), nil
}

// imagePath is one path to copy: source in the image, dest the directory
// on the host (inside the context) it is copied into.
type imagePath struct {
	source string
	dest   string
}

// copyFromImage copies each path out of img's flattened filesystem into
// its dest, which must lie inside root. A source ending in "/." copies the
// directory's contents, any other source the file or directory itself (as
// docker cp does). A source that does not exist in the image is an error.
func copyFromImage(img v1.Image, root string, paths []imagePath, log func(string)) error {
	// First pass: the image's symlinks, to resolve the sources in the image.
	links := map[string]string{}
	if err := walkImage(img, func(h *tar.Header, _ io.Reader) error {
		if h.Typeflag == tar.TypeSymlink {
			links[imageEntryName(h.Name)] = h.Linkname
		}
		return nil
	}); err != nil {
		return err
	}
	type mapping struct {
		real     string // the source resolved in the image ("" is the root)
		base     string // the name it gets in dest ("" for contents)
		dest     string
		source   string
		matched  bool
		contents bool
	}
	var maps []*mapping
	for _, p := range paths {
		src := p.source
		contents := strings.HasSuffix(src, "/.") || src == "." || path.Clean("/"+src) == "/"
		clean := path.Clean("/" + src)
		real, err := resolveInImage(links, clean)
		if err != nil {
			return fmt.Errorf("source path %q: %w", src, err)
		}
		m := &mapping{real: real, dest: p.dest, source: src, contents: contents}
		if !contents {
			m.base = path.Base(clean)
		}
		maps = append(maps, m)
	}
	// Second pass: copy the entries at or below each resolved source.
	written := map[string]string{} // image path → host path, for hard links
	err := walkImage(img, func(h *tar.Header, r io.Reader) error {
		n := imageEntryName(h.Name)
		first := "" // a file already written from this entry: its body is read
		for _, m := range maps {
			rel, ok := below(n, m.real)
			if !ok {
				continue
			}
			out := m.dest
			if m.base != "" {
				out = filepath.Join(out, m.base)
			}
			if !m.matched {
				log(fmt.Sprintf("Copying %q from the image to %q", m.source, out))
				m.matched = true
			}
			if rel != "" {
				out = filepath.Join(out, filepath.FromSlash(rel))
			} else if m.contents && h.Typeflag != tar.TypeDir {
				return fmt.Errorf("source path %q is not a directory", m.source)
			}
			body := r
			if first != "" && h.Typeflag == tar.TypeReg {
				f, err := os.Open(first)
				if err != nil {
					return err
				}
				defer f.Close()
				body = f
			}
			if err := writeEntry(root, out, h, body, written); err != nil {
				return err
			}
			written[n] = out
			if first == "" {
				first = out
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range maps {
		if !m.matched {
			return fmt.Errorf("source path %q: no such file or directory in the image", m.source)
		}
	}
	return nil
}

// walkImage calls fn for every entry of img's flattened filesystem.
func walkImage(img v1.Image, fn func(*tar.Header, io.Reader) error) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the image's layers: %w", err)
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}

// imageEntryName is a tar entry's path relative to the image root ("" is
// the root), cleaned.
func imageEntryName(n string) string {
	return strings.TrimPrefix(path.Clean("/"+n), "/")
}

// below reports whether n is p or inside it, with n's path relative to p.
func below(n, p string) (string, bool) {
	switch {
	case p == "":
		return n, true
	case n == p:
		return "", true
	case strings.HasPrefix(n, p+"/"):
		return n[len(p)+1:], true
	}
	return "", false
}

// resolveInImage resolves the symlinks of the absolute image path p as a
// chroot into the image would: absolute targets start again at the image
// root, ".." stops at it. The result is relative to the root.
func resolveInImage(links map[string]string, p string) (string, error) {
	todo := strings.Split(strings.Trim(p, "/"), "/")
	var done []string
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := strings.Join(append(done, c), "/")
		target, ok := links[cur]
		if !ok {
			done = append(done, c)
			continue
		}
		if hops++; hops > maxSymlinkHops {
			return "", fmt.Errorf("too many levels of symbolic links")
		}
		if strings.HasPrefix(target, "/") {
			done = nil
		}
		todo = append(strings.Split(strings.Trim(target, "/"), "/"), todo...)
	}
	return strings.Join(done, "/"), nil
}

// writeEntry writes one tar entry at out (inside root): directories,
// regular files, symlinks (written as they are, never followed) and hard
// links to files already written. Other types are skipped.
func writeEntry(root, out string, h *tar.Header, r io.Reader, written map[string]string) error {
	if !within(root, out) {
		return fmt.Errorf("%s leaves the context directory", out)
	}
	if err := ensureDir(root, filepath.Dir(out)); err != nil {
		return err
	}
	mode := os.FileMode(h.Mode) & os.ModePerm
	switch h.Typeflag {
	case tar.TypeDir:
		return ensureDir(root, out)
	case tar.TypeReg:
		if err := removeIfLink(out); err != nil {
			return err
		}
		f, err := os.OpenFile(out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|syscall.O_NOFOLLOW, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", out, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Chmod(out, mode) // not narrowed by the umask
	case tar.TypeSymlink:
		if err := os.RemoveAll(out); err != nil {
			return err
		}
		return os.Symlink(h.Linkname, out)
	case tar.TypeLink:
		target, ok := written[imageEntryName(h.Linkname)]
		if !ok {
			return nil // its target is not among the copied files
		}
		if err := os.RemoveAll(out); err != nil {
			return err
		}
		return os.Link(target, out)
	}
	return nil
}

// ensureDir creates dir (inside root) and its parents, refusing any
// existing component that is a symlink or not a directory.
func ensureDir(root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil || !within(root, dir) {
		return fmt.Errorf("%s leaves the context directory", dir)
	}
	cur := root
	for _, c := range strings.Split(rel, string(filepath.Separator)) {
		if c == "." || c == "" {
			continue
		}
		cur = filepath.Join(cur, c)
		fi, err := os.Lstat(cur)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := os.Mkdir(cur, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case fi.Mode()&os.ModeSymlink != 0:
			return fmt.Errorf("%s is a symlink: not writing through it", cur)
		case !fi.IsDir():
			return fmt.Errorf("%s exists and is not a directory", cur)
		}
	}
	return nil
}

// removeIfLink removes p if it is a symlink, so that a file written there
// replaces the link instead of following it.
func removeIfLink(p string) error {
	fi, err := os.Lstat(p)
	if err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return os.Remove(p)
	}
	return nil
}
