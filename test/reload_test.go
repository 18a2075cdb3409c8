package test

import (
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/stretchr/testify/require"
)

// A SIGHUP changes the heartbeat interval without a restart: with a long
// interval the standby does not notice a dead master; back to 200 ms it
// promotes at once.
func TestReloadChangesInterval(t *testing.T) {
	c := newPair(t, nil)
	standby := c.Standby

	mark := standby.LogMark()
	standby.SetConf("pg_keeper.keepalives_time", "'1h'")
	standby.Reload(t)
	standby.WaitForLog(t, mark, logLine("settings reloaded: partner "+`"`+c.Master.KeeperConninfo()+`", keepalives_time 1h0m0s, keepalives_count 3`), startTimeout)

	c.Master.Kill9(t)
	// Far more than 3 × 200 ms: with the old interval it would have promoted.
	time.Sleep(3 * time.Second)
	require.True(t, standby.InRecovery(t), "promoted although the interval is now 1h")
	// The one heartbeat already scheduled under the old interval may run.
	require.NotRegexp(t, logLine("heartbeat to master failed (2/3)"), standby.LogSince(mark))

	standby.SetConf("pg_keeper.keepalives_time", "'200ms'")
	standby.Reload(t)
	waitPromoted(t, standby)
	require.False(t, standby.InRecovery(t))
}

// Out-of-range and misspelt settings are refused by PostgreSQL's own GUC
// checks, and the keeper goes on with the values it had.
func TestBadSettingsRefusedByServer(t *testing.T) {
	c := newPair(t, nil)
	master := c.Master

	mark := master.LogMark()
	master.SetConf("pg_keeper.keepalives_time", "'-1'")
	master.SetConf("pg_keeper.keepalive_count", "7") // misspelt: no such setting
	master.Reload(t)
	master.WaitForLog(t, mark, regexpOf(`-1 s is outside the valid range for parameter "pg_keeper.keepalives_time"`), startTimeout)
	master.WaitForLog(t, mark, regexpOf(`invalid configuration parameter name "pg_keeper.keepalive_count"`), startTimeout)
	require.Equal(t, "200ms", master.QueryString(t, "SHOW pg_keeper.keepalives_time"))
	master.WaitForTitle(t, title(core.MasterConnected), startTimeout)
}
