package baseimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// layerWriter writes one gzip-compressed layer tarball to a file, hashing the
// compressed and the uncompressed stream as it goes, so the layer's digest and
// diff ID come for free. Every header is written with explicit ownership,
// mode and time; nothing is taken from the host's file ownership.
type layerWriter struct {
	path   string
	f      *os.File
	buf    *bufio.Writer
	zw     *gzip.Writer
	tw     *tar.Writer
	zsum   hash.Hash // of the compressed bytes
	usum   hash.Hash // of the tar stream (the diff ID)
	zcount countWriter
	seen   map[string]bool // names written so far (without trailing /)
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func newLayerWriter(file string) (*layerWriter, error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	w := &layerWriter{path: file, f: f, zsum: sha256.New(), usum: sha256.New(), seen: map[string]bool{}}
	w.buf = bufio.NewWriterSize(io.MultiWriter(f, w.zsum, &w.zcount), 1<<20)
	// No name, no modification time in the gzip header: the same tar stream
	// always compresses to the same bytes.
	w.zw, _ = gzip.NewWriterLevel(w.buf, gzip.DefaultCompression)
	w.tw = tar.NewWriter(io.MultiWriter(w.zw, w.usum))
	return w, nil
}

// clean turns name into the layer's form: relative, slash-separated, no "./".
func clean(name string) string {
	name = path.Clean("/" + strings.TrimPrefix(name, "./"))
	return strings.TrimPrefix(name, "/")
}

// parents writes root-owned 0755 entries for the directories above name that
// the layer does not have yet.
func (w *layerWriter) parents(name string) error {
	dir := path.Dir(name)
	if dir == "." || dir == "/" || w.seen[dir] {
		return nil
	}
	if err := w.parents(dir); err != nil {
		return err
	}
	return w.write(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755}, nil)
}

// write writes h (and, for a regular file, its content from r). ModTime is
// the fixed image time unless h sets one; ownership is h's, numeric only.
func (w *layerWriter) write(h *tar.Header, r io.Reader) error {
	name := clean(h.Name)
	if name == "" {
		return nil // the layer's root
	}
	if err := w.parents(name); err != nil {
		return err
	}
	hdr := &tar.Header{
		Typeflag: h.Typeflag,
		Name:     name,
		Linkname: h.Linkname,
		Size:     h.Size,
		Mode:     h.Mode,
		Uid:      h.Uid,
		Gid:      h.Gid,
		ModTime:  h.ModTime.Truncate(1e9),
		Devmajor: h.Devmajor,
		Devminor: h.Devminor,
		Format:   tar.FormatPAX,
	}
	if h.ModTime.IsZero() {
		hdr.ModTime = created
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		hdr.Name += "/"
		hdr.Size = 0
	case tar.TypeLink:
		hdr.Linkname = clean(h.Linkname)
		hdr.Size = 0
	case tar.TypeReg:
	default:
		hdr.Size = 0
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("layer %s: %s: %w", filepath.Base(w.path), name, err)
	}
	w.seen[name] = true
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		n, err := io.Copy(w.tw, io.LimitReader(r, hdr.Size))
		if err != nil {
			return fmt.Errorf("layer %s: %s: %w", filepath.Base(w.path), name, err)
		}
		if n != hdr.Size {
			return fmt.Errorf("layer %s: %s: short content (%d of %d bytes)", filepath.Base(w.path), name, n, hdr.Size)
		}
	}
	return nil
}

func (w *layerWriter) dir(name string, mode int64, uid, gid int) error {
	return w.write(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: gid}, nil)
}

func (w *layerWriter) file(name string, mode int64, uid, gid int, data []byte) error {
	return w.write(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Uid: uid, Gid: gid, Size: int64(len(data))},
		bytes.NewReader(data))
}

func (w *layerWriter) symlink(name, target string) error {
	return w.write(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}, nil)
}

// hostFile copies the host file src to name, root-owned, with mode.
func (w *layerWriter) hostFile(name, src string, mode int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return w.write(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: fi.Size()}, f)
}

// tree copies the host directory src to dest (root-owned; directories 0755,
// files 0755 when the host file is executable by anyone and 0644 otherwise,
// symlinks kept as symlinks), in lexical order. skip, given the path relative
// to src (slash-separated) and the entry, says what to leave out; for a
// directory that drops the whole subtree.
func (w *layerWriter) tree(dest, src string, skip func(rel string, d fs.DirEntry) bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel != "." && skip != nil && skip(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		name := path.Join(dest, rel)
		switch t := d.Type(); {
		case t.IsDir():
			return w.dir(name, 0o755, 0, 0)
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return w.symlink(name, target)
		case t.IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			mode := int64(0o644)
			if fi.Mode().Perm()&0o111 != 0 {
				mode = 0o755
			}
			return w.hostFile(name, p, mode)
		default:
			return nil // sockets, devices: nothing a toolchain needs
		}
	})
}

// close finishes the tarball and returns it as a layer of media type mt.
func (w *layerWriter) close(mt types.MediaType) (v1.Layer, error) {
	err := errors.Join(w.tw.Close(), w.zw.Close(), w.buf.Flush())
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", filepath.Base(w.path), err)
	}
	return &fileLayer{
		path:   w.path,
		digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", w.zsum.Sum(nil))},
		diffID: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", w.usum.Sum(nil))},
		size:   w.zcount.n,
		mt:     mt,
	}, nil
}

// abort drops a half-written layer.
func (w *layerWriter) abort() {
	_ = w.f.Close()
	_ = os.Remove(w.path)
}

// fileLayer is a gzip layer on disk whose hashes are already known.
type fileLayer struct {
	path           string
	digest, diffID v1.Hash
	size           int64
	mt             types.MediaType
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.mt, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }

func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, closerFunc(func() error { return errors.Join(zr.Close(), f.Close()) })}, nil
}

type closerFunc func() error

func (c closerFunc) Close() error { return c() }
