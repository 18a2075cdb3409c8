/*
 * worker.c
 *		The background worker: set up signals, load the Go library, run it.
 */
#include "postgres.h"

#include <dlfcn.h>

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"

#include "pg_keeper.h"

/*
 * Also run when an error or a FATAL ends the worker.  Nobody answers the
 * request this worker took any more: its session stops waiting too.
 */
static void
forget_keeper_latch(int code, Datum arg)
{
	PgkShared  *shared = pgk_shared();

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (shared->keeper_latch == MyLatch)
		shared->keeper_latch = NULL;
	LWLockRelease(shared->lock);
	pgk_drop_taken_request();
}

/*
 * Tell SQL sessions which latch wakes the keeper for their requests
 * (request.c), for as long as this worker runs: with no latch there, they
 * learn at once that nobody would answer.
 */
static void
publish_keeper_latch(void)
{
	PgkShared  *shared = pgk_shared();

	before_shmem_exit(forget_keeper_latch, (Datum) 0);
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->keeper_latch = MyLatch;
	LWLockRelease(shared->lock);
}

void
pg_keeper_main(Datum main_arg)
{
	char		path[MAXPGPATH];
	void	   *handle;
	PgkEntry	entry;
	PgkBridge	bridge;
	int			rc;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);

	/*
	 * Load Go while every signal is still blocked (the state a worker starts
	 * in): the runtime's threads inherit the mask, so PostgreSQL's signals can
	 * only be delivered to this, the main thread.
	 */
	snprintf(path, sizeof(path), "%s/%s", pkglib_path, PGK_GO_LIBRARY);
	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (handle == NULL)
		ereport(FATAL,
				(errmsg("pg_keeper: could not load \"%s\": %s", path, dlerror()),
				 errhint("Run \"make USE_PGXS=1 install\" and restart the server.")));
	entry = (PgkEntry) dlsym(handle, PGK_GO_ENTRY);
	if (entry == NULL)
		ereport(FATAL,
				(errmsg("pg_keeper: \"%s\" has no function %s: %s",
						path, PGK_GO_ENTRY, dlerror())));

	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	pgk_bridge_init(&bridge);
	publish_keeper_latch();
	rc = entry(&bridge);

	/*
	 * Exit 1 even on a clean stop: exit 0 would tell the postmaster never to
	 * restart the worker, and during a real shutdown nothing restarts anyway.
	 */
	proc_exit(rc == 0 ? 1 : rc);
}
