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
	"github.com/pg-keeper/pg_keeper/keeper/internal/testproc"
	"github.com/pg-keeper/pg_keeper/keeper/publish"
	"github.com/stretchr/testify/require"
)

// The state-change command: its environment, the queue that runs it one
// change at a time, and how its end is logged and recorded.

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// hookRaw are settings with a partner and a local server reached over the
// network, as on two machines.
func hookRaw(t *testing.T) RawSettings {
	raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
	raw.Port = 5433
	raw.PartnerConninfo = "host=partner.example port=5434 user=rep password=hunter2 dbname=postgres sslmode=disable"
	raw.MyConninfo = "host=10.0.0.5 port=5433 user=x dbname=postgres sslmode=disable"
	return raw
}

// hookRunner is a runner on h, whose settings raw are, parsed without an
// error.
func hookRunner(t *testing.T, raw RawSettings, h *fakeHost) *runner {
	t.Helper()
	_, errs := ParseSettings(raw)
	require.Empty(t, errs)
	return newTestRunner(t, h)
}

// The primary is named only where this node knows it: itself while it acts
// as a checked, unthreatened master, its partner while that is a live master.
func TestHookEnvNamesThePrimaryOnlyWhenKnown(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := hookRaw(t)
	h := newFakeHost(raw)
	h.timeline = 4
	r := hookRunner(t, raw, h)
	const partner, self = "partner.example:5434", "10.0.0.5:5433"
	primary := map[core.State]string{
		core.StandbyConnected:     partner,
		core.StandbyHeartbeatLost: partner, // heartbeats fail, replication from it streams
		core.MasterConnected:      self,
		core.MasterHeartbeatLost:  self,
		core.MasterSwitching:      self,
		core.MasterAsync:          self,
		core.MasterRestoring:      self,
		core.MasterHandingOver:    self,    // checks and checkpoints while writes go on
		core.MasterRejoining:      partner, // superseded: the partner is the new primary
		// Not StandbyReady (never reached), StandbyPromoting (about to be
		// the primary itself), StandbyNotPromoting (the master is lost),
		// MasterReady (not checked yet), MasterKeepingSync (the standby may be
		// taking over), MasterFenced (replaced), MasterSwitchingOver (writes
		// refused), MasterHandedOver (stopping), StandbyTakingOver (the
		// master is stopping) nor StandbyTakeoverPromoting.
	}
	for s := range core.NumStates {
		t.Run(s.String(), func(t *testing.T) {
			// As the core makes it: the primary the new state knows.
			env := envMap(r.hookEnv(&core.Change{From: core.StandbyReady, To: s, On: core.PartnerUp, Reason: "why", Primary: s.KnowsPrimary()}))
			host, port, _ := strings.Cut(primary[s], ":")
			require.Equal(t, host, env["PG_KEEPER_PRIMARY_HOST"])
			require.Equal(t, port, env["PG_KEEPER_PRIMARY_PORT"])
			_, hasHost := env["PG_KEEPER_PRIMARY_HOST"]
			_, hasPort := env["PG_KEEPER_PRIMARY_PORT"]
			require.Equal(t, primary[s] != "", hasHost, "set or absent, never empty")
			require.Equal(t, primary[s] != "", hasPort)
			require.Equal(t, s.Mode().String(), env["PG_KEEPER_MODE"])
			wantTimeline := "0"
			if s.Mode() == core.MasterMode {
				wantTimeline = "4"
			}
			require.Equal(t, wantTimeline, env["PG_KEEPER_TIMELINE"])
		})
	}
	masterStates := 0
	for s := range core.NumStates {
		if s.Mode() == core.MasterMode {
			masterStates++
		}
	}
	require.Equal(t, masterStates, h.timelineCalls(), "the timeline is asked in master mode only")
}

