//go:build unix

package archive

import "syscall"

// openFlags are added to O_RDONLY when a file is opened. O_NOFOLLOW states
// the intent; os.Root sets it on every component anyway and, on ELOOP,
// resolves the link itself without ever leaving the root, which is why
// archiver.file also checks that the opened file is the one Lstat saw.
// O_NONBLOCK keeps a FIFO that replaced a regular file from blocking the
// open (it is then rejected by that check).
const openFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK
