package keeper

import (
	"context"
	"fmt"
	ct "github.com/pg-keeper/pg_keeper/keeper/core/coretest"
	"testing"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"
	"github.com/pg-keeper/pg_keeper/keeper/probe"

	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/stretchr/testify/require"
)

// Under sslmode=prefer pgx opens a second connection when the server
// refuses TLS; the heartbeat says so, and plainFirst brings it back to one
// connection per heartbeat.
func TestPreferAgainstAServerWithoutTLS(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, true, "50331744", "3")...)
	cfg, err := conninfo.Config(fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=y sslmode=prefer", srv.Port))
	require.NoError(t, err)
	self := core.Identity{SystemID: 7300000000000000001, StartTime: ct.T0}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	res := probe.Probe(ctx, cfg, self, core.StandbyMode, testReceiver)
	require.True(t, res.OK, res.Detail)
	require.True(t, res.TLSRefused)
	require.Equal(t, 2, srv.ConnCount(), "TLS refused, then a second connection in plain text")

	plain := conninfo.PlainFirst(cfg)
	require.NotNil(t, cfg.TLSConfig, "the original is left as it was")
	res = probe.Probe(ctx, plain, self, core.StandbyMode, testReceiver)
	require.True(t, res.OK, res.Detail)
	require.False(t, res.TLSRefused)
	require.Equal(t, 3, srv.ConnCount(), "one connection for the heartbeat")
}

// plainFirst keeps TLS as the first fallback, so a server that takes only
// TLS connections still gets one, and leaves other hosts alone.
func TestPlainFirst(t *testing.T) {
	fakepg.CleanEnv(t)
	cfg, err := conninfo.Config("host=a,b port=5432,5433 user=x dbname=y sslmode=prefer")
	require.NoError(t, err)
	require.NotNil(t, cfg.TLSConfig)
	p := conninfo.PlainFirst(cfg)
	require.Nil(t, p.TLSConfig)
	require.Equal(t, "a", p.Host)
	require.Len(t, p.Fallbacks, len(cfg.Fallbacks))
	require.Equal(t, "a", p.Fallbacks[0].Host)
	require.NotNil(t, p.Fallbacks[0].TLSConfig)
	for _, fb := range p.Fallbacks[1:] {
		require.Equal(t, "b", fb.Host)
	}
}

// The runner learns from the first heartbeat that the partner refuses TLS,
// says so once, and from then on makes one connection per heartbeat.
func TestRunLearnsThePartnerRefusesTLS(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, fakepg.FactsRow(true, "7300000000000000001", fakepg.StartText, false, "-1", "0")...)
	raw := runRaw(t, srv.Port, fakepg.ClosedPort(t))
	raw.PartnerConninfo = fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=y", srv.Port) // sslmode prefer
	raw.SystemID, raw.StartTime = 7300000000000000001, ct.T0
	h := newFakeHost(raw)
	done := startRun(t, h)
	learnt := "pg_keeper: the partner refused TLS (sslmode=prefer): heartbeats now try without it first; " +
		"set sslmode in pg_keeper.partner_conninfo to choose"
	waitForLog(t, h, func(l core.LogLine) bool { return l == ct.Info(learnt) })
	before := len(srv.Received())
	conns := srv.ConnCount()
	require.Eventually(t, func() bool { return len(srv.Received()) >= before+3 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 0, stopAndWait(t, h, done))
	heartbeats := len(srv.Received()) - before
	// A heartbeat may have been under way when it was learnt.
	require.LessOrEqual(t, srv.ConnCount()-conns, heartbeats+1, "one connection per heartbeat")
	logs, _ := h.snapshot()
	n := 0
	for _, l := range logs {
		if l == ct.Info(learnt) {
			n++
		}
	}
	require.Equal(t, 1, n, "said once")
}

// sslmode=require (and verify-*) has no plain-text twin: plainFirst leaves
// it alone, so TLS is never skipped.
func TestPlainFirstNeverDropsRequiredTLS(t *testing.T) {
	fakepg.CleanEnv(t)
	for _, mode := range []string{"require", "disable", "allow"} {
		cfg, err := conninfo.Config("host=a user=x dbname=y sslmode=" + mode)
		require.NoError(t, err)
		require.Same(t, cfg, conninfo.PlainFirst(cfg), mode)
	}
}
