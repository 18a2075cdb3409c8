package core

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The planned operations: maintenance mode (pg_keeper.pause() and
// resume()), the switchover (pg_keeper.switchover() on the master, the
// takeover on the standby) and the rejoin of a superseded master.

// pausedMaster is a synchronous master with pg_keeper.maintenance on.
func pausedMaster() PartnerFacts {
	f := syncMaster
	f.Maintenance = true
	return f
}

// lastMsg is the last line an output logs.
func lastMsg(t *testing.T, out Output) string {
	t.Helper()
	require.NotEmpty(t, out.Logs)
	return out.Logs[len(out.Logs)-1].Msg
}

// requireRefused: the request was answered with an ERROR saying msg, and
// nothing else happened.
func requireRefused(t *testing.T, c *Core, before State, out Output, msg string) {
	t.Helper()
	require.NotNil(t, out.Answer)
	require.False(t, out.Answer.OK)
	require.Equal(t, msg, out.Answer.Msg)
	require.Nil(t, out.Actions)
	require.Nil(t, out.Change)
	require.Equal(t, before, c.State())
}

// --- Maintenance mode ---

// A standby learns the pause from the master and keeps it while the master
// is away: losing the master then does not promote it.
func TestPauseSeenOnTheMasterBlocksPromotion(t *testing.T) {
	c := NewCore(StandbyMode, 2)
	c.Step(okWith(pausedMaster()))
	require.Equal(t, StandbyConnected, c.State())
	v := c.View()
	require.Contains(t, v.Blocked, "maintenance mode is on")
	require.Equal(t, NoAction, v.NextAction)

	c.Step(failProbe(false))
	out := c.Step(failProbe(false))
	require.Equal(t, StandbyNotPromoting, c.State())
	require.Nil(t, out.Actions)
	require.Equal(t, PartnerLostUnsafe, c.lastTrigger)
	require.Contains(t, lastMsg(t, out), "maintenance mode is on (pg_keeper.pause() on the master): "+
		"not promoting until pg_keeper.resume() there")
	require.Contains(t, c.View().Blocked, "maintenance mode is on")
	for range 3 {
		out = c.Step(failProbe(false))
		require.Nil(t, out.Actions)
		require.Equal(t, StandbyNotPromoting, c.State())
	}

	// The master is back, resumed: a loss promotes again.
	out = c.Step(okWith(syncMaster))
	require.Equal(t, StandbyConnected, c.State())
	require.Empty(t, c.View().Blocked)
	require.Equal(t, Promote, c.View().NextAction)
	c.Step(failProbe(false))
	out = c.Step(failProbe(false))
	require.Equal(t, StandbyPromoting, c.State())
	require.Equal(t, []ActionKind{Promote}, out.Actions)
}

// The standby's own pg_keeper.maintenance holds it too.
func TestLocalPauseBlocksPromotion(t *testing.T) {
	c := reach(t, StandbyConnected, 2)
	c.SetMaintenance(true)
	require.Contains(t, c.View().Blocked, "maintenance mode is on")
	c.Step(failProbe(false))
	out := c.Step(failProbe(false))
	require.Equal(t, StandbyNotPromoting, c.State())
	require.Nil(t, out.Actions)

	c.SetMaintenance(false)
	out = c.Step(failProbe(false))
	require.Equal(t, StandbyPromoting, c.State(), "re-decided at the next failed heartbeat")
	require.Equal(t, []ActionKind{Promote}, out.Actions)
}

// pause() and resume() are settings the runner writes: on a master the
// core only names the action, whose result answers; a standby refuses.
func TestPauseAndResumeRequests(t *testing.T) {
	for _, r := range []Request{PauseRequest, ResumeRequest} {
		for _, s := range []State{StandbyReady, StandbyConnected, StandbyNotPromoting, StandbyTakingOver} {
			c := reach(t, s, 3)
			before := *c
			out := c.Step(request(r))
			requireRefused(t, c, s, out, "this server is a standby: run pg_keeper.pause() and pg_keeper.resume() "+
				"on the master; the standby learns maintenance mode from it")
			require.Nil(t, out.Logs)
			// The row answered (and is the last trigger); nothing else changed.
			before.lastTrigger, before.answeredAt = map[Request]Trigger{PauseRequest: PauseRequested, ResumeRequest: ResumeRequested}[r], t0
			require.Equal(t, before, *c, "%s/%d: the core is untouched", s, r)
		}
	}
	want := map[Request]ActionKind{PauseRequest: SetMaintenance, ResumeRequest: ClearMaintenance}
	for r, a := range want {
		for _, s := range []State{MasterReady, MasterConnected, MasterAsync, MasterUnconfirmed} {
			c := reach(t, s, 3)
			before := *c
			out := c.Step(request(r))
			require.Equal(t, Output{Actions: []ActionKind{a}}, out, "%s/%d: no answer yet, no change", s, r)
			// The action's result answers: nothing in flight, no state.
			before.lastTrigger, before.answerer = map[Request]Trigger{PauseRequest: PauseRequested, ResumeRequest: ResumeRequested}[r], a
			require.Equal(t, before, *c, "%s/%d: nothing in flight, no state", s, r)
			out = c.Step(actionOK(a, ""))
			require.Equal(t, &Answer{OK: true, Msg: actionInfo[a].done}, out.Answer)
			require.Equal(t, NoAction, c.answerer)
			out = c.Step(actionOK(a, ""))
			require.Nil(t, out.Answer, "answered once")
		}
	}
}

// A paused master refuses a switchover.
func TestPausedMasterRefusesSwitchover(t *testing.T) {
	c := reach(t, MasterConnected, 3)
	c.SetMaintenance(true)
	out := c.Step(request(SwitchoverRequest))
	requireRefused(t, c, MasterConnected, out, "switchover refused: maintenance mode is on: SELECT pg_keeper.resume() first")
	require.Equal(t, NoAction, c.inFlight)

	c.SetMaintenance(false)
	out = c.Step(request(SwitchoverRequest))
	require.Equal(t, MasterHandingOver, c.State())
	require.Equal(t, []ActionKind{PrepareSwitchover}, out.Actions)
}

// --- The switchover, on the master ---

func TestSwitchoverRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		core func(t *testing.T) *Core
		msg  string
	}{
		{"async", func(t *testing.T) *Core { return reach(t, MasterAsync, 3) }, "switchover refused: " + whyNotSync},
		{"ready", func(t *testing.T) *Core { return reach(t, MasterReady, 3) }, "switchover refused: " + whyNoStandbyYet},
		{"unconfirmed", func(t *testing.T) *Core { return reach(t, MasterUnconfirmed, 3) },
			"switchover refused: " + whyUnconfirmedSwitch},
		{"heartbeat-lost", func(t *testing.T) *Core { return reach(t, MasterHeartbeatLost, 3) },
			"switchover refused: " + whyStandbySilent},
		{"fenced", func(t *testing.T) *Core { return reach(t, MasterFenced, 3) }, "switchover refused: " + whyNotPrimary},
		{"connected, last heartbeat failed", func(t *testing.T) *Core {
			c := reach(t, MasterConnected, 3)
			c.Step(failProbe(false))
			return c
		}, "switchover refused: the last heartbeat to the standby failed"},
		{"standby", func(t *testing.T) *Core { return reach(t, StandbyConnected, 3) }, "switchover refused: " + whyNotStandby},
		{"handing over", func(t *testing.T) *Core { return reach(t, MasterHandingOver, 3) },
			"switchover refused: " + whySwitchoverUnderWay},
		{"switching over", func(t *testing.T) *Core { return reach(t, MasterSwitchingOver, 3) },
			"switchover refused: " + whySwitchoverUnderWay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.core(t)
			s, inFlight, failures := c.State(), c.inFlight, c.Failures()
			out := c.Step(request(SwitchoverRequest))
			requireRefused(t, c, s, out, tc.msg)
			require.Equal(t, inFlight, c.inFlight)
			require.Equal(t, failures, c.Failures())
		})
	}
}

