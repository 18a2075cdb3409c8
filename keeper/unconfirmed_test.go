package keeper

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/stretchr/testify/require"
)

// A master that starts takes no writes until its partner answers as its
// standby (or as an older primary), or an operator confirms it: the
// MasterUnconfirmed state, in the core and in the runner.

const whyConfirmedAsync = whyConfirmed + "; replication was asynchronous before this start: " +
	"restoring it once the standby has caught up"

// nothingToConfirm is the row of a confirmation in state s, which waits
// for none: an operator's file can come in any state, and is ignored there.
func nothingToConfirm(s State, on Trigger) Transition {
	return Transition{From: s, On: on, To: s, Level: Warning, Why: whyNothingToConfirm}
}

// unconfirmedCore is a master core that starts unconfirmed.
func unconfirmedCore(threshold int, async bool) *Core {
	c := NewCore(MasterMode, threshold)
	c.Resume(FenceUnconfirmed, async)
	return c
}

// countPrefix counts the lines whose message starts with prefix.
func countPrefix(logs []LogLine, prefix string) int {
	n := 0
	for _, l := range logs {
		if strings.HasPrefix(l.Msg, prefix) {
			n++
		}
	}
	return n
}

// TestUnconfirmedRows pins every row of MasterUnconfirmed.
func TestUnconfirmedRows(t *testing.T) {
	require.Equal(t, "pg_keeper.confirm_primary", ConfirmFile)
	require.Equal(t, "this server is the primary: accepting writes", whyConfirmed)
	require.Equal(t, "the standby has not answered since this server started, so it may have been promoted meanwhile: "+
		"writes stay refused until it answers as a standby; if it is gone for good, or this is the first start of a new pair, "+
		"confirm this server as the primary: touch $PGDATA/pg_keeper.confirm_primary", whyUnconfirmed)
	require.Equal(t, "ignored pg_keeper.confirm_primary: this server is not waiting for a confirmation", whyNothingToConfirm)
	ignored := func(on Trigger) Transition {
		return Transition{From: MasterUnconfirmed, On: on, To: MasterUnconfirmed, Unexpected: true, Level: Warning,
			Why: "ignored unexpected event " + on.String() + " in state master:unconfirmed"}
	}
	waiting := func(on Trigger) Transition {
		return Transition{From: MasterUnconfirmed, On: on, To: MasterUnconfirmed, Level: Warning, Why: whyUnconfirmed}
	}
	want := []Transition{
		// A good heartbeat confirms: the core names it Confirmed.
		ignored(PartnerUp),
		ignored(PartnerCaughtUp),
		{From: MasterUnconfirmed, On: PartnerDown, To: MasterUnconfirmed},
		waiting(HeartbeatLost),
		waiting(PartnerLost),
		waiting(PartnerLostUnsafe),
		ignored(ActionDone),
		ignored(ActionFailed),
		ignored(RecoveryEnded),
		{From: MasterUnconfirmed, On: Superseded, To: MasterFenced, Do: FenceSelf, Level: Error, Why: whySuperseded},
		{From: MasterUnconfirmed, On: Confirmed, To: MasterReady, Do: OpenFence, Level: Info, Why: whyConfirmed},
		{From: MasterUnconfirmed, On: ConfirmedAsync, To: MasterAsync, Do: OpenFence, Level: Info, Why: whyConfirmedAsync},
	}
	require.Len(t, want, int(numTriggers))
	for _, w := range want {
		require.Equal(t, w, *transitionIndex[w.From][w.On], w.On.String())
		require.Equal(t, w.Why, Why(w.From, w.On), w.On.String())
	}
	// No row leads into MasterUnconfirmed: only a start does.
	require.Empty(t, rowsWhere(func(r Transition) bool { return r.To == MasterUnconfirmed && r.From != MasterUnconfirmed }))
	// Confirmations lead nowhere else: in every other state they are
	// ignored and said so.
	for s := range numStates {
		if s == MasterUnconfirmed {
			continue
		}
		for _, on := range []Trigger{Confirmed, ConfirmedAsync} {
			r := *transitionIndex[s][on]
			require.Equal(t, nothingToConfirm(s, on), r, "%s/%s", s, on)
		}
	}
}

