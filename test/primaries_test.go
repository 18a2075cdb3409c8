package test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// primaries polls both nodes of a pair for as long as a test runs a fault:
// each one in turn is asked for a commit (a fresh session each time, a few
// seconds at most), and every commit a node acknowledges is noted with when.
// "Never two primaries that acknowledge a commit" is then: once the second
// node has acknowledged one, the first never does again.
type primaries struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
	mu     sync.Mutex
	acks   map[string][]time.Time
}

// watchPrimaries starts polling nodes, the master first.
func watchPrimaries(t *testing.T, nodes ...*cluster.Node) *primaries {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &primaries{cancel: cancel, acks: map[string][]time.Time{}}
	nodes[0].Exec(t, ackedTable) // the master's; the standby has it by (synchronous) replication
	for _, n := range nodes {
		p.done.Add(1)
		go p.poll(ctx, n)
	}
	t.Cleanup(p.stop)
	return p
}

func (p *primaries) poll(ctx context.Context, n *cluster.Node) {
	defer p.done.Done()
	for ctx.Err() == nil {
		c, cancel := context.WithTimeout(ctx, 3*time.Second)
		conn, err := pgconn.Connect(c, n.Conninfo())
		if err == nil {
			_, err = conn.Exec(c, "INSERT INTO acked (id) VALUES (-1000000 - floor(random() * 1e9)::bigint)").ReadAll()
			if err == nil {
				p.mu.Lock()
				p.acks[n.Name] = append(p.acks[n.Name], time.Now())
				p.mu.Unlock()
			}
			conn.Close(context.Background())
		}
		cancel()
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *primaries) stop() { p.cancel(); p.done.Wait() }

// requireOne stops the polling and checks that the two nodes' acknowledged
// commits never overlap: all of one's come before all of the other's.
func (p *primaries) requireOne(t *testing.T, first, second *cluster.Node) {
	t.Helper()
	p.stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	a, b := p.acks[first.Name], p.acks[second.Name]
	if len(a) == 0 || len(b) == 0 {
		return
	}
	require.True(t, a[len(a)-1].Before(b[0]), "%s acknowledged a commit at %s, after %s had acknowledged one at %s: two primaries",
		first.Name, a[len(a)-1].Format(time.RFC3339Nano), second.Name, b[0].Format(time.RFC3339Nano))
}

// requireAcked waits until n, the new master, has acknowledged a commit
// while polled: a fault test whose new master takes none proves nothing.
func (p *primaries) requireAcked(t *testing.T, n *cluster.Node) {
	t.Helper()
	cluster.Eventually(t, failoverTimeout, 50*time.Millisecond, func() bool { return p.acked(n) > 0 },
		"the new master acknowledged nothing while polled")
}

// acked is how many commits n acknowledged while polled.
func (p *primaries) acked(n *cluster.Node) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acks[n.Name])
}
