// Package probe runs the heartbeat: one short query that the partner
// answers with what it is (role, identity, timeline, position, whether its
// synchronous replication is this standby's), classifies why a heartbeat
// failed, and asks this server whether replication with the partner still
// works. It decides nothing: the core weighs what it reports.
package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
	"github.com/pg-keeper/pg_keeper/keeper/core"
)

// FactsSQL is the heartbeat: one query that proves the partner answers
// (what SELECT 1 did in the C pg_keeper) and says who and what it is. $1 is
// this node's WAL receiver name when it is a standby (see syncstate.go).
// pg_stat_replication's sync_state needs a superuser or pg_monitor; without
// it the partner never looks synchronous and the standby will not promote.
// A standby partner sends the application_name of its primary_conninfo,
// never the rest of it (a password may be there).
var FactsSQL = `SELECT pg_is_in_recovery(),
	(SELECT system_identifier FROM pg_control_system()),
	pg_postmaster_start_time(),
	current_setting('synchronous_standby_names'),
	w.mine, w.mine_sync, w.mine_quorum, w.others_potential, w.others_sync, w.quorum,
	CASE WHEN pg_is_in_recovery() THEN -1
	     ELSE (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint END,
	CASE WHEN pg_is_in_recovery() THEN 0 ELSE ` + TimelineSQL + ` END,
	(SELECT m[1] FROM regexp_matches(r.conninfo, ` + sqlRegexp(conninfo.AppNameKV) + `, 'g') WITH ORDINALITY AS a(m, n)
		ORDER BY n DESC LIMIT 1),
	(regexp_match(r.conninfo, ` + sqlRegexp(conninfo.AppNameURI) + `))[1],
	r.cluster_name,
	coalesce(current_setting('pg_keeper.maintenance', true), 'off') = 'on',
	current_setting('pg_keeper.fence_command_timeout', true) IS NOT NULL,
	coalesce(current_setting('pg_keeper.server_state', true), '') = 'stopping',
	pg_conf_load_time()
FROM (SELECT count(*) FILTER (WHERE application_name = $1) AS mine,
	count(*) FILTER (WHERE application_name = $1 AND sync_state = 'sync') AS mine_sync,
	count(*) FILTER (WHERE application_name = $1 AND sync_state = 'quorum') AS mine_quorum,
	count(*) FILTER (WHERE application_name <> $1 AND sync_state = 'potential') AS others_potential,
	count(*) FILTER (WHERE application_name <> $1 AND sync_state IN ('sync', 'quorum')) AS others_sync,
	count(*) FILTER (WHERE sync_state = 'quorum') AS quorum
	FROM ` + WalSenders + `) w,
	(SELECT CASE WHEN pg_is_in_recovery() AND pg_has_role('pg_read_all_settings', 'USAGE')
		THEN current_setting('primary_conninfo') END AS conninfo,
		CASE WHEN pg_has_role('pg_read_all_settings', 'USAGE')
		THEN current_setting('cluster_name') END AS cluster_name) r`

// WalSenders is pg_stat_replication with the columns the heartbeat reads:
// the view joins more than it needs (pg_authid, every column of every
// backend), and its planning alone made it most of what a heartbeat cost
// the partner at short intervals. The functions check the caller's
// privileges as the view does.
const WalSenders = `(SELECT a.application_name, w.state, w.sync_state, w.flush_lsn, w.reply_time
	FROM pg_stat_get_wal_senders() w JOIN pg_stat_get_activity(NULL) a ON a.pid = w.pid) r`

// sqlRegexp quotes a pattern as a SQL string literal.
func sqlRegexp(p string) string { return "'" + strings.ReplaceAll(p, "'", "''") + "'" }

// Probe runs one heartbeat within ctx's deadline on a fresh session, which
// it closes.
func Probe(ctx context.Context, partner *pgx.ConnConfig, self core.Identity, mode core.Mode, receiverName string) core.ProbeResult {
	return ProbeOn(ctx, nil, partner, self, mode, receiverName)
}

