/* Applying what executors report: finished results (in batches, fenced by
 * the attempt number), started times and lease renewals.
 *
 * A whole batch is a handful of statements, whatever its size: the results
 * travel as one jsonb array and every step is set-based SQL.
 *
 * Decisions (docs/architecture.md, "Task run lifecycle"):
 * - succeeded → succeeded with the outputs stored.
 * - failed / timeout (and the reaper's lost / backstop) → retrying with
 *   available_at = now() + backoff while attempt < max_attempts, else dead
 *   plus a dead_letters row. Backoff = min(max_ms, initial_ms *
 *   multiplier^(attempt-1)); "full" jitter draws uniformly in [0, that].
 * - breaker_open → retrying after the breaker's open_for_ms; rejected (no
 *   slot, draining) → queued at once. Neither is the task's fault, so
 *   neither counts: attempts stay monotonic (the next claim is attempt+1),
 *   and max_attempts grows by one instead.
 * - cancelled → cancelled.
 * - Any other status is taken as failed.
 * A result that does not match the current attempt of a running task run
 * is stored as an attempts row with stale = true and changes nothing. It is
 * not stored again when the same report is already recorded (a stale row
 * with the same status and executor, or the applied attempt row finished
 * with the same status): duplicates from several engines stay single. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runs_int.h"
#include "xalloc.h"

#define MAX_ERROR_TEXT   8192
#define MAX_OUTPUTS_TEXT (64 * 1024)

/* $1: task run ids whose runs the engine does not know, $2: the runs it
 * knows (it sent their tasks: struct task_result). A known run is locked
 * without reading its task run. One array of run ids (duplicates are
 * fine: the index scan sorts and merges them) probed in one index scan:
 * an IN (... UNION ...) cost 6,300 instructions more per result
 * (callgrind). */
static const char LOCK_RUNS_SQL[] =
    "SELECT r.id FROM runs r WHERE r.id = ANY (ARRAY(SELECT unnest($2::bigint[]) UNION ALL"
    " SELECT tr.run_id FROM task_runs tr WHERE tr.id = ANY($1::bigint[])))"
    " ORDER BY r.id FOR UPDATE OF r";

/* Whether the report of result x (task run id, attempt, attempt state,
 * executor id: SQL expressions) is already recorded: its attempt ended with
 * that state, or the same executor's stale report of it is stored. Then
 * applying it changes nothing. OFFSET 0 keeps this a probe per result (the
 * view's branches by task run id): pulled up into a join, the view was
 * read whole, every task run that kept a succeeded attempt compared with
 * every result, 1.5 s per 500 copies of results another engine had
 * applied (each engine gets every result); now 2 ms. */
#define RECORDED(id, attempt, state, executor)                            \
	"EXISTS (SELECT 1 FROM attempts_all a WHERE a.task_run_id = " id  \
	" AND a.attempt = " attempt " AND a.state = " state               \
	" AND ((a.stale AND a.executor_id IS NOT DISTINCT FROM " executor \
	") OR (NOT a.stale AND a.finished_at IS NOT NULL)) OFFSET 0)"

/* APPLY_SQL's results x: not stored again when already recorded */
#define APPLY_RECORDED RECORDED("x.id", "x.attempt", "x.att_state", "x.executor_id")

