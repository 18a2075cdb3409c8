// Package witness talks to the third server of a pair (docs/witness.md):
// an ordinary PostgreSQL server holding one row per pair in the table
// pg_keeper_lease, which the keeper creates. Every change is one
// compare-and-set statement; every age is computed there, on the witness's
// clock. It decides nothing: the core chose the operation and weighs what
// comes back.
package witness

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
	"github.com/pg-keeper/pg_keeper/keeper/core"
)

// TableSQL creates the table, in the first schema of the role's search_path.
const TableSQL = `CREATE TABLE IF NOT EXISTS pg_keeper_lease (
	system_identifier text PRIMARY KEY,
	term bigint NOT NULL,
	holder text NOT NULL,
	sync boolean NOT NULL,
	renewed_at timestamptz NOT NULL,
	lease interval NOT NULL)`

// rowColumns are what every statement returns of the row.
const rowColumns = `term, holder, sync, extract(epoch FROM now() - renewed_at)::float8, extract(epoch FROM lease)::float8`

// ReadSQL reads the pair's row ($1: the system identifier).
const ReadSQL = `SELECT ` + rowColumns + ` FROM pg_keeper_lease WHERE system_identifier = $1`

// RenewSQL is a master's renewal, and with $4 false its leave-sync: it
// creates the row, renews it where this node holds it (taking the witness's
// term if higher: this node's copy was lost), or raises a lower term to this
// node's (a witness rebuilt, or a promotion it did not see). Another holder
// with a term as high as this node's changes nothing: deposed.
const RenewSQL = `INSERT INTO pg_keeper_lease AS l (system_identifier, term, holder, sync, renewed_at, lease)
	VALUES ($1, greatest($2::bigint, 1), $3, $4, now(), make_interval(secs => $5::float8))
	ON CONFLICT (system_identifier) DO UPDATE
	SET term = greatest(l.term, EXCLUDED.term), holder = EXCLUDED.holder, sync = EXCLUDED.sync,
		renewed_at = now(), lease = EXCLUDED.lease
	WHERE l.term < EXCLUDED.term OR l.holder = EXCLUDED.holder
	RETURNING ` + rowColumns

// ClaimSQL is a standby's claim of the next term: only from the term it
// saw ($4), only while the master holds synchronous replication, and only
// once the master's lease is over.
const ClaimSQL = `UPDATE pg_keeper_lease SET term = term + 1, holder = $2, sync = true, renewed_at = now(),
		lease = make_interval(secs => $3::float8)
	WHERE system_identifier = $1 AND term = $4 AND sync AND now() - renewed_at > lease
	RETURNING ` + rowColumns

// Client runs operations on one session, opened when needed and closed
// after any error. It is not safe for concurrent use: the executor runs its
// operations one at a time, in order.
type Client struct {
	cfg    *pgx.ConnConfig
	sysid  string
	holder string
	conn   *pgx.Conn
}

// New is a client for the pair of system identifier sysid, this node
// named holder.
func New(cfg *pgx.ConnConfig, sysid uint64, holder string) *Client {
	if cfg != nil {
		// The table lives in the first schema of the role's own
		// search_path, not in pg_catalog where the keeper's other sessions
		// look (built-in functions are found first either way).
		cfg = cfg.Copy()
		delete(cfg.RuntimeParams, "search_path")
	}
	return &Client{cfg: cfg, sysid: strconv.FormatUint(sysid, 10), holder: holder}
}

// Close ends the session.
func (c *Client) Close() {
	if c.conn != nil {
		conninfo.Close(c.conn)
		c.conn = nil
	}
}

// Do runs req within ctx's deadline.
func (c *Client) Do(ctx context.Context, req core.WitnessRequest) core.WitnessResult {
	res := core.WitnessResult{Op: req.Op, Start: time.Now()}
	row, changed, err := c.do(ctx, req)
	if err != nil {
		c.Close()
		res.Err = c.errorText(err)
		return res
	}
	res.Row, res.Changed = row, changed
	return res
}

func (c *Client) do(ctx context.Context, req core.WitnessRequest) (core.WitnessRow, bool, error) {
	if err := c.connect(ctx); err != nil {
		return core.WitnessRow{}, false, err
	}
	lease := req.Lease.Seconds()
	var q string
	var args []any
	switch req.Op {
	case core.WitnessRead:
		row, err := c.read(ctx)
		return row, false, err
	case core.WitnessRenew, core.WitnessLeaveSync:
		sync := req.Sync && req.Op == core.WitnessRenew
		q, args = RenewSQL, []any{c.sysid, req.Term, c.holder, sync, lease}
	case core.WitnessClaim:
		q, args = ClaimSQL, []any{c.sysid, c.holder, lease, req.Term}
	default:
		return core.WitnessRow{}, false, fmt.Errorf("unknown operation %d", req.Op)
	}
	row, err := c.scan(c.conn.QueryRow(ctx, q, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		// The compare-and-set changed nothing: say what is there.
		row, err = c.read(ctx)
		return row, false, err
	}
	return row, err == nil, err
}

func (c *Client) read(ctx context.Context) (core.WitnessRow, error) {
	row, err := c.scan(c.conn.QueryRow(ctx, ReadSQL, c.sysid))
	if errors.Is(err, pgx.ErrNoRows) {
		return core.WitnessRow{}, nil
	}
	return row, err
}

func (c *Client) scan(r pgx.Row) (core.WitnessRow, error) {
	var row core.WitnessRow
	var age, lease float64
	if err := r.Scan(&row.Term, &row.Holder, &row.Sync, &age, &lease); err != nil {
		return core.WitnessRow{}, err
	}
	row.Found, row.Mine = true, row.Holder == c.holder
	row.LeaseAge = time.Duration(age * float64(time.Second))
	row.Lease = time.Duration(lease * float64(time.Second))
	return row, nil
}

// connect opens the session and makes sure of the table, once per session.
func (c *Client) connect(ctx context.Context) error {
	if c.conn != nil {
		return nil
	}
	if c.cfg == nil {
		return errors.New("pg_keeper.witness_conninfo is unusable")
	}
	conn, err := pgx.ConnectConfig(ctx, c.cfg)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, TableSQL); err != nil {
		conninfo.Close(conn)
		return err
	}
	c.conn = conn
	return nil
}

// errorText is err as one log line, with the fix where there is one.
func (c *Client) errorText(err error) string {
	s := conninfo.ErrorText(err, c.cfg)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" {
		s += "; the role of pg_keeper.witness_conninfo must be able to create and update the table pg_keeper_lease: " +
			"give it a database it owns, or GRANT CREATE ON SCHEMA ... TO it"
	}
	return s
}
