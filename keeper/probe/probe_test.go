package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/internal/fakepg"
	"github.com/stretchr/testify/require"
)

func TestProbeRefused(t *testing.T) {
	fakepg.CleanEnv(t)
	for _, sslmode := range []string{"disable", "prefer"} {
		t.Run(sslmode, func(t *testing.T) {
			port := fakepg.ClosedPort(t)
			cfg, err := conninfo.Config(fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=y sslmode=%s password=hunter22", port, sslmode))
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for _, mode := range []core.Mode{core.StandbyMode, core.MasterMode} {
				res := Probe(ctx, cfg, core.Identity{SystemID: 7300000000000000001, StartTime: t0}, mode, testReceiver)
				require.Equal(t, core.ProbeResult{
					Class: core.FailRefused,
					// With sslmode=prefer the error is not doubled.
					Detail: fmt.Sprintf("failed to connect to `user=x database=y`: 127.0.0.1:%d (127.0.0.1): "+
						"dial error: dial tcp 127.0.0.1:%d: connect: connection refused", port, port),
					LocalLSN: -1,
				}, res)
			}
		})
	}
}

func TestProbeTimeout(t *testing.T) {
	fakepg.CleanEnv(t)
	port := fakepg.Silent(t)
	cfg, err := conninfo.Config(fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=y sslmode=disable", port))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := Probe(ctx, cfg, core.Identity{}, core.StandbyMode, testReceiver)
	elapsed := time.Since(start)
	require.Equal(t, core.ProbeResult{
		Class: core.FailTimeout,
		Detail: fmt.Sprintf("failed to connect to `user=x database=y`: 127.0.0.1:%d (127.0.0.1): "+
			"failed to receive message: timeout: context deadline exceeded", port),
		LocalLSN: -1,
	}, res)
	require.GreaterOrEqual(t, elapsed, 150*time.Millisecond)
	require.Less(t, elapsed, time.Second)
}

func TestReplicationAliveWithoutLocal(t *testing.T) {
	for _, mode := range []core.Mode{core.StandbyMode, core.MasterMode} {
		repl, err := ReplicationAlive(context.Background(), nil, mode, "node2", time.Second)
		require.Equal(t, Replication{LSN: -1}, repl)
		require.EqualError(t, err, "pg_keeper.my_conninfo is unusable")
	}
}

func TestReplicationAliveUnreachable(t *testing.T) {
	fakepg.CleanEnv(t)
	port := fakepg.ClosedPort(t)
	cfg, err := conninfo.Config(fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=y sslmode=disable", port))
	require.NoError(t, err)
	for _, mode := range []core.Mode{core.StandbyMode, core.MasterMode} {
		repl, err := ReplicationAlive(context.Background(), cfg, mode, "node2", time.Second)
		require.Equal(t, Replication{LSN: -1}, repl)
		// The error is text, with any password masked: it wraps nothing.
		require.False(t, errors.Is(err, syscall.ECONNREFUSED), "%v", err)
		require.EqualError(t, err, fmt.Sprintf("could not connect to this server (pg_keeper.my_conninfo): failed to connect to "+
			"`user=x database=y`: 127.0.0.1:%d (127.0.0.1): dial error: dial tcp 127.0.0.1:%d: connect: connection refused", port, port))
	}
}

func TestClassify(t *testing.T) {
	expired, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-expired.Done()
	bg := context.Background()
	pgErr := func(code string) error { return fmt.Errorf("connect: %w", &pgconn.PgError{Code: code, Message: "m"}) }

	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want core.FailureClass
	}{
		{"bad password", bg, pgErr("28P01"), core.FailAuth},
		{"no pg_hba entry", bg, pgErr("28000"), core.FailAuth},
		{"no such database", bg, pgErr("3D000"), core.FailAuth},
		{"no privilege", bg, pgErr("42501"), core.FailAuth},
		{"starting up", bg, pgErr("57P03"), core.FailStarting},
		// 57P01 is also what pg_terminate_backend() sends: the server answered.
		{"admin shutdown or a terminated backend", bg, pgErr("57P01"), core.FailRejected},
		{"crash shutdown", bg, pgErr("57P02"), core.FailStarting},
		{"undefined table", bg, pgErr("42P01"), core.FailRejected},
		{"internal error", bg, pgErr("XX000"), core.FailRejected},
		{"database dropped is no start or stop", bg, pgErr("57P04"), core.FailRejected},
		{"idle session timeout is no start or stop", bg, pgErr("57P05"), core.FailRejected},
		{"other privilege error", bg, pgErr("42502"), core.FailRejected},
		{"a server's error counts even after the deadline", expired, pgErr("42P01"), core.FailRejected},
		{"a bare PgError", bg, &pgconn.PgError{Code: "53300"}, core.FailRejected},
		{"a server's answer counts even after the deadline", expired, pgErr("28P01"), core.FailAuth},
		{"refused", bg, fmt.Errorf("dial: %w", syscall.ECONNREFUSED), core.FailRefused},
		{"refused as net.OpError", bg, &net.OpError{Op: "dial", Net: "tcp",
			Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, core.FailRefused},
		{"deadline", bg, fmt.Errorf("read: %w", context.DeadlineExceeded), core.FailTimeout},
		{"context expired", expired, errors.New("whatever happened"), core.FailTimeout},
		{"net timeout", bg, &net.DNSError{Err: "i/o timeout", Name: "h", IsTimeout: true}, core.FailTimeout},
		{"unknown host", bg, fmt.Errorf("lookup: %w", &net.DNSError{Err: "no such host", Name: "nohost", IsNotFound: true}), core.FailConfig},
		{"bad address", bg, &net.AddrError{Err: "missing port in address", Addr: "h"}, core.FailConfig},
		{"anything else", bg, errors.New("unexpected EOF"), core.FailOther},
	} {
		require.Equal(t, tc.want, Classify(tc.ctx, tc.err), tc.name)
	}
}

func TestErrorText(t *testing.T) {
	fakepg.CleanEnv(t)
	require.Equal(t, "failed to connect to `user=u database=d`: server said: password=******** is wrong",
		conninfo.ErrorText(errors.New("failed to connect to `user=u database=d`:\n  server said: password=secret   is wrong"), nil))

	cfg, err := conninfo.Config("host=h user=u password=hunter22")
	require.NoError(t, err)
	require.Equal(t, "auth for ******** failed, ******** again",
		conninfo.ErrorText(errors.New("auth for hunter22 failed, hunter22 again"), cfg))

	// A password shorter than 4 characters is too likely to match other text.
	short, err := conninfo.Config("host=h user=u password=abc")
	require.NoError(t, err)
	require.Equal(t, "abc at host", conninfo.ErrorText(errors.New("abc at host"), short))

	// Whitespace is folded before the attempts are deduplicated.
	require.Equal(t, "failed `: dial refused", conninfo.ErrorText(errors.New("failed `: dial refused\n dial  refused"), nil))
}

func TestCheckPartner(t *testing.T) {
	self := core.Identity{SystemID: 7300000000000000001, StartTime: t0}
	other := core.Identity{SystemID: 7300000000000000001, StartTime: t0.Add(time.Minute)}
	master := core.PartnerFacts{Identity: other, SyncStandby: true, LSN: masterLSN}
	standby := core.PartnerFacts{InRecovery: true, Identity: other, LSN: -1}
	const (
		wrongCluster = "pg_keeper.partner_conninfo reaches a server of another cluster (system identifier 42, " +
			"this cluster's is 7300000000000000001): point it at this server's replication partner"
		itself      = "pg_keeper.partner_conninfo reaches this very server: point it at the other node"
		bothStandby = "the partner is in recovery too: both nodes are standbys, there is no master to watch"
		bothPrimary = "the partner is a primary too: both nodes are primaries of one cluster; keep the one promoted " +
			"last and rebuild the other as its standby (pg_rewind or pg_basebackup, standby.signal)"
	)
	with := func(f core.PartnerFacts, id core.Identity) core.PartnerFacts { f.Identity = id; return f }
	for _, tc := range []struct {
		name   string
		facts  core.PartnerFacts
		self   core.Identity
		mode   core.Mode
		class  core.FailureClass
		detail string
	}{
		{"standby watching its master", master, self, core.StandbyMode, core.FailOther, ""},
		{"master watching its standby", standby, self, core.MasterMode, core.FailOther, ""},
		{"another cluster, standby mode", with(master, core.Identity{SystemID: 42, StartTime: t0}), self, core.StandbyMode, core.FailWrongCluster, wrongCluster},
		{"another cluster, master mode", with(standby, core.Identity{SystemID: 42}), self, core.MasterMode, core.FailWrongCluster, wrongCluster},
		// The cluster is checked first: the same start time in another cluster is another server.
		{"another cluster with this start time", with(master, core.Identity{SystemID: 42, StartTime: t0}), self, core.MasterMode, core.FailWrongCluster, wrongCluster},
		{"this server as standby", with(standby, self), self, core.StandbyMode, core.FailSelf, itself},
		{"this server as master", with(master, self), self, core.MasterMode, core.FailSelf, itself},
		{"this server, same instant in another zone", with(master, core.Identity{SystemID: self.SystemID, StartTime: t0.In(time.FixedZone("X", 3600))}),
			self, core.StandbyMode, core.FailSelf, itself},
		{"both standbys", standby, self, core.StandbyMode, core.FailRecovery, bothStandby},
		{"both primaries", master, self, core.MasterMode, core.FailBothPrimary, bothPrimary},
		{"this server's start time unknown", master, core.Identity{SystemID: self.SystemID}, core.StandbyMode, core.FailOther, ""},
		{"this server's start time unknown, both primaries", master, core.Identity{SystemID: self.SystemID}, core.MasterMode, core.FailBothPrimary, bothPrimary},
		// Without this server's identity nothing is compared, not even the roles.
		{"no identity: another cluster", with(master, core.Identity{SystemID: 42}), core.Identity{}, core.StandbyMode, core.FailOther, ""},
		{"no identity: same start time", with(master, core.Identity{StartTime: t0}), core.Identity{StartTime: t0}, core.StandbyMode, core.FailOther, ""},
		{"no identity: both standbys", standby, core.Identity{}, core.StandbyMode, core.FailOther, ""},
		{"no identity: both primaries", master, core.Identity{}, core.MasterMode, core.FailOther, ""},
	} {
		class, detail := checkPartner(tc.facts, tc.self, tc.mode)
		require.Equal(t, tc.class, class, tc.name)
		require.Equal(t, tc.detail, detail, tc.name)
	}
}

// testReceiver is the WAL receiver name probeFake gives Probe: a standby's
// own name, which names its walsender on the master.
const testReceiver = "node2"

func probeFake(t *testing.T, srv *fakepg.Server, self core.Identity, mode core.Mode) core.ProbeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return Probe(ctx, fakepg.Config(t, srv.Port), self, mode, testReceiver)
}

// probeSQL is the heartbeat query as the partner receives it from Probe
// with receiverName: in master mode the name is always "".
func probeSQL(mode core.Mode, receiverName string) string {
	if mode == core.MasterMode {
		receiverName = ""
	}
	return fakepg.SimpleSQL(FactsSQL, receiverName)
}

func TestProbeGoodPartner(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, true, "50331744", "3")...)
	res := probeFake(t, srv, core.Identity{SystemID: 7300000000000000001, StartTime: t0}, core.StandbyMode)
	require.True(t, fakepg.StartTime.Equal(res.Partner.Identity.StartTime), "%v", res.Partner.Identity.StartTime)
	res.Partner.Identity.StartTime = fakepg.StartTime
	require.Equal(t, core.ProbeResult{OK: true, LocalLSN: -1, Partner: core.PartnerFacts{
		Identity:    core.Identity{SystemID: 7300000000000000001, StartTime: fakepg.StartTime},
		SyncMode:    true,
		SyncStandby: true,
		LSN:         0x3000060,
		Timeline:    3,
	}}, res)
	// One query per heartbeat, naming this standby's walsender.
	require.Equal(t, []string{probeSQL(core.StandbyMode, testReceiver)}, srv.Received(), "one query per heartbeat")
	require.Contains(t, srv.Received()[0], "WHERE application_name =  'node2' ")

	// A standby as seen from its master; a system identifier above 2^63
	// comes back as a negative bigint. It streams as "walreceiver": no
	// application_name in its primary_conninfo, no cluster_name.
	srv.Set(func(s *fakepg.Server) {
		s.Queries = nil
		s.Columns = fakepg.FactsRow(true, "-1", fakepg.StartText, false, "-1", "0")
	})
	res = probeFake(t, srv, core.Identity{SystemID: 1<<64 - 1, StartTime: t0}, core.MasterMode)
	res.Partner.Identity.StartTime = fakepg.StartTime
	require.Equal(t, core.ProbeResult{OK: true, LocalLSN: -1, Partner: core.PartnerFacts{
		InRecovery:   true,
		Identity:     core.Identity{SystemID: 1<<64 - 1, StartTime: fakepg.StartTime},
		LSN:          -1,
		ReceiverName: "walreceiver",
	}}, res)
	// A master has no WAL receiver: its query names none.
	require.Equal(t, []string{probeSQL(core.MasterMode, "")}, srv.Received())
	require.Contains(t, srv.Received()[0], "WHERE application_name =  '' ")
}

