// Package action carries out what the core decides, on the local server and
// its partner: promote it, switch its synchronous replication off and back
// on (saving the value in the data directory, marked with the node that
// saved it), the steps of a switchover, pause and resume, and the helper
// that restarts a server as its partner's standby. The executor calls
// these; each is idempotent and bounded by its context.
package action

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
	"github.com/pg-keeper/pg_keeper/keeper/probe"
)

// Actions are idempotent: the core may ask for one again after a failure,
// and running it twice does no harm.

// promote asks the local server to leave recovery and waits until it did.
// It returns what it did and the server's new timeline (0 if unknown).
func Promote(ctx context.Context, local *pgx.ConnConfig) (string, int, error) {
	start := time.Now()
	conn, err := conninfo.ConnectLocal(ctx, local)
	if err != nil {
		return "", 0, err
	}
	defer conninfo.Close(conn)

	var inRecovery bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		return "", 0, err
	}
	detail := "the server was already out of recovery"
	if inRecovery {
		if err := waitPromoted(ctx, conn); err != nil {
			return "", 0, err
		}
		detail = fmt.Sprintf("pg_promote() took %d ms", time.Since(start).Milliseconds())
	}
	var timeline int
	if err := conn.QueryRow(ctx, "SELECT "+probe.TimelineSQL).Scan(&timeline); err != nil {
		timeline = 0 // only after_command's environment lacks it
	}
	return detail, timeline, nil
}

// promoteWait bounds the wait for the end of recovery, as pg_promote's own
// default of 60 seconds does.
var promoteWait = 60 * time.Second

// promotePoll: pg_promote(wait => true) looks only every 100 ms whether the
// promotion has finished; asking every 10 ms ends the failover sooner.
const promotePoll = 10 * time.Millisecond

// waitPromoted signals the promotion and waits until recovery has ended.
func waitPromoted(ctx context.Context, conn *pgx.Conn) error {
	var signalled bool
	if err := conn.QueryRow(ctx, "SELECT pg_promote(false)").Scan(&signalled); err != nil {
		return fmt.Errorf("pg_promote() failed: %w", err)
	}
	if !signalled {
		return errors.New("pg_promote() could not signal the startup process (see the server log)")
	}
	deadline := time.Now().Add(promoteWait)
	for {
		var done bool
		if err := conn.QueryRow(ctx, "SELECT NOT pg_is_in_recovery()").Scan(&done); err != nil {
			return fmt.Errorf("waiting for the promotion to finish: %w", err)
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pg_promote() did not finish within %s", promoteWait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the promotion to finish: %w", ctx.Err())
		case <-time.After(promotePoll):
		}
	}
}

// switchAsync clears synchronous_standby_names so that commits stop waiting
// for a standby that is gone, and saves the old value for restoreSync.
func SwitchAsync(ctx context.Context, local *pgx.ConnConfig, dataDir, tag string) (string, error) {
	conn, err := conninfo.ConnectLocal(ctx, local)
	if err != nil {
		return "", err
	}
	defer conninfo.Close(conn)

	var names string
	if err := conn.QueryRow(ctx, "SHOW synchronous_standby_names").Scan(&names); err != nil {
		return "", err
	}
	if names == "" {
		return "synchronous_standby_names was already empty", nil
	}
	if err := SaveSync(dataDir, tag, names); err != nil {
		return "", fmt.Errorf("could not remember synchronous_standby_names: %w", err)
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

// syncInFilesSQL: the value of synchronous_standby_names that the
// configuration files other than postgresql.auto.conf give, and the one
// postgresql.auto.conf gives (NULL: not set there).
const syncInFilesSQL = `SELECT
	(SELECT setting FROM pg_file_settings WHERE name = 'synchronous_standby_names' AND error IS NULL
	   AND sourcefile !~ 'postgresql\.auto\.conf$' ORDER BY seqno DESC LIMIT 1),
	(SELECT setting FROM pg_file_settings WHERE name = 'synchronous_standby_names' AND error IS NULL
	   AND sourcefile ~ 'postgresql\.auto\.conf$' ORDER BY seqno DESC LIMIT 1)`

// restoreSync puts back the synchronous_standby_names that switchAsync
// cleared. When postgresql.conf holds that very value, it only removes the
// override from postgresql.auto.conf, leaving the operator's file in charge.
// What the partner saved (a copy of its data directory) is never restored:
// its empty override is removed instead, so that this node's own
// postgresql.conf decides.
func RestoreSync(ctx context.Context, local *pgx.ConnConfig, dataDir, tag string) (string, error) {
	names, found, own, err := readSavedSync(dataDir, tag)
	if err != nil {
		return "", err
	}
	if !found {
		return "no synchronous_standby_names saved: nothing to restore", nil
	}
	conn, err := conninfo.ConnectLocal(ctx, local)
	if err != nil {
		return "", err
	}
	defer conninfo.Close(conn)

	var inConf, inAuto *string
	if err := conn.QueryRow(ctx, syncInFilesSQL).Scan(&inConf, &inAuto); err != nil {
		return "", err
	}
	var stmt, detail string
	switch {
	case own && inConf != nil && *inConf == names:
		stmt, detail = "ALTER SYSTEM RESET synchronous_standby_names", fmt.Sprintf("synchronous_standby_names is '%s' again", names)
	case own:
		stmt = "ALTER SYSTEM SET synchronous_standby_names = '" + strings.ReplaceAll(names, "'", "''") + "'"
		detail = fmt.Sprintf("synchronous_standby_names is '%s' again", names)
	case inAuto != nil && *inAuto == "" && inConf != nil && *inConf != "":
		stmt = "ALTER SYSTEM RESET synchronous_standby_names"
		detail = fmt.Sprintf("synchronous_standby_names is '%s' again, from this node's configuration: "+
			"the '' and the saved value came from the partner's data directory and were not used", *inConf)
	default:
		detail = "the saved synchronous_standby_names came from the partner's data directory: not restored, nothing else to restore"
	}
	if stmt != "" {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return "", fmt.Errorf("ALTER SYSTEM failed: %w", err)
		}
		if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
			return "", fmt.Errorf("pg_reload_conf() failed: %w", err)
		}
	}
	if err := os.Remove(filepath.Join(dataDir, SavedSyncFile)); err != nil {
		return "", err
	}
	return detail, nil
}
