package keeper

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Probe runs one heartbeat: connect to the partner and run SELECT 1, all
// within ctx's deadline. A fresh session each time tests the whole path and
// leaves nothing open that would hold up the partner's smart shutdown.
func Probe(ctx context.Context, partner *pgx.ConnConfig) ProbeResult {
	conn, err := pgx.ConnectConfig(ctx, partner)
	if err != nil {
		return failed(ctx, err, partner)
	}
	defer closeConn(conn)
	if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
		return failed(ctx, err, partner)
	}
	return ProbeResult{OK: true}
}

// replicationAliveSQL tells, on this server, whether streaming replication
// with the partner still works. A connection that has not heard from its
// peer within the server's own replication timeout counts as dead: the
// server is about to drop it anyway.
var replicationAliveSQL = map[Mode]string{
	StandbyMode: `SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver
		WHERE status = 'streaming'
		  AND last_msg_receipt_time > now() - current_setting('wal_receiver_timeout')::interval)`,
	MasterMode: `SELECT EXISTS (SELECT 1 FROM pg_stat_replication
		WHERE state = 'streaming'
		  AND reply_time > now() - current_setting('wal_sender_timeout')::interval)`,
}

// ReplicationAlive asks the local server whether it still streams with the
// partner. An error counts as not alive, as the C pg_keeper assumed.
func ReplicationAlive(ctx context.Context, local *pgx.ConnConfig, mode Mode) (bool, error) {
	if local == nil {
		return false, errors.New("pg_keeper.my_conninfo is unusable")
	}
	conn, err := pgx.ConnectConfig(ctx, local)
	if err != nil {
		return false, err
	}
	defer closeConn(conn)
	var alive bool
	err = conn.QueryRow(ctx, replicationAliveSQL[mode]).Scan(&alive)
	return alive, err
}

// StandbyCaughtUp tells, on a master, whether a standby streams and has
// caught up: PostgreSQL moves a walsender from 'catchup' to 'streaming'
// once the standby has everything, and only then can it be synchronous.
func StandbyCaughtUp(ctx context.Context, local *pgx.ConnConfig) (bool, error) {
	conn, err := connectLocal(ctx, local)
	if err != nil {
		return false, err
	}
	defer closeConn(conn)
	var ok bool
	err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_stat_replication WHERE state = 'streaming')").Scan(&ok)
	return ok, err
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

func failed(ctx context.Context, err error, cfg *pgx.ConnConfig) ProbeResult {
	return ProbeResult{Class: Classify(ctx, err), Detail: errorText(err, cfg)}
}

// Classify names the kind of a heartbeat failure.
func Classify(ctx context.Context, err error) FailureClass {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "57P03" || pgErr.Code == "57P01" || pgErr.Code == "57P02":
			return FailStarting
		case strings.HasPrefix(pgErr.Code, "28"): // invalid authorization
			return FailAuth
		case pgErr.Code == "3D000" || pgErr.Code == "42501": // no such database, no privilege
			return FailAuth
		}
		return FailOther
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return FailRefused
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return FailTimeout
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return FailTimeout
	}
	var ae *net.AddrError
	var dnsErr *net.DNSError
	if errors.As(err, &ae) || errors.As(err, &dnsErr) {
		return FailConfig
	}
	return FailOther
}

// errorText is err as one log-safe line.
func errorText(err error, cfg *pgx.ConnConfig) string {
	s := MaskPassword(err.Error())
	if cfg != nil && len(cfg.Password) >= 4 {
		s = strings.ReplaceAll(s, cfg.Password, "********")
	}
	return dedupeAttempts(strings.Join(strings.Fields(s), " "))
}

// dedupeAttempts shortens "...: X X" to "...: X". With sslmode=prefer (the
// default, as in libpq) pgx dials once with TLS and once without, and a
// refused connection then reports the same error twice.
func dedupeAttempts(s string) string {
	i := strings.Index(s, "`: ")
	if i < 0 {
		return s
	}
	head, rest := s[:i+3], s[i+3:]
	if n := len(rest); n%2 == 1 && rest[n/2] == ' ' && rest[:n/2] == rest[n/2+1:] {
		return head + rest[:n/2]
	}
	return s
}
