package keeper

import (
	ct "github.com/pg-keeper/pg_keeper/keeper/core/coretest"
	"github.com/pg-keeper/pg_keeper/keeper/settings"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/action"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"
	"github.com/pg-keeper/pg_keeper/keeper/publish"
	"github.com/stretchr/testify/require"
)

// Requests from SQL sessions (pg_keeper.pause(), resume(), switchover(),
// the master's takeover announcement): the runner hands each to the core
// and its answer back to the session; and what the switchover's or rejoin's
// helper reports at the next start.

// pendingRequests is how many pushed requests the runner has not taken.
func pendingRequests(h *fakeHost) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.requests)
}

// lastTitle is the process title the runner set last.
func lastTitle(h *fakeHost) string {
	_, titles := h.snapshot()
	if len(titles) == 0 {
		return ""
	}
	return titles[len(titles)-1]
}

const (
	pauseAnswer  = "maintenance mode on: no promotion, switchover or rejoin until SELECT pg_keeper.resume(); the standby learns it at its next heartbeat"
	resumeAnswer = "maintenance mode off: automatic actions resume"
)

// A pause request on a master sets pg_keeper.maintenance on the local
// server (ALTER SYSTEM, reload): the session is answered once that is done.
// The next request waits until the first is answered; resume sets it off.
func TestRunnerPauseAndResumeOnAMaster(t *testing.T) {
	fakepg.CleanEnv(t)
	local := fakepg.Start(t)
	local.AcceptMaintenance()
	raw := runRaw(t, fakepg.ClosedPort(t), local.Port)
	h := confirmedHost(raw)
	r := newTestRunner(t, h)
	require.Equal(t, core.MasterReady, r.core.State())

	h.pushRequest(Request{Seq: 7, Kind: core.PauseRequest, Arg: "kernel upgrade"})
	h.pushRequest(Request{Seq: 8, Kind: core.ResumeRequest})
	observe(r, time.Now())
	require.Equal(t, 1, pendingRequests(h), "one request at a time")
	require.Empty(t, h.answered(), "answered once the setting is written, not before")
	handleUntil(t, r, "the pause answer", func() bool { return len(h.answered()) > 0 })
	require.Equal(t, []answer{{seq: 7, ok: true, msg: pauseAnswer}}, h.answered())
	require.Equal(t, []string{"ALTER SYSTEM SET pg_keeper.maintenance = on", "SELECT pg_reload_conf()"}, local.Received())
	require.Equal(t, 1, countLogs(h, "pg_keeper: pause request: "+pauseAnswer))
	reqs := recordsOf(hostRecords(t, h), publish.KindRequest)
	require.Len(t, reqs, 1)
	require.Equal(t, "pause", reqs[0].Action)
	require.Equal(t, publish.Ptr(true), reqs[0].OK)
	require.Equal(t, pauseAnswer, reqs[0].Detail)
	require.Nil(t, r.request)
	require.Equal(t, core.MasterReady, r.core.State(), "pausing changes no state")
	require.False(t, r.core.Paused(), "paused once the server's setting says so")

	// The reload the statement caused: the setting is on, and said so.
	h.set(func(h *fakeHost) { h.raw.Maintenance = true })
	n := logCount(h)
	r.loadSettings(true)
	require.True(t, r.core.Paused())
	require.Equal(t, []core.LogLine{ct.Info("pg_keeper: maintenance mode on (set on this server): no promotion, switchover or " +
		"rejoin until pg_keeper.resume() on the master; reason: kernel upgrade")}, logsSince(h, n))
	r.step(core.Input{Kind: core.SettingsInput, At: time.Now()})
	require.Equal(t, n+1, logCount(h), "logged once")
	maint := recordsOf(hostRecords(t, h), publish.KindMaintenance)
	require.Len(t, maint, 1)
	require.Equal(t, publish.Ptr(true), maint[0].OK)
	r.setTitle()
	require.Equal(t, "(master mode:ready, maintenance)", lastTitle(h))

	// Now the resume request is taken.
	observe(r, time.Now())
	require.Zero(t, pendingRequests(h))
	handleUntil(t, r, "the resume answer", func() bool { return len(h.answered()) > 1 })
	require.Equal(t, answer{seq: 8, ok: true, msg: resumeAnswer}, h.answered()[1])
	require.Equal(t, []string{"ALTER SYSTEM SET pg_keeper.maintenance = on", "SELECT pg_reload_conf()",
		"ALTER SYSTEM SET pg_keeper.maintenance = off", "SELECT pg_reload_conf()"}, local.Received())
	h.set(func(h *fakeHost) { h.raw.Maintenance = false })
	r.loadSettings(true)
	require.Equal(t, 1, countLogs(h, "pg_keeper: maintenance mode off: automatic actions resume"))
	r.setTitle()
	require.Equal(t, "(master mode:ready)", lastTitle(h))

	h.mu.Lock()
	defer h.mu.Unlock()
	require.Nil(t, h.strayCalls, "answered from the runner's goroutine")
}

