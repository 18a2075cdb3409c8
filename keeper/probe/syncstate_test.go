package probe

import (
	"context"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"
	"github.com/stretchr/testify/require"
)

// Which walsender is this standby, and can a commit be acknowledged
// without it (syncstate.go).

func TestSyncWithMe(t *testing.T) {
	for _, tc := range []struct {
		name            string
		names           string
		w               walsenderCounts
		with, elsewhere bool
	}{
		{"one name, ours sync", "node2", walsenderCounts{Mine: 1, MineSync: 1}, true, false},
		{"FIRST 1, ours sync, nobody waiting", "FIRST 1 (node2, node3)", walsenderCounts{Mine: 1, MineSync: 1}, true, false},
		{"FIRST 1 with a potential other", "FIRST 1 (node2, node3)",
			walsenderCounts{Mine: 1, MineSync: 1, OthersPotential: 1}, false, true},
		{"FIRST 2, both sync", "FIRST 2 (node2, node3)",
			walsenderCounts{Mine: 1, MineSync: 1, OthersSync: 1}, true, false},
		{"ANY 1 (a,b) with two quorum", "ANY 1 (node2, node3)",
			walsenderCounts{Mine: 1, MineQuorum: 1, OthersSync: 1, Quorum: 2}, false, true},
		{"ANY 1 (a,b), ours the only one", "ANY 1 (node2, node3)",
			walsenderCounts{Mine: 1, MineQuorum: 1, Quorum: 1}, true, false},
		{"ANY 2 (a,b): both needed", "ANY 2 (node2, node3)",
			walsenderCounts{Mine: 1, MineQuorum: 1, OthersSync: 1, Quorum: 2}, true, false},
		{"any 2 (a,b,c) with three quorum", "any 2(node2, node3, node4)",
			walsenderCounts{Mine: 1, MineQuorum: 1, OthersSync: 2, Quorum: 3}, false, true},
		{"'*' with a CDC walsender sync and ours potential", "*",
			walsenderCounts{Mine: 1, OthersSync: 1}, false, true},
		{"'*' with ours sync and a CDC walsender potential", "*",
			walsenderCounts{Mine: 1, MineSync: 1, OthersPotential: 1}, false, true},
		{"two walsenders with our name", "node2", walsenderCounts{Mine: 2, MineSync: 1}, false, true},
		{"two walsenders with our name, neither sync", "node2", walsenderCounts{Mine: 2}, false, true},
		{"ours absent and nobody sync", "node2", walsenderCounts{}, false, false},
		{"ours absent, nobody sync, others potential", "FIRST 1 (node3, node4)",
			walsenderCounts{OthersPotential: 2}, false, false},
		{"ours absent, another sync", "node3", walsenderCounts{OthersSync: 1}, false, true},
		{"empty names", "", walsenderCounts{Mine: 1, MineSync: 1}, false, false},
		{"blank names", "  ", walsenderCounts{Mine: 1, MineSync: 1}, false, false},
		{"empty names, others sync", "", walsenderCounts{OthersSync: 3}, false, false},
	} {
		with, elsewhere := syncWithMe(tc.names, tc.w)
		require.Equal(t, tc.with, with, "%s: with", tc.name)
		require.Equal(t, tc.elsewhere, elsewhere, "%s: elsewhere", tc.name)
		require.False(t, with && elsewhere, tc.name)
	}
}

func TestQuorumSize(t *testing.T) {
	for names, want := range map[string]int{
		"ANY 2 (a, b)":    2,
		"any 1(a)":        1,
		"  Any 10 ( a )":  10,
		"ANY 3 (\"a b\")": 3,
		"FIRST 1 (a, b)":  0,
		"2 (a, b)":        0,
		"a, b":            0,
		"*":               0,
		"":                0,
		"anyone":          0,
	} {
		require.Equal(t, want, quorumSize(names), names)
	}
}

func TestSQLRegexpQuotes(t *testing.T) {
	require.Equal(t, `'a''b\s'`, sqlRegexp(`a'b\s`))
	require.Contains(t, FactsSQL, sqlRegexp(conninfo.AppNameKV))
	require.Contains(t, FactsSQL, sqlRegexp(conninfo.AppNameURI))
}

