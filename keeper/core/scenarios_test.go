package core

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// step is one event of a scenario and everything it must produce.
type step struct {
	ev      Input
	state   State
	title   string
	actions []ActionKind
	logs    []LogLine
}

func replay(t *testing.T, c *Core, steps []step) {
	t.Helper()
	for i, s := range steps {
		out := c.Step(s.ev)
		require.Equal(t, s.state, c.State(), "step %d", i)
		require.Equal(t, s.title, c.State().Title(), "step %d", i)
		require.Equal(t, s.actions, out.Actions, "step %d", i)
		require.Equal(t, s.logs, out.Logs, "step %d", i)
	}
}

func refused(detail string) Input { return failWith(FailRefused, detail, -1) }

func timedOut(detail string) Input { return failWith(FailTimeout, detail, -1) }

const (
	standbyConnected = "(standby mode:connected)"
	standbyReady     = "(standby mode:ready)"
	standbyPromoting = "(standby mode:promoting)"
	standbyHBLost    = "(standby mode:heartbeat-lost)"
	standbyHolding   = "(standby mode:not-promoting)"
	masterHBLost     = "(master mode:heartbeat-lost)"
	masterHolding    = "(master mode:keeping-sync)"
	masterReady      = "(master mode:ready)"
	masterConnected  = "(master mode:connected)"
	masterSwitching  = "(master mode:switching)"
	masterAsync      = "(master mode:async)"
	masterRestoring  = "(master mode:restoring)"
	masterFenced     = "(master mode:fenced)"
)

func TestScenarioStandbyPromotesAfterThreshold(t *testing.T) {
	c := NewCore(StandbyMode, 4)
	require.Equal(t, standbyReady, c.State().Title())
	replay(t, c, []step{
		{okProbe(), StandbyConnected, standbyConnected, []ActionKind{DropStaleSlots}, []LogLine{info("connected to master")}},
		{refused("dial error"), StandbyConnected, standbyConnected, nil,
			[]LogLine{warn("heartbeat to master failed (1/4): refused: dial error")}},
		{refused("dial error"), StandbyConnected, standbyConnected, nil,
			[]LogLine{warn("heartbeat to master failed (2/4): refused: dial error")}},
		{refused("dial error"), StandbyConnected, standbyConnected, nil,
			[]LogLine{warn("heartbeat to master failed (3/4): refused: dial error")}},
		{refused("dial error"), StandbyPromoting, standbyPromoting, []ActionKind{Promote}, []LogLine{
			warn("heartbeat to master failed (4/4): refused: dial error"),
			warn("master lost: promoting this standby (4 failed heartbeats in a row)"),
		}},
		// Heartbeats go on while pg_promote() runs; they change nothing.
		{refused("dial error"), StandbyPromoting, standbyPromoting, nil, nil},
		{recoveryEnded(), StandbyPromoting, standbyPromoting, nil, nil},
		{actionOK(Promote, "pg_promote() took 30 ms"), MasterReady, masterReady, []ActionKind{RunAfterCommand},
			[]LogLine{info("promoted: this server is now the master (pg_promote() took 30 ms)")}},
		{actionOK(RunAfterCommand, "exit status 0 after 5 ms"), MasterReady, masterReady, nil,
			[]LogLine{info("after_command finished: exit status 0 after 5 ms")}},
	})
}

func TestScenarioSuccessResetsCount(t *testing.T) {
	c := NewCore(StandbyMode, 4)
	replay(t, c, []step{
		{okProbe(), StandbyConnected, standbyConnected, []ActionKind{DropStaleSlots}, []LogLine{info("connected to master")}},
		{refused("x"), StandbyConnected, standbyConnected, nil, []LogLine{warn("heartbeat to master failed (1/4): refused: x")}},
		{refused("x"), StandbyConnected, standbyConnected, nil, []LogLine{warn("heartbeat to master failed (2/4): refused: x")}},
		{refused("x"), StandbyConnected, standbyConnected, nil, []LogLine{warn("heartbeat to master failed (3/4): refused: x")}},
		{okProbe(), StandbyConnected, standbyConnected, nil, []LogLine{info("heartbeat to master succeeded after 3 failed")}},
		{okProbe(), StandbyConnected, standbyConnected, nil, nil},
		{refused("x"), StandbyConnected, standbyConnected, nil, []LogLine{warn("heartbeat to master failed (1/4): refused: x")}},
		{refused("x"), StandbyConnected, standbyConnected, nil, []LogLine{warn("heartbeat to master failed (2/4): refused: x")}},
		{refused("x"), StandbyConnected, standbyConnected, nil, []LogLine{warn("heartbeat to master failed (3/4): refused: x")}},
	})
	require.Equal(t, 3, c.Failures())
}

