package core

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// witnessCore is a core in s with a witness that answered: the pair's row
// at term 4, the master synchronous.
func witnessCore(s State) *Core {
	c := coreAt(s, 3, 0)
	c.SetInterval(time.Second, t0)
	c.SetWitness(true)
	c.SetTerm(4)
	c.Step(Input{Kind: WitnessInput, At: t0, Witness: WitnessResult{Op: WitnessRead, Start: t0,
		Row: WitnessRow{Found: true, Term: 4, Holder: "master:5432", Sync: true, Lease: 3 * time.Second}}})
	f := syncMaster
	c.lastFacts, c.syncConfirmed = &f, true
	return c
}

func timeoutAt(at time.Time) Input {
	in := failWith(FailTimeout, "no answer", -1)
	in.At = at
	return in
}

// A standby asks the witness for the term before it promotes on a timeout,
// and promotes with that term (no second one taken).
func TestStandbyClaimsBeforePromoting(t *testing.T) {
	c := witnessCore(StandbyConnected)
	var out Output
	for i := 1; i <= 3; i++ {
		out = c.Step(timeoutAt(t0.Add(time.Duration(i) * time.Second)))
	}
	require.Equal(t, StandbyClaiming, c.State())
	require.Equal(t, []ActionKind{ClaimTerm}, out.Actions)
	require.Equal(t, &WitnessRequest{Op: WitnessClaim, Term: 4, Lease: 3 * time.Second}, out.WitnessAct, "from the term it saw, waiting for the lease")

	out = c.Step(Input{Kind: ActionInput, At: t0.Add(4 * time.Second), Action: ClaimTerm, Detail: "term 5",
		Witness: WitnessResult{Op: WitnessClaim, Changed: true, Row: WitnessRow{Found: true, Term: 5, Holder: "standby:5433", Mine: true, Sync: true}}})
	require.Equal(t, StandbyPromoting, c.State())
	require.Equal(t, int64(5), c.Term())
	require.Zero(t, out.SaveTerm, "the claim kept it already")
	out = c.Step(actionOK(Promote, "promoted"))
	require.Equal(t, MasterReady, c.State())
	require.Equal(t, int64(5), c.Term(), "the claimed term, not one more")
	require.Zero(t, out.SaveTerm)

	// A claim refused: not promoting, asked again at the next failure.
	c = witnessCore(StandbyConnected)
	for i := 1; i <= 3; i++ {
		c.Step(timeoutAt(t0.Add(time.Duration(i) * time.Second)))
	}
	c.Step(Input{Kind: ActionInput, At: t0.Add(4 * time.Second), Action: ClaimTerm, Err: "the master's lease is not over",
		Witness: WitnessResult{Op: WitnessClaim, Row: WitnessRow{Found: true, Term: 4, Sync: true}}})
	require.Equal(t, StandbyNotPromoting, c.State())
	out = c.Step(timeoutAt(t0.Add(5 * time.Second)))
	require.Equal(t, StandbyClaiming, c.State())
	require.Equal(t, []ActionKind{ClaimTerm}, out.Actions)
}

// A witness that does not answer: a timeout is not acted on, a certain
// failure is, as without a witness, and the new master takes the next term.
func TestStandbyWithoutAnsweringWitness(t *testing.T) {
	c := witnessCore(StandbyConnected)
	c.Step(Input{Kind: WitnessInput, At: t0, Witness: WitnessResult{Op: WitnessRead, Err: "timeout"}})
	var out Output
	for i := 1; i <= 3; i++ {
		out = c.Step(timeoutAt(t0.Add(time.Duration(i) * time.Second)))
	}
	require.Equal(t, StandbyNotPromoting, c.State())
	require.Contains(t, out.Logs[len(out.Logs)-1].Msg, "the witness does not answer")

	c = witnessCore(StandbyConnected)
	c.Step(Input{Kind: WitnessInput, At: t0, Witness: WitnessResult{Op: WitnessRead, Err: "timeout"}})
	for i := 1; i <= 3; i++ {
		c.Step(failProbe(false))
	}
	require.Equal(t, StandbyPromoting, c.State(), "the master's server refused, replication is gone: certain")
	out = c.Step(actionOK(Promote, "promoted"))
	require.Equal(t, int64(5), c.Term())
	require.Equal(t, int64(5), out.SaveTerm)
}

