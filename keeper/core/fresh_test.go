package core

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFreshWindow(t *testing.T) {
	require.Equal(t, 2*time.Second, freshWindow(time.Second))
	require.Equal(t, 10*time.Second, freshWindow(5*time.Second))
	require.Equal(t, 350*time.Millisecond, freshWindow(100*time.Millisecond), "one late heartbeat and some slack")
}

// masterSample is a heartbeat of a master with its sample of the standby's
// walsender: its flush position (-1: none streams), at.
func masterSample(ok bool, flush int64, at time.Time) Input {
	in := Input{Kind: ProbeInput, At: at, Probe: ProbeResult{OK: ok, Partner: syncMaster, LocalLSN: -1,
		FlushKnown: true, FlushLSN: flush}}
	if ok {
		in.Probe.StreamingChecked, in.Probe.CaughtUp = true, true
	} else {
		in.Probe.Class, in.Probe.Detail, in.Probe.ReplicationAlive = FailTimeout, testReason, true
	}
	return in
}

// A master's walsender that is there but reports nothing new proves
// nothing once the window is over: a standby host that vanished leaves it
// open until wal_sender_timeout.
func TestMasterSilentWalsenderIsNotLife(t *testing.T) {
	c := coreAt(MasterConnected, 3, 0)
	c.SetInterval(time.Second, t0)
	c.Step(masterSample(true, 1000, t0))
	for i := 1; i <= 3; i++ {
		c.Step(masterSample(false, 1000, t0.Add(time.Duration(i)*time.Second)))
	}
	require.Equal(t, 3, c.View().AliveWhileFailing, "the connection is there: a firewall, not a crash, as far as refusals go")
	require.Equal(t, MasterSwitching, c.State(), "partner lost, as for a standby that is down: fresh at 1 s and 2 s only")

	// The same, with the standby confirming new positions: only the
	// heartbeat path is lost.
	c = coreAt(MasterConnected, 3, 0)
	c.SetInterval(time.Second, t0)
	c.Step(masterSample(true, 1000, t0))
	for i := 1; i <= 3; i++ {
		c.Step(masterSample(false, 1000+int64(i)*40, t0.Add(time.Duration(i)*time.Second)))
	}
	require.Equal(t, 3, c.View().AliveWhileFailing)
	require.Equal(t, MasterHeartbeatLost, c.State())

	// No walsender streams: not heard from, whatever the local check said.
	c = coreAt(MasterConnected, 3, 0)
	c.SetInterval(time.Second, t0)
	for i := 1; i <= 3; i++ {
		c.Step(masterSample(false, -1, t0.Add(time.Duration(i)*time.Second)))
	}
	require.Equal(t, MasterSwitching, c.State())
}

// Without the sample (an older runner, or the local check failed) the
// walsender counts as the local check says.
func TestMasterWithoutSampleAsBefore(t *testing.T) {
	c := coreAt(MasterConnected, 3, 0)
	c.SetInterval(time.Second, t0)
	for i := 1; i <= 3; i++ {
		in := masterSample(false, 1000, t0.Add(time.Duration(i)*time.Second))
		in.Probe.FlushKnown = false
		c.Step(in)
	}
	require.Equal(t, MasterHeartbeatLost, c.State())
}

// The standby applies the window only to a master known to write
// keepalive records; a primary with open commits writes them.
func TestWindowAndKeepalive(t *testing.T) {
	c := coreAt(StandbyConnected, 3, 0)
	c.SetInterval(time.Second, t0)
	require.Zero(t, c.window(), "the master was never reached")
	c.Step(okProbe())
	require.Zero(t, c.window(), "an older master: the rule of before")
	facts := syncMaster
	facts.Keepalives = true
	c.Step(okWith(facts))
	require.Equal(t, 2*time.Second, c.window())
	require.False(t, c.keepalive(), "a standby writes no WAL")

	for s := range NumStates {
		c := coreAt(s, 3, 0)
		require.Equal(t, s.Mode() == MasterMode && c.Fence() == FenceOpen, c.keepalive(), s.String())
		if s.Mode() == MasterMode {
			require.Zero(t, c.window(), s.String())
		}
	}
	require.False(t, coreAt(MasterUnconfirmed, 3, 0).keepalive(), "an old master that came back writes nothing")
}
