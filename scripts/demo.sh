#!/usr/bin/env bash
# A real two-node pair on 127.0.0.1 with pg_keeper on both, and drills:
# installs what is needed, builds and installs pg_keeper, starts node1
# (master, port 25432) and node2 (synchronous standby, port 25433), shows
# the keepers' process titles and log lines; swaps the roles with
# pg_keeper.switchover() and back; kills node1's postmaster with SIGKILL and
# shows node2 promote itself and take writes; then starts node1 again as it
# was and shows it refuse writes and, with pg_keeper.auto_rejoin, rewind
# itself and come back as node2's synchronous standby.
#
#   scripts/demo.sh              run the demo as root, then stop and remove the pair
#   scripts/demo.sh --keep       leave the pair running in /tmp/pg_keeper_demo
#   scripts/demo.sh --installed  use the pg_keeper installed already (from
#                                the package of make deb), build nothing
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

KEEP=no
INSTALLED=no
for arg in "$@"; do
	case $arg in
	--keep) KEEP=yes ;;
	--installed) INSTALLED=yes ;;
	*)
		echo "usage: scripts/demo.sh [--keep] [--installed]" >&2
		exit 2
		;;
	esac
done
BASE=/tmp/pg_keeper_demo
P1=25432
P2=25433

if [ "$(id -u)" != 0 ]; then
	echo "run as root: it installs packages and pg_keeper, and runs the servers as user postgres" >&2
	exit 1
fi

