/*
 * bridge.c
 *		The callbacks the Go library uses to reach PostgreSQL.
 *
 * Each one checks that it runs on the worker's main thread, and catches any
 * ereport(ERROR) so that no longjmp crosses Go frames.
 */
#include "postgres.h"

#include <pthread.h>
#include <pwd.h>
#include <unistd.h>

#include "access/xlog.h"
#include "access/xloginsert.h"
#include "catalog/pg_control.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "replication/walreceiver.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/latch.h"
#include "storage/procsignal.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/ps_status.h"
#include "utils/timestamp.h"

#include "pg_keeper.h"

static pthread_t main_thread;

#define REQUIRE_MAIN_THREAD() \
	do { \
		if (!pthread_equal(pthread_self(), main_thread)) \
			return PGK_ERR_THREAD; \
	} while (0)

/*
 * Report an error caught by PG_CATCH to the log and forget it, as the
 * server's own long-lived processes do.
 */
static void
log_caught_error(MemoryContext oldcontext)
{
	MemoryContextSwitchTo(oldcontext);
	EmitErrorReport();
	FlushErrorState();
}

static int
bridge_log(int level, const char *msg)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	int			elevel;
	volatile int rc = PGK_OK;

	REQUIRE_MAIN_THREAD();

	switch (level)
	{
		case PGK_LEVEL_DEBUG:
			elevel = DEBUG1;
			break;
		case PGK_LEVEL_WARNING:
			elevel = WARNING;
			break;
		case PGK_LEVEL_ERROR:
			elevel = ERROR;
			break;
		default:
			elevel = LOG;
			break;
	}

	PG_TRY();
	{
		/* An ERROR lands in PG_CATCH, which logs it without aborting. */
		ereport(elevel, (errmsg_internal("%s", msg)));
	}
	PG_CATCH();
	{
		log_caught_error(oldcontext);
		if (elevel != ERROR)
			rc = PGK_ERR_PG;
	}
	PG_END_TRY();
	return rc;
}

static int
bridge_set_title(const char *title)
{
	REQUIRE_MAIN_THREAD();
	set_ps_display(title);
	return PGK_OK;
}

static int	replication_state(void);

/*
 * The keeper's wait set, made once: WaitLatchOrSocket would make and free
 * one per wait (an epoll instance and its registrations, five system calls
 * a time), and the keeper's wait wakes up to ten times a second to look at
 * replication.  Made again only for another fd.
 */
static WaitEventSet *keeper_set;
static int	keeper_set_fd = -1;

static WaitEventSet *
keeper_wait_set(int fd)
{
	WaitEventSet *set;

	if (keeper_set != NULL && keeper_set_fd == fd)
		return keeper_set;
	if (keeper_set != NULL)
		FreeWaitEventSet(keeper_set);
	keeper_set = NULL;
	set = pgk_process_wait_set(3);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_POSTMASTER_DEATH, PGINVALID_SOCKET, NULL, NULL);
	if (fd >= 0)
		AddWaitEventToSet(set, WL_SOCKET_READABLE, fd, NULL, NULL);
	keeper_set = set;
	keeper_set_fd = fd;
	return set;
}

/* One wait on the keeper's set: a WL_* mask, WL_TIMEOUT if nothing came. */
static int
keeper_wait(int fd, long timeout_ms)
{
	WaitEvent	occurred[3];
	int			n;
	int			rc = 0;

	n = WaitEventSetWait(keeper_wait_set(fd), timeout_ms, occurred, lengthof(occurred),
						 pgk_wait_event(PGK_WAIT_MAIN));
	for (int i = 0; i < n; i++)
		rc |= occurred[i].events & (WL_LATCH_SET | WL_POSTMASTER_DEATH | WL_SOCKET_READABLE);
	return rc != 0 ? rc : WL_TIMEOUT;
}

/* Whether what the keeper asked a wait to watch has happened. */
static bool
watch_changed(int replication_was, int until_promoted)
{
	if (until_promoted && !RecoveryInProgress())
		return true;
	return replication_was >= 0 && replication_state() != replication_was;
}