/* $1 jsonb array of results, $2 1 = internal (reaper). */
static const char APPLY_SQL[] =
    "WITH x AS ("
    " SELECT DISTINCT ON (id, attempt) * FROM ("
    "  SELECT (e->>'id')::bigint AS id, (e->>'attempt')::int AS attempt,"
    "   e->>'executor_id' AS executor_id, e->>'status' AS status,"
    "   CASE e->>'status' WHEN 'lost' THEN 'lost' WHEN 'backstop' THEN 'timeout'"
    "    ELSE e->>'status' END AS att_state,"
    "   (e->>'exit_code')::int AS exit_code, (e->>'http_status')::int AS http_status,"
    "   e->>'output' AS output, e->>'error' AS error,"
    "   (e->>'duration_ms')::bigint AS duration_ms,"
    "   CASE WHEN jsonb_typeof(e->'outputs') = 'object' THEN e->'outputs' END AS outputs,"
    "   CASE WHEN (e->>'started_ms')::bigint > 0"
    "    THEN to_timestamp((e->>'started_ms')::bigint / 1000.0) END AS started_at,"
    "   CASE WHEN (e->>'finished_ms')::bigint > 0"
    "    THEN to_timestamp((e->>'finished_ms')::bigint / 1000.0) END AS finished_at,"
    "   ord"
    "  FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS j(e, ord)) y"
    " ORDER BY id, attempt, ord"
    "), cur AS ("
    " SELECT tr.id, tr.run_id, tr.task, tr.attempt, tr.max_attempts, r.workflow_id,"
    "  tr.attempt_claimed_at AS claimed_at, tr.attempt_started_at, tr.executor_id AS claimed_by,"
    "  x.status, x.att_state, x.executor_id, x.exit_code, x.http_status, x.output,"
    "  x.duration_ms, x.outputs, x.started_at, x.finished_at,"
    "  CASE WHEN x.status = 'succeeded' THEN NULL ELSE coalesce(x.error,"
    "   CASE WHEN x.status = 'timeout' THEN 'timed out'"
    "    WHEN x.exit_code IS NOT NULL THEN 'exit code ' || x.exit_code"
    "    WHEN x.http_status IS NOT NULL THEN 'HTTP status ' || x.http_status"
    "    ELSE x.status END) END AS error,"
    "  CASE WHEN x.status = 'succeeded' THEN 'succeeded'"
    "   WHEN x.status = 'cancelled' THEN 'cancelled'"
    "   WHEN x.status = 'breaker_open' THEN 'retrying'"
    "   WHEN x.status = 'rejected' THEN 'queued'"
    "   WHEN tr.attempt < tr.max_attempts THEN 'retrying'"
    "   ELSE 'dead' END AS to_state,"
    "  CASE WHEN x.status = 'breaker_open'"
    "    THEN greatest(coalesce((t.spec#>>'{breaker,open_for_ms}')::float8, 30000), 0)"
    "   WHEN x.status = 'rejected' THEN 0"
    "   ELSE b.delay * CASE WHEN b.jitter = 'full' THEN random() ELSE 1 END"
    "  END AS delay_ms,"
    "  t.spec#>>'{breaker,name}' AS breaker"
    " FROM task_runs tr"
    " JOIN x ON x.id = tr.id AND x.attempt = tr.attempt"
    " JOIN runs r ON r.id = tr.run_id"
    /* LIMIT 1 keeps the lookup a full-key index probe per row */
    " LEFT JOIN LATERAL (SELECT t.spec FROM tasks t WHERE t.workflow_id = r.workflow_id"
    "  AND t.version = r.version AND t.name = tr.task LIMIT 1) t ON true"
    /* exp/ln keep the power from overflowing for any attempt number */
    " CROSS JOIN LATERAL (SELECT CASE WHEN i <= 0 THEN 0 ELSE exp(least(ln(greatest(m, 1)),"
    "   ln(i) + greatest(tr.attempt - 1, 0) * ln(greatest(k, 1)))) END AS delay, jt AS jitter"
    "  FROM (SELECT coalesce((t.spec#>>'{backoff,initial_ms}')::float8, 2000) AS i,"
    "   coalesce((t.spec#>>'{backoff,max_ms}')::float8, 300000) AS m,"
    "   coalesce((t.spec#>>'{backoff,multiplier}')::float8, 2) AS k,"
    "   coalesce(t.spec#>>'{backoff,jitter}', 'full') AS jt) bp) b"
    " WHERE tr.state = 'running'"
    "  AND ($2::int = 0 OR x.status <> 'lost' OR tr.lease_expires_at < now())"
    " ORDER BY tr.id FOR UPDATE OF tr"
    "), upd AS ("
    " UPDATE task_runs tr SET state = cur.to_state,"
    "  max_attempts = tr.max_attempts"
    "   + CASE WHEN cur.status IN ('breaker_open', 'rejected') THEN 1 ELSE 0 END,"
    "  retries_used = tr.retries_used + CASE WHEN cur.to_state = 'retrying'"
    "   AND cur.status <> 'breaker_open' THEN 1 ELSE 0 END,"
    "  available_at = CASE WHEN cur.to_state IN ('retrying', 'queued')"
    "   THEN now() + cur.delay_ms * interval '1 millisecond' ELSE tr.available_at END,"
    "  outputs = CASE WHEN cur.to_state = 'succeeded' THEN cur.outputs ELSE tr.outputs END,"
    "  error = cur.error,"
    "  wait_reason = CASE WHEN cur.status = 'breaker_open'"
    "    THEN 'circuit breaker ' || coalesce(cur.breaker, '') || ' open'"
    "   WHEN cur.to_state = 'retrying' THEN 'retry backoff after attempt ' || cur.attempt"
    "   END,"
    "  lease_expires_at = NULL,"
    "  finished_at = CASE WHEN cur.to_state IN (" RUNS_FINAL ") THEN now() END,"
    "  updated_at = now()"
    " FROM cur WHERE tr.id = cur.id"
    " RETURNING tr.id, tr.run_id, tr.attempt, tr.state, tr.error, cur.workflow_id, cur.task,"
    "  tr.target_executor IS NOT NULL AS copy"
    "), att AS ("
    /* the attempt ends: its row, with what its task run kept of it while
     * it ran (migration 013) */
    " INSERT INTO attempts (task_run_id, attempt, executor_id, state, claimed_at, sent_at,"
    "  started_at, finished_at, exit_code, http_status, duration_ms, output, error)"
    " SELECT cur.id, cur.attempt, coalesce(cur.claimed_by, cur.executor_id), cur.att_state,"
    "  coalesce(cur.claimed_at, now()), cur.claimed_at,"
    "  coalesce(cur.attempt_started_at, cur.started_at),"
    "  coalesce(cur.finished_at, now()), cur.exit_code, cur.http_status, cur.duration_ms,"
    "  cur.output, cur.error"
    " FROM cur"
    "), stale AS ("
    " INSERT INTO attempts (task_run_id, attempt, executor_id, state, started_at,"
    "  finished_at, exit_code, http_status, duration_ms, output, error, stale)"
    " SELECT x.id, x.attempt, x.executor_id, x.att_state, x.started_at,"
    "  coalesce(x.finished_at, now()), x.exit_code, x.http_status, x.duration_ms,"
    "  x.output, x.error, true"
    " FROM x WHERE $2::int = 0"
    "  AND NOT EXISTS (SELECT 1 FROM cur WHERE cur.id = x.id)"
    "  AND EXISTS (SELECT 1 FROM task_runs tr WHERE tr.id = x.id)"
    "  AND NOT " APPLY_RECORDED "), dl AS ("
    " INSERT INTO dead_letters (task_run_id, run_id, workflow_id, task, attempts, last_error)"
    " SELECT id, run_id, workflow_id, task, attempt, error FROM upd WHERE state = 'dead'"
    "), ev AS ("
    " INSERT INTO events (kind, workflow_id, run_id, task_run_id, data)"
    " SELECT 'task_run.state', workflow_id, run_id, id,"
    "  jsonb_build_object('from', 'running', 'to', state, 'attempt', attempt) FROM upd"
    ")"
    " SELECT run_id, count(*), count(*) FILTER (WHERE state = 'queued'),"
    "  count(*) FILTER (WHERE copy) FROM upd"
    " GROUP BY run_id ORDER BY run_id";

