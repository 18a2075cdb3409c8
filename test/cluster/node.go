package cluster

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// confInclude is the per-node configuration file, included last from
// postgresql.conf. Per-node settings (port, socket directory, ...) live here
// rather than in postgresql.conf because pg_basebackup copies postgresql.conf
// from the primary; this file is rewritten from memory after every copy.
const confInclude = "pg_keeper_test.conf"

// standbyAppName is the application_name every standby connects with, so
// that synchronous_standby_names = 'standby' matches whichever node it is.
const standbyAppName = "standby"

// Node is one PostgreSQL server of the cluster. Its role may change during a
// test (failover); its name, port and directories do not.
type Node struct {
	Name    string // "node1" / "node2" / "witness"
	Port    int
	DataDir string
	LogFile string // server log (pg_ctl -l, appended to), kept for the whole test
	SockDir string // unix_socket_directories of this node
	// In a cluster with Options.Netns, the node runs in network namespace
	// Netns; Addr is its address for clients and heartbeats, ReplAddr a
	// second one that its standby streams from, so that a test can cut
	// one path and not the other. Otherwise both are 127.0.0.1.
	Netns, Addr, ReplAddr string
	// AppName is the application_name n streams with as a standby.
	AppName string

	c       *Cluster
	witness bool   // the witness of Options.Witness, not a keeper node
	hba     string // the first lines of pg_hba.conf last written (SetHBA)

	mu       sync.Mutex
	confKeys []string // insertion order, for a stable file
	conf     map[string]string
}

func newNode(c *Cluster, name string) (*Node, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	n := &Node{
		Name:    name,
		Port:    port,
		DataDir: filepath.Join(c.Dir, name),
		LogFile: filepath.Join(c.Dir, name+".log"),
		SockDir: filepath.Join(c.Dir, "sock-"+name),
		c:       c,
		conf:    map[string]string{},
		Addr:    "127.0.0.1", ReplAddr: "127.0.0.1",
		AppName: standbyAppName,
	}
	if err := os.Mkdir(n.SockDir, 0o700); err != nil {
		return nil, err
	}
	if err := chownPG(n.SockDir); err != nil {
		return nil, err
	}
	n.confKeys = []string{"port", "unix_socket_directories"}
	n.conf["port"] = strconv.Itoa(port)
	n.conf["unix_socket_directories"] = "'" + n.SockDir + "'"
	return n, nil
}

// Conninfo returns a libpq conninfo reaching n over TCP on 127.0.0.1 (over
// its unix socket when it runs in a network namespace: sockets are files,
// reachable from here whatever the network does), with extra "key=value"
// items appended.
func (n *Node) Conninfo(extra ...string) string {
	host := "127.0.0.1"
	if n.Netns != "" {
		host = n.SockDir
	}
	// client_encoding: pgx needs UTF8, and a SQL_ASCII cluster would default to its own.
	s := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres connect_timeout=2 client_encoding=UTF8", host, n.Port)
	for _, e := range extra {
		s += " " + e
	}
	return s
}

// KeeperConninfo is what a partner's pg_keeper.partner_conninfo holds to
// reach n: like a production one (conf/), without connect_timeout (the
// keeper bounds each heartbeat itself) and with sslmode said: under the
// default, prefer, pgx makes a second connection when TLS is refused.
func (n *Node) KeeperConninfo() string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", n.Addr, n.Port)
}

// SetHBA rewrites n's pg_hba.conf with first before the harness's trust
// lines (the first matching line wins) and reloads n if it runs. On the
// witness the harness's lines are its own (see writeWitnessHBA), and
// RebuildWitness keeps first.
func (n *Node) SetHBA(t testing.TB, first string) {
	t.Helper()
	if err := n.writeHBA(first); err != nil {
		t.Fatal(err)
	}
	if n.PostmasterPID() != 0 {
		n.Reload(t)
	}
}

func (n *Node) writeHBA(first string) error {
	n.hba = first
	if n.witness {
		return n.writeWitnessHBA(first)
	}
	hba := "# written by test/cluster\n" + first + "\n" +
		"local all         all              trust\n" +
		"local replication all              trust\n" +
		"host  all         all 127.0.0.1/32 trust\n" +
		"host  replication all 127.0.0.1/32 trust\n" +
		"host  all         all " + netnsSubnet + " trust\n" +
		"host  replication all " + netnsSubnet + " trust\n"
	path := filepath.Join(n.DataDir, "pg_hba.conf")
	if err := os.WriteFile(path, []byte(hba), 0o600); err != nil {
		return err
	}
	return chownPG(path)
}

