package core

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// What the core tells the runner besides actions and log lines: the change
// of state (for the events and the state-change command) and its view (for
// pg_keeper.status()).

// TestStepChangeEveryRow: Output.Change is set exactly when a row changes
// the state, and its reason is the row's log line as logged.
func TestStepChangeEveryRow(t *testing.T) {
	const threshold = 3
	for _, tableRow := range Transitions {
		t.Run(tableRow.From.String()+"/"+tableRow.On.String(), func(t *testing.T) {
			on := effective(tableRow.From, tableRow.On)
			row := *transitionIndex[tableRow.From][on]
			c := coreAt(row.From, threshold, 0)
			out := c.Step(eventFor(c, tableRow.On))
			if row.To == row.From {
				require.Nil(t, out.Change)
				return
			}
			require.NotEmpty(t, out.Logs)
			require.Equal(t, &Change{From: row.From, To: row.To, On: on, Reason: eventRowLog(tableRow.On, row, threshold).Msg,
				Primary: row.To.KnowsPrimary()}, out.Change)
			require.Equal(t, out.Logs[len(out.Logs)-1].Msg, out.Change.Reason, "the reason is the line logged")
		})
	}
}

// A row without a log line that changes the state (the table has none
// today) gives the trigger's name as the reason.
func TestStepChangeOfASilentRowNamesTheTrigger(t *testing.T) {
	saved := transitionIndex[StandbyConnected][PartnerDown]
	t.Cleanup(func() { transitionIndex[StandbyConnected][PartnerDown] = saved })
	transitionIndex[StandbyConnected][PartnerDown] = &Transition{From: StandbyConnected, On: PartnerDown, To: StandbyHeartbeatLost}

	c := reach(t, StandbyConnected, 3)
	out := c.Step(failProbe(false))
	require.Equal(t, &Change{From: StandbyConnected, To: StandbyHeartbeatLost, On: PartnerDown, Reason: "partner-down",
		Primary: PrimaryPartner}, out.Change)
	require.Equal(t, []LogLine{failLine("master", 1, 3)}, out.Logs, "nothing logged for the row itself")
}

// A sequence of events gives one change per change of state, none for the
// steps that stay.
func TestStepChangesAlongAFailover(t *testing.T) {
	c := NewCore(StandbyMode, 2)
	var changes []Change
	for _, ev := range []Input{
		okProbe(), okProbe(), failProbe(true), failProbe(true), failProbe(true), okProbe(),
		failProbe(false), failProbe(false), failProbe(false), actionOK(Promote, "done"), recoveryEnded(),
		okWith(standbyFacts),
	} {
		if out := c.Step(ev); out.Change != nil {
			changes = append(changes, *out.Change)
		}
	}
	require.Equal(t, []Change{
		{StandbyReady, StandbyConnected, PartnerUp, Why(StandbyReady, PartnerUp), PrimaryPartner},
		{StandbyConnected, StandbyHeartbeatLost, HeartbeatLost, Why(StandbyConnected, HeartbeatLost), PrimaryPartner},
		{StandbyHeartbeatLost, StandbyConnected, PartnerUp, Why(StandbyHeartbeatLost, PartnerUp), PrimaryPartner},
		{StandbyConnected, StandbyPromoting, PartnerLost, Why(StandbyConnected, PartnerLost) + " (2 failed heartbeats in a row)",
			PrimaryUnknown},
		{StandbyPromoting, MasterReady, ActionDone, Why(StandbyPromoting, ActionDone) + " (done)", PrimaryUnknown},
		{MasterReady, MasterConnected, PartnerUp, Why(MasterReady, PartnerUp), PrimarySelf},
	}, changes)
}

// An input of a kind the core does not know is logged and changes nothing.
func TestStepIgnoresInputsItDoesNotKnow(t *testing.T) {
	for _, kind := range []InputKind{NumInputKinds, 99, -1} {
		t.Run(fmt.Sprint(kind), func(t *testing.T) {
			c := reach(t, StandbyConnected, 3)
			c.Step(failProbe(false))
			before := *c
			out := c.Step(Input{Kind: kind, At: t0.Add(time.Hour), Action: Promote, Detail: "x", Err: "y",
				Probe: ProbeResult{OK: true}})
			require.Equal(t, Output{Logs: []LogLine{warn(fmt.Sprintf("ignored input of kind %d", kind))}}, out)
			require.Equal(t, before, *c, "the core is untouched")
		})
	}
}

