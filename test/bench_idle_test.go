package test

// What the keeper costs a pair at rest and under a steady write load: the
// CPU of each server as a whole (the postmaster, every process it started,
// live or reaped: the keeper, the sessions the partner's heartbeats open,
// the walsender and WAL receiver), beside a pair without the keeper.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// idleWindow is how long each figure is measured over.
var idleWindow = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("PGK_BENCH_WINDOW")); err == nil && d > 0 {
		return d
	}
	return 30 * time.Second
}()

// BenchmarkServerCPU: whole-server CPU of each node, idle and under a paced
// insert load, without the keeper and with it at 5 s, 1 s and 100 ms.
func BenchmarkServerCPU(b *testing.B) {
	for i := 0; i < b.N; i++ {
		for _, load := range []bool{false, true} {
			for _, interval := range []string{"", "5s", "1s", "100ms"} {
				m, s := serverCPU(b, interval, load)
				what := "no keeper"
				if interval != "" {
					what = "keepalives_time " + interval
				}
				state := "idle"
				if load {
					state = "paced load"
				}
				fmt.Printf("%-48s master %.2f %%  standby %.2f %% of a core (%s)\n",
					"server CPU, "+state+", "+what, m, s, idleWindow)
			}
		}
	}
}

// serverCPU measures one pair, after it has settled: interval "" is a pair
// without the keeper.
func serverCPU(b *testing.B, interval string, load bool) (master, standby float64) {
	var c *cluster.Cluster
	if interval == "" {
		c = cluster.New(b, cluster.Options{Sync: true, Settings: map[string]string{
			"wal_sender_timeout": fastSettings["wal_sender_timeout"], "wal_receiver_timeout": fastSettings["wal_receiver_timeout"]}})
	} else {
		c = newPair(b, map[string]string{"pg_keeper.keepalives_time": "'" + interval + "'", "pg_keeper.keepalives_count": "3"})
	}
	defer c.Master.Stop(b, "fast")
	defer c.Standby.Stop(b, "fast")
	if load {
		l := startPacedLoad(b, c.Master, 10*time.Millisecond)
		defer l.stop()
	}
	time.Sleep(3 * time.Second)
	m0, s0 := serverTicks(b, c.Master), serverTicks(b, c.Standby)
	time.Sleep(idleWindow)
	m1, s1 := serverTicks(b, c.Master), serverTicks(b, c.Standby)
	pct := func(d int) float64 { return float64(d) / 100 / idleWindow.Seconds() * 100 } // USER_HZ 100
	return pct(m1 - m0), pct(s1 - s0)
}

// serverTicks is the CPU (user and system, in USER_HZ ticks) of n's
// postmaster, of its children and of the children it has reaped.
func serverTicks(b *testing.B, n *cluster.Node) int {
	pm := n.PostmasterPID()
	if pm == 0 {
		b.Fatalf("%s: no postmaster", n.Name)
	}
	total := 0
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
		ppid, _ := strconv.Atoi(f[1])
		if pid != pm && ppid != pm {
			continue
		}
		for _, k := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
			v, _ := strconv.Atoi(f[k])
			total += v
		}
	}
	return total
}
