package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// The planned swap of roles under a steady insert load: every commit the
// old master acknowledged is on the new one, after_command does not run,
// the old master comes back as a standby without a rebuild, and
// synchronous replication is restored with the roles swapped.
func TestSwitchoverUnderLoad(t *testing.T) {
	marker := filepath.Join(os.TempDir(), fmt.Sprintf("pgk-after-%d", time.Now().UnixNano()))
	t.Cleanup(func() { os.Remove(marker) })
	c := newPair(t, map[string]string{"pg_keeper.after_command": fmt.Sprintf("'touch %s'", marker)})
	master, standby := c.Master, c.Standby
	createExtension(t, c)

	l := startPacedLoad(t, master, time.Millisecond)
	l.waitAcked(t, 200, 30*time.Second, "load on the master")
	mMark, sMark := master.LogMark(), standby.LogMark()
	answer := switchover(t, master)
	require.Contains(t, answer, "switchover under way")

	standby.WaitForLog(t, sMark, transitionLine(core.StandbyConnected, core.TakeoverRequested), failoverTimeout)
	standby.WaitForLog(t, sMark, transitionLine(core.StandbyTakingOver, core.TakeoverReady), failoverTimeout)
	standby.WaitForLog(t, sMark, transitionLine(core.StandbyTakeoverPromoting, core.ActionDone), failoverTimeout)
	waitFor(t, "the old master back as a standby", func() bool { return tryInRecovery(master) })
	acked := l.ackedIDs()
	l.stop()
	require.NotEmpty(t, acked)
	requireAllPresent(t, standby, acked)

	master.WaitForTitle(t, title(core.StandbyConnected), failoverTimeout)
	standby.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
	master.WaitForLog(t, mMark, logLine("restarted as a standby by the switchover helper: restarted as a standby without a rewind"), failoverTimeout)
	waitSyncStandby(t, standby, master)
	// The new master takes writes, and the old one has them.
	standby.Exec(t, "INSERT INTO acked (id) VALUES (-1)")
	require.Equal(t, "1", master.QueryString(t, "SELECT count(*) FROM acked WHERE id = -1"))
	_, err := os.Stat(marker)
	require.True(t, os.IsNotExist(err), "after_command ran: a switchover has nothing to fence")
	require.NotContains(t, master.LogSince(mMark), "pg_rewind --target-pgdata", "the old master was told to rebuild")
	// Both nodes recorded it.
	require.Regexp(t, `"kind":"request".*"action":"switchover".*"ok":true`, master.QueryString(t, "SELECT pg_keeper._events()"))
}

// A switchover that cannot be done safely is refused with an ERROR that
// says why, and changes nothing.
func TestSwitchoverRefused(t *testing.T) {
	c := newPair(t, nil)
	master, standby := c.Master, c.Standby

	// The extension only in another database than partner_conninfo's: the
	// standby's keeper cannot be asked, which is found before writes stop.
	master.Exec(t, "CREATE DATABASE other")
	_, err := tryRows(master, "user=postgres dbname=other", "CREATE EXTENSION pg_keeper")
	require.NoError(t, err)
	_, err = tryRows(master, "user=postgres dbname=other", "SELECT pg_keeper.switchover()")
	require.ErrorContains(t, err, "switchover refused: nothing changed, this server stays the master (the standby cannot be asked to take over: ")
	require.ErrorContains(t, err, "does not exist: run CREATE EXTENSION pg_keeper in the database pg_keeper.partner_conninfo names)")
	master.WaitForTitle(t, title(core.MasterConnected), startTimeout)

	createExtension(t, c)
	refused := func(n *cluster.Node, want string) {
		t.Helper()
		ctx, cancel := ctxTimeout(failoverTimeout)
		defer cancel()
		_, err := n.TryQueryString(ctx, "SELECT pg_keeper.switchover()")
		require.Error(t, err)
		require.Regexp(t, regexp.MustCompile(want), err.Error())
	}

	refused(standby, "switchover refused: this server is a standby: run pg_keeper.switchover\\(\\) on the master")

	// A standby far behind in replay: its replay lag would be the pause.
	standby.Exec(t, "SELECT pg_wal_replay_pause()")
	master.Exec(t, "CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 150000) g")
	refused(master, "switchover refused: nothing changed, this server stays the master \\(the standby is [0-9]+ bytes behind in replay")
	standby.Exec(t, "SELECT pg_wal_replay_resume()")

	master.QueryString(t, "SELECT pg_keeper.pause('patching')")
	standby.WaitForTitle(t, regexp.MustCompile(`\(standby mode:connected, maintenance\)$`), startTimeout)
	refused(master, "switchover refused: maintenance mode is on")
	master.QueryString(t, "SELECT pg_keeper.resume()")
	standby.WaitForTitle(t, title(core.StandbyConnected), startTimeout)

	// A standby that does not stream.
	mark := master.LogMark()
	standby.Stop(t, "fast")
	master.WaitForLog(t, mark, logLine("heartbeat to standby failed"), failoverTimeout)
	refused(master, "switchover refused: (the last heartbeat to the standby failed|replication with the standby is not synchronous|the standby does not answer)")

	require.False(t, master.InRecovery(t))
	master.WaitForTitle(t, title(core.MasterAsync), failoverTimeout)
	refused(master, "switchover refused: replication with the standby is not synchronous")
	master.Exec(t, "CREATE TABLE still_writable (i int)")
	standby.Start(t)
	master.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
	require.True(t, standby.InRecovery(t))
}

func tryInRecovery(n *cluster.Node) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := n.TryQueryString(ctx, "SELECT pg_is_in_recovery()")
	return err == nil && s == "t"
}

func waitFor(t testing.TB, what string, f func() bool) {
	t.Helper()
	cluster.Eventually(t, failoverTimeout, 100*time.Millisecond, f, what+" did not happen")
}

func bg() context.Context { return context.Background() }

// switchover calls pg_keeper.switchover() on n and returns its answer. It
// may take longer than other statements: a CHECKPOINT, the standby's flush.
func switchover(t testing.TB, n *cluster.Node) string {
	t.Helper()
	ctx, cancel := ctxTimeout(failoverTimeout)
	defer cancel()
	answer, err := n.TryQueryString(ctx, "SELECT pg_keeper.switchover()")
	require.NoError(t, err)
	return answer
}

// createExtension creates pg_keeper's extension on the master and waits
// until the standby has replayed it: synchronous means flushed there, not
// replayed, and the master's keeper calls its functions on the standby.
func createExtension(t testing.TB, c *cluster.Cluster) {
	t.Helper()
	c.Master.Exec(t, "CREATE EXTENSION pg_keeper")
	cluster.Eventually(t, startTimeout, 20*time.Millisecond, func() bool {
		s, err := c.Standby.TryQueryString(bg(), "SELECT count(*) FROM pg_extension WHERE extname = 'pg_keeper'")
		return err == nil && s == "1"
	}, "the extension did not reach the standby")
}

// waitSyncStandby waits until standby is primary's synchronous standby.
func waitSyncStandby(t testing.TB, primary, standby *cluster.Node) {
	t.Helper()
	cluster.Eventually(t, 2*time.Minute, 20*time.Millisecond, func() bool {
		s, err := primary.TryQueryString(bg(), "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1", standby.AppName)
		return err == nil && s == "sync"
	}, standby.Name+" never became "+primary.Name+"'s synchronous standby")
}
