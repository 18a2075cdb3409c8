package core

import (
	"fmt"
	"time"
)

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

// RequestRule refuses a request whatever the row for the state says: the
// request becomes RequestRefused, and the caller gets the rule's refusal.
// The rules are tried in order; docs/state-machine.md lists them.
type RequestRule struct {
	Request Request
	When    string // the condition, in words
	refusal func(c *Core) string
}

var requestRules = []RequestRule{
	{SwitchoverRequest, "maintenance mode is on (here, or on the master as last seen)", func(c *Core) string {
		return when(c.paused(), "switchover refused: maintenance mode is on: SELECT pg_keeper.resume() first")
	}},
	{SwitchoverRequest, "connected, but the last heartbeat to the standby failed", func(c *Core) string {
		return when(c.state == MasterConnected && c.failures > 0, "switchover refused: the last heartbeat to the standby failed")
	}},
	{SwitchoverRequest, "connected, but an action is under way", func(c *Core) string {
		return when(c.state == MasterConnected && c.inFlight != NoAction, "switchover refused: "+c.inFlight.String()+" is under way")
	}},
	// Only this server's own setting: the master checked its own, and
	// what this standby last saw of it may be a heartbeat old.
	{TakeoverRequest, "maintenance mode is on at this server", func(c *Core) string {
		return when(c.maintenance, "takeover refused: maintenance mode is on")
	}},
}

func when(cond bool, s string) string {
	if cond {
		return s
	}
	return ""
}

// RequestRules are the rules, for the document.
func RequestRules() []RequestRule { return requestRules }

// request names the trigger of a request: the request's own, unless a
// rule refuses it.
func (c *Core) request(in Input) (Trigger, string) {
	for _, r := range requestRules {
		if r.Request != in.Request {
			continue
		}
		if why := r.refusal(c); why != "" {
			return RequestRefused, why
		}
	}
	switch in.Request {
	case PauseRequest:
		c.pauseReason = in.Detail
		return PauseRequested, ""
	case ResumeRequest:
		return ResumeRequested, ""
	case SwitchoverRequest:
		return SwitchoverRequested, ""
	case TakeoverRequest:
		if c.state == StandbyConnected {
			c.takeoverLSN, c.takeoverDeadline = in.LSN, in.At.Add(takeoverTimeout)
		}
		return TakeoverRequested, ""
	case TakeoverCancelRequest:
		return TakeoverCancelled, ""
	}
	return RequestRefused, fmt.Sprintf("unknown request %d", in.Request)
}

// answer gives the caller of the request under way what the row's Answer
// rule says. The text is the row's Reply, else its log line, else the
// detail (a refusal rule's words).
func (c *Core) answer(t *Transition, msg, extra string, at time.Time, out *Output) {
	text := t.Reply
	switch {
	case text != "" && t.Answer == OutcomeOK && extra != "":
		text += " (" + extra + ")"
	case text == "" && msg != "":
		text = msg
	case text == "":
		text = extra
	}
	switch t.Answer {
	case Refuse:
		c.give(Answer{Msg: text}, at, out)
	case Agree:
		c.give(Answer{OK: true, Msg: text}, at, out)
	case AwaitOutcome:
		c.switchoverCaller = true
	case OutcomeOK, OutcomeFailed:
		if c.switchoverCaller {
			c.switchoverCaller = false
			c.give(Answer{OK: t.Answer == OutcomeOK, Msg: text}, at, out)
		}
	}
}

// give answers the SQL session waiting.
func (c *Core) give(a Answer, at time.Time, out *Output) {
	out.Answer = &a
	c.answeredAt = at
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
