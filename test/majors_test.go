package test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// serverMajor is the major version of n's server (13, 17, ...).
func serverMajor(t testing.TB, n *cluster.Node) int {
	t.Helper()
	v, err := strconv.Atoi(n.QueryString(t, "SHOW server_version_num"))
	require.NoError(t, err)
	return v / 10000
}

// What pg_stat_activity shows of the keeper on each major: backend_type
// pg_keeper (the worker's bgw_type) on both nodes; while it waits between
// heartbeats, wait_event_type Extension and, from 17 where an extension
// may name its wait events, wait_event PgKeeperMain (listed in
// pg_wait_events); before 17 every extension's wait is "Extension". A
// session waiting for the keeper's answer to pg_keeper.switchover() and
// the like waits on PgKeeperRequest there.
func TestWaitEventsAndBackendType(t *testing.T) {
	c := newPair(t, nil)
	major := serverMajor(t, c.Master)
	want := "Extension"
	if major >= 17 {
		want = "PgKeeperMain"
	}
	for _, n := range c.Nodes() {
		require.Equal(t, "1", n.QueryString(t, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_keeper'"), n.Name)
		// The worker is mostly waiting; a look may catch it at work.
		cluster.Eventually(t, startTimeout, 20*time.Millisecond, func() bool {
			s, err := n.TryQueryString(bg(), "SELECT wait_event_type || '/' || wait_event FROM pg_stat_activity WHERE backend_type = 'pg_keeper'")
			return err == nil && s == "Extension/"+want
		}, n.Name+": the keeper never seen waiting on "+want)
	}
	if major < 17 {
		t.Logf("PostgreSQL %d: extensions' wait events have no names of their own", major)
		return
	}
	require.Equal(t, "1", c.Master.QueryString(t, "SELECT count(*) FROM pg_wait_events WHERE type = 'Extension' AND name = 'PgKeeperMain'"))

	// pg_keeper.pause() waits for the keeper to take the request: look at
	// that session from another while the keeper is stopped (SIGSTOP), so
	// that the wait lasts.
	createExtension(t, c)
	resume := stallKeeper(t, c.Master)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := ctxTimeout(failoverTimeout)
		defer cancel()
		_, err := c.Master.TryQueryString(ctx, "SELECT pg_keeper.pause()")
		done <- err
	}()
	cluster.Eventually(t, startTimeout, 20*time.Millisecond, func() bool {
		s, err := c.Master.TryQueryString(bg(), "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgKeeperRequest' AND query LIKE '%pg_keeper.pause()%'")
		return err == nil && s == "1"
	}, "no session seen waiting on PgKeeperRequest")
	resume()
	require.NoError(t, <-done)
	c.Master.Exec(t, "SELECT pg_keeper.resume()")
}
