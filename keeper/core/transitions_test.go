package core

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func rowName(r Transition) string {
	s := fmt.Sprintf("%s --%s--> %s", r.From, r.On, r.To)
	if r.Do != NoAction {
		s += " do " + r.Do.String()
	}
	return s
}

func rowsWhere(keep func(Transition) bool) []string {
	var names []string
	for _, r := range Transitions {
		if keep(r) {
			names = append(names, rowName(r))
		}
	}
	sort.Strings(names)
	return names
}

func TestTableIsComplete(t *testing.T) {
	require.Len(t, Transitions, int(NumStates)*int(NumTriggers))
	require.Len(t, Transitions, 23*23)
	var seen [NumStates][NumTriggers]int
	for _, r := range Transitions {
		require.True(t, r.From >= 0 && r.From < NumStates, "bad From in %+v", r)
		require.True(t, r.On >= 0 && r.On < NumTriggers, "bad On in %+v", r)
		require.True(t, r.To >= 0 && r.To < NumStates, "bad To in %+v", r)
		seen[r.From][r.On]++
	}
	for s := range NumStates {
		for on := range NumTriggers {
			require.Equal(t, 1, seen[s][on], "rows for %s on %s", s, on)
		}
	}
	// The index the core uses points at the table's own rows.
	for i := range Transitions {
		r := &Transitions[i]
		require.Same(t, r, transitionIndex[r.From][r.On], rowName(*r))
	}
}

func TestOnlyDocumentedRowsChangeMode(t *testing.T) {
	got := rowsWhere(func(r Transition) bool { return r.To.Mode() != r.From.Mode() })
	require.Equal(t, []string{
		"standby:connected --recovery-ended--> master:ready",
		"standby:heartbeat-lost --recovery-ended--> master:ready",
		"standby:not-promoting --recovery-ended--> master:ready",
		"standby:promoting --action-done--> master:ready do after_command",
		"standby:ready --recovery-ended--> master:ready",
		// A switchover's promotion runs no after_command; the old master
		// restarts as a standby, so replication starts asynchronous.
		"standby:switchover-promoting --action-done--> master:switching do switch-async",
		"standby:taking-over --recovery-ended--> master:ready",
	}, got)
}

