package keeper

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"

	"github.com/pg-keeper/pg_keeper/keeper/command"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/publish"
	"github.com/stretchr/testify/require"
)

// The runner's side of pg_keeper.events(): what it records, and how the
// saved history comes back at start.

// hostEvents is what pg_keeper.events() shows now.
func hostEvents(h *fakeHost) [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.events...)
}

// hostRecords is hostEvents decoded, each checked against the size of a slot.
func hostRecords(t *testing.T, h *fakeHost) []publish.Record {
	t.Helper()
	var recs []publish.Record
	for _, b := range hostEvents(h) {
		require.Less(t, len(b), publish.EventMax)
		recs = append(recs, decodeRecord(t, b))
	}
	return recs
}

// recordsOf keeps the records of one kind.
func recordsOf(recs []publish.Record, kind string) []publish.Record {
	var out []publish.Record
	for _, r := range recs {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

// nodeName is how a runner on port names itself in the events.
func nodeName(t *testing.T, port int) string {
	t.Helper()
	host, err := os.Hostname()
	require.NoError(t, err)
	return host + ":" + strconv.Itoa(port)
}

// A restarted keeper shows the events it saved, not the partner's that
// came with a copy of its data directory, nor what shared memory held.
func TestRunnerRestoresItsOwnSavedEvents(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.Port = 5432
	me := nodeName(t, 5432)
	mine1, mine2 := eventLine(me, "one"), eventLine(me, "two")
	writeHistory(t, raw.DataDir, mine1, eventLine("partner.example:5432", "the partner's"), []byte("{damaged"), mine2)

	h := newFakeHost(raw)
	h.events = [][]byte{[]byte(`{"stale":true}`)} // left by the previous worker
	r, closeRunner := openRunner(t, h)
	require.Equal(t, me, r.node)

	events := hostEvents(h)
	require.Len(t, events, 3)
	require.Equal(t, [][]byte{mine1, mine2}, events[:2])
	start := decodeRecord(t, events[2])
	logs, _ := h.snapshot()
	// A master starts unconfirmed.
	require.Equal(t, publish.Record{At: start.At, Node: me, Kind: publish.KindStart, To: "master:unconfirmed",
		Detail: strings.TrimPrefix(logs[0].Msg, "pg_keeper: ")}, start)
	require.WithinDuration(t, time.Now(), start.At, 5*time.Second)

	closeRunner()
	require.Equal(t, events, readHistory(t, raw.DataDir), "the file holds what pg_keeper.events() shows")
}

func TestRunnerWithUnreadableHistoryStillStarts(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	require.NoError(t, os.Mkdir(filepath.Join(raw.DataDir, publish.HistoryFile), 0o700))
	h := newFakeHost(raw)
	r := newTestRunner(t, h)
	logs, _ := h.snapshot()
	require.Equal(t, core.Warning, logs[0].Level)
	require.True(t, strings.HasPrefix(logs[0].Msg, "pg_keeper: could not read the saved events: read "), logs[0].Msg)
	require.True(t, strings.HasPrefix(logs[1].Msg, "pg_keeper: started in master mode: "), logs[1].Msg)
	require.Equal(t, []string{publish.KindStart}, kinds(hostRecords(t, h)))
	require.Equal(t, core.MasterUnconfirmed, r.core.State())
	// Nor can the start record be saved there: said through the main loop.
	n := logCount(h)
	awaitMessage(t, r)
	logs = logsSince(h, n)
	require.Len(t, logs, 1)
	require.Equal(t, core.Warning, logs[0].Level)
	require.True(t, strings.HasPrefix(logs[0].Msg, "pg_keeper: could not save an event in "+
		filepath.Join(raw.DataDir, publish.HistoryFile)+": "), logs[0].Msg)
}

func TestRunnerWithoutDataDirRecordsInMemoryOnly(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.DataDir = ""
	h := newFakeHost(raw)
	r := newTestRunner(t, h)
	require.Nil(t, r.hist)
	// The standby's answer confirms this master and opens the fence.
	deliver(r, okWith(standbyFacts))
	require.Equal(t, []string{publish.KindStart, publish.KindTransition, publish.KindAction}, kinds(hostRecords(t, h)))
}

func kinds(recs []publish.Record) []string {
	var ks []string
	for _, r := range recs {
		ks = append(ks, r.Kind)
	}
	return ks
}

// A run records its start, each change of state and its stop, in
// pg_keeper.events() and in the file; the next start shows them again.
func TestRunRecordsStartTransitionsAndStop(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, fakepg.FactsRow(true, "7300000000000000001", fakepg.StartText, false, "-1", "0")...)
	raw := runRaw(t, srv.Port, fakepg.ClosedPort(t))
	raw.SystemID, raw.StartTime = 7300000000000000001, t0
	raw.Port = 5433
	me := nodeName(t, 5433)
	h := newFakeHost(raw)
	done := startRun(t, h)
	waitForLog(t, h, func(l core.LogLine) bool { return l == info("pg_keeper: connected to standby") })
	require.Equal(t, 0, stopAndWait(t, h, done))

	events := hostEvents(h)
	recs := hostRecords(t, h)
	require.Len(t, recs, 5)
	for i, rec := range recs {
		require.Equal(t, me, rec.Node)
		require.False(t, rec.At.IsZero())
		if i > 0 {
			require.False(t, rec.At.Before(recs[i-1].At), "in order")
		}
	}
	logs, _ := h.snapshot()
	// Started unconfirmed; the first good heartbeat confirms this server
	// and opens the fence, the next one finds the standby connected.
	require.Equal(t, publish.Record{At: recs[0].At, Node: me, Kind: publish.KindStart, To: "master:unconfirmed",
		Detail: strings.TrimPrefix(logs[0].Msg, "pg_keeper: ")}, recs[0])
	require.Equal(t, publish.Record{At: recs[1].At, Node: me, Kind: publish.KindTransition, From: "master:unconfirmed", To: "master:ready",
		Trigger: "confirmed", Detail: core.Why(core.MasterUnconfirmed, core.Confirmed) + " (the partner answered as a standby)"}, recs[1])
	require.Equal(t, publish.Record{At: recs[2].At, Node: me, Kind: publish.KindAction, Action: "open-fence", OK: publish.Ptr(true),
		Detail: "writes accepted"}, recs[2])
	require.Equal(t, publish.Record{At: recs[3].At, Node: me, Kind: publish.KindTransition, From: "master:ready", To: "master:connected",
		Trigger: "partner-up", Detail: "connected to standby"}, recs[3])
	require.Equal(t, publish.Record{At: recs[4].At, Node: me, Kind: publish.KindStop, From: "master:connected",
		Detail: "the server is stopping"}, recs[4])
	// Run waited for the writes before it returned.
	require.Equal(t, events, readHistory(t, raw.DataDir))

	// The server restarts: the new worker shows the old events first.
	h2 := newFakeHost(raw)
	h2.events = [][]byte{[]byte(`{"stale":true}`)}
	newTestRunner(t, h2)
	again := hostEvents(h2)
	require.Len(t, again, 6)
	require.Equal(t, events, again[:5])
	require.Equal(t, publish.KindStart, decodeRecord(t, again[5]).Kind)
}

// How promotions, switches and commands that ended are recorded.
func TestRunnerActionDoneRecords(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.Port = 5432
	me := nodeName(t, 5432)
	h := newFakeHost(raw)
	r := newTestRunner(t, h)
	at := t0.Add(time.Minute)
	for _, tc := range []struct {
		name    string
		started time.Duration // how long before the result the action started; 0: not known
		in      core.Input
		m       message // what came with it
		want    publish.Record
	}{
		{"promoted", 1500 * time.Millisecond,
			core.Input{Kind: core.ActionInput, At: at, Action: core.Promote, Detail: "pg_promote() took 1400 ms"}, message{timeline: 3},
			publish.Record{Kind: publish.KindAction, Action: "promote", OK: publish.Ptr(true), DurationMS: publish.Ptr(int64(1500)),
				Detail: "pg_promote() took 1400 ms; now on timeline 3"}},
		{"promotion failed", 70 * time.Second,
			core.Input{Kind: core.ActionInput, At: at, Action: core.Promote, Err: "could not connect"}, message{timeline: 3},
			publish.Record{Kind: publish.KindAction, Action: "promote", OK: publish.Ptr(false), DurationMS: publish.Ptr(int64(70_000)), Detail: "could not connect"}},
		{"switched", 20 * time.Millisecond,
			core.Input{Kind: core.ActionInput, At: at, Action: core.SwitchAsync, Detail: "synchronous_standby_names was 'node2', now ''"}, message{},
			publish.Record{Kind: publish.KindAction, Action: "switch-async", OK: publish.Ptr(true), DurationMS: publish.Ptr(int64(20)),
				Detail: "synchronous_standby_names was 'node2', now ''"}},
		{"restore failed, start unknown", 0,
			core.Input{Kind: core.ActionInput, At: at, Action: core.RestoreSync, Detail: "ignored", Err: "ALTER SYSTEM failed"}, message{},
			publish.Record{Kind: publish.KindAction, Action: "restore-sync", OK: publish.Ptr(false), Detail: "ALTER SYSTEM failed"}},
		{"after_command succeeded", time.Second,
			core.Input{Kind: core.ActionInput, At: at, Action: core.RunAfterCommand, Detail: "exit status 0 after 42 ms"},
			message{command: &command.Result{Duration: 42 * time.Millisecond}},
			publish.Record{Kind: publish.KindAfterCmd, OK: publish.Ptr(true), ExitStatus: publish.Ptr(0), DurationMS: publish.Ptr(int64(42)),
				Detail: "exit status 0 after 42 ms"}},
		{"after_command failed", 0,
			core.Input{Kind: core.ActionInput, At: at, Action: core.RunAfterCommand, Err: "exit status 2 after 7 ms"},
			message{command: &command.Result{Duration: 7 * time.Millisecond, Err: errors.New("exit status 2"), ExitCode: 2}},
			publish.Record{Kind: publish.KindAfterCmd, OK: publish.Ptr(false), ExitStatus: publish.Ptr(2), DurationMS: publish.Ptr(int64(7)),
				Detail: "exit status 2 after 7 ms"}},
		{"after_command killed", 0,
			core.Input{Kind: core.ActionInput, At: at, Action: core.RunAfterCommand},
			message{command: &command.Result{Duration: time.Minute, Err: errors.New("killed after the timeout of 1m0s"), ExitCode: -1}},
			publish.Record{Kind: publish.KindAfterCmd, OK: publish.Ptr(false), DurationMS: publish.Ptr(int64(60_000)),
				Detail: "killed after the timeout of 1m0s after 60000 ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.started > 0 {
				r.actionSince = at.Add(-tc.started)
			}
			tc.m.input = &tc.in
			r.actionDone(tc.in, tc.m)
			events := hostEvents(h)
			got := decodeRecord(t, events[len(events)-1])
			require.True(t, got.At.Equal(at), "the time of the result: %s", got.At)
			tc.want.At, tc.want.Node = got.At, me
			require.Equal(t, tc.want, got)
			if tc.in.Action != core.RunAfterCommand {
				require.True(t, r.actionSince.IsZero(), "a start is used once")
			}
		})
	}
}

