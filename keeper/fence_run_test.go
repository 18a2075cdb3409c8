package keeper

import (
	"errors"
	"fmt"
	ct "github.com/pg-keeper/pg_keeper/keeper/core/coretest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/probe"

	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/publish"
	"github.com/stretchr/testify/require"
)

// The runner's side of fencing: when it opens the fence for client
// connections, when it fences the server, and what it logs.

func logCount(h *fakeHost) int {
	logs, _ := h.snapshot()
	return len(logs)
}

func logsSince(h *fakeHost, n int) []core.LogLine {
	logs, _ := h.snapshot()
	return logs[n:]
}

// requireFencedWhileHandling checks that SetFence call i came while the
// runner handled the event whose log lines start at index n.
func requireFencedWhileHandling(t *testing.T, h *fakeHost, i, n int) {
	t.Helper()
	end := logCount(h)
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Greater(t, len(h.fenceAt), i)
	require.GreaterOrEqual(t, h.fenceAt[i], n)
	require.LessOrEqual(t, h.fenceAt[i], end)
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// aliveFailure is a failed heartbeat of class while replication still
// streams: the core never acts on it, so no action goroutine races the test.
func aliveFailure(class core.FailureClass) core.Input {
	ev := ct.FailWith(class, "d", -1)
	ev.Probe.ReplicationAlive = true
	return ev
}

// superseded is the superseded failure line as the runner logs it.
func supersededRunLine(n, threshold int) core.LogLine {
	l := ct.SupersededLine("standby", n, threshold)
	l.Msg = "pg_keeper: " + l.Msg
	return l
}

// rejoinHint is the line fence logs after fencing the server.
func rejoinHint(dataDir, partnerDisplay string) core.LogLine {
	return core.LogLine{Level: core.Error, Msg: "pg_keeper: to rejoin as a standby of the new primary: pg_rewind --target-pgdata=" + dataDir +
		" --source-server=\"" + partnerDisplay + "\" (or a new pg_basebackup), then touch " + dataDir +
		"/standby.signal, set primary_conninfo to reach the new primary, and start this server"}
}

func TestRunnerStandbyOpensTheFenceAtStart(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	h.inRecovery = true
	r := newTestRunner(t, h)
	require.Equal(t, core.FenceOpen, r.core.Fence(), "a standby holds nothing")
	require.Nil(t, h.fenceCalls(), "the loop sets the fence")
	r.applyFence() // the first turn of the loop
	require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())
	require.Equal(t, []int{1}, h.fenceAt, "opened at the first turn, right after the start line")
	require.Equal(t, core.FenceOpen, r.fence.held)

	// Nothing a standby sees, nor its promotion, touches the fence again.
	deliver(r, ct.OKProbe(), aliveFailure(core.FailRefused), aliveFailure(core.FailRefused), aliveFailure(core.FailRefused), ct.RecoveryEnded())
	require.Equal(t, core.MasterReady, r.core.State())
	deliver(r, ct.OKWith(ct.StandbyFacts), aliveFailure(core.FailTimeout), aliveFailure(core.FailTimeout), aliveFailure(core.FailTimeout))
	require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Zero(t, h.timelines, "no heartbeat was started")
}

func TestRunnerMasterHoldsTheFenceUntilAGoodHeartbeat(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	r := newTestRunner(t, h)
	require.Nil(t, h.fenceCalls(), "master mode starts with the fence unconfirmed")
	require.NotEqual(t, core.FenceOpen, r.fence.held)
	require.Equal(t, core.MasterUnconfirmed, r.core.State())

	deliver(r, aliveFailure(core.FailRefused))
	require.Nil(t, h.fenceCalls(), "one failure is not enough")
	n := logCount(h)
	deliver(r, ct.OKWith(ct.StandbyFacts))
	require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())
	require.Equal(t, []core.LogLine{ct.Info("pg_keeper: heartbeat to standby succeeded after 1 failed"),
		ct.Info("pg_keeper: " + core.Why(core.MasterUnconfirmed, core.Confirmed) + " (the partner answered as a standby)")}, logsSince(h, n))
	requireFencedWhileHandling(t, h, 0, n)
	require.Equal(t, core.FenceOpen, r.fence.held)
	require.Equal(t, core.MasterReady, r.core.State())

	// Open stays open: no more calls.
	deliver(r, ct.OKWith(ct.StandbyFacts), aliveFailure(core.FailRefused), aliveFailure(core.FailRefused), aliveFailure(core.FailRefused),
		ct.OKWith(ct.StandbyFacts))
	require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())
}

// failingClasses are the classes that say nothing of the partner's role:
// superseded fences, and not streaming (a standby's answer) and older
// primary confirm this master (see TestRunnerNotStreamingOpensTheFence,
// TestRunnerOlderPrimaryOpensTheFence).
func failingClasses() []core.FailureClass {
	var cs []core.FailureClass
	for f := range core.NumFailureClasses {
		if f != core.FailSuperseded && f != core.FailNotStreaming && f != core.FailOlderPrimary {
			cs = append(cs, f)
		}
	}
	return cs
}

