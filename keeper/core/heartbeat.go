package core

import (
	"fmt"
	"time"
)

// tick is what time passing decides: with no partner set at all an
// unconfirmed server has nothing to wait for (the keeper is inactive); a
// takeover's time may be up; a heartbeat may be due. Without a usable
// partner there is nothing to probe.
func (c *Core) tick(now time.Time, out *Output) {
	if !c.partnerSet && c.state == MasterUnconfirmed {
		c.fire(c.confirmed(), "pg_keeper.partner_conninfo is not set: no partner to check, the keeper is inactive", now, out)
		return
	}
	if c.takeoverExpired(now) {
		c.fire(TakeoverExpired, fmt.Sprintf("after %s", takeoverTimeout), now, out)
		return
	}
	if c.probing || now.Before(c.nextProbe) || !c.partnerUsable {
		return
	}
	c.probing = true
	c.nextProbe = now.Add(c.interval)
	if c.state == StandbyTakingOver {
		c.nextProbe = now.Add(min(c.interval, takeoverPoll))
	}
	mode := c.state.Mode()
	out.Probe = &ProbeRequest{Mode: mode, Streaming: mode == MasterMode, Replication: true,
		PlainFirst: c.plainFirst, Gen: c.partnerGen, Window: c.window(), Keepalive: c.keepalive()}
	if req := c.witnessRequest(); req != nil {
		out.Witness, c.witnessBusy = req, true
	}
}

// learnTLS: a heartbeat that had to go without TLS under sslmode=prefer
// makes the next ones try without it first, until the setting is given
// again; what a heartbeat learnt of a setting since replaced counts for
// nothing.
func (c *Core) learnTLS(p ProbeResult, out *Output) {
	if !p.TLSRefused || p.Gen != c.partnerGen || c.plainFirst {
		return
	}
	c.plainFirst = true
	out.Logs = append(out.Logs, LogLine{Info, "the partner refused TLS (sslmode=prefer): heartbeats now try without it first; " +
		"set sslmode in pg_keeper.partner_conninfo to choose"})
}

// streamingCheck turns a good heartbeat of a master whose standby does not
// stream into a failure: heartbeats get through but replication does not,
// and with synchronous replication every commit would hang. While
// asynchronous, a standby that does not stream yet is only not caught up.
func (c *Core) streamingCheck(p ProbeResult) ProbeResult {
	if !p.OK || !p.StreamingChecked || p.CaughtUp || c.state.Mode() != MasterMode || c.state == MasterAsync {
		return p
	}
	return ProbeResult{Class: FailNotStreaming, LocalLSN: -1, Partner: p.Partner,
		Detail: "the standby answers but no walsender streams to it"}
}

func (c *Core) confirmed() Trigger {
	if c.asyncAtStart {
		return ConfirmedAsync
	}
	return Confirmed
}

// confirms says why a heartbeat proves that the partner did not replace
// this server; "" when it does not.
func confirms(p ProbeResult) string {
	switch {
	case p.OK, p.Class == FailNotStreaming:
		return "the partner answered as a standby"
	case p.Class == FailOlderPrimary:
		return "the partner is a primary on an older timeline"
	}
	return ""
}