// switchingOver is a master whose switchover was accepted and checked:
// writes are refused while the standby takes the last WAL.
func switchingOver(t *testing.T) *Core {
	c := reach(t, MasterConnected, 3)
	out := c.Step(request(SwitchoverRequest))
	require.Nil(t, out.Answer, "answered once it is done or failed")
	out = c.Step(actionOK(PrepareSwitchover, "checkpoint took 40 ms"))
	require.Nil(t, out.Answer)
	require.Equal(t, MasterSwitchingOver, c.State())
	return c
}

func TestSwitchoverAccepted(t *testing.T) {
	c := reach(t, MasterConnected, 3)
	out := c.Step(request(SwitchoverRequest))
	require.Equal(t, MasterHandingOver, c.State())
	require.Equal(t, []ActionKind{PrepareSwitchover}, out.Actions)
	require.Nil(t, out.Answer)
	require.Equal(t, []LogLine{info(whySwitchoverPreparing)}, out.Logs)
	require.Equal(t, &Change{From: MasterConnected, To: MasterHandingOver, On: SwitchoverRequested,
		Reason: whySwitchoverPreparing, Primary: PrimarySelf}, out.Change)
	require.Equal(t, PrepareSwitchover, c.inFlight)
	require.Equal(t, FenceOpen, c.Fence(), "writes go on while it checks and checkpoints")

	// Heartbeats go on meanwhile and answer nothing.
	for _, ev := range []Input{okProbe(), failProbe(false), okProbe()} {
		out = c.Step(ev)
		require.Nil(t, out.Answer)
		require.Nil(t, out.Actions)
		require.Equal(t, MasterHandingOver, c.State())
	}

	out = c.Step(actionOK(PrepareSwitchover, "checkpoint took 40 ms"))
	require.Equal(t, MasterSwitchingOver, c.State())
	require.Equal(t, []ActionKind{HandOver}, out.Actions)
	require.Nil(t, out.Answer)
	require.Equal(t, HandOver, c.inFlight)
	require.Equal(t, FenceSwitching, c.Fence(), "writes refused until the standby has everything")
	require.Equal(t, PrimaryUnknown, out.Change.Primary)

	out = c.Step(actionOK(HandOver, "the standby has flushed 0/5000060"))
	require.Equal(t, MasterHandedOver, c.State())
	require.Nil(t, out.Actions)
	require.Equal(t, &Answer{OK: true, Msg: "switchover under way: this server stops and restarts as a standby; " +
		"the partner promotes once it has all WAL (the standby has flushed 0/5000060)"}, out.Answer)
	require.Equal(t, FenceStopping, c.Fence())
	require.Equal(t, NoAction, c.inFlight)

	// Answered once: what comes next answers nothing.
	for _, ev := range []Input{okProbe(), failProbe(false), supersededProbe()} {
		out = c.Step(ev)
		require.Nil(t, out.Answer)
		require.Nil(t, out.Actions)
		require.Equal(t, MasterHandedOver, c.State())
		require.Equal(t, FenceStopping, c.Fence())
	}
	out = c.Step(request(SwitchoverRequest))
	requireRefused(t, c, MasterHandedOver, out, "switchover refused: "+whyNotPrimary)
}

func TestSwitchoverPrepareFails(t *testing.T) {
	c := reach(t, MasterConnected, 3)
	c.Step(request(SwitchoverRequest))
	out := c.Step(actionErr(PrepareSwitchover, "the standby's walsender is not synchronous"))
	require.Equal(t, MasterConnected, c.State())
	require.Nil(t, out.Actions)
	require.NotNil(t, out.Answer)
	require.False(t, out.Answer.OK)
	require.Contains(t, out.Answer.Msg, "the standby's walsender is not synchronous")
	require.Equal(t, Why(MasterHandingOver, ActionFailed)+" (the standby's walsender is not synchronous)", out.Answer.Msg)
	require.Equal(t, FenceOpen, c.Fence())
	require.Equal(t, 0, c.Failures(), "no failed heartbeat is invented")

	// Answered once; the next transition answers nothing.
	c.Step(failProbe(false))
	c.Step(failProbe(false))
	out = c.Step(failProbe(false))
	require.Equal(t, MasterSwitching, c.State())
	require.Nil(t, out.Answer)
}

