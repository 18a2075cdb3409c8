package test

import (
	"testing"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/stretchr/testify/require"
)

// after_command that fails or hangs: its output and its end reach the log,
// the keeper goes on meanwhile, and the new master serves.
func TestAfterCommandFailsOrHangs(t *testing.T) {
	cases := []struct {
		name, command, timeout, want string
		hangs                        bool
	}{
		{"fails", `'echo out; echo err >&2; exit 3'`, "'60s'", "after_command failed: exit status 3 after ", false},
		{"hangs", `'echo out; echo err >&2; sleep 600'`, "'2s'", "after_command failed: killed after the timeout of 2s (pg_keeper.after_command_timeout) after ", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newPair(t, map[string]string{
				"pg_keeper.after_command":         tc.command,
				"pg_keeper.after_command_timeout": tc.timeout,
			})
			standby := c.Standby
			mark := standby.LogMark()
			c.Master.Kill9(t)

			standby.WaitForLog(t, mark, transitionLine(core.StandbyPromoting, core.ActionDone), failoverTimeout)
			// The keeper does not wait for the command: as the new master it
			// gives up on its lost standby (the old master) meanwhile.
			standby.WaitForLog(t, mark, transitionLine(core.MasterSwitching, core.ActionDone), failoverTimeout)
			line := standby.WaitForLog(t, mark, logLine(tc.want), failoverTimeout)
			require.Contains(t, line, "WARNING:")
			log := standby.LogSince(mark)
			require.Regexp(t, logLine("after_command: out"), log)
			require.Regexp(t, logLine("after_command: err"), log)
			if tc.hangs {
				switched := transitionLine(core.MasterSwitching, core.ActionDone).FindStringIndex(log)
				killed := logLine(tc.want).FindStringIndex(log)
				require.Less(t, switched[0], killed[0], "the keeper waited for the hanging command")
			}
			require.False(t, standby.InRecovery(t))
			standby.Exec(t, "CREATE TABLE after_failover (x int)")
			require.Len(t, standby.ProcessTitles("postgres: bgworker: pg_keeper"), 1)
		})
	}
}

// A state_change_command that hangs: each run is killed after its timeout
// and logged, and meanwhile the keeper fails over as if it were not there.
func TestStateChangeCommandHangs(t *testing.T) {
	c := newPair(t, map[string]string{
		"pg_keeper.state_change_command":         `'echo "$PG_KEEPER_NEW_STATE"; sleep 600'`,
		"pg_keeper.state_change_command_timeout": "'1s'",
	})
	standby := c.Standby
	mark := standby.LogMark()
	c.Master.Kill9(t)

	standby.WaitForLog(t, mark, transitionLine(core.MasterSwitching, core.ActionDone), failoverTimeout)
	standby.Exec(t, "CREATE TABLE after_failover (x int)")
	// The runs queued behind the hanging ones come in order, each killed.
	standby.WaitForLog(t, mark, logLine("state_change_command failed for standby:connected -> standby:promoting: "+
		"killed after the timeout of 1s (pg_keeper.state_change_command_timeout) after "), failoverTimeout)
	line := standby.WaitForLog(t, mark, logLine("state_change_command failed for standby:promoting -> master:ready: "), failoverTimeout)
	require.Contains(t, line, "WARNING:")
	require.Regexp(t, logLine("state_change_command: master:ready"), standby.LogSince(mark))
	require.Len(t, standby.ProcessTitles("postgres: bgworker: pg_keeper"), 1)
}