// The local server refuses the setting: the session gets the error.
func TestRunnerPauseFailsWhenTheSettingCannotBeWritten(t *testing.T) {
	fakepg.CleanEnv(t)
	localPort := fakepg.ClosedPort(t)
	h := confirmedHost(runRaw(t, fakepg.ClosedPort(t), localPort))
	r := newTestRunner(t, h)
	h.pushRequest(Request{Seq: 3, Kind: core.PauseRequest})
	observe(r, time.Now())
	handleUntil(t, r, "the answer", func() bool { return len(h.answered()) > 0 })
	a := h.answered()
	require.Len(t, a, 1)
	require.False(t, a[0].ok)
	require.Equal(t, uint32(3), a[0].seq)
	require.True(t, strings.HasPrefix(a[0].msg, "could not set pg_keeper.maintenance: could not connect to this server"), a[0].msg)
	require.Equal(t, 1, countLogs(h, "pg_keeper: pause request: could not set pg_keeper.maintenance: "))
	reqs := recordsOf(hostRecords(t, h), publish.KindRequest)
	require.Len(t, reqs, 1)
	require.Equal(t, publish.Ptr(false), reqs[0].OK)
}

// A standby learns maintenance mode from its master: pause() and resume()
// there are refused at once, and nothing is written.
func TestRunnerPauseOnAStandbyIsRefused(t *testing.T) {
	fakepg.CleanEnv(t)
	local := fakepg.Start(t)
	local.AcceptMaintenance()
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), local.Port))
	h.inRecovery = true
	r := newTestRunner(t, h)
	for i, kind := range []core.Request{core.PauseRequest, core.ResumeRequest} {
		h.pushRequest(Request{Seq: uint32(10 + i), Kind: kind})
		observe(r, time.Now())
		a := h.answered()
		require.Len(t, a, i+1, "answered within the turn")
		require.Equal(t, uint32(10+i), a[i].seq)
		require.False(t, a[i].ok)
		require.Contains(t, a[i].msg, "this server is a standby")
		require.Nil(t, r.request)
	}
	require.Empty(t, local.Received())
	require.Equal(t, core.StandbyReady, r.core.State())
}

// A standby learns the pause from its master's heartbeat: its title says
// so, and the log says where it came from.
func TestRunnerStandbyLearnsMaintenanceFromTheMaster(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	h.inRecovery = true
	r := newTestRunner(t, h)
	paused := ct.SyncMaster
	paused.Maintenance = true
	deliver(r, ct.OKWith(paused))
	require.Equal(t, core.StandbyConnected, r.core.State())
	require.True(t, r.core.Paused())
	require.Equal(t, "(standby mode:connected, maintenance)", lastTitle(h))
	require.Equal(t, 1, countLogs(h, "pg_keeper: maintenance mode on (learnt from the master): "))
	require.True(t, decodeStatus(t, publish.EncodeStatus(r.statusOf(time.Now()))).Maintenance)

	deliver(r, ct.OKWith(ct.SyncMaster))
	require.False(t, r.core.Paused())
	require.Equal(t, "(standby mode:connected)", lastTitle(h))
	require.Equal(t, 1, countLogs(h, "pg_keeper: maintenance mode off: automatic actions resume"))
}

