package test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper"
)

// Both keepers find their mode, reach their partner, say so in the log and
// in their process title, and show up in pg_stat_activity.
func TestBothKeepersConnect(t *testing.T) {
	c := newPair(t, nil)

	c.Master.WaitForLog(t, 0, logLine("started in master mode: partner "), startTimeout)
	c.Standby.WaitForLog(t, 0, logLine("started in standby mode: partner "), startTimeout)
	// The master may have started before the standby could answer: it then
	// ran asynchronously until the standby caught up, and got connected
	// through the restore. Either way one of the two lines is there.
	startup := c.Master.Log()
	if !transitionLine(keeper.MasterReady, keeper.PartnerUp).MatchString(startup) {
		require.Regexp(t, transitionLine(keeper.MasterRestoring, keeper.ActionDone), startup)
	}
	c.Standby.WaitForLog(t, 0, transitionLine(keeper.StandbyReady, keeper.PartnerUp), startTimeout)

	require.Equal(t, []string{"postgres: bgworker: pg_keeper (master mode:connected)"},
		c.Master.ProcessTitles("postgres: bgworker: pg_keeper"))
	require.Equal(t, []string{"postgres: bgworker: pg_keeper (standby mode:connected)"},
		c.Standby.ProcessTitles("postgres: bgworker: pg_keeper"))

	for _, n := range c.Nodes() {
		require.Equal(t, "1", n.QueryString(t,
			"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_keeper'"), n.Name)
	}
	// The heartbeat is a short session each time: nothing stays open on the partner.
	require.Equal(t, "sync", c.Master.QueryString(t, "SELECT sync_state FROM pg_stat_replication"))
}
