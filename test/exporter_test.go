package test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// Debian's postgres_exporter with conf/postgres_exporter.yaml, one per
// node: without the extension the namespaces fail and say why; with it each
// node tells its mode, state, sync, maintenance; after the master is killed
// the new master says master, one promotion, then asynchronous.
func TestExporter(t *testing.T) {
	queries := exporterQueries(t)
	c := newPair(t, nil)
	master, standby := c.Master, c.Standby
	mExp := cluster.StartExporter(t, master, queries)

	s := scrape(t, mExp)
	require.Equal(t, 1.0, metric(t, s, "pg_up", nil))
	require.Equal(t, 1.0, metric(t, s, "pg_exporter_last_scrape_error", nil), "no extension in the scraped database")
	requireNoMetric(t, s, "pg_keeper_state_info")
	require.Contains(t, mExp.Log(), `relation \"pg_keeper.status\" does not exist`)

	createExtension(t, c)
	sExp := cluster.StartExporter(t, standby, queries)
	for mode, e := range map[string]*cluster.Exporter{"master": mExp, "standby": sExp} {
		s := waitMetric(t, e, startTimeout, "pg_keeper_state_info", map[string]string{"mode": mode, "state": "connected"}, 1)
		require.Equal(t, 0.0, metric(t, s, "pg_exporter_last_scrape_error", nil), mode)
		require.Equal(t, 1.0, metric(t, s, "pg_keeper_state_info", map[string]string{"fence": "open"}), mode)
		require.Equal(t, 1.0, metric(t, s, "pg_keeper_replication_sync", map[string]string{"replication": "sync"}), mode)
		require.Equal(t, 1.0, metric(t, s, "pg_keeper_worker_running", nil), mode)
		require.Equal(t, 0.0, metric(t, s, "pg_keeper_maintenance", nil), mode)
		require.Equal(t, 0.0, metric(t, s, "pg_keeper_consecutive_failures", nil), mode)
		require.Equal(t, 3.0, metric(t, s, "pg_keeper_keepalives_count", nil), mode)
		require.Equal(t, 0.2, metric(t, s, "pg_keeper_keepalives_time_seconds", nil), mode)
		require.Less(t, metric(t, s, "pg_keeper_partner_last_seen_seconds", nil), 5.0, mode)
		require.Equal(t, 0.0, metric(t, s, "pg_keeper_term", nil), mode)
		require.Equal(t, 0.0, metric(t, s, "pg_keeper_events_promotions", nil), mode)
		require.Equal(t, 0.0, metric(t, s, "pg_keeper_events_last_promotion_timestamp_seconds", nil), mode)
		requireNoMetric(t, s, "pg_keeper_witness_answering")
	}

	// Maintenance mode, set on the master, shows on both.
	master.Exec(t, "SELECT pg_keeper.pause('exporter test')")
	waitMetric(t, mExp, startTimeout, "pg_keeper_maintenance", nil, 1)
	waitMetric(t, sExp, startTimeout, "pg_keeper_maintenance", nil, 1)
	master.Exec(t, "SELECT pg_keeper.resume()")
	waitMetric(t, mExp, startTimeout, "pg_keeper_maintenance", nil, 0)
	waitMetric(t, sExp, startTimeout, "pg_keeper_maintenance", nil, 0)
	waitSyncSeen(t, c)

	before := float64(time.Now().Unix())
	master.Kill9(t)
	waitPromoted(t, standby)
	s = waitMetric(t, sExp, failoverTimeout, "pg_keeper_events_promotions", nil, 1)
	require.Equal(t, 1.0, metric(t, s, "pg_keeper_events_failovers", nil))
	require.Equal(t, 0.0, metric(t, s, "pg_keeper_events_switchovers", nil))
	require.GreaterOrEqual(t, metric(t, s, "pg_keeper_events_last_promotion_timestamp_seconds", nil), before-1)
	// The old master is gone for good: the new one goes asynchronous.
	// Each namespace is its own query, run in no fixed order: one scrape
	// may read the events before the switch and the state after it.
	waitMetric(t, sExp, failoverTimeout, "pg_keeper_state_info", map[string]string{"mode": "master", "state": "async", "fence": "open"}, 1)
	waitMetric(t, sExp, failoverTimeout, "pg_keeper_replication_sync", map[string]string{"replication": "async"}, 0)
	s = waitMetric(t, sExp, failoverTimeout, "pg_keeper_events_async_switches", nil, 1)
	require.Equal(t, 0.0, metric(t, s, "pg_keeper_events_failed_actions", nil))
	require.Equal(t, 0.0, metric(t, s, "pg_exporter_last_scrape_error", nil))
	waitMetric(t, mExp, failoverTimeout, "pg_up", nil, 0)
}

