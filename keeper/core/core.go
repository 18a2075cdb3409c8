package core

import (
	"fmt"
	"time"
)

// InputKind tells which of Input's fields are set.
type InputKind int

const (
	TickInput          InputKind = iota // time passes: the core may ask for a heartbeat
	ProbeInput                          // a heartbeat ended: Probe
	ActionInput                         // an action ended: Action, Err, Detail
	RecoveryEndedInput                  // the local server is no longer in recovery
	// ConfirmInput: an operator confirmed this server as the primary
	// (Detail says how).
	ConfirmInput
	// ReplicationDropInput: the local server's own replication connection
	// (a standby's WAL receiver, a master's walsender) just ended. A server
	// that dies drops it at once: probe now rather than at the next tick.
	ReplicationDropInput
	// RequestInput: a SQL session asks for something (Request); the
	// output's Answer, or the result of the action it starts, ends its wait.
	RequestInput
)

// Request is what a SQL session asks the keeper for.
type Request int

const (
	SwitchoverRequest     Request = iota + 1 // pg_keeper.switchover(), on the master
	PauseRequest                             // pg_keeper.pause()
	ResumeRequest                            // pg_keeper.resume()
	TakeoverRequest                          // the master's keeper, on this standby: take over once I have stopped (LSN)
	TakeoverCancelRequest                    // ...the switchover is off
)

// Input is what the core learns from the world. Time enters only through At.
type Input struct {
	Kind   InputKind
	At     time.Time
	Probe  ProbeResult
	Action ActionKind
	Err    string // why the action failed; empty on success
	Detail string // what the action did, or how the operator confirmed
	// Request, and for a takeover the master's last WAL position (LSN).
	Request Request
	LSN     int64
}

// Answer ends the wait of the SQL session that made a request: OK false
// makes it raise an ERROR with Msg.
type Answer struct {
	OK  bool
	Msg string
}

// LogLine is a line the core wants in the server log.
type LogLine struct {
	Level Level
	Msg   string
}

// Output is what one step asks of the runner.
type Output struct {
	Actions []ActionKind
	Logs    []LogLine
	Change  *Change       // the state changed; nil otherwise
	Probe   *ProbeRequest // start a heartbeat now; nil otherwise
	Answer  *Answer       // answer the request waiting; nil: not now
}

// ProbeRequest is a heartbeat the core asks for, and what to ask the local
// server along with it.
type ProbeRequest struct {
	Mode Mode
	// Streaming: after a good heartbeat, ask whether the standby's
	// walsender streams, caught up (a master only).
	Streaming bool
	// Replication: after a failed heartbeat, ask whether replication with
	// the partner still works, and the standby's received WAL position.
	Replication bool
}

// Change is a transition between two different states, for the events
// history and the state-change command.
type Change struct {
	From, To State
	On       Trigger
	Reason   string  // the transition's log line, or the trigger if it has none
	Primary  Primary // which node the new state knows to be the primary
}