/* The common case, kept apart from APPLY_SQL: `succeeded` for the current
 * attempt of a running task run. Typed arrays instead of a jsonb document,
 * no task spec (no backoff to compute), no stale bookkeeping; a result it
 * does not apply (not running, another attempt) goes through APPLY_SQL
 * next, which records it as stale. $1..$10: ids, attempts, executor ids,
 * exit codes, HTTP statuses, outputs texts, durations, started ms,
 * finished ms, outputs objects; $11, $12: the run and whether the task run
 * is its only one, as the engine that sent it knew them, or NULL. Returns
 * the applied (id, run_id, copy, attempt, sole). */
static const char APPLY_OK_SQL[] =
    "WITH x AS (SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::int[],"
    "  $5::int[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::jsonb[],"
    "  $11::bigint[], $12::bool[])"
    "  AS x(id, attempt, executor_id, exit_code, http_status, output, duration_ms,"
    "  started_ms, finished_ms, outputs, run_id, sole)"
    "), cur AS MATERIALIZED ("
    " SELECT x.id, x.attempt, x.executor_id, x.exit_code, x.http_status,"
    "  x.output, x.duration_ms, x.outputs, x.run_id, x.sole,"
    "  CASE WHEN x.started_ms > 0 THEN to_timestamp(x.started_ms / 1000.0::float8)"
    "   END AS started_at,"
    "  CASE WHEN x.finished_ms > 0 THEN to_timestamp(x.finished_ms / 1000.0::float8)"
    "   ELSE now() END AS finished_at"
    /* In id order, as every statement that locks task runs (the update
     * below probes task_runs once per row of cur, in this order). No FOR
     * UPDATE: the runs are locked (nothing else finishes their task
     * runs), and a row a lease renewal holds is waited for and its new
     * version checked again by the conditions of the update. */
    " FROM x ORDER BY x.id"
    "), upd AS ("
    /* The succeeded attempt stays on its task run (migration 014): no
     * attempts row, unless a resume resets the task run later */
    " UPDATE task_runs tr SET state = 'succeeded', outputs = cur.outputs, error = NULL,"
    "  wait_reason = NULL, lease_expires_at = NULL, finished_at = now(), updated_at = now(),"
    "  executor_id = coalesce(tr.executor_id, cur.executor_id),"
    "  attempt_id = nextval('attempts_id_seq'),"
    "  attempt_started_at = coalesce(tr.attempt_started_at, cur.started_at),"
    "  attempt_finished_at = cur.finished_at, attempt_exit_code = cur.exit_code,"
    "  attempt_http_status = cur.http_status, attempt_duration_ms = cur.duration_ms,"
    "  attempt_output = cur.output"
    /* `state || ''`: a primary key probe per result; `state = 'running'`
     * alone let the planner read every running task run through the
     * partial index task_runs_leased and hash them */
    " FROM cur WHERE tr.id = cur.id AND tr.state || '' = 'running' AND tr.attempt = cur.attempt"
    "  AND (cur.run_id IS NULL OR tr.run_id = cur.run_id)"
    " RETURNING tr.id, tr.run_id, tr.attempt, tr.target_executor IS NOT NULL AS copy,"
    "  cur.sole AS known_sole"
    "), sib AS MATERIALIZED ("
    /* sole: the only task run of its run (the run completes without its
     * task runs being read again, runs__settle_sole) */
    /* known when this engine sent the task (a probe of the run's task
     * runs less: 6 % of the statements' work per result, callgrind) */
    " SELECT upd.id, upd.run_id, upd.attempt, upd.copy, CASE"
    "  WHEN upd.known_sole IS NOT NULL THEN upd.known_sole AND NOT upd.copy"
    "  ELSE NOT upd.copy AND NOT EXISTS (SELECT 1 FROM task_runs o"
    "   WHERE o.run_id = upd.run_id AND o.id <> upd.id) END AS sole"
    " FROM upd"
    "), ev AS ("
    " INSERT INTO events (kind, workflow_id, run_id, task_run_id, data)"
    " SELECT 'task_run.state', r.workflow_id, sib.run_id, sib.id,"
    "  jsonb_build_object('from', 'running', 'to', 'succeeded', 'attempt', sib.attempt)"
    " FROM sib JOIN runs r ON r.id = sib.run_id"
    /* Not for the only task run of a run: if that run is running, it
     * finishes in this transaction and its run.finished event says the
     * same (one row and two index entries less per single-task run;
     * docs/api.md, Events); if not, the run completion statement, which
     * reads the run anyway, writes the event (COMPLETE_SQL, sev): no read
     * of the run here. */
    " WHERE NOT sib.sole"
    ")"
    " SELECT id, run_id, copy, attempt, sole FROM sib";

