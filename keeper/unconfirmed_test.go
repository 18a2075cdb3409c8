package keeper

import (
	"errors"
	ct "github.com/pg-keeper/pg_keeper/keeper/core/coretest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/action"
	"github.com/pg-keeper/pg_keeper/keeper/probe"

	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/publish"
	"github.com/stretchr/testify/require"
)

// A master that starts takes no writes until its partner answers as its
// standby (or as an older primary), or an operator confirms it: the
// MasterUnconfirmed state, in the core and in the runner.

var whyConfirmedAsync = core.Why(core.MasterUnconfirmed, core.Confirmed) + "; replication was asynchronous before this start: " +
	"restoring it once the standby has caught up"

// confirmLine is what the runner logs when an operator's file confirms it.
func confirmLine(dataDir string) core.LogLine {
	return ct.Info("pg_keeper: " + core.Why(core.MasterUnconfirmed, core.Confirmed) + " (confirmed by the operator (" + filepath.Join(dataDir, core.ConfirmFile) +
		"), without an answer from the partner)")
}

// ignoredConfirmLine is what the runner logs when it removes an operator's
// file at path in a state that waits for no confirmation.
func ignoredConfirmLine(path string) core.LogLine {
	return ct.Warn("pg_keeper: " + core.Why(core.MasterConnected, core.Confirmed) + " (confirmed by the operator (" + path +
		"), without an answer from the partner)")
}

// TestRunnerStartsByTheFence: a master keeper starts unconfirmed unless the
// server's fence is open already (a restart of the worker, not of the
// server), fenced if an earlier worker fenced it; its saved file says
// whether replication had been switched to asynchronous. The first turn of
// the loop makes the server hold the fence the state wants: a standby's is
// opened.
func TestRunnerStartsByTheFence(t *testing.T) {
	fakepg.CleanEnv(t)
	host, err := os.Hostname()
	require.NoError(t, err)
	const own, foreign, oldFormat = "own", "foreign", "old format"
	for _, tc := range []struct {
		name       string
		inRecovery bool
		fence      core.Fence
		readErr    error
		saved      string // which saved file is in the data directory
		autoEmpty  bool   // postgresql.auto.conf sets synchronous_standby_names = ''
		state      core.State
		logs       []string // before the start line
		setFences  []core.Fence
	}{
		{name: "master, fence unconfirmed", fence: core.FenceUnconfirmed, state: core.MasterUnconfirmed},
		{name: "master, fence open", fence: core.FenceOpen, state: core.MasterReady},
		{name: "master, fence open, own saved file and '' override", fence: core.FenceOpen, saved: own, autoEmpty: true, state: core.MasterAsync},
		{name: "master, fence open, own saved file, no '' override", fence: core.FenceOpen, saved: own, state: core.MasterAsync},
		{name: "master, fence open, the partner's saved file and its '' override", fence: core.FenceOpen, saved: foreign, autoEmpty: true,
			state: core.MasterAsync},
		{name: "master, fence open, the partner's saved file alone", fence: core.FenceOpen, saved: foreign, state: core.MasterReady},
		{name: "master, fence open, a file of old", fence: core.FenceOpen, saved: oldFormat, state: core.MasterReady},
		{name: "master, fence open, a file of old and a '' override", fence: core.FenceOpen, saved: oldFormat, autoEmpty: true,
			state: core.MasterAsync},
		{name: "master, fence unconfirmed, own saved file", fence: core.FenceUnconfirmed, saved: own, state: core.MasterUnconfirmed},
		// Fenced by an earlier worker: the server is shutting down.
		{name: "master, fence fenced", fence: core.FenceFenced, state: core.MasterFenced},
		{name: "master, fence fenced, own saved file", fence: core.FenceFenced, saved: own, state: core.MasterFenced},
		// Unknown: taken as unconfirmed, and the first turn sets it so.
		{name: "master, fence unreadable", fence: core.FenceOpen, readErr: errors.New("no shared memory"), state: core.MasterUnconfirmed,
			logs: []string{"could not read the fence: no shared memory"}, setFences: []core.Fence{core.FenceUnconfirmed}},
		{name: "standby, fence unconfirmed", inRecovery: true, state: core.StandbyReady, setFences: []core.Fence{core.FenceOpen}},
		{name: "standby, fence open", inRecovery: true, fence: core.FenceOpen, state: core.StandbyReady},
		{name: "standby, own saved file", inRecovery: true, saved: own, state: core.StandbyReady, setFences: []core.Fence{core.FenceOpen}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
			raw.Port = 5432
			dir := raw.DataDir
			switch tc.saved {
			case own:
				require.NoError(t, action.SaveSync(dir, action.NodeTag(host, 5432, dir), "node2"))
			case foreign:
				require.NoError(t, action.SaveSync(dir, action.NodeTag("partner", 5432, dir), "node1"))
			case oldFormat:
				require.NoError(t, os.WriteFile(filepath.Join(dir, action.SavedSyncFile), []byte("node1\n"), 0o600))
			}
			if tc.autoEmpty {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "postgresql.auto.conf"),
					[]byte("# Do not edit this file manually!\nsynchronous_standby_names = ''\n"), 0o600))
			}
			h := newFakeHost(raw)
			h.inRecovery, h.fence, h.fenceReadErr = tc.inRecovery, tc.fence, tc.readErr
			r := newTestRunner(t, h)
			require.Equal(t, tc.state, r.core.State())
			require.Nil(t, h.fenceCalls(), "the loop sets the fence")
			logs, titles := h.snapshot()
			require.Equal(t, []string{tc.state.Title()}, titles)
			var before []string
			for _, l := range logs[:len(logs)-1] {
				before = append(before, strings.TrimPrefix(l.Msg, "pg_keeper: "))
			}
			require.Equal(t, tc.logs, before)
			require.True(t, strings.HasPrefix(logs[len(logs)-1].Msg, "pg_keeper: started in "+tc.state.Mode().String()+" mode: "))
			recs := hostRecords(t, h)
			require.Len(t, recs, 1)
			require.Equal(t, tc.state.String(), recs[0].To, "the start record names the state")
			h.mu.Lock()
			require.Equal(t, 1, h.fenceReads)
			h.mu.Unlock()
			if tc.readErr == nil {
				require.Equal(t, tc.fence, r.fence.held, "the runner knows the fence as the server holds it")
			} else {
				require.Equal(t, core.Fence(-1), r.fence.held, "the runner does not know the fence the server holds")
			}

			r.applyFence() // the first turn of the loop
			require.Equal(t, tc.setFences, h.fenceCalls())
			r.applyFence()
			require.Equal(t, tc.setFences, h.fenceCalls(), "set once")
			require.Equal(t, r.core.Fence(), r.fence.held)
			require.Len(t, logsSince(h, len(logs)), 0)
			h.mu.Lock()
			defer h.mu.Unlock()
			require.Equal(t, r.core.Fence(), h.fence, "the server holds the fence the state wants")
		})
	}
}

