package keeper

import (
	"context"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/core"
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

func TestReceiverNameOf(t *testing.T) {
	for _, tc := range []struct {
		name, conninfo, cluster, want string
	}{
		{"kv plain", "host=a port=5432 application_name=node2 user=rep", "", "node2"},
		{"kv first item", "application_name=node2 host=a", "", "node2"},
		{"kv spaces around =", "host=a application_name = node2", "", "node2"},
		{"kv quoted", "host=a application_name='node 2' user=rep", "", "node 2"},
		{"kv quoted with escapes", `host=a application_name='my \'node\' \\2' password='x y'`, "", `my 'node' \2`},
		{"kv unquoted with an escaped space", `host=a application_name=node\ 2 user=rep`, "", "node 2"},
		{"kv quoted, empty", "host=a application_name='' user=rep", "", ""},
		{"kv wins over cluster_name", "host=a application_name=node2", "pair", "node2"},
		{"URI", "postgresql://rep@a:5432/postgres?application_name=node2", "", "node2"},
		{"URI, postgres scheme", "postgres://a/postgres?sslmode=disable&application_name=node2&connect_timeout=5", "", "node2"},
		{"URI with percent-encoding", "postgresql://a/db?application_name=node%202%2Fa%26b", "", "node 2/a&b"},
		{"URI, bad percent-encoding is kept", "postgresql://a/db?application_name=node%2", "", "node%2"},
		{"URI wins over cluster_name", "postgresql://a/db?application_name=node2", "pair", "node2"},
		{"fallback to cluster_name", "host=a user=rep", "pair", "pair"},
		{"fallback to walreceiver", "host=a user=rep", "", "walreceiver"},
		{"empty conninfo", "", "", "walreceiver"},
		{"fallback_application_name must not match", "host=a fallback_application_name=other", "pair", "pair"},
		{"fallback_application_name alone", "fallback_application_name=other", "", "walreceiver"},
		{"fallback_application_name in a URI", "postgresql://a/db?fallback_application_name=other", "", "walreceiver"},
		{"a URI's path is no query", "postgresql://a/application_name=x", "", "walreceiver"},
		{"application_name inside another value is none", "host=a options='-capplication_name=x'", "pair", "pair"},
	} {
		require.Equal(t, tc.want, receiverNameOf(tc.conninfo, tc.cluster), tc.name)
	}
}

// libpq decodes only %XX in a URI: "+" stays "+" (url.QueryUnescape would
// turn it into a space).
func TestReceiverNameOfURIPlus(t *testing.T) {
	require.Equal(t, "a+b", receiverNameOf("postgresql://a/db?application_name=a+b", ""))
}

// libpq keeps the last of two application_name items.
func TestReceiverNameOfRepeatedKey(t *testing.T) {
	require.Equal(t, "second", receiverNameOf("application_name=first host=a application_name=second", ""))
}

func TestReceiverName(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		name     string
		kv, uri  *string
		cluster  string
		expected string
	}{
		{"kv token", s("'node 2'"), nil, "pair", "node 2"},
		{"kv token over a URI token", s("a"), s("b"), "", "a"},
		{"URI token", nil, s("node%202"), "pair", "node 2"},
		{"URI token that does not decode", nil, s("%zz"), "", "%zz"},
		{"empty kv token", s("''"), nil, "pair", ""},
		{"cluster_name", nil, nil, "pair", "pair"},
		{"nothing", nil, nil, "", "walreceiver"},
	} {
		require.Equal(t, tc.expected, ReceiverName(tc.kv, tc.uri, tc.cluster), tc.name)
	}
}

