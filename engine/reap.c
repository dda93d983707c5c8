/* The reaper and the start-up repair.
 *
 * runs_reap: running task runs whose lease expired (the executor stopped
 * heartbeating, or a message was lost) go back to the queue as a new
 * attempt; the lost attempt counts against the retries (a task that kills
 * its executor must not loop for ever). Backstop: a task running longer than
 * its timeout_ms + REAP_GRACE_MS (the executor should have killed it) is
 * treated the same way, with the attempt recorded as timeout. Both reuse
 * the result path (runs__apply with the internal statuses lost/backstop), so
 * retries, dead letters, downstream propagation and run completion are the
 * same code.
 *
 * runs_repair: what a crashed engine may leave behind. Expired leases are
 * not touched here: runs_reap handles them (counting the attempt). */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runs_int.h"
#include "xalloc.h"

#define REAP_GRACE_MS 30000

/* The task spec of the task run aliased x, for a LATERAL join: two
 * primary-key probes in a fixed order (OFFSET 0). Joined the plain way,
 * with runs estimated at one row, the planner merge-joined all of a
 * million-row tasks per task run. */
#define TASK_SPEC_OF_X                                                                           \
	"(SELECT t.spec FROM (SELECT r.workflow_id, r.version FROM runs r WHERE r.id = x.run_id" \
	" OFFSET 0) r CROSS JOIN LATERAL (SELECT t.spec FROM tasks t"                            \
	" WHERE t.workflow_id = r.workflow_id AND t.version = r.version AND t.name = x.task"     \
	" OFFSET 0) t)"

/* Candidates, locked with SKIP LOCKED so two engines reaping at once split
 * the work and never wait on a task run a results batch is changing. */
static const char REAP_CANDIDATES_SQL[] =
    "SELECT tr.id, tr.attempt, tr.executor_id, tr.run_id,"
    " CASE WHEN tr.lease_expires_at < now() THEN 'lost' ELSE 'backstop' END"
    " FROM task_runs tr WHERE tr.id = ANY (ARRAY("
    /* Both parts walk task_runs_leased in order (a plain index scan, which
     * marks the entries of finished task runs dead as it passes them; a
     * bitmap scan rechecked every such entry in the heap on every call:
     * 80 ms a second at 10,000 tasks/s on the connection that dispatches).
     * Expired leases: */
    "  (SELECT x.id FROM task_runs x WHERE x.state = 'running'"
    "   AND x.lease_expires_at < now() ORDER BY x.lease_expires_at LIMIT $1)"
    "  UNION ALL"
    /* the engine's timeout backstop ($3), for tasks with a timeout (the
     * spec of each running task run by primary-key probes) */
    "  (SELECT x.id FROM task_runs x"
    "   LEFT JOIN LATERAL " TASK_SPEC_OF_X " t ON true"
    "   WHERE $3::bool AND x.state = 'running' AND x.lease_expires_at >= now()"
    "    AND coalesce((t.spec->>'timeout_ms')::bigint, 0) > 0"
    "    AND coalesce(x.attempt_started_at, x.attempt_claimed_at, x.updated_at)"
    "     + ((t.spec->>'timeout_ms')::bigint + $2::bigint) * interval '1 millisecond' < now()"
    "   ORDER BY x.lease_expires_at LIMIT $1)))"
    /* a broadcast parent (no lease) is settled by its copies */
    " AND tr.state = 'running' AND tr.lease_expires_at IS NOT NULL"
    " ORDER BY tr.lease_expires_at, tr.id LIMIT $1"
    " FOR UPDATE OF tr SKIP LOCKED";

/* Runs whose rows another engine holds are left for the next round. */
static const char REAP_LOCK_RUNS_SQL[] =
    "SELECT id FROM runs WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE SKIP LOCKED";

