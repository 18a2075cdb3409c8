package keeper

import (
	ct "github.com/pg-keeper/pg_keeper/keeper/core/coretest"
	"github.com/pg-keeper/pg_keeper/keeper/executor"
	"github.com/pg-keeper/pg_keeper/keeper/settings"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"

	"github.com/pg-keeper/pg_keeper/keeper/command"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/internal/testproc"
	"github.com/pg-keeper/pg_keeper/keeper/publish"
	"github.com/stretchr/testify/require"
)

// The state-change command: its environment, the queue that runs it one
// change at a time, and how its end is logged and recorded.

// hookRaw are settings with a partner and a local server reached over the
// network, as on two machines.
func hookRaw(t *testing.T) settings.Raw {
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.Port = 5433
	raw.PartnerConninfo = "host=partner.example port=5434 user=rep password=hunter2 dbname=postgres sslmode=disable"
	raw.MyConninfo = "host=10.0.0.5 port=5433 user=x dbname=postgres sslmode=disable"
	return raw
}

// ExitCode is the command's own exit status, -1 when it has none.
func TestRunCommandExitCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cmdline string
		env     []string
		want    int
		err     string
	}{
		{"success", "true", nil, 0, ""},
		{"failure", "exit 3", nil, 3, "exit status 3"},
		{"killed by a signal", "kill -9 $$", nil, -1, "signal: killed"},
		{"killed by the timeout", "sleep 30", nil, -1,
			"killed after the timeout of 100ms (pg_keeper.after_command_timeout)"},
		{"not started", "true", []string{"BAD=a\x00b"}, -1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := command.Run(tc.cmdline, 100*time.Millisecond, "pg_keeper.after_command_timeout", tc.env)
			require.Equal(t, tc.want, res.ExitCode)
			switch {
			case tc.name == "not started":
				require.Error(t, res.Err)
			case tc.err == "":
				require.NoError(t, res.Err)
			default:
				require.EqualError(t, res.Err, tc.err)
			}
		})
	}
}

// handleUntil handles the runner's messages as its loop would, until cond.
func handleUntil(t *testing.T, r *runner, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		pollWake(t, r, 10*time.Millisecond)
		handleMessages(r)
		r.applyFence()
	}
}

// countLogs counts the log lines that start with prefix.
func countLogs(h *fakeHost, prefix string) int {
	n := 0
	for _, l := range logsSince(h, 0) {
		if strings.HasPrefix(l.Msg, prefix) {
			n++
		}
	}
	return n
}

// hookLines are the log lines about the state-change command, with the
// durations replaced by N.
func hookLines(h *fakeHost) []core.LogLine {
	var out []core.LogLine
	for _, l := range logsSince(h, 0) {
		if strings.HasPrefix(l.Msg, "pg_keeper: state_change_command") {
			l.Msg = msRe.ReplaceAllString(l.Msg, "after N ms")
			out = append(out, l)
		}
	}
	return out
}

// A run of changes runs the command once per change, in order, one at a
// time: two runs racing could leave a pooler on the wrong server.
func TestStateChangeCommandRunsOncePerChangeInOrder(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := hookRaw(t)
	// Each run writes a line, sleeps, and writes another: runs that
	// overlapped would interleave their lines.
	raw.StateChangeCommand = `f="$PG_KEEPER_DATA_DIR/changes"
		echo "begin $PG_KEEPER_OLD_STATE>$PG_KEEPER_NEW_STATE $PG_KEEPER_PRIMARY_HOST:$PG_KEEPER_PRIMARY_PORT tl=$PG_KEEPER_TIMELINE" >>"$f"
		sleep 0.02
		echo "end $PG_KEEPER_NEW_STATE" >>"$f"
		echo "ran on $PG_KEEPER_TRIGGER"`
	h := newFakeHost(raw)
	h.inRecovery = true
	h.timeline = 2
	r := newTestRunner(t, h)

	deliver(r, ct.OKProbe(), aliveFailure(core.FailRefused), aliveFailure(core.FailRefused), ct.OKProbe(), ct.RecoveryEnded(),
		ct.OKWith(ct.StandbyFacts))
	require.Equal(t, core.MasterConnected, r.core.State())
	handleUntil(t, r, "five commands", func() bool {
		return countLogs(h, "pg_keeper: state_change_command finished for ") == 5
	})

	data, err := os.ReadFile(filepath.Join(raw.DataDir, "changes"))
	require.NoError(t, err)
	require.Equal(t, `begin standby:ready>standby:connected partner.example:5434 tl=0
end standby:connected
begin standby:connected>standby:heartbeat-lost partner.example:5434 tl=0
end standby:heartbeat-lost
begin standby:heartbeat-lost>standby:connected partner.example:5434 tl=0
end standby:connected
begin standby:connected>master:ready : tl=2
end master:ready
begin master:ready>master:connected 10.0.0.5:5433 tl=2
end master:connected
`, string(data))

	var want []core.LogLine
	for _, c := range []struct{ change, trigger string }{
		{"standby:ready -> standby:connected", "partner-up"},
		{"standby:connected -> standby:heartbeat-lost", "heartbeat-lost"},
		{"standby:heartbeat-lost -> standby:connected", "partner-up"},
		{"standby:connected -> master:ready", "recovery-ended"},
		{"master:ready -> master:connected", "partner-up"},
	} {
		want = append(want, ct.Info("pg_keeper: state_change_command: ran on "+c.trigger),
			ct.Info("pg_keeper: state_change_command finished for "+c.change+": exit status 0 after N ms"))
	}
	require.Equal(t, want, hookLines(h))

	// Each change is recorded, and after it how its command ended.
	recs := hostRecords(t, h)
	var changes, commands []string
	for _, rec := range recs {
		switch rec.Kind {
		case publish.KindTransition:
			changes = append(changes, rec.From+" -> "+rec.To)
		case publish.KindStateChange:
			require.Equal(t, publish.Ptr(true), rec.OK)
			require.Equal(t, publish.Ptr(0), rec.ExitStatus)
			require.NotNil(t, rec.DurationMS)
			require.GreaterOrEqual(t, *rec.DurationMS, int64(20), "the command slept 20 ms")
			change, rest, ok := strings.Cut(rec.Detail, ": ")
			require.True(t, ok, rec.Detail)
			require.Equal(t, "exit status 0 after "+strconv.FormatInt(*rec.DurationMS, 10)+" ms", rest)
			require.Contains(t, changes, change, "recorded after its change")
			commands = append(commands, change)
		}
	}
	require.Len(t, changes, 5)
	require.Equal(t, changes, commands)
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Nil(t, h.strayCalls, "the host is used from the runner's goroutine only")
}

