package keeper

import (
	ct "github.com/pg-keeper/pg_keeper/keeper/core/coretest"
	"testing"

	"github.com/pg-keeper/pg_keeper/keeper/probe"

	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/stretchr/testify/require"
)

const standbyHoldWhy = "master lost, but promoting could lose acknowledged commits or make a second primary: not promoting"

// The runner checks replication at every failed heartbeat, not only near
// the count: whether it outlives the failures decides.
func TestRunnerChecksReplicationAtEveryFailure(t *testing.T) {
	fakepg.CleanEnv(t)
	master := fakepg.Start(t, fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, true, "50331744", "1")...)
	local := fakepg.Start(t, fakepg.Col(fakepg.OIDBool, "t"), fakepg.Col(fakepg.OIDInt8, "50331744"), fakepg.Col(fakepg.OIDBool, "f"))
	raw := runRaw(t, master.Port, local.Port)
	raw.SystemID, raw.StartTime = 7300000000000000001, ct.T0
	raw.KeepalivesCount = 3
	h := newFakeHost(raw)
	h.inRecovery = true
	r := newTestRunner(t, h)
	require.Equal(t, "walreceiver", r.settings.ReceiverName(), "no application_name, no cluster_name")

	heartbeat(t, r)
	awaitMessage(t, r)
	require.Equal(t, core.StandbyConnected, r.core.State())
	require.True(t, r.core.View().SyncConfirmed)
	require.Equal(t, []string{probeSQL(core.StandbyMode, "walreceiver")}, master.Received(), "the heartbeat names this standby")
	require.Empty(t, local.Received(), "a good heartbeat asks nothing of this server")

	master.Stop() // refused from now on; replication still streams, as behind a firewall
	n := logCount(h)
	for i := 1; i <= 2; i++ {
		heartbeat(t, r)
		awaitMessage(t, r)
		require.Len(t, local.Received(), i, "asked at failure %d", i)
		require.Equal(t, i, r.core.View().AliveWhileFailing)
	}
	local.Set(func(s *fakepg.Server) {
		s.Columns = []fakepg.Column{fakepg.Col(fakepg.OIDBool, "f"), fakepg.Col(fakepg.OIDInt8, "50331744"), fakepg.Col(fakepg.OIDBool, "f")}
	})
	heartbeat(t, r)
	awaitMessage(t, r)
	require.Len(t, local.Received(), 3)
	for _, q := range local.Received() {
		require.Equal(t, fakepg.SimpleSQL(probe.ReplicationAliveSQL[core.StandbyMode], "0"), q, "an older master: no window")
	}
	require.Equal(t, core.StandbyNotPromoting, r.core.State(), "a firewall, not a stopped master: no promotion under keep_master")
	refused := "refused: " + refusedDetail(master.Port)
	require.Equal(t, []core.LogLine{
		ct.Warn("pg_keeper: heartbeat to master failed (1/3): " + refused),
		ct.Warn("pg_keeper: heartbeat to master failed (2/3): " + refused),
		ct.Warn("pg_keeper: heartbeat to master failed (3/3): " + refused),
		ct.Warn("pg_keeper: " + standbyHoldWhy + " (3 failed heartbeats in a row; " + ct.RiskFirewall + ")"),
	}, logsSince(h, n))
}
