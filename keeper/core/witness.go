package core

import (
	"fmt"
	"slices"
	"time"
)

// The witness (pg_keeper.witness_conninfo, docs/witness.md section 2): a
// third PostgreSQL server holding one row per pair, a term that only grows
// and a lease, every change a compare-and-set, every age the witness's own
// clock. A master renews its lease each interval and records there that
// it leaves synchronous replication before it does; a standby reads the row
// each interval and, on a loss that does not prove the master down, takes
// the next term before it promotes, which it can only while the witness
// shows the master synchronous and its lease over. A witness that does not
// answer never makes anything happen by itself.

// WitnessOp is what the executor asks the witness.
type WitnessOp int

const (
	WitnessRead      WitnessOp = iota // a standby reads the row
	WitnessRenew                      // a master renews its lease (and creates the row, or raises its term)
	WitnessClaim                      // a standby takes the next term (the action ClaimTerm)
	WitnessLeaveSync                  // a master records that it leaves synchronous replication (LeaveSync)
)

var witnessOpNames = [...]string{WitnessRead: "read", WitnessRenew: "renew", WitnessClaim: "claim", WitnessLeaveSync: "leave-sync"}

func (o WitnessOp) String() string { return witnessOpNames[o] }

// WitnessRequest is one operation on the witness.
type WitnessRequest struct {
	Op WitnessOp
	// Term: renew and leave-sync, this master's term; claim, the term the
	// standby last saw there.
	Term int64
	// Sync (renew): this master acknowledges no commit its standby lacks.
	Sync bool
	// Lease (renew, claim): how long a renewal holds.
	Lease time.Duration
}

// WitnessRow is the pair's row as the witness answered it.
type WitnessRow struct {
	Found    bool
	Term     int64
	Holder   string
	Mine     bool // the holder is this node
	Sync     bool
	LeaseAge time.Duration // now() - renewed_at, on the witness
	Lease    time.Duration
}

// WitnessResult is how an operation ended: Err empty when the witness
// answered; Changed when its compare-and-set changed the row; Row what the
// row is after it. Start is when the operation was sent, on this node's
// clock: a lease counts from there.
type WitnessResult struct {
	Op      WitnessOp
	Start   time.Time
	Err     string
	Changed bool
	Row     WitnessRow
}

// SetWitness says whether pg_keeper.witness_conninfo is set and usable.
func (c *Core) SetWitness(set bool) {
	if !set {
		c.witnessErr, c.witnessAt = "", time.Time{}
	}
	c.witnessSet = set
}

// SetTerm gives the term this node kept ($PGDATA/pg_keeper.term): it never
// accepts a lower one from the witness.
func (c *Core) SetTerm(t int64) { c.term = max(c.term, t) }

// Term is the highest term this node knows.
func (c *Core) Term() int64 { return c.term }

// lease is how long a master's renewal holds.
func (c *Core) lease() time.Duration { return time.Duration(c.threshold) * c.interval }

// holdsSync: this master has not cleared synchronous_standby_names since it
// last recorded so, and will not before it records that it leaves.
func (c *Core) holdsSync() bool {
	return slices.Contains([]State{MasterReady, MasterConnected, MasterHeartbeatLost, MasterKeepingSync}, c.state)
}

// witnessRequest is the operation a heartbeat brings: a master whose
// commits are open renews its lease, a standby reads the row; nothing else
// asks the witness anything.
func (c *Core) witnessRequest() *WitnessRequest {
	switch {
	case !c.witnessSet || c.witnessBusy:
		return nil
	case c.keepalive():
		return &WitnessRequest{Op: WitnessRenew, Term: c.term, Sync: c.holdsSync(), Lease: c.lease()}
	case c.state.Mode() == StandbyMode:
		return &WitnessRequest{Op: WitnessRead}
	}
	return nil
}

// witnessAct is the request an action on the witness runs with.
func (c *Core) witnessAct(a ActionKind) *WitnessRequest {
	switch a {
	case ClaimTerm:
		return &WitnessRequest{Op: WitnessClaim, Term: c.witness.Term, Lease: c.lease()}
	case LeaveSync:
		return &WitnessRequest{Op: WitnessLeaveSync, Term: c.term, Lease: c.lease()}
	}
	return nil
}

// witnessAnswered: the last operation got an answer.
func (c *Core) witnessAnswered() bool {
	return c.witnessSet && !c.witnessAt.IsZero() && c.witnessErr == ""
}

// witnessResult takes a read's or a renewal's result. A master whose
// renewal finds a higher term, or its term held by another node, was
// deposed: it is superseded.
func (c *Core) witnessResult(in Input, out *Output) (Trigger, string, bool) {
	c.witnessBusy = false
	r := in.Witness
	if !c.noteWitness(r, in.At, out) {
		return 0, "", false
	}
	c.learnTerm(r.Row.Term, out)
	if r.Op != WitnessRenew || c.state.Mode() != MasterMode {
		return 0, "", false
	}
	if r.Changed {
		c.renewedStart = r.Start
		return 0, "", false
	}
	trig, extra := c.superseded()
	why := fmt.Sprintf("the witness shows term %d held by %s, this server's term is %d", r.Row.Term, r.Row.Holder, c.term)
	if extra != "" {
		why += "; " + extra
	}
	return trig, why, true
}

