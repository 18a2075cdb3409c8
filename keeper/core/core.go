package core

import (
	"fmt"
	"time"
)

// InputKind tells which of Input's fields are set.
type InputKind int

const (
	// TickInput: time passes. The core may ask for a heartbeat, find the
	// takeover's time up (TakeoverExpired), or find no partner to wait for.
	TickInput          InputKind = iota
	ProbeInput                   // a heartbeat ended: Probe
	ActionInput                  // an action ended: Action, Err, Detail (and Timeline, Command)
	RecoveryEndedInput           // the local server is no longer in recovery
	// ConfirmInput: an operator confirmed this server as the primary
	// (Detail says how).
	ConfirmInput
	// ReplicationDropInput: the local server's own replication connection
	// (a standby's WAL receiver, a master's walsender) just ended. A server
	// that dies drops it at once: probe now rather than at the next tick.
	ReplicationDropInput
	// RequestInput: a SQL session asks for something (Request, with LSN
	// or, for a pause, Detail: the reason); the row's answer, or the result
	// of the action it starts, ends its wait.
	RequestInput
	// NoticeInput: a goroutine has something to say (Detail), logged as a
	// WARNING: the events file could not be written, for example.
	NoticeInput
	// SettingsInput: the settings were given again (a reload): what
	// follows from them at once, a change of maintenance mode, is said now.
	SettingsInput
	// WitnessInput: a read or a renewal of the witness ended (Witness).
	WitnessInput
	NumInputKinds
)

// Request is what a SQL session asks the keeper for. The values are
// PGK_REQ_* of bgworker/pg_keeper_bridge.h, checked when the worker starts.
type Request int

const (
	SwitchoverRequest     Request = iota + 1 // pg_keeper.switchover(), on the master
	PauseRequest                             // pg_keeper.pause()
	ResumeRequest                            // pg_keeper.resume()
	TakeoverRequest                          // the master's keeper, on this standby: take over once I have stopped (LSN)
	TakeoverCancelRequest                    // ...the switchover is off
	NumRequests
)

var requestNames = [NumRequests]string{SwitchoverRequest: "switchover", PauseRequest: "pause", ResumeRequest: "resume",
	TakeoverRequest: "takeover", TakeoverCancelRequest: "takeover-cancel"}

// String names the request in the log and in pg_keeper.events().
func (r Request) String() string {
	if r <= 0 || r >= NumRequests {
		return fmt.Sprintf("request %d", int(r))
	}
	return requestNames[r]
}

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
	// Timeline: after a promotion, the timeline the server writes on now
	// (0 unknown), for after_command and the events.
	Timeline int
	// Command: how after_command or the state-change command ended; Detail
	// or Err is its outcome in words.
	Command *CommandOutcome
	// Witness: what the witness answered (WitnessInput, and the results
	// of ClaimTerm and LeaveSync).
	Witness WitnessResult
}