func TestSwitchoverHandOverFails(t *testing.T) {
	c := switchingOver(t)
	require.Equal(t, FenceSwitching, c.Fence())
	out := c.Step(actionErr(HandOver, "the standby did not agree to take over"))
	require.Equal(t, MasterConnected, c.State())
	require.Equal(t, FenceOpen, c.Fence(), "writes accepted again")
	require.Nil(t, out.Actions)
	require.Equal(t, &Answer{Msg: Why(MasterSwitchingOver, ActionFailed) + " (the standby did not agree to take over)"},
		out.Answer)
	require.Equal(t, NoAction, c.inFlight)

	// A new switchover can be asked for.
	out = c.Step(request(SwitchoverRequest))
	require.Equal(t, MasterHandingOver, c.State())
	require.Equal(t, []ActionKind{PrepareSwitchover}, out.Actions)
}

// A master superseded during a switchover fences itself and fails the
// switchover's caller.
func TestSwitchoverSuperseded(t *testing.T) {
	for _, s := range []State{MasterHandingOver, MasterSwitchingOver} {
		c := reach(t, s, 3)
		out := c.Step(supersededProbe())
		require.Equal(t, MasterFenced, c.State(), s.String())
		require.Equal(t, []ActionKind{FenceSelf}, out.Actions, s.String())
		require.Equal(t, &Answer{Msg: whySuperseded}, out.Answer, s.String())
		// The action the fence overtook is absorbed, and recorded: it ended.
		out = c.Step(actionOK(inFlightOf(s), "late"))
		require.Equal(t, Output{Reports: []Report{{Kind: ActionReport, At: t0, Action: inFlightOf(s), OK: true,
			Detail: "late", ExitStatus: -1}}}, out, s.String())
	}
}

// --- The takeover, on the standby ---

// takingOver is a standby that accepted the master's switchover, announced
// at masterLSN at t0.
func takingOver(t *testing.T, threshold int) *Core {
	c := reach(t, StandbyConnected, threshold)
	out := c.Step(takeoverRequest(masterLSN))
	require.Equal(t, StandbyTakingOver, c.State())
	require.Equal(t, &Answer{OK: true, Msg: Why(StandbyConnected, TakeoverRequested)}, out.Answer)
	require.Nil(t, out.Actions)
	require.Equal(t, PrimaryUnknown, out.Change.Primary)
	return c
}

func TestTakeoverAcceptedOnlyWhenConnected(t *testing.T) {
	takingOver(t, 3)

	for _, tc := range []struct {
		s   State
		msg string
	}{
		{StandbyReady, whyTakeoverNoMaster},
		{StandbyHeartbeatLost, whyTakeoverHeartbeat},
		{StandbyNotPromoting, whyTakeoverHeartbeat},
		{StandbyPromoting, whyTakeoverPromoting},
		{StandbyTakingOver, whyTakeoverUnderWay},
		{StandbyTakeoverPromoting, whyTakeoverPromoting},
		{MasterConnected, whyTakeoverNotStandby},
	} {
		c := reach(t, tc.s, 3)
		lsn, deadline := c.takeoverLSN, c.takeoverDeadline
		out := c.Step(takeoverRequest(masterLSN + 100))
		requireRefused(t, c, tc.s, out, "takeover refused: "+tc.msg)
		require.Equal(t, lsn, c.takeoverLSN, "%s: the takeover under way, if any, keeps its position", tc.s)
		require.Equal(t, deadline, c.takeoverDeadline, tc.s.String())
	}
}

// A paused standby takes over no more than it promotes: by its own setting,
// or by the master's as last seen. (The latter is as of the last good
// heartbeat: a master resumed and switched over within one interval is
// refused by its standby until the next heartbeat has seen the resume.)
func TestTakeoverRefusedWhilePaused(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		c := reach(t, StandbyConnected, 3)
		c.SetMaintenance(true)
		out := c.Step(takeoverRequest(masterLSN))
		requireRefused(t, c, StandbyConnected, out, "takeover refused: maintenance mode is on")
	})
	// The master checked its own setting before it asked; what this
	// standby saw of it may be a heartbeat old (a resume() just before).
	t.Run("seen on the master a heartbeat ago", func(t *testing.T) {
		c := NewCore(StandbyMode, 3)
		c.Step(okWith(pausedMaster()))
		out := c.Step(takeoverRequest(masterLSN))
		require.Equal(t, StandbyTakingOver, c.State())
		require.True(t, out.Answer.OK)
	})
}

// While the master stops, failed heartbeats count for nothing; only one
// that finds replication down and the announced WAL here promotes.
func TestTakeoverWaitsForTheMasterToStop(t *testing.T) {
	for _, tc := range []struct {
		name     string
		alive    bool
		localLSN int64
	}{
		{"replication alive", true, masterLSN},
		{"replication alive, past the position", true, masterLSN + 10},
		{"WAL missing", false, masterLSN - 1},
		{"position unknown", false, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := takingOver(t, 2)
			at := t0.Add(time.Second)
			for i := range 10 {
				require.Equal(t, probeRequest(c.State()), tickAt(c, at).Probe, "heartbeat %d", i)
				require.Equal(t, at.Add(takeoverPoll), c.View().NextProbe, "polled every 100 ms")
				ev := takeoverFail(tc.alive, tc.localLSN)
				ev.At = at.Add(10 * time.Millisecond)
				out := c.Step(ev)
				require.Equal(t, StandbyTakingOver, c.State(), "heartbeat %d", i)
				require.Nil(t, out.Actions)
				require.Nil(t, out.Change)
				require.Equal(t, 0, c.Failures(), "not counted")
				require.LessOrEqual(t, c.View().NextProbe.Sub(ev.At), takeoverPoll, "the next one within 100 ms")
				at = at.Add(takeoverPoll)
			}
			// A good heartbeat changes nothing either.
			out := c.Step(okProbe())
			require.Equal(t, StandbyTakingOver, c.State())
			require.Nil(t, out.Actions)
		})
	}
}

