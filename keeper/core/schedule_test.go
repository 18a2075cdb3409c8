package core

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// When the core asks for heartbeats (TickInput, SetInterval, SetPartner,
// ReplicationDropInput), what it asks the local server along with them,
// and what a master's streaming check makes of a good heartbeat.

const testInterval = 5 * time.Second

// tickAt steps a TickInput at at.
func tickAt(c *Core, at time.Time) Output { return c.Step(Input{Kind: TickInput, At: at}) }

// probeRequest is what a tick asks of a core in state s: a primary whose
// commits are open writes a keepalive record first.
func probeRequest(s State) *ProbeRequest {
	m := s.Mode()
	closed := []State{MasterUnconfirmed, MasterFenced, MasterHandedOver, MasterRejoining, MasterSwitchingOver}
	return &ProbeRequest{Mode: m, Streaming: m == MasterMode, Replication: true,
		Keepalive: m == MasterMode && !slices.Contains(closed, s)}
}

// endedAt is a failed heartbeat whose result comes at at.
func endedAt(at time.Time) Input {
	in := failProbe(false)
	in.At = at
	return in
}

// requireDue checks, through View, when the next heartbeat is due and
// whether one is under way.
func requireDue(t *testing.T, c *Core, next time.Time, probing bool, msgAndArgs ...any) {
	t.Helper()
	v := c.View()
	require.Equal(t, next, v.NextProbe, msgAndArgs...)
	require.Equal(t, probing, v.Probing, msgAndArgs...)
}

// requireSchedule is requireDue for a core with a usable partner, and
// checks when it next wants a tick: when the next heartbeat is due, but
// never while one is under way (its result wakes the runner).
func requireSchedule(t *testing.T, c *Core, next time.Time, probing bool, msgAndArgs ...any) {
	t.Helper()
	requireDue(t, c, next, probing, msgAndArgs...)
	wantTick := next
	if probing {
		wantTick = Never
	}
	require.Equal(t, wantTick, c.NextTick(), msgAndArgs...)
}

func TestTickFirstHeartbeatAtOnce(t *testing.T) {
	for _, m := range []Mode{StandbyMode, MasterMode} {
		c := NewCore(m, 3)
		requireSchedule(t, c, time.Time{}, false, m.String())
		out := tickAt(c, t0)
		require.Equal(t, Output{Probe: probeRequest(c.State())}, out, "%s: the first tick asks for a heartbeat", m)
		requireSchedule(t, c, t0.Add(testInterval), true, "%s: the next due an interval after this one started", m)
		require.Equal(t, 0, c.Failures())
		require.Equal(t, Trigger(-1), c.lastTrigger, "a tick is no trigger")
	}
}

// TestTickSchedule: a heartbeat is due an interval after the start of the
// last, one at a time: none starts while one is under way, however late.
func TestTickSchedule(t *testing.T) {
	c := NewCore(MasterMode, 3)
	c.SetInterval(testInterval, t0)
	require.NotNil(t, tickAt(c, t0).Probe)

	// Under way: nothing more, not before the next is due, nor after.
	for _, d := range []time.Duration{0, time.Second, testInterval - 1, testInterval, 3 * testInterval} {
		require.Equal(t, Output{}, tickAt(c, t0.Add(d)), "under way, at +%s", d)
		requireSchedule(t, c, t0.Add(testInterval), true)
	}

	// It ends late, past the time the next one was due: that one starts at
	// the next tick, and the one after an interval after it started.
	late := t0.Add(3*testInterval + time.Second)
	c.Step(endedAt(late))
	requireSchedule(t, c, t0.Add(testInterval), false, "the result changes nothing of the schedule")
	require.Equal(t, Output{Probe: probeRequest(c.State())}, tickAt(c, late))
	requireSchedule(t, c, late.Add(testInterval), true)

	// It ends soon: the next one is due an interval after this one started,
	// not after it ended.
	start := late
	c.Step(endedAt(start.Add(100 * time.Millisecond)))
	requireSchedule(t, c, start.Add(testInterval), false)
	for _, d := range []time.Duration{100 * time.Millisecond, time.Second, testInterval - time.Nanosecond} {
		require.Equal(t, Output{}, tickAt(c, start.Add(d)), "not due at +%s", d)
		requireSchedule(t, c, start.Add(testInterval), false)
	}
	require.Equal(t, Output{Probe: probeRequest(c.State())}, tickAt(c, start.Add(testInterval)), "due exactly then")
	requireSchedule(t, c, start.Add(2*testInterval), true)

	require.Equal(t, 2, c.Failures(), "only results count")
	require.Equal(t, MasterReady, c.State())
}