func TestScenarioStandbyThatNeverConnectedDoesNotPromote(t *testing.T) {
	c := NewCore(StandbyMode, 2)
	replay(t, c, []step{
		{refused("x"), StandbyReady, standbyReady, nil, []LogLine{warn("heartbeat to master failed (1/2): refused: x")}},
		{refused("x"), StandbyReady, standbyReady, nil, []LogLine{
			warn("heartbeat to master failed (2/2): refused: x"),
			warn("master unreachable and never reached since start: not promoting " +
				"(2 failed heartbeats in a row; the master was not reached once since start)"),
		}},
		// Past the threshold with the same reason: nothing is logged again.
		{refused("x"), StandbyReady, standbyReady, nil, nil},
		{refused("x"), StandbyReady, standbyReady, nil, nil},
		// A new reason is logged once.
		{timedOut("y"), StandbyReady, standbyReady, nil, []LogLine{warn("heartbeat to master failed (5/2): timeout: y")}},
		{timedOut("y"), StandbyReady, standbyReady, nil, nil},
		// The master shows up: from now on, losing it promotes.
		{okProbe(), StandbyConnected, standbyConnected, []ActionKind{DropStaleSlots}, []LogLine{
			info("heartbeat to master succeeded after 6 failed"),
			info("connected to master"),
		}},
		{refused("x"), StandbyConnected, standbyConnected, nil, []LogLine{warn("heartbeat to master failed (1/2): refused: x")}},
		{refused("x"), StandbyPromoting, standbyPromoting, []ActionKind{Promote}, []LogLine{
			warn("heartbeat to master failed (2/2): refused: x"),
			warn("master lost: promoting this standby (2 failed heartbeats in a row)"),
		}},
	})
}

func TestScenarioHeartbeatLostThenReplicationDies(t *testing.T) {
	c := NewCore(StandbyMode, 3)
	alive := func() Input { e := refused("x"); e.Probe.ReplicationAlive = true; return e }
	replay(t, c, []step{
		{okProbe(), StandbyConnected, standbyConnected, []ActionKind{DropStaleSlots}, []LogLine{info("connected to master")}},
		{refused("x"), StandbyConnected, standbyConnected, nil, []LogLine{warn("heartbeat to master failed (1/3): refused: x")}},
		{refused("x"), StandbyConnected, standbyConnected, nil, []LogLine{warn("heartbeat to master failed (2/3): refused: x")}},
		{alive(), StandbyHeartbeatLost, standbyHBLost, nil, []LogLine{
			warn("heartbeat to master failed (3/3): refused: x"),
			warn("heartbeat to master failing but the master is alive: not promoting"),
		}},
		{alive(), StandbyHeartbeatLost, standbyHBLost, nil, nil},
		{alive(), StandbyHeartbeatLost, standbyHBLost, nil, nil},
		// Replication outlived three failed heartbeats: the refusal is no
		// proof the master is down (a firewall), so under keep_master the
		// standby does not promote. (Replication dead from the start, or
		// seen alive once: see TestRefusedWhileReplicating*.)
		{refused("x"), StandbyNotPromoting, standbyHolding, nil, []LogLine{
			warn("master lost, but promoting could lose acknowledged commits or make a second primary: not promoting " +
				"(6 failed heartbeats in a row; " + riskFirewall + ")"),
		}},
	})
}

