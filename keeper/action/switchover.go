package action

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
	"github.com/pg-keeper/pg_keeper/keeper/core"
)

// SwitchoverMaxLag is how far behind, in bytes of WAL not yet replayed, a
// standby may be and still be handed the primary's role: its replay lag
// is part of the write pause, and it must end within seconds.
const SwitchoverMaxLag = 16 << 20

// flushWait bounds the wait, with writes refused, for the standby to flush
// the primary's last WAL: a standby that cannot keep up in that time calls
// the switchover off, and writes resume.
var flushWait = 10 * time.Second

// walsenderSQL describes the partner's walsender ($1; "": any): whether
// it streams, how far behind its replay and flush are.
const walsenderSQL = `SELECT count(*),
	coalesce(max((pg_current_wal_lsn() - replay_lsn)::bigint), -1),
	coalesce(bool_or(sync_state IN ('sync', 'quorum')), false),
	current_setting('synchronous_standby_names')
FROM pg_stat_replication WHERE state = 'streaming' AND ($1 = '' OR application_name = $1)`

// PrepareSwitchover checks that the standby streams and is close behind,
// then runs a CHECKPOINT while writes still go on, so that the one the
// shutdown writes, with writes refused, is short.
func PrepareSwitchover(ctx context.Context, local, partner *pgx.ConnConfig, partnerName string) (string, error) {
	// The standby's keeper is asked with writes refused: find out now,
	// while they go on, whether it can be asked at all.
	if err := takeoverUsable(ctx, partner); err != nil {
		return "", fmt.Errorf("the standby cannot be asked to take over: %w", err)
	}
	conn, err := conninfo.ConnectLocal(ctx, local)
	if err != nil {
		return "", err
	}
	defer conninfo.Close(conn)
	var n int
	var lag int64
	var sync bool
	var names string
	if err := conn.QueryRow(ctx, walsenderSQL, partnerName).Scan(&n, &lag, &sync, &names); err != nil {
		return "", err
	}
	switch {
	case n == 0:
		return "", errors.New("no walsender streams to the standby")
	case n > 1:
		return "", errors.New("more than one walsender streams under the standby's name: which one is the partner is unclear")
	case lag < 0 || lag > SwitchoverMaxLag:
		return "", fmt.Errorf("the standby is %d bytes behind in replay (at most %d): wait until it has caught up", lag, SwitchoverMaxLag)
	case names != "" && !sync:
		return "", fmt.Errorf("the standby is not synchronous (synchronous_standby_names = '%s')", names)
	}
	start := time.Now()
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return "", fmt.Errorf("CHECKPOINT failed: %w", err)
	}
	return fmt.Sprintf("the standby streams %d bytes behind; CHECKPOINT took %d ms", lag, time.Since(start).Milliseconds()), nil
}

// HandOver runs with writes refused: it waits until the standby has
// flushed all WAL, tells the standby's keeper to take over once this server
// has stopped, and leaves the helper that restarts this server as the new
// primary's standby. An error means the standby was told the switchover is
// off, or never heard of it: writes may resume. Once the standby may be
// taking over, there is no way back: when it cannot be told the switchover
// is off, this server stops all the same (nil error), rather than risk two
// primaries.
func HandOver(ctx context.Context, local, partner *pgx.ConnConfig, partnerName string, plan RestartPlan) (string, error) {
	conn, err := conninfo.ConnectLocal(ctx, local)
	if err != nil {
		return "", err
	}
	defer conninfo.Close(conn)
	start := time.Now()
	last, err := flushedEverything(ctx, conn, partnerName)
	if err != nil {
		return "", err
	}
	flushed := time.Since(start)
	if err := askPartner(ctx, partner, "SELECT pg_keeper._takeover($1)", core.FormatLSN(last)); err != nil {
		err = fmt.Errorf("the standby's keeper did not agree to take over: %w", err)
		if refusedForSure(err) {
			return "", err
		}
		// The answer may be lost while the standby took it: it must be
		// told the switchover is off before writes resume here.
		return callOff(ctx, partner, plan, err)
	}
	if err := plan.Start(); err != nil {
		detail, cerr := callOff(ctx, partner, RestartPlan{}, err)
		if cerr != nil {
			return "", cerr
		}
		return detail + "; no helper: start this server as a standby by hand", nil
	}
	return fmt.Sprintf("the standby flushed up to %s in %d ms and takes over once this server has stopped",
		core.FormatLSN(last), flushed.Milliseconds()), nil
}

