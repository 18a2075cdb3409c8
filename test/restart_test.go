package test

import (
	"regexp"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/stretchr/testify/require"
)

// Both nodes go down at once (a power cut: immediate stop) and come back,
// the standby first: nobody promotes, the master takes writes once its
// keeper has checked the standby, and synchronous replication is on again.
func TestBothRestart(t *testing.T) {
	c := newPair(t, nil)
	master, standby := c.Master, c.Standby
	master.Exec(t, ackedTable)
	master.Exec(t, "INSERT INTO acked (id) VALUES (1)")

	standby.Stop(t, "immediate")
	master.Stop(t, "immediate")
	mark, smark := master.LogMark(), standby.LogMark()
	standby.Start(t)
	time.Sleep(time.Second) // the standby's keeper fails to reach the master meanwhile
	master.Start(t)

	master.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
	standby.WaitForTitle(t, title(core.StandbyConnected), failoverTimeout)
	waitSyncSeen(t, c)
	require.True(t, standby.InRecovery(t))
	require.NotRegexp(t, logLine("master lost"), standby.LogSince(smark))
	require.NotRegexp(t, transitionLine(core.MasterReady, core.Superseded), master.LogSince(mark))
	master.Exec(t, "INSERT INTO acked (id) VALUES (2)")
	require.Equal(t, "2", standby.QueryString(t, "SELECT count(*) FROM acked"))
}

// Both nodes run as primaries of one cluster on the same timeline (a
// standby started without standby.signal): neither can tell which is
// right, so both log an ERROR naming the problem, act on nothing, and keep
// running.
func TestTwoPrimariesSameTimeline(t *testing.T) {
	c := newPair(t, nil)
	master, standby := c.Master, c.Standby
	standby.Stop(t, "fast")
	standby.RemoveStandbySignal(t)
	mark, smark := master.LogMark(), standby.LogMark()
	standby.Start(t)

	// The count goes on from the failures while node2 was down.
	both := regexp.MustCompile(`ERROR:  pg_keeper: heartbeat to standby failed \(\d+/3\): two primaries: the partner is a primary too: ` +
		`both nodes are primaries of one cluster; keep the one promoted last and rebuild the other as its standby`)
	master.WaitForLog(t, mark, both, failoverTimeout)
	standby.WaitForLog(t, smark, both, failoverTimeout)
	// node2 starts in master mode and only ever sees node1 as a second
	// primary: that does not confirm it, so it takes no writes. node1's
	// state depends on what it saw while node2 restarted (it may have gone
	// async meanwhile), so only node2's title is fixed.
	standby.WaitForTitle(t, title(core.MasterUnconfirmed), failoverTimeout)
	time.Sleep(time.Second)
	ctx, cancel := ctxTimeout(30 * time.Second)
	defer cancel()
	require.ErrorContains(t, standby.TryExec(ctx, "CREATE TABLE written_on_node2 (id int)"), "has not confirmed")
	require.NotZero(t, master.PostmasterPID())
	require.NotZero(t, standby.PostmasterPID())
}
