/* The ingester: decodes frames from executors, hands hello / heartbeat /
 * bye to the registry at once, and buffers `started` and `finished` until
 * they are applied to PostgreSQL in batches (by the applier thread,
 * applier.h). The buffers are bounded; while
 * the database is away results wait here (and are retried), so executors
 * are never blocked.
 *
 * Copies: executors send every result to every engine. A result of a task
 * this engine did not send is held a second (ingest.c, COPY_HOLD_MS), then
 * dropped by one read if another engine recorded it meanwhile
 * (runs_recorded), else applied like any result: a result is applied once
 * however many engines run, and is not lost when the engine that sent the
 * task stops. */
#ifndef WF_INGEST_H
#define WF_INGEST_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"
#include "store.h"

struct ingest;

/* max_buffer bounds buffered results and buffered started records each. */
struct ingest *ingest_new(size_t max_buffer);
void ingest_free(struct ingest *g);

/* Decodes and routes one frame (data borrowed). Malformed or unknown
 * frames are logged at warn and dropped. Returns 1 for a `finished` (a slot
 * was freed), 0 for any other accepted frame, -1 for a dropped one. */
int ingest_frame(struct ingest *g, struct reg *r, struct store *s, const void *data, size_t len);

/* Queues a result the engine made itself (a `finished` frame, stolen),
 * e.g. a task that failed before it could be sent. */
void ingest_push_result(struct ingest *g, json_t *finished);

/* Results and started records waiting to be applied, or being applied. */
size_t ingest_pending(struct ingest *g);

/* Blocks until something is buffered (and not taken yet), timeout_ms
 * passed, or ingest_wake was called: from then on it never blocks (the
 * appliers' stop). */
void ingest_wait(struct ingest *g, int timeout_ms);
void ingest_wake(struct ingest *g);

/* Applies the buffered started records, then the results, at most batch
 * results per transaction. Returns the number of results applied (stale
 * ones included), or -1 when the database failed: what was not applied is
 * kept for the next call. The buffers are locked only while they are taken
 * out and put back, so frames keep coming in meanwhile. */
int ingest_apply(struct ingest *g, struct store *s, int batch) __attribute__((warn_unused_result));

/* Like ingest_apply for the oldest max results only (and every started
 * record): several appliers, each on its own connection, may call it at
 * once. */
int ingest_apply_some(struct ingest *g, struct store *s, int batch, size_t max)
    __attribute__((warn_unused_result));

#endif