func TestProbeWrongPartner(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t)
	sameID := core.Identity{SystemID: 7300000000000000001, StartTime: t0}
	for _, tc := range []struct {
		name   string
		row    []fakepg.Column
		self   core.Identity
		mode   core.Mode
		class  core.FailureClass
		detail string
	}{
		{"another cluster", fakepg.FactsRow(false, "42", fakepg.StartText, true, "1", "1"), sameID, core.StandbyMode, core.FailWrongCluster,
			"pg_keeper.partner_conninfo reaches a server of another cluster (system identifier 42, " +
				"this cluster's is 7300000000000000001): point it at this server's replication partner"},
		{"this server", fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, false, "1", "1"),
			core.Identity{SystemID: 7300000000000000001, StartTime: fakepg.StartTime}, core.MasterMode, core.FailSelf,
			"pg_keeper.partner_conninfo reaches this very server: point it at the other node"},
		{"both standbys", fakepg.FactsRow(true, "7300000000000000001", fakepg.StartText, false, "-1", "0"), sameID, core.StandbyMode, core.FailRecovery,
			"the partner is in recovery too: both nodes are standbys, there is no master to watch"},
		{"both primaries", fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, false, "1", "1"), sameID, core.MasterMode, core.FailBothPrimary,
			"the partner is a primary too: both nodes are primaries of one cluster; keep the one promoted last and " +
				"rebuild the other as its standby (pg_rewind or pg_basebackup, standby.signal)"},
	} {
		srv.Set(func(s *fakepg.Server) { s.Columns = tc.row })
		res := probeFake(t, srv, tc.self, tc.mode)
		require.Equal(t, core.ProbeResult{Class: tc.class, Detail: tc.detail, LocalLSN: -1}, res, tc.name)
	}
}

