package core

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func factsWith(f PartnerFacts, sync bool, lsn int64) *PartnerFacts {
	f.SyncStandby, f.LSN = sync, lsn
	return &f
}

// TestRiskDecidesAtThreshold runs a failure at the threshold (2) through
// Step for every branch of Core.probe and Core.risk, with the exact line
// logged for the transition.
func TestRiskDecidesAtThreshold(t *testing.T) {
	const (
		standbyHold  = "master lost, but promoting could lose acknowledged commits or make a second primary: not promoting (2 failed heartbeats in a row; "
		neverReached = "master unreachable and never reached since start: not promoting (2 failed heartbeats in a row; "
		masterHold   = "standby unreachable and perhaps taking over: keeping synchronous replication, commits wait (2 failed heartbeats in a row; "
		promoting    = "master lost: promoting this standby (2 failed heartbeats in a row)"
		switching    = "standby lost: switching to asynchronous replication (2 failed heartbeats in a row)"
		switchAlone  = "standby not reached: switching to asynchronous replication until it has caught up (2 failed heartbeats in a row)"
	)
	keep := Policy{}
	failover := Policy{FailoverOnTimeout: true}
	sync := factsWith(syncMaster, true, masterLSN)
	async := factsWith(asyncMaster, false, masterLSN)
	lag := func(n int64) Policy { return Policy{MaxLag: n} }

	for _, tc := range []struct {
		name     string
		mode     Mode
		policy   Policy
		facts    *PartnerFacts // the last good heartbeat; nil: none
		class    FailureClass
		localLSN int64
		state    State
		actions  []ActionKind
		log      string
	}{
		// Master mode: only an ambiguous failure under failover holds.
		{"master timeout failover", MasterMode, failover, sync, FailTimeout, -1, MasterKeepingSync, nil,
			masterHold + "timeout is no proof the standby is down, and with pg_keeper.on_partner_timeout = failover it may be promoting itself)"},
		{"master other failover", MasterMode, failover, sync, FailOther, -1, MasterKeepingSync, nil,
			masterHold + "other is no proof the standby is down, and with pg_keeper.on_partner_timeout = failover it may be promoting itself)"},
		{"master configuration failover", MasterMode, failover, sync, FailConfig, -1, MasterKeepingSync, nil,
			masterHold + "configuration is no proof the standby is down, and with pg_keeper.on_partner_timeout = failover it may be promoting itself)"},
		{"master never reached timeout failover", MasterMode, failover, nil, FailTimeout, -1, MasterKeepingSync, nil,
			masterHold + "timeout is no proof the standby is down, and with pg_keeper.on_partner_timeout = failover it may be promoting itself)"},
		{"master refused failover", MasterMode, failover, sync, FailRefused, -1, MasterSwitching, []ActionKind{SwitchAsync}, switching},
		{"master starting failover", MasterMode, failover, sync, FailStarting, -1, MasterSwitching, []ActionKind{SwitchAsync}, switching},
		{"master timeout keep", MasterMode, keep, sync, FailTimeout, -1, MasterSwitching, []ActionKind{SwitchAsync}, switching},
		{"master other keep", MasterMode, keep, sync, FailOther, -1, MasterSwitching, []ActionKind{SwitchAsync}, switching},
		{"master refused keep", MasterMode, keep, sync, FailRefused, -1, MasterSwitching, []ActionKind{SwitchAsync}, switching},
		{"master never reached refused keep", MasterMode, keep, nil, FailRefused, -1, MasterSwitching, []ActionKind{SwitchAsync}, switchAlone},
		{"master never reached timeout keep", MasterMode, keep, nil, FailTimeout, -1, MasterSwitching, []ActionKind{SwitchAsync}, switchAlone},

		// Standby mode, ambiguous failure under keep_master: never promote.
		{"standby timeout keep", StandbyMode, keep, sync, FailTimeout, -1, StandbyNotPromoting, nil,
			standbyHold + "timeout is no proof the master is down (pg_keeper.on_partner_timeout = keep_master); " +
				"if it is, promote by hand: SELECT pg_promote())"},
		{"standby other keep", StandbyMode, keep, sync, FailOther, masterLSN, StandbyNotPromoting, nil,
			standbyHold + "other is no proof the master is down (pg_keeper.on_partner_timeout = keep_master); " +
				"if it is, promote by hand: SELECT pg_promote())"},
		{"standby timeout keep even with a lag allowance", StandbyMode, Policy{MaxLag: 1 << 40}, async, FailTimeout, masterLSN, StandbyNotPromoting, nil,
			standbyHold + riskStandbyTimeout + ")"},
		// The ambiguity is named first, even before the master was reached.
		{"standby never reached timeout keep", StandbyMode, keep, nil, FailTimeout, -1, StandbyReady, nil,
			neverReached + riskStandbyTimeout + ")"},
		{"standby never reached refused", StandbyMode, keep, nil, FailRefused, -1, StandbyReady, nil,
			neverReached + riskNeverReached + ")"},
		{"standby never reached timeout failover", StandbyMode, failover, nil, FailTimeout, -1, StandbyReady, nil,
			neverReached + riskNeverReached + ")"},

		// A master that was synchronous with this standby: promote.
		{"standby refused sync", StandbyMode, keep, sync, FailRefused, -1, StandbyPromoting, []ActionKind{Promote}, promoting},
		{"standby starting sync", StandbyMode, keep, sync, FailStarting, -1, StandbyPromoting, []ActionKind{Promote}, promoting},
		{"standby timeout failover sync", StandbyMode, failover, sync, FailTimeout, -1, StandbyPromoting, []ActionKind{Promote}, promoting},
		{"standby other failover sync", StandbyMode, failover, sync, FailOther, -1, StandbyPromoting, []ActionKind{Promote}, promoting},
		{"standby sync with unknown LSNs", StandbyMode, keep, factsWith(syncMaster, true, -1), FailRefused, -1,
			StandbyPromoting, []ActionKind{Promote}, promoting},

		// Not synchronous: only within max_failover_lag of the master's position.
		{"standby async no allowance", StandbyMode, keep, async, FailRefused, 0x3000000, StandbyNotPromoting, nil,
			standbyHold + riskLSN("0/3000060", "0/3000000") + ")"},
		{"standby async caught up but no allowance", StandbyMode, keep, async, FailRefused, masterLSN, StandbyNotPromoting, nil,
			standbyHold + riskLSN("0/3000060", "0/3000060") + ")"},
		{"standby async lag equal to the allowance", StandbyMode, lag(0x60), async, FailRefused, 0x3000000,
			StandbyPromoting, []ActionKind{Promote}, promoting},
		{"standby async lag one byte over the allowance", StandbyMode, lag(0x5F), async, FailRefused, 0x3000000, StandbyNotPromoting, nil,
			standbyHold + riskLSN("0/3000060", "0/3000000") + ")"},
		{"standby async ahead of the master's last position", StandbyMode, lag(1), async, FailRefused, 0x3000100,
			StandbyPromoting, []ActionKind{Promote}, promoting},
		{"standby async with its own LSN unknown", StandbyMode, lag(1 << 40), async, FailRefused, -1, StandbyNotPromoting, nil,
			standbyHold + riskLSN("0/3000060", "unknown") + ")"},
		{"standby async with the master's LSN unknown", StandbyMode, lag(1 << 40), factsWith(asyncMaster, false, -1), FailRefused, 0x3000000,
			StandbyNotPromoting, nil, standbyHold + riskLSN("unknown", "0/3000000") + ")"},
		{"standby async both LSNs unknown", StandbyMode, lag(1 << 40), factsWith(asyncMaster, false, -1), FailRefused, -1,
			StandbyNotPromoting, nil, standbyHold + riskLSN("unknown", "unknown") + ")"},
		{"standby async across a 4 GB boundary within the allowance", StandbyMode, lag(0x20), factsWith(asyncMaster, false, 1<<32|0x10),
			FailRefused, 0xFFFFFFF0, StandbyPromoting, []ActionKind{Promote}, promoting},
		{"standby async across a 4 GB boundary over the allowance", StandbyMode, lag(0x1F), factsWith(asyncMaster, false, 1<<32|0x10),
			FailRefused, 0xFFFFFFF0, StandbyNotPromoting, nil, standbyHold + riskLSN("1/10", "0/FFFFFFF0") + ")"},
		{"standby async timeout failover within the allowance", StandbyMode, Policy{MaxLag: 0x60, FailoverOnTimeout: true}, async,
			FailTimeout, 0x3000000, StandbyPromoting, []ActionKind{Promote}, promoting},
		{"standby async timeout failover without allowance", StandbyMode, failover, async, FailTimeout, 0x3000000, StandbyNotPromoting, nil,
			standbyHold + riskLSN("0/3000060", "0/3000000") + ")"},
		{"standby async negative allowance is none", StandbyMode, lag(-1), async, FailRefused, masterLSN, StandbyNotPromoting, nil,
			standbyHold + riskLSN("0/3000060", "0/3000060") + ")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCore(tc.mode, 2)
			c.SetPolicy(tc.policy)
			start := c.State()
			if tc.facts != nil {
				c.Step(okWith(*tc.facts))
				start = c.State()
			}
			ev := failWith(tc.class, "d", tc.localLSN)
			c.Step(ev)
			out := c.Step(ev)

			level := Warning
			if tc.class.Misconfigured() {
				level = Error
			}
			require.Equal(t, []LogLine{
				{level, fmt.Sprintf("heartbeat to %s failed (2/2): %s: d", tc.mode.partner(), tc.class)},
				warn(tc.log),
			}, out.Logs)
			require.Equal(t, tc.actions, out.Actions)
			require.Equal(t, tc.state, c.State())
			if tc.actions == nil {
				require.Equal(t, PartnerLostUnsafe, c.lastTrigger)
				require.NotEqual(t, "", c.risk(ev.Probe))
			} else {
				require.Equal(t, PartnerLost, c.lastTrigger)
				require.Equal(t, tc.actions[0], c.inFlight)
				// risk is judged from the state left, of the same mode.
				require.Equal(t, tc.mode, c.State().Mode())
				require.Equal(t, "", c.risk(ev.Probe))
			}
			require.Equal(t, 2, c.Failures())
			require.Equal(t, start.Mode(), c.State().Mode())
		})
	}
}

