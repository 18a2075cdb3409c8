package test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// keeperSessions are the pids of the sessions the keepers hold on n (its
// own keeper's and its partner's), in order.
func keeperSessions(t *testing.T, n *cluster.Node) string {
	t.Helper()
	return n.QueryString(t, `SELECT coalesce(string_agg(pid::text, ' ' ORDER BY pid), '') FROM pg_stat_activity
		WHERE application_name = 'pg_keeper' AND backend_type = 'client backend'`)
}

var heartbeatFailed = regexp.MustCompile(`pg_keeper: heartbeat to (master|standby) failed`)

// The heartbeat keeps its sessions: over many heartbeats the keepers'
// sessions on each node are the same ones, and no heartbeat fails.
func TestHeartbeatSessionsKept(t *testing.T) {
	c := newPair(t, nil)
	mmark, smark := c.Master.LogMark(), c.Standby.LogMark()
	before := map[*cluster.Node]string{c.Master: keeperSessions(t, c.Master), c.Standby: keeperSessions(t, c.Standby)}
	time.Sleep(15 * 200 * time.Millisecond) // fifteen heartbeats each way
	for n, pids := range before {
		require.NotEmpty(t, pids, n.Name)
		require.Equal(t, pids, keeperSessions(t, n), "%s: the keepers opened new sessions", n.Name)
	}
	require.NotRegexp(t, heartbeatFailed, c.Master.LogSince(mmark))
	require.NotRegexp(t, heartbeatFailed, c.Standby.LogSince(smark))
}

// pg_terminate_backend() on the keepers' sessions, again and again, fails
// no heartbeat: a kept session that is gone is replaced within the
// heartbeat. The pair stays connected and the sessions come back.
func TestHeartbeatSessionsTerminated(t *testing.T) {
	c := newPair(t, nil)
	mmark, smark := c.Master.LogMark(), c.Standby.LogMark()
	terminate := `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'pg_keeper' AND backend_type = 'client backend'`
	killed := 0
	for i := 0; i < 8; i++ {
		for _, n := range c.Nodes() {
			var k int
			fmt.Sscan(n.QueryString(t, terminate), &k)
			killed += k
		}
		time.Sleep(2 * 200 * time.Millisecond)
	}
	require.GreaterOrEqual(t, killed, 8, "sessions to terminate")
	for _, n := range c.Nodes() {
		cluster.Eventually(t, startTimeout, 50*time.Millisecond, func() bool { return keeperSessions(t, n) != "" },
			n.Name+": the keepers' sessions did not come back")
	}
	c.Master.WaitForTitle(t, title(core.MasterConnected), startTimeout)
	c.Standby.WaitForTitle(t, title(core.StandbyConnected), startTimeout)
	require.NotRegexp(t, heartbeatFailed, c.Master.LogSince(mmark))
	require.NotRegexp(t, heartbeatFailed, c.Standby.LogSince(smark))
}

// A smart shutdown waits for every session, the keepers' kept ones too:
// the server says it is stopping (pg_keeper.server_state) and the keepers
// give their sessions back within a heartbeat, on the standby and on the
// master, where without it the partner's session would hold the shutdown
// for a minute (probe.SessionMaxAge).
func TestSmartShutdownNotHeldBySessions(t *testing.T) {
	c := newPair(t, map[string]string{"pg_keeper.keepalives_time": "'1s'"})
	for _, n := range c.Nodes() {
		require.NotEmpty(t, keeperSessions(t, n), n.Name)
	}
	require.Equal(t, "running", c.Master.QueryString(t, "SHOW pg_keeper.server_state"))
	start := time.Now()
	require.NoError(t, c.Standby.StopWithTimeout("smart", stopBound), "standby smart shutdown")
	t.Logf("standby: smart shutdown took %s", time.Since(start))
	start = time.Now()
	require.NoError(t, c.Master.StopWithTimeout("smart", stopBound), "master smart shutdown")
	t.Logf("master: smart shutdown took %s", time.Since(start))
}