int runs_reap(struct store *s, int limit, int backstop)
{
	int rc = -1, n = 0, m = 0;
	PGresult *r = NULL;
	struct task_result *res = NULL;
	char **errors = NULL;
	long long *run_of = NULL;
	struct buf runs;
	buf_init(&runs, 0);
	char lim[16], grace[16];
	snprintf(lim, sizeof lim, "%d", limit > 0 ? limit : 100);
	snprintf(grace, sizeof grace, "%d", REAP_GRACE_MS);

	if (store_begin(s) != 0)
		return -1;
	/* plain index scans: see REAP_CANDIDATES_SQL */
	if (store_cmd(s, "SET LOCAL enable_bitmapscan = off", 0, NULL) != 0)
		goto out;
	const char *cp[3] = {lim, grace, backstop ? "true" : "false"};
	r = store_execp(s, "runs_reap_candidates", REAP_CANDIDATES_SQL, 3, cp);
	if (!r)
		goto out;
	n = PQntuples(r);
	if (n == 0) {
		rc = 0;
		goto out;
	}
	res = xcalloc((size_t)n, sizeof *res);
	errors = xcalloc((size_t)n, sizeof *errors);
	run_of = xcalloc((size_t)n, sizeof *run_of);
	for (int i = 0; i < n; i++) {
		const char *ex = PQgetisnull(r, i, 2) ? "unknown" : PQgetvalue(r, i, 2);
		int lost = strcmp(PQgetvalue(r, i, 4), "lost") == 0;
		res[i].task_run_id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		res[i].attempt = (int)strtol(PQgetvalue(r, i, 1), NULL, 10);
		res[i].status = lost ? "lost" : "backstop";
		errors[i] = lost ? xasprintf("lease expired (executor %s stopped heartbeating)", ex)
		                 : xasprintf("timeout (engine backstop: executor %s did not end "
		                             "the task within timeout + %d s)",
		                             ex, REAP_GRACE_MS / 1000);
		res[i].error = errors[i];
		run_of[i] = strtoll(PQgetvalue(r, i, 3), NULL, 10);
	}
	PQclear(r);
	r = NULL;

	runs__ids_literal(&runs, run_of, n);
	const char *lp[1] = {runs.data};
	r = store_execp(s, "runs_reap_lock_runs", REAP_LOCK_RUNS_SQL, 1, lp);
	if (!r)
		goto out;
	/* Keep only the candidates whose run we hold (order kept). */
	for (int i = 0; i < n; i++) {
		int held = 0;
		for (int j = 0; j < PQntuples(r) && !held; j++)
			held = strtoll(PQgetvalue(r, j, 0), NULL, 10) == run_of[i];
		if (held) {
			struct task_result t = res[i];
			res[m++] = t;
		}
	}
	PQclear(r);
	r = NULL;

	int applied = runs__apply(s, res, m, RUNS_APPLY_INTERNAL);
	if (applied < 0)
		goto out;
	rc = applied;
	if (applied > 0)
		log_info("reaped task runs", "n=%d", applied);
out:
	PQclear(r);
	if (rc >= 0) {
		if (store_commit(s) != 0)
			rc = -1;
	}
	if (rc < 0)
		store_rollback(s);
	for (int i = 0; errors && i < n; i++)
		free(errors[i]);
	free(errors);
	free(res);
	free(run_of);
	buf_release(&runs);
	return rc;
}

/* ----------------------------------------------------------- repair */

/* Unfinished task runs of finished runs (a crash between the two updates
 * cannot happen inside one transaction, but a run finished by hand or by an
 * older engine can leave them): cancelled. */
static const char REPAIR_ORPHANS_SQL[] =
    "WITH lk AS (SELECT tr.id FROM task_runs tr JOIN runs r ON r.id = tr.run_id"
    "  WHERE r.state IN (" RUNS_RUN_FINAL ") AND tr.state NOT IN (" RUNS_FINAL ")"
    "  ORDER BY tr.id FOR UPDATE OF tr SKIP LOCKED),"
    " upd AS (UPDATE task_runs tr SET state = 'cancelled', finished_at = now(),"
    "  lease_expires_at = NULL, updated_at = now(), error = 'run already finished'"
    "  FROM lk WHERE tr.id = lk.id"
    "  RETURNING tr.id, tr.run_id, tr.attempt, tr.state)"
    " INSERT INTO events (kind, run_id, task_run_id, actor, data)"
    " SELECT 'task_run.state', run_id, id, 'repair',"
    "  jsonb_build_object('to', state, 'attempt', attempt, 'reason', 'run already finished')"
    " FROM upd";

/* Runs with no task runs at all can never finish: failed. */
static const char REPAIR_EMPTY_SQL[] =
    "WITH lk AS (SELECT r.id FROM runs r WHERE r.state IN ('queued', 'running')"
    "  AND NOT EXISTS (SELECT 1 FROM task_runs tr WHERE tr.run_id = r.id)"
    "  ORDER BY r.id FOR UPDATE SKIP LOCKED),"
    " upd AS (UPDATE runs r SET state = 'failed', finished_at = now() FROM lk"
    "  WHERE r.id = lk.id RETURNING r.id, r.workflow_id)"
    " INSERT INTO events (kind, workflow_id, run_id, actor, data)"
    " SELECT 'run.finished', workflow_id, id, 'repair',"
    "  jsonb_build_object('state', 'failed', 'reason', 'run had no task runs') FROM upd";

