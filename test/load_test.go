package test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// load inserts rows into table acked on one node, one autocommit INSERT at
// a time, and remembers every id whose commit was acknowledged. It is the
// witness for "no acknowledged commit is lost".
type load struct {
	node   *cluster.Node
	pause  time.Duration // between two commits; 0: as fast as it goes
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	acked []int64
	at    []time.Time // when each acked commit was acknowledged
	errs  int
}

const ackedTable = "CREATE TABLE IF NOT EXISTS acked (id bigint PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())"

func startLoad(t testing.TB, n *cluster.Node) *load {
	t.Helper()
	return startPacedLoad(t, n, 0)
}

// startPacedLoad is startLoad with a pause after each commit: a steady
// load rather than one that saturates a small machine once replication is
// asynchronous.
func startPacedLoad(t testing.TB, n *cluster.Node, pause time.Duration) *load {
	t.Helper()
	n.Exec(t, ackedTable)
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{node: n, pause: pause, cancel: cancel, done: make(chan struct{})}
	go l.run(ctx)
	t.Cleanup(l.stop)
	return l
}

func (l *load) run(ctx context.Context) {
	defer close(l.done)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for id := int64(1); ctx.Err() == nil; id++ {
		if conn == nil {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			c, err := pgx.Connect(cctx, l.node.Conninfo())
			cancel()
			if err != nil {
				l.failed()
				time.Sleep(100 * time.Millisecond)
				continue
			}
			conn = c
		}
		// No timeout on the commit itself: a commit waiting for a
		// synchronous standby is exactly what the tests watch.
		if _, err := conn.Exec(ctx, "INSERT INTO acked (id) VALUES ($1)", id); err != nil {
			l.failed()
			conn.Close(context.Background())
			conn = nil
			continue
		}
		l.mu.Lock()
		l.acked = append(l.acked, id)
		l.at = append(l.at, time.Now())
		l.mu.Unlock()
		time.Sleep(l.pause)
	}
}

func (l *load) failed() {
	l.mu.Lock()
	l.errs++
	l.mu.Unlock()
}

func (l *load) stop() {
	l.cancel()
	<-l.done
}

// ackedIDs returns the ids acknowledged so far.
func (l *load) ackedIDs() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int64(nil), l.acked...)
}

// longestGapSince is the longest wait between two acknowledgements after
// t (counting from t itself): how long commits stalled.
func (l *load) longestGapSince(t time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var gap time.Duration
	prev := t
	for _, a := range l.at {
		if a.Before(t) {
			continue
		}
		gap = max(gap, a.Sub(prev))
		prev = a
	}
	return gap
}

// waitAcked waits until at least n more commits than now were acknowledged.
func (l *load) waitAcked(t testing.TB, n int, timeout time.Duration, msg string) {
	t.Helper()
	base := len(l.ackedIDs())
	cluster.Eventually(t, timeout, 20*time.Millisecond, func() bool {
		return len(l.ackedIDs()) >= base+n
	}, msg)
}

// requireAllPresent checks that every id acknowledged by the load is on n.
func requireAllPresent(t testing.TB, n *cluster.Node, ids []int64) {
	t.Helper()
	require.NotEmpty(t, ids, "the load acknowledged no commit")
	ctx, cancel := ctxTimeout(10 * time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, n.Conninfo())
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var missing []int64
	err = conn.QueryRow(ctx,
		"SELECT coalesce(array_agg(x), '{}') FROM unnest($1::bigint[]) x WHERE x NOT IN (SELECT id FROM acked)",
		ids).Scan(&missing)
	require.NoError(t, err)
	require.Empty(t, missing, "acknowledged commits missing on %s (of %d acknowledged)", n.Name, len(ids))
}
