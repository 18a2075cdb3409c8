package core

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Every decision the document names is a function of this package.
func TestDecisionsExist(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	funcs := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		if filepath.Ext(f) != ".go" || len(f) > 8 && f[len(f)-8:] == "_test.go" {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		require.NoError(t, err)
		for _, d := range file.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok {
				funcs[fd.Name.Name] = true
			}
		}
	}
	for _, d := range Decisions {
		require.True(t, funcs[d.Name], "%s is listed as a decision but no such function exists", d.Name)
		require.NotEmpty(t, d.Does, d.Name)
	}
}

// Exactly the rows that leave handing-over or switching-over answer the
// switchover's caller, and only the one into handed-over says yes.
func TestOutcomeRows(t *testing.T) {
	switching := func(s State) bool { return s == MasterHandingOver || s == MasterSwitchingOver }
	for _, r := range Transitions {
		leaves := switching(r.From) && !switching(r.To)
		outcome := r.Answer == OutcomeOK || r.Answer == OutcomeFailed
		require.Equal(t, leaves, outcome, rowName(r))
		require.Equal(t, r.To == MasterHandedOver && r.From == MasterSwitchingOver, r.Answer == OutcomeOK, rowName(r))
	}
}

// The shutdown that ends a switchover waits until its answer has left:
// writes stay refused (switching) meanwhile, and the core asks to be
// ticked when the wait is over.
func TestHandedOverStopsAfterTheAnswer(t *testing.T) {
	c := reach(t, MasterSwitchingOver, 3)
	at := t0.Add(time.Minute)
	c.SetSchedule(at.Add(time.Hour), false) // no heartbeat due meanwhile
	in := actionOK(HandOver, "the standby has all WAL")
	in.At = at
	out := c.Step(in)
	require.Equal(t, MasterHandedOver, c.State())
	require.Equal(t, &Answer{OK: true, Msg: whyHandedOver + " (the standby has all WAL)"}, out.Answer)
	require.Nil(t, out.Fence, "still switching: the answer must leave first")
	require.Equal(t, FenceStopping, c.Fence())
	require.Equal(t, at.Add(answerGrace), c.NextTick())

	require.Nil(t, c.Step(Input{Kind: TickInput, At: at.Add(answerGrace / 2)}).Fence)
	out = c.Step(Input{Kind: TickInput, At: at.Add(answerGrace)})
	require.Equal(t, fenceOut(FenceStopping), out.Fence)
	require.Nil(t, c.Step(Input{Kind: TickInput, At: at.Add(time.Second)}).Fence, "said once")
}

// A superseded server is fenced at once, right after an answer too.
func TestSupersededFencesAtOnceAfterAnAnswer(t *testing.T) {
	c := reach(t, MasterConnected, 3)
	out := c.Step(takeoverRequest(masterLSN))
	require.Equal(t, &Answer{Msg: Why(MasterConnected, TakeoverRequested)}, out.Answer)
	out = c.Step(supersededProbe())
	require.Equal(t, fenceOut(FenceFenced), out.Fence)
}

// A heartbeat that went without TLS under sslmode=prefer makes the next
// ones try without it first, said once; what a heartbeat learnt of
// settings since given again counts for nothing.
func TestTLSLearntForTheSettingItWasFor(t *testing.T) {
	c := NewCore(StandbyMode, 3)
	c.SetPartner(true, true)
	req := c.Step(Input{Kind: TickInput, At: t0}).Probe
	require.NotNil(t, req)
	require.False(t, req.PlainFirst)

	c.SetPartner(true, true) // a reload while the heartbeat was under way
	res := okProbe()
	res.Probe.TLSRefused, res.Probe.Gen = true, req.Gen
	out := c.Step(res)
	require.NotContains(t, out.Logs, info(tlsLearnt))
	next := c.Step(Input{Kind: TickInput, At: t0.Add(time.Hour)}).Probe
	require.False(t, next.PlainFirst, "learnt of the old setting")

	res.Probe.Gen = next.Gen
	out = c.Step(res)
	require.Contains(t, out.Logs, info(tlsLearnt))
	again := c.Step(Input{Kind: TickInput, At: t0.Add(2 * time.Hour)}).Probe
	require.True(t, again.PlainFirst)
	res.Probe.Gen = again.Gen
	require.NotContains(t, c.Step(res).Logs, info(tlsLearnt), "said once")

	c.SetPartner(true, true)
	require.False(t, c.Step(Input{Kind: TickInput, At: t0.Add(3 * time.Hour)}).Probe.PlainFirst, "forgotten at a reload")
}

