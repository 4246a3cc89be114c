package revision

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// git runs the git CLI in dir with a fixed, config-free environment.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Ada Author", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Carl Committer", "GIT_COMMITTER_EMAIL=carl@example.org",
		"GIT_AUTHOR_DATE=2024-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2024-01-02T03:04:05Z",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func needGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not in PATH")
	}
}

// show is what oc computes: git show -s --format=%H%n%an%n%ae%n%cn%n%ce%n%B.
func show(t *testing.T, dir string) Revision {
	t.Helper()
	out := git(t, dir, "show", "-s", "--format=%H%n%an%n%ae%n%cn%n%ce%n%B", "HEAD")
	l := strings.SplitN(out, "\n", 6)
	if len(l) != 6 {
		t.Fatalf("git show: %q", out)
	}
	return Revision{l[0], l[1], l[2], l[3], l[4], strings.TrimRight(l[5], "\n")}
}

// newRepo makes a repository with n commits at dir.
func newRepo(t *testing.T, dir string, n int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "init", "-q", "-b", "main")
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, "f.txt"), []byte(strings.Repeat("line\n", i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
		git(t, dir, "add", "f.txt")
		git(t, dir, "commit", "-q", "-m", "commit "+string(rune('A'+i)))
	}
}

func mustRead(t *testing.T, dir, stopAt string) Revision {
	t.Helper()
	rev, ok, err := Read(dir, stopAt)
	if err != nil || !ok {
		t.Fatalf("Read(%s, %s): ok=%v err=%v", dir, stopAt, ok, err)
	}
	return rev
}

func check(t *testing.T, got, want Revision) {
	t.Helper()
	if got != want {
		t.Errorf("Read:\n got %#v\nwant %#v", got, want)
	}
}

func TestNormalRepo(t *testing.T) {
	needGit(t)
	repo := t.TempDir()
	newRepo(t, repo, 3)
	got := mustRead(t, repo, repo)
	check(t, got, show(t, repo))
	if got.AuthorName != "Ada Author" || got.CommitterEmail != "carl@example.org" || got.Message != "commit C" {
		t.Errorf("fields %#v", got)
	}
	if _, err := os.Stat(filepath.Join(repo, ".git", "refs", "heads", "main")); err != nil {
		t.Errorf("expected a loose ref: %v", err)
	}
}