// TestResume: every combination of mode, fence and saved asynchronous
// replication, the fence the state then wants, and where a confirmation
// leads.
func TestResume(t *testing.T) {
	for _, tc := range []struct {
		mode      Mode
		fence     Fence
		async     bool
		start     State
		wants     Fence
		confirmed State // after a ConfirmInput
		actions   []ActionKind
		log       string
	}{
		{MasterMode, FenceOpen, false, MasterReady, FenceOpen, MasterReady, nil,
			whyNothingToConfirm + " (" + testConfirm + ")"},
		{MasterMode, FenceOpen, true, MasterAsync, FenceOpen, MasterAsync, nil,
			whyNothingToConfirm + " (" + testConfirm + ")"},
		{MasterMode, FenceUnconfirmed, false, MasterUnconfirmed, FenceUnconfirmed, MasterReady, []ActionKind{OpenFence},
			whyConfirmed + " (" + testConfirm + ")"},
		{MasterMode, FenceUnconfirmed, true, MasterUnconfirmed, FenceUnconfirmed, MasterAsync, []ActionKind{OpenFence},
			whyConfirmedAsync + " (" + testConfirm + ")"},
		// A server fenced by an earlier worker is shutting down: it stays so.
		{MasterMode, FenceFenced, false, MasterFenced, FenceFenced, MasterFenced, nil,
			whyNothingToConfirm + " (" + testConfirm + ")"},
		{MasterMode, FenceFenced, true, MasterFenced, FenceFenced, MasterFenced, nil,
			whyNothingToConfirm + " (" + testConfirm + ")"},
		// A value the shim does not know is no open fence.
		{MasterMode, Fence(7), false, MasterUnconfirmed, FenceUnconfirmed, MasterReady, []ActionKind{OpenFence},
			whyConfirmed + " (" + testConfirm + ")"},
	} {
		name := fmt.Sprintf("%s fence=%d async=%v", tc.mode, tc.fence, tc.async)
		c := NewCore(tc.mode, 3)
		c.Resume(tc.fence, tc.async)
		require.Equal(t, tc.start, c.State(), name)
		require.Equal(t, tc.wants, c.Fence(), name)
		require.Equal(t, NoAction, c.InFlight(), name)
		require.Equal(t, 0, c.Failures(), name)
		out := c.Step(confirmEvent())
		require.Equal(t, tc.confirmed, c.State(), name)
		require.Equal(t, tc.actions, out.Actions, name)
		level := Warning
		if tc.actions != nil {
			level = Info
			require.Equal(t, &Change{From: MasterUnconfirmed, To: tc.confirmed, On: c.lastTrigger, Reason: tc.log,
				Primary: tc.confirmed.KnowsPrimary()}, out.Change, name)
			require.False(t, c.asyncAtStart, "%s: the saved state is used once", name)
			require.Equal(t, FenceOpen, c.Fence(), "%s: a confirmed primary takes writes", name)
		} else {
			require.Nil(t, out.Change, name)
			require.Equal(t, tc.wants, c.Fence(), name)
		}
		require.Equal(t, []LogLine{{level, tc.log}}, out.Logs, name)
		require.Equal(t, NoAction, c.InFlight(), "%s: opening the fence is fire and forget", name)
	}
	// A standby is never unconfirmed nor fenced: there is nothing to hold.
	for _, fence := range []Fence{FenceUnconfirmed, FenceOpen, FenceFenced} {
		for _, async := range []bool{false, true} {
			name := fmt.Sprintf("standby fence=%d async=%v", fence, async)
			c := NewCore(StandbyMode, 3)
			before := *c
			c.Resume(fence, async)
			require.Equal(t, before, *c, "%s: untouched", name)
			require.Equal(t, FenceOpen, c.Fence(), name)
			out := c.Step(confirmEvent())
			require.Equal(t, StandbyReady, c.State(), name)
			require.Equal(t, []LogLine{warn(whyNothingToConfirm + " (" + testConfirm + ")")}, out.Logs, name)
			require.Nil(t, out.Actions, name)
			require.Nil(t, out.Change, name)
		}
	}
	require.Equal(t, "(master mode:unconfirmed)", MasterUnconfirmed.Title())
	require.Equal(t, "master:unconfirmed", MasterUnconfirmed.String())
}

