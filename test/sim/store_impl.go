package sim

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// NewLogs returns an in-memory Logs store.
func NewLogs() Logs { return &memLogs{m: map[Key]*logBuf{}} }

type memLogs struct {
	mu sync.Mutex
	m  map[Key]*logBuf
}

type logBuf struct {
	lines  []Line
	closed bool
	ch     chan struct{} // closed at the next Append or Close
}

func (l *memLogs) buf(k Key) *logBuf {
	b := l.m[k]
	if b == nil {
		b = &logBuf{ch: make(chan struct{})}
		l.m[k] = b
	}
	return b
}

// Append adds a line; lines appended after Close are dropped (a builder
// killed by a cancel may still print while it dies).
func (l *memLogs) Append(k Key, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf(k)
	if b.closed {
		return
	}
	now := time.Now()
	if n := len(b.lines); n > 0 && now.Before(b.lines[n-1].Time) {
		now = b.lines[n-1].Time
	}
	b.lines = append(b.lines, Line{Time: now, Text: line})
	close(b.ch)
	b.ch = make(chan struct{})
}

func (l *memLogs) Close(k Key) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf(k)
	if b.closed {
		return
	}
	b.closed = true
	close(b.ch)
}

func (l *memLogs) Read(k Key, since time.Time) ([]Line, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[k]
	if b == nil {
		return nil, false
	}
	i := 0
	if !since.IsZero() {
		i = sort.Search(len(b.lines), func(i int) bool { return !b.lines[i].Time.Before(since) })
	}
	out := make([]Line, len(b.lines)-i)
	copy(out, b.lines[i:])
	return out, b.closed
}

func (l *memLogs) Changed(k Key) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf(k)
	if b.closed {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return b.ch
}

func (l *memLogs) Delete(k Key) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.m[k]; b != nil {
		if !b.closed {
			close(b.ch)
		}
		delete(l.m, k)
	}
}

// ExtractFailedMessage is the builder's message for a binary upload it cannot
// unpack (openshift/builder, bsdtar -x -o -m -f -).
const ExtractFailedMessage = "unable to extract binary build input, must be a zip, tar, or gzipped tar, or specified as a file"

// NewSources returns a Sources that extracts uploads under dir (created if
// missing), one fresh directory per delivery.
func NewSources(dir string) Sources {
	return &dirSources{dir: dir, slots: map[Key]*sourceSlot{}}
}

type dirSources struct {
	dir   string
	mu    sync.Mutex
	slots map[Key]*sourceSlot
}

type sourceSlot struct {
	delivered bool
	ready     chan struct{} // closed once dir or err is set
	taken     chan struct{} // closed once Await returned the result
	takeOnce  sync.Once
	released  chan struct{} // closed by Release (the build ended)
	relOnce   sync.Once
	dir       string
	err       error
}

func (s *dirSources) slot(k Key) *sourceSlot {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.slots[k]
	if sl == nil {
		sl = &sourceSlot{ready: make(chan struct{}), taken: make(chan struct{}), released: make(chan struct{})}
		s.slots[k] = sl
	}
	return sl
}

func (s *dirSources) Deliver(ctx context.Context, k Key, asFile string, body io.Reader) error {
	sl := s.slot(k)
	s.mu.Lock()
	if sl.delivered {
		s.mu.Unlock()
		return fmt.Errorf("the source of build %s/%s was already delivered", k.Namespace, k.Name)
	}
	sl.delivered = true
	s.mu.Unlock()
	select {
	case <-sl.released:
		return fmt.Errorf("build %s/%s has ended", k.Namespace, k.Name)
	default:
	}

	dir, err := s.newDir(k)
	if err == nil {
		err = extractUpload(dir, asFile, body)
		if err != nil {
			_ = os.RemoveAll(dir)
			dir = ""
		}
	}
	s.mu.Lock()
	sl.dir, sl.err = dir, err
	close(sl.ready)
	s.mu.Unlock()
	select {
	case <-sl.taken:
	case <-sl.released:
		// The build ended (cancelled, failed, deleted) before reading it.
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("build %s/%s ended before it read its source", k.Namespace, k.Name)
	case <-ctx.Done():
		// Nobody took it (the build was cancelled or never ran): forget it.
		s.mu.Lock()
		if s.slots[k] == sl {
			delete(s.slots, k)
		}
		s.mu.Unlock()
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
		if err != nil {
			return err
		}
		return ctx.Err()
	}
	if err != nil {
		// The executor fails the build with the extract error; answer once
		// it has (so the caller sees the build Failed, not still Running).
		select {
		case <-sl.released:
		case <-ctx.Done():
		}
		return err
	}
	return nil
}

