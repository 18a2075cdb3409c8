package test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// The standby dies and comes back: the master goes async, then restores
// synchronous_standby_names by itself once the standby has caught up, also
// across a restart of the master in between; a commit then waits for the
// standby again.
func TestSyncRestoredWhenStandbyReturns(t *testing.T) {
	c := newPair(t, nil)
	master, standby := c.Master, c.Standby

	standby.Kill9(t)
	master.WaitForTitle(t, title(core.MasterAsync), failoverTimeout)
	require.Equal(t, "", master.QueryString(t, "SHOW synchronous_standby_names"))
	master.Exec(t, ackedTable)
	master.Exec(t, "INSERT INTO acked (id) SELECT generate_series(1, 1000)") // the standby must catch up on these

	// The master restarts while async: it must still know what to restore.
	// Until the standby answers, it is unconfirmed: no writes.
	master.Stop(t, "fast")
	master.Start(t)
	master.WaitForTitle(t, title(core.MasterUnconfirmed), failoverTimeout)

	mark := master.LogMark()
	standby.Start(t)
	master.WaitForLog(t, mark, transitionLine(core.MasterUnconfirmed, core.ConfirmedAsync), failoverTimeout)
	master.WaitForLog(t, mark, transitionLine(core.MasterAsync, core.PartnerCaughtUp), failoverTimeout)
	master.WaitForLog(t, mark, transitionLine(core.MasterRestoring, core.ActionDone), failoverTimeout)
	master.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
	cluster.Eventually(t, failoverTimeout, 50*time.Millisecond, func() bool {
		s, err := master.TryQueryString(context.Background(), "SELECT sync_state FROM pg_stat_replication")
		return err == nil && s == "sync"
	}, "standby not synchronous again")
	require.Equal(t, "standby", master.QueryString(t, "SHOW synchronous_standby_names"))
	// postgresql.conf held the value: the override is gone from postgresql.auto.conf.
	require.Equal(t, "0", master.QueryString(t,
		"SELECT count(*) FROM pg_file_settings WHERE name = 'synchronous_standby_names' AND sourcefile LIKE '%postgresql.auto.conf'"))

	// Freeze the standby: a commit on the master waits for it again. The
	// keeper cannot give up on the standby before keepalives_count
	// heartbeats and wal_sender_timeout (2 s) have passed.
	standby.Freeze(t)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), failoverTimeout)
		defer cancel()
		done <- master.TryExec(ctx, "INSERT INTO acked (id) VALUES (-1)")
	}()
	select {
	case err := <-done:
		t.Fatalf("commit did not wait for the frozen synchronous standby (err=%v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	standby.Thaw(t)
	require.NoError(t, <-done)
}
