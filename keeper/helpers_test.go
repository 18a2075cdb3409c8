package keeper

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// openRunner builds a runner as Run does (newRunner), on the test's
// goroutine, to drive its parts one by one. It is closed when the test
// ends, or before by the close it returns; once either way: closing the
// history twice would panic.
func openRunner(t *testing.T, h Host) (*runner, func()) {
	t.Helper()
	r, err := newRunner(h)
	require.NoError(t, err)
	var once sync.Once
	closeIt := func() { once.Do(r.close) }
	t.Cleanup(closeIt)
	return r, closeIt
}

// newTestRunner is openRunner for a test that leaves the close to its end.
func newTestRunner(t *testing.T, h Host) *runner {
	t.Helper()
	r, _ := openRunner(t, h)
	return r
}

// handleMessages steps the runner through what its goroutines posted, as
// the loop does after a wait.
func handleMessages(r *runner) {
	for _, in := range r.box.Drain() {
		r.step(in)
	}
}

// deliver hands inputs to the runner as its goroutines would, and handles
// each before the next.
func deliver(r *runner, ins ...core.Input) {
	for _, in := range ins {
		r.box.Post(in)
		handleMessages(r)
	}
}

// startAction applies an output that asks for action a alone.
func startAction(r *runner, a core.ActionKind) { r.apply(core.Output{Actions: []core.ActionKind{a}}) }

// awaitMessage waits for a goroutine's input and handles it as the loop
// does.
func awaitMessage(t *testing.T, r *runner) {
	t.Helper()
	require.Equal(t, 1, pollWake(t, r, 5*time.Second), "no message within 5s")
	handleMessages(r)
}

// turn is one turn of the runner's loop before it waits (see runner.loop):
// what the server shows, a tick, the status.
func turn(r *runner, now time.Time) {
	for _, in := range r.observe(now) {
		r.step(in)
	}
	r.step(core.Input{Kind: core.TickInput, At: now})
	r.publishStatus(now)
}

// heartbeat runs a turn of the loop at the time the core's next heartbeat
// is due (now, if that is past) and requires that it starts one; its result
// comes back as a message (see awaitMessage).
func heartbeat(t *testing.T, r *runner) {
	t.Helper()
	require.False(t, r.core.View().Probing, "none under way")
	at := time.Now()
	if next := r.core.View().NextProbe; next.After(at) {
		at = next
	}
	turn(r, at)
	require.True(t, r.core.View().Probing, "a heartbeat was started")
}

// pollWake waits up to timeout for the runner's mailbox to be readable and
// returns poll's count (0 or 1).
func pollWake(t *testing.T, r *runner, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ms := max(int(time.Until(deadline)/time.Millisecond), 0)
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(r.box.Fd()), Events: unix.POLLIN}}, ms)
		if errors.Is(err, unix.EINTR) {
			continue // the Go runtime's preemption signal interrupted poll
		}
		require.NoError(t, err)
		return n
	}
}

// observe steps the runner through what the server shows now (see
// runner.observe).
func observe(r *runner, now time.Time) {
	for _, in := range r.observe(now) {
		r.step(in)
	}
}
