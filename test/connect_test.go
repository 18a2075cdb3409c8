package test

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/stretchr/testify/require"
)

// Both keepers find their mode, reach their partner, say so in the log and
// in their process title, and show up in pg_stat_activity.
func TestBothKeepersConnect(t *testing.T) {
	c := newPair(t, nil)

	c.Master.WaitForLog(t, 0, logLine("started in master mode: partner "), startTimeout)
	c.Standby.WaitForLog(t, 0, logLine("started in standby mode: partner "), startTimeout)
	// The master started before its standby existed: unconfirmed, it took
	// no writes until the standby answered. What it went through after that
	// (straight to connected, or through heartbeat-lost or async while the
	// standby was still starting) depends on timing; the title says where
	// it ended.
	c.Master.WaitForLog(t, 0, transitionLine(core.MasterUnconfirmed, core.Confirmed), startTimeout)
	c.Standby.WaitForLog(t, 0, transitionLine(core.StandbyReady, core.PartnerUp), startTimeout)

	require.Equal(t, []string{"postgres: bgworker: pg_keeper (master mode:connected)"},
		c.Master.ProcessTitles("postgres: bgworker: pg_keeper"))
	require.Equal(t, []string{"postgres: bgworker: pg_keeper (standby mode:connected)"},
		c.Standby.ProcessTitles("postgres: bgworker: pg_keeper"))

	for _, n := range c.Nodes() {
		require.Equal(t, "1", n.QueryString(t,
			"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_keeper'"), n.Name)
	}
	// The keepers' kept sessions are no walsenders: one walsender, synchronous.
	require.Equal(t, "sync", c.Master.QueryString(t, "SELECT sync_state FROM pg_stat_replication"))
}

// A partner_conninfo without sslmode (libpq's default, prefer) against
// servers without TLS: after the first heartbeat the keeper connects in
// plain text first: each session it opens is one connection, not two. The
// heartbeat keeps its session (docs/heartbeat.md), so the test ends them to
// make it open new ones.
func TestPreferFallsBackToOneSession(t *testing.T) {
	c := newPair(t, nil)
	master, standby := c.Master, c.Standby
	master.SetConf("log_connections", "on")
	master.Reload(t)
	mark := standby.LogMark()
	prefer := strings.TrimSuffix(master.KeeperConninfo(), " sslmode=disable")
	require.NotEqual(t, master.KeeperConninfo(), prefer)
	standby.SetConf("pg_keeper.partner_conninfo", "'"+prefer+"'")
	standby.Reload(t)
	standby.WaitForLog(t, mark, logLine("the partner refused TLS (sslmode=prefer): heartbeats now try without it first"), startTimeout)

	// One session of the test's own, opened before the count starts.
	ctx, cancel := ctxTimeout(time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, master.Conninfo("sslmode=disable"))
	require.NoError(t, err)
	defer conn.Close(ctx)
	mmark := master.LogMark()
	for i := 0; i < 6; i++ {
		_, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE application_name = 'pg_keeper' AND backend_type = 'client backend' AND client_addr IS NOT NULL`)
		require.NoError(t, err)
		time.Sleep(2 * 200 * time.Millisecond) // two heartbeats
	}
	log := master.LogSince(mmark)
	received := strings.Count(log, "connection received: host=127.0.0.1")
	authorized := strings.Count(log, "connection authorized: user=postgres database=postgres application_name=pg_keeper")
	require.GreaterOrEqual(t, authorized, 5, "heartbeats go on, on new sessions")
	require.LessOrEqual(t, received, authorized+1, "one connection per session (one may be under way)")
	require.NotRegexp(t, heartbeatFailed, standby.LogSince(mark))
	require.Equal(t, []string{"postgres: bgworker: pg_keeper (standby mode:connected)"},
		standby.ProcessTitles("postgres: bgworker: pg_keeper"))
}