static const char *const KNOWN_STATUS[] = {"succeeded",    "failed",   "timeout", "cancelled",
                                           "breaker_open", "rejected", "lost",    "backstop"};

static int known_status(const char *status)
{
	for (size_t i = 0; i < sizeof KNOWN_STATUS / sizeof KNOWN_STATUS[0]; i++)
		if (strcmp(status, KNOWN_STATUS[i]) == 0)
			return 1;
	return 0;
}

/* The result as a JSON object for APPLY_SQL: texts cleaned to valid UTF-8
 * and bounded, outputs dropped when PostgreSQL could not store them. */
static json_t *result_json(const struct task_result *r)
{
	json_t *o = json_object();
	const char *status = r->status ? r->status : "";
	char *error = runs__clean_text(r->error, MAX_ERROR_TEXT);
	if (!known_status(status)) {
		char *st = runs__clean_text(status, 64);
		char *msg = xasprintf("unknown status '%s' from executor%s%s", st,
		                      error ? ": " : "", error ? error : "");
		free(error);
		free(st);
		error = msg;
		status = "failed";
	}
	json_object_set_new(o, "id", json_integer(r->task_run_id));
	json_object_set_new(o, "attempt", json_integer(r->attempt));
	json_object_set_new(o, "status", json_string(status));
	char *ex = runs__clean_text(r->executor_id, 256);
	if (ex)
		json_object_set_new(o, "executor_id", json_string(ex));
	free(ex);
	if (r->has_exit_code)
		json_object_set_new(o, "exit_code", json_integer(r->exit_code));
	if (r->has_http_status)
		json_object_set_new(o, "http_status", json_integer(r->http_status));
	char *out = runs__clean_text(r->output, RUNS_MAX_OUTPUT);
	if (out)
		json_object_set_new(o, "output", json_string(out));
	free(out);
	json_object_set_new(o, "duration_ms", json_integer(r->duration_ms));
	json_object_set_new(o, "started_ms", json_integer(r->started_ms));
	json_object_set_new(o, "finished_ms", json_integer(r->finished_ms));
	if (json_is_object(r->outputs)) {
		/* jsonb refuses \u0000; an oversized object is refused too.
		 * Either would poison the whole batch, so drop it and say why. */
		char *txt = json_dumps(r->outputs, JSON_COMPACT);
		if (txt && !strstr(txt, "\\u0000") && strlen(txt) <= MAX_OUTPUTS_TEXT) {
			json_object_set(o, "outputs", r->outputs);
		} else {
			char *msg =
			    xasprintf("%s%soutputs dropped (larger than %d bytes or "
			              "containing NUL characters)",
			              error ? error : "", error ? "; " : "", MAX_OUTPUTS_TEXT);
			free(error);
			error = msg;
		}
		free(txt);
	}
	if (error)
		json_object_set_new(o, "error", json_string(error));
	free(error);
	return o;
}

