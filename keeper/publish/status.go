package publish

import (
	"strings"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/core"
)

// Status is what pg_keeper.status() shows of the keeper; the extension's
// SQL adds what the server itself knows (timeline, LSNs,
// synchronous_standby_names), read when the query runs.
type Status struct {
	WorkerPID int       `json:"worker_pid"`
	StartedAt time.Time `json:"started_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Mode      string    `json:"mode"`
	State     string    `json:"state"`
	Partner   string    `json:"partner"` // partner_conninfo, password masked
	Fence     string    `json:"fence"`   // unconfirmed, open or fenced
	// Maintenance: automatic actions are paused (pg_keeper.pause()), set
	// here or, on a standby, learnt from the master.
	Maintenance bool `json:"maintenance"`
	AutoRejoin  bool `json:"auto_rejoin"`
	// Witness is what the witness last answered, in words ("": none set);
	// Term the highest term of it this node knows.
	Witness string `json:"witness,omitempty"`
	Term    int64  `json:"term,omitempty"`
	// LeaseEnds is when the witness's holder's lease ends, as of the
	// witness's last answer, on this node's clock; LeaseHolder the holder.
	LeaseEnds   *time.Time `json:"lease_ends,omitempty"`
	LeaseHolder string     `json:"lease_holder,omitempty"`

	Failures         int     `json:"consecutive_failures"`
	KeepalivesCount  int     `json:"keepalives_count"`
	KeepalivesTime   float64 `json:"keepalives_time"` // seconds
	OnPartnerTimeout string  `json:"on_partner_timeout"`
	MaxFailoverLag   int64   `json:"max_failover_lag"`

	LastSuccess  *time.Time `json:"last_success"`
	LastFailure  *time.Time `json:"last_failure"`
	FailureClass string     `json:"last_failure_class,omitempty"`
	FailureWhy   string     `json:"last_failure_reason,omitempty"`

	// On a standby: whether the master was last seen synchronous with it,
	// and its WAL position then.
	MasterSync *bool  `json:"master_sync,omitempty"`
	PartnerLSN string `json:"partner_lsn,omitempty"`

	ActionRunning   string     `json:"action_running,omitempty"`
	NextHeartbeatAt *time.Time `json:"next_heartbeat_at"`
	// NextAction is what the keeper does if every heartbeat fails from now
	// on, at NextActionAt at the latest; Blocked why a standby would not
	// promote.
	NextAction   string     `json:"next_action,omitempty"`
	NextActionAt *time.Time `json:"next_action_at"`
	Blocked      string     `json:"next_action_blocked,omitempty"`
}

// FenceName is f as pg_keeper.status shows it; "unknown" before it was read.
func FenceName(f core.Fence) string { return f.String() }

// EncodeStatus marshals s, shortening its free texts until it fits.
func EncodeStatus(s Status) []byte {
	nul := strings.NewReplacer("\x00", "") // jsonb refuses \u0000
	s.Partner, s.FailureWhy, s.Blocked = nul.Replace(s.Partner), nul.Replace(s.FailureWhy), nul.Replace(s.Blocked)
	for n := 1024; ; n /= 2 {
		b, _ := asciiJSON(s)
		if len(b) < StatusMax || n < 16 {
			return b
		}
		s.Partner, s.FailureWhy, s.Blocked = truncate(s.Partner, n), truncate(s.FailureWhy, n), truncate(s.Blocked, n)
	}
}

// Sizes of the shared memory behind pg_keeper.status() and events(); they
// match PGK_STATUS_MAX, PGK_EVENT_MAX and PGK_EVENT_SLOTS, NUL included.
const (
	StatusMax  = 4096
	EventMax   = 1024
	EventSlots = 128
)
