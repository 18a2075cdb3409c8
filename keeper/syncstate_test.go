package keeper

import (
	ct "github.com/pg-keeper/pg_keeper/keeper/core/coretest"
	"github.com/pg-keeper/pg_keeper/keeper/settings"
	"testing"

	"github.com/pg-keeper/pg_keeper/keeper/probe"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"
	"github.com/stretchr/testify/require"
)

// ParseSettings names this server's WAL receiver as PostgreSQL does.
func TestParseSettingsReceiverName(t *testing.T) {
	fakepg.CleanEnv(t)
	for _, tc := range []struct{ conninfo, cluster, want string }{
		{"host=a application_name=node2", "pair", "node2"},
		{"postgresql://a/db?application_name=node%32", "", "node2"},
		{"host=a", "pair", "pair"},
		{"", "", "walreceiver"},
	} {
		raw := runRaw(t, fakepg.ClosedPort(t), fakepg.ClosedPort(t))
		raw.PrimaryConninfo, raw.ClusterName = tc.conninfo, tc.cluster
		s, errs := settings.Parse(raw)
		require.Empty(t, errs)
		require.Equal(t, tc.want, s.ReceiverName(), tc.conninfo)
	}
}

// The runner learns the standby's walsender name from its heartbeat and
// names it when it asks this server about replication.
func TestRunnerNamesThePartnersWalsender(t *testing.T) {
	fakepg.CleanEnv(t)
	partner := fakepg.Start(t, fakepg.Facts{InRecovery: true, SysID: "7300000000000000001", StartTime: fakepg.StartText,
		LSN: "-1", Timeline: "0", KV: "'node 2'", URI: fakepg.Null, ClusterName: "pair"}.Columns()...)
	local := fakepg.Start(t)
	local.Set(func(s *fakepg.Server) {
		s.Answers = map[string][]fakepg.Column{
			fakepg.SimpleSQL(probe.CaughtUpSQL, "node 2"):                               {fakepg.Col(fakepg.OIDBool, "t"), fakepg.Col(fakepg.OIDInt8, "50331648")},
			fakepg.SimpleSQL(probe.ReplicationAliveSQL[core.MasterMode], "node 2"):      {fakepg.Col(fakepg.OIDBool, "t"), fakepg.Col(fakepg.OIDInt8, "50331744"), fakepg.Col(fakepg.OIDBool, "f")},
			fakepg.SimpleSQL(probe.ReplicationAliveSQL[core.MasterMode], ""):            {fakepg.Col(fakepg.OIDBool, "f"), fakepg.Col(fakepg.OIDInt8, "-1"), fakepg.Col(fakepg.OIDBool, "f")},
			fakepg.SimpleSQL(probe.CaughtUpSQL, "walreceiver"):                          {fakepg.Col(fakepg.OIDBool, "f"), fakepg.Col(fakepg.OIDInt8, "-1")},
			fakepg.SimpleSQL(probe.ReplicationAliveSQL[core.MasterMode], "walreceiver"): {fakepg.Col(fakepg.OIDBool, "f"), fakepg.Col(fakepg.OIDInt8, "-1"), fakepg.Col(fakepg.OIDBool, "f")},
		}
	})
	raw := runRaw(t, partner.Port, local.Port)
	raw.SystemID, raw.StartTime = 7300000000000000001, ct.T0
	raw.PrimaryConninfo = "host=x application_name=ignored-on-a-master"
	h := confirmedHost(raw)
	h.timeline = 1
	r := newTestRunner(t, h)
	require.Equal(t, "", r.exec.PartnerName(), "not known before the first good heartbeat")

	heartbeat(t, r)
	awaitMessage(t, r)
	require.Equal(t, core.MasterConnected, r.core.State())
	require.Equal(t, "node 2", r.exec.PartnerName())
	require.Equal(t, []string{probeSQL(core.MasterMode, "")}, partner.Received(), "a master names no receiver of its own")
	require.Equal(t, []string{fakepg.SimpleSQL(probe.CaughtUpSQL, "node 2")}, local.Received())

	partner.Stop()
	heartbeat(t, r)
	awaitMessage(t, r)
	require.Equal(t, []string{fakepg.SimpleSQL(probe.CaughtUpSQL, "node 2"), fakepg.SimpleSQL(probe.ReplicationAliveSQL[core.MasterMode], "node 2")},
		local.Received())
	require.Equal(t, 1, r.core.View().AliveWhileFailing, "its walsender still streams")
	require.Equal(t, "node 2", r.exec.PartnerName(), "a failed heartbeat forgets nothing")
}