func TestActionRows(t *testing.T) {
	got := rowsWhere(func(r Transition) bool { return r.Do != NoAction && r.Do.Follow() != Answers })
	require.Equal(t, []string{
		"master:async --partner-caught-up--> master:restoring do restore-sync",
		"master:async --superseded--> master:fenced do fence",
		"master:async --superseded-rejoin--> master:rejoining do rejoin",
		"master:connected --partner-lost--> master:switching do switch-async",
		"master:connected --partner-lost-witness--> master:leaving-sync do leave-sync",
		"master:connected --superseded--> master:fenced do fence",
		"master:connected --superseded-rejoin--> master:rejoining do rejoin",
		"master:connected --switchover-requested--> master:handing-over do prepare-switchover",
		"master:handing-over --action-done--> master:switching-over do hand-over",
		"master:handing-over --superseded--> master:fenced do fence",
		"master:handing-over --superseded-rejoin--> master:fenced do fence",
		"master:heartbeat-lost --partner-lost--> master:switching do switch-async",
		"master:heartbeat-lost --partner-lost-witness--> master:leaving-sync do leave-sync",
		"master:heartbeat-lost --superseded--> master:fenced do fence",
		"master:heartbeat-lost --superseded-rejoin--> master:rejoining do rejoin",
		"master:keeping-sync --partner-lost--> master:switching do switch-async",
		"master:keeping-sync --partner-lost-witness--> master:leaving-sync do leave-sync",
		"master:keeping-sync --superseded--> master:fenced do fence",
		"master:keeping-sync --superseded-rejoin--> master:rejoining do rejoin",
		"master:leaving-sync --action-done--> master:switching do switch-async",
		"master:leaving-sync --superseded--> master:fenced do fence",
		"master:leaving-sync --superseded-rejoin--> master:rejoining do rejoin",
		"master:ready --partner-lost--> master:switching do switch-async",
		"master:ready --partner-lost-witness--> master:leaving-sync do leave-sync",
		"master:ready --superseded--> master:fenced do fence",
		"master:ready --superseded-rejoin--> master:rejoining do rejoin",
		"master:restoring --superseded--> master:fenced do fence",
		"master:restoring --superseded-rejoin--> master:rejoining do rejoin",
		"master:switching --superseded--> master:fenced do fence",
		"master:switching --superseded-rejoin--> master:rejoining do rejoin",
		"master:switching-over --superseded--> master:fenced do fence",
		"master:switching-over --superseded-rejoin--> master:fenced do fence",
		"master:unconfirmed --confirmed--> master:ready do open-fence",
		"master:unconfirmed --confirmed-async--> master:async do open-fence",
		"master:unconfirmed --superseded--> master:fenced do fence",
		"master:unconfirmed --superseded-rejoin--> master:rejoining do rejoin",
		"standby:claiming --action-done--> standby:promoting do promote",
		"standby:connected --partner-lost--> standby:promoting do promote",
		"standby:connected --partner-lost-fence--> standby:fencing-partner do fence_command",
		"standby:connected --partner-lost-witness--> standby:claiming do claim-term",
		"standby:fencing-partner --action-done--> standby:promoting do promote",
		"standby:heartbeat-lost --partner-lost--> standby:promoting do promote",
		"standby:heartbeat-lost --partner-lost-fence--> standby:fencing-partner do fence_command",
		"standby:heartbeat-lost --partner-lost-witness--> standby:claiming do claim-term",
		"standby:not-promoting --partner-lost--> standby:promoting do promote",
		"standby:not-promoting --partner-lost-fence--> standby:fencing-partner do fence_command",
		"standby:not-promoting --partner-lost-witness--> standby:claiming do claim-term",
		"standby:promoting --action-done--> master:ready do after_command",
		"standby:switchover-promoting --action-done--> master:switching do switch-async",
		"standby:taking-over --takeover-ready--> standby:switchover-promoting do promote",
	}, got)
	for _, r := range Transitions {
		if r.Do == NoAction {
			continue
		}
		if r.Do.Follow() == Answers {
			// Maintenance is a setting, not a state: pause and resume
			// change none, and their result answers (and is logged so).
			require.Equal(t, r.From, r.To, rowName(r))
			require.Equal(t, AwaitResult, r.Answer, rowName(r))
			require.Equal(t, MasterMode, r.From.Mode(), rowName(r))
			require.Equal(t, map[Trigger]ActionKind{PauseRequested: SetMaintenance, ResumeRequested: ClearMaintenance}[r.On], r.Do, rowName(r))
			continue
		}
		require.NotEmpty(t, r.Why, "an action is always logged: %s", rowName(r))
		require.False(t, r.Unexpected, rowName(r))
		// An action that reports back leads to the state that waits for it;
		// after_command, dropping stale slots, fencing and opening the
		// fence are fire and forget.
		if r.Do.Follow() == Tracked {
			require.Equal(t, r.Do, inFlightOf(r.To), rowName(r))
		}
		// Giving up on the partner is a warning; restoring, a confirmed
		// primary, the steps of a switchover and connecting are good news; fencing
		// this server, or rejoining it, is an error an operator must see.
		wantLevel := Warning
		switch {
		case r.Do == RunAfterCommand, r.Do == RestoreSync, r.Do == OpenFence, r.Do == PrepareSwitchover, r.Do == HandOver,
			r.From == StandbyTakingOver, r.From == StandbyTakeoverPromoting:
			wantLevel = Info
		case r.Do == FenceSelf, r.Do == Rejoin:
			wantLevel = Error
		}
		require.Equal(t, wantLevel, r.Level, rowName(r))
		// Fencing is done on Superseded, and on SupersededRejoin during a
		// switchover (no rejoin then), always into MasterFenced.
		duringSwitchover := r.From == MasterHandingOver || r.From == MasterSwitchingOver
		require.Equal(t, r.Do == FenceSelf, r.On == Superseded || r.On == SupersededRejoin && duringSwitchover, rowName(r))
		if r.Do == FenceSelf {
			require.Equal(t, MasterFenced, r.To, rowName(r))
			wantWhy := whySuperseded
			if r.On == SupersededRejoin {
				wantWhy = whySupersededNoRejoin
			}
			require.Equal(t, wantWhy, r.Why, rowName(r))
		}
		// The fence opens on a confirmation only, and only out of
		// MasterUnconfirmed.
		require.Equal(t, r.Do == OpenFence, r.On == Confirmed || r.On == ConfirmedAsync, rowName(r))
		if r.Do == OpenFence {
			require.Equal(t, MasterUnconfirmed, r.From, rowName(r))
		}
		// A rejoin starts on SupersededRejoin only (but not during a
		// switchover), always into MasterRejoining; a switchover on its
		// request only.
		require.Equal(t, r.Do == Rejoin, r.On == SupersededRejoin && !duringSwitchover, rowName(r))
		if r.Do == Rejoin {
			require.Equal(t, MasterRejoining, r.To, rowName(r))
			require.Equal(t, whySupersededRejoin, r.Why, rowName(r))
		}
		require.Equal(t, r.Do == PrepareSwitchover, r.On == SwitchoverRequested, rowName(r))
	}
}