// A result that comes with no heartbeat under way (as the tests' cores get
// them) leaves the schedule alone.
func TestTickScheduleUntouchedByOtherInputs(t *testing.T) {
	c := reach(t, StandbyConnected, 3)
	require.NotNil(t, tickAt(c, t0).Probe)
	c.Step(endedAt(t0.Add(time.Second)))
	for _, in := range []Input{failProbe(true), okProbe(), recoveryEnded(), confirmEvent(),
		actionOK(RunAfterCommand, "x"), actionOK(SwitchAsync, "stray")} {
		c.Step(in)
		requireSchedule(t, c, t0.Add(testInterval), false, "%+v", in)
	}
}

// The request follows the mode of the state at the tick: a standby that
// left recovery asks as a master.
func TestTickRequestFollowsTheMode(t *testing.T) {
	for s := range NumStates {
		c := coreAt(s, 3, 0)
		require.Equal(t, Output{Probe: probeRequest(c.State())}, tickAt(c, t0), s.String())
	}
	c := NewCore(StandbyMode, 3)
	require.Equal(t, probeRequest(c.State()), tickAt(c, t0).Probe)
	c.Step(endedAt(t0))
	c.Step(recoveryEnded())
	require.Equal(t, probeRequest(c.State()), tickAt(c, t0.Add(testInterval)).Probe)
}

// SetInterval: a shorter interval takes effect at once (from now), a longer
// one from the next heartbeat.
func TestSetInterval(t *testing.T) {
	c := NewCore(MasterMode, 3)
	c.SetInterval(time.Minute, t0)
	requireSchedule(t, c, time.Time{}, false, "the first heartbeat stays due at once")
	require.NotNil(t, tickAt(c, t0).Probe)
	requireSchedule(t, c, t0.Add(time.Minute), true)
	c.Step(endedAt(t0.Add(time.Second)))

	c.SetInterval(10*time.Second, t0.Add(2*time.Second))
	requireSchedule(t, c, t0.Add(12*time.Second), false, "shorter: from now")
	c.SetInterval(time.Hour, t0.Add(3*time.Second))
	requireSchedule(t, c, t0.Add(12*time.Second), false, "longer: the heartbeat due stays due")
	require.NotNil(t, tickAt(c, t0.Add(12*time.Second)).Probe)
	requireSchedule(t, c, t0.Add(12*time.Second+time.Hour), true, "then the new interval")

	// A shorter interval while a heartbeat is under way moves the next one.
	c.SetInterval(time.Second, t0.Add(13*time.Second))
	requireSchedule(t, c, t0.Add(14*time.Second), true)
}

// After a successful promotion the old master is checked again at once:
// until it is found lost again, the new master's commits wait for it.
func TestPromotionProbesAtOnce(t *testing.T) {
	promoting := func(t *testing.T) (*Core, time.Time) {
		c := NewCore(StandbyMode, 2)
		at := t0
		for _, in := range []Input{okProbe(), failProbe(false), failProbe(false)} {
			require.NotNil(t, tickAt(c, at).Probe)
			in.At = at.Add(time.Second)
			c.Step(in)
			at = at.Add(testInterval)
		}
		require.Equal(t, StandbyPromoting, c.State())
		return c, at.Add(-testInterval) // the start of the last heartbeat
	}
	t.Run("promoted", func(t *testing.T) {
		c, last := promoting(t)
		done := last.Add(2 * time.Second)
		in := actionOK(Promote, "pg_promote() took 900 ms")
		in.At = done
		c.Step(in)
		require.Equal(t, MasterReady, c.State())
		requireSchedule(t, c, done, false, "due at once, not at %s", last.Add(testInterval))
		require.Equal(t, Output{Probe: probeRequest(c.State())}, tickAt(c, done), "a master's heartbeat")
		requireSchedule(t, c, done.Add(testInterval), true)
	})
	t.Run("failed", func(t *testing.T) {
		c, last := promoting(t)
		in := actionErr(Promote, "could not connect")
		in.At = last.Add(2 * time.Second)
		c.Step(in)
		require.Equal(t, StandbyConnected, c.State())
		requireSchedule(t, c, last.Add(testInterval), false, "nothing to check early")
	})
	t.Run("promoted while a heartbeat is under way", func(t *testing.T) {
		c, last := promoting(t)
		next := last.Add(testInterval)
		require.NotNil(t, tickAt(c, next).Probe)
		done := next.Add(time.Second)
		in := actionOK(Promote, "pg_promote() took 900 ms")
		in.At = done
		c.Step(in)
		requireSchedule(t, c, done, true)
		require.Equal(t, Output{}, tickAt(c, done), "one heartbeat at a time")
		c.Step(endedAt(done.Add(time.Second)))
		require.Equal(t, probeRequest(c.State()), tickAt(c, done.Add(time.Second)).Probe,
			"the next one at once: the one under way was a standby's")
	})
	t.Run("other actions", func(t *testing.T) {
		for _, s := range []State{MasterSwitching, MasterRestoring} {
			c := reach(t, s, 2)
			require.NotNil(t, tickAt(c, t0).Probe)
			c.Step(endedAt(t0))
			in := actionOK(inFlightOf(s), "done")
			in.At = t0.Add(time.Second)
			c.Step(in)
			requireSchedule(t, c, t0.Add(testInterval), false, s.String())
		}
	})
}