/* Array literal builders for APPLY_OK_SQL. */
static void lit_open(struct buf *b)
{
	if (buf_puts(b, "{") != 0)
		abort();
}

static void lit_close(struct buf *b)
{
	if (buf_puts(b, "}") != 0)
		abort();
}

static void lit_sep(struct buf *b)
{
	if (b->len > 1 && buf_puts(b, ",") != 0)
		abort();
}

static void lit_num(struct buf *b, long long v, int present)
{
	lit_sep(b);
	if ((present ? buf_put_ll(b, v) : buf_puts(b, "NULL")) != 0)
		abort();
}

static int cmp_result(const void *a, const void *b)
{
	const struct task_result *x = *(const struct task_result *const *)a;
	const struct task_result *y = *(const struct task_result *const *)b;
	if (x->task_run_id != y->task_run_id)
		return x->task_run_id < y->task_run_id ? -1 : 1;
	if (x->attempt != y->attempt)
		return x->attempt < y->attempt ? -1 : 1;
	return x < y ? -1 : x > y; /* the earlier report first */
}

/* The outputs text a succeeded result may store through APPLY_OK_SQL, or
 * NULL when it has none. *ok = 0 when the result must take APPLY_SQL
 * instead (outputs it would drop with an explanation). */
static char *ok_outputs(const struct task_result *r, int *ok)
{
	*ok = 1;
	if (!json_is_object(r->outputs))
		return NULL;
	char *txt = json_dumps(r->outputs, JSON_COMPACT);
	if (!txt || strstr(txt, "\\u0000") || strlen(txt) > MAX_OUTPUTS_TEXT) {
		free(txt);
		*ok = 0;
		return NULL;
	}
	return txt;
}

/* A run whose only task run APPLY_OK_SQL applied: the run, the task run,
 * its attempt (runs__settle_sole). */
struct sole {
	long long run, task_run;
	int attempt;
};

/* Applies what APPLY_OK_SQL can of res (sorted by id and attempt). Marks
 * the applied ones in done[], appends their run ids to runs (or to sole,
 * for the only task run of its run) and counts the broadcast copies among
 * them in *copies. Returns the number applied, or -1. */
static int apply_ok(struct store *s, const struct task_result **res, int n, char *done,
                    long long *runs, int *nruns, struct sole *sole, int *nsole, int *copies)
{
	struct buf a[12];
	int m = 0, rc = -1;
	PGresult *r = NULL;

	for (int k = 0; k < 12; k++) {
		buf_init(&a[k], 0);
		lit_open(&a[k]);
	}
	for (int i = 0; i < n; i++) {
		const struct task_result *t = res[i];
		int ok;
		if (!t->status || strcmp(t->status, "succeeded") != 0)
			continue;
		if (i > 0 && res[i - 1]->task_run_id == t->task_run_id &&
		    res[i - 1]->attempt == t->attempt)
			continue; /* a duplicate report: APPLY_SQL sees it after this one */
		char *outputs = ok_outputs(t, &ok);
		if (!ok)
			continue;
		char *ex = runs__clean_text(t->executor_id, 256);
		char *out = runs__clean_text(t->output, RUNS_MAX_OUTPUT);
		lit_num(&a[0], t->task_run_id, 1);
		lit_num(&a[1], t->attempt, 1);
		runs__array_text(&a[2], ex);
		lit_num(&a[3], t->exit_code, t->has_exit_code);
		lit_num(&a[4], t->http_status, t->has_http_status);
		runs__array_text(&a[5], out);
		lit_num(&a[6], t->duration_ms, 1);
		lit_num(&a[7], t->started_ms, 1);
		lit_num(&a[8], t->finished_ms, 1);
		runs__array_text(&a[9], outputs);
		lit_num(&a[10], t->run_id, t->run_id > 0);
		lit_sep(&a[11]);
		if (buf_puts(&a[11],
		             t->run_id > 0 && t->sole >= 0 ? (t->sole ? "t" : "f") : "NULL") != 0)
			abort();
		free(ex);
		free(out);
		free(outputs);
		m++;
	}
	if (m == 0) {
		rc = 0;
		goto out;
	}
	const char *p[12];
	for (int k = 0; k < 12; k++) {
		lit_close(&a[k]);
		p[k] = a[k].data;
	}
	r = store_execp(s, "runs_apply_ok", APPLY_OK_SQL, 12, p);
	if (!r)
		goto out;
	rc = PQntuples(r);
	for (int j = 0; j < rc; j++) {
		long long id = strtoll(PQgetvalue(r, j, 0), NULL, 10);
		long long run = strtoll(PQgetvalue(r, j, 1), NULL, 10);
		int att = (int)strtol(PQgetvalue(r, j, 3), NULL, 10);
		if (PQgetvalue(r, j, 4)[0] == 't')
			sole[(*nsole)++] = (struct sole){run, id, att};
		else
			runs[(*nruns)++] = run;
		*copies += PQgetvalue(r, j, 2)[0] == 't';
		/* the first succeeded report of that attempt (the one sent; a
		 * duplicate after it goes to APPLY_SQL and is recorded there) */
		for (int i = 0; i < n; i++)
			if (res[i]->task_run_id == id && res[i]->attempt == att && !done[i] &&
			    res[i]->status && strcmp(res[i]->status, "succeeded") == 0) {
				done[i] = 1;
				break;
			}
	}
out:
	PQclear(r);
	for (int k = 0; k < 12; k++)
		buf_release(&a[k]);
	return rc;
}