// Core holds the keeper's decisions: a deterministic state machine with no
// I/O, driven by Step. The runner feeds it inputs and carries out its outputs.
type Core struct {
	state     State
	threshold int
	policy    Policy
	lastFacts *PartnerFacts // from the last good heartbeat; nil before the first
	// syncConfirmed: the master was seen synchronous with this standby and
	// has not been seen asynchronous since. A good heartbeat that finds no
	// synchronous walsender at all (the master dying, the standby
	// reconnecting) does not clear it: no commit is acknowledged then. One
	// that finds another walsender able to acknowledge commits does.
	syncConfirmed bool
	// deposed: this node promoted itself because its partner, the old
	// master, was lost. Until the partner answers again, losing it is no
	// reason to keep commits waiting for it: it is the node that must not
	// take writes.
	deposed     bool
	failures    int
	inFlight    ActionKind
	lastTrigger Trigger
	lastLogged  string // the last failure reason logged, to log repeats once
	// aliveWhileFailing counts the failed heartbeats of the current run at
	// which streaming replication with the partner still worked. A server
	// that dies drops its replication connection at once; a firewall that
	// rejects new connections leaves the old one to time out. So once
	// replication outlived the failures, a refused connection no longer
	// proves the partner's server down.
	aliveWhileFailing int
	// asyncAtStart: replication had been switched to asynchronous before
	// this server started; the confirmation then leads to MasterAsync.
	asyncAtStart bool

	// maintenance: pg_keeper.maintenance is on here; partnerMaintenance:
	// on the master at its last good heartbeat (a standby learns the pause
	// from there and keeps it while the master is away).
	maintenance, partnerMaintenance bool
	// autoRejoin: pg_keeper.auto_rejoin; rejoinBlocked: why a rewind is
	// not possible here ("" when it is).
	autoRejoin    bool
	rejoinBlocked string
	// The switchover: on a standby taking over, the master's announced
	// last WAL position and when the takeover is called off; on the
	// master, whether pg_keeper.switchover()'s caller awaits the outcome.
	takeoverLSN      int64
	takeoverDeadline time.Time
	switchoverCaller bool

	// When to probe: every interval, from the start of the last heartbeat,
	// one at a time; at once after a promotion or a replication drop.
	interval  time.Duration
	nextProbe time.Time
	probing   bool
	// partnerUsable: partner_conninfo can be used; partnerSet: it is set
	// at all (unset, the keeper is inactive and holds nothing back).
	partnerUsable, partnerSet bool

	lastSuccess, lastFailure time.Time
	lastClass                FailureClass // of the last failed heartbeat
	lastAlive                bool         // replication worked at the last failed heartbeat
	lastReason               string       // class and detail of the last failed heartbeat
}

// Policy is how the core weighs a lost partner.
type Policy struct {
	// MaxLag is how many bytes of WAL a standby may lack, measured against
	// the master's position at the last good heartbeat, and still promote
	// when the master was not in synchronous replication with it. 0: never.
	MaxLag int64
	// FailoverOnTimeout: a partner that only times out (the ambiguous case:
	// dead host or network partition) counts as dead. The standby then
	// promotes and the master keeps its commits waiting instead of
	// switching to asynchronous replication, so that only one side can
	// acknowledge writes. Off: the master keeps serving, the standby waits.
	FailoverOnTimeout bool
}

// NewCore starts in the ready state of mode.
func NewCore(mode Mode, threshold int) *Core {
	c := &Core{state: StandbyReady, threshold: max(threshold, 1), lastTrigger: -1,
		interval: 5 * time.Second, partnerUsable: true, partnerSet: true}
	if mode == MasterMode {
		c.state = MasterReady
	}
	return c
}

// Resume sets where a core in master mode starts, from the fence the
// server holds (it outlives a restart of the worker, not of the server):
// unconfirmed on a server that has just started as a primary, fenced on one
// that is shutting down for it. async says that replication had been
// switched to asynchronous before: a confirmed core starts in MasterAsync.
func (c *Core) Resume(fence Fence, async bool) {
	if c.state.Mode() != MasterMode {
		return
	}
	c.asyncAtStart = async
	switch {
	case fence == FenceFenced, fence == FenceStopping:
		c.state = MasterFenced
	case fence != FenceOpen:
		c.state = MasterUnconfirmed
	case async:
		c.state = MasterAsync
	}
}

// Fence is the fence this state wants the server to hold: writes only on a
// confirmed primary (a standby cannot take any anyway).
func (c *Core) Fence() Fence {
	switch c.state {
	case MasterUnconfirmed:
		return FenceUnconfirmed
	case MasterFenced:
		return FenceFenced
	case MasterHandedOver, MasterRejoining:
		return FenceStopping
	case MasterSwitchingOver:
		return FenceSwitching // writes refused until the standby has everything
	}
	return FenceOpen
}