// An unconfirmed core reports no action to come: losing the partner does
// nothing but wait.
func TestUnconfirmedView(t *testing.T) {
	c := unconfirmedCore(3, false)
	require.Equal(t, View{State: MasterUnconfirmed, Threshold: 3, PartnerLSN: -1}, c.View())
	for range 5 {
		c.Step(failProbe(false))
	}
	require.Equal(t, View{State: MasterUnconfirmed, Failures: 5, Threshold: 3, PartnerLSN: -1,
		LastFailure: t0, LastClass: FailRefused, LastReason: "refused: " + testReason}, c.View())
}

// TestUnconfirmedConfirmedByHeartbeat: the heartbeats that prove the partner
// did not replace this server: a standby's answer (streaming or not) or a
// primary on an older timeline.
func TestUnconfirmedConfirmedByHeartbeat(t *testing.T) {
	notStreaming := failWith(FailNotStreaming, "no walsender", -1)
	older := failWith(FailOlderPrimary, "timeline 1", -1)
	for _, tc := range []struct {
		name     string
		ev       Input
		failures int // after the heartbeat, one failed before it
		logs     []LogLine
	}{
		{"good heartbeat", okWith(standbyFacts), 0, []LogLine{info("heartbeat to standby succeeded after 1 failed")}},
		{"good heartbeat, caught up", caughtUpProbe(), 0, []LogLine{info("heartbeat to standby succeeded after 1 failed")}},
		// This server says no walsender streams to the standby that answered.
		{"good heartbeat, not streaming", notStreamingProbe(), 2,
			[]LogLine{warn("heartbeat to standby failed (2/3): not streaming: " + notStreamingDetail)}},
		{"not streaming", notStreaming, 2, []LogLine{warn("heartbeat to standby failed (2/3): not streaming: no walsender")}},
		{"older primary", older, 2, []LogLine{warn("heartbeat to standby failed (2/3): older primary: timeline 1")}},
	} {
		for _, async := range []bool{false, true} {
			name := fmt.Sprintf("%s, async %v", tc.name, async)
			c := unconfirmedCore(3, async)
			c.Step(failProbe(false))
			out := c.Step(tc.ev)
			why, to, on := whyConfirmed, MasterReady, Confirmed
			if async {
				why, to, on = whyConfirmedAsync, MasterAsync, ConfirmedAsync
			}
			reason := "the partner answered as a standby"
			if tc.ev.Probe.Class == FailOlderPrimary {
				reason = "the partner is a primary on an older timeline"
			}
			line := info(why + " (" + reason + ")")
			require.Equal(t, append(append([]LogLine(nil), tc.logs...), line), out.Logs, name)
			require.Equal(t, []ActionKind{OpenFence}, out.Actions, name)
			require.Equal(t, to, c.State(), name)
			require.Equal(t, &Change{From: MasterUnconfirmed, To: to, On: on, Reason: line.Msg, Primary: to.KnowsPrimary()}, out.Change, name)
			require.Equal(t, tc.failures, c.Failures(), name)
			require.Equal(t, NoAction, c.InFlight(), name)
		}
	}
}

