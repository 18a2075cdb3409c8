// Package testproc holds what the keeper's tests of commands share: telling
// whether a process they started is gone.
package testproc

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Gone tells whether pid has exited (a zombie counts: nothing may reap it
// in a container).
func Gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) S ...
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// WaitGone fails t if pid still runs after 3 seconds, and kills it then.
func WaitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !Gone(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d still runs", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