since() { awk -v now="$(date +%s.%N)" -v then="$1" 'BEGIN { print now - then }'; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
as_pg() { runuser -u postgres -- "$@"; }

if [ "$INSTALLED" = no ]; then
	step "Installing PostgreSQL and build tools"
	scripts/install-deps.sh

	step "Building and installing pg_keeper"
	make -s USE_PGXS=1 >/dev/null
	make -s USE_PGXS=1 install >/dev/null
fi
BIN=$(pg_config --bindir)
if [ ! -f "$(pg_config --pkglibdir)/pg_keeper.so" ]; then
	echo "pg_keeper is not installed in $(pg_config --pkglibdir)" >&2
	exit 1
fi
echo "PostgreSQL $(pg_config --version | awk '{print $2}'), pg_keeper in $(pg_config --pkglibdir)"

stop_all() {
	for n in node1 node2; do
		[ -f "$BASE/$n/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$BASE/$n" stop -m immediate >/dev/null 2>&1 || true
	done
}
stop_all
rm -rf "$BASE"
mkdir -p "$BASE"
chown postgres: "$BASE"

step "Creating node1 (master) on 127.0.0.1:$P1"
as_pg "$BIN/initdb" -D "$BASE/node1" -U postgres -A trust --no-sync >/dev/null
cat >>"$BASE/node1/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $P1
unix_socket_directories = '$BASE'
wal_level = replica
hot_standby = on
wal_receiver_timeout = 5s
wal_sender_timeout = 5s
synchronous_standby_names = 'node2'
wal_log_hints = on
primary_conninfo = 'host=127.0.0.1 port=$P2 user=postgres application_name=node1'
shared_preload_libraries = 'pg_keeper'
pg_keeper.auto_rejoin = on
pg_keeper.partner_conninfo = 'host=127.0.0.1 port=$P2 user=postgres dbname=postgres sslmode=disable'
pg_keeper.keepalives_time = '500ms'
pg_keeper.keepalives_count = 4
pg_keeper.after_command = 'echo "STONITH would fence the old master here (\$PG_KEEPER_OLD_PRIMARY)"'
CONF
as_pg "$BIN/pg_ctl" -D "$BASE/node1" -l "$BASE/node1.log" -w start >/dev/null

step "Creating node2 (synchronous standby) on 127.0.0.1:$P2 with pg_basebackup"
as_pg "$BIN/pg_basebackup" -h 127.0.0.1 -p $P1 -U postgres -D "$BASE/node2" -R -X stream -c fast >/dev/null
cat >>"$BASE/node2/postgresql.conf" <<CONF
port = $P2
synchronous_standby_names = 'node1'
pg_keeper.partner_conninfo = 'host=127.0.0.1 port=$P1 user=postgres dbname=postgres sslmode=disable'
CONF
# pg_basebackup -R wrote primary_conninfo here; name node2 for synchronous_standby_names.
echo "primary_conninfo = 'host=127.0.0.1 port=$P1 user=postgres application_name=node2'" \
	>>"$BASE/node2/postgresql.auto.conf"
as_pg "$BIN/pg_ctl" -D "$BASE/node2" -l "$BASE/node2.log" -w start >/dev/null

psql1() { psql -X -At -h 127.0.0.1 -p $P1 -U postgres -d postgres -c "$1"; }
psql2() { psql -X -At -h 127.0.0.1 -p $P2 -U postgres -d postgres -c "$1"; }
titles() { ps -eo args | grep '[p]g_keeper (' || true; }
wait_for() { # seconds, description, command...
	local secs=$1 what=$2; shift 2
	for _ in $(seq $((secs * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	echo "timed out waiting for $what" >&2
	return 1
}

step "Both keepers connect to their partner"
wait_for 30 "node1's keeper to connect" grep -q 'pg_keeper: connected to standby' "$BASE/node1.log"
wait_for 30 "node2's keeper to connect" grep -q 'pg_keeper: connected to master' "$BASE/node2.log"
titles
echo "node1: sync_state of node2 = $(psql1 "SELECT sync_state FROM pg_stat_replication")"
psql1 "CREATE TABLE drill (id int PRIMARY KEY, at timestamptz DEFAULT now())" >/dev/null
psql1 "INSERT INTO drill (id) SELECT generate_series(1, 100)" >/dev/null
echo "node1: 100 rows committed synchronously; node2 sees $(psql2 "SELECT count(*) FROM drill")"
psql1 "CREATE EXTENSION pg_keeper" >/dev/null
wait_for 30 "the extension on node2" sh -c "psql -X -At -h 127.0.0.1 -p $P2 -U postgres -d postgres -c 'SELECT state FROM pg_keeper.status' >/dev/null 2>&1"
status="SELECT mode, state, replication, consecutive_failures AS failures, next_action, next_action_in, next_action_blocked FROM pg_keeper.status"
echo "node1: $status"
psql -X -h 127.0.0.1 -p $P1 -U postgres -d postgres -c "$status" | sed 's/^/  /'
echo "node2 (hot standby): the same"
psql -X -h 127.0.0.1 -p $P2 -U postgres -d postgres -c "$status" | sed 's/^/  /'

is_standby() { psql -X -At -h 127.0.0.1 -p "$1" -U postgres -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null | grep -q t; }
sync_of() { psql -X -At -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "SELECT sync_state FROM pg_stat_replication WHERE application_name = '$2'" 2>/dev/null; }
switchover() { # from port, to port, from name, to name
	step "Switchover: SELECT pg_keeper.switchover() on $3"
	local start
	start=$(date +%s.%N)
	echo "$3: $(psql -X -At -h 127.0.0.1 -p "$1" -U postgres -d postgres -c 'SELECT pg_keeper.switchover()')"
	wait_for 60 "$4 to take over" sh -c "psql -X -At -h 127.0.0.1 -p $2 -U postgres -d postgres -c 'SELECT NOT pg_is_in_recovery()' | grep -q t"
	wait_for 60 "$3 to be $4's synchronous standby" sh -c "psql -X -At -h 127.0.0.1 -p $2 -U postgres -d postgres -c \"SELECT sync_state FROM pg_stat_replication WHERE application_name = '$3'\" | grep -q sync"
	wait_for 60 "both keepers connected" sh -c "ps -eo args | grep -q '[p]g_keeper (master mode:connected)' && ps -eo args | grep -q '[p]g_keeper (standby mode:connected)'"
	printf '%s is the master, %s its synchronous standby, %.1f s after the call\n' "$4" "$3" "$(since "$start")"
	psql -X -At -h 127.0.0.1 -p "$2" -U postgres -d postgres -c "INSERT INTO drill (id) SELECT max(id) + 1 FROM drill" >/dev/null
	echo "$4 takes writes: $(psql -X -At -h 127.0.0.1 -p "$2" -U postgres -d postgres -c 'SELECT count(*) FROM drill') rows, $3 has $(psql -X -At -h 127.0.0.1 -p "$1" -U postgres -d postgres -c 'SELECT count(*) FROM drill')"
	titles
	grep -h 'pg_keeper.*switchover' "$BASE/node1.log" "$BASE/node2.log" | tail -n 4 | sed 's/^/  /'
}
switchover $P1 $P2 node1 node2
switchover $P2 $P1 node2 node1
wait_for 30 "node2's keeper to be connected again" sh -c "ps -eo args | grep -q '[p]g_keeper (standby mode:connected)'"

# node2 promotes only once a heartbeat has seen node1 synchronous with it:
# wait until its status says that it would (a kill before that is rightly
# not followed by a promotion, and the drill would prove nothing).
wait_for 60 "node2 to be ready to promote" sh -c "psql -X -At -h 127.0.0.1 -p $P2 -U postgres -d postgres -c \"SELECT next_action = 'promote' AND next_action_blocked IS NULL FROM pg_keeper.status\" | grep -q t"
echo "node2: $(psql2 "SELECT 'next action if node1 is lost: ' || next_action || ', within ' || next_action_in FROM pg_keeper.status")"

step "Failover drill: SIGKILL to node1's postmaster"
pm=$(head -1 "$BASE/node1/postmaster.pid")
kill -9 "$pm"
start=$(date +%s.%N)
wait_for 60 "node2 to promote" sh -c "psql -X -At -h 127.0.0.1 -p $P2 -U postgres -d postgres -c 'SELECT NOT pg_is_in_recovery()' | grep -q t"
printf 'node2 promoted %.1f s after the kill\n' "$(since "$start")"
wait_for 30 "after_command" grep -q 'after_command finished' "$BASE/node2.log"
titles
psql2 "INSERT INTO drill (id) SELECT max(id) + 1 FROM drill" >/dev/null
echo "node2 takes writes: $(psql2 "SELECT count(*) FROM drill") rows"
echo "node2's log:"
grep 'pg_keeper:' "$BASE/node2.log" | sed 's/^/  /'
echo "node2: SELECT ... FROM pg_keeper.events()"
psql -X -h 127.0.0.1 -p $P2 -U postgres -d postgres \
	-c "SELECT to_char(at, 'HH24:MI:SS.MS') AS at, kind, coalesce(from_state || ' -> ' || to_state, action) AS what, duration, left(detail, 60) AS detail FROM pg_keeper.events()" |
	sed 's/^/  /'

step "The old master comes back as it was: it must not take writes, and rejoins by itself"
mark=$(wc -l <"$BASE/node1.log")
# The killed postmaster must be gone (reaped) before a new one can start.
wait_for 30 "node1's killed postmaster to be gone" sh -c "! kill -0 $pm"
# pg_ctl may report a failed start: the old master can fence itself and
# shut down before pg_ctl has seen it ready.
started=$(date +%s.%N)
as_pg "$BIN/pg_ctl" -D "$BASE/node1" -l "$BASE/node1.log" start >/dev/null 2>&1 || true
# Until the server answers (pg_ctl start does not wait here): then the write
# must be refused by pg_keeper, not merely find no server.
for _ in $(seq 100); do
	if out=$(psql -X -At -h 127.0.0.1 -p $P1 -U postgres -d postgres -c "INSERT INTO drill (id) VALUES (999)" 2>&1); then
		echo "node1 accepted a write: $out" >&2
		exit 1
	fi
	case "$out" in *"Connection refused"* | *"starting up"*) sleep 0.05 ;; *) break ;; esac
done
echo "node1 refused the write: $(echo "$out" | grep -m1 -E 'FATAL|ERROR' || echo "$out" | head -1)"
wait_for 120 "node1 to rejoin as node2's synchronous standby" sh -c "psql -X -At -h 127.0.0.1 -p $P2 -U postgres -d postgres -c \"SELECT sync_state FROM pg_stat_replication WHERE application_name = 'node1'\" | grep -q sync"
printf 'node1 is node2'"'"'s synchronous standby again, %.1f s after pg_ctl start, rewound with pg_rewind (pg_keeper.auto_rejoin)\n' "$(since "$started")"
echo "node1 has $(psql1 "SELECT count(*) FROM drill") rows, node2 $(psql2 "SELECT count(*) FROM drill")"
titles
echo "node1's log:"
tail -n +"$((mark + 1))" "$BASE/node1.log" | grep 'pg_keeper' | grep -v 'heartbeat to standby failed' | sed 's/^/  /'

if [ "$KEEP" = yes ]; then
	step "Left running: node2 (master) on port $P2, node1 (standby) on $P1, logs in $BASE (stop with: runuser -u postgres -- $BIN/pg_ctl -D $BASE/node1 stop; runuser -u postgres -- $BIN/pg_ctl -D $BASE/node2 stop)"
else
	step "Stopping and removing the pair"
	stop_all
	rm -rf "$BASE"
fi