// A saved file that cannot be read is said, and the master starts as if
// replication had not been switched.
func TestRunnerStartsWithAnUnreadableSavedFile(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	require.NoError(t, os.Mkdir(filepath.Join(raw.DataDir, action.SavedSyncFile), 0o700))
	h := confirmedHost(raw)
	r := newTestRunner(t, h)
	require.Equal(t, core.MasterReady, r.core.State())
	logs, _ := h.snapshot()
	require.Equal(t, core.Warning, logs[0].Level)
	require.True(t, strings.HasPrefix(logs[0].Msg, "pg_keeper: read "+filepath.Join(raw.DataDir, action.SavedSyncFile)+": "), logs[0].Msg)
}

// A worker that restarts on a server its predecessor confirmed finds the
// fence open and starts confirmed; a restarted server starts unconfirmed.
func TestRunnerWorkerRestartKeepsTheConfirmation(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	h := newFakeHost(raw)
	r, closeRunner := openRunner(t, h)
	require.Equal(t, core.MasterUnconfirmed, r.core.State())
	deliver(r, ct.OKWith(ct.StandbyFacts))
	require.Equal(t, core.MasterReady, r.core.State())
	closeRunner()
	require.Equal(t, core.FenceOpen, h.fence)

	r2, closeRunner2 := openRunner(t, h)
	require.Equal(t, core.MasterReady, r2.core.State())
	require.Equal(t, core.FenceOpen, r2.fence.held)
	deliver(r2, ct.FailWith(core.FailRefused, "d", -1), ct.FailWith(core.FailRefused, "d", -1))
	require.Equal(t, core.MasterSwitching, r2.core.State(), "a confirmed master deals with a lost standby")
	require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls(), "opened once, by the first worker")
	closeRunner2()

	// The server restarts: shared memory, and with it the fence, is new.
	h3 := newFakeHost(raw)
	r3 := newTestRunner(t, h3)
	require.Equal(t, core.MasterUnconfirmed, r3.core.State())
}

