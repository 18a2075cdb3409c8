package test

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// Three hosts in network namespaces: the pair and a witness, an ordinary
// PostgreSQL server without pg_keeper (docs/witness.md). Replication
// timeouts are at their defaults (60 s), so that only freshness and the
// witness can tell a dead host.

// lease is the pair's row on the witness.
type lease struct {
	found  bool
	term   int64
	holder string
	sync   bool
}

func readLease(t testing.TB, c *cluster.Cluster) lease {
	t.Helper()
	ctx, cancel := ctxTimeout(5 * time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.Witness.Conninfo("dbname="+cluster.WitnessDB))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var l lease
	err = conn.QueryRow(ctx, "SELECT term, holder, sync FROM pg_keeper_lease").Scan(&l.term, &l.holder, &l.sync)
	if err == nil {
		l.found = true
	} else if !errors.Is(err, pgx.ErrNoRows) && !isUndefinedTable(err) {
		require.NoError(t, err)
	}
	return l
}

// regexpTitle matches the title of s with suffix added inside its
// parentheses (", no lease").
func regexpTitle(s core.State, suffix string) *regexp.Regexp {
	return regexp.MustCompile(`^postgres: bgworker: pg_keeper ` +
		regexp.QuoteMeta(strings.TrimSuffix(s.Title(), ")")+suffix+")") + `$`)
}

func isUndefinedTable(err error) bool {
	var pgErr interface{ SQLState() string }
	return errors.As(err, &pgErr) && pgErr.SQLState() == "42P01"
}

// holderOf names n as its keeper names itself on the witness.
func holderOf(t testing.TB, n *cluster.Node) string {
	h, err := os.Hostname()
	require.NoError(t, err)
	return h + ":" + strconv.Itoa(n.Port)
}

func waitLease(t testing.TB, c *cluster.Cluster, msg string, ok func(lease) bool) lease {
	t.Helper()
	var l lease
	cluster.Eventually(t, failoverTimeout, 50*time.Millisecond, func() bool { l = readLease(t, c); return ok(l) }, msg)
	return l
}

// newWitnessPair is a pair in network namespaces with a witness set on
// both nodes, once the master holds a synchronous lease there.
func newWitnessPair(t testing.TB, extra map[string]string) *cluster.Cluster {
	t.Helper()
	c := startPair(t, cluster.Options{Netns: true, Witness: true}, withSilentReplication(extra))
	setWitness(t, c)
	return c
}

// setWitness sets the witness on both nodes and waits until the master
// holds a synchronous lease there.
func setWitness(t testing.TB, c *cluster.Cluster) {
	t.Helper()
	for _, n := range c.Nodes() {
		n.SetConf("pg_keeper.witness_conninfo", "'"+c.WitnessConninfo()+"'")
		n.Reload(t)
	}
	master := holderOf(t, c.Master)
	waitLease(t, c, "the master never held a synchronous lease", func(l lease) bool {
		return l.found && l.holder == master && l.sync
	})
	time.Sleep(time.Second) // the standby has read it
}

// The master's host dies, under keep_master: the standby takes the next
// term on the witness (the master was synchronous there) and promotes in
// about keepalives_count × keepalives_time, with every acknowledged
// commit. The old master, back, takes no write and fences itself.
func TestWitnessMasterHostDeath(t *testing.T) {
	c := newWitnessPair(t, nil)
	master, standby := c.Master, c.Standby
	before := readLease(t, c)
	p := watchPrimaries(t, master, standby)
	l := startLoad(t, master)
	l.waitAcked(t, 50, 30*time.Second, "load on the master")

	mark := standby.LogMark()
	start := vanish(t, master)
	standby.WaitForLog(t, mark, transitionLine(core.StandbyClaiming, core.ActionDone), hostDeathBound)
	standby.WaitForLog(t, mark, transitionLine(core.StandbyPromoting, core.ActionDone), hostDeathBound)
	t.Logf("promoted %v after the master's host vanished", time.Since(start).Round(time.Millisecond))
	l.stop()
	requireAllPresent(t, standby, l.ackedIDs())
	after := readLease(t, c)
	require.Equal(t, before.term+1, after.term)
	require.Equal(t, holderOf(t, standby), after.holder)
	requireOldMasterFenced(t, master)
	p.requireAcked(t, standby)
	p.requireOne(t, master, standby)
}