func TestProbeServerErrors(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, true, "1", "1")...)
	head := fmt.Sprintf("failed to connect to `user=x database=y`: 127.0.0.1:%d (127.0.0.1): server error: ", srv.Port)
	for _, tc := range []struct {
		name       string
		startupErr *pgproto3.ErrorResponse
		queryErr   *pgproto3.ErrorResponse
		class      core.FailureClass
		detail     string
	}{
		{"starting up", &pgproto3.ErrorResponse{Severity: "FATAL", Code: "57P03", Message: "the database system is starting up"}, nil,
			core.FailStarting, head + "FATAL: the database system is starting up (SQLSTATE 57P03)"},
		{"bad password", &pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: "password authentication failed for user \"x\""}, nil,
			core.FailAuth, head + "FATAL: password authentication failed for user \"x\" (SQLSTATE 28P01)"},
		{"too many connections", &pgproto3.ErrorResponse{Severity: "FATAL", Code: "53300", Message: "sorry, too many clients already"}, nil,
			core.FailRejected, head + "FATAL: sorry, too many clients already (SQLSTATE 53300)"},
		{"heartbeat query fails", nil, &pgproto3.ErrorResponse{Severity: "ERROR", Code: "42501", Message: "permission denied for function pg_control_system"},
			core.FailAuth, "ERROR: permission denied for function pg_control_system (SQLSTATE 42501)"},
		{"heartbeat query rejected", nil, &pgproto3.ErrorResponse{Severity: "ERROR", Code: "42883", Message: "function pg_control_system() does not exist"},
			core.FailRejected, "ERROR: function pg_control_system() does not exist (SQLSTATE 42883)"},
		// 57P01 is also pg_terminate_backend(): a server that answers.
		{"terminated during the query", nil, &pgproto3.ErrorResponse{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"},
			core.FailRejected, "FATAL: terminating connection due to administrator command (SQLSTATE 57P01)"},
		{"crash shutdown during the query", nil, &pgproto3.ErrorResponse{Severity: "FATAL", Code: "57P02", Message: "terminating connection because of crash of another server process"},
			core.FailStarting, "FATAL: terminating connection because of crash of another server process (SQLSTATE 57P02)"},
	} {
		srv.Set(func(s *fakepg.Server) { s.StartupErr, s.QueryErr = tc.startupErr, tc.queryErr })
		res := probeFake(t, srv, core.Identity{}, core.StandbyMode)
		require.Equal(t, core.ProbeResult{Class: tc.class, Detail: tc.detail, LocalLSN: -1}, res, tc.name)
	}
}