// unconfirmedLine is what an unconfirmed master logs when its partner is
// lost (once the count is reached) or failing but replicating.
func unconfirmedLine(extra string) core.LogLine {
	if extra != "" {
		extra = " (" + extra + ")"
	}
	return ct.Warn("pg_keeper: " + core.Why(core.MasterUnconfirmed, core.PartnerLost) + extra)
}

// TestRunnerMasterKeepsTheFenceShutPastTheCount: heartbeats that keep
// failing never let clients through, however many: the partner may have
// been promoted meanwhile. (Once, the count of failures opened the fence.)
// Only the partner's answer as a standby does.
func TestRunnerMasterKeepsTheFenceShutPastTheCount(t *testing.T) {
	fakepg.CleanEnv(t)
	for _, class := range failingClasses() {
		raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
		raw.KeepalivesCount = 3
		h := newFakeHost(raw)
		r := newTestRunner(t, h)
		deliver(r, aliveFailure(class), aliveFailure(class))
		require.Equal(t, 2, r.core.Failures(), class.String())
		require.Nil(t, h.fenceCalls(), "%s: not before the count", class)
		n := logCount(h)
		deliver(r, aliveFailure(class), aliveFailure(class))
		require.Nil(t, h.fenceCalls(), "%s: nor after it", class)
		require.NotEqual(t, core.FenceOpen, r.fence.held, class.String())
		require.Equal(t, core.MasterUnconfirmed, r.core.State(), class.String())
		require.Contains(t, logsSince(h, n), unconfirmedLine(""), class.String())
		for range 20 {
			deliver(r, aliveFailure(class))
		}
		require.Nil(t, h.fenceCalls(), "%s: nor ever", class)
		require.Equal(t, core.MasterUnconfirmed, r.core.State(), class.String())
		deliver(r, aliveFailure(class), ct.OKWith(ct.StandbyFacts))
		require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls(), class.String())
		require.Equal(t, core.MasterReady, r.core.State(), class.String())
	}
}

func TestRunnerMasterKeepsTheFenceShutAtTheCount(t *testing.T) {
	fakepg.CleanEnv(t)
	for _, class := range failingClasses() {
		raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
		raw.KeepalivesCount = 3
		h := newFakeHost(raw)
		r := newTestRunner(t, h)
		deliver(r, aliveFailure(class), aliveFailure(class))
		require.Nil(t, h.fenceCalls(), "%s: not before the count", class)
		n := logCount(h)
		deliver(r, aliveFailure(class))
		require.Equal(t, 3, r.core.Failures(), class.String())
		require.Nil(t, h.fenceCalls(), "%s: not at the count", class)
		logs := logsSince(h, n)
		require.Len(t, logs, 2, class.String())
		require.Equal(t, unconfirmedLine(""), logs[1], class.String())
		require.Equal(t, core.MasterUnconfirmed, r.core.State(), class.String())
	}
}

// TestRunnerMasterLostPartnerKeepsTheFenceShut: a partner lost for good
// (replication dead too), whatever the policy, confirms nothing either.
func TestRunnerMasterLostPartnerKeepsTheFenceShut(t *testing.T) {
	fakepg.CleanEnv(t)
	for _, failover := range []bool{false, true} {
		for _, class := range []core.FailureClass{core.FailRefused, core.FailTimeout, core.FailStarting, core.FailOther} {
			name := fmt.Sprintf("%s, failover %v", class, failover)
			raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
			raw.FailoverOnTimeout = failover
			h := newFakeHost(raw)
			r := newTestRunner(t, h)
			for range 10 {
				deliver(r, ct.FailWith(class, "d", -1))
			}
			require.Nil(t, h.fenceCalls(), name)
			require.Equal(t, core.MasterUnconfirmed, r.core.State(), name)
			require.Equal(t, core.NoAction, r.core.InFlight(), "%s: no switch to asynchronous replication", name)
			_, titles := h.snapshot()
			require.Equal(t, []string{"(master mode:unconfirmed)"}, titles, name)
		}
	}
}

// A partner that is a primary on an older timeline is an old master that
// came back: it did not replace this server, which is confirmed.
func TestRunnerOlderPrimaryOpensTheFence(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	r := newTestRunner(t, h)
	n := logCount(h)
	deliver(r, ct.FailWith(core.FailOlderPrimary, "older", -1))
	require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())
	require.Equal(t, core.MasterReady, r.core.State())
	require.Equal(t, []core.LogLine{
		ct.Warn("pg_keeper: heartbeat to standby failed (1/2): older primary: older"),
		ct.Info("pg_keeper: " + core.Why(core.MasterUnconfirmed, core.Confirmed) + " (the partner is a primary on an older timeline)"),
	}, logsSince(h, n))
	requireFencedWhileHandling(t, h, 0, n)
}

