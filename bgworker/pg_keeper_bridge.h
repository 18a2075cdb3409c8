/*
 * pg_keeper_bridge.h
 *		The contract between the C shim and the Go library.
 *
 * The shim hands the Go entry point a table of callbacks.  Go never links
 * against the server's symbols: everything it needs from PostgreSQL goes
 * through this table, so the boundary is one small, reviewable surface.
 *
 * Every callback may only run on the worker's main thread (PostgreSQL is
 * single-threaded); called from any other thread it does nothing and returns
 * PGK_ERR_THREAD.  No callback lets an ereport(ERROR) escape: a longjmp across
 * Go frames is undefined behaviour, so errors come back as PGK_ERR_PG.
 *
 * This header is plain C with no server includes: cgo compiles it too.
 */
#ifndef PG_KEEPER_BRIDGE_H
#define PG_KEEPER_BRIDGE_H

#define PGK_BRIDGE_VERSION 9

/* Name of the Go library inside $libdir and of its entry point. */
#define PGK_GO_LIBRARY "pg_keeper_go.so"
#define PGK_GO_ENTRY "PgKeeperRun"

/* Return codes of the callbacks (wait returns a PGK_WAKE_* mask on success). */
#define PGK_OK 0
#define PGK_ERR_THREAD (-1)
#define PGK_ERR_PG (-2)

/* Log levels, mapped to elevels by the shim. */
#define PGK_LEVEL_LOG 0
#define PGK_LEVEL_DEBUG 1
#define PGK_LEVEL_WARNING 2
#define PGK_LEVEL_ERROR 3		/* logged as ERROR, never thrown */

/*
 * The application_name of the keepers' own sessions, and the file by which an
 * operator confirms an unconfirmed primary (both also in the Go library,
 * which checks them against these at start).
 */
#define PGK_APPLICATION_NAME "pg_keeper"
#define PGK_CONFIRM_FILE "pg_keeper.confirm_primary"

/* The fence: whether client connections to a primary may proceed. */
#define PGK_FENCE_UNCONFIRMED 0	/* not confirmed as the primary yet: no writes */
#define PGK_FENCE_OPEN 1
#define PGK_FENCE_FENCED 2		/* superseded: refuse connections, shut down */
#define PGK_FENCE_SWITCHING 3	/* a switchover is under way: no writes */
#define PGK_FENCE_STOPPING 4	/* handing over or rejoining: refuse connections, shut down to restart as a standby */
#define PGK_FENCE_NO_LEASE 5	/* cut off from its standby, its lease on the witness over: no writes */

/*
 * Sizes of what the keeper publishes for SQL (pg_keeper.status() and
 * pg_keeper.events()), terminating NUL included.
 */
#define PGK_STATUS_MAX 4096
#define PGK_EVENT_MAX 1024
#define PGK_EVENT_SLOTS 128		/* events kept in shared memory */

/*
 * What a SQL session asks the keeper for (request.c), and the sizes of the
 * request's argument and of the answer, terminating NUL included.  The
 * kinds are core.Request in the Go library, checked against these at start.
 */
#define PGK_REQ_NONE 0
#define PGK_REQ_SWITCHOVER 1	/* pg_keeper.switchover(), on the master */
#define PGK_REQ_PAUSE 2			/* pg_keeper.pause(reason) */
#define PGK_REQ_RESUME 3		/* pg_keeper.resume() */
#define PGK_REQ_TAKEOVER 4		/* the master's keeper, on the standby */
#define PGK_REQ_TAKEOVER_CANCEL 5
#define PGK_REQUEST_ARG_MAX 256
#define PGK_ANSWER_MAX 1024

/* What ended a wait. */
#define PGK_WAKE_LATCH 0x01
#define PGK_WAKE_SOCKET 0x02
#define PGK_WAKE_TIMEOUT 0x04
#define PGK_WAKE_SHUTDOWN 0x08	/* SIGTERM, or the postmaster died */
#define PGK_WAKE_RELOAD 0x10	/* SIGHUP: settings were re-read */
#define PGK_WAKE_WATCH 0x20		/* what the wait watched happened */

/*
 * A snapshot of the settings.  The strings point into the server's GUC
 * storage and stay valid only until the next wait (which may re-read the
 * configuration): the Go side copies them at once.
 */