// A drop of the server's own replication connection makes the next
// heartbeat due at once, unless one is under way already or one has failed
// since the last good one: only the first failure comes early, then the
// fault is known and the count goes on at the interval.
func TestReplicationDropProbesAtOnce(t *testing.T) {
	// States in which a good heartbeat leaves the core in place.
	for _, s := range []State{StandbyConnected, MasterConnected, MasterAsync} {
		c := coreAt(s, 3, 0)
		require.NotNil(t, tickAt(c, t0).Probe)
		good := okProbe()
		good.At = t0.Add(time.Second)
		c.Step(good)
		require.Equal(t, 0, c.Failures(), s.String())

		drop := t0.Add(2 * time.Second)
		out := c.Step(Input{Kind: ReplicationDropInput, At: drop})
		require.Equal(t, Output{}, out, "%s: nothing to say or do but check", s)
		requireSchedule(t, c, drop, false, s.String())
		require.Equal(t, 0, c.Failures(), s.String())
		require.Equal(t, s, c.State())
		require.Equal(t, Output{Probe: probeRequest(c.State())}, tickAt(c, drop.Add(time.Millisecond)), s.String())
		next := drop.Add(time.Millisecond + testInterval)
		requireSchedule(t, c, next, true, s.String())

		// Under way: the heartbeat that runs is the check.
		out = c.Step(Input{Kind: ReplicationDropInput, At: drop.Add(time.Second)})
		require.Equal(t, Output{}, out)
		requireSchedule(t, c, next, true, "%s: under way", s)
		c.Step(endedAt(drop.Add(2 * time.Second)))
		require.Equal(t, Output{}, tickAt(c, drop.Add(2*time.Second)), "%s: no second heartbeat for it", s)

		// It failed: a further drop changes nothing of the schedule.
		require.Equal(t, 1, c.Failures(), s.String())
		out = c.Step(Input{Kind: ReplicationDropInput, At: drop.Add(3 * time.Second)})
		require.Equal(t, Output{}, out)
		requireSchedule(t, c, next, false, "%s: failed already", s)
		require.Equal(t, Output{}, tickAt(c, drop.Add(3*time.Second)), "%s: not due before the interval", s)
		require.Equal(t, Output{Probe: probeRequest(c.State())}, tickAt(c, next), s.String())
	}

	// A heartbeat failed since the last good one (in StandbyHeartbeatLost
	// always; in MasterUnconfirmed every heartbeat that ends fails, a good
	// one confirms): the count goes on at the interval.
	for _, s := range []State{StandbyConnected, StandbyHeartbeatLost, MasterConnected, MasterAsync, MasterUnconfirmed} {
		c := coreAt(s, 3, 1)
		require.NotNil(t, tickAt(c, t0).Probe)
		c.Step(endedAt(t0.Add(time.Second)))

		drop := t0.Add(2 * time.Second)
		out := c.Step(Input{Kind: ReplicationDropInput, At: drop})
		require.Equal(t, Output{}, out, s.String())
		requireSchedule(t, c, t0.Add(testInterval), false, s.String())
		require.Equal(t, 2, c.Failures(), s.String())
		require.Equal(t, s, c.State())
		require.Equal(t, Output{}, tickAt(c, drop.Add(time.Millisecond)), "%s: not due before the interval", s)
		require.Equal(t, Output{Probe: probeRequest(c.State())}, tickAt(c, t0.Add(testInterval)), s.String())
	}

	// Before the first heartbeat: it is due at once anyway.
	c := NewCore(StandbyMode, 3)
	c.Step(Input{Kind: ReplicationDropInput, At: t0})
	require.NotNil(t, tickAt(c, t0).Probe)
}

