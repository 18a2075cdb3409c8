/*
 * request.c
 *		How a SQL session asks the keeper worker for something and waits for
 *		its answer: pg_keeper.switchover(), pause() and resume(), and the
 *		_takeover() calls one keeper makes on its partner during a
 *		switchover.
 *
 * There is one slot in shared memory (shared.c), so one request at a time.
 * The session writes its request, sets the worker's latch and sleeps on a
 * condition variable; the worker takes the request at its next wake-up (the
 * Go side decides what it means) and answers when it is done.  Sequence
 * numbers tie the answer to the request: a session that gave up leaves the
 * slot to the next one, and an answer to a replaced request goes nowhere.
 *
 * Who may call these functions is the extension script's business
 * (superusers only).
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "pg_keeper.h"

PG_FUNCTION_INFO_V1(pg_keeper_switchover);
PG_FUNCTION_INFO_V1(pg_keeper_pause);
PG_FUNCTION_INFO_V1(pg_keeper_resume);
PG_FUNCTION_INFO_V1(pg_keeper_takeover);
PG_FUNCTION_INFO_V1(pg_keeper_takeover_cancel);

/*
 * Sequence numbers stay within 1..INT_MAX: take_request returns them as an
 * int, in which 0 means "none" and negative values are errors.
 */
static uint32
next_seq(uint32 seq)
{
	return seq >= INT_MAX ? 1 : seq + 1;
}

/*
 * Whether the last request still has a session waiting for its answer.
 * Caller holds shared->lock.
 */
static bool
request_waiting(PgkShared *shared, TimestampTz now)
{
	return shared->req_seq != shared->ans_seq &&
		!TimestampDifferenceExceeds(shared->req_time, now, shared->req_timeout_ms);
}

/*
 * Store the request, made at now, and wake the worker; returns the
 * request's seq.  The checks run under the lock, the ERRORs after it.
 */
static uint32
send_request(PgkShared *shared, int kind, const char *arg, TimestampTz now,
			 int timeout_ms)
{
	Latch	   *latch;
	bool		busy;
	uint32		seq = 0;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	latch = shared->keeper_latch;
	busy = request_waiting(shared, now);
	if (latch != NULL && !busy)
	{
		seq = next_seq(shared->req_seq);
		shared->req_seq = seq;
		shared->req_kind = kind;
		strlcpy(shared->req_arg, arg, sizeof(shared->req_arg));
		shared->req_time = now;
		shared->req_timeout_ms = timeout_ms;
	}
	LWLockRelease(shared->lock);

	if (latch == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the pg_keeper worker is not running"),
				 errhint("It restarts within seconds after a failure; see the server log.")));
	if (busy)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("another pg_keeper request is under way")));
	SetLatch(latch);
	return seq;
}

/*
 * Sleep until the answer to request seq arrives (true, with ok and msg) or
 * the deadline passes (false).  A cancel or terminate that interrupts the
 * sleep ends the transaction, which cancels the sleep too.
 */
static bool
await_answer(PgkShared *shared, uint32 seq, TimestampTz deadline,
			 bool *ok, char *msg)
{
	bool		answered = false;

	for (;;)
	{
		LWLockAcquire(shared->lock, LW_SHARED);
		if (shared->ans_seq == seq)
		{
			answered = true;
			*ok = shared->ans_ok;
			strlcpy(msg, shared->ans_msg, PGK_ANSWER_MAX);
		}
		LWLockRelease(shared->lock);
		if (answered || GetCurrentTimestamp() >= deadline)
			break;

		/*
		 * The first call only prepares the sleep, so an answer written
		 * between the check above and the sleep is not missed.  The short
		 * timeout is for noticing the deadline.
		 */
		ConditionVariableTimedSleep(&shared->req_cv, 100, pgk_wait_event(PGK_WAIT_REQUEST));
		CHECK_FOR_INTERRUPTS();
	}
	ConditionVariableCancelSleep();
	return answered;
}

/*
 * A session that gives up (cancel, terminate) withdraws its request unless
 * the keeper took it already: the slot is free for the next one, and the
 * keeper never carries out what nobody waits for.
 */
static bool
withdraw_request(PgkShared *shared, uint32 seq)
{
	bool		taken;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	taken = shared->taken_seq == seq;
	if (shared->req_seq == seq && shared->ans_seq != seq && !taken)
	{
		shared->ans_seq = seq;
		shared->ans_ok = false;
		strlcpy(shared->ans_msg, "withdrawn: the session gave up", PGK_ANSWER_MAX);
	}
	LWLockRelease(shared->lock);
	return taken;
}

/* On an error or FATAL while waiting: see withdraw_request. */
static void
withdraw_callback(int code, Datum arg)
{
	PgkShared  *shared = pgk_shared();

	if (shared != NULL)
		(void) withdraw_request(shared, DatumGetUInt32(arg));
}

/*
 * Ask the keeper for kind (arg: its argument, NULL for none) and wait at
 * most timeout_s for the answer: its message, or an ERROR with it when the
 * keeper refused or failed.
 */