// masterAloneLocal is a local server for a master whose standby is down:
// replication is dead, and the switch to asynchronous replication finds
// synchronous_standby_names empty.
func masterAloneLocal(t *testing.T) *fakepg.Server {
	local := fakepg.Start(t, fakepg.Col(fakepg.OIDText, "")) // SHOW synchronous_standby_names
	local.Set(func(s *fakepg.Server) {
		s.Answers = map[string][]fakepg.Column{fakepg.SimpleSQL(probe.ReplicationAliveSQL[core.MasterMode], ""): {fakepg.Col(fakepg.OIDBool, "f"), fakepg.Col(fakepg.OIDInt8, "-1"), fakepg.Col(fakepg.OIDBool, "f")}}
	})
	return local
}

// aliveQueries counts the ReplicationAlive queries a fake local server got.
func aliveQueries(local *fakepg.Server) int {
	n := 0
	for _, q := range local.Received() {
		if q == fakepg.SimpleSQL(probe.ReplicationAliveSQL[core.MasterMode], "") {
			n++
		}
	}
	return n
}

// TestRunMasterStartedAloneKeepsTheFenceShut runs a master whose standby
// is down, refusing connections or never answering: however many
// heartbeats fail, clients are never let through, and nothing is switched.
// Then an operator confirms this server with ConfirmFile: the fence opens,
// the file is consumed, and the lost standby is dealt with as usual.
func TestRunMasterStartedAloneKeepsTheFenceShut(t *testing.T) {
	fakepg.CleanEnv(t)
	for _, tc := range []struct {
		name    string
		port    func(t *testing.T) int
		failure string // the start of the failure's text
	}{
		{"refused", fakepg.ClosedPort, "refused: "},
		{"timeout", fakepg.Silent, "timeout: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			local := masterAloneLocal(t)
			partnerPort := tc.port(t)
			raw := runRaw(t, partnerPort, local.Port)
			h := newFakeHost(raw)
			h.timeline = 1
			done := startRun(t, h)
			// Many heartbeats, each failed (replication is checked at each).
			waitFor(t, "ten failed heartbeats", func() bool { return aliveQueries(local) >= 10 })
			require.Nil(t, h.fenceCalls(), "never opened by failed heartbeats")
			logs, titles := h.snapshot()
			require.Equal(t, []string{"(master mode:unconfirmed)"}, titles)
			require.True(t, strings.HasPrefix(logs[1].Msg, "pg_keeper: heartbeat to standby failed (1/2): "+tc.failure), logs[1].Msg)
			require.True(t, strings.HasPrefix(logs[2].Msg, "pg_keeper: heartbeat to standby failed (2/2): "+tc.failure), logs[2].Msg)
			require.Equal(t, unconfirmedLine("2 failed heartbeats in a row"), logs[3], formatLogs(logs))
			for _, l := range logs[4:] {
				require.NotContains(t, l.Msg, "switching", "nothing is switched")
			}
			for _, q := range local.Received() {
				require.Equal(t, fakepg.SimpleSQL(probe.ReplicationAliveSQL[core.MasterMode], ""), q, "only replication is checked")
			}

			// The operator confirms this server.
			confirm := filepath.Join(raw.DataDir, core.ConfirmFile)
			require.NoError(t, os.WriteFile(confirm, nil, 0o600))
			waitFor(t, "the fence", func() bool { return len(h.fenceCalls()) > 0 })
			i := waitForLog(t, h, hasPrefix("pg_keeper: "+core.Why(core.MasterReady, core.PartnerLost)))
			waitForLog(t, h, hasPrefix("pg_keeper: replication is now asynchronous"))
			require.Equal(t, 0, stopAndWait(t, h, done))
			_, err := os.Stat(confirm)
			require.True(t, os.IsNotExist(err), "the confirmation is consumed: %v", err)

			logs, titles = h.snapshot()
			c := slicesIndex(logs, ct.Info("pg_keeper: "+core.Why(core.MasterUnconfirmed, core.Confirmed)+" (confirmed by the operator ("+confirm+
				"), without an answer from the partner)"))
			require.Positive(t, c, formatLogs(logs))
			require.Less(t, c, i)
			require.Equal(t, ct.Info("pg_keeper: "+core.Why(core.MasterSwitching, core.ActionDone)+" (synchronous_standby_names was already empty)"),
				logs[i+1], formatLogs(logs))
			require.Equal(t, []string{"(master mode:unconfirmed)", "(master mode:ready)", "(master mode:switching)",
				"(master mode:async)"}, titles)
			require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())
			h.mu.Lock()
			defer h.mu.Unlock()
			require.Equal(t, []int{c + 1}, h.fenceAt, "opened once the confirmation was logged")
			require.Nil(t, h.strayCalls)
			require.Positive(t, h.timelines, "a master asks its timeline before each heartbeat")
		})
	}
}

// slicesIndex is the index of the first line equal to l, -1 if none.
func slicesIndex(logs []core.LogLine, l core.LogLine) int {
	for i := range logs {
		if logs[i] == l {
			return i
		}
	}
	return -1
}