// ProbeOn runs one heartbeat within ctx's deadline on sess, kept open from
// one heartbeat to the next (nil: a fresh session). A kept session that
// fails is replaced by a fresh one within the deadline (Session.run), so a
// heartbeat fails only where a fresh session would. It is closed when the
// partner says it is shutting down (pg_keeper.server_state), and the next
// heartbeats open fresh sessions, which a stopping server refuses: what the
// core weighs is unchanged. It is closed too when the partner reloaded its
// configuration since the session began: pg_hba.conf applies to new
// sessions only, and the next heartbeat must meet what it now says. A
// partner that answers but is not the partner this node needs (another
// cluster, this server, a second primary) is a failure too, of a class
// that says the partner answered.
func ProbeOn(ctx context.Context, sess *Session, partner *pgx.ConnConfig, self core.Identity, mode core.Mode, receiverName string) core.ProbeResult {
	var res core.ProbeResult
	err := sess.run(ctx, partner, pgx.ConnectConfig, func(conn *pgx.Conn) (bool, error) {
		f, stopping, confLoaded, err := queryFacts(ctx, conn, mode, receiverName)
		if err != nil {
			return false, err
		}
		reloaded := sess.reloaded(confLoaded)
		res = core.ProbeResult{OK: true, Partner: f, LocalLSN: -1}
		if class, detail := checkPartner(f, self, mode); class != core.FailOther {
			res = core.ProbeResult{Class: class, Detail: detail, LocalLSN: -1}
		}
		_, encrypted := conn.PgConn().Conn().(*tls.Conn)
		res.TLSRefused = partner.TLSConfig != nil && !encrypted
		return res.OK && !stopping && !reloaded, nil
	})
	if err != nil {
		return failed(ctx, err, partner)
	}
	return res
}

// queryFacts runs FactsSQL; stopping: the partner is shutting down;
// confLoaded: when it last loaded its configuration files.
func queryFacts(ctx context.Context, conn *pgx.Conn, mode core.Mode, receiverName string) (f core.PartnerFacts, stopping bool, confLoaded time.Time, err error) {
	var sysid int64
	var names string
	var w walsenderCounts
	var kv, uri *string
	var cluster *string // NULL: the heartbeat role may not read primary_conninfo
	if mode == core.MasterMode {
		receiverName = "" // a master has no WAL receiver; its partner's name comes back
	}
	err = conn.QueryRow(ctx, FactsSQL, receiverName).Scan(&f.InRecovery, &sysid, &f.Identity.StartTime, &names,
		&w.Mine, &w.MineSync, &w.MineQuorum, &w.OthersPotential, &w.OthersSync, &w.Quorum,
		&f.LSN, &f.Timeline, &kv, &uri, &cluster, &f.Maintenance, &f.Keepalives, &stopping, &confLoaded)
	if err != nil {
		return f, false, confLoaded, err
	}
	f.Identity.SystemID = uint64(sysid)
	f.SyncMode = strings.TrimSpace(names) != ""
	f.SyncStandby, f.SyncElsewhere = syncWithMe(names, w)
	// Unreadable, the name stays unknown (""), and the master looks at
	// every walsender as before, rather than at a name that may be wrong.
	if f.InRecovery && cluster != nil {
		f.ReceiverName = conninfo.ReceiverName(kv, uri, *cluster)
	}
	return f, stopping, confLoaded, nil
}

