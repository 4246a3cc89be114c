// Package archive streams a source directory as a gzip-compressed tar, the
// body that OpenShift's buildconfigs/{name}/instantiatebinary endpoint
// accepts (it is what `oc start-build --from-dir` sends; the build pod
// unpacks it with `bsdtar -x -o -m -f -`).
//
// # Layout
//
// Entry names are relative to the root, use forward slashes and carry no
// leading "./"; directories end in "/". The root itself has no entry. Entries
// come in the lexical order of [io/fs.WalkDir], a directory before its
// contents, so the same tree gives the same sequence of entries.
//
// # What is kept and what is dropped
//
//   - Regular files keep their permission bits (0777, so the executable bit
//     survives); setuid, setgid and sticky bits are dropped.
//   - Directories are archived, empty ones included, with their permission bits.
//   - Modification times are kept, rounded to the second (archive/tar does
//     this). The build pod ignores them (bsdtar -m).
//   - Uid and Gid are always 0 and Uname/Gname empty, so the archive does not
//     reveal the step's user; the pod ignores ownership anyway (bsdtar -o).
//   - Hard links are archived as independent regular files.
//   - Sockets, devices, FIFOs and other special files are skipped, reported
//     through [WithWarnings].
//   - Long names and link targets use PAX records when USTAR cannot hold them
//     (archive/tar picks the format per entry).
//
// # Symlinks are never followed
//
// A source tree is untrusted input: a symlink to /var/run/secrets/... or to
// ../../etc/passwd must not make the step upload what it points to.
//
//   - The root is resolved once with [path/filepath.EvalSymlinks]; the real
//     directory is then walked, so a root that is itself a symlink works.
//   - Everything below the root is reached through an [os.Root], which opens
//     each path component with O_NOFOLLOW relative to its parent directory
//     and refuses any path that would leave the root, even if the tree is
//     changed while it is walked.
//   - A symlink is stored as a symlink (tar TypeSymlink, the target exactly as
//     read with readlink). Its target is never opened and a symlink to a
//     directory is never descended into.
//   - A regular file is opened only after Lstat said it is one, and the opened
//     descriptor must be the same file (device and inode) and still regular;
//     otherwise, for example when it was replaced by a symlink in between,
//     Write fails. Files are opened with O_NONBLOCK on unix so a FIFO swapped
//     in cannot block the walk.
//   - Exactly the size seen by fstat is copied; a file that shrinks while it
//     is read is an error.
//
// # Exclusions
//
// Every pattern is matched against the slash-separated relative path (no
// trailing slash). A matching directory is skipped with all its contents. By
// default [DefaultExclude], oc's `(^|/)\.git(/|$)`, applies; [IncludeGit]
// drops it and [WithExclude] adds more.
//
// # Memory
//
// Files are streamed one at a time through one reusable 32 KiB buffer, so
// memory does not grow with the size of the tree or of its files; only the
// listings of the directories on the current path are held. [Reader] turns
// the walk into an [io.ReadCloser] through an [io.Pipe], with no temporary
// file.
package archive
