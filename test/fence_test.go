package test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// The master is killed, the standby promotes itself, and the old master is
// started again as it was. Clients hammer it from before it starts: not one
// write is accepted there. Its keeper finds the partner on a newer
// timeline, refuses connections, shuts the server down, and logs the steps
// to rejoin as a standby. The new master is frozen while the old one
// starts, so the old one's keeper cannot decide for a while.
func TestOldMasterNeverServesWrites(t *testing.T) {
	c := newPair(t, nil)
	oldMaster, newMaster := c.Master, c.Standby
	oldMaster.Exec(t, ackedTable)

	oldMaster.Kill9(t)
	waitPromoted(t, newMaster)
	newMaster.Exec(t, "INSERT INTO acked (id) VALUES (1)")

	w := startWriters(t, oldMaster)
	newMaster.Freeze(t)
	mark := oldMaster.LogMark()
	_ = oldMaster.TryStart() // it may already be shutting itself down when pg_ctl looks
	oldMaster.WaitForLog(t, mark, logLine("heartbeat to standby failed (1/3): timeout"), failoverTimeout)
	time.Sleep(2 * time.Second) // clients keep trying
	newMaster.Thaw(t)
	oldMaster.WaitForLog(t, mark, transitionLine(core.MasterUnconfirmed, core.Superseded), failoverTimeout)
	oldMaster.WaitForLog(t, mark, logLine("to rejoin as a standby of the new primary: pg_rewind --target-pgdata="+oldMaster.DataDir), failoverTimeout)
	cluster.Eventually(t, failoverTimeout, 50*time.Millisecond, func() bool { return oldMaster.PostmasterPID() == 0 },
		"the fenced old master did not shut down")
	w.stop()

	w.requireNoWrites(t)
	require.Positive(t, w.refused, "no client was refused (of %d attempts)", w.attempts)
	// The new master is untouched.
	require.False(t, newMaster.InRecovery(t))
	newMaster.Exec(t, "INSERT INTO acked (id) VALUES (2)")
}

// The old master is restarted while the new master is hung for good (every
// process stopped): nothing can tell the old master whether it was
// replaced, so it takes no write, however long the partner stays silent and
// whoever asks: a client with synchronous_commit=local, one that calls
// itself pg_keeper, a replication=database walsender. Clients get a clear
// error within the hold bound; they do not pile up. Once the new master
// answers, the old one fences itself. Any state-change command it runs
// after its restart names no primary (unconfirmed has no way in but the
// start, so at most its fencing runs one; which states name a primary is
// the table's, checked by the core's tests).
func TestRestartedOldMasterWithHungPartner(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "pgk-hook-") // t.TempDir's parent is closed to the postgres user
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o777))
	hookLog := filepath.Join(dir, "hook.log")
	c := newPair(t, map[string]string{
		"pg_keeper.state_change_command": "'echo \"$PG_KEEPER_PORT $PG_KEEPER_NEW_STATE primary=$PG_KEEPER_PRIMARY_HOST\" >> " + hookLog + "'",
	})
	oldMaster, newMaster := c.Master, c.Standby
	oldMaster.Exec(t, ackedTable)
	oldMaster.Kill9(t)
	waitPromoted(t, newMaster)

	newMaster.Freeze(t)
	t.Cleanup(func() { newMaster.Thaw(t) })
	w := startWriters(t, oldMaster)
	mark := oldMaster.LogMark()
	before, _ := os.ReadFile(hookLog)
	hooksBefore := len(before)
	oldMaster.Start(t)
	oldMaster.WaitForLog(t, mark, transitionLine(core.MasterUnconfirmed, core.PartnerLostUnsafe), failoverTimeout)
	time.Sleep(15 * time.Second) // far past keepalives_count, the hold bound and the wal timeouts
	require.Equal(t, []string{"postgres: bgworker: pg_keeper (master mode:unconfirmed)"},
		oldMaster.ProcessTitles("postgres: bgworker: pg_keeper"))

	// Held clients are turned away: none waits longer than the bound. An
	// operator looks in under the keepers' name (it cannot write either).
	ctx, cancel := ctxTimeout(10 * time.Second)
	defer cancel()
	look, err := pgconn.Connect(ctx, oldMaster.Conninfo("application_name=pg_keeper"))
	require.NoError(t, err)
	res, err := look.Exec(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Extension' "+
		"AND backend_type = 'client backend' AND now() - backend_start > interval '5 s'").ReadAll()
	require.NoError(t, err)
	require.Equal(t, "0", string(res[0].Rows[0][0]), "clients held past the bound")
	look.Close(ctx)
	w.stop()
	w.requireNoWrites(t)
	require.Positive(t, w.refusedUnconfirmed, "no client was told that the server is unconfirmed (of %d attempts)", w.attempts)
	require.Positive(t, w.rejectedCommits, "the sessions let in by name never tried to commit (of %d attempts)", w.attempts)

	newMaster.Thaw(t)
	oldMaster.WaitForLog(t, mark, transitionLine(core.MasterUnconfirmed, core.Superseded), failoverTimeout)
	cluster.Eventually(t, failoverTimeout, 50*time.Millisecond, func() bool { return oldMaster.PostmasterPID() == 0 },
		"the fenced old master did not shut down")
	b, err := os.ReadFile(hookLog)
	require.NoError(t, err)
	after := string(b)[min(hooksBefore, len(b)):]
	for _, line := range strings.Split(strings.TrimSpace(after), "\n") {
		if strings.HasPrefix(line, itoa(oldMaster.Port)+" ") {
			require.True(t, strings.HasSuffix(line, " primary="), "the restarted old master's hook named a primary: %q", line)
		}
	}
}