// The same with the standby's heartbeat kept open on the master while the
// master stops first: its session there goes at the next heartbeat.
func TestSmartShutdownOfTheMasterFirst(t *testing.T) {
	c := newPair(t, map[string]string{"pg_keeper.keepalives_time": "'1s'"})
	require.NotEmpty(t, keeperSessions(t, c.Master))
	start := time.Now()
	require.NoError(t, c.Master.StopWithTimeout("smart", stopBound), "master smart shutdown")
	t.Logf("master: smart shutdown took %s", time.Since(start))
}

// PgBouncer in transaction mode between the standby and the master: the
// heartbeat keeps one client connection to it (one login, not one per
// heartbeat), and no heartbeat fails.
func TestHeartbeatThroughPgBouncerTransactionMode(t *testing.T) {
	c := newPair(t, nil)
	// PgBouncer refuses startup parameters it does not know unless told
	// to ignore them: the keeper pins these (see conninfo.Config).
	bouncer := cluster.StartPgBouncerWith(t,
		fmt.Sprintf("keeperdb = host=127.0.0.1 port=%d dbname=postgres pool_mode=transaction\n", c.Master.Port),
		"ignore_startup_parameters = search_path, IntervalStyle, default_transaction_read_only, statement_timeout, lock_timeout, extra_float_digits")
	mark := c.Standby.LogMark()
	c.Standby.SetConf("pg_keeper.partner_conninfo", cluster.ConfString(bouncer.Conninfo("keeperdb")))
	c.Standby.Reload(t)
	c.Standby.WaitForLog(t, mark, logLine("settings reloaded"), startTimeout)
	logins := func() int { return strings.Count(bouncer.Log(), "login attempt: db=keeperdb") }
	cluster.Eventually(t, startTimeout, 50*time.Millisecond, func() bool { return logins() > 0 }, "no heartbeat through PgBouncer:\n"+bouncer.Log())
	first := logins()
	time.Sleep(15 * 200 * time.Millisecond)
	require.LessOrEqual(t, logins(), first+1, "a login per heartbeat:\n"+bouncer.Log())
	require.NotRegexp(t, heartbeatFailed, c.Standby.LogSince(mark))
	c.Standby.WaitForTitle(t, title(core.StandbyConnected), startTimeout)
}

// A standby whose heartbeats failed once has used its session with its own
// server (to look at replication), and good heartbeats do not use it:
// idle, it is closed, and the standby's smart shutdown does not wait for it.
func TestSmartShutdownAfterFailedHeartbeats(t *testing.T) {
	c := newPair(t, map[string]string{"pg_keeper.keepalives_time": "'1s'"})
	s := c.Standby
	good := c.Master.KeeperConninfo()
	mark := s.LogMark()
	s.SetConf("pg_keeper.partner_conninfo", cluster.ConfString("host=127.0.0.1 port=1 user=postgres dbname=postgres"))
	s.Reload(t)
	s.WaitForLog(t, mark, regexp.MustCompile(`heartbeat to master failed \(1/3\)`), startTimeout)
	s.SetConf("pg_keeper.partner_conninfo", cluster.ConfString(good))
	s.Reload(t)
	s.WaitForLog(t, mark, logLine("heartbeat to master succeeded after"), startTimeout)
	require.NoError(t, s.StopWithTimeout("smart", stopBound), "standby smart shutdown")
}

// A master whose partner setting was cleared runs no heartbeat: its kept
// sessions are closed once idle, and its smart shutdown does not wait.
func TestSmartShutdownWithoutHeartbeats(t *testing.T) {
	c := newPair(t, map[string]string{"pg_keeper.keepalives_time": "'1s'"})
	c.Master.SetConf("pg_keeper.partner_conninfo", "''")
	c.Master.Reload(t)
	require.NoError(t, c.Standby.StopWithTimeout("fast", stopBound))
	require.NoError(t, c.Master.StopWithTimeout("smart", stopBound), "master smart shutdown")
}