// TestView: what the keeper would do if the partner stayed down from now
// on, and on a standby why it would not promote.
func TestView(t *testing.T) {
	const th = 3
	withPolicy := func(c *Core, p Policy) *Core { c.SetPolicy(p); return c }
	steps := func(c *Core, evs ...Input) *Core {
		for _, ev := range evs {
			c.Step(ev)
		}
		return c
	}
	asyncAgain := syncMaster
	asyncAgain.SyncMode, asyncAgain.SyncStandby = false, false
	syncModeNotThis := syncMaster
	syncModeNotThis.SyncStandby = false // synchronous_standby_names set, this standby not streaming yet
	// The tests' heartbeats are all at t0: the last good one, the last
	// failed one (refused, unless said otherwise).
	good := func(v View) View { v.LastSuccess = t0; return v }
	failed := func(v View) View {
		v.LastFailure, v.LastClass, v.LastReason = t0, FailRefused, "refused: "+testReason
		return v
	}
	both := func(v View) View { return failed(good(v)) }
	for _, tc := range []struct {
		name string
		core func(t *testing.T) *Core
		want View
	}{
		{"standby never reached",
			func(t *testing.T) *Core { return NewCore(StandbyMode, th) },
			View{State: StandbyReady, Threshold: th, PartnerLSN: -1, Blocked: riskNeverReached}},
		{"standby never reached, failover on timeout",
			func(t *testing.T) *Core { return withPolicy(NewCore(StandbyMode, th), Policy{FailoverOnTimeout: true}) },
			View{State: StandbyReady, Threshold: th, PartnerLSN: -1, Blocked: riskNeverReached}},
		{"standby never reached, failing",
			func(t *testing.T) *Core { return steps(NewCore(StandbyMode, th), failProbe(false), failProbe(false)) },
			failed(View{State: StandbyReady, Failures: 2, Threshold: th, PartnerLSN: -1, Blocked: riskNeverReached})},
		{"standby of a synchronous master",
			func(t *testing.T) *Core { return reach(t, StandbyConnected, th) },
			good(View{State: StandbyConnected, Threshold: th, SyncConfirmed: true, PartnerLSN: masterLSN, NextAction: Promote})},
		{"standby of a synchronous master, failing",
			func(t *testing.T) *Core {
				return steps(reach(t, StandbyConnected, th), failProbe(false), failProbe(false))
			},
			both(View{State: StandbyConnected, Failures: 2, Threshold: th, SyncConfirmed: true, PartnerLSN: masterLSN,
				NextAction: Promote})},
		{"standby of an asynchronous master",
			func(t *testing.T) *Core { return steps(NewCore(StandbyMode, th), okWith(asyncMaster)) },
			good(View{State: StandbyConnected, Threshold: th, PartnerLSN: masterLSN, Blocked: riskLSN("0/3000060", "unknown")})},
		{"standby whose master turned asynchronous",
			func(t *testing.T) *Core { return steps(reach(t, StandbyConnected, th), okWith(asyncAgain)) },
			good(View{State: StandbyConnected, Threshold: th, PartnerLSN: masterLSN, Blocked: riskLSN("0/3000060", "unknown")})},
		{"standby not seen synchronous again, synchronous mode still on",
			func(t *testing.T) *Core { return steps(reach(t, StandbyConnected, th), okWith(syncModeNotThis)) },
			good(View{State: StandbyConnected, Threshold: th, SyncConfirmed: true, PartnerLSN: masterLSN, NextAction: Promote})},
		// Replication outlived the failed heartbeats: should it drop too,
		// a refusal is no proof the master is down (a firewall), and under
		// keep_master the next failed heartbeat does not promote.
		{"standby at the count, replication alive",
			func(t *testing.T) *Core { return reach(t, StandbyHeartbeatLost, th) },
			both(View{State: StandbyHeartbeatLost, Failures: th, Threshold: th, SyncConfirmed: true, PartnerLSN: masterLSN,
				Blocked: riskFirewall})},
		{"standby promoting",
			func(t *testing.T) *Core { return reach(t, StandbyPromoting, th) },
			both(View{State: StandbyPromoting, Failures: th, Threshold: th, InFlight: Promote, SyncConfirmed: true,
				PartnerLSN: masterLSN})},
		{"standby holding says why",
			func(t *testing.T) *Core { return reach(t, StandbyNotPromoting, th) },
			both(View{State: StandbyNotPromoting, Failures: th, Threshold: th, PartnerLSN: masterLSN,
				Blocked: riskLSN("0/3000060", "unknown")})},
		{"master at start",
			func(t *testing.T) *Core { return NewCore(MasterMode, th) },
			View{State: MasterReady, Threshold: th, PartnerLSN: -1, NextAction: SwitchAsync}},
		{"master, failover on timeout: a refusal is proof enough",
			func(t *testing.T) *Core {
				return steps(withPolicy(NewCore(MasterMode, th), Policy{FailoverOnTimeout: true}), okWith(standbyFacts))
			},
			good(View{State: MasterConnected, Threshold: th, PartnerLSN: -1, NextAction: SwitchAsync})},
		{"master, failing",
			func(t *testing.T) *Core {
				return steps(reach(t, MasterConnected, th), failProbe(false), failProbe(false))
			},
			both(View{State: MasterConnected, Failures: 2, Threshold: th, SyncConfirmed: true, PartnerLSN: masterLSN,
				NextAction: SwitchAsync})},
		{"master switching",
			func(t *testing.T) *Core { return reach(t, MasterSwitching, th) },
			both(View{State: MasterSwitching, Failures: th, Threshold: th, InFlight: SwitchAsync, SyncConfirmed: true,
				PartnerLSN: masterLSN})},
		{"master async, standby back",
			func(t *testing.T) *Core { return steps(reach(t, MasterAsync, th), okWith(standbyFacts)) },
			both(View{State: MasterAsync, Threshold: th, PartnerLSN: -1})}, // a standby is never synchronous with itself
		{"master restoring",
			func(t *testing.T) *Core { return reach(t, MasterRestoring, th) },
			both(View{State: MasterRestoring, Threshold: th, InFlight: RestoreSync, PartnerLSN: -1})},
		{"master fenced",
			func(t *testing.T) *Core { return reach(t, MasterFenced, th) },
			good(View{State: MasterFenced, Failures: 1, Threshold: th, SyncConfirmed: true, PartnerLSN: masterLSN,
				LastFailure: t0, LastClass: FailSuperseded, LastReason: "superseded: " + supersededDetail})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.core(t)
			before := *c
			v := c.View()
			// The settings the core decides with are checked in TestViewSettings.
			require.Equal(t, c.policy, v.Policy)
			require.Equal(t, c.aliveWhileFailing, v.AliveWhileFailing)
			v.Policy, v.Interval, v.PartnerSet, v.PartnerUsable, v.AliveWhileFailing = Policy{}, 0, false, false, 0
			require.Equal(t, tc.want, v)
			require.Equal(t, before, *c, "View changes nothing")
		})
	}
}