// A drop of the WAL receiver probes at once: it is the sign the master
// stopped.
func TestTakeoverProbesAtOnceOnReplicationDrop(t *testing.T) {
	c := takingOver(t, 3)
	c.SetSchedule(t0.Add(time.Second), false)
	c.Step(takeoverFail(true, masterLSN))
	drop := t0.Add(300 * time.Millisecond)
	c.Step(Input{Kind: ReplicationDropInput, At: drop})
	requireSchedule(t, c, drop, false)
}

func TestTakeoverPromotes(t *testing.T) {
	c := takingOver(t, 3)
	var actions []ActionKind
	out := c.Step(takeoverFail(false, masterLSN+8))
	actions = append(actions, out.Actions...)
	require.Equal(t, StandbyTakeoverPromoting, c.State())
	require.Equal(t, []ActionKind{Promote}, out.Actions)
	require.Equal(t, []LogLine{failLine("master", 1, 3),
		info(Why(StandbyTakingOver, TakeoverReady) + " (received up to 0/3000068, the master announced 0/3000060)")}, out.Logs)
	require.Equal(t, Promote, c.inFlight)

	out = c.Step(actionOK(Promote, "pg_promote() took 30 ms"))
	actions = append(actions, out.Actions...)
	require.Equal(t, MasterSwitching, c.State())
	require.Equal(t, []ActionKind{SwitchAsync}, out.Actions, "asynchronous until the old master has caught up")
	require.Equal(t, PrimarySelf, out.Change.Primary)
	require.Equal(t, SwitchAsync, c.inFlight)

	out = c.Step(actionOK(SwitchAsync, "synchronous_standby_names was 'node1', now ''"))
	actions = append(actions, out.Actions...)
	require.Equal(t, MasterAsync, c.State())
	// The old master restarts as this server's standby and catches up.
	out = c.Step(caughtUpProbe())
	actions = append(actions, out.Actions...)
	require.Equal(t, MasterRestoring, c.State())
	require.Equal(t, []ActionKind{Promote, SwitchAsync, RestoreSync}, actions, "no after_command for a switchover")
}

func TestTakeoverPromotionFails(t *testing.T) {
	c := takingOver(t, 3)
	c.Step(takeoverFail(false, masterLSN))
	out := c.Step(actionErr(Promote, "could not connect"))
	require.Equal(t, StandbyTakingOver, c.State())
	require.Nil(t, out.Actions)
	require.Equal(t, NoAction, c.inFlight)

	// Retried at the next heartbeat that finds the master stopped.
	out = c.Step(takeoverFail(false, masterLSN))
	require.Equal(t, StandbyTakeoverPromoting, c.State())
	require.Equal(t, []ActionKind{Promote}, out.Actions)
}

// BUG (fixed in planned.go): while the switchover's promotion runs,
// heartbeats go on at the interval and the master is down, so failed ones
// reach the threshold; they were rows marked unexpected, logged as
// "ignored unexpected event" WARNINGs. Like StandbyPromoting, it waits for
// its result.
func TestTakeoverPromotingCountsFailedHeartbeatsSilently(t *testing.T) {
	for _, threshold := range []int{1, 3} {
		for _, ev := range []Input{failProbe(false), failProbe(true), timedOut("no answer")} {
			name := fmt.Sprintf("threshold %d/%s/alive %t", threshold, ev.Probe.Class, ev.Probe.ReplicationAlive)
			c := takingOver(t, threshold)
			c.Step(takeoverFail(false, masterLSN))
			require.Equal(t, StandbyTakeoverPromoting, c.State())
			for i := 1; i <= threshold+2; i++ {
				out := c.Step(ev)
				require.Equal(t, StandbyTakeoverPromoting, c.State(), name)
				require.Nil(t, out.Actions, name)
				for _, l := range out.Logs {
					require.NotContains(t, l.Msg, "unexpected", name)
				}
			}
			out := c.Step(actionOK(Promote, "done"))
			require.Equal(t, MasterSwitching, c.State(), name)
			require.Equal(t, []ActionKind{SwitchAsync}, out.Actions, name)
		}
	}
}

func TestTakeoverCancelled(t *testing.T) {
	c := takingOver(t, 3)
	c.Step(takeoverFail(true, masterLSN))
	out := c.Step(request(TakeoverCancelRequest))
	require.Equal(t, StandbyConnected, c.State())
	require.Equal(t, &Answer{OK: true, Msg: "takeover called off"}, out.Answer)
	require.Equal(t, []LogLine{warn(Why(StandbyTakingOver, TakeoverCancelled))}, out.Logs)
	require.Nil(t, out.Actions)

	// A late cancel is answered and changes nothing: there is nothing left
	// to call off.
	out = c.Step(request(TakeoverCancelRequest))
	require.Equal(t, Output{Answer: &Answer{OK: true, Msg: "no takeover to call off (standby:connected)"}}, out)
	require.Equal(t, StandbyConnected, c.State())
}

// What a cancel answers in every state: called off only while taking
// over; too late (an ERROR, so that the master does not take writes again)
// once this server promotes or has promoted; nothing to call off in the
// other standby states. Only the first changes anything.
func TestTakeoverCancelAnswers(t *testing.T) {
	for s := range NumStates {
		t.Run(s.String(), func(t *testing.T) {
			c := reach(t, s, 3)
			failures, inFlight, fence := c.Failures(), c.inFlight, c.Fence()
			out := c.Step(request(TakeoverCancelRequest))
			require.Nil(t, out.Actions)
			require.Nil(t, out.Probe)
			require.Equal(t, failures, c.Failures())
			require.Equal(t, inFlight, c.inFlight)
			require.Equal(t, fence, c.Fence())
			switch {
			case s == StandbyTakingOver:
				require.Equal(t, &Answer{OK: true, Msg: "takeover called off"}, out.Answer)
				require.Equal(t, StandbyConnected, c.State())
				require.Equal(t, []LogLine{warn(Why(StandbyTakingOver, TakeoverCancelled))}, out.Logs)
				require.Equal(t, &Change{From: StandbyTakingOver, To: StandbyConnected, On: TakeoverCancelled,
					Reason: Why(StandbyTakingOver, TakeoverCancelled), Primary: PrimaryPartner}, out.Change)
			case s == StandbyPromoting, s == StandbyTakeoverPromoting, s.Mode() == MasterMode:
				require.Equal(t, &Answer{Msg: "too late to call the takeover off: this server is promoting or promoted (" +
					s.String() + ")"}, out.Answer)
				require.Equal(t, s, c.State())
				require.Nil(t, out.Logs)
				require.Nil(t, out.Change)
			default:
				require.Contains(t, []State{StandbyReady, StandbyConnected, StandbyHeartbeatLost, StandbyNotPromoting, StandbyFencingPartner, StandbyClaiming}, s)
				require.Equal(t, &Answer{OK: true, Msg: "no takeover to call off (" + s.String() + ")"}, out.Answer)
				require.Equal(t, s, c.State())
				require.Nil(t, out.Logs)
				require.Nil(t, out.Change)
			}
		})
	}
}