func TestNoPromotionBeforeMasterWasReached(t *testing.T) {
	// Core.risk never lets a standby that has not reached the master
	// produce PartnerLost: that row is marked unexpected, and neither row
	// promotes.
	lost := transitionIndex[StandbyReady][PartnerLost]
	require.Equal(t, StandbyReady, lost.To)
	require.Equal(t, NoAction, lost.Do)
	require.True(t, lost.Unexpected)
	unsafe := transitionIndex[StandbyReady][PartnerLostUnsafe]
	require.Equal(t, StandbyReady, unsafe.To)
	require.Equal(t, NoAction, unsafe.Do)
	require.Equal(t, Warning, unsafe.Level)
	require.Equal(t, "master unreachable and never reached since start: not promoting", unsafe.Why)
	require.False(t, unsafe.Unexpected)
}

// TestPartnerLostUnsafeRows lists what every state does when the partner
// is lost but acting on it is unsafe: it never acts.
func TestPartnerLostUnsafeRows(t *testing.T) {
	const standbyHold = "master lost, but promoting could lose acknowledged commits or make a second primary: not promoting"
	const masterHold = "standby unreachable and perhaps taking over: keeping synchronous replication, commits wait"
	want := []Transition{
		{From: StandbyReady, On: PartnerLostUnsafe, To: StandbyReady, Level: Warning,
			Why: "master unreachable and never reached since start: not promoting"},
		{From: StandbyConnected, On: PartnerLostUnsafe, To: StandbyNotPromoting, Level: Warning, Why: standbyHold},
		{From: StandbyHeartbeatLost, On: PartnerLostUnsafe, To: StandbyNotPromoting, Level: Warning, Why: standbyHold},
		{From: StandbyPromoting, On: PartnerLostUnsafe, To: StandbyPromoting},
		{From: StandbyNotPromoting, On: PartnerLostUnsafe, To: StandbyNotPromoting},
		{From: MasterReady, On: PartnerLostUnsafe, To: MasterKeepingSync, Level: Warning, Why: masterHold},
		{From: MasterConnected, On: PartnerLostUnsafe, To: MasterKeepingSync, Level: Warning, Why: masterHold},
		{From: MasterHeartbeatLost, On: PartnerLostUnsafe, To: MasterKeepingSync, Level: Warning, Why: masterHold},
		{From: MasterSwitching, On: PartnerLostUnsafe, To: MasterSwitching},
		{From: MasterAsync, On: PartnerLostUnsafe, To: MasterAsync},
		{From: MasterRestoring, On: PartnerLostUnsafe, To: MasterRestoring},
		{From: MasterKeepingSync, On: PartnerLostUnsafe, To: MasterKeepingSync},
		{From: MasterFenced, On: PartnerLostUnsafe, To: MasterFenced},
		{From: MasterUnconfirmed, On: PartnerLostUnsafe, To: MasterUnconfirmed, Level: Warning, Why: whyUnconfirmed},
		// A switchover under way is not given up for a lost standby: its
		// action fails if the standby cannot follow.
		{From: MasterHandingOver, On: PartnerLostUnsafe, To: MasterHandingOver},
		{From: MasterSwitchingOver, On: PartnerLostUnsafe, To: MasterSwitchingOver},
		{From: MasterHandedOver, On: PartnerLostUnsafe, To: MasterHandedOver},
		{From: MasterRejoining, On: PartnerLostUnsafe, To: MasterRejoining},
		// Taking over, no failed heartbeat is counted: the master is
		// expected to stop.
		{From: StandbyTakingOver, On: PartnerLostUnsafe, To: StandbyTakingOver, Unexpected: true, Level: Warning,
			Why: "ignored unexpected event partner-lost-unsafe in state standby:taking-over"},
		{From: StandbyTakeoverPromoting, On: PartnerLostUnsafe, To: StandbyTakeoverPromoting},
		// Fencing or claiming, the command's or the claim's result decides;
		// leaving synchronous replication, the witness's.
		{From: StandbyFencingPartner, On: PartnerLostUnsafe, To: StandbyFencingPartner},
		{From: StandbyClaiming, On: PartnerLostUnsafe, To: StandbyClaiming},
		{From: MasterLeavingSync, On: PartnerLostUnsafe, To: MasterLeavingSync},
	}
	require.Len(t, want, int(NumStates))
	for _, w := range want {
		require.Equal(t, w, *transitionIndex[w.From][PartnerLostUnsafe], w.From.String())
	}
}