// SetPartner: without a usable partner_conninfo there is nothing to probe;
// without one set at all the keeper is inactive, and an unconfirmed master
// has nothing to wait for.
func TestSetPartner(t *testing.T) {
	const inactive = "pg_keeper.partner_conninfo is not set: no partner to check, the keeper is inactive"
	t.Run("usable", func(t *testing.T) {
		c := NewCore(MasterMode, 3)
		c.SetPartner(true, true)
		require.NotNil(t, tickAt(c, t0).Probe)
	})
	t.Run("set but unusable: no heartbeat, no confirmation", func(t *testing.T) {
		for s := range NumStates {
			if s == StandbyTakingOver {
				continue // the takeover's time runs out all the same: see TestTakeoverExpiresWithoutAPartner
			}
			c := coreAt(s, 3, 0)
			c.SetPartner(true, false)
			for _, d := range []time.Duration{0, time.Hour, 24 * time.Hour} {
				require.Equal(t, Output{}, tickAt(c, t0.Add(d)), "%s at +%s", s, d)
			}
			require.Equal(t, s, c.State())
			requireDue(t, c, time.Time{}, false, s.String())
			require.Equal(t, Never, c.NextTick(), "%s: no tick wanted, a reload wakes the runner", s)
		}
	})
	t.Run("not set: an unconfirmed master is confirmed at the next tick", func(t *testing.T) {
		for _, async := range []bool{false, true} {
			name := fmt.Sprintf("async %v", async)
			c := unconfirmedCore(3, async)
			c.SetPartner(false, false)
			require.Equal(t, MasterUnconfirmed, c.State(), "%s: not before the tick", name)
			out := tickAt(c, t0)
			why, to, on := whyConfirmed, MasterReady, Confirmed
			if async {
				why, to, on = whyConfirmedAsync, MasterAsync, ConfirmedAsync
			}
			line := info(why + " (" + inactive + ")")
			require.Equal(t, Output{Actions: []ActionKind{OpenFence}, Logs: []LogLine{line},
				Change: &Change{From: MasterUnconfirmed, To: to, On: on, Reason: line.Msg, Primary: to.KnowsPrimary()},
				Fence:  fenceOut(FenceOpen)}, out, name)
			require.Equal(t, to, c.State(), name)
			require.Equal(t, FenceOpen, c.Fence(), name)
			// Confirmed once; then nothing, and no heartbeat. (NextTick is
			// left alone: see TestRunWithoutUsablePartnerDoesNotSpin.)
			require.Equal(t, Output{}, tickAt(c, t0.Add(time.Hour)), name)
			require.Equal(t, to, c.State(), name)
			requireDue(t, c, time.Time{}, false, name)
		}
	})
	t.Run("not set: elsewhere nothing", func(t *testing.T) {
		for s := range NumStates {
			if s == MasterUnconfirmed {
				continue
			}
			c := coreAt(s, 3, 0)
			c.SetPartner(false, false)
			require.Equal(t, Output{}, tickAt(c, t0), s.String())
			require.Equal(t, s, c.State())
		}
	})
	t.Run("a reload brings a partner back", func(t *testing.T) {
		c := unconfirmedCore(3, false)
		c.SetPartner(true, false)
		require.Equal(t, Output{}, tickAt(c, t0))
		require.Equal(t, Never, c.NextTick())
		c.SetPartner(true, true)
		requireSchedule(t, c, time.Time{}, false, "due at once")
		want := probeRequest(c.State())
		want.Gen = 2 // the settings were given twice
		require.Equal(t, Output{Probe: want}, tickAt(c, t0.Add(time.Second)))
		require.Equal(t, MasterUnconfirmed, c.State(), "a heartbeat confirms, not the setting")
	})
}

// streamingChecked is a good heartbeat of a master whose local check answered
// caughtUp (whether the standby's walsender streams, caught up).
func streamingChecked(caughtUp bool) Input {
	if caughtUp {
		return caughtUpProbe()
	}
	return notStreamingProbe()
}