func TestStateChangeCommandFailureIsAWarning(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := hookRaw(t)
	raw.StateChangeCommand = "echo oops >&2; exit 3"
	h := newFakeHost(raw)
	h.inRecovery = true
	r := newTestRunner(t, h)
	deliver(r, ct.OKProbe())
	handleUntil(t, r, "the command", func() bool { return len(hookLines(h)) == 2 })
	require.Equal(t, []core.LogLine{
		ct.Info("pg_keeper: state_change_command: oops"),
		ct.Warn("pg_keeper: state_change_command failed for standby:ready -> standby:connected: exit status 3 after N ms"),
	}, hookLines(h))
	recs := recordsOf(hostRecords(t, h), publish.KindStateChange)
	require.Len(t, recs, 1)
	require.Equal(t, publish.Ptr(false), recs[0].OK)
	require.Equal(t, publish.Ptr(3), recs[0].ExitStatus)
	require.Equal(t, "standby:ready -> standby:connected: exit status 3 after N ms", msRe.ReplaceAllString(recs[0].Detail, "after N ms"))
	require.Equal(t, core.StandbyConnected, r.core.State(), "a failed command changes nothing")
}

func TestStateChangeCommandNotSet(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := hookRaw(t)
	h := newFakeHost(raw)
	h.inRecovery = true
	r := newTestRunner(t, h)
	deliver(r, ct.OKProbe(), ct.RecoveryEnded())
	require.Equal(t, []string{publish.KindStart, publish.KindTransition, publish.KindTransition}, kinds(hostRecords(t, h)))
	require.Empty(t, hookLines(h))
}