// TestHoldingStatesRows pins every row of the two new holding states.
func TestHoldingStatesRows(t *testing.T) {
	want := []Transition{
		{From: StandbyNotPromoting, On: PartnerUp, To: StandbyConnected, Why: "master answers again"},
		{From: StandbyNotPromoting, On: PartnerCaughtUp, To: StandbyNotPromoting, Unexpected: true, Level: Warning,
			Why: "ignored unexpected event partner-caught-up in state standby:not-promoting"},
		{From: StandbyNotPromoting, On: PartnerDown, To: StandbyNotPromoting},
		{From: StandbyNotPromoting, On: HeartbeatLost, To: StandbyHeartbeatLost, Level: Warning,
			Why: "heartbeat to master failing but the master is alive: not promoting"},
		{From: StandbyNotPromoting, On: PartnerLost, To: StandbyPromoting, Do: Promote, Level: Warning,
			Why: "master lost: promoting this standby"},
		{From: StandbyNotPromoting, On: PartnerLostUnsafe, To: StandbyNotPromoting},
		{From: StandbyNotPromoting, On: ActionDone, To: StandbyNotPromoting, Unexpected: true, Level: Warning,
			Why: "ignored unexpected event action-done in state standby:not-promoting"},
		{From: StandbyNotPromoting, On: ActionFailed, To: StandbyNotPromoting, Unexpected: true, Level: Warning,
			Why: "ignored unexpected event action-failed in state standby:not-promoting"},
		{From: StandbyNotPromoting, On: RecoveryEnded, To: MasterReady, Level: Warning,
			Why: "server left recovery without pg_keeper: switching to master mode"},
		{From: StandbyNotPromoting, On: Superseded, To: StandbyNotPromoting, Unexpected: true, Level: Warning,
			Why: "ignored unexpected event superseded in state standby:not-promoting"},
		nothingToConfirm(StandbyNotPromoting, Confirmed),
		nothingToConfirm(StandbyNotPromoting, ConfirmedAsync),
		refuseSwitchover(StandbyNotPromoting, whyNotStandby),
		refuseTakeover(StandbyNotPromoting, whyTakeoverHeartbeat),
		{From: StandbyNotPromoting, On: TakeoverCancelled, To: StandbyNotPromoting, Answer: Agree,
			Reply: "no takeover to call off (standby:not-promoting)"},
		{From: StandbyNotPromoting, On: TakeoverReady, To: StandbyNotPromoting, Unexpected: true, Level: Warning,
			Why: "ignored unexpected event takeover-ready in state standby:not-promoting"},
		{From: StandbyNotPromoting, On: TakeoverExpired, To: StandbyNotPromoting, Unexpected: true, Level: Warning,
			Why: "ignored unexpected event takeover-expired in state standby:not-promoting"},
		{From: StandbyNotPromoting, On: SupersededRejoin, To: StandbyNotPromoting, Unexpected: true, Level: Warning,
			Why: "ignored unexpected event superseded-rejoin in state standby:not-promoting"},
		{From: StandbyNotPromoting, On: PauseRequested, To: StandbyNotPromoting, Answer: Refuse, Reply: whyPauseOnStandby},
		{From: StandbyNotPromoting, On: ResumeRequested, To: StandbyNotPromoting, Answer: Refuse, Reply: whyPauseOnStandby},
		{From: StandbyNotPromoting, On: RequestRefused, To: StandbyNotPromoting, Answer: Refuse},
		{From: StandbyNotPromoting, On: PartnerLostFence, To: StandbyFencingPartner, Do: FenceMaster, Level: Warning, Why: whyFencing},
		{From: StandbyNotPromoting, On: PartnerLostWitness, To: StandbyClaiming, Do: ClaimTerm, Level: Warning, Why: whyClaiming},

		{From: MasterKeepingSync, On: PartnerUp, To: MasterConnected, Why: "standby answers again"},
		{From: MasterKeepingSync, On: PartnerCaughtUp, To: MasterKeepingSync, Unexpected: true, Level: Warning,
			Why: "ignored unexpected event partner-caught-up in state master:keeping-sync"},
		{From: MasterKeepingSync, On: PartnerDown, To: MasterKeepingSync},
		{From: MasterKeepingSync, On: HeartbeatLost, To: MasterHeartbeatLost, Level: Warning,
			Why: "heartbeat to standby failing but it is alive: keeping synchronous replication"},
		{From: MasterKeepingSync, On: PartnerLost, To: MasterSwitching, Do: SwitchAsync, Level: Warning,
			Why: "standby lost: switching to asynchronous replication"},
		{From: MasterKeepingSync, On: PartnerLostUnsafe, To: MasterKeepingSync},
		{From: MasterKeepingSync, On: ActionDone, To: MasterKeepingSync, Unexpected: true, Level: Warning,
			Why: "ignored unexpected event action-done in state master:keeping-sync"},
		{From: MasterKeepingSync, On: ActionFailed, To: MasterKeepingSync, Unexpected: true, Level: Warning,
			Why: "ignored unexpected event action-failed in state master:keeping-sync"},
		{From: MasterKeepingSync, On: RecoveryEnded, To: MasterKeepingSync, Unexpected: true, Level: Warning,
			Why: "ignored unexpected event recovery-ended in state master:keeping-sync"},
		{From: MasterKeepingSync, On: Superseded, To: MasterFenced, Do: FenceSelf, Level: Error, Why: whySuperseded},
		nothingToConfirm(MasterKeepingSync, Confirmed),
		nothingToConfirm(MasterKeepingSync, ConfirmedAsync),
		refuseSwitchover(MasterKeepingSync, whyStandbySilent),
		refuseTakeover(MasterKeepingSync, whyTakeoverNotStandby),
		{From: MasterKeepingSync, On: TakeoverCancelled, To: MasterKeepingSync, Answer: Refuse,
			Reply: "too late to call the takeover off: this server is promoting or promoted (master:keeping-sync)"},
		{From: MasterKeepingSync, On: TakeoverReady, To: MasterKeepingSync, Unexpected: true, Level: Warning,
			Why: "ignored unexpected event takeover-ready in state master:keeping-sync"},
		{From: MasterKeepingSync, On: TakeoverExpired, To: MasterKeepingSync, Unexpected: true, Level: Warning,
			Why: "ignored unexpected event takeover-expired in state master:keeping-sync"},
		{From: MasterKeepingSync, On: SupersededRejoin, To: MasterRejoining, Do: Rejoin, Level: Error, Why: whySupersededRejoin},
		{From: MasterKeepingSync, On: PauseRequested, To: MasterKeepingSync, Do: SetMaintenance, Answer: AwaitResult},
		{From: MasterKeepingSync, On: ResumeRequested, To: MasterKeepingSync, Do: ClearMaintenance, Answer: AwaitResult},
		{From: MasterKeepingSync, On: RequestRefused, To: MasterKeepingSync, Answer: Refuse},
		{From: MasterKeepingSync, On: PartnerLostFence, To: MasterKeepingSync, Unexpected: true, Level: Warning,
			Why: "ignored unexpected event partner-lost-fence in state master:keeping-sync"},
		{From: MasterKeepingSync, On: PartnerLostWitness, To: MasterLeavingSync, Do: LeaveSync, Level: Warning, Why: whyLeaving},
	}
	require.Len(t, want, 2*int(NumTriggers))
	for _, w := range want {
		require.Equal(t, w, *transitionIndex[w.From][w.On], w.From.String()+"/"+w.On.String())
	}
	// Only these rows lead into a holding state.
	require.Equal(t, []string{
		"master:connected --partner-lost-unsafe--> master:keeping-sync",
		"master:heartbeat-lost --partner-lost-unsafe--> master:keeping-sync",
		"master:keeping-sync --action-done--> master:keeping-sync",
		"master:keeping-sync --action-failed--> master:keeping-sync",
		"master:keeping-sync --confirmed--> master:keeping-sync",
		"master:keeping-sync --confirmed-async--> master:keeping-sync",
		"master:keeping-sync --partner-caught-up--> master:keeping-sync",
		"master:keeping-sync --partner-down--> master:keeping-sync",
		"master:keeping-sync --partner-lost-fence--> master:keeping-sync",
		"master:keeping-sync --partner-lost-unsafe--> master:keeping-sync",
		"master:keeping-sync --pause-requested--> master:keeping-sync do set-maintenance",
		"master:keeping-sync --recovery-ended--> master:keeping-sync",
		"master:keeping-sync --request-refused--> master:keeping-sync",
		"master:keeping-sync --resume-requested--> master:keeping-sync do clear-maintenance",
		"master:keeping-sync --switchover-requested--> master:keeping-sync",
		"master:keeping-sync --takeover-cancelled--> master:keeping-sync",
		"master:keeping-sync --takeover-expired--> master:keeping-sync",
		"master:keeping-sync --takeover-ready--> master:keeping-sync",
		"master:keeping-sync --takeover-requested--> master:keeping-sync",
		"master:leaving-sync --action-failed--> master:keeping-sync",
		"master:ready --partner-lost-unsafe--> master:keeping-sync",
		"standby:claiming --action-failed--> standby:not-promoting",
		"standby:connected --partner-lost-unsafe--> standby:not-promoting",
		// The fence command failed: the master may be alive.
		"standby:fencing-partner --action-failed--> standby:not-promoting",
		"standby:heartbeat-lost --partner-lost-unsafe--> standby:not-promoting",
		"standby:not-promoting --action-done--> standby:not-promoting",
		"standby:not-promoting --action-failed--> standby:not-promoting",
		"standby:not-promoting --confirmed--> standby:not-promoting",
		"standby:not-promoting --confirmed-async--> standby:not-promoting",
		"standby:not-promoting --partner-caught-up--> standby:not-promoting",
		"standby:not-promoting --partner-down--> standby:not-promoting",
		"standby:not-promoting --partner-lost-unsafe--> standby:not-promoting",
		"standby:not-promoting --pause-requested--> standby:not-promoting",
		"standby:not-promoting --request-refused--> standby:not-promoting",
		"standby:not-promoting --resume-requested--> standby:not-promoting",
		"standby:not-promoting --superseded--> standby:not-promoting",
		"standby:not-promoting --superseded-rejoin--> standby:not-promoting",
		"standby:not-promoting --switchover-requested--> standby:not-promoting",
		"standby:not-promoting --takeover-cancelled--> standby:not-promoting",
		"standby:not-promoting --takeover-expired--> standby:not-promoting",
		"standby:not-promoting --takeover-ready--> standby:not-promoting",
		"standby:not-promoting --takeover-requested--> standby:not-promoting",
	}, rowsWhere(func(r Transition) bool { return r.To == StandbyNotPromoting || r.To == MasterKeepingSync }))
}