func TestRunnerTitleSaysMaintenance(t *testing.T) {
	fakepg.CleanEnv(t)
	for _, tc := range []struct {
		name        string
		inRecovery  bool
		maintenance bool
		title       string
	}{
		{"master", false, true, "(master mode:unconfirmed, maintenance)"},
		{"standby", true, true, "(standby mode:ready, maintenance)"},
		{"master, not paused", false, false, "(master mode:unconfirmed)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
			raw.Maintenance = tc.maintenance
			h := newFakeHost(raw)
			h.inRecovery = tc.inRecovery
			r := newTestRunner(t, h)
			_, titles := h.snapshot()
			require.Equal(t, []string{tc.title}, titles)
			require.Equal(t, tc.maintenance, r.statusOf(time.Now()).Maintenance)
		})
	}
}

// A switchover needs a master in synchronous replication with a standby it
// has reached: elsewhere it is refused at once, and nothing changes.
func TestRunnerSwitchoverRefused(t *testing.T) {
	fakepg.CleanEnv(t)
	host, err := os.Hostname()
	require.NoError(t, err)
	for _, tc := range []struct {
		name       string
		state      core.State
		inRecovery bool
		confirmed  bool // the fence is open: a worker restart
		savedAsync bool // replication had been switched to asynchronous
	}{
		{"async", core.MasterAsync, false, true, true},
		{"ready", core.MasterReady, false, true, false},
		{"unconfirmed", core.MasterUnconfirmed, false, false, false},
		{"standby", core.StandbyReady, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
			if tc.savedAsync {
				require.NoError(t, action.SaveSync(raw.DataDir, action.NodeTag(host, raw.Port, raw.DataDir), "node2"))
			}
			h := newFakeHost(raw)
			if tc.confirmed {
				h = confirmedHost(raw)
			}
			h.inRecovery = tc.inRecovery
			r := newTestRunner(t, h)
			require.Equal(t, tc.state, r.core.State())
			h.pushRequest(Request{Seq: 42, Kind: core.SwitchoverRequest})
			n := logCount(h)
			observe(r, time.Now())
			why := core.Why(tc.state, core.SwitchoverRequested)
			require.True(t, strings.HasPrefix(why, "switchover refused: "), why)
			require.Equal(t, []answer{{seq: 42, ok: false, msg: why}}, h.answered())
			require.Equal(t, tc.state, r.core.State())
			require.Equal(t, core.NoAction, r.core.InFlight())
			require.Nil(t, r.request)
			require.Equal(t, []core.LogLine{ct.Warn("pg_keeper: " + why), ct.Warn("pg_keeper: switchover request: " + why)},
				logsSince(h, n))
			reqs := recordsOf(hostRecords(t, h), publish.KindRequest)
			require.Len(t, reqs, 1)
			require.Equal(t, publish.Record{At: reqs[0].At, Node: r.node, Kind: publish.KindRequest, Action: "switchover",
				OK: publish.Ptr(false), Detail: why}, reqs[0])
		})
	}
}