// TestUnconfirmedNeverConfirmedByFailures: whatever the failure, however
// many, with replication alive or not, and whatever the policy, a failed
// heartbeat that says nothing of the partner's role confirms nothing, does
// nothing, and says why once.
func TestUnconfirmedNeverConfirmedByFailures(t *testing.T) {
	for class := range numFailureClasses {
		if class == FailNotStreaming || class == FailOlderPrimary || class == FailSuperseded {
			continue
		}
		for _, alive := range []bool{false, true} {
			for _, p := range []Policy{{}, {FailoverOnTimeout: true, MaxLag: 1 << 40}} {
				name := fmt.Sprintf("%s, alive %v, %+v", class, alive, p)
				c := unconfirmedCore(3, false)
				c.SetPolicy(p)
				var logs []LogLine
				for range 50 {
					ev := failWith(class, "d", -1)
					ev.Probe.ReplicationAlive = alive
					out := c.Step(ev)
					require.Nil(t, out.Actions, name)
					require.Nil(t, out.Change, name)
					logs = append(logs, out.Logs...)
				}
				require.Equal(t, MasterUnconfirmed, c.State(), name)
				require.Equal(t, 50, c.Failures(), name)
				require.Equal(t, 1, countPrefix(logs, whyUnconfirmed), "%s: said once, at the count:\n%v", name, logs)
				require.Equal(t, 0, countPrefix(logs, whyConfirmed), name)
			}
		}
	}
}

// The unconfirmed master says why it waits when the count is reached,
// with what the core knows of the failures.
func TestUnconfirmedWaitLines(t *testing.T) {
	c := unconfirmedCore(2, false)
	replay(t, c, []step{
		{refused("x"), MasterUnconfirmed, "(master mode:unconfirmed)", nil,
			[]LogLine{warn("heartbeat to standby failed (1/2): refused: x")}},
		{refused("x"), MasterUnconfirmed, "(master mode:unconfirmed)", nil, []LogLine{
			warn("heartbeat to standby failed (2/2): refused: x"),
			warn(whyUnconfirmed + " (2 failed heartbeats in a row)"),
		}},
		{refused("x"), MasterUnconfirmed, "(master mode:unconfirmed)", nil, nil},
		// Replication from this server still streams: the partner is alive.
		{failProbe(true), MasterUnconfirmed, "(master mode:unconfirmed)", nil, []LogLine{
			warn("heartbeat to standby failed (4/2): refused: " + testReason),
			warn(whyUnconfirmed),
		}},
		{timedOut("t"), MasterUnconfirmed, "(master mode:unconfirmed)", nil, []LogLine{
			warn("heartbeat to standby failed (5/2): timeout: t"),
			warn(whyUnconfirmed + " (5 failed heartbeats in a row)"),
		}},
		// Then the standby answers.
		{okWith(standbyFacts), MasterReady, "(master mode:ready)", []ActionKind{OpenFence}, []LogLine{
			info("heartbeat to standby succeeded after 5 failed"),
			info(whyConfirmed + " (the partner answered as a standby)"),
		}},
		{okWith(standbyFacts), MasterConnected, "(master mode:connected)", nil, []LogLine{info("connected to standby")}},
	})
}

// A new primary's answer fences an unconfirmed master, which no
// confirmation opens again.
func TestUnconfirmedSuperseded(t *testing.T) {
	c := unconfirmedCore(3, true)
	out := c.Step(supersededProbe())
	require.Equal(t, MasterFenced, c.State())
	require.Equal(t, []ActionKind{FenceSelf}, out.Actions)
	require.Equal(t, []LogLine{supersededLine("standby", 1, 3), {Error, whySuperseded}}, out.Logs)
	require.False(t, c.asyncAtStart)
	for _, ev := range []Input{confirmEvent(), okWith(standbyFacts), failWith(FailNotStreaming, "x", -1), failWith(FailOlderPrimary, "x", -1)} {
		out = c.Step(ev)
		require.Nil(t, out.Actions)
		require.Equal(t, MasterFenced, c.State())
	}
}