func TestScenarioHeartbeatRestoredFromHeartbeatLost(t *testing.T) {
	c := NewCore(MasterMode, 2)
	alive := func() Input { e := refused("x"); e.Probe.ReplicationAlive = true; return e }
	replay(t, c, []step{
		{okProbe(), MasterConnected, masterConnected, nil, []LogLine{info("connected to standby")}},
		{alive(), MasterConnected, masterConnected, nil, []LogLine{warn("heartbeat to standby failed (1/2): refused: x")}},
		{alive(), MasterHeartbeatLost, masterHBLost, nil, []LogLine{
			warn("heartbeat to standby failed (2/2): refused: x"),
			warn("heartbeat to standby failing but it is alive: keeping synchronous replication"),
		}},
		{okProbe(), MasterConnected, masterConnected, nil, []LogLine{
			info("heartbeat to standby succeeded after 2 failed"),
			info("heartbeat to standby restored"),
		}},
	})
}

func TestScenarioMasterLosesStandby(t *testing.T) {
	c := NewCore(MasterMode, 2)
	require.Equal(t, masterReady, c.State().Title())
	replay(t, c, []step{
		{okProbe(), MasterConnected, masterConnected, nil, []LogLine{info("connected to standby")}},
		{refused("x"), MasterConnected, masterConnected, nil, []LogLine{warn("heartbeat to standby failed (1/2): refused: x")}},
		{refused("x"), MasterSwitching, masterSwitching, []ActionKind{SwitchAsync}, []LogLine{
			warn("heartbeat to standby failed (2/2): refused: x"),
			warn(Why(MasterConnected, PartnerLost) + " (2 failed heartbeats in a row)"),
		}},
		{refused("x"), MasterSwitching, masterSwitching, nil, nil},
		{actionOK(SwitchAsync, "synchronous_standby_names was 'a', now ''"), MasterAsync, masterAsync, nil, []LogLine{
			info(Why(MasterSwitching, ActionDone) + " (synchronous_standby_names was 'a', now '')"),
		}},
		{refused("x"), MasterAsync, masterAsync, nil, nil},
		{okProbe(), MasterAsync, masterAsync, nil, []LogLine{
			info("heartbeat to standby succeeded after 4 failed"),
			info(Why(MasterAsync, PartnerUp)),
		}},
		{okProbe(), MasterAsync, masterAsync, nil, nil},
		// Losing the standby again does nothing more: replication is asynchronous already.
		{refused("x"), MasterAsync, masterAsync, nil, []LogLine{warn("heartbeat to standby failed (1/2): refused: x")}},
		{refused("x"), MasterAsync, masterAsync, nil, []LogLine{warn("heartbeat to standby failed (2/2): refused: x")}},
		// Once it streams and has caught up, synchronous replication comes back.
		{okProbe(), MasterAsync, masterAsync, nil, []LogLine{
			info("heartbeat to standby succeeded after 2 failed"),
			info(Why(MasterAsync, PartnerUp)),
		}},
		{caughtUpProbe(), MasterRestoring, masterRestoring, []ActionKind{RestoreSync}, []LogLine{
			info(Why(MasterAsync, PartnerCaughtUp)),
		}},
		{caughtUpProbe(), MasterRestoring, masterRestoring, nil, nil},
		{actionOK(RestoreSync, "restored"), MasterConnected, masterConnected, nil, []LogLine{
			info(Why(MasterRestoring, ActionDone) + " (restored)"),
		}},
		{caughtUpProbe(), MasterConnected, masterConnected, nil, nil},
	})
}

