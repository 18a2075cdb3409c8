package core

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// Fencing in the core: a master whose partner is a primary promoted after
// it (FailSuperseded) fences itself at the first such heartbeat and stays
// fenced. The runner's side is in fence_run_test.go.

// supersedable are the states a master can be superseded in.
var supersedable = []State{MasterReady, MasterConnected, MasterHeartbeatLost, MasterSwitching, MasterAsync,
	MasterRestoring, MasterKeepingSync, MasterHandingOver, MasterSwitchingOver}

func TestSupersededFencesOnTheFirstFailure(t *testing.T) {
	const threshold = 3
	for _, s := range supersedable {
		for _, failures := range []int{0, 1, threshold - 1, threshold, threshold + 4} {
			for _, alive := range []bool{false, true} {
				name := fmt.Sprintf("%s/%d failures before/replication alive %t", s, failures, alive)
				c := reach(t, s, threshold)
				c.failures = failures
				inFlight := c.inFlight
				ev := supersededProbe()
				ev.Probe.ReplicationAlive = alive
				out := c.Step(ev)
				var answer *Answer
				if s == MasterHandingOver || s == MasterSwitchingOver {
					// pg_keeper.switchover()'s caller learns that it failed.
					answer = &Answer{Msg: whySuperseded}
				}
				require.Equal(t, Output{
					Actions: []ActionKind{FenceSelf},
					Logs:    []LogLine{supersededLine("standby", failures+1, threshold), {Error, whySuperseded}},
					Change:  &Change{From: s, To: MasterFenced, On: Superseded, Reason: whySuperseded},
					Answer:  answer,
					Fence:   fenceOut(FenceFenced),
				}, out, name)
				require.Equal(t, MasterFenced, c.State(), name)
				require.Equal(t, masterFenced, c.State().Title(), name)
				require.Equal(t, Superseded, c.lastTrigger, name)
				require.Equal(t, failures+1, c.Failures(), name)
				require.Equal(t, inFlight, c.inFlight, "fencing is fire and forget: %s", name)
				require.Equal(t, "superseded: "+supersededDetail, c.View().LastReason, name)
				require.Equal(t, FailSuperseded, c.View().LastClass, name)
				require.Equal(t, t0, c.View().LastFailure, name)
			}
		}
	}
}

func TestSupersededIsUnexpectedInStandbyMode(t *testing.T) {
	for _, s := range []State{StandbyReady, StandbyConnected, StandbyHeartbeatLost, StandbyPromoting, StandbyNotPromoting,
		StandbyTakingOver, StandbyTakeoverPromoting} {
		c := reach(t, s, 3)
		failures, inFlight := c.Failures(), c.inFlight
		out := c.Step(supersededProbe())
		require.Equal(t, Output{Logs: []LogLine{
			supersededLine("master", failures+1, 3),
			warn("ignored unexpected event superseded in state " + s.String()),
		}}, out, s.String())
		require.Equal(t, s, c.State())
		require.Equal(t, inFlight, c.inFlight, s.String())
		require.Equal(t, failures+1, c.Failures(), s.String())
	}
}

// TestSupersededNeverPromotesOrSwitches: whatever the state and the
// policy, heartbeats of class superseded only ever fence, once, and only a
// master that is not fenced yet (nor stopping after a switchover, nor
// rejoining: the state reach leaves it in has auto_rejoin on).
func TestSupersededNeverPromotesOrSwitches(t *testing.T) {
	for s := range NumStates {
		for _, p := range []Policy{{}, {FailoverOnTimeout: true, MaxLag: 1 << 40}} {
			name := fmt.Sprintf("%s/%+v", s, p)
			c := reach(t, s, 2)
			c.SetPolicy(p)
			var actions []ActionKind
			for range 5 {
				actions = append(actions, c.Step(supersededProbe()).Actions...)
			}
			var want []ActionKind
			if s.Mode() == MasterMode && s != MasterFenced && s != MasterHandedOver && s != MasterRejoining {
				want = []ActionKind{FenceSelf}
			}
			require.Equal(t, want, actions, name)
			wantState := s
			if want != nil {
				wantState = MasterFenced
			}
			require.Equal(t, wantState, c.State(), name)
		}
	}
}

