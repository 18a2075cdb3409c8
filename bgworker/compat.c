/*
 * compat.c
 *		The functions of compat.h: each PostgreSQL major's way of doing the
 *		few things that changed between 13 and 18.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "postmaster/autovacuum.h"
#if PG_VERSION_NUM >= 170000
#include "replication/slotsync.h"
#endif
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#if PG_VERSION_NUM >= 140000
#include "utils/wait_event.h"
#else
#include "pgstat.h"
#endif

#include "compat.h"

XLogRecPtr
pgk_flush_lsn(void)
{
#if PG_VERSION_NUM >= 150000
	return GetFlushRecPtr(NULL);
#else
	return GetFlushRecPtr();
#endif
}

TimeLineID
pgk_insert_timeline(void)
{
#if PG_VERSION_NUM >= 150000
	return GetWALInsertionTimeLine();
#else
	/* Set by RecoveryInProgress() when it first sees recovery over. */
	return ThisTimeLineID;
#endif
}

bool
pgk_am_autovacuum_worker(void)
{
#if PG_VERSION_NUM >= 170000
	return AmAutoVacuumWorkerProcess();
#else
	return IsAutoVacuumWorkerProcess();
#endif
}

bool
pgk_sync_slots(void)
{
#if PG_VERSION_NUM >= 170000
	return sync_replication_slots;
#else
	return false;
#endif
}

void
pgk_reserve_guc_prefix(void)
{
#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("pg_keeper");
#else
	EmitWarningsOnPlaceholders("pg_keeper");
#endif
}

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static void (*shmem_request_fn) (void) = NULL;

static void
chained_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	shmem_request_fn();
}
#endif

void
pgk_on_shmem_request(void (*fn) (void))
{
#if PG_VERSION_NUM >= 150000
	shmem_request_fn = fn;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = chained_shmem_request;
#else
	fn();
#endif
}

uint32
pgk_wait_event(PgkWait which)
{
#if PG_VERSION_NUM >= 170000
	static const char *const names[PGK_WAIT_COUNT] = {
		[PGK_WAIT_MAIN] = "PgKeeperMain",
		[PGK_WAIT_FENCE] = "PgKeeperFence",
		[PGK_WAIT_REQUEST] = "PgKeeperRequest",
	};
	static uint32 ids[PGK_WAIT_COUNT];

	/* Registered in shared memory once per name, looked up once per process. */
	if (ids[which] == 0)
		ids[which] = WaitEventExtensionNew(names[which]);
	return ids[which];
#else
	(void) which;
	return PG_WAIT_EXTENSION;
#endif
}

struct WaitEventSet *
pgk_process_wait_set(int nevents)
{
#if PG_VERSION_NUM >= 170000
	return CreateWaitEventSet(NULL, nevents);
#else
	return CreateWaitEventSet(TopMemoryContext, nevents);
#endif
}
