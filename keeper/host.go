package keeper

import (
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/core"
)

// Wake says what ended a Host.Wait.
type Wake int

const (
	WakeLatch    Wake = 0x01
	WakeSocket   Wake = 0x02
	WakeTimeout  Wake = 0x04
	WakeShutdown Wake = 0x08 // SIGTERM, or the postmaster died
	WakeReload   Wake = 0x10 // SIGHUP: the settings were re-read
)

// RawSettings are the GUC values as the server holds them.
type RawSettings struct {
	PartnerConninfo     string
	MyConninfo          string
	AfterCommand        string
	KeepalivesTime      float64 // seconds
	KeepalivesCount     int
	AfterCommandTimeout int // seconds
	StateChangeCommand  string
	StateChangeTimeout  int    // seconds
	MaxFailoverLag      int64  // bytes
	FailoverOnTimeout   bool   // pg_keeper.on_partner_timeout = failover
	OnPartnerTimeout    string // its value, as the server names it

	Port       int
	SocketDirs string
	OSUser     string
	OSHome     string
	DataDir    string
	// PrimaryConninfo and ClusterName give the application_name this
	// server's WAL receiver streams with.
	PrimaryConninfo string
	ClusterName     string
	SystemID        uint64    // pg_control_system().system_identifier
	StartTime       time.Time // pg_postmaster_start_time()

	Maintenance bool // pg_keeper.maintenance: no automatic action
	AutoRejoin  bool // pg_keeper.auto_rejoin: a superseded master rewinds and follows
	// What a rejoin needs: pg_rewind, which wants wal_log_hints or data
	// checksums, and the postmaster to stop and restart.
	BinDir        string // the directory of the running postgres executable
	WalLogHints   bool   // wal_log_hints
	DataChecksums bool   // data checksums are on
	PostmasterPID int
}

// RequestKind is what a SQL session asks the keeper for (bgworker/request.c).
type RequestKind int

const (
	RequestSwitchover     RequestKind = 1 // pg_keeper.switchover() on the master
	RequestPause          RequestKind = 2 // pg_keeper.pause()
	RequestResume         RequestKind = 3 // pg_keeper.resume()
	RequestTakeover       RequestKind = 4 // the master's keeper, on the standby: take over once I have stopped
	RequestTakeoverCancel RequestKind = 5
)

// Request is one such request; Seq names it in the answer.
type Request struct {
	Seq  uint32
	Kind RequestKind
	Arg  string
}

// Host is what the keeper needs from the server it runs in. Every method
// must be called from the goroutine that Run was called on: in the real
// worker that is PostgreSQL's only thread (see pgext).
type Host interface {
	Log(level core.Level, msg string)
	SetTitle(title string)
	// Wait returns when the latch is set, fd is readable, timeout passed, a
	// shutdown was requested or the settings were reloaded.
	Wait(fd int, timeout time.Duration) (Wake, error)
	Settings() (RawSettings, error)
	InRecovery() (bool, error)
	// Timeline is the timeline the server writes WAL on; 0 in recovery.
	Timeline() (int, error)
	SetFence(f core.Fence) error
	// Fence is the fence as the server holds it: it outlives a restart of
	// the worker, not of the server.
	Fence() (core.Fence, error)
	// Committing is the number of commits that passed the fence's check
	// and are not done: with the fence closed, none can start, and once it
	// is 0 no more commit record will be written.
	Committing() (int, error)
	// ReplicationState is, on a standby, 1 while its WAL receiver streams
	// (else 0); on a primary, the number of walsenders that stream. It is
	// read from shared memory, cheap enough to look at often.
	ReplicationState() (int, error)
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