// A master records on the witness that it leaves synchronous replication
// before it does; if it cannot, commits keep waiting.
func TestMasterLeavesSyncOnTheWitnessFirst(t *testing.T) {
	c := witnessCore(MasterConnected)
	var out Output
	for i := 1; i <= 3; i++ {
		out = c.Step(failProbe(false))
	}
	require.Equal(t, MasterLeavingSync, c.State())
	require.Equal(t, &WitnessRequest{Op: WitnessLeaveSync, Term: 4, Lease: 3 * time.Second}, out.WitnessAct)
	out = c.Step(Input{Kind: ActionInput, At: t0, Action: LeaveSync, Detail: "term 4",
		Witness: WitnessResult{Op: WitnessLeaveSync, Start: t0, Changed: true, Row: WitnessRow{Found: true, Term: 4, Mine: true}}})
	require.Equal(t, MasterSwitching, c.State())
	require.Equal(t, []ActionKind{SwitchAsync}, out.Actions)

	c = witnessCore(MasterConnected)
	for i := 1; i <= 3; i++ {
		c.Step(failProbe(false))
	}
	c.Step(Input{Kind: ActionInput, At: t0, Action: LeaveSync, Err: "this server was deposed",
		Witness: WitnessResult{Op: WitnessLeaveSync, Row: WitnessRow{Found: true, Term: 5, Holder: "standby:5433"}}})
	require.Equal(t, MasterKeepingSync, c.State())
}

// Renewals: what a master says, and a master deposed by a higher term.
func TestMasterRenewals(t *testing.T) {
	c := witnessCore(MasterConnected)
	c.SetSchedule(time.Time{}, false)
	c.witnessBusy = false
	out := tickAt(c, t0)
	require.Equal(t, &WitnessRequest{Op: WitnessRenew, Term: 4, Sync: true, Lease: 3 * time.Second}, out.Witness)
	require.Nil(t, tickAt(c, t0.Add(2*time.Second)).Witness, "one at a time")

	a := witnessCore(MasterAsync)
	a.witnessBusy = false
	require.Equal(t, &WitnessRequest{Op: WitnessRenew, Term: 4, Sync: false, Lease: 3 * time.Second}, tickAt(a, t0).Witness)
	s := witnessCore(StandbyConnected)
	s.witnessBusy = false
	require.Equal(t, &WitnessRequest{Op: WitnessRead}, tickAt(s, t0).Witness)
	u := witnessCore(MasterUnconfirmed)
	u.witnessBusy = false
	require.Nil(t, tickAt(u, t0).Witness, "an unconfirmed master renews nothing")

	out = c.Step(Input{Kind: WitnessInput, At: t0, Witness: WitnessResult{Op: WitnessRenew, Start: t0,
		Row: WitnessRow{Found: true, Term: 5, Holder: "standby:5433"}}})
	require.Equal(t, MasterFenced, c.State(), "deposed: fenced as a superseded master")
	require.Equal(t, int64(5), out.SaveTerm)
}

// The lease fence: a master that cannot reach its standby (timeouts) and
// has not renewed for a lease less an interval takes no writes; a renewal
// or a good heartbeat opens it.
func TestLeaseFence(t *testing.T) {
	c := witnessCore(MasterConnected)
	c.Step(Input{Kind: WitnessInput, At: t0, Witness: WitnessResult{Op: WitnessRenew, Start: t0, Changed: true,
		Row: WitnessRow{Found: true, Term: 4, Mine: true, Sync: true}}})
	out := c.Step(timeoutAt(t0.Add(time.Second)))
	require.Nil(t, out.Fence, "renewed 1 s ago, lease 3 s")
	out = c.Step(timeoutAt(t0.Add(2100 * time.Millisecond)))
	require.Equal(t, fenceOut(FenceNoLease), out.Fence)
	out = c.Step(Input{Kind: WitnessInput, At: t0.Add(2200 * time.Millisecond), Witness: WitnessResult{Op: WitnessRenew,
		Start: t0.Add(2150 * time.Millisecond), Changed: true, Row: WitnessRow{Found: true, Term: 4, Mine: true, Sync: true}}})
	require.Equal(t, fenceOut(FenceOpen), out.Fence)

	// A refused standby (its server is down) is not taking over: no fence.
	c = witnessCore(MasterConnected)
	out = c.Step(failProbe(false))
	require.Nil(t, out.Fence)
	// Without a witness, never.
	c = coreAt(MasterConnected, 3, 0)
	require.Nil(t, c.Step(timeoutAt(t0.Add(time.Hour))).Fence)
}

