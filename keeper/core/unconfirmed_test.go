package core

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
		refuseSwitchover(MasterUnconfirmed, whyUnconfirmedSwitch),
		refuseTakeover(MasterUnconfirmed, whyTakeoverNotStandby),
		{From: MasterUnconfirmed, On: TakeoverCancelled, To: MasterUnconfirmed, Answer: Refuse,
			Reply: "too late to call the takeover off: this server is promoting or promoted (master:unconfirmed)"},
		ignored(TakeoverReady),
		ignored(TakeoverExpired),
		{From: MasterUnconfirmed, On: SupersededRejoin, To: MasterRejoining, Do: Rejoin, Level: Error, Why: whySupersededRejoin},
		{From: MasterUnconfirmed, On: PauseRequested, To: MasterUnconfirmed, Do: SetMaintenance, Answer: AwaitResult},
		{From: MasterUnconfirmed, On: ResumeRequested, To: MasterUnconfirmed, Do: ClearMaintenance, Answer: AwaitResult},
		{From: MasterUnconfirmed, On: RequestRefused, To: MasterUnconfirmed, Answer: Refuse},
		ignored(PartnerLostFence),
		ignored(PartnerLostWitness),
	}
	require.Len(t, want, int(NumTriggers))
	for _, w := range want {
		require.Equal(t, w, *transitionIndex[w.From][w.On], w.On.String())
		require.Equal(t, w.Why, Why(w.From, w.On), w.On.String())
	}
	// No row leads into MasterUnconfirmed: only a start does.
	require.Empty(t, rowsWhere(func(r Transition) bool { return r.To == MasterUnconfirmed && r.From != MasterUnconfirmed }))
	// Confirmations lead nowhere else: in every other state they are
	// ignored and said so.
	for s := range NumStates {
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
	require.Equal(t, View{State: MasterUnconfirmed, Threshold: 3, PartnerLSN: -1, Interval: 5 * time.Second, PartnerSet: true, PartnerUsable: true}, c.View())
	for range 5 {
		c.Step(failProbe(false))
	}
	require.Equal(t, View{State: MasterUnconfirmed, Failures: 5, Threshold: 3, PartnerLSN: -1,
		LastFailure: t0, LastClass: FailRefused, LastReason: "refused: " + testReason,
		Interval: 5 * time.Second, PartnerSet: true, PartnerUsable: true}, c.View())
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
	for class := range NumFailureClasses {
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
	for s := range NumStates {
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
