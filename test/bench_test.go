package test

// Failover benchmarks: real pairs, real kills, figures printed, nothing
// asserted about speed. Run with `make bench` (see the README); CI does not.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// The formula's inputs. A 200 ms interval (the tests') times heartbeats out
// when a load saturates both cores; 500 ms does not here.
// PGK_BENCH_INTERVAL=1s measures another interval.
var benchInterval, benchCount = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("PGK_BENCH_INTERVAL")); err == nil && d > 0 {
		return d
	}
	return 500 * time.Millisecond
}(), 3

var benchSettings = map[string]string{
	"pg_keeper.keepalives_time":  "'" + benchInterval.String() + "'",
	"pg_keeper.keepalives_count": strconv.Itoa(benchCount),
}

// benchPause paces the insert load (about 500 commits a second here).
const benchPause = time.Millisecond

// BenchmarkMasterKill: SIGKILL to the master's postmaster under a steady
// insert load; time until the first write succeeds on the new master, and
// acknowledged commits missing there.
func BenchmarkMasterKill(b *testing.B) {
	var took, decided, promoted, async []time.Duration
	lost := 0
	for i := 0; i < b.N; i++ {
		c := newPair(b, benchSettings)
		c.Master.Exec(b, "CREATE EXTENSION pg_keeper")
		l := startPacedLoad(b, c.Master, benchPause)
		l.waitAcked(b, 100, 30*time.Second, "load")
		kill := time.Now()
		c.Master.Kill9(b)
		acked := l.ackedIDs()
		l.stop()
		took = append(took, untilWrite(b, c.Standby, kill))
		lost += countMissing(b, c.Standby, acked)
		// Where the time went, from the new master's own history.
		decided = append(decided, eventAt(b, c.Standby, "to_state = 'standby:promoting'").Sub(kill))
		promoted = append(promoted, eventAt(b, c.Standby, "action = 'promote' AND ok").Sub(kill))
		async = append(async, eventAt(b, c.Standby, "action = 'switch-async' AND ok").Sub(kill))
	}
	printRow("master kill -> first write on the new master", took,
		fmt.Sprintf("predicted %s + pg_promote()", time.Duration(benchCount)*benchInterval))
	printRow("  of which: kill -> promotion decided", decided, "")
	printRow("            kill -> pg_promote() done", promoted, "")
	printRow("            kill -> async (commits stop waiting)", async, "")
	fmt.Printf("%-48s %d\n", "acknowledged commits lost", lost)
}

// BenchmarkStandbyKill: SIGKILL to the standby under load; the longest gap
// between two acknowledged commits on the master (the stall), and the time
// from the standby's restart to synchronous replication restored.
func BenchmarkStandbyKill(b *testing.B) {
	var stall, restore []time.Duration
	for i := 0; i < b.N; i++ {
		c := newPair(b, benchSettings)
		l := startPacedLoad(b, c.Master, benchPause)
		l.waitAcked(b, 100, 30*time.Second, "load")
		kill := time.Now()
		c.Standby.Kill9(b)
		c.Master.WaitForTitle(b, title(core.MasterAsync), time.Minute)
		l.waitAcked(b, 50, time.Minute, "commits did not resume")
		stall = append(stall, l.longestGapSince(kill))
		start := time.Now()
		mark := c.Master.LogMark()
		c.Standby.Start(b)
		c.Master.WaitForTitle(b, title(core.MasterConnected), time.Minute)
		restore = append(restore, time.Since(start))
		if took := time.Since(start); took > 10*time.Second {
			fmt.Printf("slow restore (%s); the master's keeper said:\n%s\n", took, cluster.KeeperLines(c.Master.LogSince(mark), 40))
		}
		l.stop()
	}
	printRow("standby kill -> commits resume on the master", stall,
		fmt.Sprintf("predicted %s", time.Duration(benchCount)*benchInterval))
	printRow("standby restart -> synchronous again", restore, "")
}

