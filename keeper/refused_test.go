package keeper

import (
	"testing"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/stretchr/testify/require"
)

const standbyHoldWhy = "master lost, but promoting could lose acknowledged commits or make a second primary: not promoting"

// The runner checks replication at every failed heartbeat, not only near
// the count: whether it outlives the failures decides.
func TestRunnerChecksReplicationAtEveryFailure(t *testing.T) {
	cleanPGEnv(t)
	master := startFakePG(t, factsRow(false, "7300000000000000001", fakeStartText, true, "50331744", "1")...)
	local := startFakePG(t, fakeColumn{oidBool, "t"}, fakeColumn{oidInt8, "50331744"})
	raw := runRaw(t, master.port, local.port)
	raw.SystemID, raw.StartTime = 7300000000000000001, t0
	raw.KeepalivesCount = 3
	h := newFakeHost(raw)
	h.inRecovery = true
	r := newTestRunner(t, h)
	require.Equal(t, "walreceiver", r.settings.ReceiverName, "no application_name, no cluster_name")

	heartbeat(t, r)
	awaitMessage(t, r)
	require.Equal(t, core.StandbyConnected, r.core.State())
	require.True(t, r.core.View().SyncConfirmed)
	require.Equal(t, []string{probeSQL(core.StandbyMode, "walreceiver")}, master.received(), "the heartbeat names this standby")
	require.Empty(t, local.received(), "a good heartbeat asks nothing of this server")

	master.stop() // refused from now on; replication still streams, as behind a firewall
	n := logCount(h)
	for i := 1; i <= 2; i++ {
		heartbeat(t, r)
		awaitMessage(t, r)
		require.Len(t, local.received(), i, "asked at failure %d", i)
		require.Equal(t, i, r.core.View().AliveWhileFailing)
	}
	local.set(func(s *fakePG) { s.columns = []fakeColumn{{oidBool, "f"}, {oidInt8, "50331744"}} })
	heartbeat(t, r)
	awaitMessage(t, r)
	require.Len(t, local.received(), 3)
	for _, q := range local.received() {
		require.Equal(t, replicationAliveSQL[core.StandbyMode], q)
	}
	require.Equal(t, core.StandbyNotPromoting, r.core.State(), "a firewall, not a stopped master: no promotion under keep_master")
	refused := "refused: " + refusedDetail(master.port)
	require.Equal(t, []core.LogLine{
		warn("pg_keeper: heartbeat to master failed (1/3): " + refused),
		warn("pg_keeper: heartbeat to master failed (2/3): " + refused),
		warn("pg_keeper: heartbeat to master failed (3/3): " + refused),
		warn("pg_keeper: " + standbyHoldWhy + " (3 failed heartbeats in a row; " + riskFirewall + ")"),
	}, logsSince(h, n))
}