func TestHookEnv(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := hookRaw(t)
	h := newFakeHost(raw)
	r := hookRunner(t, raw, h)
	hostname, err := os.Hostname()
	require.NoError(t, err)
	require.Equal(t, []string{
		"PG_KEEPER_EVENT=state-change",
		"PG_KEEPER_NODE=" + hostname,
		"PG_KEEPER_PORT=5433",
		"PG_KEEPER_DATA_DIR=" + raw.DataDir,
		"PG_KEEPER_MODE=standby",
		"PG_KEEPER_OLD_STATE=standby:heartbeat-lost",
		"PG_KEEPER_NEW_STATE=standby:connected",
		"PG_KEEPER_TRIGGER=partner-up",
		"PG_KEEPER_REASON=heartbeat to master restored",
		"PG_KEEPER_PARTNER=host=partner.example port=5434 user=rep password=******** dbname=postgres sslmode=disable",
		"PG_KEEPER_PRIMARY_HOST=partner.example",
		"PG_KEEPER_PRIMARY_PORT=5434",
		"PG_KEEPER_TIMELINE=0",
	}, r.hookEnv(&core.Change{From: core.StandbyHeartbeatLost, To: core.StandbyConnected, On: core.PartnerUp,
		Reason: "heartbeat to master restored", Primary: core.PrimaryPartner}))

	// A timeline that cannot be read is 0, as on a standby.
	h.set(func(h *fakeHost) { h.timeline, h.timelineErr = 9, errors.New("no answer") })
	env := envMap(r.hookEnv(&core.Change{From: core.MasterReady, To: core.MasterConnected, On: core.PartnerUp, Primary: core.PrimarySelf}))
	require.Equal(t, "0", env["PG_KEEPER_TIMELINE"])
	require.Equal(t, "10.0.0.5", env["PG_KEEPER_PRIMARY_HOST"])

	// The primary named is the one the core says, not one the runner
	// infers from the new state.
	env = envMap(r.hookEnv(&core.Change{From: core.MasterReady, To: core.MasterConnected, On: core.PartnerUp}))
	require.NotContains(t, env, "PG_KEEPER_PRIMARY_HOST")
	require.NotContains(t, env, "PG_KEEPER_PRIMARY_PORT")
	env = envMap(r.hookEnv(&core.Change{From: core.StandbyReady, To: core.StandbyConnected, On: core.PartnerUp, Primary: core.PrimarySelf}))
	require.Equal(t, "10.0.0.5", env["PG_KEEPER_PRIMARY_HOST"])
	require.Equal(t, "5433", env["PG_KEEPER_PRIMARY_PORT"])
}

// Without a usable partner_conninfo a standby cannot name its master.
func TestHookEnvWithoutPartner(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := hookRaw(t)
	raw.PartnerConninfo = "port=notaport"
	r := newTestRunner(t, newFakeHost(raw))
	require.Nil(t, r.settings.Partner)
	env := envMap(r.hookEnv(&core.Change{From: core.StandbyReady, To: core.StandbyConnected, On: core.PartnerUp, Primary: core.PrimaryPartner}))
	require.NotContains(t, env, "PG_KEEPER_PRIMARY_HOST")
	require.NotContains(t, env, "PG_KEEPER_PRIMARY_PORT")
}

// This node is named by my_conninfo's host when others can reach it there,
// by the machine's name when my_conninfo goes through a socket or localhost.
func TestSelfHost(t *testing.T) {
	fakepg.CleanEnv(t)
	for _, tc := range []struct {
		myConninfo, socketDirs, want string
	}{
		{"host=10.0.0.5 port=5433", "", "10.0.0.5"},
		{"host=db1.example.com", "", "db1.example.com"},
		{"postgres://db1.example.com:5433/postgres", "", "db1.example.com"},
		{"host=/var/run/postgresql", "", "machine"},
		{"host=localhost", "", "machine"},
		{"", "/tmp, /var/run/postgresql", "machine"}, // the default: the first socket
		{"", "", "machine"},                          // the default without sockets: localhost
		{"port=notaport", "", "machine"},             // unusable: Local is nil
	} {
		t.Run(tc.myConninfo+"|"+tc.socketDirs, func(t *testing.T) {
			raw := hookRaw(t)
			raw.MyConninfo, raw.SocketDirs = tc.myConninfo, tc.socketDirs
			r := newTestRunner(t, newFakeHost(raw))
			require.Equal(t, tc.want, r.selfHost("machine"))
		})
	}
}

func TestCommandRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  command.Result
		want publish.Record
		keys []string
	}{
		{"success", command.Result{Duration: 12 * time.Millisecond},
			publish.Record{Kind: publish.KindStateChange, OK: publish.Ptr(true), ExitStatus: publish.Ptr(0), DurationMS: publish.Ptr(int64(12)),
				Detail: "exit status 0 after 12 ms"},
			[]string{"at", "detail", "duration_ms", "exit_status", "kind", "node", "ok"}},
		{"failure", command.Result{Duration: 1500 * time.Millisecond, Err: errors.New("exit status 3"), ExitCode: 3},
			publish.Record{Kind: publish.KindStateChange, OK: publish.Ptr(false), ExitStatus: publish.Ptr(3), DurationMS: publish.Ptr(int64(1500)),
				Detail: "exit status 3 after 1500 ms"},
			[]string{"at", "detail", "duration_ms", "exit_status", "kind", "node", "ok"}},
		{"killed", command.Result{Duration: time.Second, Err: errors.New("killed after the timeout of 1s"), ExitCode: -1},
			publish.Record{Kind: publish.KindStateChange, OK: publish.Ptr(false), DurationMS: publish.Ptr(int64(1000)),
				Detail: "killed after the timeout of 1s after 1000 ms"},
			[]string{"at", "detail", "duration_ms", "kind", "node", "ok"}}, // no exit status
		{"not started", command.Result{Err: errors.New("fork/exec /bin/sh: no such file or directory"), ExitCode: -1},
			publish.Record{Kind: publish.KindStateChange, OK: publish.Ptr(false), DurationMS: publish.Ptr(int64(0)),
				Detail: "fork/exec /bin/sh: no such file or directory after 0 ms"},
			[]string{"at", "detail", "duration_ms", "kind", "node", "ok"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := commandRecord(publish.KindStateChange, tc.res)
			require.Equal(t, tc.want, rec)
			require.Equal(t, tc.keys, jsonKeys(t, publish.EncodeRecord(rec)))
		})
	}
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
		if pollWake(t, r, 10*time.Millisecond) > 0 {
			drain(r.wakeR)
		}
		r.handleMessages()
		r.syncFence()
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

	deliver(r, okProbe(), aliveFailure(core.FailRefused), aliveFailure(core.FailRefused), okProbe(), recoveryEnded(),
		okWith(standbyFacts))
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
		want = append(want, info("pg_keeper: state_change_command: ran on "+c.trigger),
			info("pg_keeper: state_change_command finished for "+c.change+": exit status 0 after N ms"))
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
	deliver(r, okProbe())
	handleUntil(t, r, "the command", func() bool { return len(hookLines(h)) == 2 })
	require.Equal(t, []core.LogLine{
		info("pg_keeper: state_change_command: oops"),
		warn("pg_keeper: state_change_command failed for standby:ready -> standby:connected: exit status 3 after N ms"),
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
	deliver(r, okProbe(), recoveryEnded())
	require.Nil(t, r.hooks, "no goroutine for a command that is not set")
	require.Equal(t, []string{publish.KindStart, publish.KindTransition, publish.KindTransition}, kinds(hostRecords(t, h)))
	require.Empty(t, hookLines(h))
}

// A command that hangs holds back the next ones, up to hookQueue of them;
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
			deliver(r, okWith(standbyFacts))
		}
	}
	change(1)
	waitFor(t, "the first command", func() bool {
		_, err := os.Stat(filepath.Join(raw.DataDir, "running"))
		return err == nil
	})
	// The first runs; hookQueue more wait; the three oldest waiting (2, 3
	// and 4) are dropped for the newest: a pooler wants the latest.
	const dropped = 3
	for i := 2; i <= 1+hookQueue+dropped; i++ {
		change(i)
	}
	var warnings []core.LogLine
	for _, l := range logsSince(h, 0) {
		if strings.Contains(l.Msg, "changes behind") {
			warnings = append(warnings, l)
		}
	}
	require.Equal(t, []core.LogLine{
		warn("pg_keeper: state_change_command is 32 changes behind: not running it for master:connected -> master:heartbeat-lost"),
		warn("pg_keeper: state_change_command is 32 changes behind: not running it for master:heartbeat-lost -> master:connected"),
		warn("pg_keeper: state_change_command is 32 changes behind: not running it for master:connected -> master:heartbeat-lost"),
	}, warnings)
	require.Len(t, recordsOf(hostRecords(t, h), publish.KindTransition), 1+hookQueue+dropped, "every change is recorded all the same")

	require.NoError(t, os.WriteFile(filepath.Join(raw.DataDir, "go"), nil, 0o600))
	handleUntil(t, r, "the queued commands", func() bool {
		return countLogs(h, "pg_keeper: state_change_command finished for ") == 1+hookQueue
	})
	data, err := os.ReadFile(filepath.Join(raw.DataDir, "changes"))
	require.NoError(t, err)
	want := "1\n"
	for i := 2 + dropped; i <= 1+hookQueue+dropped; i++ {
		want += strconv.Itoa(i) + "\n"
	}
	require.Equal(t, want, string(data), "the first change and the newest hookQueue, in order")
}

// TestRunStateChangeCommandTimeout runs the loop with a command that hangs:
// it is killed after state_change_command_timeout, and heartbeats go on
// meanwhile.
func TestRunStateChangeCommandTimeout(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, fakepg.FactsRow(true, "7300000000000000001", fakepg.StartText, false, "-1", "0")...)
	raw := runRaw(t, srv.Port, fakepg.ClosedPort(t))
	raw.SystemID, raw.StartTime = 7300000000000000001, t0
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
	require.Equal(t, []core.LogLine{info("pg_keeper: state_change_command: started")}, hookLines(h)[:1])
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
	deliver(r, okProbe())
	handleUntil(t, r, "the command", func() bool { return len(hookLines(h)) == 1 })
	require.Contains(t, hookLines(h)[0].Msg, "pg_keeper.state_change_command_timeout")
	require.NotContains(t, hookLines(h)[0].Msg, "after_command_timeout")
}
