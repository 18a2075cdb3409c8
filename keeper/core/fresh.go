package core

import "time"

// Freshness (docs/witness.md, "Silence is not life"): replication counts as
// a sign that the partner lives only while the partner was heard from
// within the window. A connection to a host that vanished without a word
// stays open until wal_receiver_timeout or wal_sender_timeout (a minute by
// default), and for that long would have been taken for life.

// freshWindow is how long replication may be silent and still count:
// the master writes a keepalive record every interval, so a live partner is
// heard from at least that often; the slack covers one late heartbeat.
func freshWindow(interval time.Duration) time.Duration {
	return max(2*interval, interval+250*time.Millisecond)
}

// window is the freshness window the standby's local check applies, 0 for
// the check of before: only a master that writes keepalive records
// (PartnerFacts.Keepalives) is heard from while idle.
func (c *Core) window() time.Duration {
	if c.state.Mode() != StandbyMode || c.lastFacts == nil || !c.lastFacts.Keepalives {
		return 0
	}
	return freshWindow(c.interval)
}

// keepalive: this server is a primary whose commits are open, so it keeps
// replication talking. A primary that has not confirmed its role writes
// nothing: an old master that came back must not add WAL its successor
// lacks.
func (c *Core) keepalive() bool {
	return c.state.Mode() == MasterMode && c.Fence() == FenceOpen
}

// fresh applies the window on a master to its sample of the standby's
// walsender: the standby confirmed a new flush position within the window,
// by this server's clock (its reply_time is the standby's clock). Each
// sample, good heartbeat or failed, moves the mark. A standby's local
// check applies the window itself (ProbeRequest.Window).
func (c *Core) fresh(at time.Time, p ProbeResult) ProbeResult {
	if c.state.Mode() != MasterMode || !p.FlushKnown {
		return p
	}
	if p.FlushLSN != c.walFlush {
		c.walFlush, c.walFlushAt = p.FlushLSN, at
	}
	p.FreshKnown = true
	p.ReplicationFresh = p.ReplicationAlive && p.FlushLSN >= 0 && at.Sub(c.walFlushAt) <= freshWindow(c.interval)
	return p
}

// heardFrom: a failed heartbeat's replication shows the partner alive.
func heardFrom(p ProbeResult) bool {
	if p.FreshKnown {
		return p.ReplicationAlive && p.ReplicationFresh
	}
	return p.ReplicationAlive
}
