package test

import (
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/stretchr/testify/require"
)

// The heartbeat role is rejected by pg_hba.conf, first on the master only,
// then on both nodes, while streaming replication (another role, another
// pg_hba line) keeps working. Neither keeper may act: there is exactly one
// writable primary and synchronous replication stays on throughout.
func TestHeartbeatPathLostReplicationAlive(t *testing.T) {
	c := newPair(t, nil)
	master, standby := c.Master, c.Standby
	master.Exec(t, "CREATE ROLE keeper LOGIN SUPERUSER")
	for _, n := range c.Nodes() {
		other := c.Other(n)
		n.SetConf("pg_keeper.partner_conninfo", "'host=127.0.0.1 port="+itoa(other.Port)+" user=keeper dbname=postgres'")
		n.Reload(t)
	}
	master.WaitForTitle(t, title(core.MasterConnected), startTimeout)
	standby.WaitForTitle(t, title(core.StandbyConnected), startTimeout)

	const reject = "host all keeper 127.0.0.1/32 reject"
	onePrimary := func() {
		t.Helper()
		require.False(t, master.InRecovery(t), "the master must stay the primary")
		require.True(t, standby.InRecovery(t), "the standby must not promote")
		require.Equal(t, "standby", master.QueryString(t, "SHOW synchronous_standby_names"))
	}

	// One side: the standby's heartbeats to the master are refused.
	mark := standby.LogMark()
	master.SetHBA(t, reject)
	standby.WaitForLog(t, mark, logLine("heartbeat to master failed (1/3): authentication: "), failoverTimeout)
	standby.WaitForLog(t, mark, transitionLine(core.StandbyConnected, core.HeartbeatLost), failoverTimeout)
	standby.WaitForTitle(t, title(core.StandbyHeartbeatLost), failoverTimeout)
	onePrimary()

	// Both sides: the master's heartbeats to the standby are refused too.
	mmark := master.LogMark()
	standby.SetHBA(t, reject)
	master.WaitForLog(t, mmark, logLine("heartbeat to standby failed (1/3): authentication: "), failoverTimeout)
	master.WaitForLog(t, mmark, transitionLine(core.MasterConnected, core.HeartbeatLost), failoverTimeout)
	master.WaitForTitle(t, title(core.MasterHeartbeatLost), failoverTimeout)
	// Several detection windows (3 × 200 ms) later, still one primary.
	for i := 0; i < 10; i++ {
		time.Sleep(300 * time.Millisecond)
		onePrimary()
	}
	// Commits still go through, synchronously.
	master.Exec(t, "CREATE TABLE still_sync (x int)")
	require.Equal(t, "sync", master.QueryString(t, "SELECT sync_state FROM pg_stat_replication"))

	// The path comes back: both keepers say so.
	master.SetHBA(t, "")
	standby.SetHBA(t, "")
	master.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
	standby.WaitForTitle(t, title(core.StandbyConnected), failoverTimeout)
	require.Regexp(t, transitionLine(core.StandbyHeartbeatLost, core.PartnerUp), standby.LogSince(mark))
}
