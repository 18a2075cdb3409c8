package probe

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"
	"github.com/stretchr/testify/require"
)

var sessionSelf = core.Identity{SystemID: 7300000000000000001, StartTime: t0}

func masterFacts() fakepg.Facts {
	return fakepg.Facts{SysID: "7300000000000000001", StartTime: fakepg.StartText, Names: "walreceiver",
		W: fakepg.Counts{Mine: 1, MineSync: 1}, LSN: "50331744", Timeline: "3", KV: fakepg.Null, URI: fakepg.Null}
}

// keptProbe is a kept session with srv, and a heartbeat on it. The setting
// is made once: another one would open another session.
func keptProbe(t *testing.T, srv *fakepg.Server) (*Session, func() core.ProbeResult) {
	t.Helper()
	sess := &Session{}
	t.Cleanup(sess.Close)
	cfg := fakepg.Config(t, srv.Port)
	return sess, func() core.ProbeResult {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return ProbeOn(ctx, sess, cfg, sessionSelf, core.StandbyMode, testReceiver)
	}
}

// One session serves every heartbeat while it works.
func TestSessionKept(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, masterFacts().Columns()...)
	_, probe := keptProbe(t, srv)
	for i := 0; i < 5; i++ {
		res := probe()
		require.True(t, res.OK, "%+v", res)
	}
	require.Equal(t, 1, srv.ConnCount())
	require.Len(t, srv.Received(), 5)
}

// A kept session the partner dropped (a restart, pg_terminate_backend) is
// replaced within the same heartbeat: the heartbeat does not fail for it.
func TestSessionDroppedIsReplaced(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, masterFacts().Columns()...)
	_, probe := keptProbe(t, srv)
	require.True(t, probe().OK)
	srv.DropConnections()
	res := probe()
	require.True(t, res.OK, "%+v", res)
	conns := srv.ConnCount()
	require.Greater(t, conns, 1)
	require.True(t, probe().OK)
	require.Equal(t, conns, srv.ConnCount(), "the new session is kept")
}

// An error on a kept session is tried once more on a fresh one, and
// stands when that fails too; a fresh session's error is not retried.
func TestSessionErrorRetriedOnce(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, masterFacts().Columns()...)
	_, probe := keptProbe(t, srv)
	require.True(t, probe().OK)
	srv.Set(func(s *fakepg.Server) {
		s.QueryErr = &pgproto3.ErrorResponse{Severity: "ERROR", Code: "53300", Message: "too many connections"}
	})
	res := probe()
	require.Equal(t, core.FailRejected, res.Class, "%+v", res)
	require.Equal(t, 2, srv.ConnCount(), "one fresh session")
	res = probe()
	require.Equal(t, core.FailRejected, res.Class)
	require.Equal(t, 3, srv.ConnCount(), "the failed one was not kept, and a fresh one is not retried")
}

// A partner that says it is shutting down gets its session back at once,
// so that a smart shutdown does not wait for it; the heartbeat itself is
// good.
func TestSessionClosedWhenPartnerStops(t *testing.T) {
	fakepg.CleanEnv(t)
	f := masterFacts()
	f.Stopping = true
	srv := fakepg.Start(t, f.Columns()...)
	_, probe := keptProbe(t, srv)
	for i := 1; i <= 3; i++ {
		require.True(t, probe().OK)
		require.Equal(t, i, srv.ConnCount(), "a session each time")
	}
	require.Contains(t, FactsSQL, "current_setting('pg_keeper.server_state', true)")
}

// A partner that is not this node's partner gets no kept session.
func TestSessionNotKeptForAWrongPartner(t *testing.T) {
	fakepg.CleanEnv(t)
	f := masterFacts()
	f.SysID = "7300000000000000002"
	srv := fakepg.Start(t, f.Columns()...)
	_, probe := keptProbe(t, srv)
	require.Equal(t, core.FailWrongCluster, probe().Class)
	require.Equal(t, core.FailWrongCluster, probe().Class)
	require.Equal(t, 2, srv.ConnCount())
}

func TestServerStopping(t *testing.T) {
	dir := t.TempDir()
	require.False(t, ServerStopping(dir), "no postmaster.pid")
	write := func(status string) {
		pid := "4242\n" + dir + "\n1733500000\n5432\n/tmp\n127.0.0.1\n  5432001    131074\n" + status + "\n"
		require.NoError(t, os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(pid), 0o600))
	}
	write("ready   ")
	require.False(t, ServerStopping(dir))
	write("stopping")
	require.True(t, ServerStopping(dir))
}

// A session no heartbeat uses any more is closed once idle that long; one
// in use is left alone.
func TestSessionCloseIdle(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, masterFacts().Columns()...)
	sess, heartbeat := keptProbe(t, srv)
	probe := func() { require.True(t, heartbeat().OK) }
	probe()
	sess.CloseIdle(time.Hour)
	probe()
	require.Equal(t, 1, srv.ConnCount(), "not idle for an hour")
	sess.CloseIdle(0)
	probe()
	require.Equal(t, 2, srv.ConnCount(), "closed when idle")
	sess.mu.Lock()
	sess.CloseIdle(0) // in use: left alone, and does not wait
	sess.mu.Unlock()
	probe()
	require.Equal(t, 2, srv.ConnCount())
}

// A partner that reloaded its configuration (pg_hba.conf among it) gets a
// fresh session at the next heartbeat: the new rules apply to new sessions
// only.
func TestSessionRenewedAfterPartnerReload(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, masterFacts().Columns()...)
	_, heartbeat := keptProbe(t, srv)
	probe := func() { require.True(t, heartbeat().OK) }
	probe()
	probe()
	require.Equal(t, 1, srv.ConnCount())
	f := masterFacts()
	f.ConfLoaded = "2024-05-01 11:30:00+00"
	srv.Set(func(s *fakepg.Server) { s.Columns = f.Columns() })
	probe() // sees the reload, gives the session back
	require.Equal(t, 1, srv.ConnCount())
	probe()
	probe()
	require.Equal(t, 2, srv.ConnCount(), "one fresh session, then kept")
	require.Contains(t, FactsSQL, "pg_conf_load_time()")
}