// TestRunMasterWithFailingSwitchOpensTheFence: a master confirmed by its
// operator from the start whose switch to asynchronous replication fails
// (here: the local server is down), which sets the core's failures back to
// keepalives_count-1 for the retry: the fence is opened once.
func TestRunMasterWithFailingSwitchOpensTheFence(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	// Created before the start, consumed at the first tick.
	require.NoError(t, os.WriteFile(filepath.Join(raw.DataDir, core.ConfirmFile), nil, 0o600))
	h := newFakeHost(raw)
	done := startRun(t, h)
	// Three rounds of two failed heartbeats and a failed switch: the count
	// was reached three times.
	waitFor(t, "three failed switches", func() bool {
		n := 0
		for _, l := range logsSince(h, 0) {
			if strings.HasPrefix(l.Msg, "pg_keeper: "+core.Why(core.MasterSwitching, core.ActionFailed)) {
				n++
			}
		}
		return n >= 3
	})
	require.Equal(t, 0, stopAndWait(t, h, done))
	require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())
	_, err := os.Stat(filepath.Join(raw.DataDir, core.ConfirmFile))
	require.True(t, os.IsNotExist(err), "consumed: %v", err)
}

// A partner_conninfo that is set but unusable is no reason to let clients
// through: the partner may still be there. Only the operator confirms.
func TestRunnerMasterWithUnusablePartnerKeepsTheFenceShut(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.PartnerConninfo = "port=notaport"
	h := newFakeHost(raw)
	r := newTestRunner(t, h)
	require.False(t, r.settings.Partner.Usable())
	require.Nil(t, h.fenceCalls())
	turn(r, time.Now())
	require.False(t, r.core.View().Probing, "no heartbeat without a partner")
	turn(r, time.Now().Add(time.Hour))
	require.False(t, r.core.View().Probing, "not even much later")
	require.Nil(t, h.fenceCalls(), "not opened")
	require.Equal(t, core.MasterUnconfirmed, r.core.State())

	require.NoError(t, os.WriteFile(filepath.Join(raw.DataDir, core.ConfirmFile), nil, 0o600))
	turn(r, time.Now())
	require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())
	require.Equal(t, core.MasterReady, r.core.State())
	turn(r, time.Now())
	require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls(), "opened once")
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Zero(t, h.timelines)
}

// Without a partner_conninfo there is no partner to wait for: the first
// tick confirms this server and opens the fence.
func TestRunnerMasterWithoutPartnerOpensTheFence(t *testing.T) {
	fakepg.CleanEnv(t)
	for _, conninfo := range []string{"", "  "} {
		raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
		raw.PartnerConninfo = conninfo
		h := newFakeHost(raw)
		r := newTestRunner(t, h)
		require.Nil(t, h.fenceCalls())
		require.Equal(t, core.MasterUnconfirmed, r.core.State())
		n := logCount(h)
		turn(r, time.Now())
		require.Equal(t, []core.LogLine{ct.Info("pg_keeper: " + core.Why(core.MasterUnconfirmed, core.Confirmed) +
			" (pg_keeper.partner_conninfo is not set: no partner to check, the keeper is inactive)")}, logsSince(h, n))
		require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())
		requireFencedWhileHandling(t, h, 0, n)
		require.Equal(t, core.MasterReady, r.core.State())
		require.False(t, r.core.View().Probing, "no partner, no heartbeat")
		turn(r, time.Now())
		require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls(), "opened once")
		require.Equal(t, []core.LogLine{ct.Info("pg_keeper: " + core.Why(core.MasterUnconfirmed, core.Confirmed) +
			" (pg_keeper.partner_conninfo is not set: no partner to check, the keeper is inactive)")}, logsSince(h, n))
	}
}

// aSecondLater lets the runner's next syncFence try again a fence that
// could not be set, as it does a second after the failure.
func aSecondLater(r *runner) { r.fence.failedAt = r.fence.failedAt.Add(-time.Second) }