func TestReplicationAliveAnswers(t *testing.T) {
	fakepg.CleanEnv(t)
	srv := fakepg.Start(t, fakepg.Col(fakepg.OIDBool, "t"), fakepg.Col(fakepg.OIDInt8, "50331648"), fakepg.Col(fakepg.OIDBool, "t"))
	ctx := context.Background()
	repl, err := ReplicationAlive(ctx, fakepg.Config(t, srv.Port), core.StandbyMode, "ignored on a standby", 1500*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, Replication{Alive: true, LSN: 0x3000000, Fresh: true}, repl)

	srv.Set(func(s *fakepg.Server) {
		s.Columns = []fakepg.Column{fakepg.Col(fakepg.OIDBool, "f"), fakepg.Col(fakepg.OIDInt8, "-1"), fakepg.Col(fakepg.OIDBool, "f")}
	})
	repl, err = ReplicationAlive(ctx, fakepg.Config(t, srv.Port), core.MasterMode, "node2", time.Second)
	require.NoError(t, err)
	require.Equal(t, Replication{LSN: -1}, repl)
	// On a standby the window is the query's argument, in seconds; on a
	// master the partner's walsender name.
	require.Equal(t, []string{fakepg.SimpleSQL(ReplicationAliveSQL[core.StandbyMode], "1.5"),
		fakepg.SimpleSQL(ReplicationAliveSQL[core.MasterMode], "node2")}, srv.Received())

	srv.Set(func(s *fakepg.Server) {
		s.QueryErr = &pgproto3.ErrorResponse{Severity: "ERROR", Code: "42501", Message: "permission denied"}
	})
	repl, err = ReplicationAlive(ctx, fakepg.Config(t, srv.Port), core.StandbyMode, "", 0)
	require.Equal(t, Replication{LSN: -1}, repl)
	require.EqualError(t, err, "ERROR: permission denied (SQLSTATE 42501)")
}