static int
bridge_wait(int fd, long timeout_ms, long poll_ms, int replication_was, int until_promoted)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	volatile int result = 0;

	REQUIRE_MAIN_THREAD();

	PG_TRY();
	{
		bool		watch = poll_ms > 0 && (replication_was >= 0 || until_promoted);
		TimestampTz end = GetCurrentTimestamp() + (TimestampTz) Max(timeout_ms, 0) * 1000;
		int			rc;

		for (;;)
		{
			long		left = Max(timeout_ms, 0);

			if (watch)
			{
				left = Max((end - GetCurrentTimestamp() + 999) / 1000, 0);
				left = Min(left, poll_ms);
			}
			rc = keeper_wait(fd, left);
			if (rc != WL_TIMEOUT || !watch || GetCurrentTimestamp() >= end)
				break;
			if (watch_changed(replication_was, until_promoted))
			{
				result |= PGK_WAKE_WATCH;
				break;
			}
		}
		ResetLatch(MyLatch);

		/*
		 * The worker holds a ProcSignal slot: DROP DATABASE, DROP TABLESPACE
		 * and their replay on a standby wait until every such process has
		 * absorbed their barrier.  Absorb it at every wake-up (the barrier's
		 * signal sets our latch), or they wait for ever.
		 */
		if (ProcSignalBarrierPending)
			ProcessProcSignalBarrier();

		if (rc & WL_LATCH_SET)
			result |= PGK_WAKE_LATCH;
		if (rc & WL_SOCKET_READABLE)
			result |= PGK_WAKE_SOCKET;
		if ((rc & WL_TIMEOUT) && !(result & PGK_WAKE_WATCH))
			result |= PGK_WAKE_TIMEOUT;
		if ((rc & WL_POSTMASTER_DEATH) || ShutdownRequestPending)
			result |= PGK_WAKE_SHUTDOWN;
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			result |= PGK_WAKE_RELOAD;
		}
	}
	PG_CATCH();
	{
		log_caught_error(oldcontext);
		result = PGK_ERR_PG;
	}
	PG_END_TRY();
	return result;
}

/*
 * The directory of the running postgres executable, where pg_rewind and
 * pg_ctl of the same version live.  Computed once: my_exec_path does not
 * change.
 */
static const char *
postgres_bindir(void)
{
	static char bindir[MAXPGPATH];

	if (bindir[0] == '\0')
	{
		strlcpy(bindir, my_exec_path, sizeof(bindir));
		get_parent_directory(bindir);
	}
	return bindir;
}

static int
bridge_config(PgkConfig *out)
{
	static char os_user[NAMEDATALEN];
	static char os_home[MAXPGPATH];
	struct passwd *pw;

	REQUIRE_MAIN_THREAD();

	out->partner_conninfo = pgk_partner_conninfo ? pgk_partner_conninfo : "";
	out->my_conninfo = pgk_my_conninfo ? pgk_my_conninfo : "";
	out->after_command = pgk_after_command ? pgk_after_command : "";
	out->state_change_command = pgk_state_change_command ? pgk_state_change_command : "";
	out->keepalives_time = pgk_keepalives_time;
	out->keepalives_count = pgk_keepalives_count;
	out->after_command_timeout = pgk_after_command_timeout;
	out->state_change_command_timeout = pgk_state_change_command_timeout;
	out->max_failover_lag = (long long) pgk_max_failover_lag;
	out->failover_on_timeout = (pgk_on_partner_timeout == PGK_TIMEOUT_FAILOVER);
	out->on_partner_timeout = GetConfigOption("pg_keeper.on_partner_timeout", false, false);

	out->port = PostPortNumber;
	out->socket_dirs = Unix_socket_directories ? Unix_socket_directories : "";
	if (os_user[0] == '\0' && (pw = getpwuid(geteuid())) != NULL)
	{
		strlcpy(os_user, pw->pw_name, sizeof(os_user));
		strlcpy(os_home, pw->pw_dir ? pw->pw_dir : "", sizeof(os_home));
	}
	out->os_user = os_user;
	out->os_home = os_home;
	out->data_dir = DataDir;
	out->primary_conninfo = PrimaryConnInfo ? PrimaryConnInfo : "";
	out->cluster_name = cluster_name ? cluster_name : "";
	out->system_identifier = (unsigned long long) GetSystemIdentifier();
	out->start_time = (long long) PgStartTime;

	out->maintenance = pgk_maintenance ? 1 : 0;
	out->auto_rejoin = pgk_auto_rejoin ? 1 : 0;
	out->witness_conninfo = pgk_witness_conninfo ? pgk_witness_conninfo : "";
	out->fence_command = pgk_fence_command ? pgk_fence_command : "";
	out->fence_command_timeout = pgk_fence_command_timeout;
	out->bindir = postgres_bindir();
	out->wal_log_hints = wal_log_hints ? 1 : 0;
	out->data_checksums = DataChecksumsEnabled() ? 1 : 0;
	out->postmaster_pid = (int) PostmasterPid;
	out->sync_slots = pgk_sync_slots() ? 1 : 0;
	return PGK_OK;
}

static int
bridge_in_recovery(void)
{
	REQUIRE_MAIN_THREAD();
	return RecoveryInProgress() ? 1 : 0;
}

static int
bridge_timeline(void)
{
	REQUIRE_MAIN_THREAD();
	return RecoveryInProgress() ? 0 : (int) pgk_insert_timeline();
}

static int
bridge_set_fence(int state)
{
	REQUIRE_MAIN_THREAD();
	return pgk_fence_set(state);
}

