package test

import (
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// partner_conninfo pointing at the node itself, or at a server of another
// cluster: an ERROR naming the problem and the setting, no action, and the
// server keeps running.
func TestPartnerIsSelfOrAnotherCluster(t *testing.T) {
	c := newPair(t, nil)
	standby := c.Standby
	other := cluster.New(t, cluster.Options{NoStandby: true})

	cases := []struct{ name, conninfo, want string }{
		{"self", standby.KeeperConninfo(),
			"ERROR:  pg_keeper: heartbeat to master failed (1/3): this server: pg_keeper.partner_conninfo reaches this very server: point it at the other node"},
		{"another cluster", other.Master.KeeperConninfo(),
			"ERROR:  pg_keeper: heartbeat to master failed (1/3): another cluster: pg_keeper.partner_conninfo reaches a server of another cluster (system identifier "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			standby.SetConf("pg_keeper.partner_conninfo", "'"+c.Master.KeeperConninfo()+"'")
			standby.Reload(t)
			standby.WaitForTitle(t, title(core.StandbyConnected), startTimeout)

			mark := standby.LogMark()
			standby.SetConf("pg_keeper.partner_conninfo", "'"+tc.conninfo+"'")
			standby.Reload(t)
			standby.WaitForLog(t, mark, regexpOf(tc.want), startTimeout)
			standby.WaitForTitle(t, title(core.StandbyHeartbeatLost), startTimeout)
			time.Sleep(time.Second)
			require.True(t, standby.InRecovery(t), "promoted on a misconfiguration")
			require.Equal(t, "standby", c.Master.QueryString(t, "SHOW synchronous_standby_names"))
		})
	}
}

// Both nodes end up primaries of one cluster (someone promoted the standby
// by hand): the old master, on the older timeline, sees at its next
// heartbeat that it was superseded and fences itself; the promoted node
// goes on as the master.
func TestBothPrimaries(t *testing.T) {
	c := newPair(t, nil)
	master, standby := c.Master, c.Standby
	mark, smark := master.LogMark(), standby.LogMark()
	standby.Exec(t, "SELECT pg_promote()")

	standby.WaitForLog(t, smark, transitionLine(core.StandbyConnected, core.RecoveryEnded), failoverTimeout)
	// A heartbeat may first find the standby promoting (not streaming yet):
	// the count need not be 1.
	master.WaitForLog(t, mark, regexp.MustCompile(`ERROR:  pg_keeper: heartbeat to standby failed \(\d/3\): superseded: `+
		regexp.QuoteMeta("the partner is a primary promoted after this server (its timeline is 2, this server's 1): this server is the old master")), failoverTimeout)
	master.WaitForLog(t, mark, transitionLine(core.MasterConnected, core.Superseded), failoverTimeout)
	cluster.Eventually(t, failoverTimeout, 50*time.Millisecond, func() bool { return master.PostmasterPID() == 0 },
		"the superseded master did not shut down")
	require.False(t, standby.InRecovery(t))
	standby.Exec(t, "CREATE TABLE after_split (x int)")
}

// The standby is promoted by hand while the master's keeper is inactive
// (pg_keeper.partner_conninfo cleared), so nothing fences the old master:
// it stays a primary on the older timeline. Such a partner is no standby
// and never becomes one: the new master must not keep its commits waiting
// for it. It leaves synchronous replication after keepalives_count
// heartbeats and its commits go on. An old master restarted before the new
// one has let go of it is the same, until its own keeper fences it.
func TestOlderPrimaryDoesNotHoldCommits(t *testing.T) {
	c := newPair(t, nil)
	master, standby := c.Master, c.Standby
	master.SetConf("pg_keeper.partner_conninfo", "''")
	master.Reload(t)
	smark := standby.LogMark()
	standby.Exec(t, "SELECT pg_promote()")

	standby.WaitForLog(t, smark, transitionLine(core.StandbyConnected, core.RecoveryEnded), failoverTimeout)
	standby.WaitForLog(t, smark, regexp.MustCompile(`heartbeat to standby failed \(3/3\): older primary: `), failoverTimeout)
	ctx, cancel := ctxTimeout(20 * time.Second) // the fast settings' count × time is under a second
	defer cancel()
	require.NoError(t, standby.TryExec(ctx, "CREATE TABLE after_split (x int); INSERT INTO after_split VALUES (1)"),
		"the new master's commit waited for an old master that is no standby")
	require.Equal(t, "", standby.QueryString(t, "SHOW synchronous_standby_names"))
	require.Positive(t, master.PostmasterPID(), "the old master is still up: nothing fenced it")
}