// The threshold is the current one: a reload that lowers it to the
// failures so far ends the countdown: the next failed heartbeat acts.
func TestViewFollowsTheThreshold(t *testing.T) {
	c := reach(t, StandbyConnected, 4)
	c.Step(failProbe(false))
	c.Step(failProbe(false))
	require.Equal(t, Promote, c.View().NextAction)
	c.SetThreshold(2)
	v := c.View()
	require.Equal(t, 2, v.Threshold)
	require.Equal(t, Promote, v.NextAction)
}

// With pg_keeper.max_failover_lag set, whether a standby of an asynchronous
// master promotes depends on its lag when the master is lost, which View
// cannot know: it supposes the standby has what the master had at the last
// good heartbeat, so the status says it would promote, as it does.
func TestViewWithMaxLagDoesNotClaimBlocked(t *testing.T) {
	c := NewCore(StandbyMode, 3)
	c.SetPolicy(Policy{MaxLag: 1 << 30})
	c.Step(okWith(asyncMaster))
	v := c.View()

	// What happens when the master goes, 10 bytes behind it.
	lost := failProbe(false)
	lost.Probe.LocalLSN = masterLSN - 10
	c.Step(lost)
	c.Step(lost)
	out := c.Step(lost)
	require.Equal(t, []ActionKind{Promote}, out.Actions)

	require.Equal(t, Promote, v.NextAction)
	require.Empty(t, v.Blocked)
}

// View shows the settings the core decides with, as set.
func TestViewSettings(t *testing.T) {
	c := NewCore(StandbyMode, 3)
	v := c.View()
	require.Equal(t, 5*time.Second, v.Interval, "the default until the settings are read")
	require.True(t, v.PartnerSet)
	require.True(t, v.PartnerUsable)
	c.SetPolicy(Policy{MaxLag: 7, FailoverOnTimeout: true})
	c.SetInterval(time.Second, t0)
	c.SetPartner(true, false)
	v = c.View()
	require.Equal(t, Policy{MaxLag: 7, FailoverOnTimeout: true}, v.Policy)
	require.Equal(t, time.Second, v.Interval)
	require.True(t, v.PartnerSet)
	require.False(t, v.PartnerUsable)
}