// probe counts a heartbeat against the threshold and names the trigger.
func (c *Core) probe(at time.Time, p ProbeResult, out *Output) (Trigger, string) {
	partner := c.state.Mode().partner()
	if p.OK {
		if c.failures > 0 {
			out.Logs = append(out.Logs, LogLine{Info, fmt.Sprintf(
				"heartbeat to %s succeeded after %d failed", partner, c.failures)})
		}
		c.failures, c.lastLogged, c.deposed, c.aliveWhileFailing = 0, "", false, 0
		c.fenceFailedAt = time.Time{}
		c.lastSuccess = at
		facts := p.Partner
		c.lastFacts = &facts
		c.partnerMaintenance = facts.Maintenance
		switch {
		case facts.SyncStandby:
			c.syncConfirmed = true
		case !facts.SyncMode, facts.SyncElsewhere:
			c.syncConfirmed = false
		}
		if p.CaughtUp && c.state == MasterAsync {
			return PartnerCaughtUp, ""
		}
		return PartnerUp, ""
	}

	c.failures++
	if p.ReplicationAlive {
		c.aliveWhileFailing++
	}
	c.lastFailure = at
	c.lastClass = p.Class
	c.lastAlive = p.ReplicationAlive
	c.lastReason = p.Class.String() + ": " + p.Detail
	// Log every failure up to the threshold, then only a change of reason.
	// Taking over, failures are expected and polled for ten times a
	// second: a change of reason only.
	if (c.failures <= c.threshold && c.state != StandbyTakingOver) || c.lastReason != c.lastLogged {
		level := Warning
		if p.Class.Misconfigured() {
			level = Error
		}
		out.Logs = append(out.Logs, LogLine{level, fmt.Sprintf(
			"heartbeat to %s failed (%d/%d): %s", partner, c.failures, c.threshold, c.lastReason)})
		c.lastLogged = c.lastReason
	}
	switch {
	case p.Class == FailSuperseded:
		return c.superseded()
	case c.state == StandbyTakingOver:
		return c.takeoverReady(p)
	case c.failures < c.threshold:
		return PartnerDown, ""
	case heardFrom(p) || p.Class.Answered():
		return HeartbeatLost, ""
	}
	count := fmt.Sprintf("%d failed heartbeats in a row", c.failures)
	if risk := c.risk(p); risk != "" {
		return PartnerLostUnsafe, count + "; " + risk
	}
	if w, why := c.witnessFirst(p); why != "" {
		return PartnerLostUnsafe, count + "; " + why
	} else if w {
		return PartnerLostWitness, count
	}
	if fence, wait := c.fenceFirst(p, at); wait != "" {
		return PartnerLostUnsafe, count + "; " + wait
	} else if fence {
		return PartnerLostFence, count
	}
	return PartnerLost, count
}

// risk says why acting on a lost partner could lose acknowledged commits
// or leave two primaries taking writes; "" when it cannot.
func (c *Core) risk(p ProbeResult) string {
	ambiguous := !c.certain(p)
	what := p.Class.String()
	if ambiguous && p.Class == FailRefused {
		what = "a refused connection while replication with it outlived the failed heartbeats (a firewall rejecting, not a stopped server)"
	}
	if c.state.Mode() == MasterMode {
		switch {
		case !ambiguous || c.deposed, c.witnessSet:
			// With a witness, its compare-and-set settles it (witnessFirst).
		case c.policy.FailoverOnTimeout:
			return fmt.Sprintf("%s is no proof the standby is down, and with pg_keeper.on_partner_timeout = failover it may be promoting itself", what)
		case c.fenceCommand:
			return fmt.Sprintf("%s is no proof the standby is down, and with pg_keeper.fence_command set it may be powering this server off to promote itself", what)
		}
		return ""
	}
	if p.Class == FailConfig {
		return "the heartbeat could not even be tried, so nothing is known of the master: fix pg_keeper.partner_conninfo"
	}
	if ambiguous && !c.policy.FailoverOnTimeout && !c.fenceCommand && !c.witnessSet {
		return fmt.Sprintf("%s is no proof the master is down (pg_keeper.on_partner_timeout = keep_master); "+
			"if it is, promote by hand: SELECT pg_promote()", what)
	}
	if c.lastFacts == nil {
		return "the master was not reached once since start"
	}
	if c.paused() {
		return "maintenance mode is on (pg_keeper.pause() on the master): not promoting until pg_keeper.resume() there"
	}
	f := c.lastFacts
	if c.syncConfirmed {
		return "" // every acknowledged commit was flushed here before it was acknowledged
	}
	lag := f.LSN - p.LocalLSN
	if c.policy.MaxLag > 0 && f.LSN >= 0 && p.LocalLSN >= 0 && lag <= c.policy.MaxLag {
		return ""
	}
	return fmt.Sprintf("at the last good heartbeat the master was not in synchronous replication with this standby, "+
		"so acknowledged commits may be missing here (master was at %s, this standby has %s); "+
		"pg_keeper.max_failover_lag accepts losing up to that many bytes", FormatLSN(f.LSN), FormatLSN(p.LocalLSN))
}

// certain: the failure proves the partner's server down. A refusal does so
// only while it is consistent with a dead server: replication did not
// outlive the failed heartbeats (one sighting may race the crash).
func (c *Core) certain(p ProbeResult) bool {
	if p.Class == FailRefused && c.aliveWhileFailing >= 2 {
		return false
	}
	return p.Class.Certain()
}
