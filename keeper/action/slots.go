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
// worker refuses to copy the primary's slot of that name. One in use (a
// client decoding from it here) is left alone and named, with its PID.
const dropStaleSlotsSQL = `SELECT slot_name, coalesce(active_pid, 0), active,
	CASE WHEN NOT active THEN pg_drop_replication_slot(slot_name) IS NULL END
	FROM pg_replication_slots
	WHERE slot_type = 'logical' AND failover AND NOT synced`

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
	var dropped, inUse []string
	for rows.Next() {
		var name string
		var pid int
		var kept bool
		var ignored *bool
		if err := rows.Scan(&name, &pid, &kept, &ignored); err != nil {
			rows.Close()
			return "", err
		}
		if kept {
			inUse = append(inUse, fmt.Sprintf("%q (PID %d)", name, pid))
		} else {
			dropped = append(dropped, fmt.Sprintf("%q", name))
		}
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("could not drop the failover slots left from when this server was the primary: %w", err)
	}
	done := ""
	if len(dropped) > 0 {
		done = fmt.Sprintf("dropped the failover slot(s) %s, left from when this server was the primary, "+
			"so that the slot sync worker copies the primary's", strings.Join(dropped, ", "))
	}
	if len(inUse) > 0 {
		err := fmt.Errorf("the failover slot(s) %s, left from when this server was the primary, are in use here "+
			"and were not dropped: the slot sync worker cannot copy the primary's until they are", strings.Join(inUse, ", "))
		if done != "" {
			err = fmt.Errorf("%s; %w", done, err)
		}
		return "", err
	}
	return done, nil
}