func TestUnexpectedRows(t *testing.T) {
	for _, r := range Transitions {
		// A trigger is unexpected exactly where the runner cannot produce it:
		// an action result with no action in flight (but MasterFenced
		// absorbs the result of an action the fence overtook, and
		// MasterHandedOver, the end like it, takes any silently), the end of
		// recovery in master mode, a caught-up standby anywhere but in
		// MasterAsync, a superseded master in standby mode, a safe loss of
		// a master never reached, or a good heartbeat of an unconfirmed
		// master (the core names it Confirmed). A confirmation can come in
		// any state (an operator's file): where nothing waits for one, it
		// is ignored and said, not unexpected. A failed heartbeat is a
		// ready takeover only in StandbyTakingOver, and there it is never
		// counted to the threshold.
		cannotHappen := (r.On == ActionDone || r.On == ActionFailed) && inFlightOf(r.From) == NoAction &&
			r.From != MasterFenced && r.From != MasterHandedOver ||
			r.On == RecoveryEnded && r.From.Mode() == MasterMode ||
			r.On == PartnerCaughtUp && r.From != MasterAsync ||
			(r.On == Superseded || r.On == SupersededRejoin) && r.From.Mode() == StandbyMode ||
			r.On == PartnerLost && r.From == StandbyReady ||
			(r.On == PartnerUp || r.On == PartnerCaughtUp) && r.From == MasterUnconfirmed ||
			(r.On == TakeoverReady || r.On == TakeoverExpired) && r.From != StandbyTakingOver ||
			r.From == StandbyTakingOver && (r.On == HeartbeatLost || r.On == PartnerLost || r.On == PartnerLostUnsafe) ||
			// Only a standby fences its master, once it was reached, and
			// not while taking over.
			r.On == PartnerLostFence && (r.From.Mode() == MasterMode || r.From == StandbyReady || r.From == StandbyTakingOver) ||
			// Only a standby about to promote asks the witness for the term,
			// only a master about to go asynchronous records it there.
			r.On == PartnerLostWitness && (r.From == StandbyReady || r.From == StandbyTakingOver ||
				r.From.Mode() == MasterMode && !slices.Contains(leaveFrom, r.From))
		require.Equal(t, cannotHappen, r.Unexpected, rowName(r))
		if (r.On == Confirmed || r.On == ConfirmedAsync) && r.From != MasterUnconfirmed {
			require.Equal(t, nothingToConfirm(r.From, r.On), r, rowName(r))
		}
		if !r.Unexpected {
			continue
		}
		require.Equal(t, r.From, r.To, rowName(r))
		require.Equal(t, NoAction, r.Do, rowName(r))
		require.Equal(t, Warning, r.Level, rowName(r))
		require.Equal(t, "ignored unexpected event "+r.On.String()+" in state "+r.From.String(), r.Why)
	}
	// The results of an action in the 11 states that wait for none, the end
	// of recovery in the 14 master states, a superseded standby (with
	// auto_rejoin or not) in the 9 standby states, the safe loss of a
	// master never reached, a caught-up standby in the 22 states but
	// MasterAsync, an unconfirmed master's good heartbeat, a ready takeover
	// or an expired one in the 22 states but StandbyTakingOver, a counted
	// loss in it (3 kinds), a loss to fence in the 14 master states, before
	// the master was reached and taking over, and a loss to ask the witness
	// about there and in the 10 master states that do not leave
	// synchronous replication for it.
	require.Len(t, rowsWhere(func(r Transition) bool { return r.Unexpected }), 2*11+14+2*9+1+22+1+2*22+3+(14+2)+(10+2))
}

