package test

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// Failover slots (PostgreSQL 17+) as docs/operations.md sets them up: a
// CDC client's logical slot created with failover = true on the master,
// synchronized to the standby by its slot sync worker (sync_replication_slots,
// hot_standby_feedback, a physical slot named by primary_slot_name, a
// dbname in primary_conninfo), and the same settings on both nodes, since
// either may be the standby.
var slotSettings = map[string]string{
	"wal_level":              "logical",
	"hot_standby_feedback":   "on",
	"sync_replication_slots": "on",
	"wal_log_hints":          "on",
	"pg_keeper.auto_rejoin":  "on",
}

// startSlotPair starts a pair with slotSettings, the physical slot each
// node streams through (on both: either may be the primary), and the CDC
// client's slot "cdc" on the master, synced to the standby; it skips the
// test before PostgreSQL 17.
func startSlotPair(t *testing.T) *cluster.Cluster {
	t.Helper()
	// Before the pair: an older server refuses to start with these settings.
	m, err := cluster.Major()
	require.NoError(t, err)
	if m < 17 {
		t.Skipf("PostgreSQL %d has no failover slots (17+)", m)
	}
	c := newPair(t, slotSettings)
	// The slot sync worker needs a dbname in primary_conninfo, which
	// neither the harness's (as conf/ has it) nor pg_basebackup -R's has.
	for _, n := range c.Nodes() {
		n.Exec(t, "ALTER SYSTEM SET primary_conninfo = "+cluster.ConfString(c.Other(n).KeeperConninfo()+" application_name="+n.AppName))
	}
	for _, n := range c.Nodes() {
		n.Exec(t, "SELECT pg_create_physical_replication_slot('pair')")
		n.SetConf("primary_slot_name", "'pair'")
		n.Reload(t)
	}
	c.Master.Exec(t, "CREATE TABLE cdc_t (id int PRIMARY KEY)")
	c.Master.Exec(t, "SELECT pg_create_logical_replication_slot('cdc', 'test_decoding', false, false, true)")
	waitSlotKept(t, c.Master, c.Standby)
	return c
}

// waitSlotKept waits until standby keeps its copy of "cdc" (until then the
// slot sync worker holds it as temporary, for as long as the primary's
// slot needs older catalog rows than the standby has), as a CDC client
// that consumes does: each round logs the running transactions
// (pg_log_standby_snapshot) and consumes, which moves the slot's
// catalog_xmin on.
func waitSlotKept(t *testing.T, primary, standby *cluster.Node) {
	t.Helper()
	waitFor(t, standby.Name+" to keep a synced copy of slot cdc", func() bool {
		if err := primary.TryExec(bg(), "SELECT pg_log_standby_snapshot()"); err != nil {
			return false
		}
		if err := primary.TryExec(bg(), "SELECT count(*) FROM pg_logical_slot_get_changes('cdc', NULL, NULL)"); err != nil {
			return false
		}
		s, err := standby.TryQueryString(bg(), "SELECT synced AND NOT temporary FROM pg_replication_slots WHERE slot_name = 'cdc'")
		return err == nil && s == "t"
	})
}

// cdcInsert commits rows from..to on n, one transaction each.
func cdcInsert(t *testing.T, n *cluster.Node, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		n.Exec(t, fmt.Sprintf("INSERT INTO cdc_t VALUES (%d)", i))
	}
}

var insertedID = regexp.MustCompile(`^table public\.cdc_t: INSERT: id\[integer\]:(\d+)$`)

// cdcConsume is the CDC client: it takes every change of slot "cdc" on n
// and returns the ids inserted, in order.
func cdcConsume(t *testing.T, n *cluster.Node) []int {
	t.Helper()
	var ids []int
	for _, r := range rows(t, n, "SELECT data FROM pg_logical_slot_get_changes('cdc', NULL, NULL)") {
		if m := insertedID.FindStringSubmatch(r["data"]); m != nil {
			id, _ := strconv.Atoi(m[1])
			ids = append(ids, id)
		}
	}
	return ids
}

