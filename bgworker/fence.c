/*
 * fence.c
 *		Keep a primary that may have been replaced from taking writes.
 *
 * A server that starts as a primary is "unconfirmed": its partner may have
 * been promoted while it was down.  Until its keeper has seen the partner
 * answer as its standby (or as a primary on an older timeline), or an
 * operator has confirmed it, two things hold:
 *
 * - Client connections wait, for at most 2 × keepalives_time + 1 s (less
 *   than authentication_timeout), for the verdict; then they are refused
 *   with an error that says why.  At most half of max_connections wait at
 *   once, so held clients cannot use up every connection slot.
 * - No transaction that wrote anything commits, whoever runs it: a session
 *   let in by name, a replication=database walsender, an extension's
 *   worker.  This is what makes the fence a guarantee; the hold only makes
 *   the common case (the partner answers within one heartbeat) invisible.
 *
 * Nothing but the keeper opens the fence: no timeout, no name.  A dead
 * worker leaves it shut.  If the keeper finds that the partner was promoted
 * after this server, it fences it: connections are refused and the server
 * shuts down.
 *
 * The flag lives in shared memory (shared.c), so it outlives a restart of
 * the worker; a restart of the server, crash recovery included, re-creates
 * it unconfirmed.
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/postmaster.h"
#include "replication/walsender.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "utils/timestamp.h"

#include "pg_keeper.h"

static ClientAuthentication_hook_type prev_client_auth_hook = NULL;

/*
 * The keepers' own sessions (heartbeats, local checks) must never wait: a
 * held heartbeat would look like a dead partner.  They are recognised by
 * name, which any client can send, so a session let in this way is only
 * let in: the commit check below still refuses its writes.  Physical
 * walsenders (standbys, pg_basebackup) run no SQL at all.
 */
static bool
let_in(Port *port)
{
	if (am_walsender && !am_db_walsender)
		return true;
	return port->application_name != NULL &&
		strcmp(port->application_name, PGK_APPLICATION_NAME) == 0;
}

/* Also run when an error or a FATAL (pg_terminate_backend) ends the wait. */
static void
stop_holding(int code, Datum arg)
{
	PgkShared  *shared = (PgkShared *) DatumGetPointer(arg);

	ConditionVariableCancelSleep();
	pg_atomic_sub_fetch_u32(&shared->held, 1);
}

static void
refuse_unconfirmed(void)
{
	ereport(FATAL,
			(errcode(ERRCODE_CANNOT_CONNECT_NOW),
			 errmsg("pg_keeper: this primary has not confirmed that its partner did not replace it, and refuses connections"),
			 errdetail("Its keeper has not yet seen the partner answer as its standby since this server started."),
			 errhint("If the partner is gone for good, or this is the first start of a new pair, "
					 "confirm this server as the primary: touch $PGDATA/%s (the server log has the details).",
					 PGK_CONFIRM_FILE)));
}

/* Wait for the keeper's verdict, within the bound described above. */
static void
hold(PgkShared *shared)
{
	TimestampTz deadline;

	if (pg_atomic_add_fetch_u32(&shared->held, 1) > (uint32) Max(MaxConnections / 2, 1))
	{
		pg_atomic_sub_fetch_u32(&shared->held, 1);
		refuse_unconfirmed();
	}
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   (int) Min(pgk_keepalives_time * 2000.0 + 1000.0,
													 Max(AuthenticationTimeout - 1, 1) * 1000.0));
	PG_ENSURE_ERROR_CLEANUP(stop_holding, PointerGetDatum(shared));
	{
		ConditionVariablePrepareToSleep(&shared->fence_cv);
		while (pg_atomic_read_u32(&shared->fence) == PGK_FENCE_UNCONFIRMED && !RecoveryInProgress())
		{
			long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

			if (left <= 0)
				break;
			/* Woken by pgk_fence_set(); the timeout bounds the wait. */
			ConditionVariableTimedSleep(&shared->fence_cv, left, pgk_wait_event(PGK_WAIT_FENCE));
		}
	}
	PG_END_ENSURE_ERROR_CLEANUP(stop_holding, PointerGetDatum(shared));
	stop_holding(0, PointerGetDatum(shared));
}