typedef struct PgkConfig
{
	const char *partner_conninfo;
	const char *my_conninfo;
	const char *after_command;
	const char *state_change_command;
	double		keepalives_time;	/* seconds */
	int			keepalives_count;
	int			after_command_timeout;	/* seconds */
	int			state_change_command_timeout;	/* seconds */
	long long	max_failover_lag;	/* bytes */
	int			failover_on_timeout;	/* on_partner_timeout = failover */
	const char *on_partner_timeout; /* its name, as the operator set it */

	/* Facts about this server, for building the default my_conninfo. */
	int			port;
	const char *socket_dirs;	/* unix_socket_directories, comma list */
	const char *os_user;		/* the OS user running the server */
	const char *os_home;		/* its home directory, for ~/.pgpass */
	const char *data_dir;
	const char *primary_conninfo;	/* for the WAL receiver's application_name */
	const char *cluster_name;

	/* Who this server is: a partner with the same two is this very server. */
	unsigned long long system_identifier;
	long long	start_time;		/* postmaster start, microseconds since 2000-01-01 UTC */

	int			maintenance;	/* pg_keeper.maintenance */
	int			auto_rejoin;	/* pg_keeper.auto_rejoin */

	/* The third vote (docs/witness.md). */
	const char *witness_conninfo;
	const char *fence_command;
	int			fence_command_timeout;	/* seconds */

	/* What a rejoin (pg_rewind, then a restart as a standby) needs. */
	const char *bindir;			/* directory of the running postgres executable */
	int			wal_log_hints;
	int			data_checksums;
	int			postmaster_pid;

	/* 1: the server copies failover slots from its primary (17+, sync_replication_slots). */
	int			sync_slots;
} PgkConfig;

typedef struct PgkBridge
{
	int			version;
	int			(*log) (int level, const char *msg);
	int			(*set_title) (const char *title);

	/*
	 * Wait for the latch, for fd to become readable (fd < 0: no socket), or
	 * for timeout_ms.  Handles SIGHUP itself (re-reads the configuration) and
	 * reports what happened as a PGK_WAKE_* mask.  Meanwhile it watches, in
	 * shared memory and every poll_ms (0: not at all), for
	 * replication_state() to differ from replication_was (-1: not watched)
	 * and, if until_promoted, for the end of recovery, and returns
	 * PGK_WAKE_WATCH when either happens.
	 */
	int			(*wait) (int fd, long timeout_ms, long poll_ms, int replication_was, int until_promoted);
	int			(*config) (PgkConfig *out);
	int			(*in_recovery) (void);	/* 1, 0, or an error code */
	int			(*timeline) (void);	/* WAL insertion timeline; 0 in recovery */
	int			(*set_fence) (int state);	/* a PGK_FENCE_* value */
	int			(*get_fence) (void);	/* the PGK_FENCE_* value, or an error code */

	/*
	 * On a standby 1 while its WAL receiver streams (else 0); on a primary
	 * the number of walsenders that stream.  Read from shared memory: cheap
	 * enough to look at between heartbeats.
	 */
	int			(*replication_state) (void);

	/* JSON texts for SQL; longer than PGK_*_MAX - 1 is refused. */
	int			(*publish_status) (const char *json);
	int			(*add_event) (const char *json);
	int			(*reset_events) (void);

	/*
	 * The request slot, through which a SQL session asks the keeper for
	 * something and waits for the answer (request.c).  take_request returns
	 * the seq (> 0) of a request not yet handed over, once, with its kind
	 * and argument (arglen bytes at most, NUL included); 0 when there is
	 * none.  answer_request ends the wait of the session that made request
	 * seq: ok 0 makes it raise an ERROR with msg (cut to PGK_ANSWER_MAX - 1
	 * bytes).  An answer to a request that a newer one replaced is dropped.
	 */
	int			(*take_request) (int *kind, char *arg, int arglen);
	int			(*answer_request) (unsigned int seq, int ok, const char *msg);

	/*
	 * Commits that passed the fence's check and are not done: after closing
	 * the fence, the keeper waits for them before reading where WAL ends.
	 * Not a callback but the counter itself, in shared memory: the keeper
	 * waits for it off the main thread, and reading a 32-bit counter calls
	 * nothing of PostgreSQL's.  The keeper reads it with a full barrier.
	 */
	volatile unsigned int *committing;

	/*
	 * On a primary, keep replication talking: unless WAL was flushed since
	 * the previous call, write one XLOG_NOOP record (marked unimportant) and
	 * flush it, so that the standby hears from an idle master.  Returns 1 if
	 * it wrote one, 0 if not (other WAL flowed, or in recovery).
	 */
	int			(*emit_keepalive) (void);
} PgkBridge;

/* The Go entry point: runs the keeper, returns the worker's exit code. */
typedef int (*PgkEntry) (const PgkBridge *bridge);

#endif							/* PG_KEEPER_BRIDGE_H */
