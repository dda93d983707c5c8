/* The run lifecycle in PostgreSQL: submitting versions, creating runs, and
 * every state transition of task runs. Each function runs its own
 * transaction on the given store; all changes are fenced by the attempt
 * number (docs/architecture.md, "Task run lifecycle"). */
#ifndef WF_RUNS_H
#define WF_RUNS_H
#include <jansson.h>
#include <stdint.h>

#include "dsl.h"
#include "store.h"

/* An error for the API: HTTP status, a short code, a message, a field. */
struct wf_err {
	int status;    /* 400, 404, 409, 503, ... */
	char code[32]; /* "not_found", "invalid_params", "conflict", "unavailable" */
	char message[512];
	char field[96];
};
void wf_err_set(struct wf_err *e, int status, const char *code, const char *field, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));

/* Stores a compiled workflow (r from dsl_compile) as a new immutable version
 * when its hash changed; creates/updates the workflow and its schedule.
 * Sets *version and *changed. Returns 0, or -1 with e. */
int runs_submit(struct store *s, const struct dsl_result *r, const char *source,
                const char *filename, const char *actor, int *version, int *changed,
                struct wf_err *e) __attribute__((warn_unused_result));

/* Starts a run of the workflow's current version. params (borrowed, may be
 * NULL) is checked against the declared params (unknown → 400, missing
 * required → 400). idem_key (may be NULL) makes a repeated call return the
 * same run with *existing = 1. trigger: manual | api | schedule | backfill |
 * job. scheduled_for_ms: nominal time or 0. Returns the run id, or -1 with e. */
long long runs_trigger(struct store *s, const char *workflow, json_t *params, const char *idem_key,
                       const char *trigger, int64_t scheduled_for_ms, const char *actor,
                       int *existing, struct wf_err *e) __attribute__((warn_unused_result));

/* Re-runs the failed, dead, cancelled and upstream_failed task runs of a
 * finished run (keeping succeeded ones and their outputs); with from_task,
 * that task and everything downstream of it too. *reset (new array of task
 * names, may be NULL) tells what was reset. Returns 0, or -1 with e. */
int runs_resume(struct store *s, long long run_id, const char *from_task, const char *actor,
                json_t **reset, struct wf_err *e) __attribute__((warn_unused_result));

/* Cancels a run: unfinished task runs become cancelled (running ones are
 * killed by the engine loop, which sees they are no longer running).
 * Returns 0, or -1 with e. */
int runs_cancel(struct store *s, long long run_id, const char *actor, struct wf_err *e)
    __attribute__((warn_unused_result));

/* Pauses or unpauses a workflow. Returns 0, or -1 with e. */
int runs_set_paused(struct store *s, const char *workflow, int paused, const char *actor,
                    struct wf_err *e) __attribute__((warn_unused_result));

/* One result from an executor (all pointers borrowed). */
struct task_result {
	long long task_run_id;
	int attempt;
	const char *executor_id;
	const char *status; /* succeeded | failed | timeout | cancelled | breaker_open | rejected */
	int exit_code, has_exit_code;
	int http_status, has_http_status;
	const char *output;
	const char *error;
	long long duration_ms;
	json_t *outputs; /* object or NULL */
	int64_t started_ms, finished_ms;
	/* What the engine that sent the task knew (registry.c): its run, and
	 * whether it is the run's only task run. run_id 0, sole -1: unknown
	 * (another engine sent it, or it was sent before a restart). */
	long long run_id;
	int sole;
};

/* Applies a batch of results in one transaction: fenced update, attempt
 * history, retries with backoff, dead letters, downstream readiness, run
 * completion, events and outbox rows. A result that does not match the
 * current attempt of a running task run is recorded as stale and ignored.
 * Returns the number applied (not stale), or -1 when the database failed
 * (nothing applied; the caller keeps the batch and retries). */
int runs_apply_results(struct store *s, const struct task_result *res, int n)
    __attribute__((warn_unused_result));

/* Marks in recorded[i] (n bytes) the results whose attempt is already
 * recorded with that outcome (another engine applied the same report):
 * runs_apply_results would change nothing for them. One read, no locks.
 * Returns how many, or -1 when the database failed. */
int runs_recorded(struct store *s, const struct task_result *res, int n, unsigned char *recorded)
    __attribute__((warn_unused_result));

/* Records that attempts started (fenced). Returns 0 or -1. */
int runs_apply_started(struct store *s, const long long *task_run_ids, const int *attempts,
                       const int64_t *at_ms, int n) __attribute__((warn_unused_result));

/* Extends the leases of the given running attempts (heartbeats).
 * Returns 0 or -1. */
int runs_renew_leases(struct store *s, const long long *task_run_ids, const int *attempts, int n,
                      int64_t lease_ms) __attribute__((warn_unused_result));

/* Returns running task runs whose lease expired to the queue as a new
 * attempt (counted against retries), or dead-letters them when none are
 * left; with backstop set, also enforces per-task timeouts (a task still
 * running timeout + 30 s after it started). Returns the number reaped, or
 * -1. */
int runs_reap(struct store *s, int limit, int backstop) __attribute__((warn_unused_result));

/* Repairs what a crash left behind at engine start (runs with no active
 * task runs, task runs of finished runs, ...). Returns 0 or -1. */
int runs_repair(struct store *s) __attribute__((warn_unused_result));

#endif
