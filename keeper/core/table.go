package core

import "slices"

// The table is built here, once and in this order: the failover rows
// (transitions.go), the planned operations' (planned.go), fencing's
// (fencing.go), the witness's (witness_rows.go), then the rows
// that every state has for the same reason, written once below. Package
// variables are initialised in dependency order, so no init function and
// no file-name order is involved.

// Transitions lists every (state, trigger) pair exactly once.
var Transitions = buildTable()

// transitionIndex is Transitions keyed by state and trigger. It must not
// panic: it runs when the server loads the library. TestTableIsComplete
// checks that every pair has exactly one row.
var transitionIndex = indexTransitions(Transitions)

func buildTable() []Transition {
	var rows []Transition
	rows = append(rows, failoverRows...)
	rows = append(rows, plannedRows...)
	rows = append(rows, fencingRows...)
	rows = append(rows, witnessRows...)
	for s := range NumStates {
		rows = append(rows, fenceRow(s)...)
		rows = append(rows, witnessRow(s)...)
		rows = append(rows, confirmRows(s)...)
		rows = append(rows, supersededRejoinRow(s))
		rows = append(rows, takeoverRows(s)...)
		rows = append(rows, requestRows(s)...)
	}
	return rows
}

func indexTransitions(rows []Transition) (idx [NumStates][NumTriggers]*Transition) {
	for i := range rows {
		t := &rows[i]
		if idx[t.From][t.On] == nil {
			idx[t.From][t.On] = t
		}
	}
	return idx
}

// confirmRows: a heartbeat confirms only a server that waits for a
// confirmation; an operator's confirmation elsewhere is removed and changes
// nothing.
func confirmRows(s State) []Transition {
	if s == MasterUnconfirmed {
		return nil // in failoverRows
	}
	return []Transition{
		{From: s, On: Confirmed, To: s, Level: Warning, Why: whyNothingToConfirm},
		{From: s, On: ConfirmedAsync, To: s, Level: Warning, Why: whyNothingToConfirm},
	}
}

// supersededRejoinRow: a superseded server with auto_rejoin rejoins from
// the states of rejoinFrom; one in the middle of a switchover is only
// fenced (its own helper may still restart it as a standby), and the
// switchover's caller learns that it failed.
func supersededRejoinRow(s State) Transition {
	switch {
	case s.Mode() == StandbyMode:
		return unexpected(s, SupersededRejoin)
	case slices.Contains(rejoinFrom, s):
		return Transition{From: s, On: SupersededRejoin, To: MasterRejoining, Do: Rejoin, Level: Error, Why: whySupersededRejoin}
	case s == MasterHandingOver || s == MasterSwitchingOver:
		return Transition{From: s, On: SupersededRejoin, To: MasterFenced, Do: FenceSelf, Level: Error,
			Why: whySuperseded + "; no rejoin: a switchover was under way", Answer: OutcomeFailed}
	}
	return stay(s, SupersededRejoin) // fenced, handed over or rejoining already: the server stops
}

// takeoverRows: a master refuses a takeover; a cancel that arrives after the
// takeover ended changes nothing, and its caller learns whether it came too
// late (this server may be the primary already). Only a standby taking over
// has a takeover to expire.
func takeoverRows(s State) []Transition {
	var rows []Transition
	if s.Mode() == MasterMode {
		rows = append(rows, refuseTakeover(s, whyTakeoverNotStandby))
	}
	if s == StandbyTakingOver {
		return rows // in plannedRows
	}
	cancel := stay(s, TakeoverCancelled)
	if s == StandbyPromoting || s == StandbyTakeoverPromoting || s.Mode() == MasterMode {
		cancel.Answer, cancel.Reply = Refuse, "too late to call the takeover off: this server is promoting or promoted ("+s.String()+")"
	} else {
		cancel.Answer, cancel.Reply = Agree, "no takeover to call off ("+s.String()+")"
	}
	return append(rows, cancel, unexpected(s, TakeoverReady), unexpected(s, TakeoverExpired))
}

// requestRows: pause and resume are settings, written by their action on
// the master, whose result answers; a standby refuses them. A request a
// rule refuses (RequestRefused) gets the rule's words, whatever the state.
func requestRows(s State) []Transition {
	refused := Transition{From: s, On: RequestRefused, To: s, Answer: Refuse}
	if s.Mode() == StandbyMode {
		pause := Transition{From: s, On: PauseRequested, To: s, Answer: Refuse, Reply: whyPauseOnStandby}
		resume := pause
		resume.On = ResumeRequested
		return []Transition{pause, resume, refused}
	}
	return []Transition{
		{From: s, On: PauseRequested, To: s, Do: SetMaintenance, Answer: AwaitResult},
		{From: s, On: ResumeRequested, To: s, Do: ClearMaintenance, Answer: AwaitResult},
		refused,
	}
}

const whyPauseOnStandby = "this server is a standby: run pg_keeper.pause() and pg_keeper.resume() on the master; " +
	"the standby learns maintenance mode from it"