// A confirmation in any state but MasterUnconfirmed changes nothing and
// is said to be ignored; a good heartbeat there is just that.
func TestConfirmEventElsewhereIsIgnored(t *testing.T) {
	for s := range numStates {
		if s == MasterUnconfirmed {
			continue
		}
		t.Run(s.String(), func(t *testing.T) {
			c := reach(t, s, 3)
			failures, inFlight := c.Failures(), c.InFlight()
			out := c.Step(Input{Kind: ConfirmInput, At: t0, Detail: "by hand"})
			require.Equal(t, Output{Logs: []LogLine{warn(whyNothingToConfirm + " (by hand)")}}, out)
			require.Equal(t, s, c.State())
			require.Equal(t, failures, c.Failures())
			require.Equal(t, inFlight, c.InFlight())
			out = c.Step(Input{Kind: ConfirmInput, At: t0, Detail: "by hand"})
			require.Nil(t, out.Logs, "logged once in a row")
		})
	}
	// A good heartbeat of a confirmed master is no confirmation.
	c := reach(t, MasterReady, 3)
	out := c.Step(okWith(standbyFacts))
	require.Equal(t, PartnerUp, c.lastTrigger)
	require.Nil(t, out.Actions)
}

// A master that switched to asynchronous replication before its restart
// is confirmed into MasterAsync, and restores synchronous replication once
// the standby has caught up.
func TestUnconfirmedAsyncRestoresSyncOnceConfirmed(t *testing.T) {
	c := unconfirmedCore(2, true)
	replay(t, c, []step{
		// Caught up or not, the first answer only confirms.
		{caughtUpProbe(), MasterAsync, "(master mode:async)", []ActionKind{OpenFence},
			[]LogLine{info(whyConfirmedAsync + " (the partner answered as a standby)")}},
		{caughtUpProbe(), MasterRestoring, "(master mode:restoring)", []ActionKind{RestoreSync},
			[]LogLine{info("standby caught up: restoring synchronous replication")}},
		{actionOK(RestoreSync, "synchronous_standby_names is 'node2' again"), MasterConnected, "(master mode:connected)", nil,
			[]LogLine{info(Why(MasterRestoring, ActionDone) + " (synchronous_standby_names is 'node2' again)")}},
	})
}

// confirmLine is what the runner logs when an operator's file confirms it.
func confirmLine(dataDir string) LogLine {
	return info("pg_keeper: " + whyConfirmed + " (confirmed by the operator (" + filepath.Join(dataDir, ConfirmFile) +
		"), without an answer from the partner)")
}

// ignoredConfirmLine is what the runner logs when it removes an operator's
// file at path in a state that waits for no confirmation.
func ignoredConfirmLine(path string) LogLine {
	return warn("pg_keeper: " + whyNothingToConfirm + " (confirmed by the operator (" + path +
		"), without an answer from the partner)")
}

