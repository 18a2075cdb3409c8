package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PostgreSQL refuses to run as root, and CI runs the tests as root. So when
// we are root every server-side command runs as the OS user "postgres" via
// runuser, and every directory the servers use is chowned to that user.
const pgOSUser = "postgres"

var (
	binDirOnce sync.Once
	binDir     string
	binDirErr  error
)

// pgConfig answers one question of pg_config (or of the pg_config named by
// $PG_CONFIG, to test against another installation).
func pgConfig(option string) (string, error) {
	cmd := os.Getenv("PG_CONFIG")
	if cmd == "" {
		cmd = "pg_config"
	}
	out, err := exec.Command(cmd, option).Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", cmd, option, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// pgBinDir returns the PostgreSQL binary directory.
func pgBinDir() (string, error) {
	binDirOnce.Do(func() { binDir, binDirErr = pgConfig("--bindir") })
	return binDir, binDirErr
}

var (
	majorOnce sync.Once
	major     int
	majorErr  error
)

// Major is the major version of the PostgreSQL the tests run (13, 18...),
// from pg_config --version.
func Major() (int, error) {
	majorOnce.Do(func() {
		out, err := pgConfig("--version")
		if err != nil {
			majorErr = err
			return
		}
		// "PostgreSQL 17.12 (Debian 17.12-0+deb13u1)", "PostgreSQL 18beta1"
		v := strings.TrimPrefix(out, "PostgreSQL ")
		end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
		if end < 0 {
			end = len(v)
		}
		if major, majorErr = strconv.Atoi(v[:end]); majorErr != nil {
			majorErr = fmt.Errorf("pg_config --version: %q: %w", out, majorErr)
		}
	})
	return major, majorErr
}

func isRoot() bool { return os.Geteuid() == 0 }

var (
	pgUserOnce     sync.Once
	pgUID, pgGID   int
	pgUserLookupEr error
)

func pgUser() (uid, gid int, err error) {
	pgUserOnce.Do(func() {
		u, err := user.Lookup(pgOSUser)
		if err != nil {
			pgUserLookupEr = fmt.Errorf("look up OS user %q: %w", pgOSUser, err)
			return
		}
		pgUID, _ = strconv.Atoi(u.Uid)
		pgGID, _ = strconv.Atoi(u.Gid)
	})
	return pgUID, pgGID, pgUserLookupEr
}

// chownPG gives path (not recursively) to the postgres OS user when we run
// as root; otherwise the files are ours already.
func chownPG(path string) error {
	if !isRoot() {
		return nil
	}
	uid, gid, err := pgUser()
	if err != nil {
		return err
	}
	return os.Lchown(path, uid, gid)
}

// cleanEnv drops PG* variables of the caller so that libpq defaults in the
// environment (PGHOST, PGPORT, PGDATA, ...) cannot redirect our commands.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// runPG runs a PostgreSQL binary (by name, from pgBinDir) as the postgres
// user, in dir, and returns its combined output. The command runs in its own
// process group so that a timeout kills runuser and the tool under it
// together instead of leaving a pg_ctl behind. (pg_ctl start detaches the
// postmaster into its own session, so the server is not in that group.)
func runPG(ctx context.Context, dir, tool string, args ...string) (string, error) {
	return runPGIn(ctx, "", dir, tool, args...)
}

// runPGIn is runPG inside network namespace netns ("" for none): a server
// started there listens on, and reaches, that namespace's addresses only.
func runPGIn(ctx context.Context, netns, dir, tool string, args ...string) (string, error) {
	bin, err := pgBinDir()
	if err != nil {
		return "", err
	}
	argv := append([]string{filepath.Join(bin, tool)}, args...)
	if isRoot() {
		argv = append([]string{"runuser", "-u", pgOSUser, "--"}, argv...)
	}
	if netns != "" {
		argv = append([]string{"ip", "netns", "exec", netns}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild that inherited our output pipe must not hang Wait forever.
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err = cmd.Run()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return out.String(), fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out.String())
	}
	return out.String(), nil
}