func TestScenarioLogDedupe(t *testing.T) {
	c := NewCore(MasterMode, 2)
	replay(t, c, []step{
		{okProbe(), MasterConnected, masterConnected, nil, []LogLine{info("connected to standby")}},
		{refused("a"), MasterConnected, masterConnected, nil, []LogLine{warn("heartbeat to standby failed (1/2): refused: a")}},
		{refused("a"), MasterSwitching, masterSwitching, []ActionKind{SwitchAsync}, []LogLine{
			warn("heartbeat to standby failed (2/2): refused: a"),
			warn(Why(MasterConnected, PartnerLost) + " (2 failed heartbeats in a row)"),
		}},
		{refused("a"), MasterSwitching, masterSwitching, nil, nil},
		{refused("a"), MasterSwitching, masterSwitching, nil, nil},
		{timedOut("b"), MasterSwitching, masterSwitching, nil, []LogLine{warn("heartbeat to standby failed (5/2): timeout: b")}},
		{timedOut("b"), MasterSwitching, masterSwitching, nil, nil},
		{refused("a"), MasterSwitching, masterSwitching, nil, []LogLine{warn("heartbeat to standby failed (7/2): refused: a")}},
		// Same class, other detail: a new reason.
		{refused("c"), MasterSwitching, masterSwitching, nil, []LogLine{warn("heartbeat to standby failed (8/2): refused: c")}},
		{refused("c"), MasterSwitching, masterSwitching, nil, nil},
	})
	// Below the threshold every failure is logged, even with the same reason.
	c = NewCore(MasterMode, 3)
	replay(t, c, []step{
		{refused("a"), MasterReady, masterReady, nil, []LogLine{warn("heartbeat to standby failed (1/3): refused: a")}},
		{refused("a"), MasterReady, masterReady, nil, []LogLine{warn("heartbeat to standby failed (2/3): refused: a")}},
	})
}

func TestScenarioAfterCommandResultOnlyLogs(t *testing.T) {
	for _, s := range []State{StandbyConnected, StandbyPromoting, StandbyNotPromoting, MasterReady, MasterSwitching,
		MasterAsync, MasterRestoring, MasterKeepingSync, MasterFenced} {
		t.Run(s.String(), func(t *testing.T) {
			c := reach(t, s, 2)
			failures, inFlight, last := c.Failures(), c.inFlight, c.lastTrigger

			out := c.Step(actionOK(RunAfterCommand, "exit status 0 after 3 ms"))
			require.Equal(t, Output{Logs: []LogLine{info("after_command finished: exit status 0 after 3 ms")},
				Reports: []Report{{Kind: CommandReport, At: t0, Action: RunAfterCommand, OK: true,
					Detail: "exit status 0 after 3 ms", ExitStatus: -1}}}, out)

			out = c.Step(actionErr(RunAfterCommand, "exit status 1 after 4 ms"))
			require.Equal(t, Output{Logs: []LogLine{warn("after_command failed: exit status 1 after 4 ms")},
				Reports: []Report{{Kind: CommandReport, At: t0, Action: RunAfterCommand,
					Detail: "exit status 1 after 4 ms", ExitStatus: -1}}}, out)

			require.Equal(t, s, c.State())
			require.Equal(t, failures, c.Failures())
			require.Equal(t, inFlight, c.inFlight)
			require.Equal(t, last, c.lastTrigger)
		})
	}
}

func TestScenarioResultOfActionNotInFlightIsIgnored(t *testing.T) {
	c := reach(t, MasterConnected, 2)
	out := c.Step(actionOK(Promote, "x"))
	require.Equal(t, Output{Logs: []LogLine{warn("ignored result of action promote in state master:connected")}}, out)
	require.Equal(t, MasterConnected, c.State())

	c = reach(t, StandbyPromoting, 2)
	out = c.Step(actionErr(SwitchAsync, "x"))
	require.Equal(t, Output{Logs: []LogLine{warn("ignored result of action switch-async in state standby:promoting")}}, out)
	require.Equal(t, StandbyPromoting, c.State())
	require.Equal(t, Promote, c.inFlight)
	require.Equal(t, 2, c.Failures())

	// The awaited result still counts afterwards.
	out = c.Step(actionOK(Promote, "ok"))
	require.Equal(t, MasterReady, c.State())
	require.Equal(t, []ActionKind{RunAfterCommand}, out.Actions)

	// A late duplicate of it is ignored.
	out = c.Step(actionOK(Promote, "ok"))
	require.Equal(t, Output{Logs: []LogLine{warn("ignored result of action promote in state master:ready")}}, out)
	require.Equal(t, MasterReady, c.State())
}