func TestSilentRowsStayInPlace(t *testing.T) {
	// A change of state is always logged; a silent row never moves.
	for _, r := range Transitions {
		if r.Why == "" {
			require.Equal(t, r.From, r.To, rowName(r))
			if r.Do.Follow() != Answers { // pause and resume: the answer says it
				require.Equal(t, NoAction, r.Do, rowName(r))
			}
			require.Equal(t, Info, r.Level, rowName(r))
		}
	}
}

func TestWhyMatchesTable(t *testing.T) {
	for _, r := range Transitions {
		require.Equal(t, r.Why, Why(r.From, r.On), rowName(r))
	}
	require.Equal(t, "master lost: promoting this standby", Why(StandbyConnected, PartnerLost))
	require.Equal(t, "", Why(StandbyConnected, PartnerUp))
}

// markdownTable renders every row of Transitions as Markdown.
func markdownTable() string {
	var b strings.Builder
	b.WriteString("| State | Event | Next state | Action | Log |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, r := range Transitions {
		do, log := "", ""
		if r.Do != NoAction {
			do = "`" + r.Do.String() + "`"
		}
		if r.Why != "" {
			log = levelNames[r.Level] + ": " + r.Why
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.From, r.On, r.To, do, log)
	}
	return b.String()
}

// TestPrintTable prints the transition table as one Markdown row per pair:
// go test ./keeper/core -run TestPrintTable -v
func TestPrintTable(t *testing.T) {
	table := markdownTable()
	t.Log("\n" + table)
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	require.Len(t, lines, 2+int(NumStates)*int(NumTriggers))
	require.Equal(t, "| State | Event | Next state | Action | Log |", lines[0])
	require.Equal(t, "| standby:ready | partner-up | standby:connected |  | LOG: connected to master |", lines[2])
	promote := slices.IndexFunc(Transitions, func(r Transition) bool { return r.From == StandbyConnected && r.On == PartnerLost })
	require.Equal(t, "| standby:connected | partner-lost | standby:promoting | `promote` | "+
		"WARNING: master lost: promoting this standby |", lines[2+promote])
	unsafe := slices.IndexFunc(Transitions, func(r Transition) bool { return r.From == StandbyConnected && r.On == PartnerLostUnsafe })
	require.Equal(t, "| standby:connected | partner-lost-unsafe | standby:not-promoting |  | "+
		"WARNING: master lost, but promoting could lose acknowledged commits or make a second primary: not promoting |", lines[2+unsafe])
	hold := slices.IndexFunc(Transitions, func(r Transition) bool { return r.From == MasterConnected && r.On == PartnerLostUnsafe })
	require.Equal(t, "| master:connected | partner-lost-unsafe | master:keeping-sync |  | "+
		"WARNING: standby unreachable and perhaps taking over: keeping synchronous replication, commits wait |", lines[2+hold])
	fence := slices.IndexFunc(Transitions, func(r Transition) bool { return r.From == MasterConnected && r.On == Superseded })
	require.Equal(t, "| master:connected | superseded | master:fenced | `fence` | "+
		"ERROR: this server was superseded: its partner was promoted after it; fencing: refusing client connections "+
		"and shutting down, so that this old master takes no writes |", lines[2+fence])
	fencedUp := slices.IndexFunc(Transitions, func(r Transition) bool { return r.From == MasterFenced && r.On == PartnerUp })
	require.Equal(t, "| master:fenced | partner-up | master:fenced |  |  |", lines[2+fencedUp])
	fencedEnded := slices.IndexFunc(Transitions, func(r Transition) bool { return r.From == MasterFenced && r.On == RecoveryEnded })
	require.Equal(t, "| master:fenced | recovery-ended | master:fenced |  | "+
		"WARNING: ignored unexpected event recovery-ended in state master:fenced |", lines[2+fencedEnded])
	confirmed := slices.IndexFunc(Transitions, func(r Transition) bool { return r.From == MasterUnconfirmed && r.On == Confirmed })
	require.Equal(t, "| master:unconfirmed | confirmed | master:ready | `open-fence` | "+
		"LOG: this server is the primary: accepting writes |", lines[2+confirmed])
	// The rows every state has come last, state by state (table.go).
	require.Equal(t, "| master:leaving-sync | request-refused | master:leaving-sync |  |  |", lines[len(lines)-1])
	require.Equal(t, "| master:leaving-sync | takeover-requested | master:leaving-sync |  | "+
		"WARNING: takeover refused: this server is not a standby |", lines[len(lines)-7])
	require.Equal(t, "| master:leaving-sync | confirmed-async | master:leaving-sync |  | "+
		"WARNING: ignored pg_keeper.confirm_primary: this server is not waiting for a confirmation |", lines[len(lines)-9])
	for _, l := range lines {
		// Every line has the table's 5 cells, so no text broke the table.
		require.Equal(t, 6, strings.Count(l, "|"), l)
	}
}

