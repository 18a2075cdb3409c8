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

// benchIntervals are the keepalives_time figures BenchmarkServerCPU
// measures, "" for a pair without the keeper; PGK_BENCH_INTERVALS (a comma
// list, "none" for the bare pair) picks some.
var benchIntervals = func() []string {
	v := os.Getenv("PGK_BENCH_INTERVALS")
	if v == "" {
		return []string{"", "5s", "1s", "100ms"}
	}
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f == "none" {
			f = ""
		}
		out = append(out, f)
	}
	return out
}()

// BenchmarkServerCPU: whole-server CPU of each node, idle and under a paced
// insert load, without the keeper and with it at 5 s, 1 s and 100 ms, and
// the keeper process's own share of it. PGK_BENCH_LOAD=idle or =load
// measures one of the two.
func BenchmarkServerCPU(b *testing.B) {
	for i := 0; i < b.N; i++ {
		for _, load := range []bool{false, true} {
			if l := os.Getenv("PGK_BENCH_LOAD"); (l == "idle" && load) || (l == "load" && !load) {
				continue
			}
			for _, interval := range benchIntervals {
				f := serverCPU(b, interval, load)
				what := "no keeper"
				if interval != "" {
					what = "keepalives_time " + interval
				}
				state := "idle"
				if load {
					state = "paced load"
				}
				fmt.Printf("%-48s master %.2f %%  standby %.2f %% of a core (%s)\n",
					"server CPU, "+state+", "+what, f.master, f.standby, idleWindow)
				if interval != "" {
					fmt.Printf("%-48s master %.2f %%  standby %.2f %%\n",
						"  of which the keeper process", f.masterKeeper, f.standbyKeeper)
				}
			}
		}
	}
}

// cpuFigures are one pair's figures, in % of a core.
type cpuFigures struct{ master, standby, masterKeeper, standbyKeeper float64 }

// serverCPU measures one pair, after it has settled: interval "" is a pair
// without the keeper.
func serverCPU(b *testing.B, interval string, load bool) cpuFigures {
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
	mk0, sk0 := keeperTicks(c.Master), keeperTicks(c.Standby)
	time.Sleep(idleWindow)
	m1, s1 := serverTicks(b, c.Master), serverTicks(b, c.Standby)
	mk1, sk1 := keeperTicks(c.Master), keeperTicks(c.Standby)
	pct := func(d int) float64 { return float64(d) / 100 / idleWindow.Seconds() * 100 } // USER_HZ 100
	return cpuFigures{pct(m1 - m0), pct(s1 - s0), pct(mk1 - mk0), pct(sk1 - sk0)}
}

// keeperTicks is the CPU (user and system, in USER_HZ ticks) of n's keeper
// process, 0 if there is none.
func keeperTicks(n *cluster.Node) int {
	pids := n.ProcessPIDs("postgres: bgworker: pg_keeper")
	if len(pids) != 1 {
		return 0
	}
	_, own, _ := procTicks(pids[0])
	return own
}

// procTicks reads /proc/pid/stat: the parent, the process's own CPU (utime
// and stime) and that of its reaped children (cutime and cstime), in
// USER_HZ ticks; ppid 0 if it is gone.
func procTicks(pid int) (ppid, own, reaped int) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	n := func(k int) int { v, _ := strconv.Atoi(f[k]); return v }
	return n(1), n(11) + n(12), n(13) + n(14)
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
		ppid, own, reaped := procTicks(pid)
		if pid == pm || ppid == pm {
			total += own + reaped
		}
	}
	return total
}