/*
 * What the server itself knows of its replication connections, read from
 * shared memory without a session: on a standby 1 while its WAL receiver
 * streams, on a primary the number of walsenders that stream.  The keeper
 * looks at it often and probes its partner at once when it drops: a server
 * that dies drops its replication connection at once.
 */
static int
bridge_replication_state(void)
{
	REQUIRE_MAIN_THREAD();
	return replication_state();
}

static int
replication_state(void)
{
	int			n = 0;

	if (RecoveryInProgress())
	{
		SpinLockAcquire(&WalRcv->mutex);
		n = WalRcv->walRcvState == WALRCV_STREAMING ? 1 : 0;
		SpinLockRelease(&WalRcv->mutex);
		return n;
	}
	for (int i = 0; WalSndCtl != NULL && i < max_wal_senders; i++)
	{
		WalSnd	   *walsnd = &WalSndCtl->walsnds[i];

		SpinLockAcquire(&walsnd->mutex);
		if (walsnd->pid != 0 && walsnd->state == WALSNDSTATE_STREAMING)
			n++;
		SpinLockRelease(&walsnd->mutex);
	}
	return n;
}

static int
bridge_get_fence(void)
{
	REQUIRE_MAIN_THREAD();
	return pgk_fence_get();
}

static int
bridge_publish_status(const char *json)
{
	REQUIRE_MAIN_THREAD();
	return pgk_publish_status(json);
}

static int
bridge_add_event(const char *json)
{
	REQUIRE_MAIN_THREAD();
	return pgk_add_event(json);
}

static int
bridge_reset_events(void)
{
	REQUIRE_MAIN_THREAD();
	return pgk_reset_events();
}

static int
bridge_take_request(int *kind, char *arg, int arglen)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	volatile int rc = PGK_OK;

	REQUIRE_MAIN_THREAD();

	PG_TRY();
	{
		rc = pgk_take_request(kind, arg, arglen);
	}
	PG_CATCH();
	{
		log_caught_error(oldcontext);
		rc = PGK_ERR_PG;
	}
	PG_END_TRY();
	return rc;
}

static int
bridge_answer_request(unsigned int seq, int ok, const char *msg)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	volatile int rc = PGK_OK;

	REQUIRE_MAIN_THREAD();

	PG_TRY();
	{
		rc = pgk_answer_request((uint32) seq, ok != 0, msg);
	}
	PG_CATCH();
	{
		log_caught_error(oldcontext);
		rc = PGK_ERR_PG;
	}
	PG_END_TRY();
	return rc;
}

/*
 * Keep replication talking on an idle primary (docs/witness.md): a standby
 * counts replication as a sign of life only while it hears from it.  The
 * record is an XLOG_NOOP, which redo and logical decoding ignore, marked
 * unimportant so that an otherwise idle server neither checkpoints nor
 * switches segments for it (archive_timeout).  Flushed at once: the
 * walsender sends only flushed WAL, and the WAL writer may wait
 * wal_writer_delay.
 */
static int
bridge_emit_keepalive(void)
{
	static XLogRecPtr last_flush = InvalidXLogRecPtr;
	static const char marker[] = "pg_keeper";
	MemoryContext oldcontext = CurrentMemoryContext;
	volatile int rc = 0;

	REQUIRE_MAIN_THREAD();

	PG_TRY();
	{
		if (!RecoveryInProgress())
		{
			XLogRecPtr	flush = pgk_flush_lsn();

			if (flush == last_flush)
			{
				XLogRecPtr	lsn;

				XLogBeginInsert();
				XLogSetRecordFlags(XLOG_MARK_UNIMPORTANT);
				XLogRegisterData((char *) marker, sizeof(marker));
				lsn = XLogInsert(RM_XLOG_ID, XLOG_NOOP);
				XLogFlush(lsn);
				rc = 1;
			}
			last_flush = pgk_flush_lsn();
		}
	}
	PG_CATCH();
	{
		log_caught_error(oldcontext);
		rc = PGK_ERR_PG;
	}
	PG_END_TRY();
	return rc;
}

void
pgk_bridge_init(PgkBridge *bridge)
{
	main_thread = pthread_self();

	memset(bridge, 0, sizeof(*bridge));
	bridge->version = PGK_BRIDGE_VERSION;
	bridge->log = bridge_log;
	bridge->set_title = bridge_set_title;
	bridge->wait = bridge_wait;
	bridge->config = bridge_config;
	bridge->in_recovery = bridge_in_recovery;
	bridge->timeline = bridge_timeline;
	bridge->set_fence = bridge_set_fence;
	bridge->get_fence = bridge_get_fence;
	bridge->replication_state = bridge_replication_state;
	bridge->publish_status = bridge_publish_status;
	bridge->add_event = bridge_add_event;
	bridge->reset_events = bridge_reset_events;
	bridge->take_request = bridge_take_request;
	bridge->answer_request = bridge_answer_request;
	bridge->committing = pgk_fence_committing_counter();
	bridge->emit_keepalive = bridge_emit_keepalive;
}
