package main

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// interruptKeys turns off the terminal's signal keys on stdin, if it is a
// terminal, and reports Ctrl-C (and Ctrl-D) typed there on the returned
// channel. restore gives the terminal its settings back; it may be called
// more than once. Without a terminal the channel never fires and the
// process stops on SIGINT or SIGTERM as usual.
func interruptKeys() (<-chan struct{}, func()) {
	keys := make(chan struct{})
	fd := int(os.Stdin.Fd())
	saved, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return keys, func() {}
	}
	raw := *saved
	// No SIGINT for Ctrl-C, bytes as typed, nothing echoed; output
	// processing stays as it is.
	raw.Lflag &^= unix.ISIG | unix.ICANON | unix.ECHO
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return keys, func() {}
	}
	var once sync.Once
	restore := func() { once.Do(func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, saved) }) }
	go func() {
		b := make([]byte, 1)
		for {
			if _, err := os.Stdin.Read(b); err != nil {
				return
			}
			if b[0] == 0x03 || b[0] == 0x04 { // Ctrl-C, Ctrl-D
				close(keys)
				return
			}
		}
	}()
	return keys, restore
}
