package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

type entry struct {
	hdr  *tar.Header
	body []byte
}

// readAll decompresses and parses an archive, failing the test on any error.
func readAll(t testing.TB, data []byte) []entry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("gzip: %v", err)
	}
	tr := tar.NewReader(zr)
	var out []entry
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("tar body %s: %v", hdr.Name, err)
		}
		out = append(out, entry{hdr, body})
	}
	return out
}

func names(es []entry) []string {
	var n []string
	for _, e := range es {
		n = append(n, e.hdr.Name)
	}
	return n
}

func byName(es []entry) map[string]entry {
	m := map[string]entry{}
	for _, e := range es {
		m[e.hdr.Name] = e
	}
	return m
}

func write(t testing.TB, root string, opts ...Option) ([]byte, Stats) {
	t.Helper()
	var buf bytes.Buffer
	st, err := Write(context.Background(), &buf, root, opts...)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.Bytes(), st
}

func mkfile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask-proof
		t.Fatal(err)
	}
}

func mkdir(t testing.TB, path string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func symlink(t testing.TB, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func TestRoundTrip(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "README.md"), "hello\n", 0o644)
	mkfile(t, filepath.Join(root, "bin", "run.sh"), "#!/bin/sh\necho hi\n", 0o755)
	mkfile(t, filepath.Join(root, "src", "main.go"), "package main\n", 0o600)
	mkfile(t, filepath.Join(root, "src", "empty.txt"), "", 0o644)
	mkdir(t, filepath.Join(root, "empty"), 0o750)
	mkdir(t, filepath.Join(root, "a", "b", "c"), 0o755)
	symlink(t, "../README.md", filepath.Join(root, "src", "readme-link"))
	symlink(t, "does/not/exist", filepath.Join(root, "dangling"))

	data, st := write(t, root)
	es := readAll(t, data)

	want := []string{
		"README.md",
		"a/", "a/b/", "a/b/c/",
		"bin/", "bin/run.sh",
		"dangling",
		"empty/",
		"src/", "src/empty.txt", "src/main.go", "src/readme-link",
	}
	if got := names(es); !slices.Equal(got, want) {
		t.Fatalf("names:\n got %q\nwant %q", got, want)
	}
	m := byName(es)
	checks := []struct {
		name     string
		typ      byte
		mode     int64
		body     string
		linkname string
	}{
		{"README.md", tar.TypeReg, 0o644, "hello\n", ""},
		{"bin/run.sh", tar.TypeReg, 0o755, "#!/bin/sh\necho hi\n", ""},
		{"src/main.go", tar.TypeReg, 0o600, "package main\n", ""},
		{"src/empty.txt", tar.TypeReg, 0o644, "", ""},
		{"empty/", tar.TypeDir, 0o750, "", ""},
		{"a/b/c/", tar.TypeDir, 0o755, "", ""},
		{"src/readme-link", tar.TypeSymlink, 0o777, "", "../README.md"},
		{"dangling", tar.TypeSymlink, 0o777, "", "does/not/exist"},
	}
	for _, c := range checks {
		e := m[c.name]
		if e.hdr.Typeflag != c.typ || e.hdr.Mode != c.mode || string(e.body) != c.body || e.hdr.Linkname != c.linkname {
			t.Errorf("%s: type %q mode %o body %q link %q; want type %q mode %o body %q link %q",
				c.name, e.hdr.Typeflag, e.hdr.Mode, e.body, e.hdr.Linkname, c.typ, c.mode, c.body, c.linkname)
		}
		if e.hdr.Uid != 0 || e.hdr.Gid != 0 || e.hdr.Uname != "" || e.hdr.Gname != "" {
			t.Errorf("%s: owner %d:%d %q:%q, want 0:0 and no names", c.name, e.hdr.Uid, e.hdr.Gid, e.hdr.Uname, e.hdr.Gname)
		}
	}
	wantStats := Stats{Files: 4, Dirs: 6, Symlinks: 2, Bytes: int64(len("hello\n#!/bin/sh\necho hi\npackage main\n"))}
	if st != wantStats {
		t.Errorf("stats %+v, want %+v", st, wantStats)
	}
}

func TestModTimeKept(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "f")
	mkfile(t, p, "x", 0o644)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := write(t, root)
	got := readAll(t, data)[0].hdr.ModTime
	if got.Unix() != fi.ModTime().Round(1e9).Unix() {
		t.Errorf("mtime %v, want %v", got, fi.ModTime())
	}
}