static void
fence_client_auth(Port *port, int status)
{
	PgkShared  *shared = pgk_shared();

	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	if (status != STATUS_OK || shared == NULL || let_in(port))
		return;
	/* A standby cannot be written to: nothing to hold back. */
	if (pg_atomic_read_u32(&shared->fence) == PGK_FENCE_OPEN || RecoveryInProgress())
		return;

	if (pg_atomic_read_u32(&shared->fence) == PGK_FENCE_UNCONFIRMED)
		hold(shared);
	if (RecoveryInProgress())
		return;
	switch (pg_atomic_read_u32(&shared->fence))
	{
		case PGK_FENCE_OPEN:
			return;
		case PGK_FENCE_SWITCHING:
		case PGK_FENCE_NO_LEASE:
			/* Reads and a look at pg_keeper.status; commits are refused. */
			return;
		case PGK_FENCE_STOPPING:
			ereport(FATAL,
					(errcode(ERRCODE_CANNOT_CONNECT_NOW),
					 errmsg("pg_keeper: this server is stopping to restart as a standby of its partner"),
					 errhint("Connect to its partner, the primary.")));
			break;
		case PGK_FENCE_FENCED:
			ereport(FATAL,
					(errcode(ERRCODE_CANNOT_CONNECT_NOW),
					 errmsg("pg_keeper: this server was superseded by its partner and refuses connections"),
					 errhint("Its partner was promoted after it: rebuild this server as a standby of the new primary "
							 "(the server log has the steps).")));
			break;
		default:
			refuse_unconfirmed();
	}
}

/*
 * The guarantee: a transaction that wrote (it has a transaction id) does
 * not commit on a primary whose fence is not open.  Autovacuum is left
 * alone: it writes no client data, and its errors would only fill the log.
 */
/*
 * A commit that passed the check is counted until it is done, so that the
 * keeper, once it has closed the fence, can wait for the commit records
 * still to come (a switchover reads where the WAL ends after that).  The
 * count goes up before the fence is read, the keeper reads it after
 * setting the fence: each sees the other's write (both are full barriers).
 */
static bool counted = false;

static void
fence_xact_callback(XactEvent event, void *arg)
{
	PgkShared  *shared = pgk_shared();
	uint32		fence;

	if (shared == NULL)
		return;
	if (event != XACT_EVENT_PRE_COMMIT && event != XACT_EVENT_PRE_PREPARE)
	{
		/* Commit, prepare or abort: the transaction is done. */
		if (counted)
			pg_atomic_fetch_sub_u32(&shared->committing, 1);
		counted = false;
		return;
	}
	if (!TransactionIdIsValid(GetTopTransactionIdIfAny()) || pgk_am_autovacuum_worker())
		return;
	if (!counted)
		pg_atomic_fetch_add_u32(&shared->committing, 1);
	counted = true;
	fence = pg_atomic_read_u32(&shared->fence);
	if (fence == PGK_FENCE_OPEN)
		return;
	pg_atomic_fetch_sub_u32(&shared->committing, 1);
	counted = false;
	ereport(ERROR,
			(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
			 fence == PGK_FENCE_FENCED ?
			 errmsg("pg_keeper: this server was superseded by its partner: writes are refused") :
			 fence == PGK_FENCE_SWITCHING || fence == PGK_FENCE_STOPPING ?
			 errmsg("pg_keeper: this server is handing the primary's role to its partner: writes are refused") :
			 fence == PGK_FENCE_NO_LEASE ?
			 errmsg("pg_keeper: this primary reaches neither its standby nor the witness, and its lease is over: writes are refused") :
			 errmsg("pg_keeper: this primary has not confirmed that its partner did not replace it: writes are refused"),
			 errhint("See pg_keeper.status and the server log.")));
}

void
pgk_fence_init(void)
{
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = fence_client_auth;
	RegisterXactCallback(fence_xact_callback, NULL);
}

/* The keeper's verdict; fencing also asks the postmaster for a fast shutdown. */
int
pgk_fence_set(int state)
{
	PgkShared  *shared = pgk_shared();

	if (shared == NULL)
		return PGK_ERR_PG;
	pg_atomic_write_u32(&shared->fence, (uint32) state);
	ConditionVariableBroadcast(&shared->fence_cv);
	if (state == PGK_FENCE_FENCED || state == PGK_FENCE_STOPPING)
		kill(PostmasterPid, SIGINT);
	return PGK_OK;
}

/*
 * The counter of commits past the fence's check and not done yet, which the
 * keeper reads (with a full barrier, after setting the fence) from a thread
 * of its own; NULL without shared memory.
 */
volatile unsigned int *
pgk_fence_committing_counter(void)
{
	PgkShared  *shared = pgk_shared();

	StaticAssertStmt(sizeof(shared->committing.value) == sizeof(unsigned int),
					 "the counter is read as an unsigned int");
	return shared == NULL ? NULL : &shared->committing.value;
}

int
pgk_fence_get(void)
{
	PgkShared  *shared = pgk_shared();

	if (shared == NULL)
		return PGK_ERR_PG;
	return (int) pg_atomic_read_u32(&shared->fence);
}