const tlsLearnt = "the partner refused TLS (sslmode=prefer): heartbeats now try without it first; " +
	"set sslmode in pg_keeper.partner_conninfo to choose"

// Maintenance mode going on or off is logged and recorded once, with where
// it comes from and the reason pg_keeper.pause() was given.
func TestMaintenanceNoticed(t *testing.T) {
	c := reach(t, MasterConnected, 3)
	c.Step(Input{Kind: RequestInput, At: t0, Request: PauseRequest, Detail: "kernel update"})
	c.SetMaintenance(true)
	out := c.Step(Input{Kind: TickInput, At: t0})
	msg := "maintenance mode on (set on this server): no promotion, switchover or rejoin until pg_keeper.resume() " +
		"on the master; reason: kernel update"
	require.Contains(t, out.Logs, info(msg))
	require.Equal(t, []Report{{Kind: MaintenanceReport, At: t0, OK: true, Detail: msg, ExitStatus: -1}}, out.Reports)
	require.Nil(t, c.Step(Input{Kind: TickInput, At: t0}).Reports, "once")

	s := reach(t, StandbyConnected, 3)
	f := syncMaster
	f.Maintenance = true
	out = s.Step(okWith(f))
	require.Contains(t, out.Logs, info("maintenance mode on (learnt from the master): no promotion, switchover or rejoin "+
		"until pg_keeper.resume() on the master"))
	out = s.Step(okProbe())
	require.Contains(t, out.Logs, info("maintenance mode off: automatic actions resume"))
}

// What a goroutine has to say is a warning.
func TestNoticeInput(t *testing.T) {
	c := reach(t, MasterConnected, 3)
	out := c.Step(Input{Kind: NoticeInput, At: t0, Detail: "could not save the events: disk full"})
	require.Equal(t, Output{Logs: []LogLine{warn("could not save the events: disk full")}}, out)
	require.Equal(t, MasterConnected, c.State())
}

// A command's output is logged line by line before its outcome, and the
// state-change command's names the change it ran for.
func TestCommandOutcomes(t *testing.T) {
	c := reach(t, MasterReady, 3)
	out := c.Step(Input{Kind: ActionInput, At: t0, Action: RunAfterCommand, Detail: "exit status 0 after 5 ms",
		Command: &CommandOutcome{Lines: []string{"a", "b"}, Duration: 5 * time.Millisecond, ExitStatus: 0}})
	require.Equal(t, []LogLine{info("after_command: a"), info("after_command: b"),
		info("after_command finished: exit status 0 after 5 ms")}, out.Logs)
	require.Equal(t, []Report{{Kind: CommandReport, At: t0, Action: RunAfterCommand, OK: true,
		Detail: "exit status 0 after 5 ms", Duration: 5 * time.Millisecond}}, out.Reports)

	out = c.Step(Input{Kind: ActionInput, At: t0, Action: RunStateChange, Err: "exit status 3 after 2 ms",
		Command: &CommandOutcome{Lines: []string{"oops"}, Duration: 2 * time.Millisecond, ExitStatus: 3,
			For: "master:ready -> master:connected"}})
	require.Equal(t, []LogLine{info("state_change_command: oops"),
		warn("state_change_command failed for master:ready -> master:connected: exit status 3 after 2 ms")}, out.Logs)
	require.Equal(t, []Report{{Kind: CommandReport, At: t0, Action: RunStateChange,
		Detail: "master:ready -> master:connected: exit status 3 after 2 ms", Duration: 2 * time.Millisecond, ExitStatus: 3}},
		out.Reports)
	require.Equal(t, MasterReady, c.State(), "a command decides nothing")
}

// A tracked action's result is recorded with how long it took from the
// step that started it; a promotion's with the new timeline.
func TestActionReports(t *testing.T) {
	c := reach(t, StandbyConnected, 1)
	start := t0.Add(time.Minute)
	lost := failProbe(false)
	lost.At = start
	require.Equal(t, []ActionKind{Promote}, c.Step(lost).Actions)
	done := Input{Kind: ActionInput, At: start.Add(120 * time.Millisecond), Action: Promote,
		Detail: "pg_promote() took 110 ms", Timeline: 3}
	out := c.Step(done)
	require.Equal(t, []Report{{Kind: ActionReport, At: done.At, Action: Promote, OK: true,
		Detail: "pg_promote() took 110 ms; now on timeline 3", Duration: 120 * time.Millisecond, ExitStatus: -1}}, out.Reports)
}