static text *
pgk_request(int kind, const char *arg, int timeout_s)
{
	PgkShared  *shared = pgk_require_shared();
	char		msg[PGK_ANSWER_MAX];
	bool		ok = false;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz deadline = TimestampTzPlusMilliseconds(now, timeout_s * 1000);
	uint32		seq;
	bool		answered;
	char	   *text_msg;

	/* The deadline is the one the slot keeps: the worker sees it too. */
	seq = send_request(shared, kind, arg ? arg : "", now, timeout_s * 1000);
	/* A cancel (ERROR) or a terminate (FATAL) withdraws the request too. */
	PG_ENSURE_ERROR_CLEANUP(withdraw_callback, UInt32GetDatum(seq));
	{
		answered = await_answer(shared, seq, deadline, &ok, msg);
	}
	PG_END_ENSURE_ERROR_CLEANUP(withdraw_callback, UInt32GetDatum(seq));
	if (!answered)
	{
		/* Under the lock: the keeper takes it, or never will. */
		bool		taken = withdraw_request(shared, seq);

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_keeper did not answer within %d s", timeout_s),
				 taken ?
				 errdetail("The keeper took the request and may still carry it out: see pg_keeper.events() and the server log.") :
				 errdetail("The keeper did not take the request, and will not.")));
	}
	/* The keeper writes UTF-8; the session reads the database's encoding. */
	text_msg = pg_any_to_server(msg, strlen(msg), PG_UTF8);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s", text_msg)));
	return cstring_to_text(text_msg);
}

/*
 * Argument argno as a request's argument, cut at a character boundary to
 * fit the slot; NULL is the empty string.  buf has PGK_REQUEST_ARG_MAX
 * bytes.
 */
static const char *
request_arg(FunctionCallInfo fcinfo, int argno, char *buf)
{
	text	   *t;
	char	   *s;
	char	   *utf8;
	int			len;

	buf[0] = '\0';
	if (PG_ARGISNULL(argno))
		return buf;
	t = PG_GETARG_TEXT_PP(argno);
	s = text_to_cstring(t);
	/* The keeper reads UTF-8, whatever the database's encoding. */
	utf8 = pg_server_to_any(s, strlen(s), PG_UTF8);
	len = pg_encoding_mbcliplen(PG_UTF8, utf8, strlen(utf8), PGK_REQUEST_ARG_MAX - 1);
	memcpy(buf, utf8, len);
	buf[len] = '\0';
	return buf;
}

/* A planned swap of roles; run on the master. */
Datum
pg_keeper_switchover(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(pgk_request(PGK_REQ_SWITCHOVER, NULL, 180));
}

/* Maintenance mode on; run on the master, the standby learns it from it. */
Datum
pg_keeper_pause(PG_FUNCTION_ARGS)
{
	char		reason[PGK_REQUEST_ARG_MAX];

	PG_RETURN_TEXT_P(pgk_request(PGK_REQ_PAUSE, request_arg(fcinfo, 0, reason), 30));
}

/* Maintenance mode off. */
Datum
pg_keeper_resume(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(pgk_request(PGK_REQ_RESUME, NULL, 30));
}

/*
 * On the standby, from the master's keeper during a switchover: take over
 * once the master has stopped at the given LSN.
 */
Datum
pg_keeper_takeover(PG_FUNCTION_ARGS)
{
	char		lsn[PGK_REQUEST_ARG_MAX];

	PG_RETURN_TEXT_P(pgk_request(PGK_REQ_TAKEOVER, request_arg(fcinfo, 0, lsn), 15));
}

/* On the standby, from the master's keeper: the switchover was called off. */
Datum
pg_keeper_takeover_cancel(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(pgk_request(PGK_REQ_TAKEOVER_CANCEL, NULL, 15));
}

/*
 * The worker's side: hand over the waiting request not yet handed over, at
 * most once.  A request whose session gave up is left alone: nobody would
 * hear the answer, and a switchover long after it was asked for would be a
 * surprise.  Returns its seq, or 0 when there is none.
 */
int
pgk_take_request(int *kind, char *arg, int arglen)
{
	PgkShared  *shared = pgk_shared();
	TimestampTz now = GetCurrentTimestamp();
	int			seq = 0;

	if (shared == NULL || arglen <= 0)
		return PGK_ERR_PG;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (shared->req_seq != shared->taken_seq && request_waiting(shared, now))
	{
		seq = (int) shared->req_seq;
		*kind = shared->req_kind;
		strlcpy(arg, shared->req_arg, arglen);
		shared->taken_seq = shared->req_seq;
	}
	LWLockRelease(shared->lock);
	return seq;
}

/*
 * The worker's answer to request seq, cut to fit at a UTF-8 character
 * boundary (the Go side writes UTF-8).
 */
int
pgk_answer_request(uint32 seq, bool ok, const char *msg)
{
	PgkShared  *shared = pgk_shared();
	size_t		len = strlen(msg);

	if (shared == NULL)
		return PGK_ERR_PG;
	if (len >= PGK_ANSWER_MAX)
	{
		len = PGK_ANSWER_MAX - 1;
		while (len > 0 && (msg[len] & 0xC0) == 0x80)
			len--;
	}
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (seq == shared->req_seq)
	{
		shared->ans_seq = seq;
		shared->ans_ok = ok;
		memcpy(shared->ans_msg, msg, len);
		shared->ans_msg[len] = '\0';
	}
	LWLockRelease(shared->lock);
	ConditionVariableBroadcast(&shared->req_cv);
	return PGK_OK;
}

/*
 * The worker exits (worker.c): a request it took and has not answered would
 * keep its session waiting until the deadline for nothing.  End the wait
 * now, with an ERROR that says the outcome is unknown.
 */
void
pgk_drop_taken_request(void)
{
	PgkShared  *shared = pgk_shared();
	bool		dropped = false;

	if (shared == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (shared->taken_seq == shared->req_seq && shared->ans_seq != shared->req_seq)
	{
		shared->ans_seq = shared->req_seq;
		shared->ans_ok = false;
		strlcpy(shared->ans_msg,
				"the pg_keeper worker stopped before answering: see pg_keeper.events() and the server log for what it did",
				sizeof(shared->ans_msg));
		dropped = true;
	}
	LWLockRelease(shared->lock);
	if (dropped)
		ConditionVariableBroadcast(&shared->req_cv);
}