// TestSupersededAndFencedRows pins every row of the Superseded trigger and
// of the MasterFenced state.
func TestSupersededAndFencedRows(t *testing.T) {
	const why = "this server was superseded: its partner was promoted after it; " +
		"fencing: refusing client connections and shutting down, so that this old master takes no writes"
	require.Equal(t, why, whySuperseded)
	ignored := func(s State, on Trigger) Transition {
		return Transition{From: s, On: on, To: s, Unexpected: true, Level: Warning,
			Why: "ignored unexpected event " + on.String() + " in state " + s.String()}
	}
	fence := func(s State) Transition {
		return Transition{From: s, On: Superseded, To: MasterFenced, Do: FenceSelf, Level: Error, Why: why}
	}
	silent := func(on Trigger) Transition { return Transition{From: MasterFenced, On: on, To: MasterFenced} }
	outcome := func(t Transition) Transition { t.Answer = OutcomeFailed; return t }
	stays := func(s State, on Trigger) Transition { return Transition{From: s, On: on, To: s} }
	want := []Transition{
		ignored(StandbyReady, Superseded),
		ignored(StandbyConnected, Superseded),
		ignored(StandbyHeartbeatLost, Superseded),
		ignored(StandbyPromoting, Superseded),
		ignored(StandbyNotPromoting, Superseded),
		ignored(StandbyTakingOver, Superseded),
		ignored(StandbyTakeoverPromoting, Superseded),
		ignored(StandbyFencingPartner, Superseded),
		ignored(StandbyClaiming, Superseded),
		fence(MasterReady),
		fence(MasterConnected),
		fence(MasterHeartbeatLost),
		fence(MasterSwitching),
		fence(MasterAsync),
		fence(MasterRestoring),
		fence(MasterKeepingSync),
		fence(MasterUnconfirmed),
		outcome(fence(MasterHandingOver)),
		outcome(fence(MasterSwitchingOver)),
		fence(MasterLeavingSync),
		// Stopping for a switchover or rejoining: fenced already.
		stays(MasterHandedOver, Superseded),
		stays(MasterRejoining, Superseded),
		silent(Superseded),

		silent(PartnerUp),
		ignored(MasterFenced, PartnerCaughtUp),
		silent(PartnerDown),
		silent(HeartbeatLost),
		silent(PartnerLost),
		silent(PartnerLostUnsafe),
		silent(ActionDone),
		silent(ActionFailed),
		ignored(MasterFenced, RecoveryEnded),
		nothingToConfirm(MasterFenced, Confirmed),
		nothingToConfirm(MasterFenced, ConfirmedAsync),
		refuseSwitchover(MasterFenced, whyNotPrimary),
		refuseTakeover(MasterFenced, whyTakeoverNotStandby),
		{From: MasterFenced, On: TakeoverCancelled, To: MasterFenced, Answer: Refuse,
			Reply: "too late to call the takeover off: this server is promoting or promoted (master:fenced)"},
		ignored(MasterFenced, TakeoverReady),
		ignored(MasterFenced, TakeoverExpired),
		silent(SupersededRejoin),
		{From: MasterFenced, On: PauseRequested, To: MasterFenced, Do: SetMaintenance, Answer: AwaitResult},
		{From: MasterFenced, On: ResumeRequested, To: MasterFenced, Do: ClearMaintenance, Answer: AwaitResult},
		{From: MasterFenced, On: RequestRefused, To: MasterFenced, Answer: Refuse},
		ignored(MasterFenced, PartnerLostFence),
		ignored(MasterFenced, PartnerLostWitness),
	}
	require.Len(t, want, int(NumStates)+int(NumTriggers)-1)
	for _, w := range want {
		require.Equal(t, w, *transitionIndex[w.From][w.On], w.From.String()+"/"+w.On.String())
	}
	// Only the fencing rows lead into MasterFenced (with auto_rejoin too
	// during a switchover), and a rejoin whose helper could not start
	// (fenced already), and none leads out.
	require.Equal(t, []string{
		"master:async --superseded--> master:fenced do fence",
		"master:connected --superseded--> master:fenced do fence",
		"master:handing-over --superseded--> master:fenced do fence",
		"master:handing-over --superseded-rejoin--> master:fenced do fence",
		"master:heartbeat-lost --superseded--> master:fenced do fence",
		"master:keeping-sync --superseded--> master:fenced do fence",
		"master:leaving-sync --superseded--> master:fenced do fence",
		"master:ready --superseded--> master:fenced do fence",
		"master:rejoining --action-failed--> master:fenced",
		"master:restoring --superseded--> master:fenced do fence",
		"master:switching --superseded--> master:fenced do fence",
		"master:switching-over --superseded--> master:fenced do fence",
		"master:switching-over --superseded-rejoin--> master:fenced do fence",
		"master:unconfirmed --superseded--> master:fenced do fence",
	}, rowsWhere(func(r Transition) bool { return r.To == MasterFenced && r.From != MasterFenced }))
	require.Empty(t, rowsWhere(func(r Transition) bool { return r.From == MasterFenced && r.To != MasterFenced }))
	require.Equal(t, "", Why(MasterFenced, Superseded), "a fenced server is not fenced again")
	require.Equal(t, why, Why(MasterSwitching, Superseded))
}