func TestReplicationAliveSQL(t *testing.T) {
	// Both return (alive, lsn): a standby its received position, a master
	// its partner's flush position.
	require.Len(t, ReplicationAliveSQL, 2)
	require.Contains(t, ReplicationAliveSQL[core.StandbyMode], "pg_stat_wal_receiver")
	require.Contains(t, ReplicationAliveSQL[core.StandbyMode], "coalesce((pg_last_wal_receive_lsn() - '0/0'::pg_lsn)::bigint, -1)")
	require.Contains(t, ReplicationAliveSQL[core.MasterMode], "pg_stat_get_wal_senders()")
	require.Contains(t, ReplicationAliveSQL[core.MasterMode], "coalesce(max((flush_lsn - '0/0'::pg_lsn)::bigint), -1)")
	// The window applies on a standby only, as a third column; 0 asks nothing.
	require.Contains(t, ReplicationAliveSQL[core.StandbyMode], "$1::float8 > 0 AND EXISTS")
	require.Contains(t, ReplicationAliveSQL[core.StandbyMode], "last_msg_receipt_time > now() - make_interval(secs => $1::float8)")
	require.NotContains(t, ReplicationAliveSQL[core.MasterMode], "last_msg_receipt_time")
}

func TestCheckPartnerTimelines(t *testing.T) {
	other := core.Identity{SystemID: 7300000000000000001, StartTime: t0.Add(time.Minute)}
	self := func(timeline int) core.Identity {
		return core.Identity{SystemID: 7300000000000000001, StartTime: t0, Timeline: timeline}
	}
	primary := func(timeline int) core.PartnerFacts {
		return core.PartnerFacts{Identity: other, LSN: masterLSN, Timeline: timeline}
	}
	standby := core.PartnerFacts{InRecovery: true, Identity: other, LSN: -1}
	const bothPrimary = "the partner is a primary too: both nodes are primaries of one cluster; keep the one promoted " +
		"last and rebuild the other as its standby (pg_rewind or pg_basebackup, standby.signal)"
	superseded := func(theirs, ours int) string {
		return fmt.Sprintf("the partner is a primary promoted after this server (its timeline is %d, "+
			"this server's %d): this server is the old master", theirs, ours)
	}
	older := func(theirs, ours int) string {
		return fmt.Sprintf("the partner is a primary too, on an older timeline (%d, this server's %d): "+
			"it is an old master that came back; its own keeper fences it", theirs, ours)
	}
	for _, tc := range []struct {
		name   string
		facts  core.PartnerFacts
		self   core.Identity
		mode   core.Mode
		class  core.FailureClass
		detail string
	}{
		{"partner on the next timeline", primary(3), self(2), core.MasterMode, core.FailSuperseded, superseded(3, 2)},
		{"partner many timelines ahead", primary(17), self(1), core.MasterMode, core.FailSuperseded, superseded(17, 1)},
		{"partner on the same timeline", primary(2), self(2), core.MasterMode, core.FailBothPrimary, bothPrimary},
		{"partner on an older timeline: it is the old master", primary(2), self(3), core.MasterMode, core.FailOlderPrimary, older(2, 3)},
		{"partner many timelines behind", primary(1), self(17), core.MasterMode, core.FailOlderPrimary, older(1, 17)},
		{"this server's timeline unknown", primary(3), self(0), core.MasterMode, core.FailBothPrimary, bothPrimary},
		{"partner's timeline unknown", primary(0), self(2), core.MasterMode, core.FailBothPrimary, bothPrimary},
		{"a negative timeline of this server counts as unknown", primary(3), self(-1), core.MasterMode, core.FailBothPrimary, bothPrimary},
		// A standby is never superseded, whatever the timelines say.
		{"standby with its master ahead", primary(3), self(2), core.StandbyMode, core.FailOther, ""},
		// A partner in recovery is a standby, even with a timeline set.
		{"standby partner with a timeline", core.PartnerFacts{InRecovery: true, Identity: other, LSN: -1, Timeline: 9},
			self(2), core.MasterMode, core.FailOther, ""},
		{"standby partner", standby, self(2), core.MasterMode, core.FailOther, ""},
		// Identity comes first: another cluster or this very server is no successor.
		{"another cluster ahead", core.PartnerFacts{Identity: core.Identity{SystemID: 42}, Timeline: 9}, self(2), core.MasterMode, core.FailWrongCluster,
			"pg_keeper.partner_conninfo reaches a server of another cluster (system identifier 42, " +
				"this cluster's is 7300000000000000001): point it at this server's replication partner"},
		{"this server ahead of itself", core.PartnerFacts{Identity: core.Identity{SystemID: 7300000000000000001, StartTime: t0}, Timeline: 9},
			self(2), core.MasterMode, core.FailSelf, "pg_keeper.partner_conninfo reaches this very server: point it at the other node"},
		{"no identity", primary(3), core.Identity{Timeline: 2}, core.MasterMode, core.FailOther, ""},
	} {
		class, detail := checkPartner(tc.facts, tc.self, tc.mode)
		require.Equal(t, tc.class, class, tc.name)
		require.Equal(t, tc.detail, detail, tc.name)
	}
}

