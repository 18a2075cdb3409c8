package executor

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/action"
	"github.com/pg-keeper/pg_keeper/keeper/command"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"
	"github.com/pg-keeper/pg_keeper/keeper/settings"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// testRaw are settings with a partner and a local server reached over the
// network, as on two machines.
func testRaw(t *testing.T) settings.Raw {
	return settings.Raw{
		Port:             5433,
		PartnerConninfo:  "host=partner.example port=5434 user=rep password=hunter2 dbname=postgres sslmode=disable",
		MyConninfo:       "host=10.0.0.5 port=5433 user=x dbname=postgres sslmode=disable",
		KeepalivesTime:   0.05,
		KeepalivesCount:  2,
		OnPartnerTimeout: "keep_master",
		DataDir:          t.TempDir(),
	}
}

// testEnv is an Env of raw's settings, parsed without an error, whose
// timeline is tl; calls counts the calls of Timeline.
func testEnv(t *testing.T, raw settings.Raw, tl int, tlErr error, calls *int) Env {
	t.Helper()
	s, errs := settings.Parse(raw)
	require.Empty(t, errs)
	return Env{Settings: s, Hostname: "machine", Node: "machine:5433", Tag: "tag",
		Timeline: func() (int, error) {
			if calls != nil {
				*calls++
			}
			return tl, tlErr
		}}
}

func testExecutor(t *testing.T) *Executor {
	t.Helper()
	box, err := NewMailbox()
	require.NoError(t, err)
	e := New(box, func() int { return 0 })
	t.Cleanup(func() { e.Close(); box.Close() })
	return e
}

// await waits for one input in e's mailbox.
func await(t *testing.T, e *Executor) core.Input {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ins := e.box.Drain(); len(ins) > 0 {
			require.Len(t, ins, 1)
			return ins[0]
		}
		require.True(t, time.Now().Before(deadline), "no input within 5s")
		_, _ = unix.Poll([]unix.PollFd{{Fd: int32(e.box.Fd()), Events: unix.POLLIN}}, 10)
	}
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// The primary is named only where this node knows it: itself while it acts
// as a checked, unthreatened master, its partner while that is a live master.
func TestHookEnvNamesThePrimaryOnlyWhenKnown(t *testing.T) {
	fakepg.CleanEnv(t)
	calls := 0
	env := testEnv(t, testRaw(t), 4, nil, &calls)
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
			vars := envMap(hookEnv(&core.Change{From: core.StandbyReady, To: s, On: core.PartnerUp, Reason: "why", Primary: s.KnowsPrimary()}, env))
			host, port, _ := strings.Cut(primary[s], ":")
			require.Equal(t, host, vars["PG_KEEPER_PRIMARY_HOST"])
			require.Equal(t, port, vars["PG_KEEPER_PRIMARY_PORT"])
			_, hasHost := vars["PG_KEEPER_PRIMARY_HOST"]
			_, hasPort := vars["PG_KEEPER_PRIMARY_PORT"]
			require.Equal(t, primary[s] != "", hasHost, "set or absent, never empty")
			require.Equal(t, primary[s] != "", hasPort)
			require.Equal(t, s.Mode().String(), vars["PG_KEEPER_MODE"])
			wantTimeline := "0"
			if s.Mode() == core.MasterMode {
				wantTimeline = "4"
			}
			require.Equal(t, wantTimeline, vars["PG_KEEPER_TIMELINE"])
		})
	}
	masterStates := 0
	for s := range core.NumStates {
		if s.Mode() == core.MasterMode {
			masterStates++
		}
	}
	require.Equal(t, masterStates, calls, "the timeline is asked in master mode only")
}

func TestHookEnv(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := testRaw(t)
	env := testEnv(t, raw, 0, nil, nil)
	require.Equal(t, []string{
		"PG_KEEPER_EVENT=state-change",
		"PG_KEEPER_NODE=machine",
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
	}, hookEnv(&core.Change{From: core.StandbyHeartbeatLost, To: core.StandbyConnected, On: core.PartnerUp,
		Reason: "heartbeat to master restored", Primary: core.PrimaryPartner}, env))

	// A timeline that cannot be read is 0, as on a standby.
	env = testEnv(t, raw, 9, errors.New("no answer"), nil)
	env.Timeline = func() (int, error) { return 0, errors.New("no answer") }
	vars := envMap(hookEnv(&core.Change{From: core.MasterReady, To: core.MasterConnected, On: core.PartnerUp, Primary: core.PrimarySelf}, env))
	require.Equal(t, "0", vars["PG_KEEPER_TIMELINE"])
	require.Equal(t, "10.0.0.5", vars["PG_KEEPER_PRIMARY_HOST"])

	// The primary named is the one the core says, not one inferred from the
	// new state.
	vars = envMap(hookEnv(&core.Change{From: core.MasterReady, To: core.MasterConnected, On: core.PartnerUp}, env))
	require.NotContains(t, vars, "PG_KEEPER_PRIMARY_HOST")
	require.NotContains(t, vars, "PG_KEEPER_PRIMARY_PORT")
	vars = envMap(hookEnv(&core.Change{From: core.StandbyReady, To: core.StandbyConnected, On: core.PartnerUp, Primary: core.PrimarySelf}, env))
	require.Equal(t, "10.0.0.5", vars["PG_KEEPER_PRIMARY_HOST"])
	require.Equal(t, "5433", vars["PG_KEEPER_PRIMARY_PORT"])
}

