package test

import (
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// newNetnsPair is newPair with each node in a network namespace of its own.
func newNetnsPair(t *testing.T, extra map[string]string) *cluster.Cluster {
	t.Helper()
	return startPair(t, cluster.Options{Netns: true}, extra)
}

// A full network partition under the default on_partner_timeout =
// keep_master: the master goes asynchronous and keeps taking writes, the
// standby does not promote. After the network heals, synchronous
// replication comes back.
func TestFullPartitionKeepMaster(t *testing.T) {
	c := newNetnsPair(t, nil)
	master, standby := c.Master, c.Standby
	l := startLoad(t, master)
	l.waitAcked(t, 50, 30*time.Second, "load on the master")

	c.Partition(t)
	master.WaitForTitle(t, title(core.MasterAsync), failoverTimeout)
	standby.WaitForTitle(t, title(core.StandbyNotPromoting), failoverTimeout)
	l.waitAcked(t, 50, failoverTimeout, "the master stopped taking writes")
	for i := 0; i < 5; i++ {
		time.Sleep(400 * time.Millisecond)
		require.True(t, standby.InRecovery(t), "the standby promoted during a partition")
		require.False(t, master.InRecovery(t))
	}

	master.Heal(t)
	standby.Heal(t)
	master.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
	standby.WaitForTitle(t, title(core.StandbyConnected), failoverTimeout)
	require.Equal(t, "standby", master.QueryString(t, "SHOW synchronous_standby_names"))
}

// A full network partition under on_partner_timeout = failover: the
// standby promotes, the old master keeps its commits waiting (none is
// acknowledged), and when the network heals the old master finds the new
// one on a newer timeline and fences itself.
func TestFullPartitionFailover(t *testing.T) {
	c := newNetnsPair(t, map[string]string{"pg_keeper.on_partner_timeout": "failover"})
	master, standby := c.Master, c.Standby
	l := startLoad(t, master)
	l.waitAcked(t, 50, 30*time.Second, "load on the master")

	c.Partition(t)
	standby.WaitForLog(t, 0, transitionLine(core.StandbyPromoting, core.ActionDone), failoverTimeout)
	master.WaitForTitle(t, title(core.MasterKeepingSync), failoverTimeout)
	// The old master acknowledges nothing more: its commits wait for the
	// synchronous standby that is gone.
	before := len(l.ackedIDs())
	time.Sleep(2 * time.Second)
	require.Equal(t, before, len(l.ackedIDs()), "the old master acknowledged commits during the partition")
	acked := l.ackedIDs()
	standby.Exec(t, "INSERT INTO acked (id) VALUES (-1)")

	master.Heal(t)
	standby.Heal(t)
	master.WaitForLog(t, 0, transitionLine(core.MasterKeepingSync, core.Superseded), failoverTimeout)
	cluster.Eventually(t, failoverTimeout, 50*time.Millisecond, func() bool { return master.PostmasterPID() == 0 },
		"the old master did not shut down")
	l.stop()
	requireAllPresent(t, standby, acked)
}

// Only the replication path is cut (the standby streams from the master's
// second address): heartbeats still get through both ways. Commits would
// hang on a synchronous standby that receives nothing, so the master counts
// "answers but does not stream" as a failed heartbeat and goes
// asynchronous; the standby, which still reaches the master, does nothing.
// When replication is back, synchronous replication is restored.
func TestReplicationPathLost(t *testing.T) {
	c := newNetnsPair(t, nil)
	master, standby := c.Master, c.Standby
	l := startLoad(t, master)
	l.waitAcked(t, 50, 30*time.Second, "load on the master")

	mark := master.LogMark()
	master.DropTo(t, master.ReplAddr)
	master.WaitForLog(t, mark, logLine("heartbeat to standby failed (1/3): not streaming: the standby answers but no walsender streams to it"), failoverTimeout)
	master.WaitForTitle(t, title(core.MasterAsync), failoverTimeout)
	l.waitAcked(t, 50, failoverTimeout, "commits on the master did not resume")
	require.True(t, standby.InRecovery(t))
	require.Equal(t, []string{"postgres: bgworker: pg_keeper " + core.StandbyConnected.Title()},
		standby.ProcessTitles("postgres: bgworker: pg_keeper"))

	master.Heal(t)
	master.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
	require.Equal(t, "standby", master.QueryString(t, "SHOW synchronous_standby_names"))
}

// A firewall between the nodes that REJECTs: every heartbeat is refused
// at once, as by a stopped server, but replication does not see its
// connection reset: it times out. That is no proof the partner is down, so
// under keep_master the standby does not promote while the master goes
// asynchronous and keeps taking writes; no acknowledged commit is lost.
func TestRejectPartitionKeepMaster(t *testing.T) {
	c := newNetnsPair(t, nil)
	master, standby := c.Master, c.Standby
	l := startLoad(t, master)
	l.waitAcked(t, 50, 30*time.Second, "load on the master")

	smark := standby.LogMark()
	c.RejectBetween(t)
	// The heartbeat under way when the rules go in may time out first.
	standby.WaitForLog(t, smark, regexp.MustCompile(`WARNING:  pg_keeper: heartbeat to master failed \([0-9]+/3\): refused`), failoverTimeout)
	master.WaitForTitle(t, title(core.MasterAsync), failoverTimeout)
	l.waitAcked(t, 50, failoverTimeout, "the master stopped taking writes")
	// Well past wal_receiver_timeout (2 s): replication is dead by now, and
	// the refusals still do not count as a dead master.
	for i := 0; i < 20; i++ {
		time.Sleep(400 * time.Millisecond)
		require.True(t, standby.InRecovery(t), "the standby promoted behind a rejecting firewall")
	}
	standby.WaitForLog(t, smark, regexpOf("a refused connection while replication with it outlived the failed heartbeats"), failoverTimeout)

	master.Heal(t)
	standby.Heal(t)
	master.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
	standby.WaitForTitle(t, title(core.StandbyConnected), failoverTimeout)
	l.stop()
	// Everything the master acknowledged is on the master: nothing was lost
	// to a second primary.
	requireAllPresent(t, master, l.ackedIDs())
}

// The same namespaces, but the master's server really dies: its
// replication connection ends at once, so the refusals that follow are
// taken as proof, and the standby promotes.
func TestMasterCrashInNamespacesPromotes(t *testing.T) {
	c := newNetnsPair(t, nil)
	master, standby := c.Master, c.Standby
	master.Kill9(t)
	waitPromoted(t, standby)
	require.False(t, standby.InRecovery(t))
}
