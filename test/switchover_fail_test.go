package test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// stallKeeper stops n's keeper (SIGSTOP) until the returned function is
// called: its server runs on, but nothing answers pg_keeper._takeover().
func stallKeeper(t *testing.T, n *cluster.Node) (resume func()) {
	pid := workerPIDOf(t, n)
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	resumed := false
	resume = func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	return resume
}

// switchoverAsync calls pg_keeper.switchover() on n in the background.
func switchoverAsync(n *cluster.Node) chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		_, err := n.TryQueryString(ctx, "SELECT pg_keeper.switchover()")
		done <- err
	}()
	return done
}

// switchoverStalled starts a pair under load, stops the standby's keeper
// and calls pg_keeper.switchover() in the background: it returns once the
// master refuses writes and waits for the standby's keeper.
func switchoverStalled(t *testing.T, settings map[string]string) (*cluster.Cluster, *load, func(), chan error) {
	c := newPair(t, settings)
	createExtension(t, c)
	l := startPacedLoad(t, c.Master, 2*time.Millisecond)
	l.waitAcked(t, 100, 30*time.Second, "load on the master")
	resume := stallKeeper(t, c.Standby)
	first := switchoverAsync(c.Master)
	c.Master.WaitForTitle(t, title(core.MasterSwitchingOver), failoverTimeout)
	return c, l, resume, first
}

// A switchover that fails half-way, with writes already refused (the
// standby's keeper does not answer): a second one is refused while it is
// under way, new sessions are told why, and when it fails writes resume
// on the master, nothing acknowledged is missing on the standby, and the
// standby is a standby still.
func TestSwitchoverFailsHalfwayWritesResume(t *testing.T) {
	c, l, resume, first := switchoverStalled(t, nil)
	master, standby := c.Master, c.Standby
	_, err := master.TryQueryString(bg(), "SELECT pg_keeper.switchover()")
	require.ErrorContains(t, err, "another pg_keeper request is under way")
	err = master.TryExec(bg(), "INSERT INTO acked (id) VALUES (-1)")
	require.ErrorContains(t, err, "this server is handing the primary's role to its partner: writes are refused")

	select {
	case err = <-first:
	case <-time.After(failoverTimeout):
		t.Fatal("pg_keeper.switchover() did not return")
	}
	require.ErrorContains(t, err, "switchover failed before this server stopped: writes accepted again, this server stays the master")
	resume()
	master.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
	require.NoError(t, master.TryExec(bg(), "INSERT INTO acked (id) VALUES (-1)"))
	l.waitAcked(t, len(l.ackedIDs())+50, 30*time.Second, "load after the failed switchover")
	acked := l.ackedIDs()
	l.stop()
	requireAllPresent(t, standby, acked)
	require.True(t, standby.InRecovery(t))
	standby.WaitForTitle(t, title(core.StandbyConnected), failoverTimeout)
}

// The master dies in the middle of a switchover, writes refused and its
// standby not yet told: the standby fails over as for any lost master,
// with every acknowledged commit, and the old master, started again,
// rejoins by itself (pg_rewind) as the new primary's synchronous standby.
func TestRejoinAfterSwitchoverKilledHalfway(t *testing.T) {
	c, l, resume, first := switchoverStalled(t, rejoinSettings)
	master, standby := c.Master, c.Standby
	master.Kill9(t)
	acked := l.ackedIDs()
	l.stop()
	require.Error(t, <-first)
	resume()
	waitFor(t, "the standby's promotion", func() bool { return !tryInRecovery(standby) && standby.PortOpen() })
	requireAllPresent(t, standby, acked)

	mark := master.LogMark()
	_ = master.TryStart() // it stops at once to be rewound
	master.WaitForLog(t, mark, logLine("restarted as a standby by the rejoin helper"), 2*failoverTimeout)
	master.WaitForTitle(t, title(core.StandbyConnected), failoverTimeout)
	waitSyncStandby(t, standby, master)
	standby.Exec(t, "INSERT INTO acked (id) VALUES (-2)")
	require.Equal(t, "1", master.QueryString(t, "SELECT count(*) FROM acked WHERE id = -2"))
}