// TestProbeTimelineColumn runs the partner's timeline, the twelfth column
// of FactsSQL, through Probe: it is scanned, and a master superseded by
// its partner is told so.
func TestProbeTimelineColumn(t *testing.T) {
	fakepg.CleanEnv(t)
	require.Contains(t, FactsSQL, "CASE WHEN pg_is_in_recovery() THEN 0 ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END")
	// The timeline comes right after the LSN and before the application_name tokens.
	require.Contains(t, FactsSQL, "::bigint END,\n\tCASE WHEN pg_is_in_recovery() THEN 0 ELSE "+TimelineSQL+" END,\n\t(SELECT m[1] FROM regexp_matches(r.conninfo, ",
		"the timeline is the twelfth column")
	// libpq takes the last of a repeated key=value application_name: so does the heartbeat.
	require.Contains(t, FactsSQL, "(SELECT m[1] FROM regexp_matches(r.conninfo, "+sqlRegexp(conninfo.AppNameKV)+", 'g') WITH ORDINALITY AS a(m, n)\n\t\tORDER BY n DESC LIMIT 1),")
	srv := fakepg.Start(t)
	self := core.Identity{SystemID: 7300000000000000001, StartTime: t0, Timeline: 2}
	for _, tc := range []struct {
		name     string
		row      []fakepg.Column
		mode     core.Mode
		want     core.ProbeResult
		timeline int // of the partner, on a good heartbeat
	}{
		{"new primary", fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, false, "50331744", "3"), core.MasterMode,
			core.ProbeResult{Class: core.FailSuperseded, LocalLSN: -1, Detail: "the partner is a primary promoted after this server " +
				"(its timeline is 3, this server's 2): this server is the old master"}, 0},
		{"negative timeline, as bit(32)::int gives past 2^31", fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, false, "50331744", "-2"), core.MasterMode,
			core.ProbeResult{Class: core.FailBothPrimary, LocalLSN: -1, Detail: "the partner is a primary too: both nodes are primaries of one cluster; " +
				"keep the one promoted last and rebuild the other as its standby (pg_rewind or pg_basebackup, standby.signal)"}, 0},
		{"old primary", fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, false, "50331744", "1"), core.MasterMode,
			core.ProbeResult{Class: core.FailOlderPrimary, LocalLSN: -1, Detail: "the partner is a primary too, on an older timeline (1, this server's 2): " +
				"it is an old master that came back; its own keeper fences it"}, 0},
		{"standby", fakepg.FactsRow(true, "7300000000000000001", fakepg.StartText, false, "-1", "0"), core.MasterMode,
			core.ProbeResult{OK: true, LocalLSN: -1}, 0},
		{"master seen from its standby", fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, true, "50331744", "5"), core.StandbyMode,
			core.ProbeResult{OK: true, LocalLSN: -1}, 5},
	} {
		srv.Set(func(s *fakepg.Server) { s.Columns = tc.row })
		res := probeFake(t, srv, self, tc.mode)
		if tc.want.OK {
			require.True(t, res.OK, "%s: %+v", tc.name, res)
			require.Equal(t, tc.timeline, res.Partner.Timeline, tc.name)
			continue
		}
		require.Equal(t, tc.want, res, tc.name)
	}

	// An answer with fewer columns (as the six of old, the fifteen before
	// the maintenance column, the sixteen before the keepalives column)
	// fails the heartbeat (class other).
	for _, n := range []int{6, 15, 16} {
		srv.Set(func(s *fakepg.Server) {
			s.Columns = fakepg.FactsRow(true, "7300000000000000001", fakepg.StartText, false, "-1", "0")[:n]
		})
		res := probeFake(t, srv, self, core.MasterMode)
		require.Equal(t, core.ProbeResult{Class: core.FailOther, LocalLSN: -1,
			Detail: fmt.Sprintf("number of field descriptions must equal number of destinations, got %d and 19", n)}, res)
	}
}

