/*
 * pg_keeper.h
 *		Declarations shared by the files of the C shim.
 */
#ifndef PG_KEEPER_H
#define PG_KEEPER_H

#include "pg_keeper_bridge.h"

/* Settings (guc.c). */
extern char *pgk_partner_conninfo;
extern char *pgk_my_conninfo;
extern char *pgk_after_command;
extern double pgk_keepalives_time;
extern int	pgk_keepalives_count;
extern int	pgk_after_command_timeout;

extern void pgk_define_gucs(void);

/* Callbacks handed to the Go library (bridge.c). */
extern void pgk_bridge_init(PgkBridge *bridge);

/* The worker's main function (worker.c); exported for the postmaster. */
extern PGDLLEXPORT void pg_keeper_main(Datum main_arg);

#endif							/* PG_KEEPER_H */