// TestRunnerConfirmFile: the operator's file confirms an unconfirmed master
// at the next tick and is consumed; anywhere else it is ignored, said, and
// removed; at the start of a standby it is removed (a copy of the
// partner's data directory).
func TestRunnerConfirmFile(t *testing.T) {
	fakepg.CleanEnv(t)
	touch := func(t *testing.T, dir string) string {
		path := filepath.Join(dir, core.ConfirmFile)
		require.NoError(t, os.WriteFile(path, nil, 0o600))
		return path
	}
	gone := func(t *testing.T, path string) {
		_, err := os.Stat(path)
		require.True(t, os.IsNotExist(err), "%s: %v", path, err)
	}
	t.Run("unconfirmed master", func(t *testing.T) {
		raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
		raw.PartnerConninfo = "port=notaport" // no heartbeat to race with
		h := newFakeHost(raw)
		r := newTestRunner(t, h)
		turn(r, time.Now())
		require.Equal(t, core.MasterUnconfirmed, r.core.State(), "nothing confirms it yet")
		path := touch(t, raw.DataDir)
		n := logCount(h)
		turn(r, time.Now())
		require.Equal(t, []core.LogLine{confirmLine(raw.DataDir)}, logsSince(h, n))
		require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())
		requireFencedWhileHandling(t, h, 0, n)
		require.Equal(t, core.MasterReady, r.core.State())
		gone(t, path)
		recs := hostRecords(t, h)
		require.Equal(t, []string{publish.KindStart, publish.KindTransition, publish.KindAction}, kinds(recs))
		require.Equal(t, "confirmed", recs[1].Trigger)
		require.Equal(t, publish.Record{At: recs[2].At, Node: r.node, Kind: publish.KindAction, Action: "open-fence", OK: publish.Ptr(true),
			Detail: "writes accepted"}, recs[2])
		_, titles := h.snapshot()
		require.Equal(t, []string{"(master mode:unconfirmed)", "(master mode:ready)"}, titles)
	})
	t.Run("unconfirmed master, async before", func(t *testing.T) {
		raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
		raw.PartnerConninfo = "port=notaport"
		host, err := os.Hostname()
		require.NoError(t, err)
		require.NoError(t, action.SaveSync(raw.DataDir, action.NodeTag(host, raw.Port, raw.DataDir), "node2"))
		path := touch(t, raw.DataDir) // before the start: this start's confirmation
		h := newFakeHost(raw)
		r := newTestRunner(t, h)
		_, err = os.Stat(path)
		require.NoError(t, err, "a master keeps it for its first turn")
		n := logCount(h)
		turn(r, time.Now())
		require.Equal(t, []core.LogLine{ct.Info("pg_keeper: " + whyConfirmedAsync + " (confirmed by the operator (" + path +
			"), without an answer from the partner)")}, logsSince(h, n))
		require.Equal(t, core.MasterAsync, r.core.State())
		require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())
		gone(t, path)
	})
	t.Run("confirmed master", func(t *testing.T) {
		raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
		raw.PartnerConninfo = "port=notaport"
		h := confirmedHost(raw)
		r := newTestRunner(t, h)
		path := touch(t, raw.DataDir)
		n := logCount(h)
		turn(r, time.Now())
		require.Equal(t, core.MasterReady, r.core.State())
		require.Nil(t, h.fenceCalls())
		gone(t, path)
		require.Equal(t, []core.LogLine{ignoredConfirmLine(path)}, logsSince(h, n))
	})
	t.Run("standby, file from before the start", func(t *testing.T) {
		raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
		path := touch(t, raw.DataDir)
		h := newFakeHost(raw)
		h.inRecovery = true
		r := newTestRunner(t, h)
		logs, _ := h.snapshot()
		require.True(t, strings.HasPrefix(logs[0].Msg, "pg_keeper: started in standby mode: "), logs[0].Msg)
		// The first turn, as the loop's first, consumes it: a standby waits
		// for no confirmation.
		n := logCount(h)
		turn(r, time.Now())
		require.Equal(t, core.StandbyReady, r.core.State())
		gone(t, path)
		require.Equal(t, []core.LogLine{ignoredConfirmLine(path)}, logsSince(h, n))
	})
	t.Run("standby, file created later", func(t *testing.T) {
		raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
		raw.PartnerConninfo = "port=notaport"
		h := newFakeHost(raw)
		h.inRecovery = true
		r := newTestRunner(t, h)
		path := touch(t, raw.DataDir)
		n := logCount(h)
		turn(r, time.Now())
		require.Equal(t, core.StandbyReady, r.core.State())
		gone(t, path)
		require.Equal(t, []core.LogLine{ignoredConfirmLine(path)}, logsSince(h, n))
	})
	t.Run("no file", func(t *testing.T) {
		raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
		raw.PartnerConninfo = "port=notaport"
		h := newFakeHost(raw)
		r := newTestRunner(t, h)
		n := logCount(h)
		for range 3 {
			turn(r, time.Now())
		}
		require.Empty(t, logsSince(h, n))
		require.Equal(t, core.MasterUnconfirmed, r.core.State())
	})
}