// The sixteenth column says whether the partner is in maintenance
// (pg_keeper.maintenance = on); it is reported, never a failure.
func TestProbePartnerInMaintenance(t *testing.T) {
	fakepg.CleanEnv(t)
	self := core.Identity{SystemID: 7300000000000000001, StartTime: t0, Timeline: 3}
	srv := fakepg.Start(t, fakepg.InMaintenance(fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, true, "50331744", "3"))...)
	res := probeFake(t, srv, self, core.StandbyMode)
	require.True(t, res.OK, "%+v", res)
	require.True(t, res.Partner.Maintenance)
	require.True(t, res.Partner.SyncStandby, "the other columns are read as before")
	require.Equal(t, int64(0x3000060), res.Partner.LSN)

	// A standby partner in maintenance, seen from its master.
	srv.Set(func(s *fakepg.Server) {
		s.Columns = fakepg.Facts{InRecovery: true, SysID: "7300000000000000001", StartTime: fakepg.StartText,
			LSN: "-1", Timeline: "0", KV: fakepg.Null, URI: fakepg.Null, ClusterName: "", Maintenance: true}.Columns()
	})
	res = probeFake(t, srv, self, core.MasterMode)
	require.True(t, res.OK, "%+v", res)
	require.True(t, res.Partner.Maintenance)
	require.True(t, res.Partner.InRecovery)

	// Not in maintenance: false, as FactsRow says by default.
	srv.Set(func(s *fakepg.Server) {
		s.Columns = fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, true, "50331744", "3")
	})
	res = probeFake(t, srv, self, core.StandbyMode)
	require.True(t, res.OK, "%+v", res)
	require.False(t, res.Partner.Maintenance)

	// The column is a boolean comparison in SQL: NULL never comes back,
	// but the query must name the GUC with missing_ok so a server without
	// pg_keeper loaded answers 'off'.
	require.Contains(t, FactsSQL, "coalesce(current_setting('pg_keeper.maintenance', true), 'off') = 'on'")
}

