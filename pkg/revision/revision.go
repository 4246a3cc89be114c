// Package revision reads the HEAD commit of a git checkout without the git
// CLI, for the revision.* parameters of instantiatebinary (oc sends
// `git show -s --format=%H%n%an%n%ae%n%cn%n%ce%n%B`).
//
// It uses go-git's storage and object packages only (no transport, no
// worktree), which read loose objects, packfiles (with delta resolution),
// packed-refs and shallow clones.
//
// The repository is looked up from dir upwards and never above stopAt, and
// every file it reads must resolve inside stopAt: a `.git` file (worktree or
// submodule) or a `commondir` pointing elsewhere is an error, and paths
// inside the git directory are opened through a filesystem bound to it, so
// symlinks there cannot leave it either.
package revision

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/filesystem/dotgit"
)

// Revision is a commit as `git show -s --format=%H%n%an%n%ae%n%cn%n%ce%n%B`
// prints it.
type Revision struct {
	Commit         string // full hex object name
	AuthorName     string
	AuthorEmail    string
	CommitterName  string
	CommitterEmail string
	// Message is the raw commit message (%B), trailing newlines removed.
	Message string
}

// ErrOutsideRoot is returned (wrapped) when the repository, or a file it
// refers to, lies outside stopAt.
var ErrOutsideRoot = errors.New("outside the source root")

// Read returns the HEAD commit of the git repository containing dir. It
// searches upward from dir for a .git directory or file, stopping at stopAt
// (the Shipwright source root), which it never leaves; dir must be stopAt or
// below it.
//
// ok is false with a nil error when there is no repository or HEAD has no
// commit yet (an unborn branch). HEAD may be detached (what Shipwright checks
// out) or symbolic, and its ref may be loose or in packed-refs.
func Read(dir, stopAt string) (rev Revision, ok bool, err error) {
	root, err := realPath(stopAt)
	if err != nil {
		return Revision{}, false, fmt.Errorf("revision: source root: %w", err)
	}
	start, err := realPath(dir)
	if err != nil {
		return Revision{}, false, fmt.Errorf("revision: %w", err)
	}
	if !within(root, start) {
		return Revision{}, false, fmt.Errorf("revision: %s: %w %s", dir, ErrOutsideRoot, stopAt)
	}

	gitDir, found, err := findGitDir(start, root)
	if err != nil || !found {
		return Revision{}, false, err
	}
	fs, err := repoFS(gitDir, root)
	if err != nil {
		return Revision{}, false, err
	}
	st := filesystem.NewStorageWithOptions(fs, cache.NewObjectLRU(cache.MiByte), filesystem.Options{
		// Alternates (objects/info/alternates) resolve inside the root only.
		AlternatesFS: osfs.New(root, osfs.WithBoundOS()),
	})
	defer st.Close()

	ref, err := storer.ResolveReference(st, plumbing.HEAD)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return Revision{}, false, nil // unborn branch: no commit yet
	}
	if err != nil {
		return Revision{}, false, fmt.Errorf("revision: %s: resolve HEAD: %w", gitDir, err)
	}
	c, err := object.GetCommit(st, ref.Hash())
	if err != nil {
		return Revision{}, false, fmt.Errorf("revision: %s: read commit %s: %w", gitDir, ref.Hash(), err)
	}
	return Revision{
		Commit:         c.Hash.String(),
		AuthorName:     c.Author.Name,
		AuthorEmail:    c.Author.Email,
		CommitterName:  c.Committer.Name,
		CommitterEmail: c.Committer.Email,
		Message:        strings.TrimRight(c.Message, "\n"),
	}, true, nil
}

// findGitDir walks up from start to root looking for .git, and returns the
// real path of the git directory it designates.
func findGitDir(start, root string) (string, bool, error) {
	for cur := start; ; {
		p := filepath.Join(cur, ".git")
		fi, err := os.Stat(p) // a .git symlink is checked like a gitdir: file
		switch {
		case err == nil && fi.IsDir():
			gd, err := inside(p, root)
			return gd, err == nil, err
		case err == nil && fi.Mode().IsRegular():
			gd, err := readGitFile(p, root)
			return gd, err == nil, err
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return "", false, fmt.Errorf("revision: %w", err)
		}
		if cur == root {
			return "", false, nil
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return "", false, nil
		}
		cur = parent
	}
}

// readGitFile follows a `.git` file's "gitdir: <path>" line.
func readGitFile(p, root string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("revision: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	gitdir, found := strings.CutPrefix(strings.TrimSpace(line), "gitdir:")
	if !found {
		return "", fmt.Errorf("revision: %s: no gitdir: line", p)
	}
	return inside(relTo(filepath.Dir(p), strings.TrimSpace(gitdir)), root)
}

// repoFS returns the filesystem of gitDir, merged with its commondir when it
// is a linked worktree or similar.
func repoFS(gitDir, root string) (billy.Filesystem, error) {
	fs := osfs.New(gitDir, osfs.WithBoundOS())
	b, err := os.ReadFile(filepath.Join(gitDir, "commondir"))
	if errors.Is(err, os.ErrNotExist) {
		return fs, nil
	}
	if err != nil {
		return nil, fmt.Errorf("revision: %w", err)
	}
	common, err := inside(relTo(gitDir, strings.TrimSpace(string(b))), root)
	if err != nil {
		return nil, err
	}
	return dotgit.NewRepositoryFilesystem(fs, osfs.New(common, osfs.WithBoundOS())), nil
}

func relTo(base, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

// inside resolves p and checks that it is root or below it.
func inside(p, root string) (string, error) {
	real, err := realPath(p)
	if err != nil {
		return "", fmt.Errorf("revision: %w", err)
	}
	if !within(root, real) {
		return "", fmt.Errorf("revision: git directory %s: %w %s", p, ErrOutsideRoot, root)
	}
	return real, nil
}

func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
