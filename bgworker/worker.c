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
	rc = entry(&bridge);

	/*
	 * Exit 1 even on a clean stop: exit 0 would tell the postmaster never to
	 * restart the worker, and during a real shutdown nothing restarts anyway.
	 */
	proc_exit(rc == 0 ? 1 : rc);
}
