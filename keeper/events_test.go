package keeper

import (
	ct "github.com/pg-keeper/pg_keeper/keeper/core/coretest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"

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
	deliver(r, ct.OKWith(ct.StandbyFacts))
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
	raw.SystemID, raw.StartTime = 7300000000000000001, ct.T0
	raw.Port = 5433
	me := nodeName(t, 5433)
	h := newFakeHost(raw)
	done := startRun(t, h)
	waitForLog(t, h, func(l core.LogLine) bool { return l == ct.Info("pg_keeper: connected to standby") })
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

// A result the core took is recorded as it reports it (publish.FromReport
// has the details): a promotion with its new timeline and duration.
func TestRunnerRecordsWhatTheCoreReports(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.Port = 5432
	me := nodeName(t, 5432)
	h := newFakeHost(raw)
	h.inRecovery = true
	r := newTestRunner(t, h)
	r.core.SetThreshold(1)
	deliver(r, ct.OKProbe())
	lost := ct.FailProbe(false)
	lost.At = ct.T0.Add(time.Minute)
	r.step(lost) // promote: the action is left to no goroutine here
	require.Equal(t, core.StandbyPromoting, r.core.State())
	deliver(r, core.Input{Kind: core.ActionInput, At: lost.At.Add(1500 * time.Millisecond), Action: core.Promote,
		Detail: "pg_promote() took 1400 ms", Timeline: 3})
	recs := recordsOf(hostRecords(t, h), publish.KindAction)
	require.Len(t, recs, 1)
	require.Equal(t, publish.Record{At: recs[0].At, Node: me, Kind: publish.KindAction, Action: "promote", OK: publish.Ptr(true),
		DurationMS: publish.Ptr(int64(1500)), Detail: "pg_promote() took 1400 ms; now on timeline 3"}, recs[0])
}

// A goroutine's notice reaches the log through the mailbox, as a warning,
// and changes nothing.
func TestRunnerNoticeIsLogged(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	r := newTestRunner(t, h)
	deliver(r, ct.FailProbe(false))
	n := logCount(h)
	require.True(t, r.box.Offer(core.Input{Kind: core.NoticeInput, At: time.Now(), Detail: "could not save an event: disk full"}))
	awaitMessage(t, r)
	require.Equal(t, []core.LogLine{ct.Warn("pg_keeper: could not save an event: disk full")}, logsSince(h, n))
	require.Equal(t, core.MasterUnconfirmed, r.core.State())
	require.Equal(t, 1, r.core.Failures())
}

// A notice never blocks: with the main loop far behind, it is dropped.
func TestRunnerNoticeDropsWhenTheLoopIsBehind(t *testing.T) {
	fakepg.CleanEnv(t)
	h := newFakeHost(runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t)))
	r := newTestRunner(t, h)
	queued := 0
	for r.box.Offer(core.Input{Kind: core.NoticeInput, Detail: "queued"}) {
		queued++
	}
	require.Greater(t, queued, 0)
	finished := make(chan bool)
	go func() { finished <- r.box.Offer(core.Input{Kind: core.NoticeInput, Detail: "dropped"}) }()
	select {
	case ok := <-finished:
		require.False(t, ok)
	case <-time.After(5 * time.Second):
		t.Fatal("the notice blocked")
	}
	n := logCount(h)
	handleMessages(r)
	logs := logsSince(h, n)
	require.Len(t, logs, queued)
	for _, l := range logs {
		require.Equal(t, ct.Warn("pg_keeper: queued"), l)
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
	deliver(r, ct.OKWith(ct.StandbyFacts))
	require.Equal(t, core.MasterConnected, r.core.State())
	awaitMessage(t, r)
	path := filepath.Join(raw.DataDir, publish.HistoryFile)
	require.Equal(t, []core.LogLine{
		ct.Info("pg_keeper: connected to standby"),
		ct.Warn("pg_keeper: could not save an event in " + path + ": open " + path + ": no such file or directory"),
	}, logsSince(h, n))
	require.Equal(t, []string{publish.KindStart, publish.KindTransition}, kinds(hostRecords(t, h)), "pg_keeper.events() has it all the same")
}
