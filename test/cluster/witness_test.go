package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// psqlFrom runs psql in from's network namespace, as the servers' OS user
// (as a keeper there would connect), and returns its unaligned output.
func psqlFrom(c *Cluster, from *Node, conninfo, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := runPGIn(ctx, from.Netns, c.Dir, "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-d", conninfo, "-c", sql)
	return strings.TrimSpace(out), err
}

// mustPsqlFrom is psqlFrom that fails the test on error.
func mustPsqlFrom(t *testing.T, c *Cluster, from *Node, conninfo, sql string) string {
	t.Helper()
	out, err := psqlFrom(c, from, conninfo, sql)
	if err != nil {
		t.Fatalf("psql from %s: %v", from.Name, err)
	}
	return out
}

func netnsList(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	return string(out)
}

func TestWitness(t *testing.T) {
	if !isRoot() {
		t.Skip("network namespaces need root")
	}
	var dir string
	var namespaces []string
	start := time.Now()
	t.Run("witness", func(t *testing.T) {
		c := New(t, Options{Netns: true, Witness: true})
		dir, namespaces = c.Dir, append([]string(nil), c.netns...)
		m, s, w := c.Master, c.Standby, c.Witness
		t.Logf("cluster up in %v (node1 %s, node2 %s, witness %s port %d)", time.Since(start), m.Addr, s.Addr, w.Addr, w.Port)
		if w == nil || len(c.Nodes()) != 2 || c.Other(m) != s || c.Other(s) != m {
			t.Fatal("the witness must be Cluster.Witness, not one of the pair")
		}
		if len(namespaces) != 4 {
			t.Fatalf("namespaces %v: want three hosts and the hub", namespaces)
		}

		// A plain server: not in recovery, no pg_keeper, a witness role
		// that is no superuser and owns its database.
		if v := w.QueryString(t, "SELECT pg_is_in_recovery()::text || '/' || current_setting('shared_preload_libraries')"); v != "false/" {
			t.Fatalf("witness recovery/preload = %q", v)
		}
		if v := w.QueryString(t, "SELECT rolsuper::text || '/' || rolcanlogin::text || '/' || pg_get_userbyid(d.datdba) "+
			"FROM pg_roles r, pg_database d WHERE r.rolname = 'witness' AND d.datname = 'witness'"); v != "false/true/witness" {
			t.Fatalf("witness role/db = %q", v)
		}

		ci := c.WitnessConninfo()
		want := "host=" + w.Addr + " "
		if !strings.HasPrefix(ci, want) || !strings.Contains(ci, "user=witness password=witness-secret dbname=witness connect_timeout=2 sslmode=disable") {
			t.Fatalf("WitnessConninfo() = %q", ci)
		}
		q := "SELECT current_user || '@' || current_database() || '/' || host(inet_server_addr())"
		for _, n := range []*Node{m, s} {
			if v := mustPsqlFrom(t, c, n, ci, q); v != "witness@witness/"+w.Addr {
				t.Fatalf("from %s: %q", n.Name, v)
			}
		}
		// pg_hba.conf: a password is needed, and only the witness role gets in.
		if out, err := psqlFrom(c, m, strings.Replace(ci, "password=witness-secret", "password=wrong", 1), "SELECT 1"); err == nil ||
			!strings.Contains(out, "password authentication failed") {
			t.Fatalf("wrong password: err %v, output %q", err, out)
		}
		superCI := strings.Replace(ci, "user=witness", "user=postgres", 1)
		if out, err := psqlFrom(c, m, superCI, "SELECT 1"); err == nil || !strings.Contains(out, "no pg_hba.conf entry") {
			t.Fatalf("postgres over TCP: err %v, output %q", err, out)
		}

		// Cut node1 from the witness: node1's sessions time out (no
		// refusal), node2 still gets in, the pair still replicates.
		c.Cut(t, m, w)
		t0 := time.Now()
		out, err := psqlFrom(c, m, ci, "SELECT 1")
		took := time.Since(t0)
		if err == nil || !strings.Contains(out, "timeout expired") || took < 1500*time.Millisecond {
			t.Fatalf("node1 -> cut witness: err %v after %v, output %q", err, took, out)
		}
		t.Logf("node1 -> cut witness: %q after %v", out, took)
		if v := mustPsqlFrom(t, c, s, ci, "SELECT 1"); v != "1" {
			t.Fatalf("node2 -> witness during the cut: %q", v)
		}
		if v := mustPsqlFrom(t, c, m, s.KeeperConninfo()+" connect_timeout=2", "SELECT 1"); v != "1" {
			t.Fatalf("node1 -> node2 during the cut: %q", v)
		}
		m.Exec(t, "CREATE TABLE during_cut (i int); INSERT INTO during_cut VALUES (1)")
		Eventually(t, 10*time.Second, 50*time.Millisecond, func() bool {
			v, err := s.TryQueryString(context.Background(), "SELECT i FROM during_cut")
			return err == nil && v == "1"
		}, "the pair stopped replicating while node1 was cut from the witness")

		c.HealAll(t)
		if v := mustPsqlFrom(t, c, m, ci, "SELECT 1"); v != "1" {
			t.Fatalf("node1 -> witness after HealAll: %q", v)
		}

		// Rebuilt empty: what the witness role wrote is gone, the role
		// and its access are back, on the same port and address.
		mustPsqlFrom(t, c, m, ci, "CREATE TABLE state (v text); INSERT INTO state VALUES ('before')")
		oldPID := w.PostmasterPID()
		c.RebuildWitness(t)
		if pid := w.PostmasterPID(); pid == 0 || pid == oldPID {
			t.Fatalf("witness postmaster %d after rebuild (was %d)", pid, oldPID)
		}
		if ci2 := c.WitnessConninfo(); ci2 != ci {
			t.Fatalf("WitnessConninfo changed: %q -> %q", ci, ci2)
		}
		if v := mustPsqlFrom(t, c, s, ci, "SELECT count(*) FROM pg_class WHERE relname = 'state'"); v != "0" {
			t.Fatalf("rebuilt witness still has the old table: %q", v)
		}
		if v := mustPsqlFrom(t, c, m, ci, q); v != "witness@witness/"+w.Addr {
			t.Fatalf("from node1 after rebuild: %q", v)
		}
		mustPsqlFrom(t, c, m, ci, "CREATE TABLE state (v text); INSERT INTO state VALUES ('after')")
		if v := w.QueryString(t, "SELECT rolsuper::text FROM pg_roles WHERE rolname = 'witness'"); v != "false" {
			t.Fatalf("rebuilt witness role rolsuper = %q", v)
		}

		// The witness's host can vanish and its server crash like the pair's.
		w.Vanish(t)
		if out, err := psqlFrom(c, s, ci, "SELECT 1"); err == nil || !strings.Contains(out, "timeout expired") {
			t.Fatalf("node2 -> vanished witness: err %v, output %q", err, out)
		}
		w.Kill9(t)
		w.Heal(t)
		w.Start(t)
		if v := mustPsqlFrom(t, c, s, ci, "SELECT v FROM state"); v != "after" {
			t.Fatalf("witness after kill -9 and restart: %q", v)
		}
		if len(ourPIDs(c)) < 4 || w.PostmasterPID() == 0 {
			t.Fatal("servers not running before cleanup")
		}
	})
	if n := countProcsUnder(dir); n != 0 {
		t.Fatalf("%d processes still use %s", n, dir)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("temp dir %s not removed: %v", dir, err)
	}
	list := netnsList(t)
	for _, ns := range namespaces {
		if strings.Contains(list, ns) {
			t.Fatalf("namespace %s left after cleanup:\n%s", ns, list)
		}
	}
	t.Logf("whole test took %v", time.Since(start))
}

// fatalTB records a Fatal instead of failing the test, and ends the
// goroutine as Fatal does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// A witness without namespaces, or without the pair, is refused before
// anything starts.
func TestWitnessNeedsNetns(t *testing.T) {
	for _, opts := range []Options{{Witness: true}, {Witness: true, Netns: true, NoStandby: true}} {
		f := &fatalTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			New(f, opts)
		}()
		<-done
		if !strings.Contains(f.msg, "Options.Witness needs Options.Netns") {
			t.Fatalf("New(%+v): fatal %q", opts, f.msg)
		}
	}
}
