/*
 * fence.c
 *		Keep an old master from serving writes.
 *
 * When a primary starts, client connections wait here until the keeper has
 * checked its partner (or for keepalives_time × (keepalives_count + 2) at
 * most, and less than authentication_timeout). If the keeper finds that the partner was promoted after this
 * server, it fences it: connections are refused and the server shuts down.
 *
 * The flag lives in shared memory (shared.c) so that every backend sees the
 * keeper's verdict; a crash restart of the server re-creates it unchecked.
 */
#include "postgres.h"

#include <signal.h>

#include "access/xlog.h"
#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "postmaster/postmaster.h"
#include "replication/walsender.h"
#include "utils/timestamp.h"

#include "pg_keeper.h"

static ClientAuthentication_hook_type prev_client_auth_hook = NULL;

/*
 * Exempt: replication connections (a walsender cannot write), and sessions
 * named pg_keeper: the keepers' own, and an operator's who needs to look at
 * a fenced server.
 */
static bool
exempt(Port *port)
{
	return am_walsender ||
		(port->application_name != NULL &&
		 strcmp(port->application_name, "pg_keeper") == 0);
}

static void
fence_client_auth(Port *port, int status)
{
	PgkShared  *shared = pgk_shared();
	TimestampTz deadline;

	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	if (status != STATUS_OK || shared == NULL || exempt(port))
		return;

	/* Stay within authentication_timeout, which would end the wait rudely. */
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   (int) Min(pgk_keepalives_time * (pgk_keepalives_count + 2) * 1000.0,
													 Max(AuthenticationTimeout - 1, 1) * 1000.0));
	while (pg_atomic_read_u32(&shared->fence) == PGK_FENCE_UNCHECKED)
	{
		/* A standby cannot be written to: nothing to hold back. */
		if (RecoveryInProgress() || GetCurrentTimestamp() >= deadline)
			return;
		CHECK_FOR_INTERRUPTS();
		pg_usleep(20 * 1000L);
	}
	if (pg_atomic_read_u32(&shared->fence) == PGK_FENCE_FENCED)
		ereport(FATAL,
				(errcode(ERRCODE_CANNOT_CONNECT_NOW),
				 errmsg("pg_keeper: this server was superseded by its partner and refuses connections"),
				 errhint("Its partner was promoted after it: rebuild this server as a standby of the new primary "
						 "(the server log has the steps).")));
}

void
pgk_fence_init(void)
{
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = fence_client_auth;
}

/* The keeper's verdict; fencing also asks the postmaster for a fast shutdown. */
int
pgk_fence_set(int state)
{
	PgkShared  *shared = pgk_shared();

	if (shared == NULL)
		return PGK_ERR_PG;
	pg_atomic_write_u32(&shared->fence, (uint32) state);
	if (state == PGK_FENCE_FENCED)
		kill(PostmasterPid, SIGINT);
	return PGK_OK;
}
