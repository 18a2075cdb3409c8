package action

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
)

// staleSlotsApplySQL says whether DropStaleSlots has anything to look at:
// failover slots and their synchronization exist from PostgreSQL 17.
const staleSlotsApplySQL = `SELECT current_setting('server_version_num')::int >= 170000
	AND pg_is_in_recovery()
	AND coalesce(current_setting('sync_replication_slots', true), 'off') = 'on'`

// dropStaleSlotsSQL drops this standby's logical failover slots that are not
// copies of the primary's. A standby cannot create one, so each is left
// from when this server was the primary (a switchover restarts it as a
// standby with its slots as they were), and while it is there the slot sync
// worker refuses to copy the primary's slot of that name. One in use is
// left alone.
const dropStaleSlotsSQL = `SELECT slot_name, pg_drop_replication_slot(slot_name) IS NULL
	FROM pg_replication_slots
	WHERE slot_type = 'logical' AND failover AND NOT synced AND NOT active`

// DropStaleSlots drops the failover slots this standby kept from its time
// as the primary (PostgreSQL 17+, sync_replication_slots on) and says
// which; "" when there were none, or nothing applies.
func DropStaleSlots(ctx context.Context, local *pgx.ConnConfig) (string, error) {
	conn, err := conninfo.ConnectLocal(ctx, local)
	if err != nil {
		return "", err
	}
	defer conninfo.Close(conn)

	var applies bool
	if err := conn.QueryRow(ctx, staleSlotsApplySQL).Scan(&applies); err != nil {
		return "", err
	}
	if !applies {
		return "", nil
	}
	rows, err := conn.Query(ctx, dropStaleSlotsSQL)
	if err != nil {
		return "", err
	}
	var names []string
	for rows.Next() {
		var name string
		var ignored bool
		if err := rows.Scan(&name, &ignored); err != nil {
			rows.Close()
			return "", err
		}
		names = append(names, fmt.Sprintf("%q", name))
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("could not drop the failover slots left from when this server was the primary: %w", err)
	}
	if len(names) == 0 {
		return "", nil
	}
	return fmt.Sprintf("dropped the failover slot(s) %s, left from when this server was the primary, "+
		"so that the slot sync worker copies the primary's", strings.Join(names, ", ")), nil
}
