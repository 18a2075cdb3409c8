package cluster

import (
	"context"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ourPIDs lists the postmasters of c and all their direct children.
func ourPIDs(c *Cluster) []int {
	var pids []int
	for _, n := range c.Nodes() {
		if pm := n.PostmasterPID(); pm != 0 {
			pids = append(pids, pm)
			for _, ch := range childrenOf(pm) {
				pids = append(pids, ch.pid)
			}
		}
	}
	return pids
}

func TestClusterLifecycle(t *testing.T) {
	var dir string
	var pids []int
	start := time.Now()
	t.Run("sync", func(t *testing.T) {
		c := New(t, Options{Sync: true})
		dir = c.Dir
		m, s := c.Master, c.Standby
		t.Logf("cluster up in %v (master %d, standby %d)", time.Since(start), m.Port, s.Port)

		if m.InRecovery(t) {
			t.Fatal("master is in recovery")
		}
		if !s.InRecovery(t) {
			t.Fatal("standby is not in recovery")
		}
		// A walsender streams before its standby's first reply, and only a
		// reply makes it a synchronous candidate: wait for that.
		var got string
		Eventually(t, 10*time.Second, 50*time.Millisecond, func() bool {
			got, _ = m.TryQueryString(context.Background(),
				"SELECT state || '/' || sync_state FROM pg_stat_replication WHERE application_name = $1", "standby")
			return got == "streaming/sync"
		}, "replication never became streaming/sync")

		m.Exec(t, "CREATE TABLE t (i int); INSERT INTO t VALUES (42)")
		Eventually(t, 10*time.Second, 50*time.Millisecond, func() bool {
			v, err := s.TryQueryString(context.Background(), "SELECT i FROM t")
			return err == nil && v == "42"
		}, "row not replicated to standby")

		if len(m.ProcessTitles("postgres: walsender")) == 0 {
			t.Fatal("no walsender on master")
		}
		s.WaitForTitle(t, regexp.MustCompile(`^postgres: walreceiver streaming`), 10*time.Second)

		// Per-node config + reload, and log polling.
		mark := m.LogMark()
		m.SetConf("work_mem", "'8MB'")
		m.Reload(t)
		m.WaitForLog(t, mark, regexp.MustCompile(`received SIGHUP`), 10*time.Second)
		Eventually(t, 10*time.Second, 50*time.Millisecond, func() bool {
			v, err := m.TryQueryString(context.Background(), "SHOW work_mem")
			return err == nil && v == "8MB"
		}, "work_mem not reloaded")
		if v := s.QueryString(t, "SHOW work_mem"); v != "4MB" {
			t.Fatalf("standby work_mem = %q: per-node setting leaked", v)
		}

		// Crash the master, check it is really gone, then bring it back.
		m.Kill9(t)
		if m.PortOpen() || m.PostmasterPID() != 0 {
			t.Fatal("master still up after Kill9")
		}
		m.Start(t)
		if v := m.QueryString(t, "SELECT i FROM t"); v != "42" {
			t.Fatalf("after restart got %q", v)
		}
		t0 := time.Now()
		m.WaitStreaming(t, 30*time.Second)
		t.Logf("standby reconnected in %v", time.Since(t0))
		t0 = time.Now()

		// Rebuild the standby from scratch.
		s.PromoteToStandbyOf(t, m)
		if !s.InRecovery(t) || s.QueryString(t, "SELECT i FROM t") != "42" {
			t.Fatal("rebuilt standby is not a standby with the data")
		}

		t.Logf("standby rebuilt in %v", time.Since(t0))

		// A stop that cannot finish must time out and leave no pg_ctl.
		s.Signal(t, syscall.SIGSTOP)
		err := s.StopWithTimeout("fast", time.Second)
		s.Signal(t, syscall.SIGCONT)
		if err == nil {
			t.Fatal("StopWithTimeout on a stopped postmaster succeeded")
		}
		for _, p := range allProcs() {
			if strings.Contains(p.cmdline, "pg_ctl") && strings.Contains(p.cmdline, s.DataDir) {
				t.Fatalf("pg_ctl left behind: %d %s", p.pid, p.cmdline)
			}
		}
		Eventually(t, 30*time.Second, 50*time.Millisecond, func() bool { return s.PostmasterPID() == 0 },
			"standby did not finish its fast shutdown after SIGCONT")
		if err := s.TryStart(); err != nil {
			t.Fatal(err)
		}

		pids = ourPIDs(c)
		if len(pids) < 4 {
			t.Fatalf("expected postmasters and children, got %v", pids)
		}
	})
	if left := waitGone(pids, time.Second); len(left) > 0 {
		t.Fatalf("processes left after cleanup: %v", left)
	}
	if n := countProcsUnder(dir); n != 0 {
		t.Fatalf("%d processes still use %s", n, dir)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("temp dir %s not removed: %v", dir, err)
	}
	t.Logf("whole test took %v", time.Since(start))
}

func TestNoStandby(t *testing.T) {
	c := New(t, Options{NoStandby: true, Settings: map[string]string{"application_name": "'solo'"}})
	if c.Standby != nil || len(c.Nodes()) != 1 {
		t.Fatal("standby created")
	}
	if v := c.Master.QueryString(t, "SELECT current_setting('application_name', true) IS NOT NULL"); v != "t" {
		t.Fatalf("got %q", v)
	}
	c.Master.Stop(t, "fast")
	if c.Master.PostmasterPID() != 0 {
		t.Fatal("still running after Stop")
	}
}