/* The three aligned array literals of runs__settle_sole. */
static void sole_literals(const struct sole *so, int n, struct buf *runs, struct buf *trs,
                          struct buf *atts)
{
	lit_open(runs);
	lit_open(trs);
	lit_open(atts);
	for (int i = 0; i < n; i++) {
		lit_num(runs, so[i].run, 1);
		lit_num(trs, so[i].task_run, 1);
		lit_num(atts, so[i].attempt, 1);
	}
	lit_close(runs);
	lit_close(trs);
	lit_close(atts);
}

int runs__apply(struct store *s, const struct task_result *res, int n, int flags)
{
	int rc = -1, applied = 0, queued = 0, nruns = 0, nsole = 0, nslow = 0, copies = 0;
	char *json = NULL, *done = NULL;
	PGresult *r = NULL;
	struct buf ids, runs, sole, sole_trs, sole_atts;
	const struct task_result **sorted = NULL;
	long long *run_ids = NULL;
	struct sole *soles = NULL;
	buf_init(&ids, 0);
	buf_init(&runs, 0);
	buf_init(&sole, 0);
	buf_init(&sole_trs, 0);
	buf_init(&sole_atts, 0);
	if (n <= 0)
		return 0;

	/* the runs to lock: those the engine knows, and those of the other
	 * results' task runs */
	long long *tr_ids = xmalloc((size_t)n * sizeof *tr_ids);
	long long *known = xmalloc((size_t)n * sizeof *known);
	int ntr = 0, nknown = 0;
	for (int i = 0; i < n; i++) {
		if (res[i].run_id > 0)
			known[nknown++] = res[i].run_id;
		else
			tr_ids[ntr++] = res[i].task_run_id;
	}
	runs__ids_literal(&ids, tr_ids, ntr);
	runs__ids_literal(&runs, known, nknown);
	free(tr_ids);
	free(known);

	const char *lp[2] = {ids.data, runs.data};
	r = store_execp(s, "runs_lock_runs", LOCK_RUNS_SQL, 2, lp);
	if (!r)
		goto out;
	PQclear(r);
	r = NULL;
	buf_reset(&runs);

	sorted = xmalloc((size_t)n * sizeof *sorted);
	for (int i = 0; i < n; i++)
		sorted[i] = &res[i];
	qsort(sorted, (size_t)n, sizeof *sorted, cmp_result);
	done = xcalloc((size_t)n, 1);
	run_ids = xmalloc((size_t)n * sizeof *run_ids);
	soles = xmalloc((size_t)n * sizeof *soles);
	if (!(flags & RUNS_APPLY_INTERNAL)) {
		int k = apply_ok(s, sorted, n, done, run_ids, &nruns, soles, &nsole, &copies);
		if (k < 0)
			goto out;
		applied += k;
	}

	json_t *arr = json_array();
	for (int i = 0; i < n; i++)
		if (!done[i]) {
			json_array_append_new(arr, result_json(sorted[i]));
			nslow++;
		}
	json = nslow ? json_dumps(arr, JSON_COMPACT) : NULL;
	json_decref(arr);
	if (nslow && !json) {
		log_error("cannot encode results", "n=%d", nslow);
		goto out;
	}
	if (nslow) {
		const char *ap[2] = {json, (flags & RUNS_APPLY_INTERNAL) ? "1" : "0"};
		r = store_execp(s, "runs_apply", APPLY_SQL, 2, ap);
		if (!r)
			goto out;
		int rows = PQntuples(r);
		run_ids = xrealloc(run_ids, ((size_t)n + (size_t)rows) * sizeof *run_ids);
		for (int i = 0; i < rows; i++) {
			run_ids[nruns++] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
			applied += (int)strtol(PQgetvalue(r, i, 1), NULL, 10);
			queued += (int)strtol(PQgetvalue(r, i, 2), NULL, 10);
			copies += (int)strtol(PQgetvalue(r, i, 3), NULL, 10);
		}
		PQclear(r);
		r = NULL;
	}
	qsort(run_ids, (size_t)nruns, sizeof *run_ids, runs__cmp_ll);
	int u = 0;
	for (int i = 0; i < nruns; i++)
		if (u == 0 || run_ids[u - 1] != run_ids[i])
			run_ids[u++] = run_ids[i];
	/* a sole task run's run: only when nothing else of it was applied
	 * (then it is settled the general way) */
	int us = 0;
	for (int i = 0; i < nsole; i++)
		if (!bsearch(&soles[i].run, run_ids, (size_t)u, sizeof *run_ids, runs__cmp_ll))
			soles[us++] = soles[i];
	runs__ids_literal(&runs, run_ids, u);
	sole_literals(soles, us, &sole, &sole_trs, &sole_atts);
	int settle =
	    (queued > 0 ? RUNS_SETTLE_WORK_READY : 0) | (copies ? 0 : RUNS_SETTLE_NO_COPIES);
	if ((u > 0 || us > 0) &&
	    runs__settle_sole(s, runs.data, sole.data, sole_trs.data, sole_atts.data, settle) != 0)
		goto out;
	rc = applied;
out:
	PQclear(r);
	free(json);
	free(done);
	free(sorted);
	free(run_ids);
	free(soles);
	buf_release(&ids);
	buf_release(&runs);
	buf_release(&sole);
	buf_release(&sole_trs);
	buf_release(&sole_atts);
	return rc;
}

