package keeper

import

// testReason is the detail of every failed heartbeat the core tests make.
(
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/stretchr/testify/require"
)

const testReason = "connection refused"

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// masterLSN is the master's WAL position at the good heartbeats the tests make.
const masterLSN = 0x3000060

// syncMaster is what a good heartbeat learns from a master in synchronous
// replication with this standby: losing it is safe to act on.
var syncMaster = core.PartnerFacts{
	Identity:    core.Identity{SystemID: 7300000000000000001, StartTime: t0.Add(-time.Hour)},
	SyncMode:    true,
	SyncStandby: true,
	LSN:         masterLSN,
}

// asyncMaster is a master that was not in synchronous replication with
// this standby at the last good heartbeat.
var asyncMaster = core.PartnerFacts{
	Identity: core.Identity{SystemID: 7300000000000000001, StartTime: t0.Add(-time.Hour)},
	LSN:      masterLSN,
}

// okProbe is a good heartbeat from a synchronous master. The core ignores
// the facts in master mode, so master tests use it too.
func okProbe() core.Input { return okWith(syncMaster) }

func okWith(f core.PartnerFacts) core.Input {
	return core.Input{Kind: core.ProbeInput, At: t0, Probe: core.ProbeResult{OK: true, Partner: f, LocalLSN: -1}}
}

// failProbe is a certain failure (refused), as Probe reports it.
func failProbe(alive bool) core.Input {
	return core.Input{Kind: core.ProbeInput, At: t0, Probe: core.ProbeResult{
		Class: core.FailRefused, Detail: testReason, ReplicationAlive: alive, LocalLSN: -1}}
}

// failWith is a failed heartbeat of class with the standby's WAL position.
func failWith(class core.FailureClass, detail string, localLSN int64) core.Input {
	return core.Input{Kind: core.ProbeInput, At: t0, Probe: core.ProbeResult{Class: class, Detail: detail, LocalLSN: localLSN}}
}

// supersededDetail is what checkPartner says of a partner promoted after
// this server.
const supersededDetail = "the partner is a primary promoted after this server " +
	"(its timeline is 3, this server's 2): this server is the old master"

// supersededProbe is the heartbeat of a master whose partner is a primary
// on a newer timeline, as Probe reports it.
func supersededProbe() core.Input { return failWith(core.FailSuperseded, supersededDetail, -1) }

// supersededLine is the failure line the core logs for supersededProbe.
func supersededLine(partner string, n, threshold int) core.LogLine {
	return core.LogLine{Level: core.Error, Msg: fmt.Sprintf("heartbeat to %s failed (%d/%d): superseded: %s", partner, n, threshold, supersededDetail)}
}

func actionOK(a core.ActionKind, detail string) core.Input {
	return core.Input{Kind: core.ActionInput, At: t0, Action: a, Detail: detail}
}

func actionErr(a core.ActionKind, err string) core.Input {
	return core.Input{Kind: core.ActionInput, At: t0, Action: a, Err: err}
}

// standbyFacts is what a master learns from its standby.
var standbyFacts = core.PartnerFacts{
	InRecovery: true,
	Identity:   core.Identity{SystemID: 7300000000000000001, StartTime: t0.Add(-time.Minute)},
	LSN:        -1,
}

// caughtUpProbe is a good heartbeat of a master whose standby streams and
// has caught up, as the local server says.
func caughtUpProbe() core.Input {
	return core.Input{Kind: core.ProbeInput, At: t0, Probe: core.ProbeResult{OK: true, Partner: standbyFacts, LocalLSN: -1,
		StreamingChecked: true, CaughtUp: true}}
}

func recoveryEnded() core.Input { return core.Input{Kind: core.RecoveryEndedInput, At: t0} }

// inFlightOf is the action a core in state s waits for.
func inFlightOf(s core.State) core.ActionKind {
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

// coreAt is a core in state s with failures failed heartbeats in a row,

// reach drives a new core into s through the events that lead there.
func reach(t *testing.T, s core.State, threshold int) *core.Core {
	t.Helper()
	c := core.NewCore(s.Mode(), threshold)
	failUntilThreshold := func(alive bool) {
		for c.Failures() < threshold {
			c.Step(failProbe(alive))
		}
	}
	switch s {
	case core.StandbyReady, core.MasterReady:
	case core.StandbyConnected, core.MasterConnected:
		c.Step(okProbe())
	case core.StandbyHeartbeatLost, core.MasterHeartbeatLost:
		c.Step(okProbe())
		failUntilThreshold(true)
	case core.StandbyPromoting, core.MasterSwitching:
		c.Step(okProbe())
		failUntilThreshold(false)
	case core.StandbyNotPromoting:
		c.Step(okWith(asyncMaster))
		failUntilThreshold(false)
	case core.MasterKeepingSync:
		c.SetPolicy(core.Policy{FailoverOnTimeout: true})
		c.Step(okProbe())
		for c.Failures() < threshold {
			c.Step(failWith(core.FailTimeout, "no answer", -1))
		}
	case core.MasterAsync:
		c.Step(okProbe())
		failUntilThreshold(false)
		c.Step(actionOK(core.SwitchAsync, "done"))
	case core.MasterRestoring:
		c.Step(okProbe())
		failUntilThreshold(false)
		c.Step(actionOK(core.SwitchAsync, "done"))
		c.Step(caughtUpProbe())
	case core.MasterFenced:
		c.Step(okProbe())
		c.Step(supersededProbe())
	case core.MasterUnconfirmed:
		c.Resume(core.FenceUnconfirmed, false)
	default:
		t.Fatalf("no way to reach %s", s)
	}
	require.Equal(t, s, c.State())
	require.Equal(t, inFlightOf(s), c.InFlight())
	return c
}

func warn(msg string) core.LogLine { return core.LogLine{Level: core.Warning, Msg: msg} }

func info(msg string) core.LogLine { return core.LogLine{Level: core.Info, Msg: msg} }

// The risk texts Core.risk appends to a PartnerLostUnsafe row's log line.
const (
	riskStandbyTimeout = "timeout is no proof the master is down (pg_keeper.on_partner_timeout = keep_master); " +
		"if it is, promote by hand: SELECT pg_promote()"
	riskMasterTimeout = "timeout is no proof the standby is down, and with pg_keeper.on_partner_timeout = failover " +
		"it may be promoting itself"
	riskNeverReached = "the master was not reached once since start"
	// riskFirewall: a refusal after replication outlived two failed
	// heartbeats is no proof the master is down.
	riskFirewall = "a refused connection while replication with it outlived the failed heartbeats " +
		"(a firewall rejecting, not a stopped server) is no proof the master is down " +
		"(pg_keeper.on_partner_timeout = keep_master); if it is, promote by hand: SELECT pg_promote()"
)

// riskLSN is the risk text of a standby whose master was not synchronous.
func riskLSN(master, local string) string {
	return "at the last good heartbeat the master was not in synchronous replication with this standby, " +
		"so acknowledged commits may be missing here (master was at " + master + ", this standby has " + local + "); " +
		"pg_keeper.max_failover_lag accepts losing up to that many bytes"
}

// step is one event of a scenario and everything it must produce.
type step struct {
	ev      core.Input
	state   core.State
	title   string
	actions []core.ActionKind
	logs    []core.LogLine
}

func refused(detail string) core.Input { return failWith(core.FailRefused, detail, -1) }

// countPrefix counts the lines whose message starts with prefix.
func countPrefix(logs []core.LogLine, prefix string) int {
	n := 0
	for _, l := range logs {
		if strings.HasPrefix(l.Msg, prefix) {
			n++
		}
	}
	return n
}