// A fence that cannot be set is said once, tried again at most once a
// second (the loop turns at least once a second), and set once it works.
func TestRunnerFenceOpenErrorIsLoggedAndRetried(t *testing.T) {
	fakepg.CleanEnv(t)
	const failed = "pg_keeper: could not set the fence to open: no shared memory"
	t.Run("standby", func(t *testing.T) {
		h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
		h.inRecovery = true
		h.fenceErr = func(core.Fence) error { return errors.New("no shared memory") }
		r := newTestRunner(t, h)
		logs, _ := h.snapshot()
		require.Len(t, logs, 1)
		require.True(t, hasPrefix("pg_keeper: started in standby mode: ")(logs[0]), logs[0].Msg)
		r.applyFence() // the first turn of the loop
		require.Equal(t, []core.LogLine{{Level: core.Error, Msg: failed}}, logsSince(h, 1))
		require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())
		require.NotEqual(t, core.FenceOpen, r.fence.held)

		// Turns within the second do not try again.
		n := logCount(h)
		deliver(r, ct.OKProbe())
		require.Equal(t, []core.LogLine{ct.Info("pg_keeper: connected to master")}, logsSince(h, n))
		require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls(), "not again within a second")

		// A second later it is tried again, and failing again is not said again.
		aSecondLater(r)
		n = logCount(h)
		deliver(r, ct.OKProbe(), ct.OKProbe())
		require.Empty(t, logsSince(h, n))
		require.Equal(t, []core.Fence{core.FenceOpen, core.FenceOpen}, h.fenceCalls(), "once in the second")
		require.NotEqual(t, core.FenceOpen, r.fence.held)

		// Until it works.
		h.set(func(h *fakeHost) { h.fenceErr = nil })
		aSecondLater(r)
		n = logCount(h)
		deliver(r, ct.OKProbe(), ct.OKProbe())
		require.Empty(t, logsSince(h, n))
		require.Equal(t, core.FenceOpen, r.fence.held)
		require.True(t, r.fence.failedAt.IsZero(), "success clears the failure")
		require.Equal(t, []core.Fence{core.FenceOpen, core.FenceOpen, core.FenceOpen}, h.fenceCalls())
		require.Empty(t, recordsOf(hostRecords(t, h), publish.KindAction), "a standby's fence is no event")
	})
	t.Run("master without a partner", func(t *testing.T) {
		raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
		raw.PartnerConninfo = ""
		h := newFakeHost(raw)
		h.fenceErr = func(core.Fence) error { return errors.New("no shared memory") }
		r := newTestRunner(t, h)
		n := logCount(h)
		turn(r, time.Now())
		confirmed := ct.Info("pg_keeper: " + core.Why(core.MasterUnconfirmed, core.Confirmed) +
			" (pg_keeper.partner_conninfo is not set: no partner to check, the keeper is inactive)")
		// The turn that confirms the server tries once, and says it once.
		require.Equal(t, []core.LogLine{confirmed, {Level: core.Error, Msg: failed}}, logsSince(h, n))
		require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())
		require.NotEqual(t, core.FenceOpen, r.fence.held)
		require.Equal(t, core.MasterReady, r.core.State())

		// The next turns, within the second, do not try again.
		n = logCount(h)
		turn(r, time.Now())
		turn(r, time.Now())
		require.Empty(t, logsSince(h, n))
		require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())

		// A second later it is tried again, and not said again.
		aSecondLater(r)
		turn(r, time.Now())
		require.Empty(t, logsSince(h, n))
		require.Equal(t, []core.Fence{core.FenceOpen, core.FenceOpen}, h.fenceCalls())
		require.NotEqual(t, core.FenceOpen, r.fence.held)

		h.set(func(h *fakeHost) { h.fenceErr = nil })
		aSecondLater(r)
		turn(r, time.Now())
		require.Empty(t, logsSince(h, n))
		require.Equal(t, []core.Fence{core.FenceOpen, core.FenceOpen, core.FenceOpen}, h.fenceCalls())
		require.Equal(t, core.FenceOpen, r.fence.held)
		require.Equal(t, core.FenceOpen, h.fence)
		require.Equal(t, core.MasterReady, r.core.State())
		require.Equal(t, []string{publish.KindStart, publish.KindTransition, publish.KindAction}, kinds(hostRecords(t, h)),
			"writes accepted is recorded once, when it is true")
	})
}

// A fence of another kind than the one that failed is no retry: fencing
// after a failed opening is tried at once, and its failure said and
// recorded.
func TestRunnerFenceErrorAfterAnotherFenceError(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	h.fenceErr = func(core.Fence) error { return errors.New("no shared memory") }
	r := newTestRunner(t, h)
	n := logCount(h)
	deliver(r, ct.OKWith(ct.StandbyFacts))
	require.Equal(t, core.LogLine{Level: core.Error, Msg: "pg_keeper: could not set the fence to open: no shared memory"}, logsSince(h, n)[1])
	require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())

	n = logCount(h)
	deliver(r, ct.SupersededProbe())
	require.Equal(t, core.MasterFenced, r.core.State())
	require.Equal(t, []core.Fence{core.FenceOpen, core.FenceFenced}, h.fenceCalls(), "fenced at once")
	require.Equal(t, []core.LogLine{
		supersededRunLine(1, 2),
		{Level: core.Error, Msg: "pg_keeper: " + core.Why(core.MasterConnected, core.Superseded)},
		{Level: core.Error, Msg: "pg_keeper: could not set the fence to fenced: no shared memory"},
	}, logsSince(h, n))
	recs := recordsOf(hostRecords(t, h), publish.KindAction)
	require.Len(t, recs, 1)
	require.Equal(t, publish.Record{At: recs[0].At, Node: r.node, Kind: publish.KindAction, Action: core.FenceSelf.String(), OK: publish.Ptr(false),
		Detail: "no shared memory"}, recs[0])
}