/* One transaction for the batch. Returns the number applied or -1. */
static int apply_tx(struct store *s, const struct task_result *res, int n)
{
	if (store_begin(s) != 0)
		return -1;
	int applied = runs__apply(s, res, n, 0);
	if (applied < 0 || store_commit(s) != 0) {
		store_rollback(s);
		return -1;
	}
	return applied;
}

/* Errors that come from the data of a result (a value PostgreSQL refuses),
 * not from the database being away or busy: retrying cannot help. */
static int poison_error(struct store *s)
{
	const char *st = store_sqlstate(s);
	return !store_down(s) && (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0);
}

/* A batch the database refuses because of one bad result would be retried
 * for ever by the caller. So on a data error the batch is applied result by
 * result, and the results that still fail are logged and dropped (their
 * task runs will be reaped when their leases expire). If the database goes
 * away meanwhile, -1: the results already committed are duplicates on the
 * caller's retry and are ignored then. */
int runs_apply_results(struct store *s, const struct task_result *res, int n)
{
	if (n <= 0)
		return 0;
	int applied = apply_tx(s, res, n);
	if (applied >= 0)
		return applied;
	if (!poison_error(s)) {
		log_warn("applying results failed", "n=%d error=%s", n, store_error(s));
		return -1;
	}
	applied = 0;
	for (int i = 0; i < n; i++) {
		int a = apply_tx(s, &res[i], 1);
		if (a >= 0) {
			applied += a;
		} else if (poison_error(s)) {
			log_error("result refused by the database, dropped",
			          "task_run_id=%lld attempt=%d sqlstate=%s error=%s",
			          res[i].task_run_id, res[i].attempt, store_sqlstate(s),
			          store_error(s));
		} else {
			log_warn("applying results failed", "n=%d error=%s", n, store_error(s));
			return -1;
		}
	}
	return applied;
}

/* Which results are already recorded: the check APPLY_SQL's stale branch
 * makes before it stores anything (RECORDED), read only, no locks. $1..$4:
 * ids, attempts, attempt states, executor ids. Returns the ordinals
 * (1-based) of the recorded ones. */
static const char RECORDED_SQL[] =
    "SELECT x.i FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[])"
    " WITH ORDINALITY AS x(id, attempt, st, ex, i)"
    " WHERE " RECORDED("x.id", "x.attempt", "x.st", "x.ex");

