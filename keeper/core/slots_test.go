package core

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Dropping stale failover slots decides nothing: a drop is logged and
// recorded, nothing to drop (the usual case) leaves no trace, a failure
// is a warning.
func TestDropStaleSlotsResult(t *testing.T) {
	c := NewCore(StandbyMode, 3)
	out := c.Step(okProbe())
	require.Equal(t, []ActionKind{DropStaleSlots}, out.Actions)
	at := time.Now()

	out = c.Step(Input{Kind: ActionInput, Action: DropStaleSlots, At: at})
	require.Empty(t, out.Logs)
	require.Empty(t, out.Reports)
	require.Equal(t, StandbyConnected, c.State())

	out = c.Step(Input{Kind: ActionInput, Action: DropStaleSlots, At: at, Detail: `dropped the failover slot(s) "cdc"`})
	require.Equal(t, []LogLine{info(`drop-stale-slots finished: dropped the failover slot(s) "cdc"`)}, out.Logs)
	require.Len(t, out.Reports, 1)
	require.True(t, out.Reports[0].OK)

	out = c.Step(Input{Kind: ActionInput, Action: DropStaleSlots, At: at, Err: "slot is active"})
	require.Equal(t, []LogLine{warn("drop-stale-slots failed: slot is active")}, out.Logs)
	require.Equal(t, StandbyConnected, c.State())
}

// A standby drops its own failover slots at its first heartbeat to reach
// the master, whatever state it reached the master from: failed heartbeats
// at the start (a heartbeat-only failure, a master still promoting) used to
// skip it, and the slot sync worker then refused the master's slot for good.
func TestStaleSlotsEveryWayIn(t *testing.T) {
	ok := func(at time.Time) Input { in := okProbe(); in.At = at; return in }
	fail := func(at time.Time, alive bool) Input { in := failProbe(alive); in.At = at; return in }
	for _, way := range []struct {
		name  string
		first func(c *Core) // the failed heartbeats before the first good one
		from  State
	}{
		{"from the start", func(*Core) {}, StandbyReady},
		{"after the heartbeat was lost", func(c *Core) {
			for i := 0; i < 3; i++ {
				c.Step(fail(t0, true))
			}
		}, StandbyHeartbeatLost},
		{"after the master was never reached", func(c *Core) {
			for i := 0; i < 3; i++ {
				c.Step(fail(t0, false))
			}
		}, StandbyReady},
	} {
		t.Run(way.name, func(t *testing.T) {
			c := NewCore(StandbyMode, 3)
			way.first(c)
			require.Equal(t, way.from, c.State())
			require.Equal(t, []ActionKind{DropStaleSlots}, c.Step(ok(t0)).Actions)
			require.Equal(t, StandbyConnected, c.State())
			// Under way or failed: not at every heartbeat, again 30 s on.
			require.Empty(t, c.Step(ok(t0.Add(time.Second))).Actions)
			c.Step(Input{Kind: ActionInput, Action: DropStaleSlots, At: t0.Add(time.Second), Err: "in use"})
			require.Empty(t, c.Step(ok(t0.Add(29*time.Second))).Actions)
			require.Equal(t, []ActionKind{DropStaleSlots}, c.Step(ok(t0.Add(slotsRetry))).Actions)
			// Done, even with nothing dropped: not again until a reload turns
			// slot synchronization on.
			c.Step(Input{Kind: ActionInput, Action: DropStaleSlots, At: t0.Add(slotsRetry)})
			require.Empty(t, c.Step(ok(t0.Add(2*slotsRetry))).Actions)
			c.SetSyncSlots(true)
			require.Empty(t, c.Step(ok(t0.Add(3*slotsRetry))).Actions)
			c.SetSyncSlots(false)
			c.SetSyncSlots(true)
			require.Equal(t, []ActionKind{DropStaleSlots}, c.Step(ok(t0.Add(3*slotsRetry))).Actions)
		})
	}
}

// Without slot synchronization (before 17, or sync_replication_slots off)
// there is nothing to look at; a master never looks.
func TestStaleSlotsNotWithoutSync(t *testing.T) {
	c := NewCore(StandbyMode, 3)
	c.SetSyncSlots(false)
	require.Empty(t, c.Step(okProbe()).Actions)
	m := NewCore(MasterMode, 3)
	m.SetSyncSlots(true)
	for _, a := range m.Step(okProbe()).Actions {
		require.NotEqual(t, DropStaleSlots, a)
	}
}