// SetInterval sets keepalives_time; a shorter one takes effect at once.
func (c *Core) SetInterval(d time.Duration, now time.Time) {
	c.interval = d
	if next := now.Add(d); next.Before(c.nextProbe) {
		c.nextProbe = next
	}
}

// SetSchedule sets when the next heartbeat is due and whether one is under
// way, as the ticks would have: for a host that restores a schedule, and
// for tests of what depends on it.
func (c *Core) SetSchedule(next time.Time, probing bool) { c.nextProbe, c.probing = next, probing }

// SetPartner says whether pg_keeper.partner_conninfo is set and usable.
func (c *Core) SetPartner(set, usable bool) { c.partnerSet, c.partnerUsable = set, usable }

// NextTick is when the core next wants a TickInput: never while a
// heartbeat is under way (its result wakes the runner) or while there is
// no partner to probe (a reload wakes it). The runner ticks at every turn
// of its loop anyway.
func (c *Core) NextTick() time.Time {
	if c.probing || !c.partnerUsable {
		return Never
	}
	return c.nextProbe
}

// Never is the NextTick of a core that waits for something else than time.
var Never = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *Core) State() State         { return c.state }
func (c *Core) Failures() int        { return c.failures }
func (c *Core) InFlight() ActionKind { return c.inFlight }
func (c *Core) SetThreshold(n int)   { c.threshold = max(n, 1) }
func (c *Core) SetPolicy(p Policy)   { c.policy = p }

// Step applies one input and returns the actions and log lines it causes.
func (c *Core) Step(ev Input) Output {
	var out Output
	var trig Trigger
	var extra string

	switch ev.Kind {
	case TickInput:
		return c.tick(ev.At)
	case ReplicationDropInput:
		// Only the first failure comes early: once a heartbeat has failed,
		// the fault is known and the count goes on at the interval.
		if !c.probing && (c.failures == 0 || c.state == StandbyTakingOver) {
			c.nextProbe = ev.At
		}
		return out
	case ProbeInput:
		c.probing = false
		p := c.streamingCheck(ev.Probe)
		trig, extra = c.probe(ev.At, p, &out)
		if why := confirms(p); c.state == MasterUnconfirmed && why != "" {
			trig, extra = c.confirmed(), why
		}
	case ActionInput:
		if ev.Action == RunAfterCommand {
			// Fire and forget: its result is reported, it decides nothing.
			lvl, msg := Info, "after_command finished: "+ev.Detail
			if ev.Err != "" {
				lvl, msg = Warning, "after_command failed: "+ev.Err
			}
			out.Logs = append(out.Logs, LogLine{lvl, msg})
			return out
		}
		if ev.Action != c.inFlight {
			out.Logs = append(out.Logs, LogLine{Warning, fmt.Sprintf(
				"ignored result of action %s in state %s", ev.Action, c.state)})
			return out
		}
		c.inFlight = NoAction
		trig, extra = ActionDone, ev.Detail
		if ev.Err != "" {
			trig, extra = ActionFailed, ev.Err
		} else if ev.Action == Promote {
			// Check the old master again now, not an interval later: as
			// long as it is lost, the new master's commits wait for it
			// until the next heartbeat switches replication to async.
			c.nextProbe = ev.At
		}
	case RecoveryEndedInput:
		trig = RecoveryEnded
	case ConfirmInput:
		trig, extra = c.confirmed(), ev.Detail
	case takeoverExpiredInput:
		trig, extra = TakeoverExpired, fmt.Sprintf("after %s", takeoverTimeout)
	case RequestInput:
		var answer *Answer
		var act ActionKind
		if trig, answer, act = c.request(ev); answer != nil || act != NoAction {
			out.Answer = answer
			if act != NoAction {
				out.Actions = append(out.Actions, act)
			}
			return out
		}
	default:
		out.Logs = append(out.Logs, LogLine{Warning, fmt.Sprintf("ignored input of kind %d", ev.Kind)})
		return out
	}

	t := transitionIndex[c.state][trig]
	msg := t.Why
	if msg != "" && extra != "" {
		msg += " (" + extra + ")"
	}
	if msg != "" && (t.To != t.From || trig != c.lastTrigger) {
		out.Logs = append(out.Logs, LogLine{t.Level, msg})
	}
	if t.To != t.From {
		if msg == "" {
			msg = trig.String()
		}
		out.Change = &Change{From: t.From, To: t.To, On: trig, Reason: msg, Primary: t.To.KnowsPrimary()}
	}
	c.lastTrigger = trig
	c.answerRequest(t, trig, msg, extra, &out)
	if trig == ActionFailed && (ev.Action == Promote || ev.Action == SwitchAsync) {
		// One more failed heartbeat retries the action; a good one cancels it.
		c.failures = c.threshold - 1
	}
	if t.Do != NoAction {
		out.Actions = append(out.Actions, t.Do)
		if t.Do != RunAfterCommand && t.Do != FenceSelf && t.Do != OpenFence { // fire and forget
			c.inFlight = t.Do
		}
	}
	if (t.From == StandbyPromoting || t.From == StandbyTakeoverPromoting) && t.To.Mode() == MasterMode {
		c.deposed = true
	}
	if t.From == MasterUnconfirmed && t.To != MasterUnconfirmed {
		c.asyncAtStart = false
	}
	c.state = t.To
	return out
}