// The master announces a takeover with its last WAL position: one that
// does not parse is refused by the runner, before the core sees it.
func TestRunnerTakeoverRequests(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	h.inRecovery = true
	r := newTestRunner(t, h)
	deliver(r, ct.OKProbe())
	require.Equal(t, core.StandbyConnected, r.core.State())

	h.pushRequest(Request{Seq: 1, Kind: core.TakeoverRequest, Arg: "not-an-lsn"})
	observe(r, time.Now())
	require.Equal(t, []answer{{seq: 1, ok: false, msg: `not a WAL position: "not-an-lsn"`}}, h.answered())
	require.Equal(t, core.StandbyConnected, r.core.State())
	require.Nil(t, r.request)
	require.Equal(t, 1, countLogs(h, `pg_keeper: takeover request: not a WAL position: "not-an-lsn"`))

	// A good one: taking over, answered at once.
	h.pushRequest(Request{Seq: 2, Kind: core.TakeoverRequest, Arg: "0/3000060"})
	observe(r, time.Now())
	require.Equal(t, core.StandbyTakingOver, r.core.State())
	require.Equal(t, answer{seq: 2, ok: true, msg: core.Why(core.StandbyConnected, core.TakeoverRequested)}, h.answered()[1])
	require.Equal(t, "(standby mode:taking-over)", lastTitle(h))

	// Called off.
	h.pushRequest(Request{Seq: 3, Kind: core.TakeoverCancelRequest})
	observe(r, time.Now())
	require.Equal(t, core.StandbyConnected, r.core.State())
	require.Equal(t, answer{seq: 3, ok: true, msg: "takeover called off"}, h.answered()[2])

	// An unknown kind is refused.
	h.pushRequest(Request{Seq: 4, Kind: 99})
	observe(r, time.Now())
	require.Equal(t, answer{seq: 4, ok: false, msg: "unknown request 99"}, h.answered()[3])
	require.Equal(t, core.StandbyConnected, r.core.State())
	require.Nil(t, r.request)
}

func TestParseLSN(t *testing.T) {
	for in, want := range map[string]int64{
		"0/3000060":   0x3000060,
		"16/B374D848": 0x16B374D848,
		"16/b374d848": 0x16B374D848,
		"0/0":         0,
		" 1/0\n":      1 << 32,
		"FF/FFFFFFFF": 0xFFFFFFFFFF,
	} {
		got, err := parseLSN(in)
		require.NoError(t, err, "%q", in)
		require.Equal(t, want, got, "%q", in)
	}
	for _, in := range []string{"not-an-lsn", "", "/", "0/", "/1", "3000060", "1/2/3", "0/G", "100000000/0", "0/100000000", "-1/0"} {
		_, err := parseLSN(in)
		require.EqualError(t, err, `not a WAL position: "`+in+`"`)
	}
	// What the core writes, parses back.
	got, err := parseLSN(core.FormatLSN(0x16B374D848))
	require.NoError(t, err)
	require.Equal(t, int64(0x16B374D848), got)
}

// writeResult leaves the helper's outcome in dir as it writes it.
func writeResult(t *testing.T, dir string, lines ...string) string {
	t.Helper()
	path := filepath.Join(dir, action.ResultFile)
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	return path
}

// rejoinPossible makes raw's server one that pg_rewind could rewind:
// wal_log_hints, pg_rewind next to postgres, and postmaster.opts. Should a
// test start the helper by mistake, it harms nothing: the postmaster it
// waits for does not exist, pg_rewind fails, and the "server" is /bin/true.
func rejoinPossible(t *testing.T, raw *settings.Raw) {
	t.Helper()
	raw.AutoRejoin, raw.WalLogHints = true, true
	raw.PostmasterPID = 1<<31 - 1 // above any pid_max
	raw.BinDir = t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(raw.BinDir, "pg_rewind"), []byte("#!/bin/sh\nexit 1\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(raw.DataDir, "postmaster.opts"),
		[]byte(`/bin/true "-D" "`+raw.DataDir+`"`+"\n"), 0o600))
}

