package keeper

import (
	"fmt"
	"os"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/publish"
)

func (r *runner) statusOf(now time.Time) publish.Status {
	v := r.core.View()
	s := publish.Status{
		WorkerPID:        os.Getpid(),
		StartedAt:        r.startedAt,
		UpdatedAt:        now,
		Mode:             v.State.Mode().String(),
		State:            v.State.Name(),
		Partner:          r.settings.Partner.Display(),
		Fence:            publish.FenceName(r.fence.held),
		Failures:         v.Failures,
		KeepalivesCount:  v.Threshold,
		KeepalivesTime:   r.settings.Interval.Seconds(),
		MaxFailoverLag:   r.settings.Policy.MaxLag,
		OnPartnerTimeout: r.settings.OnPartnerTimeout,
		Maintenance:      r.core.Paused(),
		AutoRejoin:       r.settings.AutoRejoin,
		Witness:          v.Witness,
		Term:             v.Term,
	}
	if !v.LeaseEnds.IsZero() {
		s.LeaseEnds, s.LeaseHolder = publish.Ptr(v.LeaseEnds), v.LeaseHolder
	}
	if !v.LastSuccess.IsZero() {
		s.LastSuccess = publish.Ptr(v.LastSuccess)
	}
	if !v.LastFailure.IsZero() {
		s.LastFailure = publish.Ptr(v.LastFailure)
		s.FailureClass, s.FailureWhy = v.LastClass.String(), v.LastReason
	}
	if v.State.Mode() == core.StandbyMode {
		s.MasterSync = publish.Ptr(v.SyncConfirmed)
		if v.PartnerLSN >= 0 {
			s.PartnerLSN = core.FormatLSN(v.PartnerLSN)
		}
	}
	if v.InFlight != core.NoAction {
		s.ActionRunning = v.InFlight.String()
	}
	if r.settings.Partner.Usable() {
		// A heartbeat under way ends by nextProbe; the next one starts then.
		next := v.NextProbe
		s.NextHeartbeatAt = publish.Ptr(next)
		if v.NextAction != core.NoAction {
			s.NextAction = v.NextAction.String()
			// Each remaining heartbeat times out after an interval; the last
			// one also checks replication, for up to another interval.
			end := next
			if !v.Probing {
				end = end.Add(r.settings.Interval)
			}
			end = end.Add(time.Duration(max(v.Threshold-v.Failures, 1)) * r.settings.Interval)
			s.NextActionAt = publish.Ptr(end)
		}
	}
	s.Blocked = v.Blocked
	return s
}

// statusPublisher remembers what was last published, and whether
// publishing failed (said once).
type statusPublisher struct {
	failed    bool
	published time.Time
	sig       string // what the last published status said, in short
}

// publishStatus updates pg_keeper.status(); a failure is logged once. The
// loop turns at each heartbeat and event, and at least once a second
// (maxTurn): the status is written when it changed, and at least once a
// second for updated_at (next_heartbeat_in is computed when it is read).
func (r *runner) publishStatus(now time.Time) {
	v := r.core.View()
	p := &r.status
	sig := fmt.Sprint(v.State, r.core.Paused(), v.Failures, v.InFlight, v.Probing, v.NextProbe, r.fence.held, v.LastFailure, v.LastSuccess)
	if sig == p.sig && now.Sub(p.published) < time.Second {
		return
	}
	err := r.host.PublishStatus(publish.EncodeStatus(r.statusOf(now)))
	if err == nil {
		p.sig, p.published = sig, now
	}
	if err != nil && !p.failed {
		r.log(core.Warning, "could not publish the status for pg_keeper.status(): "+err.Error())
	}
	p.failed = err != nil
}
