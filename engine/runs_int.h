/* Internals shared by the files implementing engine/runs.h (runs.c,
 * submit.c, results.c, advance.c, reap.c). Not an interface for other
 * modules: use runs.h.
 *
 * Locking rule (all of runs_*): a transaction that changes task runs of a
 * run first locks the runs rows (SELECT ... ORDER BY id FOR UPDATE), then
 * the task_runs rows it changes in id order. Two engines applying results of
 * the same run therefore serialize on the run row and never complete a run
 * twice. Dispatchers and reapers only take task_runs locks with SKIP LOCKED,
 * so they never wait in the other order. */
#ifndef WF_RUNS_INT_H
#define WF_RUNS_INT_H
#include <jansson.h>

#include "buf.h"
#include "runs.h"
#include "store.h"

/* Task run states after which nothing happens to the task run any more. */
#define RUNS_FINAL "'succeeded','failed','cancelled','upstream_failed','skipped','dead'"
/* Final task run states that count as success for all_success. */
#define RUNS_OK "'succeeded','skipped'"
/* Final run states. */
#define RUNS_RUN_FINAL "'succeeded','failed','cancelled'"

/* The largest output excerpt stored per attempt (bytes). */
#define RUNS_MAX_OUTPUT (64 * 1024)

/* Appends "{1,2,3}" (a PostgreSQL bigint[] literal) of n ids to b. */
void runs__ids_literal(struct buf *b, const long long *ids, int n);

/* Appends one element to an array literal being built in b (which starts
 * with "{"; the caller adds the closing "}"): s quoted with " and \
 * escaped, or NULL when s is NULL. b must be unbounded. */
void runs__array_text(struct buf *b, const char *s);

/* qsort/bsearch comparison of long longs (or of records that start with
 * one). */
int runs__cmp_ll(const void *a, const void *b);

/* Sets e to 503 "unavailable" naming the database error of s. */
void runs__db_error(struct wf_err *e, struct store *s, const char *what);

/* A copy of s (may be NULL → NULL) that is valid UTF-8 (bad bytes become
 * '?') and at most max bytes long, cut on a character boundary. */
char *runs__clean_text(const char *s, size_t max);

/* Flags of runs__settle. */
#define RUNS_SETTLE_WORK_READY 1 /* send wf_work even when nothing was queued */
#define RUNS_SETTLE_NO_COPIES  2 /* no broadcast copy became final: no roll-up */
#define RUNS_SETTLE_NO_DAG     4 /* no run has pending task runs: no advancing */

/* Inside an open transaction whose runs rows are locked: rolls broadcast
 * copies up into their parents, queues or skips pending task runs whose
 * upstreams became final (transitively), completes runs whose task runs are
 * all final (events, outbox), and sends the NOTIFYs (wf_work when work
 * became ready or RUNS_SETTLE_WORK_READY, wf_events with the run ids).
 * run_ids is a bigint[] literal. Returns 0 or -1. */
int runs__settle(struct store *s, const char *run_ids, int flags)
    __attribute__((warn_unused_result));
/* The same for run_ids plus sole runs: runs whose only task run succeeded
 * in this transaction (no copies, no DAG to advance: they complete as
 * succeeded without their task runs being read). sole_ids, sole_trs and
 * sole_atts are aligned bigint[], bigint[] and int[] literals: the run, its
 * task run and that task run's attempt. A sole run no longer running (a
 * paused one, say) gets its task run's `task_run.state` event here, which
 * APPLY_OK_SQL leaves to this statement (it would have to read the run). */
int runs__settle_sole(struct store *s, const char *run_ids, const char *sole_ids,
                      const char *sole_trs, const char *sole_atts, int flags)
    __attribute__((warn_unused_result));

/* Flags of runs__apply. */
#define RUNS_APPLY_INTERNAL \
	1 /* results made by the reaper: never stale rows;
				 "lost" needs the lease to be expired */

/* Inside an open transaction: locks the runs of the results, applies them
 * (fenced), records stale ones, then settles the affected runs.
 * Statuses beyond the wire's: "lost" (lease expired) and "backstop" (the
 * engine's per-task timeout). Returns the number applied, or -1. */
int runs__apply(struct store *s, const struct task_result *res, int n, int flags)
    __attribute__((warn_unused_result));

/* Fails broadcast copies (task runs with target_executor set, route
 * broadcast) still waiting for an executor that has been lost, offline or
 * unknown for longer than lease_ms, at most limit per call, and settles
 * their runs (the parents roll up). Its own transaction. Called by the
 * dispatcher (disp_reap), which knows the lease. Returns the number of runs
 * touched, or -1. */
int runs__fail_lost_copies(struct store *s, int64_t lease_ms, int limit)
    __attribute__((warn_unused_result));

#endif