// Too late: the switchover's promotion goes on, and its result makes this
// server the master as if no cancel had come.
func TestTakeoverCancelTooLateWhilePromoting(t *testing.T) {
	c := takingOver(t, 3)
	c.Step(takeoverFail(false, masterLSN))
	require.Equal(t, StandbyTakeoverPromoting, c.State())
	out := c.Step(request(TakeoverCancelRequest))
	require.Equal(t, Output{Answer: &Answer{Msg: "too late to call the takeover off: this server is promoting or promoted " +
		"(standby:switchover-promoting)"}}, out)
	require.Equal(t, Promote, c.inFlight)
	out = c.Step(actionOK(Promote, "done"))
	require.Equal(t, MasterSwitching, c.State())
	require.Equal(t, []ActionKind{SwitchAsync}, out.Actions)
	// Once promoted: too late still.
	out = c.Step(request(TakeoverCancelRequest))
	require.Equal(t, &Answer{Msg: "too late to call the takeover off: this server is promoting or promoted (master:switching)"},
		out.Answer)
	require.Equal(t, MasterSwitching, c.State())
}

// The master did not stop in time: it still answers 60 s after the
// request, so the takeover is off, and a lost master is handled as before.
// (A master whose last heartbeat shows it stopping is waited for past the
// deadline: see TestTakeoverWaitsPastTheDeadlineForAStoppingMaster.)
func TestTakeoverExpires(t *testing.T) {
	c := takingOver(t, 2)
	almost := t0.Add(takeoverTimeout - time.Millisecond)
	require.Equal(t, probeRequest(c.State()), tickAt(c, almost).Probe)
	in := okProbe()
	in.At = almost
	out := c.Step(in)
	require.Nil(t, out.Change)
	require.Equal(t, StandbyTakingOver, c.State())

	out = tickAt(c, t0.Add(takeoverTimeout))
	require.Equal(t, StandbyConnected, c.State())
	require.Equal(t, TakeoverExpired, out.Change.On)
	require.Equal(t, []LogLine{warn(Why(StandbyTakingOver, TakeoverExpired) + " (after 1m0s)")}, out.Logs)
	require.Nil(t, out.Actions)
	require.Nil(t, out.Probe)

	// From now on, failed heartbeats count again.
	c.Step(failProbe(false))
	require.Equal(t, 1, c.Failures())
	out = c.Step(failProbe(false))
	require.Equal(t, StandbyPromoting, c.State())
	require.Equal(t, []ActionKind{Promote}, out.Actions)
	out = c.Step(actionOK(Promote, "done"))
	require.Equal(t, []ActionKind{RunAfterCommand}, out.Actions, "a failover, not a switchover")
}

// The takeover's time runs out without a usable partner too.
func TestTakeoverExpiresWithoutAPartner(t *testing.T) {
	c := takingOver(t, 3)
	c.SetPartner(true, false)
	require.Equal(t, Output{}, tickAt(c, t0.Add(time.Second)))
	tickAt(c, t0.Add(takeoverTimeout))
	require.Equal(t, StandbyConnected, c.State())
}

// stoppedClasses are the failure classes that show the master stopped or
// stopping: its server refuses connections, is shutting down (or starting:
// 57P0x), or is back as a standby.
var stoppedClasses = map[FailureClass]bool{FailRefused: true, FailStarting: true, FailRecovery: true}

// stoppingFail is a failed heartbeat of class at at, with the standby's
// WAL receiver streaming or not and the WAL position it has.
func stoppingFail(class FailureClass, at time.Time, alive bool, localLSN int64) Input {
	return Input{Kind: ProbeInput, At: at, Probe: ProbeResult{
		Class: class, Detail: "detail of " + class.String(), ReplicationAlive: alive, LocalLSN: localLSN}}
}

// Taking over, a failed heartbeat promotes only when its class shows the
// master stopped: any other failure (a timeout, a rejected login, a
// configuration error...) may be the network, or the master alive and
// still taking writes. It is not counted either way.
func TestTakeoverReadyOnlyWhenTheMasterStopped(t *testing.T) {
	for class := range NumFailureClasses {
		if class == FailSuperseded {
			continue // a newer primary: TestSupersededIsUnexpectedInStandbyMode
		}
		t.Run(class.String(), func(t *testing.T) {
			require.Equal(t, stoppedClasses[class], stopped(class))
			c := takingOver(t, 2)
			ev := stoppingFail(class, t0.Add(time.Second), false, masterLSN+8)
			if !stoppedClasses[class] {
				// Well past the threshold, with every other condition met:
				// never a promotion, never a count.
				for i := range 5 {
					out := c.Step(ev)
					require.Equal(t, StandbyTakingOver, c.State(), "heartbeat %d", i)
					require.Equal(t, PartnerDown, c.lastTrigger, "heartbeat %d", i)
					require.Nil(t, out.Actions, "heartbeat %d", i)
					require.Nil(t, out.Change, "heartbeat %d", i)
					require.Nil(t, out.Answer, "heartbeat %d", i)
					require.Equal(t, 0, c.Failures(), "heartbeat %d: not counted", i)
					require.Equal(t, NoAction, c.inFlight)
					for _, l := range out.Logs {
						require.NotContains(t, l.Msg, "unexpected")
					}
				}
				// The master that does stop is still taken over from.
				out := c.Step(stoppingFail(FailRefused, t0.Add(2*time.Second), false, masterLSN+8))
				require.Equal(t, StandbyTakeoverPromoting, c.State())
				require.Equal(t, []ActionKind{Promote}, out.Actions)
				return
			}
			out := c.Step(ev)
			require.Equal(t, StandbyTakeoverPromoting, c.State())
			require.Equal(t, TakeoverReady, c.lastTrigger)
			require.Equal(t, []ActionKind{Promote}, out.Actions)
			require.Equal(t, 0, c.Failures())
			require.Equal(t, Promote, c.inFlight)
			require.Equal(t, info(Why(StandbyTakingOver, TakeoverReady)+
				" (received up to 0/3000068, the master announced 0/3000060)"), out.Logs[len(out.Logs)-1])
		})
	}
}