func TestUnquoteConninfo(t *testing.T) {
	for in, want := range map[string]string{
		"node2":           "node2",
		"'node2'":         "node2",
		"'node 2'":        "node 2",
		`'it\'s'`:         "it's",
		`'a\\b'`:          `a\b`,
		`a\ b`:            "a b",
		`'\x'`:            "x",
		"''":              "",
		"'":               "'",
		`trailing\`:       `trailing\`,
		`'unbalanced`:     `'unbalanced`,
		`'日本\'語'`:         "日本'語",
		`'with = equals'`: "with = equals",
	} {
		require.Equal(t, want, unquoteConninfo(in), in)
	}
}

func TestSQLRegexpQuotes(t *testing.T) {
	require.Equal(t, `'a''b\s'`, sqlRegexp(`a'b\s`))
	require.Contains(t, factsSQL, sqlRegexp(appNameKV))
	require.Contains(t, factsSQL, sqlRegexp(appNameURI))
}

// ParseSettings names this server's WAL receiver as PostgreSQL does.
func TestParseSettingsReceiverName(t *testing.T) {
	cleanPGEnv(t)
	for _, tc := range []struct{ conninfo, cluster, want string }{
		{"host=a application_name=node2", "pair", "node2"},
		{"postgresql://a/db?application_name=node%32", "", "node2"},
		{"host=a", "pair", "pair"},
		{"", "", "walreceiver"},
	} {
		raw := runRaw(t, closedPort(t), closedPort(t))
		raw.PrimaryConninfo, raw.ClusterName = tc.conninfo, tc.cluster
		s, errs := ParseSettings(raw)
		require.Empty(t, errs)
		require.Equal(t, tc.want, s.ReceiverName, tc.conninfo)
	}
}

// TestProbeSyncFacts runs the walsender counts and the application_name
// tokens through Probe: what the heartbeat makes of them.
func TestProbeSyncFacts(t *testing.T) {
	cleanPGEnv(t)
	srv := startFakePG(t)
	self := core.Identity{SystemID: 7300000000000000001, StartTime: t0}
	master := func(names string, w walsenderCounts) []fakeColumn {
		return fakeFacts{SysID: "7300000000000000001", StartTime: fakeStartText, Names: names, W: w,
			LSN: "50331744", Timeline: "1", KV: fakeNull, URI: fakeNull, ClusterName: "pair"}.columns()
	}
	standby := func(kv, uri, cluster string) []fakeColumn {
		return fakeFacts{InRecovery: true, SysID: "7300000000000000001", StartTime: fakeStartText,
			LSN: "-1", Timeline: "0", KV: kv, URI: uri, ClusterName: cluster}.columns()
	}
	for _, tc := range []struct {
		name                                 string
		row                                  []fakeColumn
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
		{"standby, kv token", standby("'node 2'", fakeNull, "pair"), core.MasterMode, false, false, false, "node 2"},
		{"standby, URI token", standby(fakeNull, "node%202", "pair"), core.MasterMode, false, false, false, "node 2"},
		{"standby, cluster_name", standby(fakeNull, fakeNull, "pair"), core.MasterMode, false, false, false, "pair"},
		{"standby, nothing", standby(fakeNull, fakeNull, ""), core.MasterMode, false, false, false, "walreceiver"},
		// Without pg_read_all_settings the partner sends no conninfo: its
		// name falls back as if it had no application_name.
	} {
		srv.set(func(s *fakePG) { s.columns, s.queries = tc.row, nil })
		res := probeFake(t, srv, self, tc.mode)
		require.True(t, res.OK, "%s: %+v", tc.name, res)
		f := res.Partner
		require.Equal(t, tc.syncMode, f.SyncMode, tc.name)
		require.Equal(t, tc.syncStandby, f.SyncStandby, tc.name)
		require.Equal(t, tc.syncElsewhere, f.SyncElsewhere, tc.name)
		require.Equal(t, tc.receiver, f.ReceiverName, tc.name)
		require.Equal(t, []string{probeSQL(tc.mode, testReceiver)}, srv.received(), tc.name)
	}
}

// A receiver name is sent quoted: a quote in it cannot end the literal.
func TestProbeQuotesTheReceiverName(t *testing.T) {
	cleanPGEnv(t)
	srv := startFakePG(t, factsRow(false, "7300000000000000001", fakeStartText, false, "1", "1")...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := Probe(ctx, fakeConfig(t, srv.port), core.Identity{}, core.StandbyMode, "it's -- me")
	require.True(t, res.OK, res.Detail)
	q := srv.received()[0]
	require.Equal(t, simpleSQL(factsSQL, "it's -- me"), q)
	require.Contains(t, q, "application_name =  'it''s -- me' ")
}

// The runner learns the standby's walsender name from its heartbeat and
// names it when it asks this server about replication.
func TestRunnerNamesThePartnersWalsender(t *testing.T) {
	cleanPGEnv(t)
	partner := startFakePG(t, fakeFacts{InRecovery: true, SysID: "7300000000000000001", StartTime: fakeStartText,
		LSN: "-1", Timeline: "0", KV: "'node 2'", URI: fakeNull, ClusterName: "pair"}.columns()...)
	local := startFakePG(t)
	local.set(func(s *fakePG) {
		s.answers = map[string][]fakeColumn{
			simpleSQL(caughtUpSQL, "node 2"):                               {{oidBool, "t"}},
			simpleSQL(replicationAliveSQL[core.MasterMode], "node 2"):      {{oidBool, "t"}, {oidInt8, "-1"}},
			simpleSQL(replicationAliveSQL[core.MasterMode], ""):            {{oidBool, "f"}, {oidInt8, "-1"}},
			simpleSQL(caughtUpSQL, "walreceiver"):                          {{oidBool, "f"}},
			simpleSQL(replicationAliveSQL[core.MasterMode], "walreceiver"): {{oidBool, "f"}, {oidInt8, "-1"}},
		}
	})
	raw := runRaw(t, partner.port, local.port)
	raw.SystemID, raw.StartTime = 7300000000000000001, t0
	raw.PrimaryConninfo = "host=x application_name=ignored-on-a-master"
	h := confirmedHost(raw)
	h.timeline = 1
	r := newTestRunner(t, h)
	require.Equal(t, "", r.partnerName, "not known before the first good heartbeat")

	heartbeat(t, r)
	awaitMessage(t, r)
	require.Equal(t, core.MasterConnected, r.core.State())
	require.Equal(t, "node 2", r.partnerName)
	require.Equal(t, []string{probeSQL(core.MasterMode, "")}, partner.received(), "a master names no receiver of its own")
	require.Equal(t, []string{simpleSQL(caughtUpSQL, "node 2")}, local.received())

	partner.stop()
	heartbeat(t, r)
	awaitMessage(t, r)
	require.Equal(t, []string{simpleSQL(caughtUpSQL, "node 2"), simpleSQL(replicationAliveSQL[core.MasterMode], "node 2")},
		local.received())
	require.Equal(t, 1, r.core.View().AliveWhileFailing, "its walsender still streams")
	require.Equal(t, "node 2", r.partnerName, "a failed heartbeat forgets nothing")
}