// TestProbeSyncFacts runs the walsender counts and the application_name
// tokens through Probe: what the heartbeat makes of them.
func TestProbeSyncFacts(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t)
	self := core.Identity{SystemID: 7300000000000000001, StartTime: t0}
	master := func(names string, w walsenderCounts) []fakepg.Column {
		return fakepg.Facts{SysID: "7300000000000000001", StartTime: fakepg.StartText, Names: names, W: fakepg.Counts(w),
			LSN: "50331744", Timeline: "1", KV: fakepg.Null, URI: fakepg.Null, ClusterName: "pair"}.Columns()
	}
	standby := func(kv, uri, cluster string) []fakepg.Column {
		return fakepg.Facts{InRecovery: true, SysID: "7300000000000000001", StartTime: fakepg.StartText,
			LSN: "-1", Timeline: "0", KV: kv, URI: uri, ClusterName: cluster}.Columns()
	}
	for _, tc := range []struct {
		name                                 string
		row                                  []fakepg.Column
		mode                                 core.Mode
		syncMode, syncStandby, syncElsewhere bool
		receiver                             string
	}{
		{"master, synchronous with this standby", master("node2", walsenderCounts{Mine: 1, MineSync: 1}), core.StandbyMode,
			true, true, false, ""},
		{"master, a CDC walsender can acknowledge", master("*", walsenderCounts{Mine: 1, OthersSync: 1}), core.StandbyMode,
			true, false, true, ""},
		{"master, asynchronous", master("", walsenderCounts{Mine: 1}), core.StandbyMode, false, false, false, ""},
		{"master, this standby not streaming", master("node2", walsenderCounts{}), core.StandbyMode, true, false, false, ""},
		// A master's conninfo tokens are NULL: it has no receiver name.
		{"standby, kv token", standby("'node 2'", fakepg.Null, "pair"), core.MasterMode, false, false, false, "node 2"},
		{"standby, URI token", standby(fakepg.Null, "node%202", "pair"), core.MasterMode, false, false, false, "node 2"},
		{"standby, cluster_name", standby(fakepg.Null, fakepg.Null, "pair"), core.MasterMode, false, false, false, "pair"},
		{"standby, nothing", standby(fakepg.Null, fakepg.Null, ""), core.MasterMode, false, false, false, "walreceiver"},
		// Without pg_read_all_settings the partner sends no conninfo: its
		// name falls back as if it had no application_name.
	} {
		srv.Set(func(s *fakepg.Server) { s.Columns, s.Queries = tc.row, nil })
		res := probeFake(t, srv, self, tc.mode)
		require.True(t, res.OK, "%s: %+v", tc.name, res)
		f := res.Partner
		require.Equal(t, tc.syncMode, f.SyncMode, tc.name)
		require.Equal(t, tc.syncStandby, f.SyncStandby, tc.name)
		require.Equal(t, tc.syncElsewhere, f.SyncElsewhere, tc.name)
		require.Equal(t, tc.receiver, f.ReceiverName, tc.name)
		require.Equal(t, []string{probeSQL(tc.mode, testReceiver)}, srv.Received(), tc.name)
	}
}

// A receiver name is sent quoted: a quote in it cannot end the literal.
func TestProbeQuotesTheReceiverName(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, false, "1", "1")...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := Probe(ctx, fakepg.Config(t, srv.Port), core.Identity{}, core.StandbyMode, "it's -- me")
	require.True(t, res.OK, res.Detail)
	q := srv.Received()[0]
	require.Equal(t, fakepg.SimpleSQL(FactsSQL, "it's -- me"), q)
	require.Contains(t, q, "application_name =  'it''s -- me' ")
}

// A heartbeat role that may not read primary_conninfo (no
// pg_read_all_settings) gets NULLs: the standby's name is then unknown (""),
// never "walreceiver", which would name no walsender at all.
func TestProbeUnreadableReceiverName(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, fakepg.Facts{InRecovery: true, SysID: "7300000000000000001", StartTime: fakepg.StartText,
		LSN: "-1", Timeline: "0", KV: fakepg.Null, URI: fakepg.Null, ClusterName: fakepg.Null}.Columns()...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := Probe(ctx, fakepg.Config(t, srv.Port), core.Identity{SystemID: 7300000000000000001, StartTime: t0}, core.MasterMode, "")
	require.True(t, res.OK, res.Detail)
	require.Equal(t, "", res.Partner.ReceiverName)

	srv.Set(func(s *fakepg.Server) {
		s.Columns = fakepg.Facts{InRecovery: true, SysID: "7300000000000000001", StartTime: fakepg.StartText,
			LSN: "-1", Timeline: "0", KV: fakepg.Null, URI: fakepg.Null, ClusterName: ""}.Columns()
	})
	res = Probe(ctx, fakepg.Config(t, srv.Port), core.Identity{SystemID: 7300000000000000001, StartTime: t0}, core.MasterMode, "")
	require.True(t, res.OK, res.Detail)
	require.Equal(t, "walreceiver", res.Partner.ReceiverName)
}
