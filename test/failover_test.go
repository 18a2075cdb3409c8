package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/stretchr/testify/require"
)

// SIGKILL of the master's postmaster under a steady insert load: the
// standby promotes itself, runs after_command, takes writes, and has every
// commit the master acknowledged.
func TestMasterKilledStandbyPromotes(t *testing.T) {
	marker := filepath.Join(os.TempDir(), fmt.Sprintf("pgk-after-%d", time.Now().UnixNano()))
	t.Cleanup(func() { os.Remove(marker) })
	c := newPair(t, map[string]string{
		"pg_keeper.after_command": fmt.Sprintf(`'echo "$PG_KEEPER_EVENT|$PG_KEEPER_OLD_PRIMARY|$PG_KEEPER_TIMELINE|$PG_KEEPER_PORT" > %s; echo fenced'`, marker),
	})
	master, standby := c.Master, c.Standby

	l := startLoad(t, master)
	l.waitAcked(t, 200, 30*time.Second, "load on the master")
	mark := standby.LogMark()
	master.Kill9(t)
	acked := l.ackedIDs()
	l.stop()

	waitPromoted(t, standby)
	standby.WaitForLog(t, mark, transitionLine(core.StandbyConnected, core.PartnerLost), failoverTimeout)
	standby.WaitForLog(t, mark, transitionLine(core.StandbyPromoting, core.ActionDone), failoverTimeout)
	require.False(t, standby.InRecovery(t))

	// after_command ran with the event described in its environment, and
	// its output and exit status reached the log.
	standby.WaitForLog(t, mark, logLine("after_command finished: exit status 0"), failoverTimeout)
	standby.WaitForLog(t, mark, logLine("after_command: fenced"), failoverTimeout)
	out, err := os.ReadFile(marker)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("promote|%s|2|%d", master.KeeperConninfo(), standby.Port), strings.TrimSpace(string(out)))

	requireAllPresent(t, standby, acked)
	// The new master takes writes: its keeper cleared the synchronous
	// standby it inherited, now that the old master is gone.
	ctx, cancel := ctxTimeout(failoverTimeout)
	defer cancel()
	require.NoError(t, standby.TryExec(ctx, "INSERT INTO acked (id) VALUES (-1)"))
	require.Equal(t, 1, strings.Count(standby.LogSince(mark), core.Why(core.StandbyConnected, core.PartnerLost)),
		"promoted exactly once")
}

// SIGKILL of the standby under load: commits on the master hang only until
// the keeper clears synchronous_standby_names, then go on.
func TestStandbyKilledMasterGoesAsync(t *testing.T) {
	c := newPair(t, nil)
	master := c.Master

	l := startLoad(t, master)
	l.waitAcked(t, 100, 30*time.Second, "load on the master")
	mark := master.LogMark()
	c.Standby.Kill9(t)

	master.WaitForLog(t, mark, transitionLine(core.MasterConnected, core.PartnerLost), failoverTimeout)
	master.WaitForLog(t, mark, transitionLine(core.MasterSwitching, core.ActionDone), failoverTimeout)
	master.WaitForTitle(t, title(core.MasterAsync), failoverTimeout)
	require.Equal(t, "", master.QueryString(t, "SHOW synchronous_standby_names"))
	l.waitAcked(t, 100, failoverTimeout, "commits on the master did not resume")
	require.True(t, master.PortOpen())
	require.False(t, master.InRecovery(t))
}