func TestScenarioSetThreshold(t *testing.T) {
	c := NewCore(StandbyMode, 4)
	c.Step(okProbe())
	c.Step(refused("x"))
	c.Step(refused("x"))
	require.Equal(t, 2, c.Failures())

	c.SetThreshold(3)
	require.Equal(t, 3, c.threshold)
	replay(t, c, []step{
		{refused("x"), StandbyPromoting, standbyPromoting, []ActionKind{Promote}, []LogLine{
			warn("heartbeat to master failed (3/3): refused: x"),
			warn("master lost: promoting this standby (3 failed heartbeats in a row)"),
		}},
	})

	c = NewCore(StandbyMode, 4)
	c.Step(okProbe())
	c.Step(refused("x"))
	c.Step(refused("x"))
	c.SetThreshold(0)
	require.Equal(t, 1, c.threshold, "a threshold below 1 is raised to 1")
	replay(t, c, []step{
		{refused("x"), StandbyPromoting, standbyPromoting, []ActionKind{Promote}, []LogLine{
			warn("master lost: promoting this standby (3 failed heartbeats in a row)"),
		}},
	})

	// A larger threshold gives more room.
	c = NewCore(MasterMode, 2)
	c.Step(okProbe())
	c.Step(refused("x"))
	c.SetThreshold(5)
	replay(t, c, []step{
		{refused("x"), MasterConnected, masterConnected, nil, []LogLine{warn("heartbeat to standby failed (2/5): refused: x")}},
	})
}

func TestScenarioServerLeftRecoveryOnItsOwn(t *testing.T) {
	c := NewCore(StandbyMode, 3)
	replay(t, c, []step{
		{okProbe(), StandbyConnected, standbyConnected, []ActionKind{DropStaleSlots}, []LogLine{info("connected to master")}},
		{recoveryEnded(), MasterReady, masterReady, nil, []LogLine{
			warn("server left recovery without pg_keeper: switching to master mode")}},
		{okProbe(), MasterConnected, masterConnected, nil, []LogLine{info("connected to standby")}},
	})
}

func TestScenarioMasterStartedAloneSwitchesUntilCaughtUp(t *testing.T) {
	c := NewCore(MasterMode, 2)
	replay(t, c, []step{
		{refused("x"), MasterReady, masterReady, nil, []LogLine{warn("heartbeat to standby failed (1/2): refused: x")}},
		{refused("x"), MasterSwitching, masterSwitching, []ActionKind{SwitchAsync}, []LogLine{
			warn("heartbeat to standby failed (2/2): refused: x"),
			warn(Why(MasterReady, PartnerLost) + " (2 failed heartbeats in a row)"),
		}},
		{actionOK(SwitchAsync, "done"), MasterAsync, masterAsync, nil, []LogLine{info(Why(MasterSwitching, ActionDone) + " (done)")}},
		// The standby comes up but is still catching up.
		{okProbe(), MasterAsync, masterAsync, nil, []LogLine{
			info("heartbeat to standby succeeded after 2 failed"),
			info(Why(MasterAsync, PartnerUp)),
		}},
		{okProbe(), MasterAsync, masterAsync, nil, nil},
		{caughtUpProbe(), MasterRestoring, masterRestoring, []ActionKind{RestoreSync}, []LogLine{
			info(Why(MasterAsync, PartnerCaughtUp)),
		}},
	})
}

func TestScenarioCaughtUpBeforeAnySwitch(t *testing.T) {
	c := NewCore(MasterMode, 2)
	replay(t, c, []step{
		{caughtUpProbe(), MasterConnected, masterConnected, nil, []LogLine{info("connected to standby")}},
		{caughtUpProbe(), MasterConnected, masterConnected, nil, nil},
	})
}

const (
	holdWhy       = "master lost, but promoting could lose acknowledged commits or make a second primary: not promoting"
	masterHoldWhy = "standby unreachable and perhaps taking over: keeping synchronous replication, commits wait"
)

