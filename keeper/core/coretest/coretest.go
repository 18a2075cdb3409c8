// Package coretest makes the inputs and expectations that tests of the
// core's users (the runner, the executor) feed and check: heartbeats of
// each kind, action results, a core driven into a given state, and the
// texts the core logs. The core's own tests are internal to its package
// and cannot import this one (Go forbids the cycle); they have theirs.
package coretest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/stretchr/testify/require"
)

// Reason is the detail of every failed heartbeat made here.
const Reason = "connection refused"

// T0 is the time of every input made here.
var T0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// MasterLSN is the master's WAL position at the good heartbeats made here.
const MasterLSN = 0x3000060

// SyncMaster is what a good heartbeat learns from a master in synchronous
// replication with this standby: losing it is safe to act on.
var SyncMaster = core.PartnerFacts{
	Identity:    core.Identity{SystemID: 7300000000000000001, StartTime: T0.Add(-time.Hour)},
	SyncMode:    true,
	SyncStandby: true,
	LSN:         MasterLSN,
}

// AsyncMaster is a master that was not in synchronous replication with
// this standby at the last good heartbeat.
var AsyncMaster = core.PartnerFacts{
	Identity: core.Identity{SystemID: 7300000000000000001, StartTime: T0.Add(-time.Hour)},
	LSN:      MasterLSN,
}

// StandbyFacts is what a master learns from its standby.
var StandbyFacts = core.PartnerFacts{
	InRecovery: true,
	Identity:   core.Identity{SystemID: 7300000000000000001, StartTime: T0.Add(-time.Minute)},
	LSN:        -1,
}

// OKProbe is a good heartbeat from a synchronous master. The core ignores
// the facts in master mode, so master tests use it too.
func OKProbe() core.Input { return OKWith(SyncMaster) }

func OKWith(f core.PartnerFacts) core.Input {
	return core.Input{Kind: core.ProbeInput, At: T0, Probe: core.ProbeResult{OK: true, Partner: f, LocalLSN: -1}}
}

// FailProbe is a certain failure (refused), as the probe reports it.
func FailProbe(alive bool) core.Input {
	return core.Input{Kind: core.ProbeInput, At: T0, Probe: core.ProbeResult{
		Class: core.FailRefused, Detail: Reason, ReplicationAlive: alive, LocalLSN: -1}}
}

// FailWith is a failed heartbeat of class with the standby's WAL position.
func FailWith(class core.FailureClass, detail string, localLSN int64) core.Input {
	return core.Input{Kind: core.ProbeInput, At: T0, Probe: core.ProbeResult{Class: class, Detail: detail, LocalLSN: localLSN}}
}

// Refused is a refused heartbeat with detail.
func Refused(detail string) core.Input { return FailWith(core.FailRefused, detail, -1) }

// SupersededDetail is what the probe says of a partner promoted after this
// server.
const SupersededDetail = "the partner is a primary promoted after this server " +
	"(its timeline is 3, this server's 2): this server is the old master"

// SupersededProbe is the heartbeat of a master whose partner is a primary
// on a newer timeline, as the probe reports it.
func SupersededProbe() core.Input { return FailWith(core.FailSuperseded, SupersededDetail, -1) }

// SupersededLine is the failure line the core logs for SupersededProbe.
func SupersededLine(partner string, n, threshold int) core.LogLine {
	return core.LogLine{Level: core.Error, Msg: fmt.Sprintf("heartbeat to %s failed (%d/%d): superseded: %s", partner, n, threshold, SupersededDetail)}
}

// CaughtUpProbe is a good heartbeat of a master whose standby streams and
// has caught up, as the local server says.
func CaughtUpProbe() core.Input {
	return core.Input{Kind: core.ProbeInput, At: T0, Probe: core.ProbeResult{OK: true, Partner: StandbyFacts, LocalLSN: -1,
		StreamingChecked: true, CaughtUp: true}}
}

func ActionOK(a core.ActionKind, detail string) core.Input {
	return core.Input{Kind: core.ActionInput, At: T0, Action: a, Detail: detail}
}

func ActionErr(a core.ActionKind, err string) core.Input {
	return core.Input{Kind: core.ActionInput, At: T0, Action: a, Err: err}
}