// With a witness, both nodes say it answers, the term it gave, and the
// master's lease (in pg_keeper.status too).
func TestExporterWitness(t *testing.T) {
	queries := exporterQueries(t)
	c := newWitnessPair(t, nil)
	createExtension(t, c)
	master := holderOf(t, c.Master)
	for _, n := range c.Nodes() {
		waitFor(t, n.Name+"'s status to name the lease's holder", func() bool {
			s, err := n.TryQueryString(bg(), "SELECT lease_holder || ' ' || (lease_ends IS NOT NULL) FROM pg_keeper.status")
			return err == nil && s == master+" true"
		})
	}
	for _, n := range c.Nodes() {
		s := waitMetric(t, cluster.StartExporter(t, n, queries), startTimeout,
			"pg_keeper_witness_answering", map[string]string{"answer": "answers"}, 1)
		require.Equal(t, 1.0, metric(t, s, "pg_keeper_term", nil), n.Name)
		// The master renews a lease of count x time (3 x 200 ms) each
		// heartbeat: some of it is left at any scrape, never more.
		left := metric(t, s, "pg_keeper_witness_lease_remaining_seconds", map[string]string{"answer": "answers"})
		require.Greater(t, left, -1.0, n.Name)
		require.LessOrEqual(t, left, 0.6, n.Name)
	}
}

// exporterQueries skips the test without Debian's exporter, and returns the
// query file's absolute path (the exporter runs elsewhere).
func exporterQueries(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(cluster.ExporterBin); err != nil {
		t.Skipf("%s is not installed (Debian package prometheus-postgres-exporter; scripts/install-deps.sh installs it)", cluster.ExporterBin)
	}
	queries, err := filepath.Abs("../conf/postgres_exporter.yaml")
	require.NoError(t, err)
	return queries
}

func scrape(t testing.TB, e *cluster.Exporter) map[string]float64 {
	t.Helper()
	s, err := e.Scrape()
	require.NoError(t, err)
	return s
}

// metric is the value of the one series of name with labels; it fails
// the test if there is none.
func metric(t testing.TB, s map[string]float64, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := cluster.Value(t, s, name, labels)
	require.True(t, ok, "no series %s %v in the scrape", name, labels)
	return v
}

func requireNoMetric(t testing.TB, s map[string]float64, name string) {
	t.Helper()
	_, ok := cluster.Value(t, s, name, nil)
	require.False(t, ok, "series %s in the scrape", name)
}

// waitMetric scrapes e until the series of name with labels has value
// want, and returns that scrape.
func waitMetric(t testing.TB, e *cluster.Exporter, timeout time.Duration, name string, labels map[string]string, want float64) map[string]float64 {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		s, err := e.Scrape()
		last := fmt.Sprint(err)
		if err == nil {
			v, ok := cluster.Value(t, s, name, labels)
			if ok && v == want {
				return s
			}
			last = fmt.Sprintf("present %v, value %v", ok, v)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scrape with %s %v = %v within %v (last: %s)", name, labels, want, timeout, last)
		}
	}
}
