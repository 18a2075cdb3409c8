#!/bin/sh
# Example pg_keeper.state_change_command: point a PgBouncer database entry
# at this node when it becomes the primary, and reload PgBouncer.
#
# It edits a file on this machine, so PgBouncer must read that very file:
# the file is on storage that both database nodes and PgBouncer's host
# share, or PgBouncer runs where the script does (as in its test). For a
# PgBouncer on another machine, do the same two steps through ssh.
#
# In postgresql.conf of both nodes (my_conninfo's host is the address
# PgBouncer is given for this node):
#   pg_keeper.my_conninfo = 'host=10.0.0.1 port=5432 user=postgres dbname=postgres sslmode=disable'
#   pg_keeper.state_change_command = '/etc/postgresql/pgbouncer-repoint.sh /etc/pgbouncer/pg_keeper.ini appdb "dbname=app" "host=127.0.0.1 port=6432 user=pgbouncer dbname=pgbouncer"'
# In pgbouncer.ini, under [databases]:
#   %include /etc/pgbouncer/pg_keeper.ini
#
# Arguments:
#   $1  the file this script rewrites, included by pgbouncer.ini
#   $2  the PgBouncer database name
#   $3  the rest of the entry's connection settings
#   $4  a conninfo reaching PgBouncer's admin console as one of its admin_users
#
# pg_keeper runs it after every change of state, one at a time. Only a node
# that knows it is the primary (PG_KEEPER_MODE=master and
# PG_KEEPER_PRIMARY_HOST set: not while it waits for its first heartbeat,
# keeps commits waiting for a standby that may be taking over, or is
# fenced) re-points PgBouncer, so a standby or an old master never does.
set -eu
file=$1 db=$2 extra=$3 admin=$4

[ "${PG_KEEPER_MODE:-}" = master ] || exit 0
[ -n "${PG_KEEPER_PRIMARY_HOST:-}" ] || exit 0

entry="$db = host=$PG_KEEPER_PRIMARY_HOST port=$PG_KEEPER_PRIMARY_PORT $extra"
changed=yes
if [ -f "$file" ] && grep -qxF "$entry" "$file"; then
	changed=no
else
	# Replace the file in one step: PgBouncer never reads half of it.
	tmp="$file.tmp.$$"
	trap 'rm -f "$tmp"' EXIT
	printf '%s\n' "; written by pg_keeper on $PG_KEEPER_NODE ($PG_KEEPER_OLD_STATE -> $PG_KEEPER_NEW_STATE)" "$entry" >"$tmp"
	mv "$tmp" "$file"
fi

# Reload even when the file was already right: an earlier reload may have
# failed after the file was written.
psql "$admin" -X -q -c RELOAD
if [ "$changed" = yes ]; then
	echo "PgBouncer database $db now points at $PG_KEEPER_PRIMARY_HOST:$PG_KEEPER_PRIMARY_PORT"
fi