func span(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// waitSlotSynced waits until standby's copy of "cdc" is synced, kept
// (not temporary) and as far as primary's.
func waitSlotSynced(t *testing.T, primary, standby *cluster.Node) {
	t.Helper()
	want := primary.QueryString(t, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'cdc'")
	waitFor(t, standby.Name+"'s copy of slot cdc to be synced up to "+want, func() bool {
		s, err := standby.TryQueryString(bg(), "SELECT synced AND NOT temporary AND failover AND confirmed_flush_lsn >= '"+want+
			"' FROM pg_replication_slots WHERE slot_name = 'cdc'")
		return err == nil && s == "t"
	})
}

// A failover keeps the CDC client's slot: on the new master it is there,
// and gives exactly the changes the client had not consumed on the old
// one. The old master, rejoined as a standby, syncs the slot from the new
// master in its turn.
func TestFailoverSlotsFailover(t *testing.T) {
	c := startSlotPair(t)
	oldMaster, newMaster := c.Master, c.Standby
	cdcInsert(t, oldMaster, 1, 10)
	require.Equal(t, span(1, 10), cdcConsume(t, oldMaster))
	cdcInsert(t, oldMaster, 11, 20)
	waitSlotSynced(t, oldMaster, newMaster)

	oldMaster.Kill9(t)
	waitPromoted(t, newMaster)
	require.Equal(t, "t", newMaster.QueryString(t, "SELECT failover FROM pg_replication_slots WHERE slot_name = 'cdc'"))
	require.Equal(t, span(11, 20), cdcConsume(t, newMaster), "the changes the client had not consumed, and no others")

	_ = oldMaster.TryStart() // it stops to rejoin: pg_ctl may not see it ready
	oldMaster.WaitForTitle(t, title(core.StandbyConnected), failoverTimeout)
	waitSlotKept(t, newMaster, oldMaster)
	cdcInsert(t, newMaster, 21, 25)
	waitSlotSynced(t, newMaster, oldMaster)
	require.Equal(t, span(21, 25), cdcConsume(t, newMaster))
}

// Switchovers keep it too, both ways: each new master has the slot as far
// as the client had consumed it on the one before. The second needs the
// keeper: the old master restarts as a standby with its own "cdc", which
// keeps the slot sync worker from copying the new master's until the
// keeper drops it (drop-stale-slots).
func TestFailoverSlotsSwitchover(t *testing.T) {
	c := startSlotPair(t)
	createExtension(t, c)
	a, b := c.Master, c.Standby
	cdcInsert(t, a, 1, 10)
	require.Equal(t, span(1, 10), cdcConsume(t, a))
	next := 11
	for round := 0; round < 2; round++ {
		// From round 2, b is the old master: its keeper dropped its own
		// "cdc", and the slot sync worker makes a copy of a's.
		waitSlotKept(t, a, b)
		cdcInsert(t, a, next, next+9)
		waitSlotSynced(t, a, b)
		switchover(t, a)
		b.WaitForTitle(t, title(core.MasterConnected), failoverTimeout)
		a.WaitForTitle(t, title(core.StandbyConnected), failoverTimeout)
		require.Equal(t, span(next, next+9), cdcConsume(t, b), "round %d: the changes the client had not consumed, and no others", round+1)
		next += 10
		a, b = b, a
	}
}

// An old master that comes back as a standby drops its own "cdc" however
// its keeper first reaches the master: here its heartbeats are refused at
// first (a heartbeat-only failure, replication streams), so it is connected
// only from "heartbeat lost", not from its start state; and a client is
// decoding from the slot then. Until the keeper drops the slot, the slot
// sync worker refuses to copy the new master's.
func TestFailoverSlotsStaleAfterHeartbeatLost(t *testing.T) {
	c := startSlotPair(t)
	oldMaster, newMaster := c.Master, c.Standby
	oldMaster.Exec(t, "CREATE ROLE keeper LOGIN SUPERUSER")
	for _, n := range c.Nodes() {
		n.SetConf("pg_keeper.partner_conninfo", "'host=127.0.0.1 port="+itoa(c.Other(n).Port)+" user=keeper dbname=postgres'")
		n.Reload(t)
	}
	oldMaster.WaitForTitle(t, title(core.MasterConnected), startTimeout)
	newMaster.WaitForTitle(t, title(core.StandbyConnected), startTimeout)
	cdcInsert(t, oldMaster, 1, 10)
	require.Equal(t, span(1, 10), cdcConsume(t, oldMaster))
	cdcInsert(t, oldMaster, 11, 20)
	waitSlotSynced(t, oldMaster, newMaster)

	// A clean stop: the standby has all WAL, promotes, and the old master
	// can follow it without a rewind, keeping its own "cdc".
	oldMaster.Stop(t, "fast")
	waitPromoted(t, newMaster)
	require.Equal(t, span(11, 20), cdcConsume(t, newMaster))
	newMaster.SetHBA(t, "host all keeper 127.0.0.1/32 reject")
	oldMaster.AddStandbySignal(t)
	mark := oldMaster.LogMark()
	oldMaster.Start(t)
	oldMaster.WaitForLog(t, mark, transitionLine(core.StandbyReady, core.HeartbeatLost), failoverTimeout)
	require.Equal(t, "f", oldMaster.QueryString(t, "SELECT synced FROM pg_replication_slots WHERE slot_name = 'cdc'"),
		"the old master still has its own cdc")
	// A client decodes from it here: the keeper leaves it, says so, and
	// drops it at a later look once the client has gone.
	stopClient := oldMaster.StartRecvLogical(t, "cdc")
	newMaster.SetHBA(t, "")
	oldMaster.WaitForLog(t, mark, transitionLine(core.StandbyHeartbeatLost, core.PartnerUp), failoverTimeout)
	oldMaster.WaitForLog(t, mark, regexp.MustCompile(`WARNING:  pg_keeper: drop-stale-slots failed: the failover slot\(s\) "cdc" \(PID \d+\), left from when this server was the primary, are in use here`), failoverTimeout)
	stopClient()
	oldMaster.WaitForLog(t, mark, logLine(`drop-stale-slots finished: dropped the failover slot(s) "cdc"`), time.Minute)

	waitSlotKept(t, newMaster, oldMaster)
	cdcInsert(t, newMaster, 21, 25)
	waitSlotSynced(t, newMaster, oldMaster)
	require.Equal(t, span(21, 25), cdcConsume(t, newMaster))
}