// At start the runner tells once what the helper did before; a success's
// file is removed.
func TestRunnerReportsTheRestart(t *testing.T) {
	fakepg.CleanEnv(t)
	for _, tc := range []struct {
		name   string
		fields []string
		line   core.LogLine
	}{
		{"commits discarded",
			[]string{"task=rejoin", "ok=yes", "detail=rewound with pg_rewind", "fork=0/3000060", "discarded_commits=3"},
			ct.Warn("pg_keeper: restarted as a standby by the rejoin helper: rewound with pg_rewind; 3 transaction(s) committed " +
				"on this server after it diverged from the new primary at 0/3000060 were discarded by pg_rewind: " +
				"the new primary never had them")},
		{"rewound, nothing discarded",
			[]string{"task=rejoin", "ok=yes", "detail=rewound with pg_rewind", "fork=0/3000060", "discarded_commits=0"},
			ct.Info("pg_keeper: restarted as a standby by the rejoin helper: rewound with pg_rewind; diverged at 0/3000060, " +
				"no committed transaction discarded")},
		{"switchover",
			[]string{"task=switchover", "ok=yes", "detail=restarted as a standby without a rewind", "fork=", "discarded_commits=0"},
			ct.Info("pg_keeper: restarted as a standby by the switchover helper: restarted as a standby without a rewind")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
			path := writeResult(t, raw.DataDir, tc.fields...)
			h := newFakeHost(raw)
			h.inRecovery = true
			r, closeRunner := openRunner(t, h)
			logs, _ := h.snapshot()
			require.Contains(t, logs, tc.line)
			_, err := os.Stat(path)
			require.ErrorIs(t, err, os.ErrNotExist, "reported once: removed")
			recs := recordsOf(hostRecords(t, h), publish.KindRestart)
			require.Len(t, recs, 1)
			require.Equal(t, publish.Ptr(true), recs[0].OK)
			require.Equal(t, strings.TrimPrefix(tc.line.Msg, "pg_keeper: "), recs[0].Detail)
			require.Empty(t, r.restartFailed)

			// Reported once: a runner started again finds nothing.
			closeRunner()
			n := logCount(h)
			newTestRunner(t, h)
			for _, l := range logsSince(h, n) {
				require.NotContains(t, l.Msg, "restarted as a standby")
			}
		})
	}
}

// A failed helper's file stays: it blocks auto_rejoin, although a rewind
// would be possible here, until an operator has looked.
func TestRunnerFailedRestartBlocksRejoin(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	rejoinPossible(t, &raw)
	_, errs := settings.Parse(raw)
	require.Empty(t, errs)
	require.Empty(t, action.RewindBlocked(raw.DataDir, raw.BinDir, raw.WalLogHints, raw.DataChecksums), "a rewind is possible here")
	const detail = "pg_rewind failed, the data directory may be unusable (rebuild it with pg_basebackup): boom"
	path := writeResult(t, raw.DataDir, "task=rejoin", "ok=no", "detail="+detail)
	h := confirmedHost(raw)
	r, closeRunner := openRunner(t, h)

	failed := "the last rejoin failed: " + detail
	logs, _ := h.snapshot()
	require.Contains(t, logs, core.LogLine{Level: core.Error,
		Msg: "pg_keeper: " + failed + "; auto_rejoin stays off until $PGDATA/" + action.ResultFile + " is removed"})
	blocked := failed + "; remove $PGDATA/" + action.ResultFile + " once it is dealt with"
	require.Contains(t, logs, ct.Warn("pg_keeper: pg_keeper.auto_rejoin is on, but a superseded server here would stay fenced: "+blocked))
	_, err := os.Stat(path)
	require.NoError(t, err, "a failure's file stays")
	require.Equal(t, failed, r.restartFailed)
	recs := recordsOf(hostRecords(t, h), publish.KindRestart)
	require.Len(t, recs, 1)
	require.Equal(t, publish.Record{At: recs[0].At, Node: r.node, Kind: publish.KindRestart, Action: "rejoin",
		OK: publish.Ptr(false), Detail: detail}, recs[0])

	// Warned once, not at every reload.
	r.loadSettings(true)
	require.Equal(t, 1, countLogs(h, "pg_keeper: pg_keeper.auto_rejoin is on, but "))

	// Superseded, the server stays fenced instead of rejoining (no helper
	// starts), and says why.
	deliver(r, ct.OKWith(ct.StandbyFacts))
	n := logCount(h)
	deliver(r, ct.SupersededProbe())
	require.Equal(t, core.MasterFenced, r.core.State())
	require.Contains(t, logsSince(h, n), core.LogLine{Level: core.Error, Msg: "pg_keeper: " +
		core.Why(core.MasterConnected, core.Superseded) + " (pg_keeper.auto_rejoin is on but cannot rewind: " + blocked + ")"})

	// Each start reports it again while the file is there.
	closeRunner()
	h2 := confirmedHost(raw)
	newTestRunner(t, h2)
	require.Equal(t, 1, countLogs(h2, "pg_keeper: "+failed+"; "))
	require.Equal(t, 1, countLogs(h2, "pg_keeper: pg_keeper.auto_rejoin is on, but "))
	_, err = os.Stat(path)
	require.NoError(t, err)
}