// SetConf sets key = value (written verbatim: quote strings yourself) in the
// node's own include file. It takes effect on the next start or Reload.
// It panics if the file cannot be written, which means the harness is broken.
func (n *Node) SetConf(key, value string) {
	n.mu.Lock()
	if _, ok := n.conf[key]; !ok {
		n.confKeys = append(n.confKeys, key)
	}
	n.conf[key] = value
	n.mu.Unlock()
	if err := n.writeConf(); err != nil {
		panic(err)
	}
}

// writeConf writes the include file from memory, if the data directory exists.
func (n *Node) writeConf() error {
	if _, err := os.Stat(n.DataDir); err != nil {
		return nil // written once the directory is made
	}
	n.mu.Lock()
	var b strings.Builder
	b.WriteString("# written by test/cluster for " + n.Name + "\n")
	for _, k := range n.confKeys {
		fmt.Fprintf(&b, "%s = %s\n", k, n.conf[k])
	}
	n.mu.Unlock()
	path := filepath.Join(n.DataDir, confInclude)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return chownPG(path)
}

// TryStart runs pg_ctl start and waits up to 60 s for the server to accept
// connections. It returns the error for nodes that are expected not to start.
func (n *Node) TryStart() error {
	if err := n.removeStaleLocks(); err != nil {
		return fmt.Errorf("%s: start: %w", n.Name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_, err := runPGIn(ctx, n.Netns, n.c.Dir, "pg_ctl", "start", "-w", "-t", "60",
		"-D", n.DataDir, "-l", n.LogFile)
	// Remember the postmaster even if it is not ready yet, so cleanup can
	// find its children.
	if pid := n.PostmasterPID(); pid != 0 {
		n.c.addPostmaster(pid)
	}
	if err != nil {
		return fmt.Errorf("%s: start: %w", n.Name, err)
	}
	return nil
}

// Start is TryStart that fails the test, with the server log tail.
func (n *Node) Start(t testing.TB) {
	t.Helper()
	if err := n.TryStart(); err != nil {
		t.Fatalf("%v\n--- %s log tail ---\n%s", err, n.Name, n.LogTail(60))
	}
}

// removeStaleLocks removes postmaster.pid and the socket lock files left by
// a killed postmaster that is now a zombie. PID 1 on some CI machines reaps
// orphans only every second or so, and PostgreSQL takes a zombie for a live
// postmaster (kill(pid, 0) succeeds), so a restart right after a kill -9
// would fail. They are removed only when no process runs in the data
// directory any more, so PostgreSQL's own check for old backends still
// attached to shared memory is never bypassed.
func (n *Node) removeStaleLocks() error {
	for _, p := range allProcs() {
		if underDir(p.cwd, n.DataDir) {
			return nil
		}
	}
	locks := []string{filepath.Join(n.DataDir, "postmaster.pid")}
	if m, err := filepath.Glob(filepath.Join(n.SockDir, ".s.PGSQL.*.lock")); err == nil {
		locks = append(locks, m...)
	}
	for _, path := range locks {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		first, _, _ := strings.Cut(string(b), "\n")
		pid, err := strconv.Atoi(strings.TrimSpace(first))
		if err != nil || alive(pid) {
			continue
		}
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// Stop runs pg_ctl stop -m mode (smart, fast or immediate), waiting up to
// 60 s, and fails the test on error.
func (n *Node) Stop(t testing.TB, mode string) {
	t.Helper()
	if err := n.stop(mode, 60*time.Second, 75*time.Second); err != nil {
		t.Fatalf("%v\n--- %s log tail ---\n%s", err, n.Name, n.LogTail(60))
	}
}

// StopWithTimeout is like Stop but gives up after d and returns an error;
// pg_ctl is then killed, so no pg_ctl process is left behind (the server
// itself may still be shutting down).
func (n *Node) StopWithTimeout(mode string, d time.Duration) error {
	return n.stop(mode, d, d)
}

func (n *Node) stop(mode string, wait, hard time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), hard)
	defer cancel()
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	_, err := runPG(ctx, n.c.Dir, "pg_ctl", "stop", "-m", mode, "-w",
		"-t", strconv.Itoa(secs), "-D", n.DataDir)
	if err != nil {
		return fmt.Errorf("%s: stop -m %s: %w", n.Name, mode, err)
	}
	return nil
}

// PostmasterPID returns the pid of the running postmaster, or 0. The pid
// file survives a crash, so the pid is checked to be alive and (where
// readable) to run in this data directory, which guards against pid reuse.
func (n *Node) PostmasterPID() int {
	b, err := os.ReadFile(filepath.Join(n.DataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0
	}
	p, ok := readProc(pid)
	if !ok || p.state == 'Z' {
		return 0
	}
	if p.cwd != "" && !underDir(p.cwd, n.DataDir) {
		return 0
	}
	return pid
}

// Signal sends sig to the postmaster; it fails the test if none is running.
func (n *Node) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	pid := n.PostmasterPID()
	if pid == 0 {
		t.Fatalf("%s: signal %v: postmaster not running", n.Name, sig)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("%s: signal %v to %d: %v", n.Name, sig, pid, err)
	}
}

// Kill9 SIGKILLs the postmaster, as a crash of the machine would, and waits
// until it is gone, its children are gone (so that a restart does not find
// the old shared memory still attached) and its port refuses connections.
func (n *Node) Kill9(t testing.TB) {
	t.Helper()
	pid := n.PostmasterPID()
	if pid == 0 {
		t.Fatalf("%s: kill -9: postmaster not running", n.Name)
	}
	var pids []int
	for _, c := range childrenOf(pid) {
		pids = append(pids, c.pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("%s: kill -9 %d: %v", n.Name, pid, err)
	}
	if left := waitGone([]int{pid}, 10*time.Second); len(left) > 0 {
		t.Fatalf("%s: postmaster %d still alive 10 s after SIGKILL", n.Name, pid)
	}
	if left := waitGone(pids, 20*time.Second); len(left) > 0 {
		t.Fatalf("%s: children %v of killed postmaster still alive after 20 s", n.Name, left)
	}
	Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool { return !n.PortOpen() },
		fmt.Sprintf("%s: port %d still open after kill -9", n.Name, n.Port))
}

// PortOpen reports whether something accepts TCP connections on n's port.
func (n *Node) PortOpen() bool { return portOpen("127.0.0.1", n.Port) }

func portOpen(host string, port int) bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), 200*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// basebackup fills n.DataDir (which must not exist or be empty) with a copy
// of primary and makes it a standby of primary (standby.signal, and
// primary_conninfo with application_name=standby), with n's own include file.
func (n *Node) basebackup(primary *Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// Through the primary's unix socket: it may be in another namespace.
	if _, err := runPG(ctx, n.c.Dir, "pg_basebackup", "-h", primary.SockDir,
		"-p", strconv.Itoa(primary.Port), "-U", "postgres", "-D", n.DataDir,
		"-R", "-X", "stream", "-c", "fast", "--no-sync"); err != nil {
		return fmt.Errorf("%s: base backup from %s: %w", n.Name, primary.Name, err)
	}
	if err := n.writeConf(); err != nil {
		return err
	}
	// -R wrote a primary_conninfo into postgresql.auto.conf (which is read
	// after postgresql.conf and its includes); replace it with ours so the
	// primary sees application_name 'standby'.
	auto := filepath.Join(n.DataDir, "postgresql.auto.conf")
	b, err := os.ReadFile(auto)
	if err != nil {
		return err
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "primary_conninfo") {
			lines = append(lines, l)
		}
	}
	conninfo := fmt.Sprintf("host=%s port=%d user=postgres application_name='%s'",
		primary.ReplAddr, primary.Port, strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(n.AppName))
	lines = append(lines, "primary_conninfo = "+ConfString(conninfo))
	if err := os.WriteFile(auto, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	return chownPG(auto)
}

// PromoteToStandbyOf turns n into a fresh standby of primary: it stops n if
// running, wipes its data directory, takes a base backup of primary, keeps
// n's own include file settings, starts n and waits until it streams.
func (n *Node) PromoteToStandbyOf(t testing.TB, primary *Node) {
	t.Helper()
	if n.PostmasterPID() != 0 {
		n.Stop(t, "immediate")
	}
	if err := os.RemoveAll(n.DataDir); err != nil {
		t.Fatalf("%s: wipe data dir: %v", n.Name, err)
	}
	if err := n.basebackup(primary); err != nil {
		t.Fatal(err)
	}
	n.Start(t)
	primary.WaitStreaming(t, 60*time.Second)
}

// WaitStreaming waits until n, as a primary, has a walsender for the
// standby in state 'streaming'.
func (n *Node) WaitStreaming(t testing.TB, timeout time.Duration) {
	t.Helper()
	name := standbyAppName
	if o := n.c.Other(n); o != nil {
		name = o.AppName
	}
	q := "SELECT count(*) FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'"
	Eventually(t, timeout, 100*time.Millisecond, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := n.TryQueryString(ctx, q, name)
		return err == nil && s != "0"
	}, n.Name+": standby not streaming")
}

// AddStandbySignal creates standby.signal, so that n starts as a standby
// of whatever its primary_conninfo names. n must be stopped.
func (n *Node) AddStandbySignal(t testing.TB) {
	t.Helper()
	path := filepath.Join(n.DataDir, "standby.signal")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := chownPG(path); err != nil {
		t.Fatal(err)
	}
}

// RemoveStandbySignal deletes standby.signal, so that n starts as a primary
// (for tests of misconfigured pairs). n must be stopped.
func (n *Node) RemoveStandbySignal(t testing.TB) {
	t.Helper()
	if err := os.Remove(filepath.Join(n.DataDir, "standby.signal")); err != nil {
		t.Fatal(err)
	}
}
