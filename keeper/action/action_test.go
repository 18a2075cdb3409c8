package action

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/probe"

	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"

	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
	"github.com/stretchr/testify/require"
)

func TestActionsWithoutLocal(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, _, err := Promote(ctx, nil)
	require.EqualError(t, err, "pg_keeper.my_conninfo is unusable")
	_, err = SwitchAsync(ctx, nil, dir, "tag")
	require.EqualError(t, err, "pg_keeper.my_conninfo is unusable")
	_, _, err = probe.StandbyCaughtUp(ctx, nil, "")
	require.EqualError(t, err, "pg_keeper.my_conninfo is unusable")

	// Saved by this node, or by another (a copy of its data directory):
	// either way the server is needed.
	for _, content := range []string{savedSyncHeader + "tag\nnode2\n", savedSyncHeader + "other\nnode2\n", "node2\n"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, SavedSyncFile), []byte(content), 0o600))
		_, err = RestoreSync(ctx, nil, dir, "tag")
		require.EqualError(t, err, "pg_keeper.my_conninfo is unusable")
		b, err := os.ReadFile(filepath.Join(dir, SavedSyncFile))
		require.NoError(t, err, "a failed restore keeps the saved value")
		require.Equal(t, content, string(b))
	}

	require.NoError(t, os.Remove(filepath.Join(dir, SavedSyncFile)))
	// Nothing saved: nothing to restore, and no connection needed.
	detail, err := RestoreSync(ctx, nil, dir, "tag")
	require.NoError(t, err)
	require.Equal(t, "no synchronous_standby_names saved: nothing to restore", detail)
}

func TestActionsLocalUnreachable(t *testing.T) {
	fakepg.CleanEnv(t)
	port := fakepg.ClosedPort(t)
	local, err := conninfo.Config(fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=postgres sslmode=disable password=hunter22", port))
	require.NoError(t, err)
	want := fmt.Sprintf("could not connect to this server (pg_keeper.my_conninfo): failed to connect to "+
		"`user=x database=postgres`: 127.0.0.1:%d (127.0.0.1): dial error: dial tcp 127.0.0.1:%d: connect: connection refused", port, port)
	dir := t.TempDir()

	_, _, err = Promote(context.Background(), local)
	require.EqualError(t, err, want)
	_, err = SwitchAsync(context.Background(), local, dir, "tag")
	require.EqualError(t, err, want)
	_, err = os.Stat(filepath.Join(dir, SavedSyncFile))
	require.True(t, os.IsNotExist(err), "nothing is saved before the server was reached")
}

// TestPromoteReturnsTheTimeline runs promote against a fake local server:
// it returns what it did and the timeline the server writes on after it.
func TestPromoteReturnsTheTimeline(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t)
	srv.Set(func(s *fakepg.Server) {
		s.Answers = map[string][]fakepg.Column{
			"SELECT pg_is_in_recovery()":     {fakepg.Col(fakepg.OIDBool, "t")},
			"SELECT pg_promote(false)":       {fakepg.Col(fakepg.OIDBool, "t")},
			"SELECT NOT pg_is_in_recovery()": {fakepg.Col(fakepg.OIDBool, "t")},
			"SELECT " + probe.TimelineSQL:    {fakepg.Col(fakepg.OIDInt4, "4")},
		}
	})
	ctx := context.Background()
	detail, timeline, err := Promote(ctx, fakepg.Config(t, srv.Port))
	require.NoError(t, err)
	require.Regexp(t, regexp.MustCompile(`^pg_promote\(\) took \d+ ms$`), detail)
	require.Equal(t, 4, timeline)
	require.Equal(t, []string{"SELECT pg_is_in_recovery()", "SELECT pg_promote(false)",
		"SELECT NOT pg_is_in_recovery()", timelineQuery}, srv.Received())

	// Recovery never ends: promote gives up after promoteWait, polling
	// meanwhile, and the timeline is not asked.
	defer func(w time.Duration) { promoteWait = w }(promoteWait)
	promoteWait = 100 * time.Millisecond
	srv.Set(func(s *fakepg.Server) {
		s.Queries = nil
		s.Answers["SELECT NOT pg_is_in_recovery()"] = []fakepg.Column{fakepg.Col(fakepg.OIDBool, "f")}
	})
	detail, timeline, err = Promote(ctx, fakepg.Config(t, srv.Port))
	require.EqualError(t, err, "pg_promote() did not finish within 100ms")
	require.Equal(t, "", detail)
	require.Equal(t, 0, timeline)
	got := srv.Received()
	require.Equal(t, []string{"SELECT pg_is_in_recovery()", "SELECT pg_promote(false)"}, got[:2])
	require.Greater(t, len(got), 4, "polled every %s", promotePoll)
	for _, q := range got[2:] {
		require.Equal(t, "SELECT NOT pg_is_in_recovery()", q)
	}

	// The signal could not be sent: fail at once, without polling.
	srv.Set(func(s *fakepg.Server) {
		s.Queries = nil
		s.Answers["SELECT pg_promote(false)"] = []fakepg.Column{fakepg.Col(fakepg.OIDBool, "f")}
	})
	_, _, err = Promote(ctx, fakepg.Config(t, srv.Port))
	require.EqualError(t, err, "pg_promote() could not signal the startup process (see the server log)")
	require.Equal(t, []string{"SELECT pg_is_in_recovery()", "SELECT pg_promote(false)"}, srv.Received())
}

// timelineQuery is what promote sends to read the new timeline.
const timelineQuery = "SELECT " + probe.TimelineSQL
