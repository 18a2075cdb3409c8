package core

import (
	"fmt"
	"time"
)

// Fencing before a promotion (pg_keeper.fence_command, docs/witness.md):
// two nodes cannot tell a dead master from a cut network, so on a loss
// that does not prove the master down, the standby first makes sure it is
// down, as Pacemaker does for two nodes: the command powers it off, and
// exit status 0 means it is off. Only then does the standby promote.

const whyFencing = "master lost, and the failure does not prove it down: running pg_keeper.fence_command to power it off before promoting"

// fencingRows are the rows of a standby fencing its master. The command
// cannot be called back: once it runs, its result decides, whatever the
// heartbeats say meanwhile (a master powered off as it answered is off).
var fencingRows = []Transition{
	{From: StandbyFencingPartner, On: PartnerUp, To: StandbyFencingPartner, Level: Warning,
		Why: "master answers again, but pg_keeper.fence_command is under way: its result decides"},
	unexpected(StandbyFencingPartner, PartnerCaughtUp),
	stay(StandbyFencingPartner, PartnerDown),
	stay(StandbyFencingPartner, HeartbeatLost),
	stay(StandbyFencingPartner, PartnerLost),
	stay(StandbyFencingPartner, PartnerLostUnsafe),
	stay(StandbyFencingPartner, PartnerLostFence),
	{From: StandbyFencingPartner, On: ActionDone, To: StandbyPromoting, Do: Promote, Level: Warning,
		Why: "pg_keeper.fence_command reports the master powered off: promoting this standby"},
	{From: StandbyFencingPartner, On: ActionFailed, To: StandbyNotPromoting, Level: Warning,
		Why: "pg_keeper.fence_command failed, so the master may be alive: not promoting"},
	// The command's result decides first; recovery ended is seen again
	// after it, in the state it leads to.
	stay(StandbyFencingPartner, RecoveryEnded),
	unexpected(StandbyFencingPartner, Superseded),
	refuseSwitchover(StandbyFencingPartner, whyNotStandby),
	refuseTakeover(StandbyFencingPartner, whyTakeoverHeartbeat),
}

// fenceRow is s's row for PartnerLostFence: a standby that would promote
// fences first; one promoting or fencing already goes on. The core never
// names it in master mode (see fenceFirst), before the master was reached
// (risk) or taking over (takeoverReady).
func fenceRow(s State) []Transition {
	switch s {
	case StandbyFencingPartner:
		return nil // in fencingRows
	case StandbyConnected, StandbyHeartbeatLost, StandbyNotPromoting:
		return []Transition{{From: s, On: PartnerLostFence, To: StandbyFencingPartner, Do: FenceMaster, Level: Warning, Why: whyFencing}}
	case StandbyPromoting, StandbyTakeoverPromoting, StandbyClaiming:
		return []Transition{stay(s, PartnerLostFence)}
	}
	return []Transition{unexpected(s, PartnerLostFence)}
}

// fenceRetry: after fence_command failed, it runs again at a failed
// heartbeat no sooner than this; a good heartbeat resets it.
const fenceRetry = 10 * time.Second

// fenceFirst says whether a loss of the master that is otherwise safe to
// act on goes through fence_command first ("" and true), or must not lead
// to a promotion yet (a reason). It applies to a failure that does not
// prove the master down; with no fence_command, risk decides as before.
func (c *Core) fenceFirst(p ProbeResult, at time.Time) (fence bool, why string) {
	if !c.fenceCommand || c.state.Mode() != StandbyMode || c.certain(p) {
		return false, ""
	}
	if !c.fenceFailedAt.IsZero() && at.Sub(c.fenceFailedAt) < fenceRetry {
		return false, fmt.Sprintf("pg_keeper.fence_command failed %s ago; it runs again %s after a failure",
			at.Sub(c.fenceFailedAt).Round(time.Second), fenceRetry)
	}
	return true, ""
}

// SetFenceCommand says whether pg_keeper.fence_command is set.
func (c *Core) SetFenceCommand(set bool) { c.fenceCommand = set }