func (s *dirSources) Await(ctx context.Context, k Key) (string, error) {
	sl := s.slot(k)
	select {
	case <-sl.ready:
		sl.takeOnce.Do(func() { close(sl.taken) })
		return sl.dir, sl.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Release ends the build's use of its upload (called by the executor when
// the build ends): the directory is removed, and a Deliver still waiting, or
// arriving later, fails at once.
func (s *dirSources) Release(k Key) {
	sl := s.slot(k)
	sl.relOnce.Do(func() { close(sl.released) })
	select {
	case <-sl.ready:
		if sl.dir != "" {
			_ = os.RemoveAll(sl.dir)
		}
	default:
	}
}

// Forget drops everything about the build (it was deleted).
func (s *dirSources) Forget(k Key) {
	s.Release(k)
	s.mu.Lock()
	delete(s.slots, k)
	s.mu.Unlock()
}

func (s *dirSources) newDir(k Key) (string, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	dir := filepath.Join(s.dir, k.Namespace, k.Name+"-"+hex.EncodeToString(b))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// extractUpload unpacks an instantiatebinary body into dir the way the
// builder's `bsdtar -x -o -m -f -` does: gzip'd tar, plain tar or zip,
// owners and modification times not restored; or, with asFile, saves the
// body as that one file.
func extractUpload(dir, asFile string, body io.Reader) error {
	fail := func(err error) error { return fmt.Errorf("%s: %w", ExtractFailedMessage, err) }
	if asFile != "" {
		if strings.ContainsAny(asFile, `/\`) || asFile == "." || asFile == ".." {
			return fail(fmt.Errorf("invalid file name %q", asFile))
		}
		f, err := os.OpenFile(filepath.Join(dir, asFile), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, body); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	br := bufio.NewReaderSize(body, 64<<10)
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fail(err)
		}
		if err := extractTar(dir, zr); err != nil {
			return fail(err)
		}
		// Drain, so that the uploader sees its whole body consumed.
		_, _ = io.Copy(io.Discard, br)
		return nil
	case bytes.HasPrefix(magic, []byte("PK\x03\x04")) || bytes.HasPrefix(magic, []byte("PK\x05\x06")):
		tmp, err := os.CreateTemp(filepath.Dir(dir), "upload-*.zip")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		n, err := io.Copy(tmp, br)
		if err != nil {
			return err
		}
		zr, err := zip.NewReader(tmp, n)
		if err != nil {
			return fail(err)
		}
		if err := extractZip(dir, zr); err != nil {
			return fail(err)
		}
		return nil
	case len(magic) == 0:
		return nil // an empty body: an empty source
	default:
		if err := extractTar(dir, br); err != nil {
			return fail(err)
		}
		_, _ = io.Copy(io.Discard, br)
		return nil
	}
}

// safeJoin joins an archive member name to dir, refusing names that leave it.
func safeJoin(dir, name string) (string, bool) {
	clean := path.Clean("/" + strings.ReplaceAll(name, `\`, "/"))
	if clean == "/" {
		return dir, true
	}
	return filepath.Join(dir, filepath.FromSlash(clean[1:])), true
}

func extractTar(dir string, r io.Reader) error {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		target, _ := safeJoin(root, hdr.Name)
		if !parentWithin(root, target) {
			continue // under a symlink pointing outside: never write there
		}
		mode := os.FileMode(hdr.Mode & 0o7777)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			_ = os.Chmod(target, mode|0o700)
		case tar.TypeReg, tar.TypeRegA:
			if err := writeFile(target, tr, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			_ = os.RemoveAll(target)
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			src, _ := safeJoin(root, hdr.Linkname)
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			_ = os.RemoveAll(target)
			if err := os.Link(src, target); err != nil {
				return err
			}
		default:
			// devices, fifos, pax globals: skipped (an unprivileged bsdtar
			// cannot create devices either)
		}
	}
}

func extractZip(dir string, zr *zip.Reader) error {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	for _, f := range zr.File {
		target, _ := safeJoin(root, f.Name)
		if !parentWithin(root, target) {
			continue
		}
		if strings.HasSuffix(f.Name, "/") || f.FileInfo().IsDir() {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			continue
		}
		if f.Mode()&os.ModeSymlink != 0 {
			rc, err := f.Open()
			if err != nil {
				return err
			}
			link, err := io.ReadAll(io.LimitReader(rc, 4096))
			rc.Close()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			_ = os.RemoveAll(target)
			if err := os.Symlink(string(link), target); err != nil {
				return err
			}
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		mode := f.Mode().Perm()
		if mode == 0 {
			mode = 0o644
		}
		err = writeFile(target, rc, mode)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// parentWithin reports whether target's parent directory, with symlinks
// resolved as far as it exists, is inside root.
func parentWithin(root, target string) bool {
	p := filepath.Dir(target)
	for {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			return within(root, real)
		}
		if p == root || p == filepath.Dir(p) {
			return false
		}
		p = filepath.Dir(p)
	}
}

func writeFile(target string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	_ = os.RemoveAll(target)
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode|0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