// A stopped class alone is not enough: replication must be down and the
// announced WAL here, whichever way the master shows it stopped.
func TestTakeoverReadyNeedsTheWALForEveryStoppedClass(t *testing.T) {
	for class := range stoppedClasses {
		for _, tc := range []struct {
			name     string
			alive    bool
			localLSN int64
			ready    bool
		}{
			{"replication alive", true, masterLSN, false},
			{"WAL missing", false, masterLSN - 1, false},
			{"position unknown", false, -1, false},
			{"all here", false, masterLSN, true},
		} {
			name := class.String() + "/" + tc.name
			c := takingOver(t, 2)
			out := c.Step(stoppingFail(class, t0.Add(time.Second), tc.alive, tc.localLSN))
			require.Equal(t, 0, c.Failures(), name)
			if !tc.ready {
				require.Equal(t, StandbyTakingOver, c.State(), name)
				require.Equal(t, PartnerDown, c.lastTrigger, name)
				require.Nil(t, out.Actions, name)
				continue
			}
			require.Equal(t, StandbyTakeoverPromoting, c.State(), name)
			require.Equal(t, []ActionKind{Promote}, out.Actions, name)
		}
	}
}

// A master that answers "shutting down" (or refuses, or is back as a
// standby) is stopping: the takeover waits for it past its deadline, still
// polling every 100 ms, until a heartbeat succeeds or fails some other way;
// the next tick then calls the takeover off.
func TestTakeoverWaitsPastTheDeadlineForAStoppingMaster(t *testing.T) {
	deadline := t0.Add(takeoverTimeout)
	for class := range stoppedClasses {
		for _, then := range []struct {
			name string
			ev   func(at time.Time) Input
		}{
			{"good heartbeat", func(at time.Time) Input {
				in := okProbe()
				in.At = at
				return in
			}},
			{"timeout", func(at time.Time) Input { return stoppingFail(FailTimeout, at, true, masterLSN) }},
			{"rejected", func(at time.Time) Input { return stoppingFail(FailRejected, at, false, masterLSN) }},
		} {
			t.Run(class.String()+"/then "+then.name, func(t *testing.T) {
				c := takingOver(t, 2)
				// The master began stopping just before the deadline; its
				// walsender still sends the end of the WAL.
				at := deadline.Add(-time.Millisecond)
				require.Equal(t, probeRequest(c.State()), tickAt(c, at).Probe)
				// A refusal counts as stopping only once replication is
				// gone (else it is a firewall); the WAL is not all here yet.
				alive, lsn := class != FailRefused, int64(masterLSN)
				if !alive {
					lsn--
				}
				out := c.Step(stoppingFail(class, at, alive, lsn))
				require.Equal(t, StandbyTakingOver, c.State())
				require.Nil(t, out.Change)

				// Past the deadline: still taking over, still polling.
				for i := range 30 {
					now := deadline.Add(time.Duration(i) * takeoverPoll)
					out := tickAt(c, now)
					require.Equal(t, StandbyTakingOver, c.State(), "tick %d", i)
					require.Nil(t, out.Change, "tick %d", i)
					if out.Probe == nil {
						continue
					}
					require.Equal(t, probeRequest(c.State()), out.Probe, "tick %d", i)
					require.Equal(t, now.Add(takeoverPoll), c.View().NextProbe, "tick %d: polled every 100 ms", i)
					out = c.Step(stoppingFail(class, now.Add(10*time.Millisecond), alive, lsn))
					require.Equal(t, StandbyTakingOver, c.State(), "heartbeat %d", i)
					require.Nil(t, out.Actions, "heartbeat %d", i)
					require.Nil(t, out.Change, "heartbeat %d", i)
					require.Equal(t, 0, c.Failures(), "heartbeat %d", i)
				}
				// Without a new heartbeat, time alone does not end it.
				late := deadline.Add(10 * time.Second)
				c.SetSchedule(late.Add(time.Hour), true)
				require.Equal(t, Output{}, tickAt(c, late))
				require.Equal(t, StandbyTakingOver, c.State())

				// The master does not look like stopping any more.
				out = c.Step(then.ev(late.Add(time.Millisecond)))
				require.Equal(t, StandbyTakingOver, c.State(), "the heartbeat itself ends nothing")
				require.Nil(t, out.Change)
				require.Nil(t, out.Actions)

				out = tickAt(c, late.Add(2*time.Millisecond))
				require.Equal(t, StandbyConnected, c.State())
				require.Equal(t, &Change{From: StandbyTakingOver, To: StandbyConnected, On: TakeoverExpired,
					Reason: Why(StandbyTakingOver, TakeoverExpired) + " (after 1m0s)", Primary: PrimaryPartner}, out.Change)
				require.Equal(t, []LogLine{warn(Why(StandbyTakingOver, TakeoverExpired) + " (after 1m0s)")}, out.Logs)
				require.Nil(t, out.Actions)
				require.Nil(t, out.Probe)
			})
		}
	}
}