// TestRunnerFencesWhenSuperseded: the fence opened by a good heartbeat is
// closed for good by a superseded one.
func TestRunnerFencesWhenSuperseded(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.PartnerConninfo = "host=new-primary port=5432 user=rep password=hunter22 dbname=postgres"
	h := newFakeHost(raw)
	r := newTestRunner(t, h)
	n := logCount(h)
	deliver(r, ct.OKWith(ct.StandbyFacts))
	require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())
	requireFencedWhileHandling(t, h, 0, n)

	n = logCount(h)
	deliver(r, ct.SupersededProbe())
	require.Equal(t, core.MasterFenced, r.core.State())
	require.Equal(t, []core.LogLine{
		supersededRunLine(1, 2),
		{Level: core.Error, Msg: "pg_keeper: " + core.Why(core.MasterConnected, core.Superseded)},
		rejoinHint(raw.DataDir, "host=new-primary port=5432 user=rep password=******** dbname=postgres"),
	}, logsSince(h, n))
	require.Equal(t, []core.Fence{core.FenceOpen, core.FenceFenced}, h.fenceCalls())
	h.mu.Lock()
	require.Equal(t, n+2, h.fenceAt[1], "fenced once the transition was logged, before the hint")
	h.mu.Unlock()
	require.NotEqual(t, core.FenceOpen, r.fence.held)

	// Nothing opens it again: good heartbeats, failures past the count.
	n = logCount(h)
	deliver(r, ct.OKWith(ct.StandbyFacts), aliveFailure(core.FailRefused), aliveFailure(core.FailRefused), aliveFailure(core.FailRefused),
		ct.FailWith(core.FailRefused, "d", -1), ct.OKWith(ct.StandbyFacts), ct.SupersededProbe())
	require.Equal(t, []core.Fence{core.FenceOpen, core.FenceFenced}, h.fenceCalls())
	require.Equal(t, core.MasterFenced, r.core.State())
	for _, l := range logsSince(h, n) {
		require.NotContains(t, l.Msg, "fence", "nothing about the fence is logged again")
		require.NotContains(t, l.Msg, "to rejoin")
	}
	_, titles := h.snapshot()
	// The standby's answer confirmed this server, then the new primary's fenced it.
	require.Equal(t, []string{"(master mode:unconfirmed)", "(master mode:ready)", "(master mode:fenced)"}, titles)
}

// TestRunnerSupersededBeforeTheCountNeverOpens: a superseded heartbeat
// after failed ones fences without opening first.
func TestRunnerSupersededBeforeTheCountNeverOpens(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	r := newTestRunner(t, h)
	deliver(r, aliveFailure(core.FailTimeout), ct.SupersededProbe())
	require.Equal(t, 2, r.core.Failures(), "the count is reached with the superseded heartbeat")
	require.Equal(t, []core.Fence{core.FenceFenced}, h.fenceCalls())
	deliver(r, ct.SupersededProbe(), ct.SupersededProbe(), aliveFailure(core.FailTimeout))
	require.Equal(t, []core.Fence{core.FenceFenced}, h.fenceCalls())
	require.Equal(t, core.MasterFenced, r.core.State())
}

// TestRunnerFencedAbsorbsALateSwitch: a switch to asynchronous replication
// under way when the fence comes reports silently.
func TestRunnerFencedAbsorbsALateSwitch(t *testing.T) {
	fakepg.CleanEnv(t)
	h := confirmedHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))) // a switching master was confirmed
	r := newTestRunner(t, h)
	r.core = ct.Reach(t, core.MasterSwitching, 2) // as if SwitchAsync were under way
	deliver(r, ct.SupersededProbe())
	require.Equal(t, core.MasterFenced, r.core.State())
	for _, ev := range []core.Input{ct.ActionErr(core.SwitchAsync, "ALTER SYSTEM failed")} {
		n := logCount(h)
		deliver(r, ev)
		require.Empty(t, logsSince(h, n))
		require.Equal(t, core.MasterFenced, r.core.State())
	}
	require.Equal(t, []core.Fence{core.FenceFenced}, h.fenceCalls())
	_, titles := h.snapshot()
	require.Equal(t, []string{"(master mode:ready)", "(master mode:fenced)"}, titles)
	require.Equal(t, core.FenceFenced, h.fence, "the server holds it fenced")
}

// TestRunSupersededMasterFencesItself runs the loop against a fake partner
// that is a primary on a newer timeline than this server's.
func TestRunSupersededMasterFencesItself(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, false, "50331744", "3")...)
	raw := runRaw(t, srv.Port, fakepg.ClosedPort(t))
	raw.PartnerConninfo += " password=hunter22"
	raw.SystemID, raw.StartTime = 7300000000000000001, ct.T0
	h := newFakeHost(raw)
	h.timeline = 2
	done := startRun(t, h)
	waitForLog(t, h, hasPrefix("pg_keeper: to rejoin"))
	// Heartbeats go on, answered the same way; nothing is done again.
	waitFor(t, "four heartbeats", func() bool { return len(srv.Received()) >= 4 })
	require.Equal(t, 0, stopAndWait(t, h, done))

	logs, titles := h.snapshot()
	display := fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=y sslmode=disable password=********", srv.Port)
	require.Equal(t, []core.LogLine{
		ct.Info(fmt.Sprintf("pg_keeper: started in master mode: partner %q, keepalives_time 50ms, keepalives_count 2", display)),
		supersededRunLine(1, 2),
		{Level: core.Error, Msg: "pg_keeper: " + core.Why(core.MasterConnected, core.Superseded)},
		rejoinHint(raw.DataDir, display),
		supersededRunLine(2, 2),
		ct.Info("pg_keeper: stopping"),
	}, logs, formatLogs(logs))
	// An old master that restarts is unconfirmed until the new primary fences it.
	require.Equal(t, []string{"(master mode:unconfirmed)", "(master mode:fenced)"}, titles)
	require.Equal(t, []core.Fence{core.FenceFenced}, h.fenceCalls(), "fenced, and never opened")
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Equal(t, []int{3}, h.fenceAt, "fenced once the transition was logged")
	require.GreaterOrEqual(t, h.timelines, 4, "the timeline is asked before each heartbeat")
	require.Nil(t, h.strayCalls)
	for _, q := range srv.Received() {
		require.Equal(t, probeSQL(core.MasterMode, ""), q)
	}
}

