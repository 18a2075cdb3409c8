package keeper

import (
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/settings"
)

// Wake says what ended a Host.Wait.
type Wake int

const (
	WakeLatch    Wake = 0x01
	WakeSocket   Wake = 0x02
	WakeTimeout  Wake = 0x04
	WakeShutdown Wake = 0x08 // SIGTERM, or the postmaster died
	WakeReload   Wake = 0x10 // SIGHUP: the settings were re-read
	WakeWatch    Wake = 0x20 // what the Watch named happened
)

// Watch is what a Host.Wait looks for in shared memory while it waits
// (every Poll, without returning to Go): a replication connection that ends
// must start a heartbeat well before the interval is over, and the end of
// recovery must be seen soon, whatever the interval.
type Watch struct {
	// Poll is how often the wait looks (0: it does not).
	Poll time.Duration
	// Replication: return once ReplicationState differs from it (-1: not
	// watched). A rise returns too, so that the loop's count stays current
	// and the next drop is seen.
	Replication int
	// Promoted: return once the server is out of recovery.
	Promoted bool
}

// Request is what a SQL session asks the keeper for (bgworker/request.c);
// Seq names it in the answer.
type Request struct {
	Seq  uint32
	Kind core.Request
	Arg  string
}

// Host is what the keeper needs from the server it runs in. Every method
// must be called from the goroutine that Run was called on: in the real
// worker that is PostgreSQL's only thread (see pgext). The one exception
// is the function CommitCounter returns.
type Host interface {
	Log(level core.Level, msg string)
	SetTitle(title string)
	// Wait returns when the latch is set, fd is readable, timeout passed, a
	// shutdown was requested, the settings were reloaded or what w watches
	// happened.
	Wait(fd int, timeout time.Duration, w Watch) (Wake, error)
	Settings() (settings.Raw, error)
	InRecovery() (bool, error)
	// Timeline is the timeline the server writes WAL on; 0 in recovery.
	Timeline() (int, error)
	SetFence(f core.Fence) error
	// Fence is the fence as the server holds it: it outlives a restart of
	// the worker, not of the server.
	Fence() (core.Fence, error)
	// CommitCounter returns a function that counts the commits that passed
	// the fence's check and are not done: with the fence closed, none can
	// start, and once it is 0 no more commit record will be written. The
	// function only reads a counter in shared memory: it may be called
	// from any goroutine.
	CommitCounter() func() int
	// ReplicationState is, on a standby, 1 while its WAL receiver streams
	// (else 0); on a primary, the number of walsenders that stream. It is
	// read from shared memory, cheap enough to look at often.
	ReplicationState() (int, error)
	// EmitKeepalive, on a primary, writes and flushes one keepalive record
	// (an XLOG_NOOP) unless WAL was flushed since its previous call, so that
	// the standby hears from an idle master (docs/witness.md). true: it
	// wrote one.
	EmitKeepalive() (bool, error)
	// PublishStatus replaces what pg_keeper.status() shows: a JSON object
	// shorter than publish.StatusMax bytes.
	PublishStatus(json []byte) error
	// AddEvent appends a JSON object shorter than publish.EventMax bytes to what
	// pg_keeper.events() shows (the last publish.EventSlots); ResetEvents empties it.
	AddEvent(json []byte) error
	ResetEvents() error
	// TakeRequest returns the request a SQL session is waiting with, once (ok false: none).
	TakeRequest() (req Request, ok bool, err error)
	// AnswerRequest ends that session's wait: ok false makes it raise an ERROR with msg.
	AnswerRequest(seq uint32, ok bool, msg string) error
}