// BenchmarkIdleWorker: the worker's memory, threads and CPU on an idle,
// connected pair with the default interval of 5 s, and the libraries' size.
func BenchmarkIdleWorker(b *testing.B) {
	for i := 0; i < b.N; i++ {
		c := newPair(b, map[string]string{"pg_keeper.keepalives_time": "'5s'", "pg_keeper.keepalives_count": "4"})
		pid := workerPIDOf(b, c.Master)
		cpu0 := cpuTicks(b, pid)
		const idle = 20 * time.Second
		time.Sleep(idle)
		cpu := float64(cpuTicks(b, pid)-cpu0) / 100 / idle.Seconds() * 100 // USER_HZ is 100 on Linux
		fmt.Printf("%-48s %s\n", "worker RSS (master, idle)", procStatus(b, pid, "status", "VmRSS"))
		// RSS counts the server's and the libraries' code shared with every
		// backend; these two are what the worker costs the machine.
		fmt.Printf("%-48s %s\n", "worker PSS (its share of shared pages)", procStatus(b, pid, "smaps_rollup", "Pss"))
		fmt.Printf("%-48s %s\n", "worker private dirty memory", procStatus(b, pid, "smaps_rollup", "Private_Dirty"))
		fmt.Printf("%-48s %s\n", "worker threads", procStatus(b, pid, "status", "Threads"))
		fmt.Printf("%-48s %.2f %% of one core over %s\n", "worker CPU (keepalives_time 5s)", cpu, idle)
	}
	out, err := exec.Command(pgConfig(), "--pkglibdir").Output()
	if err != nil {
		b.Fatal(err)
	}
	for _, lib := range []string{"pg_keeper.so", "pg_keeper_go.so"} {
		if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(out)), lib)); err == nil {
			fmt.Printf("%-48s %.1f MB\n", "installed "+lib, float64(fi.Size())/1e6)
		}
	}
}

func untilWrite(b *testing.B, n *cluster.Node, since time.Time) time.Duration {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		// No short timeout: a commit cancelled while it waits for the
		// synchronous standby is committed with a WARNING and looks like a
		// success, so the write counts only once it is acknowledged.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := n.TryExec(ctx, "INSERT INTO acked (id) VALUES (-1 - floor(random() * 1e9)::bigint)")
		cancel()
		if err == nil {
			return time.Since(since)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatal("no write succeeded on the new master")
	return 0
}

// eventAt is when n's keeper recorded the first event matching where.
func eventAt(b *testing.B, n *cluster.Node, where string) time.Time {
	s := n.QueryString(b, "SELECT extract(epoch FROM at) FROM pg_keeper.events() WHERE "+where+" ORDER BY at LIMIT 1")
	sec, err := strconv.ParseFloat(s, 64)
	if err != nil {
		b.Fatalf("no event where %s: %v", where, err)
	}
	return time.Unix(0, int64(sec*1e9))
}

func countMissing(b *testing.B, n *cluster.Node, ids []int64) int {
	var sb strings.Builder
	for i, id := range ids {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatInt(id, 10))
	}
	s := n.QueryString(b, "SELECT count(*) FROM unnest('{"+sb.String()+"}'::bigint[]) x WHERE x NOT IN (SELECT id FROM acked)")
	missing, _ := strconv.Atoi(s)
	return missing
}

func workerPIDOf(b testing.TB, n *cluster.Node) int {
	pid, err := strconv.Atoi(n.QueryString(b, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_keeper'"))
	if err != nil {
		b.Fatal(err)
	}
	return pid
}

func cpuTicks(b *testing.B, pid int) int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: utime is the
	// 12th and stime the 13th of them.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}

// procStatus reads key from /proc/pid/file (status, smaps_rollup).
func procStatus(b *testing.B, pid int, file, key string) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, key+":") {
			return strings.TrimSpace(strings.TrimPrefix(l, key+":"))
		}
	}
	return "?"
}

func printRow(what string, ds []time.Duration, note string) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/1e6) }
	fmt.Printf("%-48s min %s  median %s  max %s  (n=%d) %s\n", what,
		ms(ds[0]), ms(ds[len(ds)/2]), ms(ds[len(ds)-1]), len(ds), note)
}
