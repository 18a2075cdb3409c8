package test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// What a node saves about itself travels with pg_basebackup: node2 is
// rebuilt from node1 while node1 runs asynchronously, so it inherits
// node1's saved synchronous_standby_names (which names node2) and the empty value
// in postgresql.auto.conf. node2 is promoted later and node1 rebuilt from
// it: node2 must restore its own setting (naming node1), not node1's, or
// every commit would wait for node2 itself for ever.
func TestSavedStateDoesNotTravel(t *testing.T) {
	c := startPair(t, cluster.Options{Names: [2]string{"node1", "node2"}}, nil)
	node1, node2 := c.Master, c.Standby
	require.Equal(t, "node2", node1.QueryString(t, "SHOW synchronous_standby_names"))

	mark := node1.LogMark()
	node2.Kill9(t)
	node1.WaitForLog(t, mark, transitionLine(core.MasterSwitching, core.ActionDone), failoverTimeout)
	node1.Exec(t, ackedTable)
	node2.PromoteToStandbyOf(t, node1) // a copy of node1 as it is: async, with its saved value
	_, err := os.Stat(filepath.Join(node2.DataDir, "pg_keeper.synchronous_standby_names"))
	require.NoError(t, err, "the saved value was not copied: the test would prove nothing")
	node1.WaitForLog(t, mark, transitionLine(core.MasterRestoring, core.ActionDone), failoverTimeout)
	waitSyncSeen(t, c)

	node1.Kill9(t)
	waitPromoted(t, node2)
	node1.PromoteToStandbyOf(t, node2)
	node2.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
	require.Equal(t, "node1", node2.QueryString(t, "SHOW synchronous_standby_names"))
	cluster.Eventually(t, startTimeout, 50*time.Millisecond, func() bool {
		s, err := node2.TryQueryString(context.Background(), "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'node1'")
		return err == nil && s == "sync"
	}, "node1 never became node2's synchronous standby")
	ctx, cancel := ctxTimeout(10 * time.Second)
	defer cancel()
	require.NoError(t, node2.TryExec(ctx, "INSERT INTO acked (id) VALUES (1)"), "a commit on the new master hangs")
}

// A master restarted while asynchronous (its standby down) puts
// synchronous replication back once the standby returns and has caught
// up; so does a master whose keeper worker alone restarted.
func TestSyncRestoredAfterRestartWhileAsync(t *testing.T) {
	c := newPair(t, nil)
	master, standby := c.Master, c.Standby

	mark := master.LogMark()
	standby.Stop(t, "immediate")
	master.WaitForLog(t, mark, transitionLine(core.MasterSwitching, core.ActionDone), failoverTimeout)
	master.Stop(t, "fast")
	mark = master.LogMark()
	// The standby is up first, so that the master's first heartbeat finds
	// it: the master goes straight from unconfirmed to connected unless it
	// remembers that it was asynchronous.
	standby.Start(t)
	master.Start(t)
	master.WaitForLog(t, mark, transitionLine(core.MasterUnconfirmed, core.ConfirmedAsync), failoverTimeout)
	master.WaitForLog(t, mark, transitionLine(core.MasterRestoring, core.ActionDone), failoverTimeout)
	require.Equal(t, "standby", master.QueryString(t, "SHOW synchronous_standby_names"))

	// The worker alone restarts while asynchronous: the fence stays open.
	mark = master.LogMark()
	standby.Stop(t, "immediate")
	master.WaitForLog(t, mark, transitionLine(core.MasterSwitching, core.ActionDone), failoverTimeout)
	pid := keeperPID(t, master)
	require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
	master.WaitForLog(t, mark, logLine("started in master mode"), failoverTimeout)
	master.WaitForTitle(t, title(core.MasterAsync), failoverTimeout)
	master.Exec(t, "CREATE TABLE IF NOT EXISTS written_while_async (id int)")
	standby.Start(t)
	master.WaitForLog(t, mark, transitionLine(core.MasterRestoring, core.ActionDone), failoverTimeout)
	require.Equal(t, "standby", master.QueryString(t, "SHOW synchronous_standby_names"))
}

// keeperPID is the pid of n's keeper worker.
func keeperPID(t *testing.T, n *cluster.Node) int {
	t.Helper()
	s := n.QueryString(t, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_keeper'")
	require.NotEmpty(t, s)
	return atoi(t, s)
}