// The standby's host dies: the master records on the witness that it
// leaves synchronous replication, then goes asynchronous, and commits go
// on, in about keepalives_count × keepalives_time.
func TestWitnessStandbyHostDeath(t *testing.T) {
	c := newWitnessPair(t, nil)
	loseStandbyHostUnderLoad(t, c, core.MasterLeavingSync)
	got := readLease(t, c)
	require.False(t, got.sync, "the witness must show the master asynchronous")
	require.Equal(t, holderOf(t, c.Master), got.holder)
}

// The master is cut off from both the standby and the witness, under
// load: it cannot record that it leaves synchronous replication, so its
// commits wait, and once its lease is over it refuses writes even with
// synchronous_commit = local; the standby takes the term and promotes.
// Never two primaries that acknowledge a commit, none lost. Healed, the
// old master finds the new one and fences itself.
func TestWitnessMasterCutFromBoth(t *testing.T) {
	c := newWitnessPair(t, nil)
	master, standby := c.Master, c.Standby
	p := watchPrimaries(t, master, standby)
	l := startLoad(t, master)
	l.waitAcked(t, 50, 30*time.Second, "load on the master")

	mark, smark := master.LogMark(), standby.LogMark()
	c.Cut(t, master, standby)
	c.Cut(t, master, c.Witness)
	standby.WaitForLog(t, smark, transitionLine(core.StandbyPromoting, core.ActionDone), hostDeathBound)
	master.WaitForTitle(t, regexpTitle(core.MasterKeepingSync, ", no lease"), failoverTimeout)
	acked := l.ackedIDs()
	time.Sleep(time.Second)
	require.Equal(t, len(acked), len(l.ackedIDs()), "the cut-off master acknowledged commits")
	ctx, cancel := ctxTimeout(5 * time.Second)
	err := master.TryExec(ctx, "SET synchronous_commit = local; INSERT INTO acked (id) VALUES (-7)")
	cancel()
	require.ErrorContains(t, err, "its lease is over: writes are refused")
	l.stop()
	requireAllPresent(t, standby, acked)

	c.HealAll(t)
	master.WaitForLog(t, mark, transitionLine(core.MasterKeepingSync, core.Superseded), failoverTimeout)
	cluster.Eventually(t, failoverTimeout, 50*time.Millisecond, func() bool { return master.PostmasterPID() == 0 },
		"the old master did not shut down")
	require.False(t, standby.InRecovery(t))
	p.requireAcked(t, standby)
	p.requireOne(t, master, standby)
}

// The standby is cut off from both: the master reaches the witness,
// records that it leaves synchronous replication and goes on taking
// writes; the standby, which reaches nothing, does not promote. Healed,
// synchronous replication comes back.
func TestWitnessStandbyCutFromBoth(t *testing.T) {
	c := newWitnessPair(t, nil)
	master, standby := c.Master, c.Standby
	p := watchPrimaries(t, master, standby)
	mark, smark := master.LogMark(), standby.LogMark()
	c.Cut(t, standby, master)
	c.Cut(t, standby, c.Witness)
	master.WaitForLog(t, mark, transitionLine(core.MasterLeavingSync, core.ActionDone), hostDeathBound)
	master.WaitForTitle(t, title(core.MasterAsync), failoverTimeout)
	standby.WaitForTitle(t, title(core.StandbyNotPromoting), failoverTimeout)
	require.Regexp(t, logLine("the witness (pg_keeper.witness_conninfo) did not answer"), standby.LogSince(smark))
	for i := 0; i < 6; i++ {
		master.Exec(t, "INSERT INTO acked (id) VALUES ($1)", i+1)
		require.True(t, standby.InRecovery(t), "the standby promoted while cut off from the witness")
		time.Sleep(500 * time.Millisecond)
	}
	c.HealAll(t)
	master.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
	standby.WaitForTitle(t, title(core.StandbyConnected), failoverTimeout)
	waitLease(t, c, "the master's lease is not synchronous again", func(l lease) bool { return l.found && l.sync })
	require.Zero(t, p.acked(standby), "the standby acknowledged a commit")
	p.requireOne(t, master, standby)
}