// noteWitness records whether the witness answered, and logs a change of
// that, once; false: it did not.
func (c *Core) noteWitness(r WitnessResult, at time.Time, out *Output) bool {
	was := c.witnessErr
	c.witnessAt = at
	if r.Err != "" {
		c.witnessErr = r.Err
		if r.Err != was {
			out.Logs = append(out.Logs, LogLine{Warning, "the witness (pg_keeper.witness_conninfo) did not answer: " + r.Err +
				"; losing the partner is acted on only where the failure proves it down, until the witness answers"})
		}
		return false
	}
	c.witness, c.witnessErr = r.Row, ""
	if was != "" {
		out.Logs = append(out.Logs, LogLine{Info, fmt.Sprintf("the witness answers again (term %d, held by %s)", r.Row.Term, r.Row.Holder)})
	}
	return true
}

// learnTerm: a term seen on the witness that is higher than this node's is
// kept (the node's copy outlives a witness rebuilt empty).
func (c *Core) learnTerm(t int64, out *Output) {
	if t > c.term {
		c.term = t
		out.SaveTerm = t
	}
}

// leaveFrom are the master states that leave synchronous replication on a
// lost standby: with a witness, only after recording it there.
var leaveFrom = []State{MasterReady, MasterConnected, MasterHeartbeatLost, MasterKeepingSync}

// witnessFirst says whether a loss that is otherwise safe to act on goes
// to the witness first (true), or must not be acted on (a reason). A
// failure that proves the partner down is acted on as without a witness
// when the witness does not answer; one that does not is not, unless a
// fence command settles it.
func (c *Core) witnessFirst(p ProbeResult) (bool, string) {
	if !c.witnessSet {
		return false, ""
	}
	certain := c.certain(p)
	if c.state.Mode() == MasterMode {
		switch {
		case !slices.Contains(leaveFrom, c.state), c.deposed:
			// A master just promoted over a lost one holds the next term
			// already: the old one cannot take it back, so its commits
			// need not wait for the witness.
			return false, ""
		case c.witnessAnswered():
			return true, ""
		case certain:
			return false, ""
		}
		return false, "the witness does not answer, so the standby may be taking the term there: keeping synchronous replication"
	}
	switch {
	case certain:
		return false, "" // the new master takes the next term (tookTerm)
	case c.witnessAnswered():
		return true, ""
	case c.fenceCommand:
		return false, ""
	}
	return false, "the witness does not answer, and without it a timeout is no proof the master is down"
}

// tookTerm: after a promotion this node holds the next term, whether it
// took it on the witness (a claim) or not (the witness did not answer, or
// a switchover); its first renewal raises the witness's term to it.
func (c *Core) tookTerm(out *Output) {
	if !c.witnessSet || c.claimed {
		c.claimed = false
		return
	}
	c.term = max(c.term, c.witness.Term) + 1
	out.SaveTerm = c.term
}

// leaseFence: a master that holds synchronous replication, cannot reach
// its standby (on a failure that does not prove the standby down) and
// whose lease is over takes no writes: the standby may take the term now.
// The lease counts from the start of the last successful renewal, one
// interval short, on this node's clock; the witness counts from later.
func (c *Core) leaseFence(at time.Time) bool {
	if !c.witnessSet || c.state.Mode() != MasterMode || !c.holdsSync() || c.failures == 0 {
		return false
	}
	if c.certain(ProbeResult{Class: c.lastClass}) {
		return false
	}
	return c.renewedStart.IsZero() || at.Sub(c.renewedStart) > c.lease()-c.interval
}

// witnessActResult takes what a claim or a leave-sync learnt of the
// witness: a claim that worked gave this node the term it promotes with; a
// leave-sync that worked renewed the lease too.
func (c *Core) witnessActResult(in Input, out *Output) {
	r := in.Witness
	if !c.noteWitness(r, in.At, out) || in.Err != "" {
		return
	}
	switch in.Action {
	case ClaimTerm:
		c.claimed = true
		c.learnTerm(r.Row.Term, out)
		out.SaveTerm = 0 // the claim kept it before it answered
	case LeaveSync:
		c.renewedStart = r.Start
	}
}

// witnessView says, for pg_keeper.status, what the witness last answered.
func (c *Core) witnessView() string {
	w := c.witness
	switch {
	case !c.witnessSet:
		return ""
	case c.witnessAt.IsZero():
		return "not asked yet"
	case c.witnessErr != "":
		return "does not answer: " + c.witnessErr
	case !w.Found:
		return "answers; no row for this pair yet (the master creates it)"
	}
	sync := "asynchronous"
	if w.Sync {
		sync = "synchronous"
	}
	return fmt.Sprintf("term %d held by %s, %s, renewed %s before it was read (lease %s)",
		w.Term, w.Holder, sync, w.LeaseAge.Round(time.Millisecond), w.Lease)
}
