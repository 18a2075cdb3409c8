package core

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The core trusts a master's synchronous replication with this standby only
// while no other walsender can acknowledge commits without it.
func TestCoreSyncConfirmedClearedBySyncElsewhere(t *testing.T) {
	elsewhere := syncMaster
	elsewhere.SyncStandby, elsewhere.SyncElsewhere = false, true
	notYet := syncMaster
	notYet.SyncStandby = false // names set, nobody synchronous: commits wait

	c := NewCore(StandbyMode, 2)
	c.Step(okWith(syncMaster))
	require.True(t, c.syncConfirmed)
	c.Step(okWith(notYet))
	require.True(t, c.syncConfirmed, "commits wait for nobody else: still confirmed")
	c.Step(okWith(elsewhere))
	require.False(t, c.syncConfirmed, "a CDC client or another standby acknowledges commits without this one")
	c.Step(okWith(notYet))
	require.False(t, c.syncConfirmed)

	// Losing the master now is unsafe: commits it acknowledged may be missing here.
	c.Step(deadRefused())
	out := c.Step(deadRefused())
	require.Equal(t, StandbyNotPromoting, c.State())
	require.Equal(t, warn(standbyHoldWhy+" (2 failed heartbeats in a row; "+riskLSN("0/3000060", "unknown")+")"),
		out.Logs[len(out.Logs)-1])

	c.Step(okWith(syncMaster))
	require.True(t, c.syncConfirmed)
}
