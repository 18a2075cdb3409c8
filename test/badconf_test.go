package test

import (
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// A partner_conninfo that cannot work is logged clearly, never with the
// password, and the worker keeps going: fixing it with a reload is enough.
func TestBadPartnerConninfo(t *testing.T) {
	c := newPair(t, nil)
	standby := c.Standby
	const password = "s3cret-Pa55"
	c.Master.Exec(t, "CREATE ROLE keeper LOGIN SUPERUSER PASSWORD '"+password+"'")
	c.Master.SetHBA(t, "host all keeper 127.0.0.1/32 scram-sha-256")
	pid := workerPID(t, standby)

	cases := []struct {
		name, conninfo string
		want           string // a regexp
	}{
		{"unparsable", "host=127.0.0.1 port=notaport password=" + password,
			`ERROR:  pg_keeper: pg_keeper\.partner_conninfo is invalid: `},
		{"nothing listens", "host=127.0.0.1 port=" + strconv.Itoa(closedPort(t)) + " user=postgres password=" + password,
			`WARNING:  pg_keeper: heartbeat to master failed \(\d+/3\): refused: `},
		{"wrong password", "host=127.0.0.1 port=" + strconv.Itoa(c.Master.Port) + " user=keeper dbname=postgres password=wrong-" + password,
			`WARNING:  pg_keeper: heartbeat to master failed \(\d+/3\): authentication: .*password authentication failed for user "keeper"`},
	}
	for _, tc := range cases {
		mark := standby.LogMark()
		standby.SetConf("pg_keeper.partner_conninfo", "'"+tc.conninfo+"'")
		standby.Reload(t)
		standby.WaitForLog(t, mark, regexp.MustCompile(tc.want), startTimeout)
		require.NotContains(t, keeperLines(standby.LogSince(mark)), password, tc.name)
	}
	// None of that may promote: replication shows the master alive.
	standby.WaitForTitle(t, title(core.StandbyHeartbeatLost), startTimeout)
	require.Regexp(t, transitionLine(core.StandbyConnected, core.HeartbeatLost), standby.Log())
	require.True(t, standby.InRecovery(t))

	// The right password heals it, in the same worker process.
	mark := standby.LogMark()
	standby.SetConf("pg_keeper.partner_conninfo", "'host=127.0.0.1 port="+strconv.Itoa(c.Master.Port)+" user=keeper dbname=postgres password="+password+"'")
	standby.Reload(t)
	standby.WaitForLog(t, mark, logLine("heartbeat to master succeeded after"), startTimeout)
	standby.WaitForTitle(t, title(core.StandbyConnected), startTimeout)
	require.Equal(t, pid, workerPID(t, standby), "the worker restarted")
	require.NotContains(t, keeperLines(standby.Log()), password)
	require.True(t, standby.InRecovery(t))
}

// keeperLines keeps the keeper's own log lines. PostgreSQL itself logs a
// reloaded setting's new value, password included ("parameter ... changed
// to"), as it does for primary_conninfo: the README says to keep passwords
// in a password file.
func keeperLines(log string) string { return cluster.KeeperLines(log, -1) }

func workerPID(t *testing.T, n interface {
	QueryString(testing.TB, string, ...any) string
}) string {
	t.Helper()
	return n.QueryString(t, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_keeper'")
}

// closedPort returns a loopback port where nothing listens.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	time.Sleep(10 * time.Millisecond)
	return port
}