// A notice is the runner's own: the core never sees it.
func TestRunnerNoticeIsLoggedNotStepped(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	r := newTestRunner(t, h)
	deliver(r, failProbe(false))
	n := logCount(h)
	r.notice(errors.New("could not save an event: disk full"))
	awaitMessage(t, r)
	require.Equal(t, []core.LogLine{warn("pg_keeper: could not save an event: disk full")}, logsSince(h, n))
	require.Equal(t, core.MasterUnconfirmed, r.core.State())
	require.Equal(t, 1, r.core.Failures())
}

// notice never blocks: with the main loop far behind, the notice is dropped.
func TestRunnerNoticeDropsWhenTheLoopIsBehind(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	r := newTestRunner(t, h)
	for range cap(r.inbox) {
		r.notice(errors.New("queued"))
	}
	finished := make(chan struct{})
	go func() {
		r.notice(errors.New("dropped"))
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("notice blocked")
	}
	n := logCount(h)
	r.handleMessages()
	logs := logsSince(h, n)
	require.Len(t, logs, cap(r.inbox))
	for _, l := range logs {
		require.Equal(t, warn("pg_keeper: queued"), l)
	}
}

// A history that cannot be written is said in the server log, through the
// main loop, and the keeper goes on.
func TestRunnerHistoryWriteErrorIsLogged(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.DataDir = filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.Mkdir(raw.DataDir, 0o700))
	h := confirmedHost(raw) // one transition, no confirmation
	r := newTestRunner(t, h)
	waitFor(t, "the start record on disk", func() bool {
		data, err := os.ReadFile(filepath.Join(raw.DataDir, publish.HistoryFile))
		return err == nil && strings.Count(string(data), "\n") == 1
	})
	require.NoError(t, os.RemoveAll(raw.DataDir))

	n := logCount(h)
	deliver(r, okWith(standbyFacts))
	require.Equal(t, core.MasterConnected, r.core.State())
	awaitMessage(t, r)
	path := filepath.Join(raw.DataDir, publish.HistoryFile)
	require.Equal(t, []core.LogLine{
		info("pg_keeper: connected to standby"),
		warn("pg_keeper: could not save an event in " + path + ": open " + path + ": no such file or directory"),
	}, logsSince(h, n))
	require.Equal(t, []string{publish.KindStart, publish.KindTransition}, kinds(hostRecords(t, h)), "pg_keeper.events() has it all the same")
}