// TestAnsweredFailureNeverActs: a partner that answered with an error is
// alive, whatever the policy and the last heartbeat said.
// A superseded master fences itself at once instead: see
// TestSupersededNeverPromotesOrSwitches.
func TestAnsweredFailureNeverActs(t *testing.T) {
	for f := range NumFailureClasses {
		if !f.Answered() || f == FailSuperseded {
			continue
		}
		for _, mode := range []Mode{StandbyMode, MasterMode} {
			for _, policy := range []Policy{{}, {FailoverOnTimeout: true, MaxLag: 1 << 40}} {
				c := NewCore(mode, 2)
				c.SetPolicy(policy)
				c.Step(okProbe())
				ev := failWith(f, "d", masterLSN)
				c.Step(ev)
				out := c.Step(ev)
				name := fmt.Sprintf("%s/%s/%+v", f, mode, policy)
				level := Warning
				if f.Misconfigured() {
					level = Error
				}
				why := "heartbeat to master failing but the master is alive: not promoting"
				want := StandbyHeartbeatLost
				if mode == MasterMode {
					why, want = "heartbeat to standby failing but it is alive: keeping synchronous replication", MasterHeartbeatLost
				}
				require.Equal(t, []LogLine{
					{level, fmt.Sprintf("heartbeat to %s failed (2/2): %s: d", mode.partner(), f)},
					warn(why),
				}, out.Logs, name)
				require.Nil(t, out.Actions, name)
				require.Equal(t, want, c.State(), name)
				require.Equal(t, HeartbeatLost, c.lastTrigger, name)
			}
		}
	}
}

