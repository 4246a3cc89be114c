package sandbox

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// A component that takes its port as a flag (etcd, kube-apiserver, the
// Shipwright controller's metrics) cannot be handed a listener, so the port
// is chosen before the component binds it. Two races make a port chosen by
// listening on :0 and closing fail to bind moments later: another sandbox
// (the e2e packages run side by side) choosing the same port, and an
// outgoing connection taking it as its local port, since :0 hands out ports
// of the kernel's ephemeral range. So ports come from below that range, and
// each is leased through an exclusive lock on a file shared by every sandbox
// on the machine (as envtest does), held until the sandbox stops.

// portLease is one port held for one sandbox.
type portLease struct {
	Port int
	lock *os.File
}

func (l *portLease) release() {
	if l.lock != nil {
		_ = l.lock.Close() // closing drops the flock
	}
}

// leaseRange is the range ports are leased from: the registered ports below
// the kernel's ephemeral range.
func leaseRange() (low, high int) {
	low, high = 10000, 32767
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return low, high
	}
	f := strings.Fields(string(b))
	if len(f) == 2 {
		if eph, err := strconv.Atoi(f[0]); err == nil && eph > low+1000 {
			high = eph - 1
		}
	}
	return low, high
}

// leasePort leases a port that no other sandbox holds and that nothing
// listens on now.
func leasePort() (*portLease, error) {
	dir := filepath.Join(os.TempDir(), "ocbuild-sandbox-ports")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("leasing a port: %w", err)
	}
	low, high := leaseRange()
	for range 200 {
		port := low + rand.IntN(high-low+1)
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("leasing a port: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close() // another sandbox holds it
			continue
		}
		l, err := net.Listen("tcp", loopback(port))
		if err != nil {
			f.Close() // something else listens on it
			continue
		}
		l.Close()
		return &portLease{Port: port, lock: f}, nil
	}
	return nil, fmt.Errorf("leasing a port: no free port in %d-%d after 200 tries", low, high)
}

// port leases a port for the sandbox's lifetime.
func (sb *Sandbox) port() (int, error) {
	l, err := leasePort()
	if err != nil {
		return 0, err
	}
	sb.mu.Lock()
	sb.ports = append(sb.ports, l)
	sb.mu.Unlock()
	return l.Port, nil
}