int runs_recorded(struct store *s, const struct task_result *res, int n, unsigned char *recorded)
{
	struct buf ids, atts, states, execs;
	int asked = 0, found = -1;
	PGresult *r = NULL;

	memset(recorded, 0, (size_t)(n > 0 ? n : 0));
	buf_init(&ids, 0);
	buf_init(&atts, 0);
	buf_init(&states, 0);
	buf_init(&execs, 0);
	lit_open(&ids);
	lit_open(&atts);
	lit_open(&states);
	lit_open(&execs);
	for (int i = 0; i < n; i++) {
		/* a status only the engine makes, or an unknown one: APPLY_SQL
		 * records it its own way; not asked, so not recorded here */
		const char *st = res[i].status ? res[i].status : "";
		if (!known_status(st) || strcmp(st, "lost") == 0 || strcmp(st, "backstop") == 0)
			st = NULL;
		char *ex = runs__clean_text(res[i].executor_id, 256);
		lit_num(&ids, res[i].task_run_id, 1);
		lit_num(&atts, res[i].attempt, 1);
		runs__array_text(&states, st); /* NULL matches no attempt */
		runs__array_text(&execs, ex);
		free(ex);
		asked += st != NULL;
	}
	lit_close(&ids);
	lit_close(&atts);
	lit_close(&states);
	lit_close(&execs);
	if (asked == 0) {
		found = 0;
		goto out;
	}
	const char *p[4] = {ids.data, atts.data, states.data, execs.data};
	r = store_execp(s, "runs_recorded", RECORDED_SQL, 4, p);
	if (!r)
		goto out;
	found = 0;
	for (int i = 0; i < PQntuples(r); i++) {
		long k = strtol(PQgetvalue(r, i, 0), NULL, 10);
		if (k >= 1 && k <= n && !recorded[k - 1]) {
			recorded[k - 1] = 1;
			found++;
		}
	}
out:
	PQclear(r);
	buf_release(&ids);
	buf_release(&atts);
	buf_release(&states);
	buf_release(&execs);
	return found;
}

static const char STARTED_SQL[] =
    "WITH x AS (SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[])"
    "  AS x(id, attempt, ms)),"
    " lk AS (SELECT tr.id, x.attempt, CASE WHEN x.ms > 0 THEN to_timestamp(x.ms / 1000.0)"
    "  ELSE now() END AS at"
    "  FROM task_runs tr JOIN x ON x.id = tr.id AND x.attempt = tr.attempt"
    "  WHERE tr.state = 'running' ORDER BY tr.id FOR UPDATE OF tr)"
    /* the attempt's start, on its task run until it ends (migration 013) */
    " UPDATE task_runs tr SET started_at = coalesce(tr.started_at, lk.at),"
    "  attempt_started_at = coalesce(tr.attempt_started_at, lk.at), updated_at = now()"
    " FROM lk WHERE tr.id = lk.id";

/* Appends "{a,b,c}" of ints. */
static void ints_literal(struct buf *b, const int *v, int n)
{
	long long *tmp = xmalloc((size_t)n * sizeof *tmp);
	for (int i = 0; i < n; i++)
		tmp[i] = v[i];
	runs__ids_literal(b, tmp, n);
	free(tmp);
}

int runs_apply_started(struct store *s, const long long *task_run_ids, const int *attempts,
                       const int64_t *at_ms, int n)
{
	if (n <= 0)
		return 0;
	int rc = -1;
	struct buf a, b, c;
	buf_init(&a, 0);
	buf_init(&b, 0);
	buf_init(&c, 0);
	runs__ids_literal(&a, task_run_ids, n);
	ints_literal(&b, attempts, n);
	long long *ms = xmalloc((size_t)n * sizeof *ms);
	for (int i = 0; i < n; i++)
		ms[i] = at_ms ? at_ms[i] : 0;
	runs__ids_literal(&c, ms, n);
	free(ms);
	const char *p[3] = {a.data, b.data, c.data};
	PGresult *r = store_execp(s, "runs_started", STARTED_SQL, 3, p);
	if (!r)
		goto out;
	PQclear(r);
	rc = 0;
out:
	buf_release(&a);
	buf_release(&b);
	buf_release(&c);
	return rc;
}

static const char RENEW_SQL[] =
    "WITH x AS (SELECT * FROM unnest($1::bigint[], $2::int[]) AS x(id, attempt)),"
    " lk AS (SELECT tr.id FROM task_runs tr JOIN x ON x.id = tr.id AND x.attempt = tr.attempt"
    "  WHERE tr.state = 'running' ORDER BY tr.id FOR UPDATE OF tr)"
    " UPDATE task_runs tr SET lease_expires_at = now() + $3::bigint * interval '1 millisecond'"
    " FROM lk WHERE tr.id = lk.id";

int runs_renew_leases(struct store *s, const long long *task_run_ids, const int *attempts, int n,
                      int64_t lease_ms)
{
	if (n <= 0)
		return 0;
	int rc = -1;
	struct buf a, b;
	buf_init(&a, 0);
	buf_init(&b, 0);
	runs__ids_literal(&a, task_run_ids, n);
	ints_literal(&b, attempts, n);
	char lease[32];
	snprintf(lease, sizeof lease, "%lld", (long long)lease_ms);
	const char *p[3] = {a.data, b.data, lease};
	PGresult *r = store_execp(s, "runs_renew", RENEW_SQL, 3, p);
	if (!r)
		goto out;
	PQclear(r);
	rc = 0;
out:
	buf_release(&a);
	buf_release(&b);
	return rc;
}
