package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// The core scenarios, on servers unlike the test bed's default: database
// encodings other than UTF8, every form of synchronous_standby_names, and
// standby names that need quoting. The product of all axes would take too
// long for CI; each row varies several at once and every value of every
// axis appears in some row.
var environments = []struct {
	name string
	opts cluster.Options
}{
	{"SQL_ASCII/plain name", cluster.Options{Encoding: "SQL_ASCII"}},
	{"LATIN1/FIRST with quoted names", cluster.Options{Encoding: "LATIN1", Names: [2]string{"Alpha Node", "beta-2"},
		SyncNames: func(p string) string { return "FIRST 1 (" + p + ")" }}},
	{"EUC_JP/ANY", cluster.Options{Encoding: "EUC_JP", Names: [2]string{"node_a", "node_b"},
		SyncNames: func(p string) string { return "ANY 1 (" + p + ")" }}},
	{"UTF8 C.UTF-8 locale/star", cluster.Options{Encoding: "UTF8", Locale: "C.UTF-8", Names: [2]string{"n1", "n2"},
		SyncNames: func(string) string { return "*" }}},
	{"WIN1252/number form", cluster.Options{Encoding: "WIN1252", Names: [2]string{"Node1", "Node2"},
		SyncNames: func(p string) string { return "1 (" + p + ")" }}},
}

func TestEnvironments(t *testing.T) {
	for _, env := range environments {
		t.Run(env.name, func(t *testing.T) { coreScenarios(t, env.opts) })
	}
}

// coreScenarios: DDL that emits barriers on a live pair (and its replay),
// a standby kill and restart (async, then sync restored as it was), a
// master kill under load (promotion, nothing acknowledged lost), and the
// old master restarted as it was (fenced, no writes).
func coreScenarios(t *testing.T, opts cluster.Options) {
	c := startPair(t, opts, nil)
	master, standby := c.Master, c.Standby
	syncNames := master.QueryString(t, "SHOW synchronous_standby_names")
	require.NotEmpty(t, syncNames)
	for _, n := range c.Nodes() {
		require.Equal(t, orDefault(opts.Encoding, "UTF8"), n.QueryString(t, "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()"))
	}

	ddlWithBarriers(t, master, standby)

	// The standby dies: the master goes asynchronous, and back to
	// synchronous, with the same setting, once the standby returns.
	l := startLoad(t, master)
	l.waitAcked(t, 50, 30*time.Second, "load on the master")
	mark := master.LogMark()
	standby.Kill9(t)
	master.WaitForLog(t, mark, transitionLine(core.MasterSwitching, core.ActionDone), failoverTimeout)
	l.waitAcked(t, 50, failoverTimeout, "commits on the master did not resume")
	standby.Start(t)
	master.WaitForLog(t, mark, transitionLine(core.MasterRestoring, core.ActionDone), failoverTimeout)
	require.Equal(t, syncNames, master.QueryString(t, "SHOW synchronous_standby_names"))
	waitSyncSeen(t, c)

	// The master dies under load: the standby promotes with every
	// acknowledged commit.
	l.waitAcked(t, 50, failoverTimeout, "load on the master")
	master.Kill9(t)
	acked := l.ackedIDs()
	l.stop()
	waitPromoted(t, standby)
	requireAllPresent(t, standby, acked)
	ctx, cancel := ctxTimeout(failoverTimeout)
	defer cancel()
	require.NoError(t, standby.TryExec(ctx, "INSERT INTO acked (id) VALUES (-1)"))

	// The old master comes back as it was: it takes no write and fences
	// itself.
	w := startWriters(t, master)
	mark = master.LogMark()
	_ = master.TryStart()
	master.WaitForLog(t, mark, transitionLine(core.MasterUnconfirmed, core.Superseded), failoverTimeout)
	cluster.Eventually(t, failoverTimeout, 50*time.Millisecond, func() bool { return master.PostmasterPID() == 0 },
		"the fenced old master did not shut down")
	w.stop()
	w.requireNoWrites(t)
}

// ddlWithBarriers runs, on a live pair, DDL whose execution and replay wait
// for every process to absorb a ProcSignalBarrier, the keeper's worker
// included: each must finish, on the master and on the standby.
func ddlWithBarriers(t *testing.T, master, standby *cluster.Node) {
	t.Helper()
	ctx, cancel := ctxTimeout(30 * time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		db := fmt.Sprintf("scratch_%d", i)
		require.NoError(t, master.TryExec(ctx, "CREATE DATABASE "+db))
		require.NoError(t, master.TryExec(ctx, "DROP DATABASE "+db), "DROP DATABASE hung or failed")
	}
	// Tablespaces inside the data directory: both nodes share a machine.
	for _, n := range []*cluster.Node{master, standby} {
		n.SetConf("allow_in_place_tablespaces", "on")
		n.Reload(t)
	}
	require.NoError(t, master.TryExec(ctx, "CREATE TABLESPACE scratch_ts LOCATION ''"))
	require.NoError(t, master.TryExec(ctx, "CREATE DATABASE scratch_moved"))
	require.NoError(t, master.TryExec(ctx, "ALTER DATABASE scratch_moved SET TABLESPACE scratch_ts"), "ALTER DATABASE SET TABLESPACE hung or failed")
	require.NoError(t, master.TryExec(ctx, "DROP DATABASE scratch_moved"))
	require.NoError(t, master.TryExec(ctx, "DROP TABLESPACE scratch_ts"), "DROP TABLESPACE hung or failed")
	require.NoError(t, master.TryExec(ctx, "CREATE TABLE ddl_probe (id int)"))
	require.NoError(t, master.TryExec(ctx, "ALTER TABLE ddl_probe ADD COLUMN note text"))
	require.NoError(t, master.TryExec(ctx, "DROP TABLE ddl_probe"))
	// Replay of the drops on the standby waits for its barrier too.
	cluster.Eventually(t, 30*time.Second, 50*time.Millisecond, func() bool {
		s, err := standby.TryQueryString(context.Background(), "SELECT count(*) FROM pg_database WHERE datname LIKE 'scratch_%'")
		return err == nil && s == "0"
	}, "the standby did not replay DROP DATABASE")
	// The keeper went on: both still connected.
	master.WaitForTitle(t, title(core.MasterConnected), startTimeout)
	standby.WaitForTitle(t, title(core.StandbyConnected), startTimeout)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
