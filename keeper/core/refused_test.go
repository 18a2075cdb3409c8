package core

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// A refused connection proves the partner's server down only while it is
// consistent with a dead server: one that dies drops its replication
// connection at once, while a firewall that starts rejecting new
// connections leaves the old one streaming until it times out. Once
// replication outlived two failed heartbeats of a run, a refusal is
// treated like a timeout (pg_keeper.on_partner_timeout decides).

// riskFirewallMaster is the risk text of a master under failover whose
// refused standby still replicated.
const riskFirewallMaster = "a refused connection while replication with it outlived the failed heartbeats " +
	"(a firewall rejecting, not a stopped server) is no proof the standby is down, and with " +
	"pg_keeper.on_partner_timeout = failover it may be promoting itself"

// aliveRefused is a refused heartbeat while replication still streams.
func aliveRefused() Input { return failProbe(true) }

// deadRefused is a refused heartbeat with replication gone too.
func deadRefused() Input { return failProbe(false) }

const standbyHoldWhy = "master lost, but promoting could lose acknowledged commits or make a second primary: not promoting"

func TestRefusedWhileReplicatingStandby(t *testing.T) {
	const th = 3
	promoting := func(n int) []LogLine {
		return []LogLine{failLine("master", n, th), warn(fmt.Sprintf("master lost: promoting this standby (%d failed heartbeats in a row)", n))}
	}
	for _, tc := range []struct {
		name     string
		failover bool
		events   []Input // after a good heartbeat from a synchronous master
		state    State
		actions  []ActionKind // of the last event
		logs     []LogLine    // of the last event
	}{
		{"refused with replication alive twice, then without: keep_master holds", false,
			[]Input{aliveRefused(), aliveRefused(), deadRefused()}, StandbyNotPromoting, nil,
			[]LogLine{failLine("master", 3, th), warn(standbyHoldWhy + " (3 failed heartbeats in a row; " + riskFirewall + ")")}},
		{"refused with replication alive twice, then without: failover promotes", true,
			[]Input{aliveRefused(), aliveRefused(), deadRefused()}, StandbyPromoting, []ActionKind{Promote}, promoting(3)},
		{"refused with replication dead from the first failure: promotes", false,
			[]Input{deadRefused(), deadRefused(), deadRefused()}, StandbyPromoting, []ActionKind{Promote}, promoting(3)},
		{"one sighting of replication alive, then dead: still promotes", false,
			[]Input{aliveRefused(), deadRefused(), deadRefused()}, StandbyPromoting, []ActionKind{Promote}, promoting(3)},
		{"one sighting late, then dead: still promotes", false,
			[]Input{deadRefused(), aliveRefused(), deadRefused()}, StandbyPromoting, []ActionKind{Promote}, promoting(3)},
		{"a good heartbeat starts a new run", false,
			[]Input{aliveRefused(), aliveRefused(), okProbe(), deadRefused(), deadRefused(), deadRefused()},
			StandbyPromoting, []ActionKind{Promote}, promoting(3)},
		{"alive through the count, then dead: keep_master holds", false,
			[]Input{aliveRefused(), aliveRefused(), aliveRefused(), deadRefused()}, StandbyNotPromoting, nil,
			[]LogLine{warn(standbyHoldWhy + " (4 failed heartbeats in a row; " + riskFirewall + ")")}},
		{"alive through the count, then dead: failover promotes", true,
			[]Input{aliveRefused(), aliveRefused(), aliveRefused(), deadRefused()}, StandbyPromoting, []ActionKind{Promote},
			[]LogLine{warn("master lost: heartbeat and replication both down: promoting this standby (4 failed heartbeats in a row)")}},
		// Only a refusal loses its proof: a server that says it is
		// stopping is stopping.
		{"alive twice, then starting or stopping: promotes", false,
			[]Input{aliveRefused(), aliveRefused(), failWith(FailStarting, "shutting down", -1)}, StandbyPromoting, []ActionKind{Promote},
			[]LogLine{warn("heartbeat to master failed (3/3): server starting or stopping: shutting down"),
				warn("master lost: promoting this standby (3 failed heartbeats in a row)")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCore(StandbyMode, th)
			c.SetPolicy(Policy{FailoverOnTimeout: tc.failover})
			c.Step(okProbe())
			var out Output
			for _, ev := range tc.events {
				out = c.Step(ev)
			}
			require.Equal(t, tc.state, c.State())
			require.Equal(t, tc.actions, out.Actions)
			require.Equal(t, tc.logs, out.Logs)
		})
	}
}

func TestRefusedWhileReplicatingMaster(t *testing.T) {
	const th = 3
	const switching = "standby lost: switching to asynchronous replication (3 failed heartbeats in a row)"
	const masterHold = "standby unreachable and perhaps taking over: keeping synchronous replication, commits wait"
	for _, tc := range []struct {
		name     string
		failover bool
		events   []Input
		state    State
		actions  []ActionKind
		last     LogLine
	}{
		{"alive twice, then refused: failover keeps synchronous replication", true,
			[]Input{aliveRefused(), aliveRefused(), deadRefused()}, MasterKeepingSync, nil,
			warn(masterHold + " (3 failed heartbeats in a row; " + riskFirewallMaster + ")")},
		{"alive twice, then refused: keep_master switches", false,
			[]Input{aliveRefused(), aliveRefused(), deadRefused()}, MasterSwitching, []ActionKind{SwitchAsync}, warn(switching)},
		{"dead from the first: failover switches", true,
			[]Input{deadRefused(), deadRefused(), deadRefused()}, MasterSwitching, []ActionKind{SwitchAsync}, warn(switching)},
		{"one sighting: failover switches", true,
			[]Input{aliveRefused(), deadRefused(), deadRefused()}, MasterSwitching, []ActionKind{SwitchAsync}, warn(switching)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := reach(t, MasterConnected, th)
			c.SetPolicy(Policy{FailoverOnTimeout: tc.failover})
			var out Output
			for _, ev := range tc.events {
				out = c.Step(ev)
			}
			require.Equal(t, tc.state, c.State())
			require.Equal(t, tc.actions, out.Actions)
			require.Equal(t, tc.last, out.Logs[len(out.Logs)-1])
		})
	}
}

// Core.certain: only a refusal loses its proof, from the second failed
// heartbeat of the run at which replication was seen alive.
func TestCoreCertain(t *testing.T) {
	for class := range NumFailureClasses {
		for alive := range 4 {
			c := NewCore(StandbyMode, 3)
			c.aliveWhileFailing = alive
			want := class.Certain() && !(class == FailRefused && alive >= 2)
			require.Equal(t, want, c.certain(ProbeResult{Class: class}), "%s, %d alive", class, alive)
		}
	}
}

// aliveWhileFailing counts the failed heartbeats of the current run at
// which replication was alive; a good heartbeat starts a new run.
func TestCoreCountsReplicationAliveWhileFailing(t *testing.T) {
	c := NewCore(StandbyMode, 10)
	for i, ev := range []Input{aliveRefused(), deadRefused(), aliveRefused(), failWith(FailTimeout, "t", -1)} {
		c.Step(ev)
		require.Equal(t, []int{1, 1, 2, 2}[i], c.aliveWhileFailing, "step %d", i)
	}
	c.Step(okProbe())
	require.Zero(t, c.aliveWhileFailing)
	c.Step(aliveRefused())
	require.Equal(t, 1, c.aliveWhileFailing)
}