// The witness is cut off from the master, then from the standby: both
// say so, and nothing else happens: synchronous replication stays, the
// master takes writes, the standby does not promote.
func TestWitnessCutFromOneThenTheOther(t *testing.T) {
	c := newWitnessPair(t, nil)
	master, standby := c.Master, c.Standby
	p := watchPrimaries(t, master, standby)
	id := 0
	steady := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			id++
			master.Exec(t, "INSERT INTO acked (id) VALUES ($1)", id)
			require.Equal(t, "standby", master.QueryString(t, "SHOW synchronous_standby_names"))
			require.True(t, standby.InRecovery(t))
			time.Sleep(300 * time.Millisecond)
		}
	}
	for _, n := range []*cluster.Node{master, standby} {
		mark := n.LogMark()
		c.Cut(t, n, c.Witness)
		n.WaitForLog(t, mark, logLine("the witness (pg_keeper.witness_conninfo) did not answer"), failoverTimeout)
		steady(6)
		master.WaitForTitle(t, title(core.MasterConnected), time.Second)
		standby.WaitForTitle(t, title(core.StandbyConnected), time.Second)
		c.HealAll(t)
		n.WaitForLog(t, mark, logLine("the witness answers again"), failoverTimeout)
	}
	require.Zero(t, p.acked(standby), "the standby acknowledged a commit")
	p.requireOne(t, master, standby)
}

// The witness is down, then the master's server crashes: a failure that
// proves the master down is acted on as without a witness. The new master
// takes the next term and, once the witness is back, holds it there.
func TestWitnessDownMasterCrash(t *testing.T) {
	c := newWitnessPair(t, nil)
	master, standby := c.Master, c.Standby
	before := readLease(t, c)
	c.Witness.Stop(t, "fast")
	mark := standby.LogMark()
	standby.WaitForLog(t, mark, logLine("the witness (pg_keeper.witness_conninfo) did not answer"), failoverTimeout)
	master.Kill9(t)
	waitPromoted(t, standby)
	c.Witness.Start(t)
	waitLease(t, c, "the new master did not take the next term on the witness", func(l lease) bool {
		return l.found && l.term == before.term+1 && l.holder == holderOf(t, standby)
	})
}

// The witness is rebuilt empty mid-run: the master's next renewal makes
// the row again with its own term, nothing else happens; the master's host
// then dies, and the standby takes the next term on the new row.
func TestWitnessRebuiltEmpty(t *testing.T) {
	c := newWitnessPair(t, nil)
	master, standby := c.Master, c.Standby
	before := readLease(t, c)
	p := watchPrimaries(t, master, standby)
	c.RebuildWitness(t)
	waitLease(t, c, "the master did not make its row again", func(l lease) bool {
		return l.found && l.term == before.term && l.holder == holderOf(t, master) && l.sync
	})
	master.WaitForTitle(t, title(core.MasterConnected), time.Second)
	standby.WaitForTitle(t, title(core.StandbyConnected), time.Second)
	time.Sleep(time.Second) // the standby has read the new row

	vanish(t, master)
	waitPromoted(t, standby)
	require.Equal(t, before.term+1, readLease(t, c).term)
	p.requireOne(t, master, standby)
}