// TestStreamingCheck: a good heartbeat of a master whose standby does not
// stream is a failure of class not streaming, in every master state but
// MasterAsync, where the standby is only not caught up yet. A caught-up
// standby restores synchronous replication from MasterAsync; elsewhere it
// is a good heartbeat like any other.
func TestStreamingCheck(t *testing.T) {
	masterStates := []State{MasterReady, MasterConnected, MasterHeartbeatLost, MasterSwitching, MasterRestoring,
		MasterKeepingSync, MasterFenced, MasterUnconfirmed}
	t.Run("not streaming is a failure", func(t *testing.T) {
		for _, s := range masterStates {
			for _, failures := range []int{0, 1, 2} {
				name := fmt.Sprintf("%s, %d failed before", s, failures)
				got, want := coreAt(s, 3, failures), coreAt(s, 3, failures)
				outGot := got.Step(notStreamingProbe())
				outWant := want.Step(Input{Kind: ProbeInput, At: t0, Probe: ProbeResult{Class: FailNotStreaming,
					Detail: notStreamingDetail, LocalLSN: -1, Partner: standbyFacts}})
				require.Equal(t, outWant, outGot, name)
				require.Equal(t, *want, *got, name)
				require.Equal(t, failures+1, got.Failures(), name)
				v := got.View()
				require.Equal(t, FailNotStreaming, v.LastClass, name)
				require.Equal(t, "not streaming: "+notStreamingDetail, v.LastReason, name)
				require.True(t, v.LastSuccess.IsZero(), "%s: no good heartbeat", name)
				require.Contains(t, outGot.Logs, warn(fmt.Sprintf("heartbeat to standby failed (%d/3): not streaming: %s",
					failures+1, notStreamingDetail)), name)
			}
		}
		// At the count, a master in synchronous replication with a standby
		// that does not stream switches to asynchronous replication.
		c := reach(t, MasterConnected, 2)
		c.Step(notStreamingProbe())
		out := c.Step(notStreamingProbe())
		require.Equal(t, MasterSwitching, c.State())
		require.Equal(t, []ActionKind{SwitchAsync}, out.Actions)
	})
	t.Run("caught up is a good heartbeat", func(t *testing.T) {
		for _, s := range masterStates {
			a, b := coreAt(s, 3, 1), coreAt(s, 3, 1)
			outA, outB := a.Step(okWith(standbyFacts)), b.Step(streamingChecked(true))
			require.Equal(t, outA, outB, s.String())
			require.Equal(t, *a, *b, s.String())
			require.Equal(t, 0, b.Failures(), s.String())
			require.Equal(t, t0, b.View().LastSuccess, s.String())
		}
	})
	t.Run("asynchronous", func(t *testing.T) {
		c := reach(t, MasterAsync, 2)
		out := c.Step(streamingChecked(false))
		require.Equal(t, MasterAsync, c.State())
		require.Equal(t, PartnerUp, c.lastTrigger)
		require.Equal(t, 0, c.Failures())
		require.Equal(t, []LogLine{info("heartbeat to standby succeeded after 2 failed"), info(Why(MasterAsync, PartnerUp))},
			out.Logs)
		require.Nil(t, out.Actions)

		out = c.Step(streamingChecked(true))
		require.Equal(t, MasterRestoring, c.State())
		require.Equal(t, PartnerCaughtUp, c.lastTrigger)
		require.Equal(t, []ActionKind{RestoreSync}, out.Actions)
	})
	t.Run("not checked: the heartbeat stands", func(t *testing.T) {
		// The local server could not tell: neither a failure nor caught up.
		for _, s := range append(masterStates, MasterAsync) {
			c := coreAt(s, 3, 1)
			in := okWith(standbyFacts)
			require.False(t, in.Probe.StreamingChecked)
			c.Step(in)
			require.Equal(t, 0, c.Failures(), s.String())
			require.Equal(t, t0, c.View().LastSuccess, s.String())
			wantTrigger := PartnerUp
			if s == MasterUnconfirmed {
				wantTrigger = Confirmed
			}
			require.Equal(t, wantTrigger, c.lastTrigger, s.String())
		}
	})
	t.Run("standby", func(t *testing.T) {
		for _, s := range []State{StandbyReady, StandbyConnected, StandbyHeartbeatLost, StandbyPromoting, StandbyNotPromoting} {
			for _, caughtUp := range []bool{false, true} {
				name := fmt.Sprintf("%s, caught up %v", s, caughtUp)
				a, b := coreAt(s, 3, 1), coreAt(s, 3, 1)
				in := streamingChecked(caughtUp)
				plain := in
				plain.Probe.StreamingChecked, plain.Probe.CaughtUp = false, false
				outA, outB := a.Step(plain), b.Step(in)
				require.Equal(t, outA, outB, name)
				require.Equal(t, *a, *b, name)
				require.Equal(t, PartnerUp, b.lastTrigger, name)
				require.Equal(t, 0, b.Failures(), name)
			}
		}
	})
	t.Run("a failed heartbeat is just that", func(t *testing.T) {
		for _, s := range append(masterStates, MasterAsync) {
			a, b := coreAt(s, 3, 0), coreAt(s, 3, 0)
			checked := failProbe(false)
			checked.Probe.StreamingChecked = true
			outA, outB := a.Step(failProbe(false)), b.Step(checked)
			require.Equal(t, outA, outB, s.String())
			require.Equal(t, *a, *b, s.String())
			require.Equal(t, FailRefused, b.View().LastClass, s.String())
		}
	})
}

