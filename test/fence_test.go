package test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// The master is killed, the standby promotes itself, and the old master is
// started again as it was. Clients hammer it from before it starts: not one
// write is accepted there. Its keeper finds the partner on a newer
// timeline, refuses connections, shuts the server down, and logs the steps
// to rejoin as a standby. The new master is frozen while the old one
// starts, so the old one's keeper cannot decide for a while: clients must
// be held meanwhile, not served.
func TestOldMasterNeverServesWrites(t *testing.T) {
	c := newPair(t, nil)
	oldMaster, newMaster := c.Master, c.Standby
	oldMaster.Exec(t, ackedTable)

	oldMaster.Kill9(t)
	waitPromoted(t, newMaster)
	newMaster.Exec(t, "INSERT INTO acked (id) VALUES (1)")

	var w writer
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx, oldMaster.Conninfo()) }()
	t.Cleanup(func() { stop(); <-done })

	// 50 failed heartbeats before giving up on the partner: the verdict
	// waits for the new master to answer.
	oldMaster.SetConf("pg_keeper.keepalives_count", "50")
	newMaster.Freeze(t)
	mark := oldMaster.LogMark()
	_ = oldMaster.TryStart() // it may already be shutting itself down when pg_ctl looks
	oldMaster.WaitForLog(t, mark, logLine("heartbeat to standby failed (1/50): timeout"), failoverTimeout)
	time.Sleep(2 * time.Second) // clients keep trying, and are held
	newMaster.Thaw(t)
	oldMaster.WaitForLog(t, mark, transitionLine(keeper.MasterReady, keeper.Superseded), failoverTimeout)
	oldMaster.WaitForLog(t, mark, logLine("to rejoin as a standby of the new primary: pg_rewind --target-pgdata="+oldMaster.DataDir), failoverTimeout)
	cluster.Eventually(t, failoverTimeout, 50*time.Millisecond, func() bool { return oldMaster.PostmasterPID() == 0 },
		"the fenced old master did not shut down")
	stop()
	<-done

	w.mu.Lock()
	defer w.mu.Unlock()
	require.Zero(t, w.written, "the old master accepted writes")
	require.Positive(t, w.refusedAsSupersede, "no client was held until the verdict and refused (of %d attempts)", w.attempts)
	// The new master is untouched.
	require.False(t, newMaster.InRecovery(t))
	newMaster.Exec(t, "INSERT INTO acked (id) VALUES (2)")
}

// writer tries an INSERT on a fresh connection again and again, and counts
// what the server did with it.
type writer struct {
	mu                 sync.Mutex
	attempts, written  int
	refusedAsSupersede int
}

func (w *writer) run(ctx context.Context, conninfo string) {
	for ctx.Err() == nil {
		w.try(ctx, conninfo)
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *writer) try(parent context.Context, conninfo string) {
	ctx, cancel := context.WithTimeout(parent, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, conninfo)
	w.mu.Lock()
	w.attempts++
	if err != nil && strings.Contains(err.Error(), "superseded") {
		w.refusedAsSupersede++
	}
	w.mu.Unlock()
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "INSERT INTO acked (id) VALUES (-1)"); err == nil {
		w.mu.Lock()
		w.written++
		w.mu.Unlock()
	}
}