// A master just promoted over a lost one goes asynchronous without the
// witness: it holds the next term, the old master cannot take it back.
func TestDeposedMasterNeedsNoWitness(t *testing.T) {
	c := witnessCore(StandbyConnected)
	c.Step(Input{Kind: WitnessInput, At: t0, Witness: WitnessResult{Op: WitnessRead, Err: "timeout"}})
	for i := 1; i <= 3; i++ {
		c.Step(failProbe(false))
	}
	require.Equal(t, StandbyPromoting, c.State())
	c.Step(actionOK(Promote, "promoted"))
	require.Equal(t, MasterReady, c.State())
	out := c.Step(timeoutAt(t0.Add(time.Second)))
	require.Equal(t, MasterSwitching, c.State(), "the witness does not answer, and need not")
	require.Equal(t, []ActionKind{SwitchAsync}, out.Actions)
}

// pg_keeper.status shows when the holder's lease ends, from the witness's
// last answer on this node's clock: the age read then is gone already.
func TestViewLeaseEnds(t *testing.T) {
	c := witnessCore(StandbyConnected)
	v := c.View()
	require.Equal(t, t0.Add(3*time.Second), v.LeaseEnds)
	require.Equal(t, "master:5432", v.LeaseHolder)

	c.Step(Input{Kind: WitnessInput, At: t0.Add(time.Second), Witness: WitnessResult{Op: WitnessRead, Start: t0,
		Row: WitnessRow{Found: true, Term: 4, Holder: "master:5432", Sync: true, Lease: 3 * time.Second, LeaseAge: 2 * time.Second}}})
	require.Equal(t, t0.Add(2*time.Second), c.View().LeaseEnds)

	c.Step(Input{Kind: WitnessInput, At: t0.Add(2 * time.Second), Witness: WitnessResult{Op: WitnessRead, Err: "timeout"}})
	require.True(t, c.View().LeaseEnds.IsZero(), "unknown once the witness does not answer")
	require.Empty(t, c.View().LeaseHolder)
}

// An old master back on an older timeline is no standby and never becomes
// one: it counts as lost for sure, as a standby that does not stream does.
// The new master, just promoted and still synchronous, lets go of it
// (with a witness, recording it there first; when the witness does not
// answer, at once, as on a refusal), and its writes are not fenced for
// want of a lease meanwhile.
func TestOlderPrimaryIsNoStandby(t *testing.T) {
	older := failWith(FailOlderPrimary, "timeline 1", -1)
	c := coreAt(MasterReady, 3, 0)
	c.SetPolicy(Policy{FailoverOnTimeout: true})
	var out Output
	for range 3 {
		out = c.Step(older)
	}
	require.Equal(t, MasterSwitching, c.State())
	require.Equal(t, []ActionKind{SwitchAsync}, out.Actions)

	for _, answers := range []bool{true, false} {
		c = witnessCore(MasterReady)
		if !answers {
			c.Step(Input{Kind: WitnessInput, At: t0, Witness: WitnessResult{Op: WitnessRead, Err: "timeout"}})
		}
		for i := 1; i <= 3; i++ {
			in := older
			in.At = t0.Add(time.Duration(i) * time.Second)
			out = c.Step(in)
			require.False(t, c.leaseFence(in.At), "answers %v, failure %d", answers, i)
		}
		if answers {
			require.Equal(t, MasterLeavingSync, c.State())
			require.Equal(t, WitnessLeaveSync, out.WitnessAct.Op)
		} else {
			require.Equal(t, MasterSwitching, c.State())
			require.Equal(t, []ActionKind{SwitchAsync}, out.Actions)
		}
	}
}
