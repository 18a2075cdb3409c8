package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// PgBouncer is a PgBouncer from the distribution, run as the postgres OS
// user on a 127.0.0.1 port of its own, with trust authentication and
// postgres as its admin user.
type PgBouncer struct {
	Port    int
	Dir     string // its configuration, log and the included databases file
	DBsFile string // included by its [databases] section
	cmd     *exec.Cmd
}

// StartPgBouncer writes a configuration whose [databases] section includes
// DBsFile, which starts with dbs, and starts PgBouncer; cleanup stops it.
func StartPgBouncer(t testing.TB, dbs string) *PgBouncer {
	t.Helper()
	return StartPgBouncerWith(t, dbs, "")
}

// StartPgBouncerWith is StartPgBouncer with more lines for its [pgbouncer]
// section.
func StartPgBouncerWith(t testing.TB, dbs, extra string) *PgBouncer {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		bin = "/usr/sbin/pgbouncer" // Debian's, outside a user's PATH
	}
	dir, err := os.MkdirTemp("/tmp", "pgk-bouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	b := &PgBouncer{Port: port, Dir: dir, DBsFile: filepath.Join(dir, "databases.ini")}
	ini := fmt.Sprintf(`[databases]
%%include %s
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s/users.txt
admin_users = postgres
pool_mode = session
logfile = %s/pgbouncer.log
%s
`, b.DBsFile, port, dir, dir, extra)
	files := map[string]string{"pgbouncer.ini": ini, "users.txt": `"postgres" ""` + "\n", "databases.ini": dbs}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{dir, filepath.Join(dir, "pgbouncer.ini"), filepath.Join(dir, "users.txt"), b.DBsFile} {
		if err := chownPG(p); err != nil {
			t.Fatal(err)
		}
	}

	argv := []string{bin, filepath.Join(dir, "pgbouncer.ini")}
	if isRoot() {
		argv = append([]string{"runuser", "-u", pgOSUser, "--"}, argv...)
	}
	b.cmd = exec.Command(argv[0], argv[1:]...)
	b.cmd.Env = cleanEnv()
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start pgbouncer: %v", err)
	}
	t.Cleanup(b.stop)
	Eventually(t, 30*time.Second, 50*time.Millisecond, func() bool {
		return portOpen("127.0.0.1", port)
	}, "pgbouncer did not start listening; its log:\n"+b.Log())
	return b
}

// Conninfo reaches database db through PgBouncer.
func (b *PgBouncer) Conninfo(db string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s connect_timeout=2", b.Port, db)
}

// Log is PgBouncer's log so far.
func (b *PgBouncer) Log() string {
	data, _ := os.ReadFile(filepath.Join(b.Dir, "pgbouncer.log"))
	return string(data)
}

func (b *PgBouncer) stop() {
	// SIGTERM to the group: runuser and PgBouncer under it.
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}
