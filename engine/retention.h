/* History retention: deletes finished runs (with their task runs, attempts
 * and dead letters, by cascade) and events older than a cut-off, in small
 * batches so the hot tables are never locked for long.
 *
 * Hook (engine loop, about once a minute; any number of engines may run it
 * at once, batches skip rows another engine holds):
 *     if (keep_ms > 0) (void)retention_sweep(store, keep_ms, RETENTION_BATCH);
 */
#ifndef WF_RETENTION_H
#define WF_RETENTION_H
#include <stdint.h>

#include "store.h"

/* Rows per DELETE statement. */
#define RETENTION_BATCH 500
/* Batches per table per call: bounds the time one call takes (the next
 * call goes on where this one stopped). */
#define RETENTION_MAX_BATCHES 20

/* Deletes up to RETENTION_MAX_BATCHES batches of batch rows of runs that
 * finished (succeeded, failed, cancelled) more than keep_ms ago, then the
 * same of events older than keep_ms. Each batch is its own short
 * transaction. keep_ms <= 0 deletes nothing. Returns the number of runs
 * plus events deleted, or -1 when the database failed (what was deleted
 * stays deleted). */
int retention_sweep(struct store *s, int64_t keep_ms, int batch)
    __attribute__((warn_unused_result));

/* Parses a retention period: a number with a unit, "30d", "12h", "90m",
 * "2w"; "0" or "off" disables (0). Returns 0 and milliseconds in *ms, or
 * -1 for anything else. */
int retention_parse(const char *s, int64_t *ms) __attribute__((warn_unused_result));

#endif
