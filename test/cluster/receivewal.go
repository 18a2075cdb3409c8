package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartReceiveWAL runs pg_receivewal --synchronous against n with
// application_name name, as a CDC or archiving client does: a second
// walsender beside the standby, which synchronous_standby_names may match.
// Cleanup stops it.
func (n *Node) StartReceiveWAL(t testing.TB, name string) {
	t.Helper()
	dir := filepath.Join(n.c.Dir, "receivewal-"+name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := chownPG(dir); err != nil {
		t.Fatal(err)
	}
	n.startClient(t, "receivewal-"+name, "pg_receivewal", "-D", dir, "--synchronous", "--no-loop",
		"-d", "host="+n.SockDir+" port="+strconv.Itoa(n.Port)+" user=postgres application_name="+name)
	Eventually(t, 30*time.Second, 100*time.Millisecond, func() bool {
		s, err := n.TryQueryString(t.Context(), "SELECT count(*) FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'", name)
		return err == nil && s == "1"
	}, n.Name+": pg_receivewal "+name+" not streaming")
}

// StartRecvLogical runs pg_recvlogical on n's logical slot, as a CDC
// client that stays connected does: the slot is active while it runs. It
// returns once the slot is, and the function that stops the client (so
// does cleanup).
func (n *Node) StartRecvLogical(t testing.TB, slot string) (stop func()) {
	t.Helper()
	stop = n.startClient(t, "recvlogical-"+slot, "pg_recvlogical", "--start", "--slot", slot, "--no-loop", "-f", "-",
		"-d", "host="+n.SockDir+" port="+strconv.Itoa(n.Port)+" user=postgres dbname=postgres")
	Eventually(t, 30*time.Second, 100*time.Millisecond, func() bool {
		s, err := n.TryQueryString(t.Context(), "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot)
		return err == nil && s == "t"
	}, n.Name+": pg_recvlogical on slot "+slot+" not active")
	return stop
}

// startClient runs PostgreSQL's program with args as the servers' OS user,
// its output in the cluster's directory as name.log, until stop or the
// test's cleanup.
func (n *Node) startClient(t testing.TB, name, program string, args ...string) (stop func()) {
	t.Helper()
	bin, err := pgBinDir()
	if err != nil {
		t.Fatal(err)
	}
	argv := append([]string{filepath.Join(bin, program)}, args...)
	if isRoot() {
		argv = append([]string{"runuser", "-u", pgOSUser, "--"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	log, err := os.Create(filepath.Join(n.c.Dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
			log.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}
