package test

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// keeperOutputLines is keeper.maxOutputLines: the lines of a command's
// output that reach the log.
const keeperOutputLines = 50

// keeperTitle starts the process title of the keeper worker.
const keeperTitle = "postgres: bgworker: pg_keeper"

// keeperWorkerPID returns the pid of n's keeper worker (a child of the
// postmaster whose title starts with keeperTitle), or 0.
func keeperWorkerPID(n *cluster.Node) int {
	pm := n.PostmasterPID()
	if pm == 0 {
		return 0
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := procParent(pid); !ok || ppid != pm {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.HasPrefix(strings.ReplaceAll(string(b), "\x00", " "), keeperTitle) {
			return pid
		}
	}
	return 0
}

// procParent returns the parent of a live (non-zombie) process.
func procParent(pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// pid (comm) state ppid ...: the name may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 || f[0] == "Z" {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

// vmRSS returns the resident set size of pid in bytes.
func vmRSS(pid int) (int64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v) // "12345 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err == nil
			}
		}
	}
	return 0, false
}

// commandRunning tells whether a process runs with exactly this cmdline.
func commandRunning(cmdline string) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ") == cmdline {
			return true
		}
	}
	return false
}

// crashLines are what the postmaster logs when a child dies of a signal
// and it reinitializes the whole server.
var crashLines = regexp.MustCompile(`terminated by signal|all server processes terminated`)

// An after_command that prints without end: its output is not buffered in
// the worker (it grew until the OOM killer took it and the server
// crash-restarted): the log gets the first lines and how much was dropped,
// the worker stays small, and the timeout ends it.
func TestChattyAfterCommandStaysBounded(t *testing.T) {
	const chatty = "yes pg_keeper_fence_output"
	c := newPair(t, map[string]string{
		"pg_keeper.after_command":         "'" + chatty + "'",
		"pg_keeper.after_command_timeout": "5",
	})
	standby := c.Standby
	mark := standby.LogMark()
	c.Master.Kill9(t)
	waitPromoted(t, standby)
	standby.WaitForLog(t, mark, logLine("running after_command (timeout "), failoverTimeout)

	// Sample the worker's memory until the timeout kills the command.
	killed := logLine("after_command failed: killed after the timeout of 5s (pg_keeper.after_command_timeout) after ")
	// An idle worker is about 23 MB; what it keeps of the output is 26 KB at
	// most. Unbounded, `yes` grew it past 250 MB before the first sample.
	const rssBound = 80 << 20
	var maxRSS int64
	samples, whileRunning := 0, 0
	workers := map[int]bool{}
	deadline := time.Now().Add(failoverTimeout)
	for !killed.MatchString(standby.LogSince(mark)) {
		if time.Now().After(deadline) {
			t.Fatalf("after_command not killed within %v; max RSS %d MB\n%s", failoverTimeout, maxRSS>>20,
				cluster.KeeperLines(standby.LogSince(mark), 40))
		}
		running := commandRunning(chatty)
		if pid := keeperWorkerPID(standby); pid != 0 {
			workers[pid] = true
			if rss, ok := vmRSS(pid); ok {
				samples++
				if running {
					whileRunning++
				}
				maxRSS = max(maxRSS, rss)
				require.Less(t, rss, int64(rssBound), "keeper worker %d RSS while after_command prints", pid)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("keeper worker max RSS %d MB over %d samples (%d while the command ran)", maxRSS>>20, samples, whileRunning)
	require.NotZero(t, whileRunning, "no sample while the command ran")
	require.Len(t, workers, 1, "the keeper worker was restarted: %v", workers)

	log := standby.LogSince(mark)
	require.NotRegexp(t, crashLines, log, "the server crash-restarted")
	lines := regexp.MustCompile(`pg_keeper: after_command: pg_keeper_fence_output\n`).FindAllString(log, -1)
	require.Len(t, lines, keeperOutputLines, "the first lines of output, no more")
	require.Regexp(t, regexp.MustCompile(`(LOG|WARNING):  pg_keeper: after_command: \(output cut: [0-9]+ more bytes dropped\)`), log)

	// The server did not restart and serves.
	require.False(t, standby.InRecovery(t))
	standby.Exec(t, "CREATE TABLE after_chatty (x int)")
	require.Equal(t, []int{keeperWorkerPID(standby)}, mapKeys(workers))
	require.Len(t, standby.ProcessTitles(keeperTitle), 1)
}

func mapKeys(m map[int]bool) []int {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// pgWritableDir makes a directory the servers' OS user can write to.
func pgWritableDir(t *testing.T) string {
	t.Helper()
	// Not t.TempDir: its parent is ours alone (0700).
	dir, err := os.MkdirTemp("", "pgk-cmd-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		// The servers run as postgres (test/cluster).
		u, err := user.Lookup("postgres")
		require.NoError(t, err)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		require.NoError(t, os.Chown(dir, uid, gid))
	}
	return dir
}

// A server stop while after_command runs does not kill it: the worker
// exits and closes the output pipe, and the command's next write used to
// kill it with SIGPIPE, halfway through a STONITH.
func TestAfterCommandSurvivesServerStop(t *testing.T) {
	dir := pgWritableDir(t)
	marker := filepath.Join(dir, "survived")
	c := newPair(t, map[string]string{
		"pg_keeper.after_command": fmt.Sprintf(`'sleep 3; echo late; echo late >&2; touch %s'`, marker),
	})
	standby := c.Standby
	mark := standby.LogMark()
	c.Master.Kill9(t)
	waitPromoted(t, standby)
	standby.WaitForLog(t, mark, logLine("running after_command (timeout "), failoverTimeout)

	start := time.Now()
	standby.Stop(t, "fast")
	// The postmaster is gone, so is the worker: the command's output has no
	// reader any more, and it has not written yet.
	took := time.Since(start)
	_, err := os.Stat(marker)
	require.True(t, os.IsNotExist(err),
		"the command finished before the stop (stop took %v): the test proves nothing", took)

	cluster.Eventually(t, 15*time.Second, 100*time.Millisecond, func() bool {
		_, err := os.Stat(marker)
		return err == nil
	}, "after_command did not finish after the server stopped (killed by SIGPIPE?)")
}
