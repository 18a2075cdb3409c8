package action

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"
	"github.com/stretchr/testify/require"
)

// The switchover's and the rejoin's helper: how it learns the postmaster's
// command line, whether a rewind is possible, and the outcome it leaves.

// writeOpts writes postmaster.opts into dir as PostgreSQL writes it.
func writeOpts(t *testing.T, dir, text string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "postmaster.opts"), []byte(text), 0o600))
}

func TestPostmasterCommand(t *testing.T) {
	for _, tc := range []struct {
		name, opts string
		want       []string
	}{
		{"arguments, one with a space",
			`/usr/lib/postgresql/15/bin/postgres "-D" "/var/lib/x y" "-c" "config_file=/etc/a.conf"` + "\n",
			[]string{"/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/x y", "-c", "config_file=/etc/a.conf"}},
		{"no arguments", "/usr/lib/postgresql/15/bin/postgres\n", []string{"/usr/lib/postgresql/15/bin/postgres"}},
		{"one argument", `/usr/local/pgsql/bin/postgres "-D"` + "\n", []string{"/usr/local/pgsql/bin/postgres", "-D"}},
		{"an empty argument", `/usr/local/pgsql/bin/postgres "-c" ""` + "\n", []string{"/usr/local/pgsql/bin/postgres", "-c", ""}},
		{"no newline at the end", `/usr/local/pgsql/bin/postgres "-D" "/data"`, []string{"/usr/local/pgsql/bin/postgres", "-D", "/data"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeOpts(t, dir, tc.opts)
			argv, err := PostmasterCommand(dir)
			require.NoError(t, err)
			require.Equal(t, tc.want, argv)
		})
	}

	t.Run("no file", func(t *testing.T) {
		argv, err := PostmasterCommand(t.TempDir())
		require.Error(t, err)
		require.Nil(t, argv)
		require.ErrorIs(t, err, os.ErrNotExist)
		require.Contains(t, err.Error(), "cannot tell how this server was started")
	})
	t.Run("empty file", func(t *testing.T) {
		dir := t.TempDir()
		writeOpts(t, dir, "")
		_, err := PostmasterCommand(dir)
		require.EqualError(t, err, `cannot read postmaster.opts: ""`)
	})
}

// binWithRewind is a directory with an executable pg_rewind in it.
func binWithRewind(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bin, "pg_rewind"), []byte("#!/bin/sh\nexit 0\n"), 0o755))
	return bin
}

func TestRewindBlocked(t *testing.T) {
	bin := binWithRewind(t)
	data := t.TempDir()
	writeOpts(t, data, `/usr/lib/postgresql/15/bin/postgres "-D" "`+data+`"`+"\n")

	// Everything there, with either of wal_log_hints and checksums.
	require.Equal(t, "", RewindBlocked(data, bin, true, false))
	require.Equal(t, "", RewindBlocked(data, bin, false, true))
	require.Equal(t, "", RewindBlocked(data, bin, true, true))

	// Neither wal_log_hints nor checksums: said first, whatever else lacks.
	require.Equal(t, "pg_rewind needs wal_log_hints = on or data checksums, and this server has neither",
		RewindBlocked(data, bin, false, false))
	require.Equal(t, "pg_rewind needs wal_log_hints = on or data checksums, and this server has neither",
		RewindBlocked(t.TempDir(), t.TempDir(), false, false))

	// No pg_rewind in binDir: absent, not executable, or a directory.
	empty := t.TempDir()
	require.Equal(t, "pg_rewind is not in "+empty, RewindBlocked(data, empty, true, false))
	notExec := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(notExec, "pg_rewind"), []byte("#!/bin/sh\n"), 0o644))
	require.Equal(t, "pg_rewind is not in "+notExec, RewindBlocked(data, notExec, true, false))
	isDir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(isDir, "pg_rewind"), 0o755))
	require.Equal(t, "pg_rewind is not in "+isDir, RewindBlocked(data, isDir, true, false))

	// No postmaster.opts: the server could not be started again.
	noOpts := t.TempDir()
	why := RewindBlocked(noOpts, bin, true, false)
	require.Contains(t, why, "cannot tell how this server was started")
	require.Contains(t, why, filepath.Join(noOpts, "postmaster.opts"))
}

