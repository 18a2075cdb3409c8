package test

import (
	"fmt"
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
		name  string
		extra map[string]string
		death bool // the host vanishes; else only the server is killed
	}{
		{"server crash (kill -9), keep_master", nil, false},
		{"host death, on_partner_timeout = failover", map[string]string{"pg_keeper.on_partner_timeout": "failover"}, true},
		{"host death, fence_command", map[string]string{"pg_keeper.fence_command": "'echo off'"}, true},
	} {
		var took []time.Duration
		lost := 0
		for i := 0; i < b.N; i++ {
			settings := withSilentReplication(v.extra)
			for k, s := range benchSettings {
				settings[k] = s
			}
			c := startPair(b, cluster.Options{Netns: true}, settings)
			l := startPacedLoad(b, c.Master, benchPause)
			l.waitAcked(b, 100, 30*time.Second, "load")
			start := time.Now()
			if v.death {
				c.Master.Vanish(b)
			}
			c.Master.Kill9(b)
			acked := l.ackedIDs()
			l.stop()
			took = append(took, untilWrite(b, c.Standby, start))
			lost += countMissing(b, c.Standby, acked)
		}
		printRow(v.name+" -> first write", took,
			fmt.Sprintf("%d x %s; %d acknowledged commits lost", benchCount, benchInterval, lost))
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
