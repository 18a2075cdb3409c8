/*
 * guc.c
 *		pg_keeper's settings.
 *
 * The names, defaults and meanings are those of the C pg_keeper 1.x, so an
 * existing postgresql.conf keeps working.  keepalives_time is a real number
 * in seconds: "5" still means five seconds, and "200ms" works too (an integer
 * GUC in seconds would round 200ms to 0).
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "pg_keeper.h"

char	   *pgk_partner_conninfo = NULL;
char	   *pgk_my_conninfo = NULL;
char	   *pgk_after_command = NULL;
double		pgk_keepalives_time = 5.0;
int			pgk_keepalives_count = 4;
int			pgk_after_command_timeout = 60;
int			pgk_max_failover_lag = 0;
int			pgk_on_partner_timeout = PGK_TIMEOUT_KEEP_MASTER;
char	   *pgk_state_change_command = NULL;
int			pgk_state_change_command_timeout = 30;
bool		pgk_maintenance = false;
bool		pgk_auto_rejoin = false;
char	   *pgk_witness_conninfo = NULL;
char	   *pgk_fence_command = NULL;
int			pgk_fence_command_timeout = 30;

static const struct config_enum_entry on_partner_timeout_options[] = {
	{"keep_master", PGK_TIMEOUT_KEEP_MASTER, false},
	{"failover", PGK_TIMEOUT_FAILOVER, false},
	{NULL, 0, false}
};

void
pgk_define_gucs(void)
{
	DefineCustomStringVariable("pg_keeper.partner_conninfo",
							   "Connection string to the partner server (the other node of the pair).",
							   "Used for the heartbeat: the master polls the standby, the standby polls the master.",
							   &pgk_partner_conninfo,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_keeper.my_conninfo",
							   "Connection string pg_keeper uses to reach its own server.",
							   "Empty means the first unix_socket_directories entry, this server's port, "
							   "database postgres, as the OS user running the server.",
							   &pgk_my_conninfo,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomRealVariable("pg_keeper.keepalives_time",
							 "Interval between two heartbeats to the partner.",
							 "Also the deadline of each heartbeat. A number without unit is in seconds.",
							 &pgk_keepalives_time,
							 5.0,
							 0.01,
							 3600.0,
							 PGC_SIGHUP,
							 GUC_UNIT_S,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("pg_keeper.keepalives_count",
							"Consecutive failed heartbeats after which the partner is declared lost.",
							NULL,
							&pgk_keepalives_count,
							4,
							1,
							1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("pg_keeper.after_command",
							   "Shell command run after this standby promoted itself (for example STONITH).",
							   NULL,
							   &pgk_after_command,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("pg_keeper.after_command_timeout",
							"Time after which after_command is killed.",
							NULL,
							&pgk_after_command_timeout,
							60,
							1,
							86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_keeper.max_failover_lag",
							"WAL a standby may lack and still promote when the master was not synchronous with it.",
							"Measured against the master's position at the last good heartbeat. "
							"0: promote only a standby that was synchronous, so no acknowledged commit is lost.",
							&pgk_max_failover_lag,
							0,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("pg_keeper.on_partner_timeout",
							 "What a partner that only times out means: keep_master or failover.",
							 "keep_master: the master switches to asynchronous replication and keeps "
							 "serving, the standby does not promote. failover: the standby promotes, "
							 "the master keeps commits waiting. Set the same on both nodes.",
							 &pgk_on_partner_timeout,
							 PGK_TIMEOUT_KEEP_MASTER,
							 on_partner_timeout_options,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("pg_keeper.state_change_command",
							   "Shell command run after every change of the keeper's state.",
							   "For example to re-point a connection pooler at the new primary. "
							   "The environment describes the change (PG_KEEPER_OLD_STATE, PG_KEEPER_NEW_STATE, ...).",
							   &pgk_state_change_command,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("pg_keeper.state_change_command_timeout",
							"Time after which state_change_command is killed.",
							NULL,
							&pgk_state_change_command_timeout,
							30,
							1,
							3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("pg_keeper.maintenance",
							 "Pauses pg_keeper's automatic actions for planned work.",
							 "While on, no promotion, switchover or rejoin happens. Set it on the master "
							 "with pg_keeper.pause() and pg_keeper.resume(); the standby learns it from the master.",
							 &pgk_maintenance,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("pg_keeper.auto_rejoin",
							 "Lets a superseded old master rewind itself and restart as a standby of the new primary.",
							 "Needs wal_log_hints = on or data checksums, and pg_rewind next to the postgres executable.",
							 &pgk_auto_rejoin,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("pg_keeper.witness_conninfo",
							   "Connection string to a third PostgreSQL server that holds the pair's lease.",
							   "Empty: no witness. The keeper creates one table there, pg_keeper_lease "
							   "(see docs/witness.md).",
							   &pgk_witness_conninfo,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_keeper.fence_command",
							   "Shell command a standby runs to power off a master it cannot tell dead from cut off.",
							   "Exit status 0 means the master is off, and the standby promotes; anything else, no promotion.",
							   &pgk_fence_command,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("pg_keeper.fence_command_timeout",
							"Time after which fence_command is killed, and counts as failed.",
							NULL,
							&pgk_fence_command_timeout,
							30,
							1,
							3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	pgk_define_server_state();

	/* Report typos such as pg_keeper.keepalive_time in postgresql.conf. */
	pgk_reserve_guc_prefix();
}