// TestFencePerState: writes only on a confirmed primary; fenced only once
// superseded.
func TestFencePerState(t *testing.T) {
	want := map[State]Fence{MasterUnconfirmed: FenceUnconfirmed, MasterFenced: FenceFenced,
		MasterSwitchingOver: FenceSwitching, MasterHandedOver: FenceStopping, MasterRejoining: FenceStopping}
	for s := range NumStates {
		w, ok := want[s]
		if !ok {
			w = FenceOpen
		}
		require.Equal(t, w, coreAt(s, 3, 0).Fence(), s.String())
		require.Equal(t, w, reach(t, s, 3).Fence(), s.String())
	}
	// Along the way of an old master that restarts and is superseded.
	c := unconfirmedCore(3, false)
	require.Equal(t, FenceUnconfirmed, c.Fence())
	c.Step(failProbe(false))
	require.Equal(t, FenceUnconfirmed, c.Fence(), "a failure confirms nothing")
	c.Step(okWith(standbyFacts))
	require.Equal(t, FenceOpen, c.Fence())
	c.Step(supersededProbe())
	require.Equal(t, FenceFenced, c.Fence())
	c.Step(okWith(standbyFacts))
	require.Equal(t, FenceFenced, c.Fence(), "for good")
}

// The runner turns only at NextTick or an event, so every time at which a
// tick decides something is in NextTick, even while a heartbeat is under
// way or with no usable partner: the takeover's expiry (and the longer one
// for a master seen stopping), and the end of a master's lease.
func TestNextTickHasEveryTimer(t *testing.T) {
	c := takingOver(t, 3)
	c.SetPartner(true, false)
	tickAt(c, t0.Add(time.Second))
	require.Equal(t, t0.Add(takeoverTimeout), c.NextTick(), "the takeover's expiry, with no heartbeat due")
	tickAt(c, t0.Add(takeoverTimeout))
	require.Equal(t, StandbyConnected, c.State())
	require.Equal(t, Never, c.NextTick(), "expired: no timer left")

	c = takingOver(t, 3)
	require.NotNil(t, tickAt(c, t0.Add(takeoverTimeout-time.Second)).Probe)
	require.Equal(t, t0.Add(takeoverTimeout), c.NextTick(), "under way: the expiry, not the heartbeat")
	c.Step(stoppingFail(FailRefused, t0.Add(takeoverTimeout-time.Millisecond), false, -1))
	require.NotNil(t, tickAt(c, t0.Add(takeoverTimeout)).Probe)
	require.Equal(t, StandbyTakingOver, c.State(), "a master seen stopping is waited for")
	require.Equal(t, t0.Add(3*takeoverTimeout), c.NextTick(), "under way: the longer expiry")

	m := witnessCore(MasterConnected)
	m.Step(Input{Kind: WitnessInput, At: t0, Witness: WitnessResult{Op: WitnessRenew, Start: t0, Changed: true,
		Row: WitnessRow{Found: true, Term: 4, Mine: true, Sync: true}}})
	m.Step(timeoutAt(t0.Add(time.Second)))
	require.NotNil(t, tickAt(m, t0.Add(1100*time.Millisecond)).Probe)
	end := t0.Add(2*time.Second + time.Millisecond) // lease 3 s, less an interval of 1 s
	require.Equal(t, end, m.NextTick(), "under way: the end of the lease")
	require.Equal(t, fenceOut(FenceNoLease), tickAt(m, end).Fence, "the tick at that time fences")
	require.Equal(t, Never, m.NextTick(), "past: no timer left")
}