// TestMisconfiguredFailureIsAnError: the failure line of a class an
// operator has to fix is an ERROR, below and past the threshold.
func TestMisconfiguredFailureIsAnError(t *testing.T) {
	c := NewCore(MasterMode, 3)
	c.Step(okProbe())
	out := c.Step(failWith(FailBothPrimary, "two", -1))
	require.Equal(t, []LogLine{{Error, "heartbeat to standby failed (1/3): two primaries: two"}}, out.Logs)
	out = c.Step(failWith(FailTimeout, "t", -1))
	require.Equal(t, []LogLine{warn("heartbeat to standby failed (2/3): timeout: t")}, out.Logs)
	out = c.Step(failWith(FailWrongCluster, "w", -1))
	require.Equal(t, []LogLine{
		{Error, "heartbeat to standby failed (3/3): another cluster: w"},
		warn("heartbeat to standby failing but it is alive: keeping synchronous replication"),
	}, out.Logs)
	out = c.Step(failWith(FailSelf, "s", -1))
	require.Equal(t, []LogLine{{Error, "heartbeat to standby failed (4/3): this server: s"}}, out.Logs)
	out = c.Step(failWith(FailSelf, "s", -1))
	require.Nil(t, out.Logs, "a repeated reason past the threshold is not logged again")
	require.Equal(t, MasterHeartbeatLost, c.State())
	// A configuration error proves nothing about the standby: under
	// keep_master the master stops waiting for it.
	out = c.Step(failWith(FailConfig, "c", -1))
	require.Equal(t, []LogLine{
		{Error, "heartbeat to standby failed (6/3): configuration: c"},
		warn("standby lost: heartbeat and replication both down: switching to asynchronous replication (6 failed heartbeats in a row)"),
	}, out.Logs)
	require.Equal(t, []ActionKind{SwitchAsync}, out.Actions)
	require.Equal(t, MasterSwitching, c.State())

	c = NewCore(StandbyMode, 3)
	out = c.Step(failWith(FailRecovery, "both standbys", -1))
	require.Equal(t, []LogLine{{Error, "heartbeat to master failed (1/3): partner in recovery: both standbys"}}, out.Logs)
	out = c.Step(failWith(FailRejected, "r", -1))
	require.Equal(t, []LogLine{warn("heartbeat to master failed (2/3): rejected: r")}, out.Logs)
}

