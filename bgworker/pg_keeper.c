/*
 * pg_keeper.c
 *		Module entry: settings and the background worker's registration.
 *
 * This library is what shared_preload_libraries loads into the postmaster.
 * It must stay free of Go: a Go runtime started in the postmaster would be
 * inherited by every fork() with only one of its threads, and the first call
 * into it would hang.  The Go library is loaded by the worker (worker.c).
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"

#include "pg_keeper.h"

PGK_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	BackgroundWorker worker;

	pgk_define_gucs();

	if (!process_shared_preload_libraries_in_progress)
	{
		ereport(LOG,
				(errmsg("pg_keeper: loaded without shared_preload_libraries, the keeper does not run"),
				 errhint("Add pg_keeper to shared_preload_libraries and restart the server.")));
		return;
	}

	pgk_shared_init();
	pgk_fence_init();

	memset(&worker, 0, sizeof(worker));
	/* A connection to no database puts the worker in pg_stat_activity. */
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	/* ConsistentState: runs on a primary and on a hot standby alike. */
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_keeper");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "pg_keeper_main");
	/* bgw_name is the process title: "postgres: bgworker: pg_keeper (...)". */
	snprintf(worker.bgw_name, BGW_MAXLEN, "bgworker: pg_keeper");
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_keeper");
	RegisterBackgroundWorker(&worker);
}
