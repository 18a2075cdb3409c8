/*
 * compat.h
 *		What differs between the PostgreSQL majors pg_keeper builds on, 13
 *		to 18, in one place: the other files use these names and never test
 *		PG_VERSION_NUM themselves.
 */
#ifndef PGK_COMPAT_H
#define PGK_COMPAT_H

#include "access/xlog.h"
#include "access/xlogdefs.h"
#include "fmgr.h"

#if PG_VERSION_NUM < 130000
#error "pg_keeper needs PostgreSQL 13 or newer"
#endif

#if PG_VERSION_NUM >= 150000
/* PrimaryConnInfo, RecoveryInProgress's neighbours: access/xlog.h before 15. */
#include "access/xlogrecovery.h"
#endif

/*
 * The module's magic block; 18 also records a name and version, which
 * pg_get_loaded_modules() shows.
 */
#if PG_VERSION_NUM >= 180000
#define PGK_MODULE_MAGIC PG_MODULE_MAGIC_EXT(.name = "pg_keeper", .version = PGK_VERSION)
#else
#define PGK_MODULE_MAGIC PG_MODULE_MAGIC
#endif

/* The release, as in pg_keeper.control's default_version. */
#define PGK_VERSION "1.0"

/* The position WAL is flushed to (15 added an out-argument for the timeline). */
extern XLogRecPtr pgk_flush_lsn(void);

/* The timeline a primary writes WAL on (call only once out of recovery). */
extern TimeLineID pgk_insert_timeline(void);

/* Whether this process is an autovacuum worker (17 renamed the test). */
extern bool pgk_am_autovacuum_worker(void);

/* Whether the server copies failover slots from its primary (17+). */
extern bool pgk_sync_slots(void);

/* Warn of pg_keeper.* settings that do not exist, and keep them out. */
extern void pgk_reserve_guc_prefix(void);

/*
 * Run fn where a library may ask for shared memory and LWLock tranches:
 * shmem_request_hook from 15, _PG_init itself before.
 */
extern void pgk_on_shmem_request(void (*fn) (void));

/*
 * The wait events pg_stat_activity shows for pg_keeper's waits: from 17
 * they have names of their own (wait_event_type 'Extension', wait_event
 * 'PgKeeperMain' and so on), before all are wait_event 'Extension'.
 */
typedef enum PgkWait
{
	PGK_WAIT_MAIN,				/* the keeper between heartbeats */
	PGK_WAIT_FENCE,				/* a session held by the fence */
	PGK_WAIT_REQUEST,			/* a session waiting for the keeper's answer */
	PGK_WAIT_COUNT
} PgkWait;

extern uint32 pgk_wait_event(PgkWait which);

/*
 * A wait event set that lives as long as the process (17 made its owner a
 * resource owner, where it was a memory context).
 */
struct WaitEventSet;
extern struct WaitEventSet *pgk_process_wait_set(int nevents);

#endif							/* PGK_COMPAT_H */
