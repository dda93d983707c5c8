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
 * Broadcast: a claimed task run with route broadcast and no target_executor
 * is not sent. In the claim's transaction it becomes `running` (no executor,
 * no lease) and gets one queued copy per online, non-draining executor of
 * its pool (target_executor = that executor; UNIQUE (run_id, task,
 * target_executor)). Each copy is claimed and sent like any task, but only
 * to its target, when that executor has credit. advance.c settles the parent
 * when every copy is final (broadcast_success all / any); disp_reap fails
 * copies whose executor is gone.
 *
 * Priorities are 0 (high), 1 (medium) and 2 (low): the claim reads those
 * three levels. */
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

/* How many task frames d assembled from their spec's fragment (a step
 * with nothing to expand) rather than building them per task. */
long long disp_spliced(const struct disp *d);

/* Claims and sends work for every pool that has credit; tasks that fail
 * before sending are reported through g. Sets *more when a claim filled
 * its batch (more work is probably ready). Returns the number of tasks sent,
 * or -1 on a database error (nothing claimed in the failed transaction). */
int disp_run(struct disp *d, struct store *s, struct reg *r, struct ingest *g, int *more)
    __attribute__((warn_unused_result));

/* Fails the queued or retrying broadcast copies whose target executor has
 * been lost or offline (or unknown) for longer than the lease: they could
 * never run. Their parents are settled in the same transaction. Returns the
 * number failed, or -1. */
int disp_reap(struct disp *d, struct store *s) __attribute__((warn_unused_result));

#endif
