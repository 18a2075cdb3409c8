/*
 * stopping.c
 *		pg_keeper.server_state: whether this server is shutting down, for
 *		the partner's keeper.
 *
 * The partner's keeper keeps one session open here for its heartbeats, and
 * a smart shutdown waits for every session to end.  Such a session cannot
 * learn that the server stopped taking new ones, so each heartbeat reads
 * this setting, and its keeper closes the session once it says "stopping":
 * a smart shutdown waits one heartbeat interval at most.  The postmaster
 * says so in postmaster.pid (as pg_ctl reads it), which any backend can
 * read: no privilege is needed, and no keeper has to be running here.
 */
#include "postgres.h"

#include <stdio.h>

#include "utils/guc.h"
#include "utils/pidfile.h"

#include "pg_keeper.h"

static char *pgk_server_state = NULL;

/* Line LOCK_FILE_LINE_PM_STATUS of postmaster.pid, as the postmaster wrote it. */
static const char *
show_server_state(void)
{
	char		line[256];
	FILE	   *f;
	int			n = 0;
	const char *state = "running";

	/* A backend's working directory is the data directory. */
	f = fopen("postmaster.pid", "r");
	if (f == NULL)
		return "unknown";
	while (fgets(line, sizeof(line), f) != NULL)
	{
		if (++n == LOCK_FILE_LINE_PM_STATUS)
		{
			if (strncmp(line, PM_STATUS_STOPPING, strlen(PM_STATUS_STOPPING)) == 0)
				state = "stopping";
			break;
		}
	}
	fclose(f);
	return state;
}

void
pgk_define_server_state(void)
{
	DefineCustomStringVariable("pg_keeper.server_state",
							   "Shows \"stopping\" once this server is shutting down.",
							   "The partner's keeper closes its heartbeat session then, so that a smart shutdown does not wait for it.",
							   &pgk_server_state,
							   "running",
							   PGC_INTERNAL,
							   GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE | GUC_NO_RESET_ALL,
							   NULL, NULL, show_server_state);
}
