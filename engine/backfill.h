/* Backfills: one run for every nominal time of a workflow's schedule in a
 * time range, as a group. The runs are created 'queued' with trigger
 * 'backfill' and scheduled_for = the nominal time (so ${schedule.time} is
 * that time); the scheduler starts them in order under the workflow's
 * limits: one at a time for overlap skip, queue and replace, up to
 * max_active_runs (or all at once) for overlap allow. A nominal time that
 * already has a scheduled or backfilled run is not run again. */
#ifndef WF_BACKFILL_H
#define WF_BACKFILL_H
#include <stdint.h>

#include "runs.h"
#include "store.h"

#define BACKFILL_MAX_RUNS 10000

/* Creates the group for times in [from_ms, to_ms]. *created and *skipped
 * (may be NULL) count the new runs and the times that already had one.
 * Returns the backfill id, or -1 with e (404 unknown workflow, 400 no cron
 * schedule / bad range / more than max_runs times). */
long long backfill_create(struct store *s, const char *workflow, int64_t from_ms, int64_t to_ms,
                          int max_runs, const char *actor, int *created, int *skipped,
                          struct wf_err *e) __attribute__((warn_unused_result));

/* Cancels every unfinished run of the group. Returns the number of runs
 * cancelled, or -1 with e. */
int backfill_cancel(struct store *s, long long id, const char *actor, struct wf_err *e)
    __attribute__((warn_unused_result));

#endif