// The same stopping master, then stopped, with its WAL here: promoted
// after the deadline all the same.
func TestTakeoverPromotesPastTheDeadline(t *testing.T) {
	c := takingOver(t, 2)
	deadline := t0.Add(takeoverTimeout)
	require.Equal(t, probeRequest(c.State()), tickAt(c, deadline.Add(-time.Millisecond)).Probe)
	c.Step(stoppingFail(FailStarting, deadline.Add(-time.Millisecond), true, masterLSN-8))
	require.Equal(t, Output{}, tickAt(c, deadline), "not expired, the next poll not due yet")
	require.Equal(t, StandbyTakingOver, c.State())
	require.Equal(t, probeRequest(c.State()), tickAt(c, deadline.Add(takeoverPoll)).Probe)
	out := c.Step(stoppingFail(FailRefused, deadline.Add(takeoverPoll+time.Millisecond), false, masterLSN))
	require.Equal(t, StandbyTakeoverPromoting, c.State())
	require.Equal(t, []ActionKind{Promote}, out.Actions)
	// A late tick finds nothing to expire.
	require.Nil(t, tickAt(c, deadline.Add(time.Second)).Change)
	require.Equal(t, StandbyTakeoverPromoting, c.State())
}

// A heartbeat that times out is no sign the master stops: at the deadline
// the takeover is off, and from then on failures count as usual.
func TestTakeoverExpiresOnATimeoutPastTheDeadline(t *testing.T) {
	for _, alive := range []bool{false, true} {
		t.Run(fmt.Sprintf("replication alive %t", alive), func(t *testing.T) {
			c := takingOver(t, 2)
			deadline := t0.Add(takeoverTimeout)
			// Shutting down before the deadline, then a timeout after it.
			c.Step(stoppingFail(FailStarting, deadline.Add(-time.Millisecond), true, masterLSN))
			require.Nil(t, tickAt(c, deadline).Change)
			require.Equal(t, StandbyTakingOver, c.State())
			out := c.Step(stoppingFail(FailTimeout, deadline.Add(50*time.Millisecond), alive, masterLSN))
			require.Equal(t, StandbyTakingOver, c.State())
			require.Nil(t, out.Change)
			require.Equal(t, 0, c.Failures())

			out = tickAt(c, deadline.Add(60*time.Millisecond))
			require.Equal(t, StandbyConnected, c.State())
			require.Equal(t, TakeoverExpired, out.Change.On)
			require.Equal(t, []LogLine{warn(Why(StandbyTakingOver, TakeoverExpired) + " (after 1m0s)")}, out.Logs)

			// Counted again: a timeout is no proof the master is down.
			c.Step(timedOut("no answer"))
			require.Equal(t, 1, c.Failures())
			out = c.Step(timedOut("no answer"))
			require.Equal(t, StandbyNotPromoting, c.State())
			require.Equal(t, PartnerLostUnsafe, c.lastTrigger)
			require.Nil(t, out.Actions)
		})
	}

	// Timing out from before the deadline: expired at the deadline.
	c := takingOver(t, 2)
	deadline := t0.Add(takeoverTimeout)
	c.Step(stoppingFail(FailTimeout, deadline.Add(-time.Millisecond), false, masterLSN))
	out := tickAt(c, deadline)
	require.Equal(t, StandbyConnected, c.State())
	require.Equal(t, TakeoverExpired, out.Change.On)
}

// --- Rejoin ---

func TestSupersededRejoins(t *testing.T) {
	c := reach(t, MasterConnected, 3)
	c.SetRejoin(true, "")
	out := c.Step(supersededProbe())
	require.Equal(t, MasterRejoining, c.State())
	require.Equal(t, []ActionKind{Rejoin}, out.Actions)
	require.Equal(t, []LogLine{supersededLine("standby", 1, 3), {Error, whySupersededRejoin}}, out.Logs)
	require.Equal(t, &Change{From: MasterConnected, To: MasterRejoining, On: SupersededRejoin,
		Reason: whySupersededRejoin, Primary: PrimaryPartner}, out.Change)
	require.Equal(t, FenceStopping, c.Fence())
	require.Equal(t, Rejoin, c.inFlight)

	out = c.Step(actionOK(Rejoin, "helper started"))
	require.Equal(t, MasterRejoining, c.State())
	require.Nil(t, out.Actions)
	require.Equal(t, []LogLine{info(Why(MasterRejoining, ActionDone) + " (helper started)")}, out.Logs)
	require.Equal(t, FenceStopping, c.Fence())
	require.Equal(t, NoAction, c.inFlight)

	// Superseded again: nothing more.
	out = c.Step(supersededProbe())
	require.Nil(t, out.Actions)
	require.Equal(t, MasterRejoining, c.State())
}

func TestRejoinFails(t *testing.T) {
	c := reach(t, MasterRejoining, 3)
	out := c.Step(actionErr(Rejoin, "cannot write the helper's script"))
	require.Equal(t, MasterFenced, c.State())
	require.Nil(t, out.Actions, "the fence stays as it was: fenced")
	require.Equal(t, []LogLine{{Error, Why(MasterRejoining, ActionFailed) + " (cannot write the helper's script)"}}, out.Logs)
	require.Equal(t, FenceFenced, c.Fence())
}

// Without what a rewind needs, or while paused, a superseded master is
// fenced as without auto_rejoin, and says why it does not rejoin.
func TestSupersededDoesNotRejoin(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(c *Core)
		why   string
	}{
		{"off", func(c *Core) { c.SetRejoin(false, "") }, ""},
		{"cannot rewind", func(c *Core) { c.SetRejoin(true, "wal_log_hints is off") },
			"pg_keeper.auto_rejoin is on but cannot rewind: wal_log_hints is off"},
		{"paused", func(c *Core) { c.SetRejoin(true, ""); c.SetMaintenance(true) },
			"pg_keeper.auto_rejoin is on but maintenance mode is too: not rejoining"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := reach(t, MasterConnected, 3)
			tc.setup(c)
			c.pausedNoted = c.paused() // noted when the setting came, as a tick would
			out := c.Step(supersededProbe())
			require.Equal(t, MasterFenced, c.State())
			require.Equal(t, []ActionKind{FenceSelf}, out.Actions)
			line := whySuperseded
			if tc.why != "" {
				line += " (" + tc.why + ")"
			}
			require.Equal(t, []LogLine{supersededLine("standby", 1, 3), {Error, line}}, out.Logs)
			require.Equal(t, FenceFenced, c.Fence())
		})
	}
}

