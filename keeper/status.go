package keeper

import (
	"fmt"
	"os"
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

var fenceNames = [...]string{core.FenceUnconfirmed: "unconfirmed", core.FenceOpen: "open", core.FenceFenced: "fenced"}

// fenceName is f as pg_keeper.status shows it; "unknown" before it was read.
func fenceName(f core.Fence) string {
	if f < 0 || int(f) >= len(fenceNames) {
		return "unknown"
	}
	return fenceNames[f]
}

func (r *runner) status(now time.Time) Status {
	v := r.core.View()
	s := Status{
		WorkerPID:        os.Getpid(),
		StartedAt:        r.startedAt,
		UpdatedAt:        now,
		Mode:             v.State.Mode().String(),
		State:            v.State.Name(),
		Partner:          r.settings.PartnerDisplay,
		Fence:            fenceName(r.fenceState),
		Failures:         v.Failures,
		KeepalivesCount:  v.Threshold,
		KeepalivesTime:   r.settings.Interval.Seconds(),
		MaxFailoverLag:   r.settings.Policy.MaxLag,
		OnPartnerTimeout: r.settings.OnPartnerTimeout,
	}
	if !v.LastSuccess.IsZero() {
		s.LastSuccess = ptr(v.LastSuccess)
	}
	if !v.LastFailure.IsZero() {
		s.LastFailure = ptr(v.LastFailure)
		s.FailureClass, s.FailureWhy = v.LastClass.String(), v.LastReason
	}
	if v.State.Mode() == core.StandbyMode {
		s.MasterSync = ptr(v.SyncConfirmed)
		if v.PartnerLSN >= 0 {
			s.PartnerLSN = core.FormatLSN(v.PartnerLSN)
		}
	}
	if v.InFlight != core.NoAction {
		s.ActionRunning = v.InFlight.String()
	}
	if r.settings.Partner != nil {
		// A heartbeat under way ends by nextProbe; the next one starts then.
		next := v.NextProbe
		s.NextHeartbeatAt = ptr(next)
		if v.NextAction != core.NoAction {
			s.NextAction = v.NextAction.String()
			// Each remaining heartbeat times out after an interval; the last
			// one also checks replication, for up to another interval.
			end := next
			if !v.Probing {
				end = end.Add(r.settings.Interval)
			}
			end = end.Add(time.Duration(max(v.Threshold-v.Failures, 1)) * r.settings.Interval)
			s.NextActionAt = ptr(end)
		}
	}
	s.Blocked = v.Blocked
	return s
}

// encodeStatus marshals s, shortening its free texts until it fits.
func encodeStatus(s Status) []byte {
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

// publishStatus updates pg_keeper.status(); a failure is logged once. The
// loop turns ten times a second: the status is written when it changed, and
// at least once a second for next_heartbeat_in and updated_at.
func (r *runner) publishStatus(now time.Time) {
	v := r.core.View()
	sig := fmt.Sprint(v.State, v.Failures, v.InFlight, v.Probing, v.NextProbe, r.fenceState, v.LastFailure, v.LastSuccess)
	if sig == r.publishedSig && now.Sub(r.lastPublished) < time.Second {
		return
	}
	err := r.host.PublishStatus(encodeStatus(r.status(now)))
	if err == nil {
		r.publishedSig, r.lastPublished = sig, now
	}
	if err != nil && !r.statusFailed {
		r.log(core.Warning, "could not publish the status for pg_keeper.status(): "+err.Error())
	}
	r.statusFailed = err != nil
}
