package core

import "time"

// View is what the core knows, for pg_keeper.status().
type View struct {
	State     State
	Failures  int
	Threshold int
	InFlight  ActionKind
	// SyncConfirmed: on a standby, the master was last seen synchronous
	// with it, so a promotion loses no acknowledged commit.
	SyncConfirmed bool
	PartnerLSN    int64 // the master's WAL position at the last good heartbeat; -1 unknown
	// NextAction is what the keeper does if the partner stays down for
	// max(Threshold - Failures, 1) more heartbeats (NoAction: nothing), and
	// Blocked why it would not, on a standby, although the master is gone.
	NextAction ActionKind
	Blocked    string
	// The last good and the last failed heartbeat (zero: none yet), and
	// the class and reason of that failure.
	LastSuccess, LastFailure time.Time
	LastClass                FailureClass
	LastReason               string
	// NextProbe is when the next heartbeat is due, or, while Probing,
	// when the one under way times out.
	NextProbe time.Time
	Probing   bool
	// The settings the core decides with.
	Policy                    Policy
	Interval                  time.Duration
	PartnerSet, PartnerUsable bool
	// AliveWhileFailing counts the failed heartbeats of the current run at
	// which replication with the partner still worked.
	AliveWhileFailing int
	// Witness says what the witness last answered ("": none set); Term is
	// the highest term of it this node knows.
	Witness string
	Term    int64
	// LeaseEnds is when the lease of the witness's holder ends, on this
	// node's clock, as of the witness's last answer (zero: unknown);
	// LeaseHolder names the holder (host:port).
	LeaseEnds   time.Time
	LeaseHolder string
}

// View reports the core's state without changing it.
func (c *Core) View() View {
	v := View{State: c.state, Failures: c.failures, Threshold: c.threshold, InFlight: c.inFlight,
		SyncConfirmed: c.syncConfirmed, PartnerLSN: -1, LastSuccess: c.lastSuccess, LastFailure: c.lastFailure,
		LastClass: c.lastClass, LastReason: c.lastReason, NextProbe: c.nextProbe, Probing: c.probing,
		Policy: c.policy, Interval: c.interval, PartnerSet: c.partnerSet, PartnerUsable: c.partnerUsable,
		AliveWhileFailing: c.aliveWhileFailing, Witness: c.witnessView(), Term: c.term}
	if c.witnessAnswered() && c.witness.Found {
		// The age was read at witnessAt: what is left then, from then on.
		v.LeaseEnds = c.witnessAt.Add(c.witness.Lease - c.witness.LeaseAge)
		v.LeaseHolder = c.witness.Holder
	}
	if c.lastFacts != nil {
		v.PartnerLSN = c.lastFacts.LSN
	}
	if c.inFlight != NoAction {
		return v // an action is under way: its result decides what comes next
	}
	// Suppose the partner refuses connections, the one failure that proves
	// it down, and, when max_failover_lag may allow a promotion, that this
	// standby has what the master had at the last good heartbeat (the core
	// does not follow the standby's own position).
	hypothetical := ProbeResult{Class: FailRefused, LocalLSN: -1}
	if c.lastFacts != nil && c.policy.MaxLag > 0 {
		hypothetical.LocalLSN = c.lastFacts.LSN
	}
	if risk := c.risk(hypothetical); risk != "" && c.state.Mode() == StandbyMode {
		v.Blocked = risk
		return v
	}
	v.NextAction = transitionIndex[c.state][PartnerLost].Do
	return v
}