// Without auto_rejoin a failed helper is reported all the same, and
// nothing warns about a rejoin that is off anyway.
func TestRunnerFailedRestartWithoutAutoRejoin(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	writeResult(t, raw.DataDir, "task=switchover", "ok=no", "detail=could not create standby.signal")
	h := newFakeHost(raw)
	h.inRecovery = true
	newTestRunner(t, h)
	require.Equal(t, 1, countLogs(h, "pg_keeper: the last switchover failed: could not create standby.signal; "))
	require.Zero(t, countLogs(h, "pg_keeper: pg_keeper.auto_rejoin is on, but "))
}

// An unreadable result (a directory in its place) is a warning, not a
// failed start.
func TestRunnerUnreadableRestartResult(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	require.NoError(t, os.Mkdir(filepath.Join(raw.DataDir, action.ResultFile), 0o700))
	h := newFakeHost(raw)
	r := newTestRunner(t, h)
	require.Equal(t, 1, countLogs(h, "pg_keeper: could not read "+action.ResultFile+": "))
	require.Empty(t, r.restartFailed)
}

// Only the fence that ends a switchover or a rejoin waits for an answer to
// leave (answerGrace); a superseded server is fenced at once, answer or not.
func TestRunnerSupersededFencesAtOnceAfterAnAnswer(t *testing.T) {
	fakepg.CleanEnv(t)
	h := confirmedHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	r := newTestRunner(t, h)
	deliver(r, ct.OKWith(ct.StandbyFacts))
	require.Equal(t, core.MasterConnected, r.core.State())
	require.Nil(t, h.fenceCalls(), "open already: a worker restart")

	// A master refuses a takeover: answered now.
	h.pushRequest(Request{Seq: 5, Kind: core.TakeoverRequest, Arg: "0/3000060"})
	observe(r, time.Now())
	require.Equal(t, []answer{{seq: 5, ok: false, msg: core.Why(core.MasterConnected, core.TakeoverRequested)}}, h.answered())
	answered := time.Now()

	// Superseded: fenced at once, answer or not. Only the shutdown that
	// ends a switchover or a rejoin (FenceStopping) waits for the answer
	// to leave; TestSwitchoverUnderLoad (test/) fails without that wait.
	deliver(r, ct.SupersededProbe())
	require.Equal(t, core.MasterFenced, r.core.State())
	r.applyFence()
	require.Less(t, time.Since(answered), 100*time.Millisecond, "the test was too slow to tell (the core's answerGrace)")
	require.Equal(t, []core.Fence{core.FenceFenced}, h.fenceCalls())
}

func TestAsciiOnly(t *testing.T) {
	require.Equal(t, `plain text (0/3000060)`, asciiOnly("plain text (0/3000060)"))
	require.Equal(t, `FATAL: \u00E9chec de l'authentification \u2013 \u65E5`, asciiOnly("FATAL: échec de l'authentification – 日"))
}