func TestDeterministic(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"b", "a", "C", "a.txt", "a/z", "a/b", "_", "0"} {
		mkfile(t, filepath.Join(root, n, "f"), n, 0o644)
	}
	d1, _ := write(t, root)
	d2, _ := write(t, root)
	if !bytes.Equal(d1, d2) {
		t.Error("two archives of the same tree differ")
	}
	// fs.WalkDir order: lexical within a directory, depth first.
	want := []string{"0/", "0/f", "C/", "C/f", "_/", "_/f", "a/", "a/b/", "a/b/f", "a/f", "a/z/", "a/z/f", "a.txt/", "a.txt/f", "b/", "b/f"}
	if got := names(readAll(t, d1)); !slices.Equal(got, want) {
		t.Errorf("order:\n got %q\nwant %q", got, want)
	}
}

func TestSpecialPermissionBitsDropped(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "suid")
	mkfile(t, p, "x", 0o755)
	if err := os.Chmod(p, 0o755|os.ModeSetuid|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(root, "sticky")
	mkdir(t, d, 0o777)
	if err := os.Chmod(d, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	m := byName(readAll(t, must(write(t, root))))
	if got := m["suid"].hdr.Mode; got != 0o755 {
		t.Errorf("suid mode %o, want 755", got)
	}
	if got := m["sticky/"].hdr.Mode; got != 0o777 {
		t.Errorf("sticky mode %o, want 777", got)
	}
}

func must(data []byte, _ Stats) []byte { return data }

func gitTree(t *testing.T) string {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, ".git", "HEAD"), "ref: refs/heads/main\n", 0o644)
	mkfile(t, filepath.Join(root, ".git", "objects", "ab", "cdef"), "obj", 0o444)
	mkfile(t, filepath.Join(root, "sub", ".git"), "gitdir: ../.git/modules/sub\n", 0o644)
	mkfile(t, filepath.Join(root, "sub", "x.go"), "x", 0o644)
	mkfile(t, filepath.Join(root, ".gitignore"), "*.o\n", 0o644)
	mkfile(t, filepath.Join(root, ".github", "workflows", "ci.yaml"), "on: push\n", 0o644)
	mkfile(t, filepath.Join(root, "my.git", "f"), "f", 0o644)
	return root
}

func TestGitExcludedByDefault(t *testing.T) {
	root := gitTree(t)
	got := names(readAll(t, must(write(t, root))))
	want := []string{".github/", ".github/workflows/", ".github/workflows/ci.yaml", ".gitignore", "my.git/", "my.git/f", "sub/", "sub/x.go"}
	if !slices.Equal(got, want) {
		t.Errorf("names:\n got %q\nwant %q", got, want)
	}
}

func TestIncludeGit(t *testing.T) {
	root := gitTree(t)
	got := names(readAll(t, must(write(t, root, IncludeGit()))))
	for _, n := range []string{".git/", ".git/HEAD", ".git/objects/ab/cdef", "sub/.git"} {
		if !slices.Contains(got, n) {
			t.Errorf("IncludeGit: %s missing from %q", n, got)
		}
	}
}

func TestCustomExclude(t *testing.T) {
	root := gitTree(t)
	mkfile(t, filepath.Join(root, "node_modules", "dep", "index.js"), "x", 0o644)
	mkfile(t, filepath.Join(root, "web", "node_modules", "dep", "index.js"), "x", 0o644)
	mkfile(t, filepath.Join(root, "web", "app.js"), "x", 0o644)
	mkfile(t, filepath.Join(root, "build.log"), "x", 0o644)

	got := names(readAll(t, must(write(t, root,
		WithExclude(regexp.MustCompile(`(^|/)node_modules(/|$)`)),
		WithExclude(regexp.MustCompile(`\.log$`)),
	))))
	for _, n := range got {
		if strings.Contains(n, "node_modules") || strings.HasSuffix(n, ".log") || strings.HasPrefix(n, ".git/") {
			t.Errorf("excluded entry %s archived", n)
		}
	}
	if !slices.Contains(got, "web/app.js") {
		t.Errorf("web/app.js missing: %q", got)
	}
}

func TestExcludedDirSkippedWhole(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "skip", "keep.txt"), "x", 0o644)
	mkfile(t, filepath.Join(root, "other.txt"), "x", 0o644)
	// ^skip$ matches the directory only; its children must go with it.
	got := names(readAll(t, must(write(t, root, WithExclude(regexp.MustCompile(`^skip$`))))))
	if want := []string{"other.txt"}; !slices.Equal(got, want) {
		t.Errorf("names %q, want %q", got, want)
	}
}

const secret = "TOP-SECRET-7d1f0c2b9e"

// outsideSecret makes a directory next to the root holding a secret file.
func outsideSecret(t *testing.T) (root, secretDir, secretFile string) {
	base := t.TempDir()
	root = filepath.Join(base, "src")
	secretDir = filepath.Join(base, "secrets")
	secretFile = filepath.Join(secretDir, "token")
	mkfile(t, secretFile, secret, 0o600)
	mkfile(t, filepath.Join(root, "app.txt"), "app", 0o644)
	return root, secretDir, secretFile
}

