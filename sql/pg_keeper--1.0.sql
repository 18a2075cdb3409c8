/* pg_keeper--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_keeper" to load this file. \quit

-- The schema is named after the extension, as operators expect to type
-- pg_keeper.status(). Names starting with pg_ are reserved for the system, so
-- its creation needs allow_system_table_mods, for this statement only (a
-- SET in an extension script ends with the script). The schema belongs to the
-- extension: DROP EXTENSION removes it, and pg_dump emits only CREATE
-- EXTENSION. pg_upgrade, which restores extension members one by one, cannot
-- create it: drop the extension before pg_upgrade and create it again after
-- (it holds no data; README "Upgrading").
SET allow_system_table_mods = on;
CREATE SCHEMA pg_keeper;
RESET allow_system_table_mods;

-- What the keeper publishes in shared memory, as JSON (bgworker/sqlfuncs.c).
-- The functions below give it columns; these two are not meant to be called
-- directly.
CREATE FUNCTION pg_keeper._status() RETURNS text
AS 'MODULE_PATHNAME', 'pg_keeper_status_json'
LANGUAGE C VOLATILE;

CREATE FUNCTION pg_keeper._events() RETURNS text
AS 'MODULE_PATHNAME', 'pg_keeper_events_json'
LANGUAGE C VOLATILE;

CREATE FUNCTION pg_keeper._timeline() RETURNS int
AS 'MODULE_PATHNAME', 'pg_keeper_timeline'
LANGUAGE C VOLATILE;

-- The keeper's view of the pair, with what this server knows itself (its
-- timeline, WAL positions and synchronous_standby_names) read at the time of
-- the query. Works on a primary and on a hot standby alike.
CREATE FUNCTION pg_keeper.status(
	OUT mode text,					-- master or standby
	OUT state text,					-- as in the process title: connected, async, ...
	OUT partner text,				-- pg_keeper.partner_conninfo, password masked
	OUT consecutive_failures int,	-- failed heartbeats in a row
	OUT last_success timestamptz,	-- last good heartbeat
	OUT last_failure timestamptz,
	OUT last_failure_class text,	-- refused, timeout, authentication, ...
	OUT last_failure_reason text,
	OUT replication text,			-- sync or async: on a master its own setting, on a standby the master's as last seen
	OUT synchronous_standby_names text,
	OUT timeline int,
	OUT current_lsn pg_lsn,			-- on a primary
	OUT receive_lsn pg_lsn,			-- on a standby
	OUT replay_lsn pg_lsn,			-- on a standby
	OUT partner_lsn pg_lsn,			-- on a standby: the master's position at the last good heartbeat
	OUT keepalives_time interval,
	OUT keepalives_count int,
	OUT on_partner_timeout text,
	OUT max_failover_lag bigint,
	OUT fence text,					-- unconfirmed, open, fenced, switching or stopping: may clients write to this primary
	OUT maintenance boolean,		-- automatic actions paused (pg_keeper.pause()), here or learnt from the master
	OUT auto_rejoin boolean,		-- pg_keeper.auto_rejoin
	OUT witness text,				-- what the witness last answered (pg_keeper.witness_conninfo); NULL: none set
	OUT term bigint,				-- the highest term of the witness this node knows
	OUT lease_ends timestamptz,		-- when the lease of the witness's holder ends, as of its last answer; NULL: unknown
	OUT lease_holder text,			-- host:port of the node holding the witness's lease
	OUT action_running text,		-- promote, switch-async, restore-sync while under way
	OUT next_heartbeat_in interval,
	OUT next_action text,			-- what happens if the partner stays unreachable...
	OUT next_action_in interval,	-- ...at the latest after this long
	OUT next_action_blocked text,	-- why a standby would not promote, if it would not
	OUT worker_pid int,
	OUT worker_running boolean,
	OUT started_at timestamptz,
	OUT updated_at timestamptz)
RETURNS record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT
	j->>'mode',
	j->>'state',
	j->>'partner',
	(j->>'consecutive_failures')::int,
	(j->>'last_success')::timestamptz,
	(j->>'last_failure')::timestamptz,
	j->>'last_failure_class',
	j->>'last_failure_reason',
	CASE
		WHEN NOT pg_is_in_recovery() THEN
			CASE WHEN current_setting('synchronous_standby_names') = '' THEN 'async' ELSE 'sync' END
		WHEN j ? 'master_sync' THEN
			CASE WHEN (j->>'master_sync')::boolean THEN 'sync' ELSE 'async' END
	END,
	current_setting('synchronous_standby_names'),
	pg_keeper._timeline(),
	CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn() END,
	pg_last_wal_receive_lsn(),
	pg_last_wal_replay_lsn(),
	(j->>'partner_lsn')::pg_lsn,
	make_interval(secs => (j->>'keepalives_time')::float8),
	(j->>'keepalives_count')::int,
	j->>'on_partner_timeout',
	(j->>'max_failover_lag')::bigint,
	j->>'fence',
	(j->>'maintenance')::boolean,
	(j->>'auto_rejoin')::boolean,
	j->>'witness',
	(j->>'term')::bigint,
	(j->>'lease_ends')::timestamptz,
	j->>'lease_holder',
	j->>'action_running',
	greatest((j->>'next_heartbeat_at')::timestamptz - clock_timestamp(), interval '0'),
	j->>'next_action',
	greatest((j->>'next_action_at')::timestamptz - clock_timestamp(), interval '0'),
	j->>'next_action_blocked',
	(j->>'worker_pid')::int,
	EXISTS (SELECT FROM pg_stat_activity a
			WHERE a.pid = (j->>'worker_pid')::int AND a.backend_type = 'pg_keeper'),
	(j->>'started_at')::timestamptz,
	(j->>'updated_at')::timestamptz
FROM (SELECT pg_keeper._status()::jsonb AS j) AS s
$$;

CREATE VIEW pg_keeper.status AS SELECT * FROM pg_keeper.status();

-- What the keeper did and why, oldest first: state transitions with their
-- reason, promotions, switches to asynchronous replication and back,
-- fencing, and how after_command and state_change_command ended. The last
-- 128 are kept in shared memory and in $PGDATA/pg_keeper.events, so they
-- survive a restart and a promotion.
CREATE FUNCTION pg_keeper.events(
	OUT at timestamptz,
	OUT node text,				-- host:port of the server that recorded it
	OUT kind text,				-- start, stop, transition, action, after_command, state_change_command
	OUT from_state text,
	OUT to_state text,
	OUT trigger text,			-- what caused a transition
	OUT action text,			-- promote, switch-async, restore-sync, fence
	OUT ok boolean,
	OUT exit_status int,		-- of a command
	OUT duration interval,
	OUT detail text)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT
	(e->>'at')::timestamptz,
	e->>'node',
	e->>'kind',
	e->>'from',
	e->>'to',
	e->>'trigger',
	e->>'action',
	(e->>'ok')::boolean,
	(e->>'exit_status')::int,
	make_interval(secs => (e->>'duration_ms')::float8 / 1000),
	e->>'detail'
FROM jsonb_array_elements(pg_keeper._events()::jsonb) WITH ORDINALITY AS x(e, n)
ORDER BY n
$$;

-- Requests to the keeper (bgworker/request.c): each waits for the keeper's
-- answer and returns it, or raises an ERROR with it when the keeper refused
-- or failed. One request at a time per server.

-- A planned swap of roles with the standby: run on the master. Waits at
-- most 3 minutes for the keeper's answer.
CREATE FUNCTION pg_keeper.switchover() RETURNS text
AS 'MODULE_PATHNAME', 'pg_keeper_switchover'
LANGUAGE C VOLATILE STRICT;

-- Maintenance mode (pg_keeper.maintenance): while paused, no promotion,
-- switchover or rejoin happens. Run on the master; the standby learns it
-- from the master. pause() takes a free-text reason for the record.
CREATE FUNCTION pg_keeper.pause(reason text DEFAULT '') RETURNS text
AS 'MODULE_PATHNAME', 'pg_keeper_pause'
LANGUAGE C VOLATILE;

CREATE FUNCTION pg_keeper.resume() RETURNS text
AS 'MODULE_PATHNAME', 'pg_keeper_resume'
LANGUAGE C VOLATILE STRICT;

-- Called by the master's keeper on the standby during a switchover: take
-- over once the master has stopped at lsn, or call it off. Not meant for
-- operators.
CREATE FUNCTION pg_keeper._takeover(lsn text) RETURNS text
AS 'MODULE_PATHNAME', 'pg_keeper_takeover'
LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION pg_keeper._takeover_cancel() RETURNS text
AS 'MODULE_PATHNAME', 'pg_keeper_takeover_cancel'
LANGUAGE C VOLATILE STRICT;

-- Readable by superusers and pg_monitor; nothing here is writable.
REVOKE ALL ON FUNCTION pg_keeper._status(), pg_keeper._events(), pg_keeper._timeline(),
	pg_keeper.status(), pg_keeper.events() FROM PUBLIC;
REVOKE ALL ON pg_keeper.status FROM PUBLIC;
GRANT USAGE ON SCHEMA pg_keeper TO pg_monitor;
GRANT EXECUTE ON FUNCTION pg_keeper._status(), pg_keeper._events(), pg_keeper._timeline(),
	pg_keeper.status(), pg_keeper.events() TO pg_monitor;
GRANT SELECT ON pg_keeper.status TO pg_monitor;

-- The requests change what the pair does: superusers only.
REVOKE ALL ON FUNCTION pg_keeper.switchover(), pg_keeper.pause(text), pg_keeper.resume(),
	pg_keeper._takeover(text), pg_keeper._takeover_cancel() FROM PUBLIC;