func TestGoodHeartbeatKeepsACopyOfTheFacts(t *testing.T) {
	c := NewCore(StandbyMode, 2)
	require.Nil(t, c.lastFacts)
	ev := okWith(syncMaster)
	c.Step(ev)
	require.NotNil(t, c.lastFacts)
	require.Equal(t, syncMaster, *c.lastFacts)
	ev.Probe.Partner.SyncStandby = false
	require.True(t, c.lastFacts.SyncStandby, "the core keeps its own copy")

	// A failed heartbeat keeps them; the next good one replaces them.
	c.Step(failProbe(false))
	require.Equal(t, syncMaster, *c.lastFacts)
	c.Step(okWith(asyncMaster))
	require.Equal(t, asyncMaster, *c.lastFacts)
	c.Step(caughtUpProbe())
	require.Equal(t, standbyFacts, *c.lastFacts)
}

func TestSetPolicy(t *testing.T) {
	c := NewCore(StandbyMode, 2)
	require.Equal(t, Policy{}, c.policy)
	c.SetPolicy(Policy{MaxLag: 16 << 20, FailoverOnTimeout: true})
	require.Equal(t, Policy{MaxLag: 16 << 20, FailoverOnTimeout: true}, c.policy)
	c.SetPolicy(Policy{})
	require.Equal(t, Policy{}, c.policy)
}

// FailConfig is Misconfigured ("an operator has to fix something"),
// yet risk treats it like a timeout: under on_partner_timeout = failover a
// standby promotes because partner_conninfo names a host that does not
// resolve, while the master may be fine.
func TestStandbyDoesNotPromoteOnAConfigurationError(t *testing.T) {
	c := NewCore(StandbyMode, 2)
	c.SetPolicy(Policy{FailoverOnTimeout: true})
	c.Step(okProbe())
	ev := failWith(FailConfig, "lookup nohost: no such host", -1)
	c.Step(ev)
	out := c.Step(ev)
	require.Nil(t, out.Actions)
	require.Equal(t, StandbyNotPromoting, c.State())
}