func TestSymlinkEscapeNotFollowed(t *testing.T) {
	root, secretDir, secretFile := outsideSecret(t)
	symlink(t, secretFile, filepath.Join(root, "abs-file"))
	symlink(t, "../secrets/token", filepath.Join(root, "rel-file"))
	symlink(t, secretDir, filepath.Join(root, "abs-dir"))
	symlink(t, "../secrets", filepath.Join(root, "rel-dir"))
	mkdir(t, filepath.Join(root, "nested"), 0o755)
	symlink(t, "../../secrets/token", filepath.Join(root, "nested", "deep"))
	symlink(t, "abs-file", filepath.Join(root, "chain"))

	data, st := write(t, root)
	raw, err := io.ReadAll(must2(gzip.NewReader(bytes.NewReader(data))))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(secret)) {
		t.Fatal("secret content found in the archive")
	}
	m := byName(readAll(t, data))
	for name, target := range map[string]string{
		"abs-file": secretFile, "rel-file": "../secrets/token", "abs-dir": secretDir,
		"rel-dir": "../secrets", "nested/deep": "../../secrets/token", "chain": "abs-file",
	} {
		e, ok := m[name]
		if !ok || e.hdr.Typeflag != tar.TypeSymlink || e.hdr.Linkname != target || e.hdr.Size != 0 {
			t.Errorf("%s: got %+v, want a symlink to %s", name, e.hdr, target)
		}
	}
	for n := range m {
		if strings.HasPrefix(n, "abs-dir/") || strings.HasPrefix(n, "rel-dir/") {
			t.Errorf("descended into symlinked dir: %s", n)
		}
	}
	if st.Symlinks != 6 || st.Files != 1 {
		t.Errorf("stats %+v", st)
	}
}

func must2[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestSymlinkToDirInsideNotDescended(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "real", "f.txt"), "x", 0o644)
	symlink(t, "real", filepath.Join(root, "link"))
	got := names(readAll(t, must(write(t, root))))
	if want := []string{"link", "real/", "real/f.txt"}; !slices.Equal(got, want) {
		t.Errorf("names %q, want %q", got, want)
	}
}

func TestRootIsSymlink(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	mkfile(t, filepath.Join(real, "f.txt"), "content", 0o644)
	link := filepath.Join(base, "link")
	symlink(t, "real", link)
	es := readAll(t, must(write(t, link)))
	if got := names(es); !slices.Equal(got, []string{"f.txt"}) || string(es[0].body) != "content" {
		t.Errorf("names %q", got)
	}
}

func TestRootErrors(t *testing.T) {
	dir := t.TempDir()
	mkfile(t, filepath.Join(dir, "file"), "x", 0o644)
	for _, root := range []string{filepath.Join(dir, "missing"), filepath.Join(dir, "file")} {
		var buf bytes.Buffer
		if _, err := Write(context.Background(), &buf, root); err == nil || !strings.HasPrefix(err.Error(), "archive: root ") {
			t.Errorf("Write(%s) error %v", root, err)
		}
		if buf.Len() != 0 {
			t.Errorf("Write(%s) wrote %d bytes", root, buf.Len())
		}
	}
}

func TestHardLinkArchivedAsFile(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "a"), "same", 0o644)
	if err := os.Link(filepath.Join(root, "a"), filepath.Join(root, "b")); err != nil {
		t.Skipf("hard links: %v", err)
	}
	for _, e := range readAll(t, must(write(t, root))) {
		if e.hdr.Typeflag != tar.TypeReg || string(e.body) != "same" {
			t.Errorf("%s: type %q body %q", e.hdr.Name, e.hdr.Typeflag, e.body)
		}
	}
}

func TestLongNames(t *testing.T) {
	root := t.TempDir()
	long := strings.Repeat("d", 120)
	rel := long + "/" + strings.Repeat("n", 150) + ".txt"
	mkfile(t, filepath.Join(root, filepath.FromSlash(rel)), "long", 0o644)
	target := strings.Repeat("../t", 60)
	symlink(t, target, filepath.Join(root, "lnk"))
	mkfile(t, filepath.Join(root, "ünï©ødé.txt"), "u", 0o644)

	m := byName(readAll(t, must(write(t, root))))
	if e, ok := m[rel]; !ok || string(e.body) != "long" {
		t.Errorf("long name missing: %q", names(readAll(t, must(write(t, root)))))
	}
	if _, ok := m[long+"/"]; !ok {
		t.Error("long dir name missing")
	}
	if e := m["lnk"]; e.hdr == nil || e.hdr.Linkname != target {
		t.Errorf("long link target not kept")
	}
	if _, ok := m["ünï©ødé.txt"]; !ok {
		t.Error("non-ASCII name missing")
	}
}

