package cluster

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// Eventually calls cond every `every` until it returns true, and fails the
// test with msg if that has not happened within timeout.
func Eventually(t testing.TB, timeout, every time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, msg)
		}
		time.Sleep(every)
	}
}

var (
	portsMu sync.Mutex
	ports   = map[int]bool{} // handed out by this process, never given twice
)

// freePort asks the kernel for a free TCP port on 127.0.0.1. The listener
// is closed before the server binds, so another process could grab the port
// in between; in practice the kernel does not hand it out again that soon.
func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("pick a free port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !ports[p] {
			ports[p] = true
			return p, nil
		}
	}
	return 0, fmt.Errorf("pick a free port: no new port after 20 tries")
}