// TestRunSupersededFenceErrorDoesNotCrash: SetFence(FenceFenced) fails; the
// error is logged, the loop goes on, and the fence is never opened.
func TestRunSupersededFenceErrorDoesNotCrash(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, false, "50331744", "3")...)
	raw := runRaw(t, srv.Port, fakepg.ClosedPort(t))
	raw.SystemID, raw.StartTime = 7300000000000000001, ct.T0
	h := newFakeHost(raw)
	h.timeline = 2
	var triedAt []time.Time // when SetFence failed, under h.mu
	h.fenceErr = func(f core.Fence) error {
		if f == core.FenceFenced {
			triedAt = append(triedAt, time.Now())
			return errors.New("shared memory is gone")
		}
		return nil
	}
	const failed = "pg_keeper: could not set the fence to fenced: shared memory is gone"
	done := startRun(t, h)
	waitForLog(t, h, hasPrefix(failed))
	waitFor(t, "four heartbeats", func() bool { return len(srv.Received()) >= 4 })
	waitFor(t, "a second try", func() bool { return len(h.fenceCalls()) >= 2 })
	require.Equal(t, 0, stopAndWait(t, h, done))

	// Tried once, then again at most once a second; said and recorded once;
	// and no rejoin hint, since the server was not fenced.
	logs, titles := h.snapshot()
	require.Equal(t, []core.LogLine{
		supersededRunLine(1, 2),
		{Level: core.Error, Msg: "pg_keeper: " + core.Why(core.MasterConnected, core.Superseded)},
		{Level: core.Error, Msg: failed},
		supersededRunLine(2, 2),
		ct.Info("pg_keeper: stopping"),
	}, logs[1:], formatLogs(logs))
	require.Equal(t, []string{"(master mode:unconfirmed)", "(master mode:fenced)"}, titles)
	calls := h.fenceCalls()
	for _, f := range calls {
		require.Equal(t, core.FenceFenced, f, "never opened")
	}
	require.Equal(t, core.FenceUnconfirmed, h.fence, "the server still holds writes")
	h.mu.Lock()
	require.Equal(t, len(calls), len(triedAt))
	for i := 1; i < len(triedAt); i++ {
		require.GreaterOrEqual(t, triedAt[i].Sub(triedAt[i-1]), time.Second, "try %d", i)
	}
	h.mu.Unlock()
	recs := recordsOf(hostRecords(t, h), publish.KindAction)
	require.Len(t, recs, 1, "one failed fence recorded")
	require.Equal(t, core.FenceSelf.String(), recs[0].Action)
	require.Equal(t, publish.Ptr(false), recs[0].OK)
	require.Equal(t, "shared memory is gone", recs[0].Detail)
}

// TestRunMasterTimelineUnknownIsNoSupersession: when the host cannot tell
// this server's timeline, a second primary is just that.
func TestRunMasterTimelineUnknownIsNoSupersession(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, false, "50331744", "3")...)
	raw := runRaw(t, srv.Port, fakepg.ClosedPort(t))
	raw.SystemID, raw.StartTime = 7300000000000000001, ct.T0
	h := newFakeHost(raw)
	h.timeline, h.timelineErr = 2, errors.New("no answer")
	done := startRun(t, h)
	i := waitForLog(t, h, hasPrefix("pg_keeper: heartbeat to standby failed (1/2): "))
	require.Equal(t, 0, stopAndWait(t, h, done))
	logs, titles := h.snapshot()
	require.Equal(t, core.LogLine{Level: core.Error, Msg: "pg_keeper: heartbeat to standby failed (1/2): two primaries: the partner is a primary too: " +
		"both nodes are primaries of one cluster; keep the one promoted last and rebuild the other as its standby " +
		"(pg_rewind or pg_basebackup, standby.signal)"}, logs[i])
	require.NotContains(t, titles, "(master mode:fenced)")
	require.NotContains(t, h.fenceCalls(), core.FenceFenced)
}

var tookRe = regexp.MustCompile(`took \d+ ms`)

