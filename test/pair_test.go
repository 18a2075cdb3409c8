// Package test runs pg_keeper in real PostgreSQL 15 servers: a two-node
// streaming-replication pair on 127.0.0.1 built by test/cluster, with the
// installed pg_keeper preloaded on both (make USE_PGXS=1 install first).
package test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// Fast settings so that scenarios take seconds: a partner is lost after
// 3 × 200 ms, and replication notices a dead peer within 2 s.
var fastSettings = map[string]string{
	"pg_keeper.keepalives_time":  "'200ms'",
	"pg_keeper.keepalives_count": "3",
	"wal_sender_timeout":         "'2s'",
	"wal_receiver_timeout":       "'2s'",
}

// Generous bounds: they catch a keeper that does nothing, not a slow machine.
const (
	startTimeout    = 60 * time.Second
	failoverTimeout = 60 * time.Second
)

// newPair builds a synchronous pair with pg_keeper on both nodes, waits
// until both keepers are connected, and returns it. extra overrides
// fastSettings.
func newPair(t testing.TB, extra map[string]string) *cluster.Cluster {
	t.Helper()
	return startPair(t, cluster.Options{}, extra)
}

// startPair is newPair with other cluster options (Keeper and Sync are set).
func startPair(t testing.TB, opts cluster.Options, extra map[string]string) *cluster.Cluster {
	t.Helper()
	requireInstalled(t)
	opts.Keeper, opts.Sync = true, true
	opts.Settings = map[string]string{}
	for k, v := range fastSettings {
		opts.Settings[k] = v
	}
	for k, v := range extra {
		opts.Settings[k] = v
	}
	c := cluster.New(t, opts)
	c.Master.WaitForTitle(t, title(core.MasterConnected), startTimeout)
	c.Standby.WaitForTitle(t, title(core.StandbyConnected), startTimeout)
	waitSyncSeen(t, c)
	return c
}

// waitSyncSeen waits until the standby has seen the master synchronous
// with it. The master may have started alone and only now restored
// synchronous replication, and the standby promotes only if a good
// heartbeat saw the master synchronous: let it see that (a heartbeat is
// every 200 ms) before a test kills the master.
func waitSyncSeen(t testing.TB, c *cluster.Cluster) {
	t.Helper()
	cluster.Eventually(t, startTimeout, 50*time.Millisecond, func() bool {
		s, err := c.Master.TryQueryString(context.Background(),
			"SELECT sync_state FROM pg_stat_replication WHERE application_name = $1", c.Standby.AppName)
		return err == nil && (s == "sync" || s == "quorum")
	}, "the standby never became synchronous")
	time.Sleep(time.Second)
}

// requireInstalled fails early, with the fix, when pg_keeper is not installed.
func requireInstalled(t testing.TB) {
	t.Helper()
	out, err := exec.Command(pgConfig(), "--pkglibdir").Output()
	require.NoError(t, err, "pg_config --pkglibdir")
	for _, lib := range []string{"pg_keeper.so", "pg_keeper_go.so"} {
		_, err := os.Stat(filepath.Join(strings.TrimSpace(string(out)), lib))
		require.NoError(t, err, "pg_keeper is not installed: run make USE_PGXS=1 install")
	}
}

func pgConfig() string {
	if p := os.Getenv("PG_CONFIG"); p != "" {
		return p
	}
	return "pg_config"
}

// title matches the keeper's full process title in state s.
func title(s core.State) *regexp.Regexp {
	return regexp.MustCompile(`^postgres: bgworker: pg_keeper ` + regexp.QuoteMeta(s.Title()) + `$`)
}

// logLine matches a server log line written by the keeper that starts with msg.
func logLine(msg string) *regexp.Regexp {
	return regexp.MustCompile(`(LOG|WARNING|ERROR):  pg_keeper: ` + regexp.QuoteMeta(msg))
}

// transitionLine matches the log line of the transition from s on tr.
func transitionLine(s core.State, tr core.Trigger) *regexp.Regexp {
	return logLine(core.Why(s, tr))
}

func ctxTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func regexpOf(literal string) *regexp.Regexp { return regexp.MustCompile(regexp.QuoteMeta(literal)) }

func itoa(i int) string { return strconv.Itoa(i) }

// waitPromoted waits until n's keeper has promoted its server. Its title
// says (master mode:ready) only for a moment: it re-checks the old master
// at once and moves on.
func waitPromoted(t testing.TB, n *cluster.Node) {
	t.Helper()
	n.WaitForLog(t, 0, transitionLine(core.StandbyPromoting, core.ActionDone), failoverTimeout)
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	i, err := strconv.Atoi(s)
	require.NoError(t, err)
	return i
}
