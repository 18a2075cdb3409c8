/*
 * pg_keeper.h
 *		Declarations shared by the files of the C shim.
 */
#ifndef PG_KEEPER_H
#define PG_KEEPER_H

#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

#include "compat.h"
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
extern bool pgk_maintenance;
extern bool pgk_auto_rejoin;
extern char *pgk_witness_conninfo;
extern char *pgk_fence_command;
extern int	pgk_fence_command_timeout;

/* Values of pg_keeper.on_partner_timeout. */
#define PGK_TIMEOUT_KEEP_MASTER 0
#define PGK_TIMEOUT_FAILOVER 1

extern void pgk_define_gucs(void);
extern void pgk_define_server_state(void);

/*
 * Shared memory (shared.c).  The worker writes status and events under lock;
 * backends copy them out under a shared lock.  The request slot goes the
 * other way: a backend writes a request, the worker takes it and answers
 * (request.c).  Nothing may ereport while holding the lock.
 */
typedef struct PgkShared
{
	pg_atomic_uint32 fence;		/* PGK_FENCE_* */
	pg_atomic_uint32 held;		/* client connections waiting for the fence */
	pg_atomic_uint32 committing;	/* commits past the fence's check, not yet done */
	ConditionVariable fence_cv; /* broadcast when the fence changes */
	LWLock	   *lock;			/* protects the rest */
	char		status[PGK_STATUS_MAX];	/* JSON; empty before the first */
	uint64		nevents;		/* events added since the worker started */
	char		events[PGK_EVENT_SLOTS][PGK_EVENT_MAX];	/* ring of JSON texts */

	Latch	   *keeper_latch;	/* the running worker's; NULL when none */

	/* The request slot: the last request a session made... */
	uint32		req_seq;		/* 0: none yet */
	int			req_kind;		/* PGK_REQ_* */
	char		req_arg[PGK_REQUEST_ARG_MAX];
	TimestampTz req_time;		/* when it was made */
	int			req_timeout_ms; /* how long its session waits */
	/* ...whether the keeper took it... */
	uint32		taken_seq;
	/* ...and the last answer. */
	uint32		ans_seq;
	bool		ans_ok;
	char		ans_msg[PGK_ANSWER_MAX];
	ConditionVariable req_cv;	/* broadcast when an answer is written */
} PgkShared;

extern void pgk_shared_init(void);
extern PgkShared *pgk_shared(void);
extern PgkShared *pgk_require_shared(void);	/* sqlfuncs.c */
extern int	pgk_publish_status(const char *json);
extern int	pgk_add_event(const char *json);
extern int	pgk_reset_events(void);

/* SQL's requests to the keeper, the worker's side (request.c). */
extern int	pgk_take_request(int *kind, char *arg, int arglen);
extern int	pgk_answer_request(uint32 seq, bool ok, const char *msg);
extern void pgk_drop_taken_request(void);

/* The fence that holds client connections (fence.c). */
extern void pgk_fence_init(void);
extern int	pgk_fence_set(int state);
extern int	pgk_fence_get(void);
extern volatile unsigned int *pgk_fence_committing_counter(void);

/* Callbacks handed to the Go library (bridge.c). */
extern void pgk_bridge_init(PgkBridge *bridge);

/* The worker's main function (worker.c); exported for the postmaster. */
extern PGDLLEXPORT void pg_keeper_main(Datum main_arg);

#endif							/* PG_KEEPER_H */
