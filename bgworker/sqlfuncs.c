/*
 * sqlfuncs.c
 *		The SQL-callable functions behind pg_keeper.status() and
 *		pg_keeper.events().
 *
 * They return the JSON texts the keeper published; the extension's SQL
 * script turns them into columns.  Who may call them is the script's
 * business too (superusers and pg_monitor).
 */
#include "postgres.h"

#include "access/xlog.h"
#include "fmgr.h"
#include "replication/walreceiver.h"
#include "lib/stringinfo.h"
#include "storage/lwlock.h"
#include "utils/builtins.h"

#include "pg_keeper.h"

PG_FUNCTION_INFO_V1(pg_keeper_status_json);
PG_FUNCTION_INFO_V1(pg_keeper_events_json);
PG_FUNCTION_INFO_V1(pg_keeper_timeline);

/* The shared memory, or an ERROR when pg_keeper was not preloaded. */
PgkShared *
pgk_require_shared(void)
{
	PgkShared  *shared = pgk_shared();

	if (shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_keeper is not running on this server"),
				 errhint("Add pg_keeper to shared_preload_libraries and restart the server.")));
	return shared;
}

/* The keeper's last published status; NULL before its first. */
Datum
pg_keeper_status_json(PG_FUNCTION_ARGS)
{
	PgkShared  *shared = pgk_require_shared();
	char	   *copy;

	LWLockAcquire(shared->lock, LW_SHARED);
	copy = pstrdup(shared->status);
	LWLockRelease(shared->lock);
	if (copy[0] == '\0')
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(copy));
}

/* The recent events as a JSON array, oldest first. */
Datum
pg_keeper_events_json(PG_FUNCTION_ARGS)
{
	PgkShared  *shared = pgk_require_shared();
	StringInfoData buf;
	uint64		first;

	/* Sized before taking the lock: nothing may fail while it is held. */
	initStringInfo(&buf);
	enlargeStringInfo(&buf, PGK_EVENT_SLOTS * PGK_EVENT_MAX + 2);
	appendStringInfoChar(&buf, '[');

	LWLockAcquire(shared->lock, LW_SHARED);
	first = shared->nevents > PGK_EVENT_SLOTS ? shared->nevents - PGK_EVENT_SLOTS : 0;
	for (uint64 i = first; i < shared->nevents; i++)
	{
		if (i > first)
			appendStringInfoChar(&buf, ',');
		appendStringInfoString(&buf, shared->events[i % PGK_EVENT_SLOTS]);
	}
	LWLockRelease(shared->lock);

	appendStringInfoChar(&buf, ']');
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

/*
 * This server's timeline: the one it writes WAL on, or, in recovery, the one
 * it receives (or else replays) WAL on.  The same as the keeper's heartbeat
 * reads on a partner, which may not have the extension.
 */
Datum
pg_keeper_timeline(PG_FUNCTION_ARGS)
{
	TimeLineID	tli = 0;

	if (!RecoveryInProgress())
		PG_RETURN_INT32((int32) pgk_insert_timeline());
	(void) GetWalRcvFlushRecPtr(NULL, &tli);
	if (tli == 0)
		(void) GetXLogReplayRecPtr(&tli);
	PG_RETURN_INT32((int32) tli);
}