// tick asks for a heartbeat when one is due. Without a usable partner there
// is nothing to probe; without one set at all, the keeper is inactive and
// an unconfirmed server has nothing to wait for.
func (c *Core) tick(now time.Time) Output {
	if !c.partnerSet && c.state == MasterUnconfirmed {
		return c.Step(Input{Kind: ConfirmInput, At: now,
			Detail: "pg_keeper.partner_conninfo is not set: no partner to check, the keeper is inactive"})
	}
	if c.takeoverExpired(now) {
		return c.Step(Input{Kind: takeoverExpiredInput, At: now})
	}
	if c.probing || now.Before(c.nextProbe) || !c.partnerUsable {
		return Output{}
	}
	c.probing = true
	c.nextProbe = now.Add(c.interval)
	if c.state == StandbyTakingOver {
		c.nextProbe = now.Add(min(c.interval, takeoverPoll))
	}
	mode := c.state.Mode()
	return Output{Probe: &ProbeRequest{Mode: mode, Streaming: mode == MasterMode, Replication: true}}
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
	case p.ReplicationAlive || p.Class.Answered():
		return HeartbeatLost, ""
	}
	why := fmt.Sprintf("%d failed heartbeats in a row", c.failures)
	if risk := c.risk(p); risk != "" {
		return PartnerLostUnsafe, why + "; " + risk
	}
	return PartnerLost, why
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
		if ambiguous && c.policy.FailoverOnTimeout && !c.deposed {
			return fmt.Sprintf("%s is no proof the standby is down, and with pg_keeper.on_partner_timeout = failover it may be promoting itself", what)
		}
		return ""
	}
	if p.Class == FailConfig {
		return "the heartbeat could not even be tried, so nothing is known of the master: fix pg_keeper.partner_conninfo"
	}
	if ambiguous && !c.policy.FailoverOnTimeout {
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
}

// View reports the core's state without changing it.
func (c *Core) View() View {
	v := View{State: c.state, Failures: c.failures, Threshold: c.threshold, InFlight: c.inFlight,
		SyncConfirmed: c.syncConfirmed, PartnerLSN: -1, LastSuccess: c.lastSuccess, LastFailure: c.lastFailure,
		LastClass: c.lastClass, LastReason: c.lastReason, NextProbe: c.nextProbe, Probing: c.probing,
		Policy: c.policy, Interval: c.interval, PartnerSet: c.partnerSet, PartnerUsable: c.partnerUsable,
		AliveWhileFailing: c.aliveWhileFailing}
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
