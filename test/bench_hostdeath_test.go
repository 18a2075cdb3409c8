package test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// BenchmarkHostDeath: the master's host vanishes under a steady insert load
// (every packet dropped, then SIGKILL: no FIN, no RST), replication timeouts
// at 60 s; time until the first write succeeds on the new master, and the
// acknowledged commits missing there. Two ways to a promotion: the
// failover policy, and a fence command under keep_master (one that finds the
// host off already, as an IPMI power-off would). Beside them, the crash of
// the master's server on a live host (kill -9: replication ends at once).
func BenchmarkHostDeath(b *testing.B) {
	for _, v := range []struct {
		name    string
		extra   map[string]string
		death   bool // the host vanishes; else only the server is killed
		witness bool
	}{
		{"server crash (kill -9), keep_master", nil, false, false},
		{"host death, on_partner_timeout = failover", map[string]string{"pg_keeper.on_partner_timeout": "failover"}, true, false},
		{"host death, fence_command", map[string]string{"pg_keeper.fence_command": "'echo off'"}, true, false},
		{"host death, witness", nil, true, true},
	} {
		var took, promoted []time.Duration
		lost := 0
		for i := 0; i < b.N; i++ {
			settings := withSilentReplication(v.extra)
			for k, s := range benchSettings {
				settings[k] = s
			}
			c := startPair(b, cluster.Options{Netns: true, Witness: v.witness}, settings)
			if v.witness {
				setWitness(b, c)
			}
			c.Master.Exec(b, "CREATE EXTENSION pg_keeper")
			l := startPacedLoad(b, c.Master, benchPause)
			l.waitAcked(b, 100, 30*time.Second, "load")
			start := time.Now()
			if v.death {
				start = vanish(b, c.Master)
			} else {
				c.Master.Kill9(b)
			}
			acked := l.ackedIDs()
			l.stop()
			took = append(took, untilWrite(b, c.Standby, start))
			lost += countMissing(b, c.Standby, acked)
			promoted = append(promoted, eventAt(b, c.Standby, "action = 'promote' AND ok").Sub(start))
		}
		printRow(v.name+" -> first write", took,
			fmt.Sprintf("%d x %s; %d acknowledged commits lost", benchCount, benchInterval, lost))
		printRow("  of which -> pg_promote() done", promoted, "")
	}
}

// BenchmarkIdleKeepalive: what keeping replication fresh costs an idle
// master: the keepalive records' WAL and the WAL flushes, per second.
func BenchmarkIdleKeepalive(b *testing.B) {
	for i := 0; i < b.N; i++ {
		c := newPair(b, benchSettings)
		const idle = 10 * time.Second
		lsn0 := c.Master.QueryString(b, "SELECT pg_current_wal_lsn()")
		syncs0 := c.Master.QueryString(b, "SELECT wal_sync FROM pg_stat_wal")
		time.Sleep(idle)
		bytes := c.Master.QueryString(b, "SELECT pg_current_wal_lsn() - '"+lsn0+"'::pg_lsn")
		syncs := c.Master.QueryString(b, "SELECT wal_sync - "+syncs0+" FROM pg_stat_wal")
		fmt.Printf("%-48s %s bytes of WAL, %s WAL syncs in %s (interval %s)\n", "idle master, keepalive records",
			bytes, syncs, idle, benchInterval)
	}
}

// BenchmarkWitnessCost: what the witness pays for an idle pair, per
// interval: statements, WAL and the CPU of the keepers' sessions there.
func BenchmarkWitnessCost(b *testing.B) {
	for i := 0; i < b.N; i++ {
		c := startPair(b, cluster.Options{Netns: true, Witness: true}, benchSettings)
		setWitness(b, c)
		w := c.Witness
		pids := strings.Fields(w.QueryString(b, "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE datname = 'witness'"))
		ticks := func() int {
			n := 0
			for _, p := range pids {
				pid, _ := strconv.Atoi(p)
				n += cpuTicks(b, pid)
			}
			return n
		}
		stat := "SELECT xact_commit FROM pg_stat_database WHERE datname = 'witness'"
		lsn0, x0, t0 := w.QueryString(b, "SELECT pg_current_wal_lsn()"), w.QueryString(b, stat), ticks()
		const idle = 10 * time.Second
		time.Sleep(idle)
		wal := w.QueryString(b, "SELECT pg_current_wal_lsn() - '"+lsn0+"'::pg_lsn")
		x1 := w.QueryString(b, stat)
		xacts, _ := strconv.Atoi(x1)
		xacts0, _ := strconv.Atoi(x0)
		intervals := float64(idle) / float64(benchInterval)
		walBytes, _ := strconv.ParseFloat(wal, 64)
		fmt.Printf("%-48s %.1f statements, %.0f bytes of WAL per interval; sessions' CPU %.2f %% of a core (interval %s, %d sessions)\n",
			"witness, idle pair", float64(xacts-xacts0)/intervals, walBytes/intervals,
			float64(ticks()-t0)/idle.Seconds(), benchInterval, len(pids))
	}
}