// CommandOutcome is what a command's result brings besides its outcome.
type CommandOutcome struct {
	Lines      []string // its output, bounded by the executor
	Duration   time.Duration
	ExitStatus int    // -1 when it did not exit by itself (not started, killed)
	For        string // the state-change command: the change it ran for ("old -> new")
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

// Output is what one step asks of the runner: it applies the fence and
// hands the rest to the executor (the heartbeat, the actions, the
// state-change command for Change), logs, records and answers.
type Output struct {
	Actions []ActionKind
	Logs    []LogLine
	Change  *Change       // the state changed; nil otherwise
	Probe   *ProbeRequest // start a heartbeat now; nil otherwise
	Answer  *Answer       // answer the request waiting; nil: not now
	// Fence is the fence the server must hold from now on, when it is not
	// the one the previous output asked for (nil: no change). Before the
	// first step, the server must hold Core.Fence().
	Fence *Fence
	// Reports are results the core took, for pg_keeper.events().
	Reports []Report
	// Witness is the read or renewal to send to the witness now (nil:
	// none); WitnessAct what ClaimTerm or LeaveSync in Actions runs with.
	Witness, WitnessAct *WitnessRequest
	// SaveTerm, when not 0, is the term this node must keep from now on
	// ($PGDATA/pg_keeper.term).
	SaveTerm int64
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
	// PlainFirst: the partner refused TLS under sslmode=prefer; try without
	// it first (conninfo.PlainFirst).
	PlainFirst bool
	// Window: the standby's replication counts only if it received a
	// message within it (0: until wal_receiver_timeout, as before).
	Window time.Duration
	// Keepalive: before the heartbeat, write a keepalive record if no WAL
	// was flushed since the last one (Host.EmitKeepalive), so that the
	// standby hears from an idle master.
	Keepalive bool
	// Gen names the partner setting the heartbeat is for: it comes back in
	// the result, so that what one learnt of a setting since reloaded is
	// not applied to the new one.
	Gen int
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
	// master, was lost (a row that Deposes). Until the partner answers
	// again, losing it is no reason to keep commits waiting for it: it is
	// the node that must not take writes.
	deposed  bool
	failures int
	// inFlight is the Tracked action under way (NoAction: none), and
	// inFlightSince when the step that started it ran.
	inFlight      ActionKind
	inFlightSince time.Time
	lastTrigger   Trigger
	lastLogged    string // the last failure reason logged, to log repeats once
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
	// from there and keeps it while the master is away). pausedNoted is
	// the maintenance mode as last reported, pauseReason what
	// pg_keeper.pause() was given.
	maintenance, partnerMaintenance bool
	pausedNoted                     bool
	pauseReason                     string
	// autoRejoin: pg_keeper.auto_rejoin; rejoinBlocked: why a rewind is
	// not possible here ("" when it is).
	autoRejoin    bool
	rejoinBlocked string
	// lastTick is the time of the latest tick: NextTick leaves out what is
	// not after it, as that tick has decided it.
	lastTick time.Time
	// The switchover: on a standby taking over, the master's announced
	// last WAL position and when the takeover is called off; on the
	// master, whether pg_keeper.switchover()'s caller awaits the outcome.
	takeoverLSN      int64
	takeoverDeadline time.Time
	switchoverCaller bool
	// answerer: the Answers action whose result answers the request under
	// way (NoAction: none).
	answerer ActionKind
	// answeredAt: when the last answer was given; the shutdown that ends
	// a switchover waits answerGrace after it (see wantFence).
	answeredAt time.Time
	// fenceWish is the fence the last output asked for: at first, the
	// fence of the state NewCore or Resume left (Fence).
	fenceWish Fence

	// When to probe: every interval, from the start of the last heartbeat,
	// one at a time; at once after a promotion or a replication drop.
	interval  time.Duration
	nextProbe time.Time
	probing   bool
	// partnerUsable: partner_conninfo can be used; partnerSet: it is set
	// at all (unset, the keeper is inactive and holds nothing back).
	// partnerGen counts the settings given (SetPartner); plainFirst: the
	// partner refused TLS under those settings (see ProbeRequest).
	partnerUsable, partnerSet bool
	partnerGen                int
	plainFirst                bool

	lastSuccess, lastFailure time.Time
	lastClass                FailureClass // of the last failed heartbeat
	lastAlive                bool         // replication worked at the last failed heartbeat
	lastReason               string       // class and detail of the last failed heartbeat

	// fenceCommand: pg_keeper.fence_command is set; fenceFailedAt: when
	// it last failed (zero: not since the last good heartbeat).
	fenceCommand  bool
	fenceFailedAt time.Time

	// The witness (witness.go): set; the term this node knows; the row as
	// last seen, when, and the error if it did not answer; a read or
	// renewal under way; on a master, the start of its last successful
	// renewal; claimed: the promotion under way took its term there.
	witnessSet   bool
	term         int64
	witness      WitnessRow
	witnessAt    time.Time
	witnessErr   string
	witnessBusy  bool
	renewedStart time.Time
	claimed      bool

	// Failover slots (slots.go): this server synchronizes them; as a
	// standby, it has yet to drop those of its own, not before
	// slotsNotBefore.
	syncSlots      bool
	slotsPending   bool
	slotsNotBefore time.Time

	// walFlush is, on a master, the standby's walsender flush position at
	// the last sample, and walFlushAt when it last changed (see fresh).
	walFlush   int64
	walFlushAt time.Time
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
		interval: 5 * time.Second, partnerUsable: true, partnerSet: true,
		syncSlots: true, slotsPending: mode == StandbyMode}
	if mode == MasterMode {
		c.state = MasterReady
	}
	c.fenceWish = c.Fence()
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
	c.fenceWish = c.Fence()
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

// SetPartner says whether pg_keeper.partner_conninfo is set and usable. It
// is given again at every reload: what was learnt of the partner's TLS is
// forgotten then.
func (c *Core) SetPartner(set, usable bool) {
	c.partnerSet, c.partnerUsable = set, usable
	c.partnerGen++
	c.plainFirst = false
}

// NextTick is when the core next wants a TickInput: never while a
// heartbeat is under way (its result wakes the runner) or while there is
// no partner to probe (a reload wakes it), but at the end of the grace the
// shutdown that ends a switchover waits. The runner ticks at every turn of
// its loop anyway.
func (c *Core) NextTick() time.Time {
	next := c.nextProbe
	if c.probing || !c.partnerUsable {
		next = Never
	}
	if c.Fence() == FenceStopping && c.fenceWish != FenceStopping {
		next = minTime(next, c.answeredAt.Add(answerGrace))
	}
	// The runner turns only at NextTick or an event: every time at which a
	// tick decides something must be here, or it would be decided late
	// (while a heartbeat is under way, an interval late).
	if c.state == StandbyTakingOver {
		next = c.soonest(next, c.takeoverDeadline, c.takeoverDeadline.Add(2*takeoverTimeout))
	}
	if c.witnessSet && c.state.Mode() == MasterMode && !c.renewedStart.IsZero() {
		// leaseFence: the lease is over once strictly past this.
		next = c.soonest(next, c.renewedStart.Add(c.lease()-c.interval+time.Millisecond))
	}
	return next
}

// soonest is the earliest of next and those of ts still ahead of the last
// tick: one already past has been decided by it.
func (c *Core) soonest(next time.Time, ts ...time.Time) time.Time {
	for _, t := range ts {
		if t.After(c.lastTick) {
			next = minTime(next, t)
		}
	}
	return next
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Never is the NextTick of a core that waits for something else than time.
var Never = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *Core) State() State         { return c.state }
func (c *Core) Failures() int        { return c.failures }
func (c *Core) InFlight() ActionKind { return c.inFlight }
func (c *Core) SetThreshold(n int)   { c.threshold = max(n, 1) }
func (c *Core) SetPolicy(p Policy)   { c.policy = p }

// Step applies one input and returns what it causes. Each kind of input
// becomes at most one trigger (the named functions of inputs.go say how),
// and the row of the table for the state and that trigger decides.
func (c *Core) Step(in Input) Output {
	var out Output
	if in.Kind == TickInput {
		c.lastTick = maxTime(c.lastTick, in.At)
		c.tick(in.At, &out)
	} else if trig, extra, ok := c.triggerOf(in, &out); ok {
		c.fire(trig, extra, in.At, &out)
	}
	c.notePause(in.At, &out)
	if f := c.wantFence(in.At); f != c.fenceWish {
		c.fenceWish = f
		out.Fence = &f
	}
	return out
}

// fire takes the row for the current state and trig. extra is the detail
// the row's log line gets in parentheses.
func (c *Core) fire(trig Trigger, extra string, at time.Time, out *Output) {
	t := transitionIndex[c.state][trig]
	msg := t.Why
	if msg != "" && extra != "" {
		msg += " (" + extra + ")"
	}
	if msg != "" && (t.To != t.From || trig != c.lastTrigger) {
		out.Logs = append(out.Logs, LogLine{t.Level, msg})
	}
	if t.To != t.From {
		reason := msg
		if reason == "" {
			reason = trig.String()
		}
		out.Change = &Change{From: t.From, To: t.To, On: trig, Reason: reason, Primary: t.To.KnowsPrimary()}
	}
	c.lastTrigger = trig
	c.answer(t, msg, extra, at, out)
	if t.Retry {
		// One more failed heartbeat retries the action; a good one cancels it.
		c.failures = c.threshold - 1
	}
	do := t.Do
	if c.staleSlotsDue(t, at) {
		do, c.slotsNotBefore = DropStaleSlots, at.Add(slotsRetry)
	}
	if do != NoAction {
		out.Actions = append(out.Actions, do)
		if req := c.witnessAct(do); req != nil {
			out.WitnessAct = req
		}
		if do.Follow() == Tracked {
			c.inFlight, c.inFlightSince = do, at
		}
		if do.Follow() == Answers {
			c.answerer = do
		}
	}
	if t.Deposes {
		c.deposed = true
	}
	if t.From == MasterUnconfirmed && t.To != MasterUnconfirmed {
		c.asyncAtStart = false // confirmed, or fenced: the start is behind it
	}
	c.state = t.To
}
