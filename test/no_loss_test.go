package test

import (
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// The master runs asynchronously and the standby falls behind; the master
// dies. Promoting would lose acknowledged commits, so the standby refuses,
// saying why with the LSNs. pg_keeper.max_failover_lag, set by an operator
// who accepts the loss, lets it promote.
func TestNoPromotionThatLosesCommits(t *testing.T) {
	requireInstalled(t)
	c := cluster.New(t, cluster.Options{Keeper: true, Settings: fastSettings}) // no synchronous_standby_names
	master, standby := c.Master, c.Standby
	master.WaitForTitle(t, title(core.MasterConnected), startTimeout)
	standby.WaitForTitle(t, title(core.StandbyConnected), startTimeout)

	// Cut replication only: the standby's keeper still reaches the master.
	standby.Exec(t, "ALTER SYSTEM SET primary_conninfo = ''")
	standby.Reload(t)
	cluster.Eventually(t, startTimeout, 50*time.Millisecond, func() bool {
		return master.QueryString(t, "SELECT count(*) FROM pg_stat_replication") == "0"
	}, "replication did not stop")
	master.Exec(t, ackedTable)
	master.Exec(t, "INSERT INTO acked (id) SELECT generate_series(1, 1000)") // acknowledged, not on the standby
	time.Sleep(time.Second)                                                  // a few heartbeats see the master ahead

	mark := standby.LogMark()
	master.Kill9(t)
	line := standby.WaitForLog(t, mark, transitionLine(core.StandbyConnected, core.PartnerLostUnsafe), failoverTimeout)
	require.Regexp(t, regexp.MustCompile(`at the last good heartbeat the master was not in synchronous replication with this standby, `+
		`so acknowledged commits may be missing here \(master was at [0-9A-F]+/[0-9A-F]+, this standby has [0-9A-F]+/[0-9A-F]+\); `+
		`pg_keeper.max_failover_lag accepts losing up to that many bytes`), line)
	standby.WaitForTitle(t, title(core.StandbyNotPromoting), failoverTimeout)
	time.Sleep(2 * time.Second) // many more failed heartbeats: still no promotion
	require.True(t, standby.InRecovery(t))

	standby.SetConf("pg_keeper.max_failover_lag", "'1GB'")
	standby.Reload(t)
	standby.WaitForLog(t, mark, transitionLine(core.StandbyNotPromoting, core.PartnerLost), failoverTimeout)
	waitPromoted(t, standby)
	require.False(t, standby.InRecovery(t))
}
