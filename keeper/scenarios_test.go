package keeper

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// step is one event of a scenario and everything it must produce.
type step struct {
	ev      Event
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

func refused(detail string) Event {
	return Event{Kind: ProbeEvent, At: t0, Probe: ProbeResult{Class: FailRefused, Detail: detail}}
}

func timedOut(detail string) Event {
	return Event{Kind: ProbeEvent, At: t0, Probe: ProbeResult{Class: FailTimeout, Detail: detail}}
}

const (
	standbyConnected = "(standby mode:connected)"
	standbyReady     = "(standby mode:ready)"
	standbyPromoting = "(standby mode:promoting)"
	standbyHBLost    = "(standby mode:heartbeat-lost)"
	masterReady      = "(master mode:ready)"
	masterConnected  = "(master mode:connected)"
	masterSwitching  = "(master mode:switching)"
	masterAsync      = "(master mode:async)"
	masterRestoring  = "(master mode:restoring)"
)

func TestScenarioStandbyPromotesAfterThreshold(t *testing.T) {
	c := NewCore(StandbyMode, 4)
	require.Equal(t, standbyReady, c.State().Title())
	replay(t, c, []step{
		{okProbe(), StandbyConnected, standbyConnected, nil, []LogLine{info("connected to master")}},
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
		{okProbe(), StandbyConnected, standbyConnected, nil, []LogLine{info("connected to master")}},
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
			warn("master unreachable and not reached once since start: not promoting (2 failed heartbeats in a row)"),
		}},
		// Past the threshold with the same reason: nothing is logged again.
		{refused("x"), StandbyReady, standbyReady, nil, nil},
		{refused("x"), StandbyReady, standbyReady, nil, nil},
		// A new reason is logged once.
		{timedOut("y"), StandbyReady, standbyReady, nil, []LogLine{warn("heartbeat to master failed (5/2): timeout: y")}},
		{timedOut("y"), StandbyReady, standbyReady, nil, nil},
		// The master shows up: from now on, losing it promotes.
		{okProbe(), StandbyConnected, standbyConnected, nil, []LogLine{
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
	alive := func() Event { e := refused("x"); e.Probe.ReplicationAlive = true; return e }
	replay(t, c, []step{
		{okProbe(), StandbyConnected, standbyConnected, nil, []LogLine{info("connected to master")}},
		{refused("x"), StandbyConnected, standbyConnected, nil, []LogLine{warn("heartbeat to master failed (1/3): refused: x")}},
		{refused("x"), StandbyConnected, standbyConnected, nil, []LogLine{warn("heartbeat to master failed (2/3): refused: x")}},
		{alive(), StandbyHeartbeatLost, standbyHBLost, nil, []LogLine{
			warn("heartbeat to master failed (3/3): refused: x"),
			warn("heartbeat to master lost but replication from it is alive: not promoting"),
		}},
		{alive(), StandbyHeartbeatLost, standbyHBLost, nil, nil},
		{alive(), StandbyHeartbeatLost, standbyHBLost, nil, nil},
		{refused("x"), StandbyPromoting, standbyPromoting, []ActionKind{Promote}, []LogLine{
			warn("master lost: heartbeat and replication both down: promoting this standby (6 failed heartbeats in a row)"),
		}},
	})
}

func TestScenarioHeartbeatRestoredFromHeartbeatLost(t *testing.T) {
	c := NewCore(MasterMode, 2)
	alive := func() Event { e := refused("x"); e.Probe.ReplicationAlive = true; return e }
	replay(t, c, []step{
		{okProbe(), MasterConnected, masterConnected, nil, []LogLine{info("connected to standby")}},
		{alive(), MasterConnected, masterConnected, nil, []LogLine{warn("heartbeat to standby failed (1/2): refused: x")}},
		{alive(), MasterHeartbeatLost, "(master mode:heartbeat-lost)", nil, []LogLine{
			warn("heartbeat to standby failed (2/2): refused: x"),
			warn("heartbeat to standby lost but it still streams: keeping synchronous replication"),
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
	for _, s := range []State{StandbyConnected, StandbyPromoting, MasterReady, MasterSwitching, MasterAsync, MasterRestoring} {
		t.Run(s.String(), func(t *testing.T) {
			c := reach(t, s, 2)
			failures, inFlight, last := c.Failures(), c.inFlight, c.lastTrigger

			out := c.Step(actionOK(RunAfterCommand, "exit status 0 after 3 ms"))
			require.Equal(t, Output{Logs: []LogLine{info("after_command finished: exit status 0 after 3 ms")}}, out)

			out = c.Step(actionErr(RunAfterCommand, "exit status 1 after 4 ms"))
			require.Equal(t, Output{Logs: []LogLine{warn("after_command failed: exit status 1 after 4 ms")}}, out)

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
		{okProbe(), StandbyConnected, standbyConnected, nil, []LogLine{info("connected to master")}},
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
