package test

import (
	"regexp"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/stretchr/testify/require"
)

// A frozen master (SIGSTOP to all its processes: connections hang, nothing
// answers) is declared failed within keepalives_count heartbeats plus one,
// each failure classified as a timeout. A timeout is no proof the master is
// down, so under the default on_partner_timeout = keep_master the standby
// does not promote and says how to do it by hand.
func TestFrozenMasterKeepMaster(t *testing.T) {
	c := newPair(t, nil)
	master, standby := c.Master, c.Standby

	mark := standby.LogMark()
	frozen := time.Now()
	master.Freeze(t)
	standby.WaitForLog(t, mark, regexp.MustCompile(`WARNING:  pg_keeper: heartbeat to master failed \(3/3\): timeout: `), failoverTimeout)
	// Detection bound: 3 × 200 ms + 200 ms; the margin covers a slow machine.
	require.Less(t, time.Since(frozen), 10*time.Second)
	line := standby.WaitForLog(t, mark, transitionLine(core.StandbyConnected, core.PartnerLostUnsafe), failoverTimeout)
	require.Contains(t, line, "timeout is no proof the master is down (pg_keeper.on_partner_timeout = keep_master); "+
		"if it is, promote by hand: SELECT pg_promote()")
	standby.WaitForTitle(t, title(core.StandbyNotPromoting), failoverTimeout)
	time.Sleep(2 * time.Second)
	require.True(t, standby.InRecovery(t))

	// The master comes back: nothing happened, both carry on.
	master.Thaw(t)
	standby.WaitForTitle(t, title(core.StandbyConnected), failoverTimeout)
	master.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
	require.False(t, master.InRecovery(t))
}

// Under on_partner_timeout = failover, the frozen master is taken over by
// the standby, and a master whose standby freezes keeps its commits waiting
// rather than switching to asynchronous replication (the standby may be
// promoting itself).
func TestFrozenPartnerFailover(t *testing.T) {
	policy := map[string]string{"pg_keeper.on_partner_timeout": "failover"}

	t.Run("master frozen", func(t *testing.T) {
		c := newPair(t, policy)
		mark := c.Standby.LogMark()
		c.Master.Freeze(t)
		// Through heartbeat-lost or not, depending on when replication
		// notices (wal_receiver_timeout): the promotion is what counts.
		c.Standby.WaitForLog(t, mark, regexp.MustCompile(`WARNING:  pg_keeper: master lost: .*promoting this standby`), failoverTimeout)
		c.Standby.WaitForLog(t, mark, transitionLine(core.StandbyPromoting, core.ActionDone), failoverTimeout)
		require.False(t, c.Standby.InRecovery(t))
		// The new master does not wait for the old one it replaced.
		require.NotRegexp(t, transitionLine(core.MasterReady, core.PartnerLostUnsafe), c.Standby.LogSince(mark))
	})

	t.Run("standby frozen", func(t *testing.T) {
		c := newPair(t, policy)
		mark := c.Master.LogMark()
		c.Standby.Freeze(t)
		line := c.Master.WaitForLog(t, mark, transitionLine(core.MasterConnected, core.PartnerLostUnsafe), failoverTimeout)
		require.Contains(t, line, "timeout is no proof the standby is down, and with pg_keeper.on_partner_timeout = failover it may be promoting itself")
		c.Master.WaitForTitle(t, title(core.MasterKeepingSync), failoverTimeout)
		require.Equal(t, "standby", c.Master.QueryString(t, "SHOW synchronous_standby_names"))

		c.Standby.Thaw(t)
		c.Master.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
	})
}

// Under keep_master, a master whose standby freezes switches to
// asynchronous replication once replication has timed out too, and keeps
// taking writes.
func TestFrozenStandbyKeepMaster(t *testing.T) {
	c := newPair(t, nil)
	mark := c.Master.LogMark()
	l := startLoad(t, c.Master)
	c.Standby.Freeze(t)
	c.Master.WaitForLog(t, mark, regexp.MustCompile(`WARNING:  pg_keeper: heartbeat to standby failed \(3/3\): timeout: `), failoverTimeout)
	c.Master.WaitForLog(t, mark, regexp.MustCompile(`WARNING:  pg_keeper: standby lost: .*switching to asynchronous replication`), failoverTimeout)
	c.Master.WaitForTitle(t, title(core.MasterAsync), failoverTimeout)
	l.waitAcked(t, 50, failoverTimeout, "commits on the master did not resume")
	require.Equal(t, "", c.Master.QueryString(t, "SHOW synchronous_standby_names"))
}
