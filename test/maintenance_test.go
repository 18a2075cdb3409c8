package test

import (
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
)

// Maintenance mode set on the master reaches the standby, survives a stop
// and start of each node under load, and no stop leads to a promotion or
// leaves the synchronous setting switched off; after resume() a lost master
// is taken over again.
func TestMaintenanceAcrossRestarts(t *testing.T) {
	for _, mode := range []string{"fast", "smart"} {
		t.Run(mode, func(t *testing.T) { maintenanceAcrossRestarts(t, mode) })
	}
}

// A smart stop waits for the clients: the load stops first.
func maintenanceAcrossRestarts(t *testing.T, mode string) {
	c := newPair(t, nil)
	master, standby := c.Master, c.Standby
	createExtension(t, c)
	paused := func(s core.State) *regexp.Regexp {
		return regexp.MustCompile(regexp.QuoteMeta(s.Title()[:len(s.Title())-1]) + `, maintenance\)$`)
	}
	_, err := standby.TryQueryString(bg(), "SELECT pg_keeper.pause()")
	require.ErrorContains(t, err, "this server is a standby: run pg_keeper.pause() and pg_keeper.resume() on the master")

	require.Contains(t, master.QueryString(t, "SELECT pg_keeper.pause('kernel update')"), "maintenance mode on")
	master.WaitForTitle(t, paused(core.MasterConnected), startTimeout)
	standby.WaitForTitle(t, paused(core.StandbyConnected), startTimeout)
	require.Equal(t, "t", standby.QueryString(t, "SELECT maintenance FROM pg_keeper.status()"))

	// The master stops for longer than the detection window: no promotion.
	l := startPacedLoad(t, master, 2*time.Millisecond)
	l.waitAcked(t, 100, 30*time.Second, "load on the master")
	sMark := standby.LogMark()
	if mode == "smart" {
		l.stop()
	}
	master.Stop(t, mode)
	acked := l.ackedIDs()
	l.stop()
	standby.WaitForLog(t, sMark, logLine("heartbeat to master failed (3/3)"), failoverTimeout)
	standby.WaitForTitle(t, paused(core.StandbyNotPromoting), failoverTimeout)
	time.Sleep(3 * time.Second) // fifteen more heartbeats
	require.True(t, standby.InRecovery(t))
	require.Contains(t, standby.LogSince(sMark), "maintenance mode is on (pg_keeper.pause() on the master): not promoting")
	master.Start(t)
	master.WaitForTitle(t, paused(core.MasterConnected), failoverTimeout)
	standby.WaitForTitle(t, paused(core.StandbyConnected), failoverTimeout)
	requireAllPresent(t, master, acked)

	// The standby stops and starts: the master may go async meanwhile, and
	// restores synchronous replication once it is back.
	standby.Stop(t, mode)
	time.Sleep(2 * time.Second)
	standby.Start(t)
	master.WaitForTitle(t, paused(core.MasterConnected), failoverTimeout)
	require.Equal(t, "standby", master.QueryString(t, "SHOW synchronous_standby_names"))
	require.True(t, standby.InRecovery(t))
	require.False(t, master.InRecovery(t))

	// Resumed: the pause is gone on both, and a killed master is taken over.
	require.Contains(t, master.QueryString(t, "SELECT pg_keeper.resume()"), "maintenance mode off")
	master.WaitForTitle(t, title(core.MasterConnected), startTimeout)
	standby.WaitForTitle(t, title(core.StandbyConnected), startTimeout)
	require.Regexp(t, `"kind":"maintenance"`, standby.QueryString(t, "SELECT pg_keeper._events()"))
	waitSyncSeen(t, c)
	master.Kill9(t)
	standby.WaitForLog(t, 0, transitionLine(core.StandbyPromoting, core.ActionDone), failoverTimeout)
}
