/*
 * pg_keeper.h
 *		Declarations shared by the files of the C shim.
 */
#ifndef PG_KEEPER_H
#define PG_KEEPER_H

#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/lwlock.h"

#include "pg_keeper_bridge.h"

/* Settings (guc.c). */
extern char *pgk_partner_conninfo;
extern char *pgk_my_conninfo;
extern char *pgk_after_command;
extern double pgk_keepalives_time;
extern int	pgk_keepalives_count;
extern int	pgk_after_command_timeout;
extern int	pgk_max_failover_lag;
extern int	pgk_on_partner_timeout;
extern char *pgk_state_change_command;
extern int	pgk_state_change_command_timeout;

/* Values of pg_keeper.on_partner_timeout. */
#define PGK_TIMEOUT_KEEP_MASTER 0
#define PGK_TIMEOUT_FAILOVER 1

extern void pgk_define_gucs(void);

/*
 * Shared memory (shared.c).  The worker writes status and events under lock;
 * backends copy them out under a shared lock.
 */
typedef struct PgkShared
{
	pg_atomic_uint32 fence;		/* PGK_FENCE_* */
	pg_atomic_uint32 held;		/* client connections waiting for the fence */
	ConditionVariable fence_cv; /* broadcast when the fence changes */
	LWLock	   *lock;			/* protects the rest */
	char		status[PGK_STATUS_MAX];	/* JSON; empty before the first */
	uint64		nevents;		/* events added since the worker started */
	char		events[PGK_EVENT_SLOTS][PGK_EVENT_MAX];	/* ring of JSON texts */
} PgkShared;

extern void pgk_shared_init(void);
extern PgkShared *pgk_shared(void);
extern int	pgk_publish_status(const char *json);
extern int	pgk_add_event(const char *json);
extern int	pgk_reset_events(void);

/* The fence that holds client connections (fence.c). */
extern void pgk_fence_init(void);
extern int	pgk_fence_set(int state);
extern int	pgk_fence_get(void);

/* Callbacks handed to the Go library (bridge.c). */
extern void pgk_bridge_init(PgkBridge *bridge);

/* The worker's main function (worker.c); exported for the postmaster. */
extern PGDLLEXPORT void pg_keeper_main(Datum main_arg);

#endif							/* PG_KEEPER_H */