// checkPartner refuses a partner that answers but cannot be this node's
// partner; FailOther means it can.
func checkPartner(f core.PartnerFacts, self core.Identity, mode core.Mode) (core.FailureClass, string) {
	switch {
	case self.SystemID == 0:
		return core.FailOther, "" // this server's identity is unknown: nothing to compare
	case f.Identity.SystemID != self.SystemID:
		return core.FailWrongCluster, fmt.Sprintf("pg_keeper.partner_conninfo reaches a server of another cluster "+
			"(system identifier %d, this cluster's is %d): point it at this server's replication partner",
			f.Identity.SystemID, self.SystemID)
	case f.Identity.StartTime.Equal(self.StartTime):
		return core.FailSelf, "pg_keeper.partner_conninfo reaches this very server: point it at the other node"
	case mode == core.StandbyMode && f.InRecovery:
		return core.FailRecovery, "the partner is in recovery too: both nodes are standbys, there is no master to watch"
	case mode == core.MasterMode && !f.InRecovery && self.Timeline > 0 && f.Timeline > self.Timeline:
		return core.FailSuperseded, fmt.Sprintf("the partner is a primary promoted after this server "+
			"(its timeline is %d, this server's %d): this server is the old master", f.Timeline, self.Timeline)
	case mode == core.MasterMode && !f.InRecovery && self.Timeline > 0 && f.Timeline > 0 && f.Timeline < self.Timeline:
		return core.FailOlderPrimary, fmt.Sprintf("the partner is a primary too, on an older timeline (%d, this server's %d): "+
			"it is an old master that came back; its own keeper fences it", f.Timeline, self.Timeline)
	case mode == core.MasterMode && !f.InRecovery:
		return core.FailBothPrimary, "the partner is a primary too: both nodes are primaries of one cluster; " +
			"keep the one promoted last and rebuild the other as its standby (pg_rewind or pg_basebackup, standby.signal)"
	}
	return core.FailOther, ""
}

// ReplicationAliveSQL tells, on this server, whether the replication
// connection with the partner is still there, and its position: on a
// standby the WAL it has received and flushed, on a master the flush
// position the partner's walsender reported ($1 names it, "": any; -1:
// none streams). Each server drops a replication connection that has been
// silent for its wal_receiver_timeout / wal_sender_timeout, so one that is
// there streams; a timeout of 0 never drops it, and then a connection
// silent for a minute counts as gone. A standby also says whether its WAL
// receiver received a message within $1 seconds (the freshness window,
// docs/witness.md; 0: not asked); a master's freshness is weighed by the
// core from the position, by its own clock.
var ReplicationAliveSQL = map[core.Mode]string{
	core.StandbyMode: `SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver
		WHERE status = 'streaming'
		  AND last_msg_receipt_time > now() - coalesce(nullif(current_setting('wal_receiver_timeout')::interval, '0'), '1min')),
		coalesce((pg_last_wal_receive_lsn() - '0/0'::pg_lsn)::bigint, -1),
		$1::float8 > 0 AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver
		WHERE status = 'streaming' AND last_msg_receipt_time > now() - make_interval(secs => $1::float8))`,
	core.MasterMode: `SELECT coalesce(bool_or(current_setting('wal_sender_timeout')::interval > '0' OR reply_time > now() - '1min'::interval), false),
		coalesce(max((flush_lsn - '0/0'::pg_lsn)::bigint), -1), false
		FROM ` + WalSenders + ` WHERE state = 'streaming' AND ($1 = '' OR application_name = $1)`,
}

// Replication is what ReplicationAlive finds.
type Replication struct {
	Alive bool // the connection is there
	// LSN: on a standby the WAL received and flushed, on a master the
	// partner's walsender's flush position; -1 when unknown.
	LSN int64
	// Fresh: on a standby asked with a window, it received a message
	// within it.
	Fresh bool
}

// ReplicationAlive asks the local server about replication with the
// partner (see ReplicationAliveSQL; window applies on a standby). An error
// counts as not alive, as the C pg_keeper assumed.
func ReplicationAlive(ctx context.Context, local *pgx.ConnConfig, mode core.Mode, partnerName string, window time.Duration) (Replication, error) {
	return (*Local)(nil).ReplicationAlive(ctx, local, mode, partnerName, window)
}

