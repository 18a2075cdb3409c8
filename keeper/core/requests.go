package core

import (
	"fmt"
	"time"
)

// takeoverExpiredInput: the tick found the takeover's time up.
const takeoverExpiredInput InputKind = 100

// takeoverTimeout is how long a standby waits for the master that
// announced a switchover to stop; takeoverPoll how often it looks
// meanwhile, so that the write pause ends soon after the master stopped.
const (
	takeoverTimeout = 60 * time.Second
	takeoverPoll    = 100 * time.Millisecond
)

// SetMaintenance says whether pg_keeper.maintenance is on at this server.
func (c *Core) SetMaintenance(on bool) { c.maintenance = on }

// SetRejoin sets pg_keeper.auto_rejoin, and why a rewind is impossible
// here ("" when it is possible).
func (c *Core) SetRejoin(on bool, blocked string) { c.autoRejoin, c.rejoinBlocked = on, blocked }

// paused: no promotion, switchover or rejoin. A standby is paused by the
// master's setting as last seen, or by its own.
func (c *Core) paused() bool {
	return c.maintenance || (c.state.Mode() == StandbyMode && c.partnerMaintenance)
}

// request names the trigger of a request, or answers it at once, or
// names the action whose result answers it.
func (c *Core) request(ev Input) (Trigger, *Answer, ActionKind) {
	refuse := func(why string) (Trigger, *Answer, ActionKind) { return 0, &Answer{Msg: why}, NoAction }
	switch ev.Request {
	case PauseRequest, ResumeRequest:
		if c.state.Mode() == StandbyMode {
			return refuse("this server is a standby: run pg_keeper.pause() and pg_keeper.resume() on the master; the standby learns maintenance mode from it")
		}
		// Pausing changes no state: it is a setting, which the runner
		// writes; the result answers.
		if ev.Request == ResumeRequest {
			return 0, nil, ClearMaintenance
		}
		return 0, nil, SetMaintenance
	case SwitchoverRequest:
		switch {
		case c.paused():
			return refuse("switchover refused: maintenance mode is on: SELECT pg_keeper.resume() first")
		case c.state == MasterConnected && c.failures > 0:
			return refuse("switchover refused: the last heartbeat to the standby failed")
		case c.state == MasterConnected && c.inFlight != NoAction:
			return refuse("switchover refused: " + c.inFlight.String() + " is under way")
		}
		return SwitchoverRequested, nil, NoAction
	case TakeoverRequest:
		// Only this server's own setting: the master checked its own, and
		// what this standby last saw of it may be a heartbeat old.
		if c.maintenance {
			return refuse("takeover refused: maintenance mode is on")
		}
		if c.state == StandbyConnected {
			c.takeoverLSN, c.takeoverDeadline = ev.LSN, ev.At.Add(takeoverTimeout)
		}
		return TakeoverRequested, nil, NoAction
	case TakeoverCancelRequest:
		return TakeoverCancelled, nil, NoAction
	}
	return refuse(fmt.Sprintf("unknown request %d", ev.Request))
}

// answerRequest answers the request whose trigger t follows, and the
// switchover's caller once its outcome is known.
func (c *Core) answerRequest(t *Transition, trig Trigger, msg, extra string, out *Output) {
	switch trig {
	case SwitchoverRequested, TakeoverRequested:
		if t.To == t.From {
			out.Answer = &Answer{Msg: msg}
			return
		}
		if trig == SwitchoverRequested {
			c.switchoverCaller = true // answered when it is done or failed
			return
		}
		out.Answer = &Answer{OK: true, Msg: t.Why}
		return
	case TakeoverCancelled:
		switch {
		case t.From == StandbyTakingOver:
			out.Answer = &Answer{OK: true, Msg: "takeover called off"}
		case t.From == StandbyPromoting || t.From == StandbyTakeoverPromoting || t.From.Mode() == MasterMode:
			// The master must not take writes again: this server may be
			// the primary already.
			out.Answer = &Answer{Msg: "too late to call the takeover off: this server is promoting or promoted (" + t.From.String() + ")"}
		default:
			out.Answer = &Answer{OK: true, Msg: "no takeover to call off (" + t.From.String() + ")"}
		}
		return
	}
	if !c.switchoverCaller || t.To == MasterHandingOver || t.To == MasterSwitchingOver {
		return
	}
	c.switchoverCaller = false
	out.Answer = &Answer{OK: t.To == MasterHandedOver, Msg: msg}
	if t.To == MasterHandedOver {
		out.Answer.Msg = "switchover under way: this server stops and restarts as a standby; the partner promotes once it has all WAL"
		if extra != "" {
			out.Answer.Msg += " (" + extra + ")"
		}
	}
}

// superseded names the trigger of a heartbeat that found a newer primary:
// one answer from it is proof enough.
func (c *Core) superseded() (Trigger, string) {
	if !c.autoRejoin {
		return Superseded, ""
	}
	switch {
	case c.paused():
		return Superseded, "pg_keeper.auto_rejoin is on but maintenance mode is too: not rejoining"
	case c.rejoinBlocked != "":
		return Superseded, "pg_keeper.auto_rejoin is on but cannot rewind: " + c.rejoinBlocked
	}
	return SupersededRejoin, ""
}

// stopped: a failure that shows the master's server stopped or stopping
// (refused, shutting down) or back as a standby. A timeout, or any other
// failure, may be the network while the master still takes writes: it
// never promotes a standby taking over (after the takeover's time, the
// usual rules weigh it).
func stopped(class FailureClass) bool {
	return class == FailRefused || class == FailStarting || class == FailRecovery
}

// takeoverExpired: the takeover's time is up and the master does not look
// like a server that stops (it answers, or fails in a way that does not
// show it stopping, since the takeover began): the switchover is off. A
// master seen stopping gets twice as long again; then the usual rules.
func (c *Core) takeoverExpired(now time.Time) bool {
	if c.state != StandbyTakingOver || now.Before(c.takeoverDeadline) {
		return false
	}
	began := c.takeoverDeadline.Add(-takeoverTimeout)
	// A refusal while replication still works is a firewall, not a stop.
	stopping := c.lastFailure.After(c.lastSuccess) && c.lastFailure.After(began) &&
		stopped(c.lastClass) && !(c.lastClass == FailRefused && c.lastAlive)
	return !stopping || !now.Before(c.takeoverDeadline.Add(2*takeoverTimeout)) || !c.partnerUsable
}

// takeoverReady: the master that announced the switchover no longer
// answers, its walsender no longer streams to this standby, and the WAL up
// to the announced position is here. Until then a failed heartbeat does not
// count: the master is expected to stop.
func (c *Core) takeoverReady(p ProbeResult) (Trigger, string) {
	c.failures = 0
	if !stopped(p.Class) || p.ReplicationAlive || p.LocalLSN < c.takeoverLSN {
		return PartnerDown, ""
	}
	return TakeoverReady, fmt.Sprintf("received up to %s, the master announced %s", FormatLSN(p.LocalLSN), FormatLSN(c.takeoverLSN))
}

// Paused says whether automatic actions are paused (maintenance mode).
func (c *Core) Paused() bool { return c.paused() }