// The seventeenth column says whether the partner's keeper writes
// keepalive records (docs/witness.md): one of this version does.
func TestProbePartnerKeepalives(t *testing.T) {
	fakepg.CleanEnv(t)
	self := core.Identity{SystemID: 7300000000000000001, StartTime: t0, Timeline: 3}
	srv := fakepg.Start(t, fakepg.Facts{InRecovery: false, SysID: "7300000000000000001", StartTime: fakepg.StartText,
		LSN: "50331744", Timeline: "3", KV: fakepg.Null, URI: fakepg.Null, Keepalives: true}.Columns()...)
	res := probeFake(t, srv, self, core.StandbyMode)
	require.True(t, res.OK, "%+v", res)
	require.True(t, res.Partner.Keepalives)

	srv.Set(func(s *fakepg.Server) {
		s.Columns = fakepg.FactsRow(false, "7300000000000000001", fakepg.StartText, true, "50331744", "3")
	})
	res = probeFake(t, srv, self, core.StandbyMode)
	require.True(t, res.OK, "%+v", res)
	require.False(t, res.Partner.Keepalives, "an older keeper: replication counts as before")
	// A GUC of this version that any role may read: missing_ok, so that an
	// older partner answers false rather than an error.
	require.Contains(t, FactsSQL, "current_setting('pg_keeper.fence_command_timeout', true) IS NOT NULL")
}