// Without a usable partner_conninfo a standby cannot name its master.
func TestHookEnvWithoutPartner(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := testRaw(t)
	raw.PartnerConninfo = "port=notaport"
	s, _ := settings.Parse(raw)
	require.False(t, s.Partner.Usable())
	env := Env{Settings: s, Hostname: "machine", Timeline: func() (int, error) { return 0, nil }}
	vars := envMap(hookEnv(&core.Change{From: core.StandbyReady, To: core.StandbyConnected, On: core.PartnerUp, Primary: core.PrimaryPartner}, env))
	require.NotContains(t, vars, "PG_KEEPER_PRIMARY_HOST")
	require.NotContains(t, vars, "PG_KEEPER_PRIMARY_PORT")
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
		{"port=notaport", "", "machine"},             // unusable
	} {
		t.Run(tc.myConninfo+"|"+tc.socketDirs, func(t *testing.T) {
			raw := testRaw(t)
			raw.MyConninfo, raw.SocketDirs = tc.myConninfo, tc.socketDirs
			s, _ := settings.Parse(raw)
			require.Equal(t, tc.want, SelfHost(Env{Settings: s, Hostname: "machine"}))
		})
	}
}

// How a command's end comes back: the outcome in words, the output, the
// exit status (-1 when it has none).
func TestCommandResult(t *testing.T) {
	for _, tc := range []struct {
		name        string
		res         command.Result
		detail, err string
		exit        int
	}{
		{"success", command.Result{Duration: 12 * time.Millisecond, Output: []string{"a"}}, "exit status 0 after 12 ms", "", 0},
		{"failure", command.Result{Duration: 1500 * time.Millisecond, Err: errors.New("exit status 3"), ExitCode: 3},
			"", "exit status 3 after 1500 ms", 3},
		{"killed", command.Result{Duration: time.Second, Err: errors.New("killed after the timeout of 1s"), ExitCode: -1},
			"", "killed after the timeout of 1s after 1000 ms", -1},
		{"not started", command.Result{Err: errors.New("fork/exec /bin/sh: no such file or directory"), ExitCode: -1},
			"", "fork/exec /bin/sh: no such file or directory after 0 ms", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := commandResult(core.RunStateChange, tc.res, "a -> b")
			require.Equal(t, core.ActionInput, in.Kind)
			require.Equal(t, core.RunStateChange, in.Action)
			require.Equal(t, tc.detail, in.Detail)
			require.Equal(t, tc.err, in.Err)
			require.Equal(t, &core.CommandOutcome{Lines: tc.res.Output, Duration: tc.res.Duration, ExitStatus: tc.exit, For: "a -> b"}, in.Command)
		})
	}
}

// Only the program of a command is logged: fence agents take passwords as
// arguments.
func TestCommandNameForTheLog(t *testing.T) {
	for cmdline, want := range map[string]string{
		"":                                    "",
		"   ":                                 "",
		"/usr/local/bin/stonith":              "/usr/local/bin/stonith",
		"  /usr/local/bin/stonith  ":          "/usr/local/bin/stonith",
		"fence_ipmilan -a 10.0.0.1 -p s3cr3t": "fence_ipmilan ...",
		"fence_ipmilan\t-p\ts3cr3t":           "fence_ipmilan ...",
		"echo a\necho b":                      "echo ...",
	} {
		require.Equal(t, want, CommandName(cmdline), "%q", cmdline)
	}
}