func TestScenarioStandbyNotPromotingPromotesOnceMaxLagAllows(t *testing.T) {
	c := NewCore(StandbyMode, 2)
	behind := func() Input { return failWith(FailRefused, "x", 0x3000000) }
	replay(t, c, []step{
		{okWith(asyncMaster), StandbyConnected, standbyConnected, []ActionKind{DropStaleSlots}, []LogLine{info("connected to master")}},
		{behind(), StandbyConnected, standbyConnected, nil, []LogLine{warn("heartbeat to master failed (1/2): refused: x")}},
		{behind(), StandbyNotPromoting, standbyHolding, nil, []LogLine{
			warn("heartbeat to master failed (2/2): refused: x"),
			warn(holdWhy + " (2 failed heartbeats in a row; at the last good heartbeat the master was not in synchronous " +
				"replication with this standby, so acknowledged commits may be missing here (master was at 0/3000060, " +
				"this standby has 0/3000000); pg_keeper.max_failover_lag accepts losing up to that many bytes)"),
		}},
		// Holding is re-decided, silently, at each failed heartbeat.
		{behind(), StandbyNotPromoting, standbyHolding, nil, nil},
	})
	c.SetPolicy(Policy{MaxLag: 0x5F})
	replay(t, c, []step{{behind(), StandbyNotPromoting, standbyHolding, nil, nil}})
	// A reload raised pg_keeper.max_failover_lag to the lag.
	c.SetPolicy(Policy{MaxLag: 0x60})
	replay(t, c, []step{
		{behind(), StandbyPromoting, standbyPromoting, []ActionKind{Promote}, []LogLine{
			warn("master lost: promoting this standby (5 failed heartbeats in a row)"),
		}},
		{actionOK(Promote, "pg_promote() took 9 ms"), MasterReady, masterReady, []ActionKind{RunAfterCommand},
			[]LogLine{info("promoted: this server is now the master (pg_promote() took 9 ms)")}},
	})
}

func TestScenarioStandbyNotPromotingPromotesOnACertainFailure(t *testing.T) {
	c := NewCore(StandbyMode, 2) // on_partner_timeout = keep_master
	replay(t, c, []step{
		{okProbe(), StandbyConnected, standbyConnected, []ActionKind{DropStaleSlots}, []LogLine{info("connected to master")}},
		{timedOut("t"), StandbyConnected, standbyConnected, nil, []LogLine{warn("heartbeat to master failed (1/2): timeout: t")}},
		{timedOut("t"), StandbyNotPromoting, standbyHolding, nil, []LogLine{
			warn("heartbeat to master failed (2/2): timeout: t"),
			warn(holdWhy + " (2 failed heartbeats in a row; timeout is no proof the master is down " +
				"(pg_keeper.on_partner_timeout = keep_master); if it is, promote by hand: SELECT pg_promote())"),
		}},
		{timedOut("t"), StandbyNotPromoting, standbyHolding, nil, nil},
		// The master's host answers again, its server does not: promote.
		{refused("r"), StandbyPromoting, standbyPromoting, []ActionKind{Promote}, []LogLine{
			warn("heartbeat to master failed (4/2): refused: r"),
			warn("master lost: promoting this standby (4 failed heartbeats in a row)"),
		}},
	})
}

func TestScenarioStandbyNotPromotingUnderFailoverPolicyChange(t *testing.T) {
	c := NewCore(StandbyMode, 2)
	replay(t, c, []step{
		{okProbe(), StandbyConnected, standbyConnected, []ActionKind{DropStaleSlots}, []LogLine{info("connected to master")}},
		{timedOut("t"), StandbyConnected, standbyConnected, nil, []LogLine{warn("heartbeat to master failed (1/2): timeout: t")}},
		{timedOut("t"), StandbyNotPromoting, standbyHolding, nil, []LogLine{
			warn("heartbeat to master failed (2/2): timeout: t"),
			warn(holdWhy + " (2 failed heartbeats in a row; " + riskStandbyTimeout + ")"),
		}},
	})
	c.SetPolicy(Policy{FailoverOnTimeout: true})
	replay(t, c, []step{
		{timedOut("t"), StandbyPromoting, standbyPromoting, []ActionKind{Promote}, []LogLine{
			warn("master lost: promoting this standby (3 failed heartbeats in a row)"),
		}},
	})
}

