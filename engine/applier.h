/* The appliers: threads, each with its own database connection, that apply
 * what executors report (ingest_apply_some), so that applying results and
 * dispatching new work run side by side on several PostgreSQL backends
 * instead of taking turns on the loop's one connection. Two appliers can
 * apply results of the same run: both lock the run first (runs_int.h). */
#ifndef WF_APPLIER_H
#define WF_APPLIER_H
#include <stdint.h>

#include "ingest.h"

struct applier;

/* Starts threads appliers (conninfo NULL → store_default_conninfo()), each
 * taking at most batch results at a time. Each connects by itself, and
 * reconnects with backoff while the database is away. Returns NULL when
 * they cannot be started. */
struct applier *applier_start(const char *conninfo, struct ingest *g, int batch, int threads);

/* A file descriptor that becomes readable after results were applied (poll
 * it: downstream work may be ready and slots were settled). */
int applier_fd(const struct applier *a);

/* Clears applier_fd's readiness and returns what was applied since the
 * last call; *ms accumulates the time spent applying. */
unsigned long long applier_collect(struct applier *a, int64_t *ms);

/* 1 while the last attempt to apply failed (the database is away): the
 * loop does not reap expired leases then, since the results that would
 * settle those task runs may be the ones waiting here. */
int applier_failing(const struct applier *a);

/* Ends the thread's backoff wait (the loop reached the database again). */
void applier_kick(struct applier *a);

/* Asks the thread to stop after the batch in hand, joins it, and frees a
 * (what is still buffered stays in the ingest). NULL is a no-op. */
void applier_stop(struct applier *a);

#endif