/* Running runs that may need advancing or completing. */
static const char REPAIR_CANDIDATES_SQL[] =
    "SELECT r.id FROM runs r WHERE r.state = 'running' AND r.id > $1::bigint"
    " AND (EXISTS (SELECT 1 FROM task_runs tr WHERE tr.run_id = r.id AND tr.state = 'pending')"
    "  OR NOT EXISTS (SELECT 1 FROM task_runs tr WHERE tr.run_id = r.id"
    "   AND tr.state NOT IN (" RUNS_FINAL ")))"
    " ORDER BY r.id LIMIT 500";

static const char REPAIR_LOCK_SQL[] =
    "SELECT id FROM runs WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE";

/* One chunk of candidates after run id *after. Returns the number of
 * candidates seen (0 = done) or -1. */
static int repair_chunk(struct store *s, long long *after)
{
	int rc = -1, n = 0;
	PGresult *r = NULL;
	long long *ids = NULL;
	struct buf lit;
	buf_init(&lit, 0);
	char a[32];
	snprintf(a, sizeof a, "%lld", *after);
	const char *p[1] = {a};

	if (store_begin(s) != 0)
		return -1;
	r = store_exec(s, REPAIR_CANDIDATES_SQL, 1, p);
	if (!r)
		goto out;
	n = PQntuples(r);
	ids = xmalloc(((size_t)n + 1) * sizeof *ids);
	for (int i = 0; i < n; i++)
		ids[i] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
	PQclear(r);
	r = NULL;
	if (n == 0) {
		rc = 0;
		goto out;
	}
	*after = ids[n - 1];
	runs__ids_literal(&lit, ids, n);
	const char *lp[1] = {lit.data};
	r = store_exec(s, REPAIR_LOCK_SQL, 1, lp);
	if (!r)
		goto out;
	PQclear(r);
	r = NULL;
	if (runs__settle(s, lit.data, 0) != 0)
		goto out;
	rc = n;
out:
	PQclear(r);
	if (rc >= 0 && store_commit(s) != 0)
		rc = -1;
	if (rc < 0)
		store_rollback(s);
	free(ids);
	buf_release(&lit);
	return rc;
}

int runs_repair(struct store *s)
{
	if (store_cmd(s, REPAIR_ORPHANS_SQL, 0, NULL) != 0)
		return -1;
	if (store_cmd(s, REPAIR_EMPTY_SQL, 0, NULL) != 0)
		return -1;
	long long after = 0;
	int total = 0;
	for (;;) {
		int n = repair_chunk(s, &after);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		total += n;
	}
	if (total > 0)
		log_info("repaired runs", "checked=%d", total);
	return 0;
}

/* ------------------------------------------------- broadcast copies */

/* Broadcast copies waiting for an executor that is gone: lost, offline or
 * unknown for longer than the lease ($1 ms). Their runs are locked next
 * (SKIP LOCKED: busy runs are left for the next round). */
static const char LOST_COPIES_SQL[] =
    "SELECT id, run_id FROM ("
    /* copies (few: the partial index task_runs_copies) */
    " SELECT x.id, x.run_id FROM task_runs x"
    " CROSS JOIN LATERAL " TASK_SPEC_OF_X " t"
    " LEFT JOIN executors e ON e.id = x.target_executor"
    " WHERE x.target_executor IS NOT NULL AND x.state IN ('queued', 'retrying')"
    "  AND t.spec->>'route' = 'broadcast'"
    "  AND (e.id IS NULL OR (e.state IN ('lost', 'offline')"
    "   AND e.last_heartbeat < now() - $1::bigint * interval '1 millisecond'))"
    /* a task pinned to an executor (route executor:<id>) waits for it, but
     * not longer than the task's timeout; found from the pinned tasks'
     * running runs, not by reading every queued task run (a backlog of
     * 100,000 made this 30 ms a second on the connection that dispatches) */
    " UNION ALL"
    " SELECT tr.id, tr.run_id FROM tasks t"
    " JOIN runs r ON r.workflow_id = t.workflow_id AND r.version = t.version"
    "  AND r.state = 'running'"
    " JOIN task_runs tr ON tr.run_id = r.id AND tr.task = t.name"
    " WHERE t.spec->>'route' LIKE 'executor:%' AND tr.target_executor IS NULL"
    "  AND tr.state IN ('queued', 'retrying')"
    "  AND tr.available_at < now()"
    "   - coalesce((t.spec->>'timeout_ms')::bigint, 3600000) * interval '1 millisecond'"
    "  AND NOT EXISTS (SELECT 1 FROM executors x"
    "   WHERE x.id = substr(t.spec->>'route', 10) AND x.state = 'online')"
    ") c ORDER BY id LIMIT $2";

