package test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// conf/pgbouncer-repoint.sh as pg_keeper.state_change_command on both
// nodes: a real PgBouncer, first pointing nowhere, follows the primary to
// the master once it is connected, and to the standby once it promoted.
func TestPgBouncerFollowsPrimary(t *testing.T) {
	bouncer, c := bouncedPair(t)
	master, standby := c.Master, c.Standby

	master.WaitForLog(t, 0, logLine(fmt.Sprintf("state_change_command: PgBouncer database appdb now points at 127.0.0.1:%d", master.Port)), startTimeout)
	require.Equal(t, fmt.Sprintf("%d|f", master.Port), throughBouncer(t, bouncer, startTimeout, "f"))
	require.NotRegexp(t, logLine("state_change_command: PgBouncer"), standby.Log(), "a standby never re-points")

	mark := standby.LogMark()
	master.Kill9(t)
	standby.WaitForTitle(t, title(core.MasterAsync), failoverTimeout)
	standby.WaitForLog(t, mark, logLine(fmt.Sprintf("state_change_command: PgBouncer database appdb now points at 127.0.0.1:%d", standby.Port)), failoverTimeout)
	require.Equal(t, fmt.Sprintf("%d|f", standby.Port), throughBouncer(t, bouncer, failoverTimeout, "f"))
	// Every change of state ran the command, in order, and each run is logged.
	standby.WaitForLog(t, mark, logLine("state_change_command finished for standby:connected -> standby:promoting: exit status 0"), failoverTimeout)
	standby.WaitForLog(t, mark, logLine("state_change_command finished for standby:promoting -> master:ready: exit status 0"), failoverTimeout)
}

// bouncedPair is a pair whose state-change command is
// conf/pgbouncer-repoint.sh on both nodes, and a PgBouncer it re-points,
// first pointing nowhere.
func bouncedPair(t *testing.T) (*cluster.PgBouncer, *cluster.Cluster) {
	bouncer := cluster.StartPgBouncer(t, "appdb = host=127.0.0.1 port=1 dbname=postgres\n")
	script := installScript(t, bouncer.Dir, "../conf/pgbouncer-repoint.sh")
	admin := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=pgbouncer", bouncer.Port)
	c := startPair(t, cluster.Options{KeeperAddr: true}, map[string]string{
		"pg_keeper.state_change_command": fmt.Sprintf(`'%s %s appdb "dbname=postgres" "%s"'`, script, bouncer.DBsFile, admin),
	})
	return bouncer, c
}

// installScript copies a shipped script where the postgres OS user can run it.
func installScript(t testing.TB, dir, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	require.NoError(t, err)
	dst := filepath.Join(dir, filepath.Base(src))
	require.NoError(t, os.WriteFile(dst, data, 0o755))
	return dst
}

// throughBouncer asks, through PgBouncer's appdb, which server answers
// ("port|in recovery"), until the answer's recovery flag is want.
func throughBouncer(t testing.TB, b *cluster.PgBouncer, timeout time.Duration, want string) string {
	t.Helper()
	var got string
	var lastErr error
	cluster.Eventually(t, timeout, 100*time.Millisecond, func() bool {
		ctx, cancel := ctxTimeout(5 * time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, b.Conninfo("appdb"))
		if err != nil {
			lastErr = err
			return false
		}
		defer conn.Close(ctx)
		var port int
		var rec bool
		lastErr = conn.QueryRow(ctx, "SELECT inet_server_port(), pg_is_in_recovery()", pgx.QueryExecModeSimpleProtocol).Scan(&port, &rec)
		got = fmt.Sprintf("%d|%s", port, map[bool]string{true: "t", false: "f"}[rec])
		return lastErr == nil && got[len(got)-1:] == want
	}, "no answer through PgBouncer")
	require.NoError(t, lastErr)
	return got
}

// The same PgBouncer follows a switchover: the new master's state-change
// command re-points it, and it never points at the old one again.
func TestPgBouncerFollowsSwitchover(t *testing.T) {
	bouncer, c := bouncedPair(t)
	master, standby := c.Master, c.Standby
	createExtension(t, c)
	require.Equal(t, fmt.Sprintf("%d|f", master.Port), throughBouncer(t, bouncer, startTimeout, "f"))

	mark := standby.LogMark()
	require.Contains(t, switchover(t, master), "switchover under way")
	standby.WaitForLog(t, mark, logLine(fmt.Sprintf("state_change_command: PgBouncer database appdb now points at 127.0.0.1:%d", standby.Port)), failoverTimeout)
	require.Equal(t, fmt.Sprintf("%d|f", standby.Port), throughBouncer(t, bouncer, failoverTimeout, "f"))
	master.WaitForTitle(t, title(core.StandbyConnected), failoverTimeout)
	standby.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
	require.Equal(t, fmt.Sprintf("%d|f", standby.Port), throughBouncer(t, bouncer, failoverTimeout, "f"))
}