// whySupersededNoRejoin is the line of a master superseded, with
// auto_rejoin on, during a switchover: fenced, not rejoining.
const whySupersededNoRejoin = whySuperseded + "; no rejoin: a switchover was under way"

// With auto_rejoin on, a master superseded while its switchover is under
// way does not rejoin: the switchover may start its own helper, so it is
// only fenced, and the switchover's caller learns it failed.
func TestSupersededDuringSwitchoverFencesWithoutRejoin(t *testing.T) {
	for _, s := range []State{MasterHandingOver, MasterSwitchingOver} {
		t.Run(s.String(), func(t *testing.T) {
			require.Equal(t, Transition{From: s, On: SupersededRejoin, To: MasterFenced, Do: FenceSelf, Level: Error,
				Why: whySupersededNoRejoin, Answer: OutcomeFailed}, *transitionIndex[s][SupersededRejoin])
			c := reach(t, s, 3)
			c.SetRejoin(true, "")
			inFlight := c.inFlight
			out := c.Step(supersededProbe())
			require.Equal(t, Output{
				Actions: []ActionKind{FenceSelf},
				Logs:    []LogLine{supersededLine("standby", 1, 3), {Error, whySupersededNoRejoin}},
				Change: &Change{From: s, To: MasterFenced, On: SupersededRejoin, Reason: whySupersededNoRejoin,
					Primary: PrimaryUnknown},
				Answer: &Answer{Msg: whySupersededNoRejoin},
				Fence:  fenceOut(FenceFenced),
			}, out)
			require.Equal(t, MasterFenced, c.State())
			require.Equal(t, FenceFenced, c.Fence())
			require.Equal(t, inFlight, c.inFlight, "fencing is fire and forget: no rejoin in flight")
			require.False(t, c.switchoverCaller, "answered")

			// The action the fence overtook is absorbed (and recorded), and
			// so is a second superseded heartbeat.
			require.Equal(t, Output{Reports: []Report{{Kind: ActionReport, At: t0, Action: inFlight, OK: true, Detail: "late",
				ExitStatus: -1}}}, c.Step(actionOK(inFlight, "late")))
			out = c.Step(supersededProbe())
			require.Nil(t, out.Actions)
			require.Nil(t, out.Answer)
			require.Nil(t, out.Change)
			require.Equal(t, MasterFenced, c.State())
		})
	}
}

// Every row of SupersededRejoin: rejoining from the states that can, fenced
// during a switchover, nothing more where the server stops already, and
// unexpected in standby mode.
func TestSupersededRejoinRows(t *testing.T) {
	for s := range NumStates {
		r := *transitionIndex[s][SupersededRejoin]
		switch s {
		case MasterReady, MasterConnected, MasterHeartbeatLost, MasterSwitching, MasterAsync, MasterRestoring,
			MasterKeepingSync, MasterUnconfirmed, MasterLeavingSync:
			require.Equal(t, Transition{From: s, On: SupersededRejoin, To: MasterRejoining, Do: Rejoin, Level: Error,
				Why: whySupersededRejoin}, r, s.String())
		case MasterHandingOver, MasterSwitchingOver:
			require.Equal(t, Transition{From: s, On: SupersededRejoin, To: MasterFenced, Do: FenceSelf, Level: Error,
				Why: whySupersededNoRejoin, Answer: OutcomeFailed}, r, s.String())
		case MasterFenced, MasterHandedOver, MasterRejoining:
			require.Equal(t, stay(s, SupersededRejoin), r, s.String())
		default:
			require.Equal(t, StandbyMode, s.Mode())
			require.Equal(t, unexpected(s, SupersededRejoin), r, s.String())
		}
	}
}

// What holds a takeover past its deadline is a master seen stopping since
// the takeover began; a refusal while replication still works is a
// firewall, and the hold ends at three times the takeover's time.
func TestTakeoverHoldLimits(t *testing.T) {
	deadline := t0.Add(takeoverTimeout)
	t.Run("firewall", func(t *testing.T) {
		c := takingOver(t, 2)
		c.Step(stoppingFail(FailRefused, deadline.Add(-time.Second), true, masterLSN))
		require.Equal(t, StandbyTakingOver, c.State())
		tickAt(c, deadline)
		require.Equal(t, StandbyConnected, c.State(), "a refusal with replication alive holds nothing")
	})
	t.Run("refusal before the takeover", func(t *testing.T) {
		c := reach(t, StandbyConnected, 3)
		c.Step(stoppingFail(FailRefused, t0.Add(500*time.Millisecond), false, masterLSN-1))
		require.Equal(t, StandbyConnected, c.State(), "one failure of three")
		req := takeoverRequest(masterLSN)
		req.At = t0.Add(time.Second)
		c.Step(req)
		require.Equal(t, StandbyTakingOver, c.State())
		c.SetSchedule(deadline.Add(time.Hour), true) // no heartbeat comes
		tickAt(c, req.At.Add(takeoverTimeout))
		require.Equal(t, StandbyConnected, c.State(), "an older refusal holds nothing")
	})
	t.Run("capped", func(t *testing.T) {
		c := takingOver(t, 2)
		c.Step(stoppingFail(FailStarting, deadline.Add(-time.Second), true, masterLSN))
		c.SetSchedule(deadline.Add(time.Hour), true)
		tickAt(c, deadline.Add(2*takeoverTimeout-time.Millisecond))
		require.Equal(t, StandbyTakingOver, c.State(), "a stopping master is waited for")
		tickAt(c, deadline.Add(2*takeoverTimeout))
		require.Equal(t, StandbyConnected, c.State(), "but not for ever")
	})
	t.Run("partner unusable", func(t *testing.T) {
		c := takingOver(t, 2)
		c.Step(stoppingFail(FailStarting, deadline.Add(-time.Second), true, masterLSN))
		c.SetPartner(true, false)
		tickAt(c, deadline)
		require.Equal(t, StandbyConnected, c.State(), "no heartbeat can end the hold")
	})
}
