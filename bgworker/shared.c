/*
 * shared.c
 *		The shared memory that the keeper publishes into and that every
 *		backend reads: the fence flag, the keeper's status and its recent
 *		events; and the slot through which a backend sends the keeper a
 *		request (request.c).
 *
 * The worker is the only writer, but for the request slot.  The status and
 * the events are opaque JSON texts to the shim: the Go side owns their
 * content, SQL gives them columns (sql/pg_keeper--1.0.sql).  The events also live in a file in the data
 * directory, from which a starting worker reloads them: shared memory is
 * lost when the server stops.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "pg_keeper.h"

static PgkShared *shared = NULL;

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
shared_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(PgkShared)));
	RequestNamedLWLockTranche("pg_keeper", 1);
}

static void
shared_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("pg_keeper", sizeof(PgkShared), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(PgkShared));
		pg_atomic_init_u32(&shared->fence, PGK_FENCE_UNCONFIRMED);
		pg_atomic_init_u32(&shared->held, 0);
		pg_atomic_init_u32(&shared->committing, 0);
		ConditionVariableInit(&shared->fence_cv);
		ConditionVariableInit(&shared->req_cv);
		shared->lock = &(GetNamedLWLockTranche("pg_keeper")->lock);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
pgk_shared_init(void)
{
	pgk_on_shmem_request(shared_request);
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shared_startup;
}

/* NULL when pg_keeper was not in shared_preload_libraries. */
PgkShared *
pgk_shared(void)
{
	return shared;
}

int
pgk_publish_status(const char *json)
{
	size_t		len = strlen(json);

	if (shared == NULL || len >= PGK_STATUS_MAX)
		return PGK_ERR_PG;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	memcpy(shared->status, json, len + 1);
	LWLockRelease(shared->lock);
	return PGK_OK;
}

int
pgk_add_event(const char *json)
{
	size_t		len = strlen(json);

	if (shared == NULL || len >= PGK_EVENT_MAX)
		return PGK_ERR_PG;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	memcpy(shared->events[shared->nevents % PGK_EVENT_SLOTS], json, len + 1);
	shared->nevents++;
	LWLockRelease(shared->lock);
	return PGK_OK;
}

int
pgk_reset_events(void)
{
	if (shared == NULL)
		return PGK_ERR_PG;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->nevents = 0;
	LWLockRelease(shared->lock);
	return PGK_OK;
}