func TestSearchesUpward(t *testing.T) {
	needGit(t)
	repo := t.TempDir()
	newRepo(t, repo, 1)
	sub := filepath.Join(repo, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	check(t, mustRead(t, sub, repo), show(t, repo))
}

func TestShallowClone(t *testing.T) {
	needGit(t)
	base := t.TempDir()
	src := filepath.Join(base, "src")
	newRepo(t, src, 5)
	dst := filepath.Join(base, "dst")
	git(t, base, "clone", "-q", "--depth", "1", "file://"+src, dst)
	if _, err := os.Stat(filepath.Join(dst, ".git", "shallow")); err != nil {
		t.Fatalf("not shallow: %v", err)
	}
	packs, _ := filepath.Glob(filepath.Join(dst, ".git", "objects", "pack", "*.pack"))
	loose, _ := filepath.Glob(filepath.Join(dst, ".git", "objects", "??", "*"))
	if len(packs) == 0 || len(loose) != 0 {
		t.Fatalf("want objects in a pack only: %d packs, %d loose", len(packs), len(loose))
	}
	check(t, mustRead(t, dst, dst), show(t, dst))
}

func TestPackedRepo(t *testing.T) {
	needGit(t)
	repo := t.TempDir()
	newRepo(t, repo, 4)
	git(t, repo, "gc", "-q")
	if _, err := os.Stat(filepath.Join(repo, ".git", "refs", "heads", "main")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("want main in packed-refs only: %v", err)
	}
	if _, err := os.Stat(filepath.Join(repo, ".git", "packed-refs")); err != nil {
		t.Fatal(err)
	}
	check(t, mustRead(t, repo, repo), show(t, repo))
}

// TestDeltaCommit reads a commit that the pack stores as a delta.
func TestDeltaCommit(t *testing.T) {
	needGit(t)
	repo := t.TempDir()
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	git(t, repo, "init", "-q", "-b", "main")
	long := strings.Repeat("A long and repetitive commit message body line.\n", 40)
	for i := range 6 {
		git(t, repo, "commit", "-q", "--allow-empty", "-m", "commit "+string(rune('A'+i))+"\n\n"+long)
	}
	git(t, repo, "repack", "-q", "-a", "-d", "-f", "--window=50", "--depth=50")
	packs, _ := filepath.Glob(filepath.Join(repo, ".git", "objects", "pack", "*.idx"))
	if len(packs) != 1 {
		t.Fatalf("packs %q", packs)
	}
	// verify-pack -v: "<sha> commit <size> <size-in-pack> <offset> <depth> <base>"
	var delta string
	for _, line := range strings.Split(git(t, repo, "verify-pack", "-v", packs[0]), "\n") {
		f := strings.Fields(line)
		if len(f) == 7 && f[1] == "commit" {
			delta = f[0]
			break
		}
	}
	if delta == "" {
		t.Skip("git stored no commit as a delta")
	}
	git(t, repo, "checkout", "-q", "--detach", delta)
	got := mustRead(t, repo, repo)
	if got.Commit != delta {
		t.Fatalf("commit %s, want %s", got.Commit, delta)
	}
	check(t, got, show(t, repo))
}

func TestDetachedHead(t *testing.T) {
	needGit(t)
	repo := t.TempDir()
	newRepo(t, repo, 3)
	git(t, repo, "checkout", "-q", "--detach", "HEAD~1")
	head, _ := os.ReadFile(filepath.Join(repo, ".git", "HEAD"))
	if strings.HasPrefix(string(head), "ref:") {
		t.Fatalf("HEAD not detached: %q", head)
	}
	got := mustRead(t, repo, repo)
	check(t, got, show(t, repo))
	if got.Message != "commit B" {
		t.Errorf("message %q", got.Message)
	}
}

func TestMessages(t *testing.T) {
	needGit(t)
	for name, msg := range map[string]string{
		"multi-line": "Subject line\n\nBody paragraph one.\nSecond line: ünïcødé ✓\n\n    indented code\n",
		"verbatim":   "  leading spaces\n\n\ttabs\t\n\n\n",
		"one-line":   "no trailing newline",
		"trailers":   "Fix it\n\nSigned-off-by: A <a@example.com>\nCo-authored-by: B <b@example.com>\n",
	} {
		t.Run(name, func(t *testing.T) {
			repo := t.TempDir()
			git(t, repo, "init", "-q", "-b", "main")
			git(t, repo, "commit", "-q", "--allow-empty", "--cleanup=verbatim", "-m", msg)
			got := mustRead(t, repo, repo)
			check(t, got, show(t, repo))
			if got.Message != strings.TrimRight(msg, "\n") {
				t.Errorf("message %q, want %q", got.Message, msg)
			}
		})
	}
}

func TestNoRepository(t *testing.T) {
	dir := t.TempDir()
	if rev, ok, err := Read(dir, dir); ok || err != nil || rev != (Revision{}) {
		t.Errorf("got %#v, %v, %v", rev, ok, err)
	}
}

func TestUnbornHead(t *testing.T) {
	needGit(t)
	repo := t.TempDir()
	git(t, repo, "init", "-q", "-b", "main")
	if _, ok, err := Read(repo, repo); ok || err != nil {
		t.Errorf("ok=%v err=%v", ok, err)
	}
}

// TestStopsAtRoot: a repository above the source root is not used.
func TestStopsAtRoot(t *testing.T) {
	needGit(t)
	repo := t.TempDir()
	newRepo(t, repo, 1)
	src := filepath.Join(repo, "src")
	ctx := filepath.Join(src, "ctx")
	if err := os.MkdirAll(ctx, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := Read(ctx, src); ok || err != nil {
		t.Errorf("found a repository above stopAt: ok=%v err=%v", ok, err)
	}
	// With the root at the repository it is found.
	check(t, mustRead(t, ctx, repo), show(t, repo))
}

func TestDirOutsideRoot(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if _, _, err := Read(a, b); !errors.Is(err, ErrOutsideRoot) {
		t.Errorf("err %v", err)
	}
}

// TestGitFile covers a `.git` file (submodule layout) pointing inside the
// root, and one pointing outside it.
func TestGitFile(t *testing.T) {
	needGit(t)
	base := t.TempDir()
	root := filepath.Join(base, "root")
	newRepo(t, filepath.Join(root, "modules", "real"), 2)
	sub := filepath.Join(root, "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, ".git"), []byte("gitdir: ../modules/real/.git\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check(t, mustRead(t, sub, root), show(t, filepath.Join(root, "modules", "real")))

	// The same file, but the source root is sub itself: the gitdir is outside.
	if _, ok, err := Read(sub, sub); ok || !errors.Is(err, ErrOutsideRoot) {
		t.Errorf("gitdir outside stopAt: ok=%v err=%v", ok, err)
	}

	// An absolute gitdir outside the root.
	outside := filepath.Join(base, "outside")
	newRepo(t, outside, 1)
	if err := os.WriteFile(filepath.Join(sub, ".git"), []byte("gitdir: "+filepath.Join(outside, ".git")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := Read(sub, root); ok || !errors.Is(err, ErrOutsideRoot) {
		t.Errorf("absolute gitdir outside: ok=%v err=%v", ok, err)
	}

	// Not a gitdir file at all.
	if err := os.WriteFile(filepath.Join(sub, ".git"), []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := Read(sub, root); ok || err == nil {
		t.Errorf("bad .git file: ok=%v err=%v", ok, err)
	}
}

func TestDotGitSymlinkOutside(t *testing.T) {
	needGit(t)
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	newRepo(t, outside, 1)
	root := filepath.Join(base, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, ".git"), filepath.Join(root, ".git")); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := Read(root, root); ok || !errors.Is(err, ErrOutsideRoot) {
		t.Errorf("ok=%v err=%v", ok, err)
	}
}

// TestWorktree covers a linked worktree: .git file -> .git/worktrees/<name>,
// with objects and refs found through commondir.
func TestWorktree(t *testing.T) {
	needGit(t)
	root := t.TempDir()
	main := filepath.Join(root, "main")
	newRepo(t, main, 3)
	wt := filepath.Join(root, "wt")
	git(t, main, "worktree", "add", "-q", "--detach", wt, "HEAD~2")
	got := mustRead(t, wt, root)
	check(t, got, show(t, wt))
	if got.Message != "commit A" {
		t.Errorf("message %q", got.Message)
	}
	// The worktree alone as root: its git directory lives outside it.
	if _, _, err := Read(wt, wt); !errors.Is(err, ErrOutsideRoot) {
		t.Errorf("err %v", err)
	}
}

// TestSymlinkInsideGitDirNotFollowedOut: files of the git directory are read
// through a filesystem bound to it, so a symlinked objects directory that
// points at another repository is not used.
func TestSymlinkInsideGitDirNotFollowedOut(t *testing.T) {
	needGit(t)
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	newRepo(t, outside, 1)
	commit := strings.TrimSpace(git(t, outside, "rev-parse", "HEAD"))
	root := filepath.Join(base, "root")
	git(t, base, "init", "-q", "-b", "main", root)
	objects := filepath.Join(root, ".git", "objects")
	if err := os.RemoveAll(objects); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, ".git", "objects"), objects); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ".git", "HEAD"), []byte(commit+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rev, ok, err := Read(root, root); ok || err == nil {
		t.Errorf("read a commit through a symlink leaving the root: %#v ok=%v err=%v", rev, ok, err)
	} else {
		t.Logf("err: %v", err)
	}
}