func RecoveryEnded() core.Input { return core.Input{Kind: core.RecoveryEndedInput, At: T0} }

// InFlightOf is the action a core in s waits for, for the states Reach
// can drive a core into.
func InFlightOf(s core.State) core.ActionKind {
	switch s {
	case core.StandbyPromoting:
		return core.Promote
	case core.MasterSwitching:
		return core.SwitchAsync
	case core.MasterRestoring:
		return core.RestoreSync
	}
	return core.NoAction
}

// Reach drives a new core into s through the inputs that lead there.
func Reach(t *testing.T, s core.State, threshold int) *core.Core {
	t.Helper()
	c := core.NewCore(s.Mode(), threshold)
	failUntilThreshold := func(alive bool) {
		for c.Failures() < threshold {
			c.Step(FailProbe(alive))
		}
	}
	switch s {
	case core.StandbyReady, core.MasterReady:
	case core.StandbyConnected, core.MasterConnected:
		c.Step(OKProbe())
	case core.StandbyHeartbeatLost, core.MasterHeartbeatLost:
		c.Step(OKProbe())
		failUntilThreshold(true)
	case core.StandbyPromoting, core.MasterSwitching:
		c.Step(OKProbe())
		failUntilThreshold(false)
	case core.StandbyNotPromoting:
		c.Step(OKWith(AsyncMaster))
		failUntilThreshold(false)
	case core.MasterKeepingSync:
		c.SetPolicy(core.Policy{FailoverOnTimeout: true})
		c.Step(OKProbe())
		for c.Failures() < threshold {
			c.Step(FailWith(core.FailTimeout, "no answer", -1))
		}
	case core.MasterAsync:
		c.Step(OKProbe())
		failUntilThreshold(false)
		c.Step(ActionOK(core.SwitchAsync, "done"))
	case core.MasterRestoring:
		c.Step(OKProbe())
		failUntilThreshold(false)
		c.Step(ActionOK(core.SwitchAsync, "done"))
		c.Step(CaughtUpProbe())
	case core.MasterFenced:
		c.Step(OKProbe())
		c.Step(SupersededProbe())
	case core.MasterUnconfirmed:
		c.Resume(core.FenceUnconfirmed, false)
	default:
		t.Fatalf("no way to reach %s", s)
	}
	require.Equal(t, s, c.State())
	require.Equal(t, InFlightOf(s), c.InFlight())
	return c
}

func Warn(msg string) core.LogLine { return core.LogLine{Level: core.Warning, Msg: msg} }

func Info(msg string) core.LogLine { return core.LogLine{Level: core.Info, Msg: msg} }

// The risk texts the core appends to a partner-lost-unsafe row's log line.
const (
	RiskStandbyTimeout = "timeout is no proof the master is down (pg_keeper.on_partner_timeout = keep_master); " +
		"if it is, promote by hand: SELECT pg_promote()"
	RiskMasterTimeout = "timeout is no proof the standby is down, and with pg_keeper.on_partner_timeout = failover " +
		"it may be promoting itself"
	RiskNeverReached = "the master was not reached once since start"
	// RiskFirewall: a refusal after replication outlived two failed
	// heartbeats is no proof the master is down.
	RiskFirewall = "a refused connection while replication with it outlived the failed heartbeats " +
		"(a firewall rejecting, not a stopped server) is no proof the master is down " +
		"(pg_keeper.on_partner_timeout = keep_master); if it is, promote by hand: SELECT pg_promote()"
)

// RiskLSN is the risk text of a standby whose master was not synchronous.
func RiskLSN(master, local string) string {
	return "at the last good heartbeat the master was not in synchronous replication with this standby, " +
		"so acknowledged commits may be missing here (master was at " + master + ", this standby has " + local + "); " +
		"pg_keeper.max_failover_lag accepts losing up to that many bytes"
}

// CountPrefix counts the lines whose message starts with prefix.
func CountPrefix(logs []core.LogLine, prefix string) int {
	n := 0
	for _, l := range logs {
		if strings.HasPrefix(l.Msg, prefix) {
			n++
		}
	}
	return n
}
