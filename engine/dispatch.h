/* The dispatcher: claims ready task runs in batches (one transaction per
 * pool and batch), assigns each to an executor with credit by its route,
 * expands its templates and sends it (docs/architecture.md, "Task run
 * lifecycle").
 *
 * Order: effective priority = priority - floor(minutes waited), so a task
 * waiting for 60 s gains one priority level and low never starves; ties by
 * available_at, id. Each priority level is read with its own range scan of
 * the task_runs_ready index (priority, available_at, id), LIMIT n each, and
 * only those <= 3n candidates are sorted by effective priority.
 *
 * Failures after the claim: a task whose templates cannot be expanded fails
 * its attempt (reported as a `failed` result with the reason); a task the
 * socket refuses is put back at once (state retrying, available now, its
 * attempt recorded `lost`, max_attempts + 1 so it does not cost a retry).
 *
 * Broadcast routing does not fan out yet: a broadcast task runs once, on
 * one executor of its pool chosen round-robin. */
#ifndef WF_DISPATCH_H
#define WF_DISPATCH_H
#include <stdint.h>

#include "ingest.h"
#include "registry.h"
#include "store.h"

struct disp_opts {
	const char *engine_id; /* sent in every task frame */
	int64_t lease_ms;
	int batch; /* most task runs claimed per transaction */
};

struct disp;
struct disp *disp_new(const struct disp_opts *o);
void disp_free(struct disp *d);

/* Claims and sends work for every pool that has credit; tasks that fail
 * before sending are reported through g. Sets *more when a claim filled
 * its batch (more work is probably ready). Returns the number of tasks sent,
 * or -1 on a database error (nothing claimed in the failed transaction). */
int disp_run(struct disp *d, struct store *s, struct reg *r, struct ingest *g, int *more)
    __attribute__((warn_unused_result));

#endif
