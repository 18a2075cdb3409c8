package executor

import (
	"fmt"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"golang.org/x/sys/unix"
)

// Mailbox is the one way back to the main loop: goroutines post inputs for
// the core, and write a byte to a pipe that the loop's latch wait watches
// (WaitLatchOrSocket), since only the main thread may wait on the latch.
type Mailbox struct {
	ch   chan core.Input
	r, w int
}

// mailboxSize bounds what may wait for the loop: a few results at a time.
const mailboxSize = 32

func NewMailbox() (*Mailbox, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("could not create a pipe: %v", err)
	}
	return &Mailbox{ch: make(chan core.Input, mailboxSize), r: p[0], w: p[1]}, nil
}

// Post hands in to the loop from a goroutine; it waits while the mailbox
// is full.
func (m *Mailbox) Post(in core.Input) {
	m.ch <- in
	_, _ = unix.Write(m.w, []byte{0})
}

// Offer hands in to the loop without waiting (from the loop itself, or from
// a goroutine that must not wait); false when the mailbox is full.
func (m *Mailbox) Offer(in core.Input) bool {
	select {
	case m.ch <- in:
		_, _ = unix.Write(m.w, []byte{0})
		return true
	default:
		return false
	}
}

// Fd is the pipe's read end, for the loop's wait.
func (m *Mailbox) Fd() int { return m.r }

// Drain empties the pipe and returns what was posted, in order.
func (m *Mailbox) Drain() []core.Input {
	var buf [64]byte
	for {
		if n, err := unix.Read(m.r, buf[:]); n <= 0 || err != nil {
			break
		}
	}
	var ins []core.Input
	for {
		select {
		case in := <-m.ch:
			ins = append(ins, in)
		default:
			return ins
		}
	}
}

// Close closes the read end; the write end stays open, as a goroutine
// still running may write to it.
func (m *Mailbox) Close() { unix.Close(m.r) }
