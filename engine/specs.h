/* A cache of compiled task specs per workflow version, in the engine's
 * memory. Versions are immutable (docs/architecture.md: a version is one
 * compiled YAML, never changed), so an entry never goes stale; the cache is
 * bounded and simply emptied when full. Not thread-safe: one per loop. */
#ifndef WF_SPECS_H
#define WF_SPECS_H
#include <jansson.h>

#include "store.h"

struct specs;

/* A cache of at most max_versions versions (0 → 4096). */
struct specs *specs_new(int max_versions);
void specs_free(struct specs *c);

/* Makes sure the n versions (workflow_id[i], version[i]) are cached, with
 * one query for all those missing. May empty the cache first when it is
 * full, so pointers from specs_task stay valid only until the next call.
 * Returns 0, or -1 on a database error. */
int specs_load(struct specs *c, struct store *s, const long long *workflow_id, const int *version,
               int n) __attribute__((warn_unused_result));

/* The compiled spec of task in a cached version (borrowed), or NULL when
 * the version or the task is unknown. *workflow (may be NULL) gets the
 * workflow's name (borrowed) or NULL. */
json_t *specs_task(struct specs *c, long long workflow_id, int version, const char *task,
                   const char **workflow);

/* The number of tasks of a cached version, or -1 when it is not cached. */
int specs_ntasks(struct specs *c, long long workflow_id, int version);

#endif