// TestRunConfirmedByTheStandbyAfterFailures runs the loop against a fake
// partner that is down at first, then answers as a standby: the fence
// stays shut through the failures and opens at the first answer.
func TestRunConfirmedByTheStandbyAfterFailures(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, fakepg.FactsRow(true, "7300000000000000001", fakepg.StartText, false, "-1", "0")...)
	srv.Set(func(s *fakepg.Server) {
		s.StartupErr = &pgproto3.ErrorResponse{Severity: "FATAL", Code: "57P03", Message: "the database system is starting up"}
	})
	local := masterAloneLocal(t)
	local.Set(func(s *fakepg.Server) {
		s.Answers[fakepg.SimpleSQL(probe.CaughtUpSQL, "walreceiver")] = []fakepg.Column{fakepg.Col(fakepg.OIDBool, "t"), fakepg.Col(fakepg.OIDInt8, "50331648")}
	})
	raw := runRaw(t, srv.Port, local.Port)
	raw.SystemID, raw.StartTime = 7300000000000000001, ct.T0
	h := newFakeHost(raw)
	h.timeline = 2
	done := startRun(t, h)
	waitFor(t, "six failed heartbeats", func() bool { return aliveQueries(local) >= 6 })
	require.Nil(t, h.fenceCalls())

	srv.Set(func(s *fakepg.Server) { s.StartupErr = nil })
	i := waitForLog(t, h, func(l core.LogLine) bool {
		return l == ct.Info("pg_keeper: "+core.Why(core.MasterUnconfirmed, core.Confirmed)+" (the partner answered as a standby)")
	})
	waitForLog(t, h, func(l core.LogLine) bool { return l == ct.Info("pg_keeper: connected to standby") })
	require.Equal(t, 0, stopAndWait(t, h, done))
	require.Equal(t, []core.Fence{core.FenceOpen}, h.fenceCalls())
	logs, titles := h.snapshot()
	require.Equal(t, []string{"(master mode:unconfirmed)", "(master mode:ready)", "(master mode:connected)"}, titles)
	require.True(t, strings.HasPrefix(logs[i-1].Msg, "pg_keeper: heartbeat to standby succeeded after "), logs[i-1].Msg)
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Equal(t, []int{i + 1}, h.fenceAt)
}

// An operator's file that cannot be removed (here a non-empty directory of
// its name) confirms nothing: it would confirm again whatever start came
// next. Said once, however many turns see it.
func TestRunnerConfirmFileThatStays(t *testing.T) {
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	h := newFakeHost(raw)
	r := newTestRunner(t, h)
	require.Equal(t, core.MasterUnconfirmed, r.core.State())
	path := filepath.Join(raw.DataDir, core.ConfirmFile)
	require.NoError(t, os.MkdirAll(filepath.Join(path, "inside"), 0o700))
	n := logCount(h)
	for range 3 {
		turn(r, time.Now())
	}
	require.Equal(t, core.MasterUnconfirmed, r.core.State())
	var stuck []string
	for _, l := range logsSince(h, n) {
		if strings.Contains(l.Msg, "so it confirms nothing") {
			stuck = append(stuck, l.Msg)
		}
	}
	require.Len(t, stuck, 1)
	require.True(t, strings.HasPrefix(stuck[0], "pg_keeper: could not remove "+path+", so it confirms nothing: "), stuck[0])

	// Once it can go, it confirms.
	require.NoError(t, os.RemoveAll(path))
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	turn(r, time.Now())
	require.Equal(t, core.MasterReady, r.core.State())
}