// Local is the keeper's session with its own server, kept open from one
// heartbeat to the next like the partner's (Session), and closed once the
// server is shutting down (DataDir's postmaster.pid says so): a smart
// shutdown waits for it.
type Local struct {
	Session
	DataDir string
}

// query runs q on the kept local session (nil: a fresh one).
func (l *Local) query(ctx context.Context, local *pgx.ConnConfig, q func(*pgx.Conn) error) error {
	var sess *Session
	if l != nil {
		sess = &l.Session
	}
	return sess.run(ctx, local, conninfo.ConnectLocal, func(conn *pgx.Conn) (bool, error) {
		if err := q(conn); err != nil {
			return false, err
		}
		return l != nil && !ServerStopping(l.DataDir), nil
	})
}

// ReplicationAlive is the package's ReplicationAlive on the kept session.
func (l *Local) ReplicationAlive(ctx context.Context, local *pgx.ConnConfig, mode core.Mode, partnerName string, window time.Duration) (Replication, error) {
	none := Replication{LSN: -1}
	arg := any(window.Seconds())
	if mode == core.MasterMode {
		arg = partnerName
	}
	var r Replication
	err := l.query(ctx, local, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, ReplicationAliveSQL[mode], arg).Scan(&r.Alive, &r.LSN, &r.Fresh)
	})
	if err != nil {
		return none, err
	}
	return r, nil
}

// StandbyCaughtUp tells, on a master, whether the partner's walsender
// (partnerName; "": any) streams and has caught up: PostgreSQL moves a
// walsender from 'catchup' to 'streaming' once the standby has everything,
// and only then can it be synchronous. flush is the position it reported
// (-1: none streams), for the core's freshness mark.
func StandbyCaughtUp(ctx context.Context, local *pgx.ConnConfig, partnerName string) (caughtUp bool, flush int64, err error) {
	return (*Local)(nil).StandbyCaughtUp(ctx, local, partnerName)
}

// StandbyCaughtUp is the package's StandbyCaughtUp on the kept session.
func (l *Local) StandbyCaughtUp(ctx context.Context, local *pgx.ConnConfig, partnerName string) (caughtUp bool, flush int64, err error) {
	err = l.query(ctx, local, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, CaughtUpSQL, partnerName).Scan(&caughtUp, &flush)
	})
	if err != nil {
		return false, -1, err
	}
	return caughtUp, flush, nil
}

const CaughtUpSQL = `SELECT count(*) > 0, coalesce(max((flush_lsn - '0/0'::pg_lsn)::bigint), -1)
	FROM ` + WalSenders + ` WHERE state = 'streaming' AND ($1 = '' OR application_name = $1)`

func failed(ctx context.Context, err error, cfg *pgx.ConnConfig) core.ProbeResult {
	return core.ProbeResult{Class: Classify(ctx, err), Detail: conninfo.ErrorText(err, cfg), LocalLSN: -1}
}

// Classify names the kind of a heartbeat failure.
func Classify(ctx context.Context, err error) core.FailureClass {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		// 57P01 (admin_shutdown) is also what pg_terminate_backend() sends:
		// a server that says it is alive. A stopping server refuses the next
		// session with 57P03, or not at all.
		case pgErr.Code == "57P03" || pgErr.Code == "57P02":
			return core.FailStarting
		case strings.HasPrefix(pgErr.Code, "28"): // invalid authorization
			return core.FailAuth
		case pgErr.Code == "3D000" || pgErr.Code == "42501": // no such database, no privilege
			return core.FailAuth
		}
		return core.FailRejected
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return core.FailRefused
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return core.FailTimeout
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return core.FailTimeout
	}
	var ae *net.AddrError
	var dnsErr *net.DNSError
	if errors.As(err, &ae) || errors.As(err, &dnsErr) {
		return core.FailConfig
	}
	return core.FailOther
}

// TimelineSQL is the timeline a primary writes WAL on, read from its
// current WAL file name (pg_control_checkpoint lags until the first
// checkpoint after a promotion).
const TimelineSQL = `('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int`
