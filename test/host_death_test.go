package test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// A host that vanishes without a word (power cut, kernel panic: no FIN,
// no RST, no ICMP) leaves its partner's replication connection open until
// wal_receiver_timeout / wal_sender_timeout. These tests keep those at 60 s
// (PostgreSQL's default; the other tests use 2 s) so that only the
// freshness of replication (docs/witness.md) can tell: a bound well under
// 60 s fails a keeper that takes the silent connection for life.
const hostDeathBound = 20 * time.Second

// withSilentReplication is extra with the replication timeouts at their
// defaults.
func withSilentReplication(extra map[string]string) map[string]string {
	out := map[string]string{"wal_sender_timeout": "'60s'", "wal_receiver_timeout": "'60s'"}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// The master's host dies under load, under on_partner_timeout = failover:
// the standby promotes in about keepalives_count × keepalives_time, with
// every acknowledged commit. The host comes back and the old master
// starts: it takes no write and fences itself.
func TestMasterHostDeathFailover(t *testing.T) {
	c := newNetnsPair(t, withSilentReplication(map[string]string{"pg_keeper.on_partner_timeout": "failover"}))
	master, standby := c.Master, c.Standby
	p := watchPrimaries(t, master, standby)
	l := startLoad(t, master)
	l.waitAcked(t, 50, 30*time.Second, "load on the master")

	mark := standby.LogMark()
	start := vanish(t, master)
	standby.WaitForLog(t, mark, transitionLine(core.StandbyPromoting, core.ActionDone), hostDeathBound)
	t.Logf("promoted %v after the master's host vanished", time.Since(start).Round(time.Millisecond))
	l.stop()
	requireAllPresent(t, standby, l.ackedIDs())
	standby.Exec(t, "INSERT INTO acked (id) VALUES (-1)")
	requireOldMasterFenced(t, master)
	require.False(t, standby.InRecovery(t))
	p.requireOne(t, master, standby)
}

// vanish makes n's host disappear (Vanish, then its processes killed) and
// says when it began.
func vanish(t testing.TB, n *cluster.Node) time.Time {
	t.Helper()
	start := time.Now()
	n.Vanish(t)
	n.Kill9(t)
	return start
}

// requireOldMasterFenced brings the old master's host back and starts its
// server, clients hammering it from before: it takes no write, finds its
// partner on a newer timeline and shuts down.
func requireOldMasterFenced(t *testing.T, old *cluster.Node) {
	t.Helper()
	w := startWriters(t, old)
	old.Heal(t)
	mark := old.LogMark()
	_ = old.TryStart()
	old.WaitForLog(t, mark, transitionLine(core.MasterUnconfirmed, core.Superseded), failoverTimeout)
	cluster.Eventually(t, failoverTimeout, 50*time.Millisecond, func() bool { return old.PostmasterPID() == 0 },
		"the fenced old master did not shut down")
	w.stop()
	w.requireNoWrites(t)
}

// The standby's host dies under load, under keep_master: the master's
// commits resume, asynchronous, in about keepalives_count ×
// keepalives_time, not after wal_sender_timeout.
func TestStandbyHostDeathKeepMaster(t *testing.T) {
	c := newNetnsPair(t, withSilentReplication(nil))
	loseStandbyHostUnderLoad(t, c, core.MasterSwitching)
	require.Equal(t, "", c.Master.QueryString(t, "SHOW synchronous_standby_names"))
}

// loseStandbyHostUnderLoad makes the standby's host vanish while the
// master takes commits, and waits for the master's row from state on
// action-done and for its commits to resume, well before wal_sender_timeout.
func loseStandbyHostUnderLoad(t *testing.T, c *cluster.Cluster, state core.State) {
	t.Helper()
	l := startLoad(t, c.Master)
	l.waitAcked(t, 50, 30*time.Second, "load on the master")
	mark := c.Master.LogMark()
	vanish(t, c.Standby)
	c.Master.WaitForLog(t, mark, transitionLine(state, core.ActionDone), hostDeathBound)
	l.waitAcked(t, 50, hostDeathBound, "commits did not resume on the master")
	l.stop()
}

// Only the heartbeat path is cut, by dropping (timeouts, not refusals),
// on an idle pair under on_partner_timeout = failover: replication goes on,
// on the other addresses. The master's keepalive records keep it fresh on
// both sides, so neither keeper acts, for many freshness windows.
func TestHeartbeatDroppedIdleReplicationFresh(t *testing.T) {
	c := newNetnsPair(t, withSilentReplication(map[string]string{"pg_keeper.on_partner_timeout": "failover"}))
	master, standby := c.Master, c.Standby

	master.DropServer(t, master.Addr)
	standby.DropServer(t, standby.Addr)
	standby.WaitForTitle(t, title(core.StandbyHeartbeatLost), failoverTimeout)
	master.WaitForTitle(t, title(core.MasterHeartbeatLost), failoverTimeout)
	// 5 s: 25 intervals, 11 freshness windows, of an idle master.
	for i := 0; i < 10; i++ {
		time.Sleep(500 * time.Millisecond)
		require.True(t, standby.InRecovery(t), "the standby promoted while replication was alive")
		require.False(t, master.InRecovery(t))
		require.Equal(t, "standby", master.QueryString(t, "SHOW synchronous_standby_names"))
	}
	master.Exec(t, "CREATE TABLE still_sync (x int)")

	master.Heal(t)
	standby.Heal(t)
	master.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
	standby.WaitForTitle(t, title(core.StandbyConnected), failoverTimeout)
}