// TestRunnerAfterCommandAfterPromotion promotes through a fake local
// server and runs after_command with the environment of the promotion.
func TestRunnerAfterCommandAfterPromotion(t *testing.T) {
	fakepg.CleanEnv(t)
	host, err := os.Hostname()
	require.NoError(t, err)
	for _, tc := range []struct {
		name     string
		answers  map[string][]fakepg.Column
		failures map[string]*pgproto3.ErrorResponse
		queries  []string
		detail   string
		timeline string
	}{
		{"promoted", map[string][]fakepg.Column{
			"SELECT pg_is_in_recovery()":     {fakepg.Col(fakepg.OIDBool, "t")},
			"SELECT pg_promote(false)":       {fakepg.Col(fakepg.OIDBool, "t")},
			"SELECT NOT pg_is_in_recovery()": {fakepg.Col(fakepg.OIDBool, "t")},
			timelineQuery:                    {fakepg.Col(fakepg.OIDInt4, "3")},
		}, nil, []string{"SELECT pg_is_in_recovery()", "SELECT pg_promote(false)", "SELECT NOT pg_is_in_recovery()", timelineQuery},
			"pg_promote() took N ms", "3"},
		{"already out of recovery", map[string][]fakepg.Column{
			"SELECT pg_is_in_recovery()": {fakepg.Col(fakepg.OIDBool, "f")},
			timelineQuery:                {fakepg.Col(fakepg.OIDInt4, "12")},
		}, nil, []string{"SELECT pg_is_in_recovery()", timelineQuery},
			"the server was already out of recovery", "12"},
		{"timeline unknown", map[string][]fakepg.Column{
			"SELECT pg_is_in_recovery()":     {fakepg.Col(fakepg.OIDBool, "t")},
			"SELECT pg_promote(false)":       {fakepg.Col(fakepg.OIDBool, "t")},
			"SELECT NOT pg_is_in_recovery()": {fakepg.Col(fakepg.OIDBool, "t")},
		}, map[string]*pgproto3.ErrorResponse{
			timelineQuery: {Severity: "ERROR", Code: "55000", Message: "recovery is in progress"},
		}, []string{"SELECT pg_is_in_recovery()", "SELECT pg_promote(false)", "SELECT NOT pg_is_in_recovery()", timelineQuery},
			"pg_promote() took N ms", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			local := fakepg.Start(t)
			local.Set(func(s *fakepg.Server) { s.Answers, s.Failures = tc.answers, tc.failures })
			raw := runRaw(t, fakepg.ClosedPort(t), local.Port)
			raw.PartnerConninfo = "host=old-master port=5432 user=x password=hunter22"
			raw.Port = 5433
			raw.AfterCommand = `for v in EVENT NODE PORT NEW_PRIMARY OLD_PRIMARY TIMELINE DATA_DIR; ` +
				`do eval "echo $v=\$PG_KEEPER_$v"; done`
			h := newFakeHost(raw)
			h.inRecovery = true
			r := newTestRunner(t, h)
			r.applyFence()                                 // the first turn of the loop opens a standby's fence
			r.core = ct.Reach(t, core.StandbyPromoting, 2) // as if the master were lost
			n := logCount(h)

			startAction(r, core.Promote)
			awaitMessage(t, r) // the promotion; it starts after_command
			require.Equal(t, core.MasterReady, r.core.State())
			awaitMessage(t, r) // after_command

			logs := logsSince(h, n)
			for i := range logs {
				logs[i].Msg = msRe.ReplaceAllString(tookRe.ReplaceAllString(logs[i].Msg, "took N ms"), "after N ms")
			}
			require.Equal(t, []core.LogLine{
				ct.Info("pg_keeper: promoted: this server is now the master (" + tc.detail + ")"),
				// Only the program is logged: fence agents take passwords as arguments.
				ct.Info("pg_keeper: running after_command (timeout 1m0s): for ..."),
				ct.Info("pg_keeper: after_command: EVENT=promote"),
				ct.Info("pg_keeper: after_command: NODE=" + host),
				ct.Info("pg_keeper: after_command: PORT=5433"),
				ct.Info("pg_keeper: after_command: NEW_PRIMARY=" + host + ":5433"),
				ct.Info("pg_keeper: after_command: OLD_PRIMARY=host=old-master port=5432 user=x password=********"),
				ct.Info("pg_keeper: after_command: TIMELINE=" + tc.timeline),
				ct.Info("pg_keeper: after_command: DATA_DIR=" + raw.DataDir),
				ct.Info("pg_keeper: after_command finished: exit status 0 after N ms"),
			}, logs)
			require.Equal(t, tc.queries, local.Received())
			require.Equal(t, core.MasterReady, r.core.State())
			require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls(), "the fence of a standby stays open once promoted")
		})
	}
}

// A standby that answers but does not stream has shown this master was not
// superseded: the fence opens at once (the core confirms the master).
func TestRunnerNotStreamingOpensTheFence(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	r := newTestRunner(t, h)
	require.Equal(t, core.MasterUnconfirmed, r.core.State())
	ev := core.Input{Kind: core.ProbeInput, At: ct.T0, Probe: core.ProbeResult{Class: core.FailNotStreaming, Detail: "x", LocalLSN: -1}}
	r.step(ev)
	require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls(), "applied with the step's output")
	require.Equal(t, 1, r.core.Failures())
	require.Equal(t, core.MasterReady, r.core.State())
}