// TestRunnerStartsByTheFence: a master keeper starts unconfirmed unless the
// server's fence is open already (a restart of the worker, not of the
// server), fenced if an earlier worker fenced it; its saved file says
// whether replication had been switched to asynchronous. The first turn of
// the loop makes the server hold the fence the state wants: a standby's is
// opened.
func TestRunnerStartsByTheFence(t *testing.T) {
	cleanPGEnv(t)
	host, err := os.Hostname()
	require.NoError(t, err)
	const own, foreign, oldFormat = "own", "foreign", "old format"
	for _, tc := range []struct {
		name       string
		inRecovery bool
		fence      Fence
		readErr    error
		saved      string // which saved file is in the data directory
		autoEmpty  bool   // postgresql.auto.conf sets synchronous_standby_names = ''
		state      State
		logs       []string // before the start line
		setFences  []Fence
	}{
		{name: "master, fence unconfirmed", fence: FenceUnconfirmed, state: MasterUnconfirmed},
		{name: "master, fence open", fence: FenceOpen, state: MasterReady},
		{name: "master, fence open, own saved file and '' override", fence: FenceOpen, saved: own, autoEmpty: true, state: MasterAsync},
		{name: "master, fence open, own saved file, no '' override", fence: FenceOpen, saved: own, state: MasterAsync},
		{name: "master, fence open, the partner's saved file and its '' override", fence: FenceOpen, saved: foreign, autoEmpty: true,
			state: MasterAsync},
		{name: "master, fence open, the partner's saved file alone", fence: FenceOpen, saved: foreign, state: MasterReady},
		{name: "master, fence open, a file of old", fence: FenceOpen, saved: oldFormat, state: MasterReady},
		{name: "master, fence open, a file of old and a '' override", fence: FenceOpen, saved: oldFormat, autoEmpty: true,
			state: MasterAsync},
		{name: "master, fence unconfirmed, own saved file", fence: FenceUnconfirmed, saved: own, state: MasterUnconfirmed},
		// Fenced by an earlier worker: the server is shutting down.
		{name: "master, fence fenced", fence: FenceFenced, state: MasterFenced},
		{name: "master, fence fenced, own saved file", fence: FenceFenced, saved: own, state: MasterFenced},
		// Unknown: taken as unconfirmed, and the first turn sets it so.
		{name: "master, fence unreadable", fence: FenceOpen, readErr: errors.New("no shared memory"), state: MasterUnconfirmed,
			logs: []string{"could not read the fence: no shared memory"}, setFences: []Fence{FenceUnconfirmed}},
		{name: "standby, fence unconfirmed", inRecovery: true, state: StandbyReady, setFences: []Fence{FenceOpen}},
		{name: "standby, fence open", inRecovery: true, fence: FenceOpen, state: StandbyReady},
		{name: "standby, own saved file", inRecovery: true, saved: own, state: StandbyReady, setFences: []Fence{FenceOpen}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := runRaw(t, closedPort(t), closedPort(t))
			raw.Port = 5432
			dir := raw.DataDir
			switch tc.saved {
			case own:
				require.NoError(t, saveSync(dir, NodeTag(host, 5432, dir), "node2"))
			case foreign:
				require.NoError(t, saveSync(dir, NodeTag("partner", 5432, dir), "node1"))
			case oldFormat:
				require.NoError(t, os.WriteFile(filepath.Join(dir, savedSyncFile), []byte("node1\n"), 0o600))
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
				require.Equal(t, tc.fence, r.fenceState, "the runner knows the fence as the server holds it")
			} else {
				require.Equal(t, Fence(-1), r.fenceState, "the runner does not know the fence the server holds")
			}

			r.syncFence() // the first turn of the loop
			require.Equal(t, tc.setFences, h.fenceCalls())
			r.syncFence()
			require.Equal(t, tc.setFences, h.fenceCalls(), "set once")
			require.Equal(t, r.core.Fence(), r.fenceState)
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
	cleanPGEnv(t)
	raw := runRaw(t, closedPort(t), closedPort(t))
	require.NoError(t, os.Mkdir(filepath.Join(raw.DataDir, savedSyncFile), 0o700))
	h := confirmedHost(raw)
	r := newTestRunner(t, h)
	require.Equal(t, MasterReady, r.core.State())
	logs, _ := h.snapshot()
	require.Equal(t, Warning, logs[0].Level)
	require.True(t, strings.HasPrefix(logs[0].Msg, "pg_keeper: read "+filepath.Join(raw.DataDir, savedSyncFile)+": "), logs[0].Msg)
}

// A worker that restarts on a server its predecessor confirmed finds the
// fence open and starts confirmed; a restarted server starts unconfirmed.
func TestRunnerWorkerRestartKeepsTheConfirmation(t *testing.T) {
	cleanPGEnv(t)
	raw := runRaw(t, closedPort(t), closedPort(t))
	h := newFakeHost(raw)
	r, closeRunner := openRunner(t, h)
	require.Equal(t, MasterUnconfirmed, r.core.State())
	deliver(r, okWith(standbyFacts))
	require.Equal(t, MasterReady, r.core.State())
	closeRunner()
	require.Equal(t, FenceOpen, h.fence)

	r2, closeRunner2 := openRunner(t, h)
	require.Equal(t, MasterReady, r2.core.State())
	require.Equal(t, FenceOpen, r2.fenceState)
	deliver(r2, failWith(FailRefused, "d", -1), failWith(FailRefused, "d", -1))
	require.Equal(t, MasterSwitching, r2.core.State(), "a confirmed master deals with a lost standby")
	require.Equal(t, []Fence{FenceOpen}, h.fenceCalls(), "opened once, by the first worker")
	closeRunner2()

	// The server restarts: shared memory, and with it the fence, is new.
	h3 := newFakeHost(raw)
	r3 := newTestRunner(t, h3)
	require.Equal(t, MasterUnconfirmed, r3.core.State())
}

// TestRunnerConfirmFile: the operator's file confirms an unconfirmed master
// at the next tick and is consumed; anywhere else it is ignored, said, and
// removed; at the start of a standby it is removed (a copy of the
// partner's data directory).
func TestRunnerConfirmFile(t *testing.T) {
	cleanPGEnv(t)
	touch := func(t *testing.T, dir string) string {
		path := filepath.Join(dir, ConfirmFile)
		require.NoError(t, os.WriteFile(path, nil, 0o600))
		return path
	}
	gone := func(t *testing.T, path string) {
		_, err := os.Stat(path)
		require.True(t, os.IsNotExist(err), "%s: %v", path, err)
	}
	t.Run("unconfirmed master", func(t *testing.T) {
		raw := runRaw(t, closedPort(t), closedPort(t))
		raw.PartnerConninfo = "port=notaport" // no heartbeat to race with
		h := newFakeHost(raw)
		r := newTestRunner(t, h)
		turn(r, time.Now())
		require.Equal(t, MasterUnconfirmed, r.core.State(), "nothing confirms it yet")
		path := touch(t, raw.DataDir)
		n := logCount(h)
		turn(r, time.Now())
		require.Equal(t, []LogLine{confirmLine(raw.DataDir)}, logsSince(h, n))
		require.Equal(t, []Fence{FenceOpen}, h.fenceCalls())
		requireFencedWhileHandling(t, h, 0, n)
		require.Equal(t, MasterReady, r.core.State())
		gone(t, path)
		recs := hostRecords(t, h)
		require.Equal(t, []string{KindStart, KindTransition, KindAction}, kinds(recs))
		require.Equal(t, "confirmed", recs[1].Trigger)
		require.Equal(t, Record{At: recs[2].At, Node: r.node, Kind: KindAction, Action: "open-fence", OK: ptr(true),
			Detail: "writes accepted"}, recs[2])
		_, titles := h.snapshot()
		require.Equal(t, []string{"(master mode:unconfirmed)", "(master mode:ready)"}, titles)
	})
	t.Run("unconfirmed master, async before", func(t *testing.T) {
		raw := runRaw(t, closedPort(t), closedPort(t))
		raw.PartnerConninfo = "port=notaport"
		host, err := os.Hostname()
		require.NoError(t, err)
		require.NoError(t, saveSync(raw.DataDir, NodeTag(host, raw.Port, raw.DataDir), "node2"))
		path := touch(t, raw.DataDir) // before the start: this start's confirmation
		h := newFakeHost(raw)
		r := newTestRunner(t, h)
		_, err = os.Stat(path)
		require.NoError(t, err, "a master keeps it for its first turn")
		n := logCount(h)
		turn(r, time.Now())
		require.Equal(t, []LogLine{info("pg_keeper: " + whyConfirmedAsync + " (confirmed by the operator (" + path +
			"), without an answer from the partner)")}, logsSince(h, n))
		require.Equal(t, MasterAsync, r.core.State())
		require.Equal(t, []Fence{FenceOpen}, h.fenceCalls())
		gone(t, path)
	})
	t.Run("confirmed master", func(t *testing.T) {
		raw := runRaw(t, closedPort(t), closedPort(t))
		raw.PartnerConninfo = "port=notaport"
		h := confirmedHost(raw)
		r := newTestRunner(t, h)
		path := touch(t, raw.DataDir)
		n := logCount(h)
		turn(r, time.Now())
		require.Equal(t, MasterReady, r.core.State())
		require.Nil(t, h.fenceCalls())
		gone(t, path)
		require.Equal(t, []LogLine{ignoredConfirmLine(path)}, logsSince(h, n))
	})
	t.Run("standby, file from before the start", func(t *testing.T) {
		raw := runRaw(t, closedPort(t), closedPort(t))
		path := touch(t, raw.DataDir)
		h := newFakeHost(raw)
		h.inRecovery = true
		newTestRunner(t, h)
		logs, _ := h.snapshot()
		require.Equal(t, warn("pg_keeper: removed "+path+": a standby needs no confirmation (a copy of the partner's data directory?)"),
			logs[0])
		require.True(t, strings.HasPrefix(logs[1].Msg, "pg_keeper: started in standby mode: "), logs[1].Msg)
		gone(t, path)
	})
	t.Run("standby, file created later", func(t *testing.T) {
		raw := runRaw(t, closedPort(t), closedPort(t))
		raw.PartnerConninfo = "port=notaport"
		h := newFakeHost(raw)
		h.inRecovery = true
		r := newTestRunner(t, h)
		path := touch(t, raw.DataDir)
		n := logCount(h)
		turn(r, time.Now())
		require.Equal(t, StandbyReady, r.core.State())
		gone(t, path)
		require.Equal(t, []LogLine{ignoredConfirmLine(path)}, logsSince(h, n))
	})
	t.Run("no file", func(t *testing.T) {
		raw := runRaw(t, closedPort(t), closedPort(t))
		raw.PartnerConninfo = "port=notaport"
		h := newFakeHost(raw)
		r := newTestRunner(t, h)
		n := logCount(h)
		for range 3 {
			turn(r, time.Now())
		}
		require.Empty(t, logsSince(h, n))
		require.Equal(t, MasterUnconfirmed, r.core.State())
	})
}

// TestRunConfirmedByTheStandbyAfterFailures runs the loop against a fake
// partner that is down at first, then answers as a standby: the fence
// stays shut through the failures and opens at the first answer.
func TestRunConfirmedByTheStandbyAfterFailures(t *testing.T) {
	cleanPGEnv(t)
	srv := startFakePG(t, factsRow(true, "7300000000000000001", fakeStartText, false, "-1", "0")...)
	srv.set(func(s *fakePG) {
		s.startupErr = &pgproto3.ErrorResponse{Severity: "FATAL", Code: "57P03", Message: "the database system is starting up"}
	})
	local := masterAloneLocal(t)
	local.set(func(s *fakePG) { s.answers[simpleSQL(caughtUpSQL, "walreceiver")] = []fakeColumn{{oidBool, "t"}} })
	raw := runRaw(t, srv.port, local.port)
	raw.SystemID, raw.StartTime = 7300000000000000001, t0
	h := newFakeHost(raw)
	h.timeline = 2
	done := startRun(t, h)
	waitFor(t, "six failed heartbeats", func() bool { return aliveQueries(local) >= 6 })
	require.Nil(t, h.fenceCalls())

	srv.set(func(s *fakePG) { s.startupErr = nil })
	i := waitForLog(t, h, func(l LogLine) bool {
		return l == info("pg_keeper: "+whyConfirmed+" (the partner answered as a standby)")
	})
	waitForLog(t, h, func(l LogLine) bool { return l == info("pg_keeper: connected to standby") })
	require.Equal(t, 0, stopAndWait(t, h, done))
	require.Equal(t, []Fence{FenceOpen}, h.fenceCalls())
	logs, titles := h.snapshot()
	require.Equal(t, []string{"(master mode:unconfirmed)", "(master mode:ready)", "(master mode:connected)"}, titles)
	require.True(t, strings.HasPrefix(logs[i-1].Msg, "pg_keeper: heartbeat to standby succeeded after "), logs[i-1].Msg)
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Equal(t, []int{i + 1}, h.fenceAt)
}
