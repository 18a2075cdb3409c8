package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// pg_keeper.status and pg_keeper.events() answer on the primary and on the
// hot standby, for superusers and pg_monitor members only; after a
// failover and a restart of the new master the history is still there.
func TestStatusAndEvents(t *testing.T) {
	c := newPair(t, nil)
	master, standby := c.Master, c.Standby
	master.Exec(t, "CREATE EXTENSION pg_keeper")
	// The password must never show: trust authentication ignores it.
	standby.SetConf("pg_keeper.partner_conninfo", "'"+master.KeeperConninfo()+" password=s3cret'")
	standby.Reload(t)
	cluster.Eventually(t, startTimeout, 100*time.Millisecond, func() bool {
		rs, err := tryRows(standby, "user=postgres", "SELECT partner FROM pg_keeper.status")
		return err == nil && len(rs) == 1 && strings.Contains(rs[0]["partner"], "password=********")
	}, "the extension never reached the standby, or the reload never reached its keeper")

	m := oneRow(t, master, "SELECT * FROM pg_keeper.status")
	require.Equal(t, "master", m["mode"])
	require.Equal(t, "connected", m["state"])
	require.Equal(t, "0", m["consecutive_failures"])
	require.NotEmpty(t, m["last_success"])
	require.Equal(t, "sync", m["replication"])
	require.Equal(t, "standby", m["synchronous_standby_names"])
	require.Equal(t, "1", m["timeline"])
	require.NotEmpty(t, m["current_lsn"])
	require.Equal(t, "00:00:00.2", m["keepalives_time"])
	require.Equal(t, "3", m["keepalives_count"])
	require.Equal(t, "keep_master", m["on_partner_timeout"])
	require.Equal(t, "open", m["fence"])
	require.Equal(t, "switch-async", m["next_action"])
	require.Less(t, seconds(t, m["next_action_in"]), 1.0, "at most 3 heartbeats of 200 ms and a replication check")
	require.Equal(t, "t", m["worker_running"])
	require.Equal(t, master.QueryString(t, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_keeper'"), m["worker_pid"])
	require.Equal(t, standby.KeeperConninfo(), m["partner"])

	s := oneRow(t, standby, "SELECT * FROM pg_keeper.status()")
	require.Equal(t, "standby", s["mode"])
	require.Equal(t, "connected", s["state"])
	require.Equal(t, "sync", s["replication"], "the master was seen synchronous with this standby")
	require.NotEmpty(t, s["receive_lsn"])
	require.NotEmpty(t, s["replay_lsn"])
	require.NotEmpty(t, s["partner_lsn"])
	require.Empty(t, s["current_lsn"])
	require.Equal(t, "1", s["timeline"])
	require.Equal(t, "promote", s["next_action"])
	require.NotContains(t, s, "next_action_blocked")
	require.NotContains(t, s["partner"], "s3cret")
	require.Equal(t, "t", s["worker_running"])

	hostname, err := os.Hostname()
	require.NoError(t, err)
	for n, connected := range map[*cluster.Node]core.State{master: core.MasterConnected, standby: core.StandbyConnected} {
		ev := rows(t, n, "SELECT * FROM pg_keeper.events()")
		require.Equal(t, "start", ev[0]["kind"], n.Name)
		require.Contains(t, ev[0]["detail"], "started in", n.Name)
		requireEvent(t, ev, row{"kind": "transition", "to_state": connected.String()})
		for _, e := range ev {
			require.Equal(t, hostname+":"+strconv.Itoa(n.Port), e["node"], n.Name)
		}
	}

	// The master is killed: the history of the promotion is on the new
	// master, and is still there after it restarts.
	c.Master.Kill9(t)
	standby.WaitForTitle(t, title(core.MasterAsync), failoverTimeout)
	cluster.Eventually(t, failoverTimeout, 100*time.Millisecond, func() bool {
		rs, err := tryRows(standby, "user=postgres", "SELECT state FROM pg_keeper.status")
		return err == nil && len(rs) == 1 && rs[0]["state"] == "async"
	}, "status never showed the new master asynchronous")
	standby.Stop(t, "fast")
	standby.Start(t)
	// It started as a primary and its partner does not answer: unconfirmed.
	// The old master is gone for good: the operator confirms it.
	standby.WaitForTitle(t, title(core.MasterUnconfirmed), failoverTimeout)
	require.NoError(t, os.WriteFile(filepath.Join(standby.DataDir, core.ConfirmFile), nil, 0o600))
	standby.WaitForTitle(t, title(core.MasterAsync), failoverTimeout)

	s = oneRow(t, standby, "SELECT * FROM pg_keeper.status")
	require.Equal(t, "master", s["mode"])
	require.Equal(t, "async", s["state"])
	require.Equal(t, "async", s["replication"])
	require.Equal(t, "", s["synchronous_standby_names"])
	require.Equal(t, "2", s["timeline"])
	require.NotEmpty(t, s["current_lsn"])
	require.Equal(t, "refused", s["last_failure_class"])
	require.NotContains(t, s, "next_action", "nothing left to do while the old master is gone")

	ev := rows(t, standby, "SELECT * FROM pg_keeper.events()")
	lost := requireEvent(t, ev, row{"kind": "transition", "from_state": "standby:connected", "to_state": "standby:promoting", "trigger": "partner-lost"})
	require.Contains(t, lost["detail"], "3 failed heartbeats in a row")
	promoted := requireEvent(t, ev, row{"kind": "action", "action": "promote", "ok": "t"})
	require.Contains(t, promoted["detail"], "now on timeline 2")
	require.NotEmpty(t, promoted["duration"])
	requireEvent(t, ev, row{"kind": "transition", "from_state": "standby:promoting", "to_state": "master:ready"})
	requireEvent(t, ev, row{"kind": "action", "action": "switch-async", "ok": "t"})
	stop := requireEvent(t, ev, row{"kind": "stop", "from_state": "master:async"})
	start := ev[len(ev)-1]
	for i := len(ev) - 1; start["kind"] != "start"; i-- {
		start = ev[i]
	}
	require.Equal(t, "master:unconfirmed", start["to_state"], "the restarted keeper started unconfirmed in master mode")
	confirmed := requireEvent(t, ev, row{"kind": "transition", "from_state": "master:unconfirmed", "to_state": "master:async", "trigger": "confirmed-async"})
	require.Contains(t, confirmed["detail"], "confirmed by the operator")
	requireEvent(t, ev, row{"kind": "action", "action": "open-fence", "ok": "t"})
	require.Less(t, promoted["at"], stop["at"])
	require.Less(t, stop["at"], start["at"])
	for i := 1; i < len(ev); i++ {
		require.LessOrEqual(t, ev[i-1]["at"], ev[i]["at"], "oldest first")
	}
}

// Only superusers and pg_monitor members may read the keeper's status and
// history, and nobody else can create anything in its schema.
func TestStatusPermissions(t *testing.T) {
	c := newPair(t, nil)
	master, standby := c.Master, c.Standby
	master.Exec(t, "CREATE EXTENSION pg_keeper")
	master.Exec(t, "CREATE ROLE plain LOGIN")
	master.Exec(t, "CREATE ROLE watcher LOGIN IN ROLE pg_monitor")

	for _, n := range c.Nodes() {
		cluster.Eventually(t, startTimeout, 100*time.Millisecond, func() bool {
			_, err := tryRows(n, "user=watcher", "SELECT * FROM pg_keeper.status")
			return err == nil
		}, n.Name+": pg_monitor cannot read pg_keeper.status")
		rs, err := tryRows(n, "user=watcher", "SELECT * FROM pg_keeper.events()")
		require.NoError(t, err, n.Name)
		require.NotEmpty(t, rs, n.Name)
		for _, q := range []string{"SELECT * FROM pg_keeper.status", "SELECT * FROM pg_keeper.status()",
			"SELECT * FROM pg_keeper.events()", "SELECT pg_keeper._status()", "SELECT pg_keeper._events()"} {
			_, err := tryRows(n, "user=plain", q)
			require.ErrorContains(t, err, "permission denied", "%s: %s", n.Name, q)
		}
	}
	_, err := tryRows(master, "user=watcher", "CREATE TABLE pg_keeper.t ()")
	require.ErrorContains(t, err, "permission denied")
	_, err = tryRows(master, "user=watcher", "CREATE FUNCTION pg_keeper.f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
	require.ErrorContains(t, err, "permission denied")
	require.Equal(t, "pg_keeper", standby.QueryString(t, "SELECT nspname FROM pg_namespace WHERE nspname = 'pg_keeper'"))

	// A dump recreates the schema through CREATE EXTENSION, and restores.
	bindir, err := exec.Command(pgConfig(), "--bindir").Output()
	require.NoError(t, err)
	dump, err := exec.Command(filepath.Join(strings.TrimSpace(string(bindir)), "pg_dump"), master.Conninfo()).CombinedOutput()
	require.NoError(t, err, string(dump))
	require.Contains(t, string(dump), "CREATE EXTENSION IF NOT EXISTS pg_keeper WITH SCHEMA pg_catalog;")
	require.NotContains(t, string(dump), "CREATE SCHEMA pg_keeper")
	master.Exec(t, "CREATE DATABASE restored")
	restore := exec.Command(filepath.Join(strings.TrimSpace(string(bindir)), "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-q", master.Conninfo("dbname=restored"))
	restore.Stdin = strings.NewReader(string(dump))
	out, err := restore.CombinedOutput()
	require.NoError(t, err, string(out))
	rs, err := tryRows(master, "user=watcher dbname=restored", "SELECT mode FROM pg_keeper.status")
	require.NoError(t, err)
	require.Equal(t, "master", rs[0]["mode"])

	master.Exec(t, "DROP EXTENSION pg_keeper")
	require.Equal(t, "0", master.QueryString(t, "SELECT count(*) FROM pg_namespace WHERE nspname = 'pg_keeper'"))
}

// seconds parses an interval shorter than a day in PostgreSQL's text form.
func seconds(t testing.TB, iv string) float64 {
	t.Helper()
	d, err := time.Parse("15:04:05.999999", iv)
	require.NoError(t, err, iv)
	return float64(d.Hour()*3600+d.Minute()*60+d.Second()) + float64(d.Nanosecond())/1e9
}

// requireEvent finds an event that has every column of want.
func requireEvent(t testing.TB, events []row, want row) row {
	t.Helper()
	for _, e := range events {
		match := true
		for k, v := range want {
			match = match && e[k] == v
		}
		if match {
			return e
		}
	}
	require.Failf(t, "event not found", "want %v in %v", want, events)
	return nil
}

// The extension on a server without pg_keeper in shared_preload_libraries
// (a dump restored elsewhere): the functions say what is missing.
func TestStatusWithoutTheKeeper(t *testing.T) {
	requireInstalled(t)
	c := cluster.New(t, cluster.Options{NoStandby: true})
	c.Master.Exec(t, "CREATE EXTENSION pg_keeper")
	for _, q := range []string{"SELECT * FROM pg_keeper.status", "SELECT * FROM pg_keeper.events()"} {
		_, err := tryRows(c.Master, "user=postgres", q)
		require.ErrorContains(t, err, "pg_keeper is not running on this server", q)
	}
	require.True(t, c.Master.PortOpen())
}
