package keeper

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestActionsWithoutLocal(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, _, err := promote(ctx, nil)
	require.EqualError(t, err, "pg_keeper.my_conninfo is unusable")
	_, err = switchAsync(ctx, nil, dir)
	require.EqualError(t, err, "pg_keeper.my_conninfo is unusable")
	_, err = StandbyCaughtUp(ctx, nil)
	require.EqualError(t, err, "pg_keeper.my_conninfo is unusable")

	// Nothing saved: nothing to restore, and no connection needed.
	detail, err := restoreSync(ctx, nil, dir)
	require.NoError(t, err)
	require.Equal(t, "no synchronous_standby_names saved: nothing to restore", detail)

	require.NoError(t, os.WriteFile(filepath.Join(dir, savedSyncFile), []byte("node2\n"), 0o600))
	_, err = restoreSync(ctx, nil, dir)
	require.EqualError(t, err, "pg_keeper.my_conninfo is unusable")
	_, err = os.Stat(filepath.Join(dir, savedSyncFile))
	require.NoError(t, err, "a failed restore keeps the saved value")
}

func TestActionsLocalUnreachable(t *testing.T) {
	cleanPGEnv(t)
	port := closedPort(t)
	local, err := connConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=postgres sslmode=disable password=hunter22", port))
	require.NoError(t, err)
	want := fmt.Sprintf("could not connect to this server (pg_keeper.my_conninfo): failed to connect to "+
		"`user=x database=postgres`: 127.0.0.1:%d (127.0.0.1): dial error: dial tcp 127.0.0.1:%d: connect: connection refused", port, port)
	dir := t.TempDir()

	_, _, err = promote(context.Background(), local)
	require.EqualError(t, err, want)
	_, err = switchAsync(context.Background(), local, dir)
	require.EqualError(t, err, want)
	_, err = os.Stat(filepath.Join(dir, savedSyncFile))
	require.True(t, os.IsNotExist(err), "nothing is saved before the server was reached")
}

func TestWriteFileAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, writeFileAtomic(path, "one\n"))
	require.NoError(t, writeFileAtomic(path, "two\n"))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "two\n", string(b))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	_, err = os.Stat(path + ".tmp")
	require.True(t, os.IsNotExist(err), "no temporary file is left")

	require.Error(t, writeFileAtomic(filepath.Join(t.TempDir(), "missing-dir", "f"), "x"))
}
