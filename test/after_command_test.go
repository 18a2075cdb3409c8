package test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper"
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

			standby.WaitForLog(t, mark, transitionLine(keeper.StandbyPromoting, keeper.ActionDone), failoverTimeout)
			// The keeper does not wait for the command: as the new master it
			// gives up on its lost standby (the old master) meanwhile.
			standby.WaitForLog(t, mark, transitionLine(keeper.MasterSwitching, keeper.ActionDone), failoverTimeout)
			line := standby.WaitForLog(t, mark, logLine(tc.want), failoverTimeout)
			require.Contains(t, line, "WARNING:")
			log := standby.LogSince(mark)
			require.Regexp(t, logLine("after_command: out"), log)
			require.Regexp(t, logLine("after_command: err"), log)
			if tc.hangs {
				switched := transitionLine(keeper.MasterSwitching, keeper.ActionDone).FindStringIndex(log)
				killed := logLine(tc.want).FindStringIndex(log)
				require.Less(t, switched[0], killed[0], "the keeper waited for the hanging command")
			}
			require.False(t, standby.InRecovery(t))
			standby.Exec(t, "CREATE TABLE after_failover (x int)")
			require.Len(t, standby.ProcessTitles("postgres: bgworker: pg_keeper"), 1)
		})
	}
}