func TestReadResult(t *testing.T) {
	dir := t.TempDir()
	res, err := ReadResult(dir)
	require.NoError(t, err)
	require.False(t, res.Found, "no file: nothing to report")
	require.Empty(t, res.Fields)

	// As the helper's result() writes it: one key=value a line. A value
	// may hold '='; a line without one is skipped.
	path := filepath.Join(dir, ResultFile)
	require.NoError(t, os.WriteFile(path, []byte("task=rejoin\nok=yes\ndetail=rewound with pg_rewind\n"+
		"fork=0/3000060\ndiscarded_commits=3\nnot a field\nnote=a=b\nempty=\n"), 0o600))
	res, err = ReadResult(dir)
	require.NoError(t, err)
	require.True(t, res.Found)
	require.Equal(t, map[string]string{"task": "rejoin", "ok": "yes", "detail": "rewound with pg_rewind",
		"fork": "0/3000060", "discarded_commits": "3", "note": "a=b", "empty": ""}, res.Fields)

	// An empty file is found, with no fields.
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	res, err = ReadResult(dir)
	require.NoError(t, err)
	require.True(t, res.Found)
	require.Empty(t, res.Fields)

	// Unreadable (a directory in its place): an error, not "not found".
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.Mkdir(path, 0o700))
	_, err = ReadResult(dir)
	require.Error(t, err)
	require.NoError(t, os.Remove(path))

	// RemoveResult removes it; once gone, removing fails.
	require.NoError(t, os.WriteFile(path, []byte("ok=no\n"), 0o600))
	require.NoError(t, RemoveResult(dir))
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorIs(t, RemoveResult(dir), os.ErrNotExist)
}

// Without postmaster.opts the helper is not started: it could not start
// the server again.
func TestRestartPlanStartNeedsPostmasterOpts(t *testing.T) {
	dir := t.TempDir()
	err := RestartPlan{Task: "switchover", DataDir: dir, BinDir: t.TempDir(), PostmasterPID: 1}.Start()
	require.Error(t, err)
	require.True(t, errors.Is(err, os.ErrNotExist), "%v", err)
	_, statErr := os.Stat(filepath.Join(dir, ResultFile))
	require.ErrorIs(t, statErr, os.ErrNotExist, "no helper ran to leave a result")
}

func TestSetMaintenance(t *testing.T) {
	fakepg.CleanEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv := fakepg.Start(t)
	srv.AcceptMaintenance()
	require.NoError(t, SetMaintenance(ctx, fakepg.Config(t, srv.Port), true))
	require.NoError(t, SetMaintenance(ctx, fakepg.Config(t, srv.Port), false))
	require.Equal(t, []string{
		"ALTER SYSTEM SET pg_keeper.maintenance = on", "SELECT pg_reload_conf()",
		"ALTER SYSTEM SET pg_keeper.maintenance = off", "SELECT pg_reload_conf()",
	}, srv.Received())

	// ALTER SYSTEM refused: no reload, and the error says which failed.
	srv.Set(func(s *fakepg.Server) {
		s.Queries = nil
		s.Failures = map[string]*pgproto3.ErrorResponse{"ALTER SYSTEM SET pg_keeper.maintenance = on": {
			Severity: "ERROR", Code: "42501", Message: "permission denied to set parameter \"pg_keeper.maintenance\""}}
	})
	err := SetMaintenance(ctx, fakepg.Config(t, srv.Port), true)
	require.ErrorContains(t, err, "ALTER SYSTEM failed: ")
	require.ErrorContains(t, err, "permission denied")
	require.Equal(t, []string{"ALTER SYSTEM SET pg_keeper.maintenance = on"}, srv.Received())

	// The reload refused.
	srv.Set(func(s *fakepg.Server) {
		s.Queries = nil
		s.Failures = map[string]*pgproto3.ErrorResponse{"SELECT pg_reload_conf()": {
			Severity: "ERROR", Code: "42501", Message: "permission denied for function pg_reload_conf"}}
	})
	require.ErrorContains(t, SetMaintenance(ctx, fakepg.Config(t, srv.Port), false), "pg_reload_conf() failed: ")

	// No local server configured.
	require.EqualError(t, SetMaintenance(ctx, nil, true), "pg_keeper.my_conninfo is unusable")
}
