package keeper

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Actions are idempotent: the core may ask for one again after a failure,
// and running it twice does no harm.

// promote asks the local server to leave recovery and waits until it did.
func promote(ctx context.Context, local *pgx.ConnConfig) (string, error) {
	start := time.Now()
	conn, err := connectLocal(ctx, local)
	if err != nil {
		return "", err
	}
	defer closeConn(conn)

	var inRecovery bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		return "", err
	}
	if !inRecovery {
		return "the server was already out of recovery", nil
	}
	var done bool
	if err := conn.QueryRow(ctx, "SELECT pg_promote(true, 60)").Scan(&done); err != nil {
		return "", fmt.Errorf("pg_promote() failed: %w", err)
	}
	if !done {
		return "", errors.New("pg_promote() did not finish within 60 seconds")
	}
	return fmt.Sprintf("pg_promote() took %d ms", time.Since(start).Milliseconds()), nil
}

// switchAsync clears synchronous_standby_names so that commits stop waiting
// for a standby that is gone.
func switchAsync(ctx context.Context, local *pgx.ConnConfig) (string, error) {
	conn, err := connectLocal(ctx, local)
	if err != nil {
		return "", err
	}
	defer closeConn(conn)

	var names string
	if err := conn.QueryRow(ctx, "SHOW synchronous_standby_names").Scan(&names); err != nil {
		return "", err
	}
	if names == "" {
		return "synchronous_standby_names was already empty", nil
	}
	// ALTER SYSTEM cannot run in a transaction: two separate statements.
	if _, err := conn.Exec(ctx, "ALTER SYSTEM SET synchronous_standby_names = ''"); err != nil {
		return "", fmt.Errorf("ALTER SYSTEM failed: %w", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return "", fmt.Errorf("pg_reload_conf() failed: %w", err)
	}
	return fmt.Sprintf("synchronous_standby_names was '%s', now ''", names), nil
}

func connectLocal(ctx context.Context, local *pgx.ConnConfig) (*pgx.Conn, error) {
	if local == nil {
		return nil, errors.New("pg_keeper.my_conninfo is unusable")
	}
	conn, err := pgx.ConnectConfig(ctx, local)
	if err != nil {
		return nil, fmt.Errorf("could not connect to this server (pg_keeper.my_conninfo): %s", errorText(err, local))
	}
	return conn, nil
}
