package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// sqlTimeout bounds every helper that has no caller-supplied context.
const sqlTimeout = 10 * time.Second

// withConn opens a fresh TCP connection to n for one call: tests kill and
// restart servers all the time, so a cached connection would go stale.
func (n *Node) withConn(ctx context.Context, f func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, n.Conninfo())
	if err != nil {
		return fmt.Errorf("%s: connect: %w", n.Name, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	return f(conn)
}

// TryExec runs sql on n and returns any error.
func (n *Node) TryExec(ctx context.Context, sql string, args ...any) error {
	return n.withConn(ctx, func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, sql, args...); err != nil {
			return fmt.Errorf("%s: %q: %w", n.Name, sql, err)
		}
		return nil
	})
}

// Exec runs sql on n and fails the test on error.
func (n *Node) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sqlTimeout)
	defer cancel()
	if err := n.TryExec(ctx, sql, args...); err != nil {
		t.Fatal(err)
	}
}

// TryQueryString returns the first column of the first row in PostgreSQL's
// text output form (booleans are "t"/"f"; NULL is ""). The simple protocol
// is used so that every type comes back as text and needs no Go mapping.
func (n *Node) TryQueryString(ctx context.Context, sql string, args ...any) (string, error) {
	var out string
	err := n.withConn(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, sql, append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
		if err != nil {
			return fmt.Errorf("%s: %q: %w", n.Name, sql, err)
		}
		defer rows.Close()
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return fmt.Errorf("%s: %q: %w", n.Name, sql, err)
			}
			return fmt.Errorf("%s: %q: %w", n.Name, sql, pgx.ErrNoRows)
		}
		raw := rows.RawValues()
		if len(raw) == 0 {
			return fmt.Errorf("%s: %q: %w", n.Name, sql, errors.New("no columns"))
		}
		out = string(raw[0])
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%s: %q: %w", n.Name, sql, err)
		}
		return nil
	})
	return out, err
}

// QueryString is TryQueryString that fails the test on error.
func (n *Node) QueryString(t testing.TB, sql string, args ...any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sqlTimeout)
	defer cancel()
	s, err := n.TryQueryString(ctx, sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// InRecovery reports pg_is_in_recovery() of n.
func (n *Node) InRecovery(t testing.TB) bool {
	t.Helper()
	return n.QueryString(t, "SELECT pg_is_in_recovery()") == "t"
}

// Reload asks n to re-read its configuration. pg_reload_conf() only
// signals the postmaster; the change is in effect shortly after it returns.
func (n *Node) Reload(t testing.TB) {
	t.Helper()
	n.Exec(t, "SELECT pg_reload_conf()")
}