// refusedForSure: the standby's keeper answered no, or never took the
// request (bgworker/request.c says so): it is not taking over.
func refusedForSure(err error) bool {
	var ns notSent
	if errors.As(err, &ns) {
		return true
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "55006", // another request under way
		"42883", "3F000", // no extension there
		"42501": // not allowed to ask
		return true
	}
	return strings.HasPrefix(pgErr.Message, "takeover refused") || strings.Contains(pgErr.Detail, "did not take the request") ||
		pgErr.Message == "the pg_keeper worker is not running" || pgErr.Message == "pg_keeper is not running on this server"
}

// callOff tells the standby the switchover is off, a few times if need be.
// Told, it returns cause: writes may resume here. When the standby answers
// that it is promoting already, or cannot be reached, this server must
// stop: the helper in plan (if any) is started and the error is nil.
func callOff(ctx context.Context, partner *pgx.ConnConfig, plan RestartPlan, cause error) (string, error) {
	var err error
	// The takeover request whose answer was lost may hold the standby's
	// slot until it expires (15 s): "another request" is worth waiting for.
	deadline := time.Now().Add(20 * time.Second)
	for try := 0; ; try++ {
		if try > 0 {
			time.Sleep(time.Second)
		}
		if err = askPartner(context.WithoutCancel(ctx), partner, "SELECT pg_keeper._takeover_cancel()"); err == nil {
			return "", cause
		}
		var pgErr *pgconn.PgError
		busy := errors.As(err, &pgErr) && pgErr.Code == "55006"
		if strings.Contains(err.Error(), "too late to call the takeover off") || (try >= 1 && !busy) || time.Now().After(deadline) {
			break
		}
	}
	detail := fmt.Sprintf("%v; the standby may be taking over (calling it off failed: %v): stopping this server rather than risk two primaries", cause, err)
	if plan.Task != "" {
		if serr := plan.Start(); serr != nil {
			detail += fmt.Sprintf("; the helper could not start (%v)", serr)
		}
	}
	return detail, nil
}

// flushedEverything waits until the standby has flushed all the WAL this
// server wrote, and returns where that ends. The runner has closed the
// fence and waited for the commits already past it: no commit record comes
// after this.
func flushedEverything(ctx context.Context, conn *pgx.Conn, partnerName string) (int64, error) {
	var last int64
	if err := conn.QueryRow(ctx, insertEndSQL).Scan(&last); err != nil {
		return 0, err
	}
	// WAL with no commit after it (hint bits, a transaction left open) may
	// wait for a full page before the WAL writer flushes it, and a
	// walsender sends only what is flushed: an aborted transaction asks the
	// WAL writer to flush up to its record, past the end read above.
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELECT pg_current_xact_id()")
		return errors.Join(err, errRollback)
	}); err != nil && !errors.Is(err, errRollback) {
		return 0, err
	}
	return last, waitFlushed(ctx, conn, partnerName, last)
}

// errRollback ends a transaction that is only there to be rolled back.
var errRollback = errors.New("rolled back on purpose")

// insertEndSQL is where the WAL written so far ends. At the start of a page
// pg_current_wal_insert_lsn() points past the page header, which no
// standby's flush position reaches until more WAL is written: the header
// is taken off (a short one, or a long one at the start of a segment).
const insertEndSQL = `SELECT CASE
	WHEN l % s = 40 THEN l - 40
	WHEN l % b = 24 THEN l - 24
	ELSE l END
FROM (SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint AS l,
	(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size') AS s,
	current_setting('wal_block_size')::bigint AS b) w`

