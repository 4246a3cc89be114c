package sandbox

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// Another sandbox (another process) cannot take a leased port until the
// lease is released, and the port is bindable by the component it is for.
func TestPortLeaseExcludesOtherSandboxes(t *testing.T) {
	l, err := leasePort()
	if err != nil {
		t.Fatal(err)
	}
	low, high := leaseRange()
	if l.Port < low || l.Port > high {
		t.Fatalf("port %d outside %d-%d", l.Port, low, high)
	}
	lock := filepath.Join(os.TempDir(), "ocbuild-sandbox-ports", strconv.Itoa(l.Port))
	other, err := os.OpenFile(lock, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		t.Fatalf("port %d leased twice", l.Port)
	}
	ln, err := net.Listen("tcp", loopback(l.Port))
	if err != nil {
		t.Fatalf("leased port not bindable: %v", err)
	}
	ln.Close()
	l.release()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("port %d still held after release: %v", l.Port, err)
	}
}