func TestCancelledBeforeStart(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "f"), "x", 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st, err := Write(ctx, io.Discard, root)
	if !errors.Is(err, context.Canceled) || st != (Stats{}) {
		t.Errorf("got %+v, %v", st, err)
	}
}

func TestCancelStopsWalk(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		mkfile(t, filepath.Join(root, n), n, 0o644)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := Write(ctx, io.Discard, root, WithProgress(func(s Stats) {
		if s.Files == 2 {
			cancel()
		}
	}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if st.Files != 2 {
		t.Errorf("walk went on after cancel: %+v", st)
	}
}

func TestCancelMidFile(t *testing.T) {
	root := t.TempDir()
	big := make([]byte, 4<<20)
	rand.Read(big) // incompressible, so gzip writes out while the file is copied
	mkfile(t, filepath.Join(root, "big"), string(big), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := Write(ctx, cancelOnWrite(cancel), root)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if st.Bytes >= int64(len(big)) || st.Files != 0 {
		t.Errorf("file copy went on after cancel: %+v", st)
	}
}

// cancelOnWrite cancels as soon as anything is written.
type cancelOnWrite func()

func (c cancelOnWrite) Write(p []byte) (int, error) {
	c()
	return len(p), nil
}

func TestProgressAndWarningsCalled(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "a"), "12", 0o644)
	mkfile(t, filepath.Join(root, "d", "b"), "345", 0o644)
	var seen []Stats
	_, err := Write(context.Background(), io.Discard, root, WithProgress(func(s Stats) { seen = append(seen, s) }))
	if err != nil {
		t.Fatal(err)
	}
	want := []Stats{{Files: 1, Bytes: 2}, {Files: 1, Dirs: 1, Bytes: 2}, {Files: 2, Dirs: 1, Bytes: 5}}
	if !slices.Equal(seen, want) {
		t.Errorf("progress %+v, want %+v", seen, want)
	}
}

func TestErrorsWrapped(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "a.txt"), "a", 0o644)
	mkfile(t, filepath.Join(root, "sub", "a.txt"), "a", 0o644)
	mkfile(t, filepath.Join(root, "sub", "b.txt"), "b", 0o644)
	// Remove a listed file before it is visited.
	_, err := Write(context.Background(), io.Discard, root, WithProgress(func(s Stats) {
		if s.Files == 2 {
			os.Remove(filepath.Join(root, "sub", "b.txt"))
		}
	}))
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "archive: lstat sub/b.txt: ") {
		t.Errorf("err %v", err)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func TestWriterErrorReturned(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "a"), strings.Repeat("a", 1<<20), 0o644)
	boom := errors.New("boom")
	_, err := Write(context.Background(), failWriter{boom}, root)
	if !errors.Is(err, boom) {
		t.Errorf("err %v", err)
	}
}

func TestReaderStreams(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "a"), "aaa", 0o644)
	mkfile(t, filepath.Join(root, "d", "b"), "bb", 0o755)
	rc, wait := Reader(context.Background(), root)
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	st, err := wait()
	if err != nil || st != (Stats{Files: 2, Dirs: 1, Bytes: 5}) {
		t.Errorf("wait: %+v, %v", st, err)
	}
	direct, _ := write(t, root)
	if !bytes.Equal(data, direct) {
		t.Error("Reader and Write produced different archives")
	}
}

func TestReaderPropagatesError(t *testing.T) {
	rc, wait := Reader(context.Background(), filepath.Join(t.TempDir(), "missing"))
	_, rerr := io.ReadAll(rc)
	_, werr := wait()
	if rerr == nil || werr == nil || rerr.Error() != werr.Error() || !errors.Is(rerr, fs.ErrNotExist) {
		t.Errorf("read error %v, wait error %v", rerr, werr)
	}
}

func TestReaderCloseStopsWalk(t *testing.T) {
	root := t.TempDir()
	content := make([]byte, 64<<10)
	for i := range 50 {
		rand.Read(content)
		mkfile(t, filepath.Join(root, string(rune('a'+i%26))+string(rune('a'+i/26))), string(content), 0o644)
	}
	rc, wait := Reader(context.Background(), root)
	if _, err := io.ReadFull(rc, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	st, err := wait()
	if !errors.Is(err, io.ErrClosedPipe) || st.Files == 50 {
		t.Errorf("after Close: %+v, %v", st, err)
	}
}

func TestReaderCancelUnblocksWriter(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "a"), "a", 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	rc, wait := Reader(ctx, root)
	defer rc.Close()
	// Nobody reads: the writer is blocked in the pipe until ctx ends.
	cancel()
	_, err := wait()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("wait: %v", err)
	}
	if _, err := rc.Read(make([]byte, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("read: %v", err)
	}
}
