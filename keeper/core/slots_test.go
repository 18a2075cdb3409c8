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