func TestScenarioStandbyNotPromotingLeavesWhenTheMasterShowsLife(t *testing.T) {
	hold := func(t *testing.T) *Core {
		c := reach(t, StandbyNotPromoting, 2)
		require.Equal(t, 2, c.Failures())
		return c
	}
	t.Run("heartbeat", func(t *testing.T) {
		replay(t, hold(t), []step{
			{okProbe(), StandbyConnected, standbyConnected, nil, []LogLine{
				info("heartbeat to master succeeded after 2 failed"),
				info("master answers again"),
			}},
			{refused(testReason), StandbyConnected, standbyConnected, nil, []LogLine{failLine("master", 1, 2)}},
			// The last heartbeat said synchronous: now it is safe.
			{refused(testReason), StandbyPromoting, standbyPromoting, []ActionKind{Promote}, []LogLine{
				failLine("master", 2, 2),
				warn("master lost: promoting this standby (2 failed heartbeats in a row)"),
			}},
		})
	})
	t.Run("replication", func(t *testing.T) {
		alive := failProbe(true)
		replay(t, hold(t), []step{
			{alive, StandbyHeartbeatLost, standbyHBLost, nil, []LogLine{
				warn("heartbeat to master failing but the master is alive: not promoting"),
			}},
			// Replication dies again: the last heartbeat still says asynchronous.
			{refused(testReason), StandbyNotPromoting, standbyHolding, nil, []LogLine{
				warn(holdWhy + " (4 failed heartbeats in a row; " + riskLSN("0/3000060", "unknown") + ")"),
			}},
		})
	})
	t.Run("answered", func(t *testing.T) {
		replay(t, hold(t), []step{
			{failWith(FailAuth, "password authentication failed", -1), StandbyHeartbeatLost, standbyHBLost, nil, []LogLine{
				warn("heartbeat to master failed (3/2): authentication: password authentication failed"),
				warn("heartbeat to master failing but the master is alive: not promoting"),
			}},
		})
	})
	t.Run("promoted by hand", func(t *testing.T) {
		replay(t, hold(t), []step{
			{recoveryEnded(), MasterReady, masterReady, nil, []LogLine{
				warn("server left recovery without pg_keeper: switching to master mode"),
			}},
		})
	})
}

func TestScenarioMasterKeepsSyncWhileTheStandbyMayTakeOver(t *testing.T) {
	c := NewCore(MasterMode, 2)
	c.SetPolicy(Policy{FailoverOnTimeout: true})
	replay(t, c, []step{
		{okProbe(), MasterConnected, masterConnected, nil, []LogLine{info("connected to standby")}},
		{timedOut("t"), MasterConnected, masterConnected, nil, []LogLine{warn("heartbeat to standby failed (1/2): timeout: t")}},
		{timedOut("t"), MasterKeepingSync, masterHolding, nil, []LogLine{
			warn("heartbeat to standby failed (2/2): timeout: t"),
			warn(masterHoldWhy + " (2 failed heartbeats in a row; timeout is no proof the standby is down, " +
				"and with pg_keeper.on_partner_timeout = failover it may be promoting itself)"),
		}},
		{timedOut("t"), MasterKeepingSync, masterHolding, nil, nil},
		{failWith(FailOther, "EOF", -1), MasterKeepingSync, masterHolding, nil, []LogLine{
			warn("heartbeat to standby failed (4/2): other: EOF"),
		}},
		// The standby's server is down for sure: it cannot take over.
		{refused("r"), MasterSwitching, masterSwitching, []ActionKind{SwitchAsync}, []LogLine{
			warn("heartbeat to standby failed (5/2): refused: r"),
			warn("standby lost: switching to asynchronous replication (5 failed heartbeats in a row)"),
		}},
		{actionOK(SwitchAsync, "done"), MasterAsync, masterAsync, nil, []LogLine{info(Why(MasterSwitching, ActionDone) + " (done)")}},
	})
}