// TestFencedStaysPut: once fenced, nothing but the failure accounting is
// logged, nothing is done, and the state never changes.
func TestFencedStaysPut(t *testing.T) {
	c := reach(t, MasterFenced, 2)
	require.Equal(t, 1, c.Failures())
	c.SetPolicy(Policy{FailoverOnTimeout: true})
	replay(t, c, []step{
		{supersededProbe(), MasterFenced, masterFenced, nil, []LogLine{supersededLine("standby", 2, 2)}},
		// The same reason past the threshold is not logged again.
		{supersededProbe(), MasterFenced, masterFenced, nil, nil},
		{okProbe(), MasterFenced, masterFenced, nil, []LogLine{info("heartbeat to standby succeeded after 3 failed")}},
		{caughtUpProbe(), MasterFenced, masterFenced, nil, nil},
		{refused("x"), MasterFenced, masterFenced, nil, []LogLine{warn("heartbeat to standby failed (1/2): refused: x")}},
		// Partner lost: no switch to asynchronous replication.
		{refused("x"), MasterFenced, masterFenced, nil, []LogLine{warn("heartbeat to standby failed (2/2): refused: x")}},
		{failProbe(true), MasterFenced, masterFenced, nil, []LogLine{failLine("standby", 3, 2)}},
		{timedOut("t"), MasterFenced, masterFenced, nil, []LogLine{warn("heartbeat to standby failed (4/2): timeout: t")}},
		{recoveryEnded(), MasterFenced, masterFenced, nil, []LogLine{
			warn("ignored unexpected event recovery-ended in state master:fenced")}},
		{recoveryEnded(), MasterFenced, masterFenced, nil, nil},
		{actionOK(RunAfterCommand, "exit status 0 after 1 ms"), MasterFenced, masterFenced, nil, []LogLine{
			info("after_command finished: exit status 0 after 1 ms")}},
		// No action is in flight: a stray result is ignored, loudly.
		{actionOK(SwitchAsync, "late"), MasterFenced, masterFenced, nil, []LogLine{
			warn("ignored result of action switch-async in state master:fenced")}},
	})
	require.Equal(t, NoAction, c.inFlight)
}

// TestFencedAbsorbsTheResultOfAnOvertakenAction: an action under way when
// the fence came reports to MasterFenced, which takes it silently.
func TestFencedAbsorbsTheResultOfAnOvertakenAction(t *testing.T) {
	for _, tc := range []struct {
		from   State
		action ActionKind
	}{{MasterSwitching, SwitchAsync}, {MasterRestoring, RestoreSync}} {
		for _, result := range []Input{actionOK(tc.action, "done late"), actionErr(tc.action, "failed late")} {
			name := fmt.Sprintf("%s/%s/err %q", tc.from, tc.action, result.Err)
			c := reach(t, tc.from, 2)
			out := c.Step(supersededProbe())
			require.Equal(t, []ActionKind{FenceSelf}, out.Actions, name)
			require.Equal(t, tc.action, c.inFlight, name)

			out = c.Step(result)
			// Its result is recorded: the action did end.
			require.Equal(t, Output{Reports: []Report{{Kind: ActionReport, At: t0, Action: tc.action, OK: result.Err == "",
				Detail: result.Detail + result.Err, ExitStatus: -1}}}, out, name)
			require.Equal(t, MasterFenced, c.State(), name)
			require.Equal(t, NoAction, c.inFlight, name)
			wantTrigger := ActionDone
			if result.Err != "" {
				wantTrigger = ActionFailed
			}
			require.Equal(t, wantTrigger, c.lastTrigger, name)

			// The same result again is no longer awaited.
			out = c.Step(result)
			require.Equal(t, Output{Logs: []LogLine{
				warn(fmt.Sprintf("ignored result of action %s in state master:fenced", tc.action))}}, out, name)
			require.Equal(t, MasterFenced, c.State(), name)
		}
	}
}

// TestScenarioOldMasterIsFenced: a master loses its standby to a network
// partition, switches to asynchronous replication, and finds the standby
// promoted when the partition heals.
func TestScenarioOldMasterIsFenced(t *testing.T) {
	c := NewCore(MasterMode, 2)
	replay(t, c, []step{
		{okWith(standbyFacts), MasterConnected, masterConnected, nil, []LogLine{info("connected to standby")}},
		{timedOut("t"), MasterConnected, masterConnected, nil, []LogLine{warn("heartbeat to standby failed (1/2): timeout: t")}},
		{timedOut("t"), MasterSwitching, masterSwitching, []ActionKind{SwitchAsync}, []LogLine{
			warn("heartbeat to standby failed (2/2): timeout: t"),
			warn(Why(MasterConnected, PartnerLost) + " (2 failed heartbeats in a row)"),
		}},
		{supersededProbe(), MasterFenced, masterFenced, []ActionKind{FenceSelf}, []LogLine{
			{Error, "heartbeat to standby failed (3/2): superseded: the partner is a primary promoted after this server " +
				"(its timeline is 3, this server's 2): this server is the old master"},
			{Error, "this server was superseded: its partner was promoted after it; fencing: refusing client " +
				"connections and shutting down, so that this old master takes no writes"},
		}},
		{actionOK(SwitchAsync, "synchronous_standby_names was 'node2', now ''"), MasterFenced, masterFenced, nil, nil},
		{supersededProbe(), MasterFenced, masterFenced, nil, nil},
		{recoveryEnded(), MasterFenced, masterFenced, nil, []LogLine{
			warn("ignored unexpected event recovery-ended in state master:fenced")}},
	})
}
