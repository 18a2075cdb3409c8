package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// powerOff is a fence_command that "powers off" n as a power switch would:
// SIGKILL to its postmaster, whose children then die.
func powerOff(n *cluster.Node) string {
	return fmt.Sprintf(`'kill -9 $(head -1 %s/postmaster.pid) && echo powered off $PG_KEEPER_PARTNER_HOST'`, n.DataDir)
}

// A full partition under keep_master, with a fence_command: the master,
// which may be powered off by its standby, keeps its commits waiting (it
// acknowledges nothing the standby lacks); the standby powers it off, then
// promotes. Every acknowledged commit is on the new master, and there was
// never a second primary that acknowledged one.
func TestFenceCommandPowersOffCutMaster(t *testing.T) {
	c := newNetnsPair(t, nil)
	master, standby := c.Master, c.Standby
	for _, n := range c.Nodes() {
		n.SetConf("pg_keeper.fence_command", powerOff(c.Other(n)))
		n.Reload(t)
	}
	time.Sleep(time.Second) // the reload reaches both keepers
	p := watchPrimaries(t, master, standby)
	l := startLoad(t, master)
	l.waitAcked(t, 50, 30*time.Second, "load on the master")

	mark := standby.LogMark()
	c.Partition(t)
	standby.WaitForLog(t, mark, transitionLine(core.StandbyFencingPartner, core.ActionDone), failoverTimeout)
	standby.WaitForLog(t, mark, logLine("fence_command: powered off "+master.Addr), failoverTimeout)
	standby.WaitForLog(t, mark, transitionLine(core.StandbyPromoting, core.ActionDone), failoverTimeout)
	cluster.Eventually(t, failoverTimeout, 50*time.Millisecond, func() bool { return master.PostmasterPID() == 0 },
		"the fenced master is still running")
	l.stop()
	requireAllPresent(t, standby, l.ackedIDs())
	require.False(t, standby.InRecovery(t))
	p.requireAcked(t, standby)
	p.requireOne(t, master, standby)
}

// The master's host dies; the fence command (an IPMI power-off, here one
// that finds the host off already) says so, and the standby promotes under
// keep_master, in about keepalives_count × keepalives_time.
func TestFenceCommandHostDeath(t *testing.T) {
	c := newNetnsPair(t, withSilentReplication(map[string]string{
		"pg_keeper.fence_command": `'echo the power is off'`}))
	master, standby := c.Master, c.Standby
	l := startLoad(t, master)
	l.waitAcked(t, 50, 30*time.Second, "load on the master")

	mark := standby.LogMark()
	start := vanish(t, master)
	standby.WaitForLog(t, mark, transitionLine(core.StandbyPromoting, core.ActionDone), hostDeathBound)
	t.Logf("promoted %v after the master's host vanished", time.Since(start).Round(time.Millisecond))
	standby.WaitForLog(t, mark, logLine("fence_command: the power is off"), failoverTimeout)
	l.stop()
	requireAllPresent(t, standby, l.ackedIDs())
}

// A fence command that fails or hangs: no promotion, its output and its end
// in the log; the master, which may have been powered off, keeps its
// commits waiting and acknowledges nothing. Once the network heals, both go
// back to normal, and synchronous replication was never left.
func TestFenceCommandFailsOrHangs(t *testing.T) {
	for _, tc := range []struct {
		name, command, timeout, end string
	}{
		{"fails", `'echo no route to the power switch; exit 3'`, "'60s'", "exit status 3 after "},
		{"hangs", `'echo calling the power switch; sleep 600'`, "'2s'", "killed after the timeout of 2s (pg_keeper.fence_command_timeout) after "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newNetnsPair(t, map[string]string{
				"pg_keeper.fence_command": tc.command, "pg_keeper.fence_command_timeout": tc.timeout})
			master, standby := c.Master, c.Standby
			p := watchPrimaries(t, master, standby)
			mark := standby.LogMark()
			c.Partition(t)
			standby.WaitForLog(t, mark, logLine(core.Why(core.StandbyFencingPartner, core.ActionFailed)+" ("+tc.end),
				failoverTimeout)
			log := standby.LogSince(mark)
			require.Regexp(t, logLine("fence_command: "+strings.Fields(strings.Trim(tc.command, "'"))[1]), log)
			master.WaitForTitle(t, title(core.MasterKeepingSync), failoverTimeout)

			// Not promoting, and the master acknowledges nothing.
			ctx, cancel := ctxTimeout(3 * time.Second)
			err := master.TryExec(ctx, "INSERT INTO acked (id) VALUES (1)")
			cancel()
			require.Error(t, err, "the master acknowledged a commit while its standby was fencing it")
			for i := 0; i < 4; i++ {
				require.True(t, standby.InRecovery(t), "the standby promoted although fence_command failed")
				time.Sleep(500 * time.Millisecond)
			}

			master.Heal(t)
			standby.Heal(t)
			standby.WaitForTitle(t, title(core.StandbyConnected), failoverTimeout)
			master.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
			require.Equal(t, "standby", master.QueryString(t, "SHOW synchronous_standby_names"))
			require.Zero(t, p.acked(standby), "the standby acknowledged a commit")
			p.requireOne(t, master, standby)
		})
	}
}
