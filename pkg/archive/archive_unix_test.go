//go:build unix

package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestSpecialFilesSkippedWithWarning(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "a.txt"), "a", 0o644)
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Unix socket paths are limited to ~108 bytes; listen from inside root.
	wd, _ := os.Getwd()
	if err := os.Chdir(root); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", "sock")
	os.Chdir(wd)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	var warnings []string
	data, st := write(t, root, WithWarnings(func(m string) { warnings = append(warnings, m) }))
	if got := names(readAll(t, data)); !slices.Equal(got, []string{"a.txt"}) {
		t.Errorf("names %q", got)
	}
	if len(warnings) != 2 || !strings.Contains(warnings[0], "skipping fifo") || !strings.Contains(warnings[1], "skipping sock") {
		t.Errorf("warnings %q", warnings)
	}
	if st.Files != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestOwnerNotLeaked(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	root := t.TempDir()
	p := filepath.Join(root, "f")
	mkfile(t, p, "x", 0o644)
	if err := os.Chown(p, 4242, 4343); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(root, 4242, 4343); err != nil {
		t.Fatal(err)
	}
	symlink(t, "f", filepath.Join(root, "l"))
	os.Lchown(filepath.Join(root, "l"), 4242, 4343)
	mkdir(t, filepath.Join(root, "d"), 0o755)
	os.Chown(filepath.Join(root, "d"), 4242, 4343)
	for _, e := range readAll(t, must(write(t, root))) {
		if e.hdr.Uid != 0 || e.hdr.Gid != 0 || e.hdr.Uname != "" || e.hdr.Gname != "" {
			t.Errorf("%s: owner %d:%d %q:%q", e.hdr.Name, e.hdr.Uid, e.hdr.Gid, e.hdr.Uname, e.hdr.Gname)
		}
	}
}

// swapDuring runs Write and calls swap once, right after the first entry
// ("a.txt") is written, i.e. after the later entries were listed and before
// they are visited.
func swapDuring(t *testing.T, root string, swap func()) ([]byte, error) {
	t.Helper()
	var buf bytes.Buffer
	done := false
	_, err := Write(context.Background(), &buf, root, WithProgress(func(Stats) {
		if !done {
			done = true
			swap()
		}
	}))
	return buf.Bytes(), err
}

func replace(t *testing.T, path string, with func(string) error) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	if err := with(path); err != nil {
		t.Fatal(err)
	}
}

func assertNoSecret(t *testing.T, data []byte) {
	t.Helper()
	if len(data) == 0 {
		return
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr) // may be truncated after an error
	if bytes.Contains(raw, []byte(secret)) {
		t.Fatal("secret content found in the archive")
	}
}

func TestFileSwappedForSymlinkOutside(t *testing.T) {
	root, _, secretFile := outsideSecret(t)
	mkfile(t, filepath.Join(root, "b.txt"), "b", 0o644)
	data, err := swapDuring(t, root, func() {
		replace(t, filepath.Join(root, "b.txt"), func(p string) error { return os.Symlink(secretFile, p) })
	})
	assertNoSecret(t, data)
	// Lstat sees the symlink, so it is archived as one: no error needed.
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if e := byName(readAll(t, data))["b.txt"]; e.hdr == nil || e.hdr.Typeflag != tar.TypeSymlink {
		t.Errorf("b.txt not archived as a symlink")
	}
}

func TestFileSwappedAfterLstatIsRejected(t *testing.T) {
	// The window between Lstat and open cannot be hit from a test without
	// hooks, so exercise the check itself: a file opened through a symlink
	// is not the file Lstat described.
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "inside.txt"), "inside", 0o644)
	symlink(t, "inside.txt", filepath.Join(root, "b.txt"))
	mkfile(t, filepath.Join(root, "other.txt"), "other", 0o644)
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	lfi, err := r.Lstat("other.txt")
	if err != nil {
		t.Fatal(err)
	}
	a := &archiver{ctx: context.Background(), root: r, tw: tar.NewWriter(io.Discard), opts: newOptions(nil), buf: make([]byte, 512)}
	// b.txt is a symlink to inside.txt: os.Root would follow it.
	err = a.file("b.txt", lfi)
	if err == nil || !strings.Contains(err.Error(), "archive: open b.txt: file was replaced") {
		t.Errorf("err %v", err)
	}
}

func TestFileSwappedForFIFODoesNotBlock(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "a.txt"), "a", 0o644)
	mkfile(t, filepath.Join(root, "b.txt"), "b", 0o644)
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	lfi, err := r.Lstat("b.txt")
	if err != nil {
		t.Fatal(err)
	}
	replace(t, filepath.Join(root, "b.txt"), func(p string) error { return syscall.Mkfifo(p, 0o644) })
	a := &archiver{ctx: context.Background(), root: r, tw: tar.NewWriter(io.Discard), opts: newOptions(nil), buf: make([]byte, 512)}
	// Without O_NONBLOCK this open would wait for a writer forever.
	// The FIFO may reuse the freed inode number, so either check may fire.
	if err := a.file("b.txt", lfi); err == nil || !strings.HasPrefix(err.Error(), "archive: open b.txt: ") {
		t.Errorf("err %v", err)
	}
}

func TestDirSwappedForSymlinkNotDescended(t *testing.T) {
	for _, tc := range []struct{ name, target string }{
		{"outside", ""}, // filled in below: the secret directory
		{"inside", "real"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, secretDir, _ := outsideSecret(t)
			target := tc.target
			if target == "" {
				target = secretDir
			}
			mkfile(t, filepath.Join(root, "a.txt"), "a", 0o644)
			mkfile(t, filepath.Join(root, "b", "x.txt"), "x", 0o644)
			mkfile(t, filepath.Join(root, "real", "token"), "not secret", 0o644)
			data, err := swapDuring(t, root, func() {
				replace(t, filepath.Join(root, "b"), func(p string) error { return os.Symlink(target, p) })
			})
			assertNoSecret(t, data)
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			got := names(readAll(t, data))
			want := []string{"a.txt", "app.txt", "b", "real/", "real/token"}
			if !slices.Equal(got, want) {
				t.Errorf("names %q, want %q", got, want)
			}
		})
	}
}

func TestFileShrinkingIsAnError(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "f")
	mkfile(t, p, strings.Repeat("x", 100<<10), 0o644)
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	lfi, _ := r.Lstat("f")
	w := &truncateOnWrite{path: p}
	a := &archiver{ctx: context.Background(), root: r, tw: tar.NewWriter(w), opts: newOptions(nil), buf: make([]byte, 32<<10)}
	err = a.file("f", lfi)
	if err == nil || !strings.Contains(err.Error(), "archive: read f: file shrank while archiving") {
		t.Errorf("err %v", err)
	}
}

// truncateOnWrite truncates path the first time file content is written.
type truncateOnWrite struct {
	path string
	n    int
}

func (w *truncateOnWrite) Write(p []byte) (int, error) {
	w.n++
	if w.n == 2 { // 1: header block, 2: first content chunk
		os.Truncate(w.path, 10)
	}
	return len(p), nil
}
