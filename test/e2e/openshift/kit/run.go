package kit

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pull reads the image ref (plain-http registry) with opts.
func pull(ctx context.Context, ref string, opts ...remote.Option) (v1.Image, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(r, append([]remote.Option{remote.WithContext(ctx)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return img, nil
}

// Unpack writes the flattened root filesystem of ref (plain-http registry)
// into dir and returns the image's configuration. Every entry must stay
// inside dir: a path or hard link that leaves it is an error; symbolic
// links are written as they are (they are resolved inside the image's root
// only when something runs chrooted).
func Unpack(ctx context.Context, ref, dir string, opts ...remote.Option) (*v1.ConfigFile, error) {
	img, err := pull(ctx, ref, opts...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", ref, err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return cf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("unpacking %s: %w", ref, err)
		}
		target, err := inside(dir, h.Name)
		if err != nil {
			return nil, err
		}
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return nil, err
			}
			_ = os.Chmod(target, mode)
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return nil, err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return nil, err
			}
			_ = os.Remove(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				return nil, err
			}
		case tar.TypeLink:
			src, err := inside(dir, h.Linkname)
			if err != nil {
				return nil, err
			}
			_ = os.Remove(target)
			if err := os.Link(src, target); err != nil {
				return nil, err
			}
		}
		_ = os.Lchown(target, h.Uid, h.Gid)
	}
}

func inside(dir, p string) (string, error) {
	clean := path.Clean("/" + p)
	if clean == "/" {
		return dir, nil
	}
	target := filepath.Join(dir, filepath.FromSlash(clean))
	if !strings.HasPrefix(target, dir+string(filepath.Separator)) {
		return "", fmt.Errorf("image entry %q leaves the root filesystem", p)
	}
	return target, nil
}

// Start runs the entrypoint and command of an image's configuration c
// chrooted into its unpacked root filesystem rootfs (Unpack), as the
// image's user, in its working directory, with its environment plus env:
// enough for a static binary, without a container runtime (the sandbox has
// none). It needs root.
func Start(ctx context.Context, c v1.Config, rootfs string, env []string, out io.Writer) (*exec.Cmd, error) {
	argv := append(append([]string(nil), c.Entrypoint...), c.Cmd...)
	if len(argv) == 0 {
		return nil, errors.New("the image has neither an entrypoint nor a command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Path = argv[0]
	cmd.Env = append(append([]string(nil), c.Env...), env...)
	cmd.Dir = "/"
	if c.WorkingDir != "" {
		cmd.Dir = c.WorkingDir
	}
	cred, err := credential(c.User)
	if err != nil {
		return nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: rootfs, Credential: cred}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	return cmd, nil
}

// credential reads a numeric USER (uid[:gid]); names would need the image's
// /etc/passwd, which a FROM scratch image has not.
func credential(user string) (*syscall.Credential, error) {
	if user == "" {
		return nil, nil
	}
	u, g, _ := strings.Cut(user, ":")
	uid, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("image user %q is not numeric", user)
	}
	gid := uint64(0)
	if g != "" {
		if gid, err = strconv.ParseUint(g, 10, 32); err != nil {
			return nil, fmt.Errorf("image group %q is not numeric", user)
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// Serve runs a web server image (Unpack + Start with PORT set to a free
// port), GETs path once it answers and stops it. It returns the response
// body and what the server printed.
func Serve(ctx context.Context, ref, urlPath string) (body, output string, err error) {
	rootfs, err := os.MkdirTemp("", "ocbuild-run-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(rootfs)
	// The image's / is readable by its (non-root) user.
	if err := os.Chmod(rootfs, 0o755); err != nil {
		return "", "", err
	}
	cf, err := Unpack(ctx, ref, rootfs)
	if err != nil {
		return "", "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var printed strings.Builder
	w := &lockedBuilder{b: &printed}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd, err := Start(rctx, cf.Config, rootfs, []string{"PORT=" + strconv.Itoa(port)}, w)
	if err != nil {
		return "", "", fmt.Errorf("running %s: %w", ref, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cancel()
		<-exited
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, urlPath)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b), w.String(), rerr
		}
		select {
		case err := <-exited:
			exited <- err
			return "", w.String(), fmt.Errorf("the image's entrypoint exited before it answered (%v): %s", err, w.String())
		case <-deadline:
			return "", w.String(), fmt.Errorf("no answer on %s within 30s: %s", url, w.String())
		case <-ctx.Done():
			return "", w.String(), ctx.Err()
		case <-tick.C:
		}
	}
}

// lockedBuilder collects a process's output safely while it runs.
type lockedBuilder struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ReadFile returns the content of the regular file p in ref's flattened
// root filesystem.
func ReadFile(ctx context.Context, ref, p string, opts ...remote.Option) ([]byte, error) {
	img, err := pull(ctx, ref, opts...)
	if err != nil {
		return nil, err
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	want := strings.TrimPrefix(path.Clean("/"+p), "/")
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s has no file %s", ref, p)
		}
		if err != nil {
			return nil, err
		}
		if strings.TrimPrefix(path.Clean("/"+h.Name), "/") == want && h.Typeflag == tar.TypeReg {
			return io.ReadAll(tr)
		}
	}
}

// ByDigest is ref's repository at digest (ref unchanged if it does not parse).
func ByDigest(ref, digest string) string {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return ref
	}
	return r.Context().Name() + "@" + digest
}

// Copy copies the image src (plain-http registry, anonymous) to dst with
// dstOpts (e.g. credentials).
func Copy(ctx context.Context, src, dst string, dstOpts ...remote.Option) error {
	img, err := pull(ctx, src)
	if err != nil {
		return err
	}
	d, err := name.ParseReference(dst, name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.Write(d, img, append([]remote.Option{remote.WithContext(ctx)}, dstOpts...)...); err != nil {
		return fmt.Errorf("pushing %s: %w", dst, err)
	}
	return nil
}