// TestReplicationAliveBeatsRisk: streaming replication proves the partner
// alive before any risk is weighed, whatever the class and the policy.
func TestReplicationAliveBeatsRisk(t *testing.T) {
	for _, tc := range []struct {
		mode   Mode
		policy Policy
		class  FailureClass
		state  State
		why    string
	}{
		{MasterMode, Policy{FailoverOnTimeout: true}, FailTimeout, MasterHeartbeatLost,
			"heartbeat to standby failing but it is alive: keeping synchronous replication"},
		{MasterMode, Policy{}, FailRefused, MasterHeartbeatLost,
			"heartbeat to standby failing but it is alive: keeping synchronous replication"},
		{StandbyMode, Policy{}, FailTimeout, StandbyHeartbeatLost,
			"heartbeat to master failing but the master is alive: not promoting"},
		{StandbyMode, Policy{FailoverOnTimeout: true}, FailRefused, StandbyHeartbeatLost,
			"heartbeat to master failing but the master is alive: not promoting"},
	} {
		c := NewCore(tc.mode, 1)
		c.SetPolicy(tc.policy)
		c.Step(okProbe())
		ev := failWith(tc.class, "d", masterLSN)
		ev.Probe.ReplicationAlive = true
		out := c.Step(ev)
		name := fmt.Sprintf("%s/%s", tc.mode, tc.class)
		require.Equal(t, []LogLine{
			warn(fmt.Sprintf("heartbeat to %s failed (1/1): %s: d", tc.mode.partner(), tc.class)),
			warn(tc.why),
		}, out.Logs, name)
		require.Nil(t, out.Actions, name)
		require.Equal(t, tc.state, c.State(), name)
	}
}

// TestStandbyReadyNeverProducesPartnerLost: before the first good
// heartbeat no class and no policy makes losing the master safe, so the
// row StandbyReady/partner-lost is only there to complete the table.
func TestStandbyReadyNeverProducesPartnerLost(t *testing.T) {
	for f := range NumFailureClasses {
		for _, p := range []Policy{{}, {FailoverOnTimeout: true}, {MaxLag: 1 << 40, FailoverOnTimeout: true}} {
			for _, local := range []int64{-1, 0, masterLSN} {
				c := NewCore(StandbyMode, 1)
				c.SetPolicy(p)
				out := c.Step(failWith(f, "d", local))
				name := fmt.Sprintf("%s/%+v/%d", f, p, local)
				require.Nil(t, out.Actions, name)
				require.NotEqual(t, PartnerLost, c.lastTrigger, name)
				want := StandbyReady
				if f.Answered() && f != FailSuperseded { // superseded is unexpected in standby mode
					want = StandbyHeartbeatLost
				}
				require.Equal(t, want, c.State(), name)
			}
		}
	}
}

// A good heartbeat that finds the synchronous master without its walsender
// (the master dying under it, or the standby reconnecting) keeps the
// standby confirmed: with synchronous_standby_names set, nothing was
// acknowledged without it. Only a master seen asynchronous clears it.
func TestSyncConfirmedSurvivesMissingWalsender(t *testing.T) {
	c := NewCore(StandbyMode, 1)
	c.Step(okWith(syncMaster))
	noWalsender := syncMaster
	noWalsender.SyncStandby = false
	c.Step(okWith(noWalsender))
	out := c.Step(failProbe(false))
	require.Equal(t, []ActionKind{Promote}, out.Actions)

	c = NewCore(StandbyMode, 1)
	c.Step(okWith(syncMaster))
	c.Step(okWith(asyncMaster))
	out = c.Step(failProbe(false))
	require.Nil(t, out.Actions)
	require.Equal(t, StandbyNotPromoting, c.State())
}

// A standby that promoted itself under on_partner_timeout = failover does
// not then keep its own commits waiting for the old master it replaced; once
// that partner answers again, the policy applies as before.
func TestPromotedNodeDoesNotWaitForDeposedMaster(t *testing.T) {
	c := NewCore(StandbyMode, 1)
	c.SetPolicy(Policy{FailoverOnTimeout: true})
	c.Step(okWith(syncMaster))
	timeout := Input{Kind: ProbeInput, At: t0, Probe: ProbeResult{Class: FailTimeout, Detail: "deadline", LocalLSN: -1}}
	out := c.Step(timeout)
	require.Equal(t, []ActionKind{Promote}, out.Actions)
	c.Step(actionOK(Promote, "pg_promote() took 1 ms"))
	require.Equal(t, MasterReady, c.State())

	out = c.Step(timeout)
	require.Equal(t, []ActionKind{SwitchAsync}, out.Actions)
	require.Equal(t, MasterSwitching, c.State())

	require.True(t, c.deposed)
	c.Step(actionOK(SwitchAsync, "done"))
	c.Step(okWith(standbyFacts))
	require.False(t, c.deposed, "the partner answered: the policy applies again")
}
