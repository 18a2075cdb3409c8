package test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// synchronous_standby_names = 'ANY 1 (standby, cdc)' with pg_receivewal
// --synchronous as cdc: commits can be acknowledged by cdc alone while the
// standby lags (here: frozen). When the master dies, promoting the standby
// would lose them: it must refuse, and say why.
func TestOtherSyncWalsenderBlocksPromotion(t *testing.T) {
	c := startPair(t, cluster.Options{SyncNames: func(p string) string { return "ANY 1 (" + p + ", cdc)" }}, nil)
	master, standby := c.Master, c.Standby
	master.StartReceiveWAL(t, "cdc")
	// Several heartbeats of the standby see cdc beside it: from then on
	// commits may be acknowledged without the standby.
	time.Sleep(time.Second)
	l := startLoad(t, master)
	l.waitAcked(t, 50, 30*time.Second, "load on the master")
	standby.Freeze(t)
	l.waitAcked(t, 50, 30*time.Second, "commits acknowledged by cdc alone")
	mark := standby.LogMark()
	master.Kill9(t)
	l.stop()
	standby.Thaw(t)
	standby.WaitForLog(t, mark, transitionLine(core.StandbyConnected, core.PartnerLostUnsafe), failoverTimeout)
	time.Sleep(2 * time.Second)
	require.True(t, standby.InRecovery(t), "the standby promoted without commits cdc acknowledged")
	require.Equal(t, []string{"postgres: bgworker: pg_keeper (standby mode:not-promoting)"},
		standby.ProcessTitles("postgres: bgworker: pg_keeper"))
}

// A second walsender that is not the standby (pg_receivewal, not in
// synchronous_standby_names) keeps streaming when the standby dies: the
// master must not take it for the standby, and switches to asynchronous
// replication so that commits go on.
func TestOtherWalsenderIsNotTheStandby(t *testing.T) {
	c := newPair(t, nil)
	master, standby := c.Master, c.Standby
	master.StartReceiveWAL(t, "archiver")
	l := startLoad(t, master)
	l.waitAcked(t, 50, 30*time.Second, "load on the master")
	mark := master.LogMark()
	standby.Kill9(t)
	master.WaitForLog(t, mark, transitionLine(core.MasterSwitching, core.ActionDone), failoverTimeout)
	l.waitAcked(t, 50, failoverTimeout, "commits on the master did not resume")
	standby.Start(t)
	master.WaitForLog(t, mark, transitionLine(core.MasterRestoring, core.ActionDone), failoverTimeout)
	require.Equal(t, "standby", master.QueryString(t, "SHOW synchronous_standby_names"))
}

// A heartbeat role without pg_monitor cannot read the standby's
// primary_conninfo: the master does not know the standby's name then, and
// must not take the standby for gone (nor switch to asynchronous
// replication) because no walsender has a name it guessed.
func TestUnprivilegedHeartbeatRoleKeepsSync(t *testing.T) {
	c := newPair(t, nil)
	master, standby := c.Master, c.Standby
	master.Exec(t, "CREATE ROLE plain LOGIN")
	mark := master.LogMark()
	master.SetConf("pg_keeper.partner_conninfo", "'"+strings.Replace(standby.KeeperConninfo(), "user=postgres", "user=plain", 1)+"'")
	master.Reload(t)
	master.WaitForLog(t, mark, logLine("settings reloaded: partner \"host=127.0.0.1 port="+itoa(standby.Port)+" user=plain"), startTimeout)
	time.Sleep(3 * time.Second) // fifteen heartbeats
	require.NotRegexp(t, regexpOf("not streaming"), master.LogSince(mark))
	require.Equal(t, []string{"postgres: bgworker: pg_keeper (master mode:connected)"},
		master.ProcessTitles("postgres: bgworker: pg_keeper"))
	require.Equal(t, "standby", master.QueryString(t, "SHOW synchronous_standby_names"))
}
