/* The applier: a thread with its own database connection that applies what
 * executors report (ingest_apply), so that applying results and dispatching
 * new work run side by side on two PostgreSQL backends instead of taking
 * turns on the loop's one connection. */
#ifndef WF_APPLIER_H
#define WF_APPLIER_H
#include <stdint.h>

#include "ingest.h"

struct applier;

/* Starts the thread (conninfo NULL → store_default_conninfo()). It connects
 * by itself, and reconnects with backoff while the database is away.
 * Returns NULL when the thread cannot be started. */
struct applier *applier_start(const char *conninfo, struct ingest *g, int batch);

/* A file descriptor that becomes readable after results were applied (poll
 * it: downstream work may be ready and slots were settled). */
int applier_fd(const struct applier *a);

/* Clears applier_fd's readiness and returns what was applied since the
 * last call; *ms accumulates the time spent applying. */
unsigned long long applier_collect(struct applier *a, int64_t *ms);

/* 1 while the last attempt to apply failed (the database is away). */
int applier_failing(const struct applier *a);

/* Asks the thread to stop after the batch in hand, joins it, and frees a
 * (what is still buffered stays in the ingest). NULL is a no-op. */
void applier_stop(struct applier *a);

#endif
