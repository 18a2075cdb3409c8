package test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

var rejoinSettings = map[string]string{"wal_log_hints": "on", "pg_keeper.auto_rejoin": "on"}

// With auto_rejoin, the old master killed under load and started again is
// fenced, rewound against the new primary and started as its standby, and
// the new primary is synchronous again: nobody acts.
func TestRejoinAfterMasterKill(t *testing.T) {
	c := newPair(t, rejoinSettings)
	master, standby := c.Master, c.Standby
	createExtension(t, c)

	l := startLoad(t, master)
	l.waitAcked(t, 200, 30*time.Second, "load on the master")
	master.Kill9(t)
	acked := l.ackedIDs()
	l.stop()
	waitPromoted(t, standby)
	requireAllPresent(t, standby, acked)
	standby.Exec(t, "INSERT INTO acked (id) VALUES (-1)") // written after the fork

	mark := master.LogMark()
	// It comes up unconfirmed, finds the newer primary and stops at once:
	// pg_ctl may see it stop before it saw it ready.
	_ = master.TryStart()
	master.WaitForLog(t, mark, transitionLine(core.MasterUnconfirmed, core.SupersededRejoin), failoverTimeout)
	master.WaitForLog(t, mark, logLine("restarted as a standby by the rejoin helper"), 2*failoverTimeout)
	// The helper's steps are in the server log.
	log := master.LogSince(mark)
	require.Contains(t, log, "pg_keeper rejoin: pg_rewind --dry-run: ")
	require.Regexp(t, `pg_keeper rejoin: (rewound with pg_rewind|no rewind was needed); starting the server as a standby`, log)
	waitFor(t, "the old master back as a standby", func() bool { return tryInRecovery(master) })
	master.WaitForTitle(t, title(core.StandbyConnected), failoverTimeout)
	standby.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
	waitSyncStandby(t, standby, master)
	require.Equal(t, "1", master.QueryString(t, "SELECT count(*) FROM acked WHERE id = -1"))
	// Its own configuration survived the rewind, which copies the source's.
	require.Equal(t, itoa(master.Port), master.QueryString(t, "SHOW port"))
	require.Contains(t, log, "pg_keeper rejoin: the server has stopped")
}

// Without wal_log_hints or checksums, auto_rejoin says at start that it
// cannot work, and a superseded old master stays fenced and down.
func TestRejoinImpossibleStaysFenced(t *testing.T) {
	c := startPair(t, cluster.Options{NoChecksums: true}, map[string]string{"pg_keeper.auto_rejoin": "on"})
	master, standby := c.Master, c.Standby
	master.WaitForLog(t, 0, logLine("pg_keeper.auto_rejoin is on, but a superseded server here would stay fenced: "+
		"pg_rewind needs wal_log_hints = on or data checksums"), startTimeout)
	master.Kill9(t)
	waitPromoted(t, standby)
	mark := master.LogMark()
	_ = master.TryStart() // it stops at once: pg_ctl may not see it ready
	master.WaitForLog(t, mark, logLine(core.Why(core.MasterUnconfirmed, core.Superseded)), failoverTimeout)
	cluster.Eventually(t, failoverTimeout, 50*time.Millisecond, func() bool { return master.PostmasterPID() == 0 },
		"the fenced old master did not stop")
	time.Sleep(2 * time.Second)
	require.Equal(t, 0, master.PostmasterPID(), "nothing restarted it")
}