// waitFlushed waits until the partner's walsender reports WAL up to last
// flushed on the standby.
func waitFlushed(ctx context.Context, conn *pgx.Conn, partnerName string, last int64) error {
	deadline := time.Now().Add(flushWait)
	for {
		var flushed bool
		err := conn.QueryRow(ctx, `SELECT coalesce(bool_or(flush_lsn - '0/0'::pg_lsn >= $2::numeric), false)
			FROM pg_stat_replication WHERE state = 'streaming' AND ($1 = '' OR application_name = $1)`,
			partnerName, last).Scan(&flushed)
		if err != nil {
			return err
		}
		if flushed {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the standby did not flush the WAL up to %s within %s", core.FormatLSN(last), flushWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// askPartner runs one of the extension's functions on the partner. It
// needs the extension in the database partner_conninfo names.
func askPartner(ctx context.Context, partner *pgx.ConnConfig, sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, partner)
	if err != nil {
		return notSent{conninfoError(err, partner)}
	}
	defer conninfo.Close(conn)
	var answer string
	if err := conn.QueryRow(ctx, sql, args...).Scan(&answer); err != nil {
		var pgErr *pgconn.PgError
		switch {
		case errors.As(err, &pgErr) && (pgErr.Code == "42883" || pgErr.Code == "3F000"):
			return fmt.Errorf("%w: run CREATE EXTENSION pg_keeper in the database pg_keeper.partner_conninfo names", pgErr)
		case errors.As(err, &pgErr) && pgErr.Code == "42501":
			return fmt.Errorf("%w: the role in pg_keeper.partner_conninfo must be a superuser on the standby", pgErr)
		case errors.As(err, &pgErr):
			return pgErr // its fields tell a refusal from a lost answer
		}
		return conninfoError(err, partner)
	}
	return nil
}

// notSent: the session could not even be opened, so no request reached
// the partner.
type notSent struct{ error }

func (e notSent) Unwrap() error { return e.error }

// takeoverUsable checks that pg_keeper._takeover() exists on the partner
// and that the role in partner_conninfo may run it.
func takeoverUsable(ctx context.Context, partner *pgx.ConnConfig) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, partner)
	if err != nil {
		return conninfoError(err, partner)
	}
	defer conninfo.Close(conn)
	var may bool
	err = conn.QueryRow(ctx, "SELECT has_function_privilege('pg_keeper._takeover(text)', 'EXECUTE')").Scan(&may)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && (pgErr.Code == "42883" || pgErr.Code == "3F000"):
		return fmt.Errorf("%s: run CREATE EXTENSION pg_keeper in the database pg_keeper.partner_conninfo names", pgErr.Message)
	case err != nil:
		return errors.New(conninfo.ErrorText(err, partner))
	case !may:
		return errors.New("the role in pg_keeper.partner_conninfo may not run pg_keeper._takeover() there: it must be a superuser")
	}
	return nil
}

func conninfoError(err error, cfg *pgx.ConnConfig) error {
	return errors.New(conninfo.ErrorText(err, cfg))
}

// SetMaintenance turns pg_keeper.maintenance on or off with ALTER SYSTEM,
// so that it outlives a restart, and reloads the configuration.
func SetMaintenance(ctx context.Context, local *pgx.ConnConfig, on bool) error {
	conn, err := conninfo.ConnectLocal(ctx, local)
	if err != nil {
		return err
	}
	defer conninfo.Close(conn)
	value := "off"
	if on {
		value = "on"
	}
	// ALTER SYSTEM cannot run in a transaction: two separate statements.
	if _, err := conn.Exec(ctx, "ALTER SYSTEM SET pg_keeper.maintenance = "+value); err != nil {
		return fmt.Errorf("ALTER SYSTEM failed: %w", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("pg_reload_conf() failed: %w", err)
	}
	return nil
}
