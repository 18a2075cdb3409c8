package test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// stopBound is far above what a stop takes (well under a second here) and
// far below pg_ctl's own 60 s: a keeper that holds a shutdown up fails it.
const stopBound = 20 * time.Second

// Smart and fast shutdowns finish on both nodes with the keepers running:
// the heartbeat holds no session open on the partner, and the worker stops
// at SIGTERM.
func TestShutdownsFinish(t *testing.T) {
	for _, mode := range []string{"smart", "fast"} {
		t.Run(mode, func(t *testing.T) {
			c := newPair(t, nil)
			// The standby first, so that the master's keeper is not
			// counting failures while the test stops it.
			require.NoError(t, c.Standby.StopWithTimeout(mode, stopBound), "standby %s shutdown", mode)
			require.NoError(t, c.Master.StopWithTimeout(mode, stopBound), "master %s shutdown", mode)
			require.Regexp(t, logLine("stopping"), c.Master.Log())
			require.Regexp(t, logLine("stopping"), c.Standby.Log())
		})
	}
}

// Shutdowns also finish while the partner cannot be reached and the keeper
// is in the middle of failing heartbeats or of its actions.
func TestShutdownsFinishWithPartnerGone(t *testing.T) {
	c := newPair(t, nil)
	c.Master.Kill9(t)
	waitPromoted(t, c.Standby)
	require.NoError(t, c.Standby.StopWithTimeout("smart", stopBound), "smart shutdown of the promoted standby")

	c2 := newPair(t, nil)
	c2.Standby.Kill9(t)
	c2.Master.WaitForLog(t, 0, logLine("heartbeat to standby failed (1/3)"), failoverTimeout)
	require.NoError(t, c2.Master.StopWithTimeout("fast", stopBound), "fast shutdown of the master")
}