// A switchover whose old master dies before its clean shutdown: the
// standby still takes over once the master is gone and its WAL is all
// there, and the helper brings the old master back as a standby.
func TestSwitchoverMasterKilledHalfway(t *testing.T) {
	c := newPair(t, rejoinSettings)
	master, standby := c.Master, c.Standby
	createExtension(t, c)
	l := startPacedLoad(t, master, time.Millisecond)
	l.waitAcked(t, 200, 30*time.Second, "load on the master")
	sMark, mark := standby.LogMark(), master.LogMark()
	pid := master.PostmasterPID()
	require.Contains(t, switchover(t, master), "switchover under way")
	master.Kill9(t)
	acked := l.ackedIDs()
	l.stop()
	standby.WaitForLog(t, sMark, transitionLine(core.StandbyTakeoverPromoting, core.ActionDone), failoverTimeout)
	requireAllPresent(t, standby, acked)
	waitFor(t, "the old master back as a standby", func() bool {
		return master.PostmasterPID() != pid && tryInRecovery(master)
	})
	// It streams from the new primary: it could follow the new timeline,
	// rewound first if its crash left WAL the new primary does not have.
	waitSyncStandby(t, standby, master)
	standby.Exec(t, "INSERT INTO acked (id) VALUES (-3)")
	require.Equal(t, "1", master.QueryString(t, "SELECT count(*) FROM acked WHERE id = -3"))
	log := master.LogSince(mark)
	require.Contains(t, log, "pg_keeper switchover: the server did not shut down cleanly")
	require.Regexp(t, `pg_keeper switchover: (no rewind was needed|rewound with pg_rewind); starting the server as a standby`, log)
	master.WaitForTitle(t, title(core.StandbyConnected), failoverTimeout)
	standby.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
}

// The old master holds commits its partner never got (asynchronous
// replication, cut; the standby promoted because max_failover_lag allowed
// it): the rejoin discards them, and says so loudly, with their number.
func TestRejoinSaysWhatItDiscards(t *testing.T) {
	requireInstalled(t)
	settings := map[string]string{"pg_keeper.max_failover_lag": "'1GB'"}
	for k, v := range fastSettings {
		settings[k] = v
	}
	for k, v := range rejoinSettings {
		settings[k] = v
	}
	c := cluster.New(t, cluster.Options{Keeper: true, Settings: settings}) // no synchronous_standby_names
	master, standby := c.Master, c.Standby
	master.WaitForTitle(t, title(core.MasterConnected), startTimeout)
	standby.WaitForTitle(t, title(core.StandbyConnected), startTimeout)
	master.Exec(t, "CREATE EXTENSION pg_keeper")
	cluster.Eventually(t, startTimeout, 50*time.Millisecond, func() bool {
		_, err := standby.TryQueryString(bg(), "SELECT pg_keeper._events()")
		return err == nil
	}, "the extension did not reach the standby")

	standby.Exec(t, "ALTER SYSTEM SET primary_conninfo = ''")
	standby.Reload(t)
	cluster.Eventually(t, startTimeout, 50*time.Millisecond, func() bool {
		return master.QueryString(t, "SELECT count(*) FROM pg_stat_replication") == "0"
	}, "replication did not stop")
	master.Exec(t, ackedTable)
	for i := 0; i < 5; i++ {
		master.Exec(t, "INSERT INTO acked (id) VALUES ($1)", i) // five commits the standby never gets
	}
	time.Sleep(time.Second) // heartbeats see the master ahead
	master.Kill9(t)
	waitPromoted(t, standby)
	standby.Exec(t, "ALTER SYSTEM RESET primary_conninfo")

	mark := master.LogMark()
	_ = master.TryStart()
	line := master.WaitForLog(t, mark, logLine("restarted as a standby by the rejoin helper: rewound with pg_rewind; "), 2*failoverTimeout)
	require.Regexp(t, `WARNING:  pg_keeper: restarted as a standby by the rejoin helper: rewound with pg_rewind; `+
		`([6-9]|[1-9][0-9]+) transaction\(s\) committed on this server after it diverged from the new primary at [0-9A-F]+/[0-9A-F]+ `+
		`were discarded by pg_rewind: the new primary never had them`, line)
	require.Regexp(t, `"kind":"restart".*"ok":true.*transaction\(s\) committed on this server`, master.QueryString(t, "SELECT pg_keeper._events()"))
	master.WaitForTitle(t, title(core.StandbyConnected), failoverTimeout)
	require.Equal(t, "0", master.QueryString(t, "SELECT count(*) FROM pg_class WHERE relname = 'acked'"), "the discarded table is gone")
}