func TestScenarioMasterKeepingSyncLeaves(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(c *Core) step
	}{
		{"heartbeat", func(c *Core) step {
			return step{okProbe(), MasterConnected, masterConnected, nil, []LogLine{
				info("heartbeat to standby succeeded after 2 failed"), info("standby answers again")}}
		}},
		{"caught up", func(c *Core) step {
			return step{caughtUpProbe(), MasterConnected, masterConnected, nil, []LogLine{
				info("heartbeat to standby succeeded after 2 failed"), info("standby answers again")}}
		}},
		{"replication", func(c *Core) step {
			return step{failProbe(true), MasterHeartbeatLost, masterHBLost, nil, []LogLine{
				failLine("standby", 3, 2),
				warn("heartbeat to standby failing but it is alive: keeping synchronous replication")}}
		}},
		{"policy changed to keep_master", func(c *Core) step {
			c.SetPolicy(Policy{})
			return step{timedOut("no answer"), MasterSwitching, masterSwitching, []ActionKind{SwitchAsync}, []LogLine{
				warn("standby lost: switching to asynchronous replication (3 failed heartbeats in a row)")}}
		}},
		{"unexpected", func(c *Core) step {
			return step{recoveryEnded(), MasterKeepingSync, masterHolding, nil, []LogLine{
				warn("ignored unexpected event recovery-ended in state master:keeping-sync")}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := reach(t, MasterKeepingSync, 2)
			replay(t, c, []step{tc.do(c)})
		})
	}
}

func TestScenarioLastGoodHeartbeatDecides(t *testing.T) {
	c := NewCore(StandbyMode, 2)
	replay(t, c, []step{
		{okWith(syncMaster), StandbyConnected, standbyConnected, []ActionKind{DropStaleSlots}, []LogLine{info("connected to master")}},
		// The master switched to asynchronous replication since.
		{okWith(asyncMaster), StandbyConnected, standbyConnected, nil, nil},
		{refused("x"), StandbyConnected, standbyConnected, nil, []LogLine{warn("heartbeat to master failed (1/2): refused: x")}},
		{failWith(FailRefused, "x", masterLSN), StandbyNotPromoting, standbyHolding, nil, []LogLine{
			warn("heartbeat to master failed (2/2): refused: x"),
			warn(holdWhy + " (2 failed heartbeats in a row; " + riskLSN("0/3000060", "0/3000060") + ")"),
		}},
		// Synchronous again.
		{okWith(syncMaster), StandbyConnected, standbyConnected, nil, []LogLine{
			info("heartbeat to master succeeded after 2 failed"),
			info("master answers again"),
		}},
		{refused("x"), StandbyConnected, standbyConnected, nil, []LogLine{warn("heartbeat to master failed (1/2): refused: x")}},
		{refused("x"), StandbyPromoting, standbyPromoting, []ActionKind{Promote}, []LogLine{
			warn("heartbeat to master failed (2/2): refused: x"),
			warn("master lost: promoting this standby (2 failed heartbeats in a row)"),
		}},
	})
}

func TestScenarioPromotionFailureThenUnsafe(t *testing.T) {
	// A failed promotion is retried at the next failed heartbeat, which
	// decides again: a timeout under keep_master no longer promotes.
	c := reach(t, StandbyPromoting, 2)
	replay(t, c, []step{
		{actionErr(Promote, "could not connect"), StandbyConnected, standbyConnected, nil, []LogLine{
			warn("promotion failed: retrying at the next failed heartbeat (could not connect)")}},
		{timedOut("t"), StandbyNotPromoting, standbyHolding, nil, []LogLine{
			warn("heartbeat to master failed (2/2): timeout: t"),
			warn(holdWhy + " (2 failed heartbeats in a row; " + riskStandbyTimeout + ")"),
		}},
	})
}