static const char FAIL_COPIES_SQL[] =
    "WITH lk AS (SELECT tr.id FROM task_runs tr WHERE tr.id = ANY($1::bigint[])"
    "  AND tr.run_id = ANY($2::bigint[]) AND tr.state IN ('queued', 'retrying')"
    "  ORDER BY tr.id FOR UPDATE),"
    " upd AS (UPDATE task_runs tr SET state = 'failed', finished_at = now(),"
    "  updated_at = now(), wait_reason = NULL,"
    "  error = CASE WHEN tr.target_executor IS NULL THEN"
    "   'the executor this task is pinned to was not online within the task''s timeout'"
    "   ELSE 'executor ' || tr.target_executor || ' is ' || coalesce((SELECT e.state"
    "   FROM executors e WHERE e.id = tr.target_executor), 'unknown')"
    "   || ': this broadcast copy could not run there' END"
    "  FROM lk WHERE tr.id = lk.id"
    "  RETURNING tr.id, tr.run_id, tr.attempt, tr.state, tr.error),"
    " ev AS (INSERT INTO events (kind, run_id, task_run_id, actor, data)"
    "  SELECT 'task_run.state', run_id, id, 'reaper', jsonb_build_object('to', state,"
    "   'attempt', attempt, 'reason', error) FROM upd)"
    " SELECT DISTINCT run_id FROM upd ORDER BY run_id";

int runs__fail_lost_copies(struct store *s, int64_t lease_ms, int limit)
{
	int rc = -1, n = 0;
	PGresult *r = NULL;
	long long *ids = NULL, *run_of = NULL;
	struct buf idl, runl, held;
	buf_init(&idl, 0);
	buf_init(&runl, 0);
	buf_init(&held, 0);
	char lease[24], lim[16];
	snprintf(lease, sizeof lease, "%lld", (long long)lease_ms);
	snprintf(lim, sizeof lim, "%d", limit > 0 ? limit : 100);

	if (store_begin(s) != 0)
		return -1;
	const char *cp[2] = {lease, lim};
	r = store_execp(s, "runs_lost_copies", LOST_COPIES_SQL, 2, cp);
	if (!r)
		goto out;
	n = PQntuples(r);
	if (n == 0) {
		rc = 0;
		goto out;
	}
	ids = xcalloc((size_t)n, sizeof *ids);
	run_of = xcalloc((size_t)n, sizeof *run_of);
	for (int i = 0; i < n; i++) {
		ids[i] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		run_of[i] = strtoll(PQgetvalue(r, i, 1), NULL, 10);
	}
	PQclear(r);
	r = NULL;
	runs__ids_literal(&idl, ids, n);
	runs__ids_literal(&runl, run_of, n);
	const char *lp[1] = {runl.data};
	r = store_execp(s, "runs_reap_lock_runs", REAP_LOCK_RUNS_SQL, 1, lp);
	if (!r)
		goto out;
	int nheld = PQntuples(r);
	long long *hl = xcalloc((size_t)(nheld ? nheld : 1), sizeof *hl);
	for (int i = 0; i < nheld; i++)
		hl[i] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
	runs__ids_literal(&held, hl, nheld);
	free(hl);
	PQclear(r);
	r = NULL;
	if (nheld == 0) {
		rc = 0;
		goto out;
	}
	const char *fp[2] = {idl.data, held.data};
	r = store_execp(s, "runs_fail_copies", FAIL_COPIES_SQL, 2, fp);
	if (!r)
		goto out;
	int failed_runs = PQntuples(r);
	long long *settle = xcalloc((size_t)(failed_runs ? failed_runs : 1), sizeof *settle);
	for (int i = 0; i < failed_runs; i++)
		settle[i] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
	PQclear(r);
	r = NULL;
	buf_reset(&runl);
	runs__ids_literal(&runl, settle, failed_runs);
	free(settle);
	if (failed_runs > 0 && runs__settle(s, runl.data, 0) != 0)
		goto out;
	rc = failed_runs;
	if (failed_runs > 0)
		log_warn("broadcast copies failed: their executor is gone", "runs=%d", failed_runs);
out:
	PQclear(r);
	if (rc >= 0 && store_commit(s) != 0)
		rc = -1;
	if (rc < 0)
		store_rollback(s);
	free(ids);
	free(run_of);
	buf_release(&idl);
	buf_release(&runl);
	buf_release(&held);
	return rc;
}