// The helper restarts this server with the partner's conninfo as its
// primary_conninfo, named as the standby's walsender is, unless the server
// has its own; the rewind's source only when it rewinds.
func TestRestartPlan(t *testing.T) {
	fakepg.CleanEnv(t)
	raw := testRaw(t)
	raw.PartnerConninfo = "host=partner port=5434 user=rep password=hunter2"
	raw.OSHome, raw.BinDir, raw.PostmasterPID = "/home/pg", "/usr/lib/postgresql/15/bin", 4242
	e := testExecutor(t)
	env := testEnv(t, raw, 0, nil, nil)

	p := e.restartPlan("switchover", false, env)
	require.Equal(t, action.RestartPlan{Task: "switchover", DataDir: raw.DataDir, BinDir: raw.BinDir, PostmasterPID: 4242,
		Home: "/home/pg", PrimaryConninfo: raw.PartnerConninfo + " application_name='walreceiver'"}, p)

	e.partnerName = "node2" // the name the standby streamed with
	p = e.restartPlan("rejoin", true, env)
	require.True(t, p.Rewind)
	require.Equal(t, "passfile='/home/pg/.pgpass' "+raw.PartnerConninfo, p.Source)
	require.Equal(t, raw.PartnerConninfo+" application_name='node2'", p.PrimaryConninfo)

	raw.ClusterName = "pair"
	require.Equal(t, raw.PartnerConninfo+" application_name='pair'", e.restartPlan("switchover", false, testEnv(t, raw, 0, nil, nil)).PrimaryConninfo)

	raw.PrimaryConninfo = "host=elsewhere"
	require.Empty(t, e.restartPlan("switchover", false, testEnv(t, raw, 0, nil, nil)).PrimaryConninfo, "the server's own primary_conninfo is kept")
}

// A goroutine that panics hands back the result it owes, with the panic as
// its error, and the server goes on.
func TestPanicBecomesTheResult(t *testing.T) {
	e := testExecutor(t)
	e.spawn(core.Input{Kind: core.ProbeInput, Probe: core.ProbeResult{Class: core.FailOther, LocalLSN: -1, Gen: 7}},
		func() core.Input { panic("kaboom") })
	in := await(t, e)
	require.Equal(t, core.ProbeInput, in.Kind)
	require.Equal(t, "internal error: kaboom", in.Probe.Detail)
	require.Equal(t, core.FailOther, in.Probe.Class)
	require.Equal(t, 7, in.Probe.Gen)
	require.False(t, in.At.IsZero())

	e.spawn(core.Input{Kind: core.ActionInput, Action: core.RunAfterCommand, Command: &core.CommandOutcome{ExitStatus: 0}},
		func() core.Input { panic(fmt.Errorf("boom")) })
	in = await(t, e)
	require.Equal(t, "internal error: boom", in.Err)
	require.Equal(t, -1, in.Command.ExitStatus)
}

// The hand-over reads where the WAL ends once writes are refused: without
// the fence, it fails at once and starts nothing.
func TestHandOverNeedsTheFence(t *testing.T) {
	fakepg.CleanEnv(t)
	e := testExecutor(t)
	env := testEnv(t, testRaw(t), 0, nil, nil)
	env.Fence = core.FenceOpen
	require.Nil(t, e.Apply(core.Output{Actions: []core.ActionKind{core.HandOver}}, env))
	in := await(t, e)
	require.Equal(t, core.HandOver, in.Action)
	require.Equal(t, "could not refuse writes (the fence)", in.Err)
}

// after_command not set: said, and nothing started.
func TestAfterCommandNotSet(t *testing.T) {
	fakepg.CleanEnv(t)
	e := testExecutor(t)
	logs := e.Apply(core.Output{Actions: []core.ActionKind{core.RunAfterCommand}}, testEnv(t, testRaw(t), 0, nil, nil))
	require.Equal(t, []core.LogLine{{Level: core.Info, Msg: "pg_keeper.after_command is not set: nothing to run after the promotion"}}, logs)
	n, err := unix.Poll([]unix.PollFd{{Fd: int32(e.box.Fd()), Events: unix.POLLIN}}, 50)
	require.NoError(t, err)
	require.Zero(t, n, "nothing was started")
}

// A failed promotion gives after_command no timeline; a good one does.
func TestPromotionTimeline(t *testing.T) {
	fakepg.CleanEnv(t)
	e := testExecutor(t)
	raw := testRaw(t)
	raw.MyConninfo = fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=postgres sslmode=disable", fakepg.ClosedPort(t))
	require.Nil(t, e.Apply(core.Output{Actions: []core.ActionKind{core.Promote}}, testEnv(t, raw, 0, nil, nil)))
	in := await(t, e)
	require.NotEmpty(t, in.Err)
	_, timeline := e.learnt()
	require.Zero(t, timeline)
}