// A master restarted while its standby is gone for good (as a new pair's
// first master before its standby exists): clients are refused until the
// operator confirms it by hand; that is logged, and writes work
// (asynchronously: the standby is lost).
func TestOperatorConfirmsUnconfirmedMaster(t *testing.T) {
	c := newPair(t, nil)
	master, standby := c.Master, c.Standby
	standby.Stop(t, "immediate")
	mark := master.LogMark()
	master.Stop(t, "fast")
	master.Start(t)
	master.WaitForLog(t, mark, transitionLine(core.MasterUnconfirmed, core.PartnerLost), failoverTimeout)
	err := master.TryExec(context.Background(), "CREATE TABLE t (id int)")
	require.ErrorContains(t, err, "has not confirmed that its partner did not replace it")

	confirm := filepath.Join(master.DataDir, core.ConfirmFile)
	require.NoError(t, os.WriteFile(confirm, nil, 0o600))
	master.WaitForLog(t, mark, transitionLine(core.MasterUnconfirmed, core.Confirmed), failoverTimeout)
	master.WaitForLog(t, mark, regexpOf("confirmed by the operator ("+confirm+")"), failoverTimeout)
	_, err = os.Stat(confirm)
	require.True(t, os.IsNotExist(err), "the confirmation file is consumed")
	master.WaitForLog(t, mark, transitionLine(core.MasterSwitching, core.ActionDone), failoverTimeout)
	master.Exec(t, "CREATE TABLE t (id int)")
	master.Exec(t, "INSERT INTO t VALUES (1)")
}

// writers try writes on the old master in every way a client can, on fresh
// connections, and count what the server did with them.
type writers struct {
	mu                 sync.Mutex
	attempts, written  int
	refused            int // connection refused by the fence, either way
	refusedUnconfirmed int
	rejectedCommits    int // let in, but the commit was refused
	ctx                context.Context
	cancel             context.CancelFunc
	done               sync.WaitGroup
	writtenBy          []string
}

func startWriters(t *testing.T, n *cluster.Node) *writers {
	w := &writers{}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	for _, extra := range [][]string{
		{"options='-c synchronous_commit=local'"},
		{"application_name=pg_keeper", "options='-c synchronous_commit=local'"},
		{"replication=database", "options='-c synchronous_commit=local'"},
	} {
		conninfo := n.Conninfo(extra...)
		w.done.Add(1)
		go func() {
			defer w.done.Done()
			for w.ctx.Err() == nil {
				w.try(conninfo)
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	t.Cleanup(w.stop)
	return w
}

func (w *writers) stop() { w.cancel(); w.done.Wait() }

func (w *writers) try(conninfo string) {
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, conninfo)
	w.mu.Lock()
	w.attempts++
	if err != nil && strings.Contains(err.Error(), "pg_keeper:") {
		w.refused++
		if strings.Contains(err.Error(), "has not confirmed") {
			w.refusedUnconfirmed++
		}
	}
	w.mu.Unlock()
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "INSERT INTO acked (id) VALUES (-1)").ReadAll()
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err == nil:
		w.written++
		w.writtenBy = append(w.writtenBy, conninfo)
	case strings.Contains(err.Error(), "writes are refused"):
		w.rejectedCommits++
	}
}

func (w *writers) requireNoWrites(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	require.Zero(t, w.written, "the old master accepted writes from %v", w.writtenBy)
}