// A command that hangs holds back the next ones, up to executor.HookQueue of them;
// later changes are not run, and said so, rather than blocking the keeper.
func TestStateChangeCommandQueueIsBounded(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := hookRaw(t)
	raw.KeepalivesCount = 1 // every heartbeat changes the state
	// The command waits for the test to let it go; each says which change
	// it is through the timeline the test sets before the change.
	raw.StateChangeCommand = `touch "$PG_KEEPER_DATA_DIR/running"
		while [ ! -e "$PG_KEEPER_DATA_DIR/go" ]; do sleep 0.01; done
		echo "$PG_KEEPER_TIMELINE" >>"$PG_KEEPER_DATA_DIR/changes"`
	h := confirmedHost(raw) // each good heartbeat a change: no confirmation first
	r := newTestRunner(t, h)
	change := func(i int) {
		h.set(func(h *fakeHost) { h.timeline = i })
		if r.core.State() == core.MasterConnected {
			deliver(r, aliveFailure(core.FailRefused))
		} else {
			deliver(r, ct.OKWith(ct.StandbyFacts))
		}
	}
	change(1)
	waitFor(t, "the first command", func() bool {
		_, err := os.Stat(filepath.Join(raw.DataDir, "running"))
		return err == nil
	})
	// The first runs; executor.HookQueue more wait; the three oldest waiting (2, 3
	// and 4) are dropped for the newest: a pooler wants the latest.
	const dropped = 3
	for i := 2; i <= 1+executor.HookQueue+dropped; i++ {
		change(i)
	}
	var warnings []core.LogLine
	for _, l := range logsSince(h, 0) {
		if strings.Contains(l.Msg, "changes behind") {
			warnings = append(warnings, l)
		}
	}
	require.Equal(t, []core.LogLine{
		ct.Warn("pg_keeper: state_change_command is 32 changes behind: not running it for master:connected -> master:heartbeat-lost"),
		ct.Warn("pg_keeper: state_change_command is 32 changes behind: not running it for master:heartbeat-lost -> master:connected"),
		ct.Warn("pg_keeper: state_change_command is 32 changes behind: not running it for master:connected -> master:heartbeat-lost"),
	}, warnings)
	require.Len(t, recordsOf(hostRecords(t, h), publish.KindTransition), 1+executor.HookQueue+dropped, "every change is recorded all the same")

	require.NoError(t, os.WriteFile(filepath.Join(raw.DataDir, "go"), nil, 0o600))
	handleUntil(t, r, "the queued commands", func() bool {
		return countLogs(h, "pg_keeper: state_change_command finished for ") == 1+executor.HookQueue
	})
	data, err := os.ReadFile(filepath.Join(raw.DataDir, "changes"))
	require.NoError(t, err)
	want := "1\n"
	for i := 2 + dropped; i <= 1+executor.HookQueue+dropped; i++ {
		want += strconv.Itoa(i) + "\n"
	}
	require.Equal(t, want, string(data), "the first change and the newest executor.HookQueue, in order")
}

// TestRunStateChangeCommandTimeout runs the loop with a command that hangs:
// it is killed after state_change_command_timeout, and heartbeats go on
// meanwhile.
func TestRunStateChangeCommandTimeout(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, fakepg.FactsRow(true, "7300000000000000001", fakepg.StartText, false, "-1", "0")...)
	raw := runRaw(t, srv.Port, fakepg.ClosedPort(t))
	raw.SystemID, raw.StartTime = 7300000000000000001, ct.T0
	raw.StateChangeCommand = `echo $$ >"$PG_KEEPER_DATA_DIR/pid"; echo started; exec sleep 30`
	raw.StateChangeTimeout = 1
	pidFile := filepath.Join(raw.DataDir, "pid")
	h := confirmedHost(raw) // the first change is then ready -> connected
	done := startRun(t, h)

	waitFor(t, "the command", func() bool {
		b, err := os.ReadFile(pidFile)
		return err == nil && strings.HasSuffix(string(b), "\n")
	})
	heartbeats := len(srv.Received())
	i := waitForLog(t, h, hasPrefix("pg_keeper: state_change_command failed for "))
	// One heartbeat per 50 ms went on while the command hung for a second.
	require.GreaterOrEqual(t, len(srv.Received())-heartbeats, 8)
	require.Equal(t, 0, stopAndWait(t, h, done))

	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	testproc.WaitGone(t, pid)

	logs, _ := h.snapshot()
	require.Equal(t, core.Warning, logs[i].Level)
	require.True(t, strings.HasPrefix(logs[i].Msg,
		"pg_keeper: state_change_command failed for master:ready -> master:connected: killed after the timeout of 1s "), logs[i].Msg)
	require.Equal(t, []core.LogLine{ct.Info("pg_keeper: state_change_command: started")}, hookLines(h)[:1])
	recs := recordsOf(hostRecords(t, h), publish.KindStateChange)
	require.Len(t, recs, 1)
	require.Equal(t, publish.Ptr(false), recs[0].OK)
	require.Nil(t, recs[0].ExitStatus, "killed: no exit status")
	require.NotNil(t, recs[0].DurationMS)
	require.GreaterOrEqual(t, *recs[0].DurationMS, int64(900))
	require.True(t, strings.HasPrefix(recs[0].Detail, "master:ready -> master:connected: killed after the timeout of 1s "), recs[0].Detail)
}

// A state-change command killed by its timeout is reported with the
// setting that killed it, not after_command's.
func TestStateChangeCommandTimeoutNamesItsSetting(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := hookRaw(t)
	raw.StateChangeCommand = "sleep 30"
	h := newFakeHost(raw)
	h.inRecovery = true
	r := newTestRunner(t, h)
	r.settings.StateChangeTimeout = 100 * time.Millisecond // the setting's unit is the second
	deliver(r, ct.OKProbe())
	handleUntil(t, r, "the command", func() bool { return len(hookLines(h)) == 1 })
	require.Contains(t, hookLines(h)[0].Msg, "pg_keeper.state_change_command_timeout")
	require.NotContains(t, hookLines(h)[0].Msg, "after_command_timeout")
}
