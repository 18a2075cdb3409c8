package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	bin, err := pgBinDir()
	if err != nil {
		t.Fatal(err)
	}
	argv := []string{filepath.Join(bin, "pg_receivewal"), "-D", dir, "--synchronous", "--no-loop",
		"-d", "host=" + n.SockDir + " port=" + strconv.Itoa(n.Port) + " user=postgres application_name=" + name}
	if isRoot() {
		argv = append([]string{"runuser", "-u", pgOSUser, "--"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	log, err := os.Create(filepath.Join(n.c.Dir, "receivewal-"+name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		log.Close()
	})
	Eventually(t, 30*time.Second, 100*time.Millisecond, func() bool {
		s, err := n.TryQueryString(t.Context(), "SELECT count(*) FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'", name)
		return err == nil && s == "1"
	}, n.Name+": pg_receivewal "+name+" not streaming")
}
