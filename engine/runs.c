/* Runs: creating them (runs_trigger), resuming, cancelling, pausing
 * workflows, and the API error type. Results live in results.c, DAG
 * advancement in advance.c, the reaper in reap.c, submit in submit.c.
 *
 * Decisions:
 * - A paused workflow still accepts triggers (manual, API, job): the run is
 *   created with its task runs, and the dispatcher holds task runs of paused
 *   workflows until unpause (as a paused Airflow DAG keeps manual runs
 *   queued). Schedulers should not fire paused workflows.
 * - Params: declared params only; values are stored as strings (numbers and
 *   booleans are written as JSON writes them), null means "not given";
 *   objects and arrays are refused. Defaults fill the gaps; a declared param
 *   with neither a value nor a default is left out unless it is required.
 * - Idempotency: a repeated idempotency key (or, for schedule and backfill
 *   runs, a repeated scheduled_for) returns the existing run with
 *   *existing = 1, whatever the params of the repeat.
 * - Cancel is not a failure: no on_failure notification. Running task runs
 *   become cancelled at once; their attempts are recorded cancelled and a
 *   NOTIFY wf_cancel {"task_run_id","attempt","executor_id"} tells the engine
 *   loops to send "cancel" to the executor (which also notices on its next
 *   heartbeat that the attempt is no longer running).
 * - Resume with nothing to re-run (every task succeeded or was skipped and
 *   no from task) is a 409. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runs_int.h"
#include "xalloc.h"

void wf_err_set(struct wf_err *e, int status, const char *code, const char *field, const char *fmt,
                ...)
{
	if (!e)
		return;
	e->status = status;
	snprintf(e->code, sizeof e->code, "%s", code ? code : "");
	snprintf(e->field, sizeof e->field, "%s", field ? field : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------ trigger */

/* The value of a param as the string stored in runs.params, or NULL (with
 * e) for objects and arrays. A new string. */
static char *param_string(const char *name, json_t *v, struct wf_err *e)
{
	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (json_is_integer(v) || json_is_real(v) || json_is_boolean(v)) {
		char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		return s ? s : xstrdup("");
	}
	wf_err_set(e, 400, "invalid_params", "",
	           "parameter '%s' must be a string, number or boolean", name);
	snprintf(e->field, sizeof e->field, "params.%s", name);
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Declared params as "a, b" sorted by name (or "none"). A new string. */
static char *declared_list(json_t *declared)
{
	size_t n = json_is_object(declared) ? json_object_size(declared) : 0, i = 0;
	if (n == 0)
		return xstrdup("none");
	const char **names = xmalloc(n * sizeof *names);
	const char *k;
	json_t *v;
	json_object_foreach(declared, k, v)
	{
		if (i < n)
			names[i++] = k;
	}
	qsort(names, i, sizeof *names, cmp_str);
	struct buf b;
	buf_init(&b, 0);
	for (size_t j = 0; j < i; j++)
		if (buf_printf(&b, "%s%s", j ? ", " : "", names[j]) != 0)
			break;
	free(names);
	return buf_detach(&b);
}

/* Checks given params against the declared ones and merges defaults.
 * Returns a new object of strings, or NULL with e. */
static json_t *check_params(json_t *declared, json_t *given, struct wf_err *e)
{
	json_t *out = json_object();
	const char *k;
	json_t *v;
	if (!json_is_object(declared))
		declared = NULL;
	if (given && !json_is_null(given) && !json_is_object(given)) {
		wf_err_set(e, 400, "invalid_params", "params", "params must be a JSON object");
		goto fail;
	}
	if (json_is_object(given)) {
		json_object_foreach(given, k, v)
		{
			if (!declared || !json_object_get(declared, k)) {
				char *list = declared_list(declared);
				wf_err_set(e, 400, "invalid_params", "",
				           "unknown parameter '%s' (declared: %s)", k, list);
				snprintf(e->field, sizeof e->field, "params.%s", k);
				free(list);
				goto fail;
			}
			if (json_is_null(v))
				continue;
			char *str = param_string(k, v, e);
			if (!str)
				goto fail;
			json_object_set_new(out, k, json_string(str));
			free(str);
		}
	}
	if (declared) {
		json_object_foreach(declared, k, v)
		{
			if (json_object_get(out, k))
				continue;
			/* { "default": x, "required": bool } or a bare default */
			json_t *def = json_is_object(v) ? json_object_get(v, "default") : v;
			int required =
			    json_is_object(v) && json_is_true(json_object_get(v, "required"));
			if (def && !json_is_null(def)) {
				char *str = param_string(k, def, e);
				if (!str)
					goto fail;
				json_object_set_new(out, k, json_string(str));
				free(str);
			} else if (required) {
				wf_err_set(e, 400, "invalid_params", "",
				           "missing required parameter '%s'", k);
				snprintf(e->field, sizeof e->field, "params.%s", k);
				goto fail;
			}
		}
	}
	return out;
fail:
	json_decref(out);
	return NULL;
}

static const char TRIGGER_LOOKUP_SQL[] =
    "SELECT w.id, w.current_version, v.dag->'params', coalesce(v.dag->>'deadline_ms', '')"
    " FROM workflows w JOIN workflow_versions v ON v.workflow_id = w.id"
    "  AND v.version = w.current_version"
    " WHERE w.name = $1 AND w.deleted_at IS NULL";

/* An existing run for the same key or scheduled time. */
static const char TRIGGER_EXISTING_SQL[] =
    "SELECT id FROM runs WHERE workflow_id = $1::bigint AND ("
    " ($2::text IS NOT NULL AND idempotency_key = $2::text)"
    " OR ($2::text IS NULL AND $3::bigint > 0 AND trigger IN ('schedule', 'backfill')"
    "  AND scheduled_for = to_timestamp($3::bigint / 1000.0)))"
    " ORDER BY id LIMIT 1";

/* One statement: the run, its task runs (from the version's tasks), the
 * event and the wake-up of the dispatchers. Nothing when a unique index
 * says the run exists. */
static const char TRIGGER_INSERT_SQL[] =
    "WITH ins AS ("
    " INSERT INTO runs (workflow_id, version, state, params, trigger, scheduled_for,"
    "  fired_at, idempotency_key, deadline_at, created_by, started_at)"
    " VALUES ($1::bigint, $2::int, 'running', $3::jsonb, $4,"
    "  CASE WHEN $5::bigint > 0 THEN to_timestamp($5::bigint / 1000.0) END,"
    "  now(), $6, CASE WHEN $7::bigint > 0 THEN now() + $7::bigint * interval '1 millisecond'"
    "  END, $8, now())"
    " ON CONFLICT DO NOTHING"
    " RETURNING id, workflow_id, version"
    "), trs AS ("
    " INSERT INTO task_runs (run_id, task, state, max_attempts, priority, pool)"
    " SELECT ins.id, t.name,"
    "  CASE WHEN jsonb_typeof(t.spec->'needs') = 'array'"
    "   AND jsonb_array_length(t.spec->'needs') > 0 THEN 'pending' ELSE 'queued' END,"
    "  greatest(coalesce((t.spec->>'retries')::int, 0), 0) + 1,"
    "  CASE t.spec->>'priority' WHEN 'high' THEN 0 WHEN 'low' THEN 2 ELSE 1 END,"
    "  coalesce(t.spec->>'pool', 'default')"
    " FROM ins JOIN tasks t ON t.workflow_id = ins.workflow_id AND t.version = ins.version"
    " RETURNING 1"
    "), ev AS ("
    " INSERT INTO events (kind, workflow_id, run_id, actor, data)"
    " SELECT 'run.created', workflow_id, id, $8, jsonb_build_object('trigger', $4::text,"
    "  'version', version) FROM ins"
    ")"
    " SELECT ins.id, (SELECT count(*) FROM trs), pg_notify('wf_work', ''),"
    "  pg_notify('wf_events', ins.id::text) FROM ins";

static const char *const TRIGGERS[] = {"manual", "api", "schedule", "backfill", "job"};

long long runs_trigger(struct store *s, const char *workflow, json_t *params, const char *idem_key,
                       const char *trigger, int64_t scheduled_for_ms, const char *actor,
                       int *existing, struct wf_err *e)
{
	long long id = -1;
	PGresult *q = NULL;
	json_t *declared = NULL, *merged = NULL;
	char *params_text = NULL;
	*existing = 0;
	if (!trigger)
		trigger = "manual";
	int known = 0;
	for (size_t i = 0; i < sizeof TRIGGERS / sizeof TRIGGERS[0]; i++)
		known |= strcmp(trigger, TRIGGERS[i]) == 0;
	if (!known) {
		wf_err_set(e, 400, "invalid_request", "trigger",
		           "unknown trigger '%s' (expected manual, api, schedule, backfill or job)",
		           trigger);
		goto out;
	}
	if (idem_key && !*idem_key)
		idem_key = NULL;

	const char *pl[1] = {workflow};
	q = store_execp(s, "runs_trigger_lookup", TRIGGER_LOOKUP_SQL, 1, pl);
	if (!q) {
		runs__db_error(e, s, "looking up the workflow");
		goto out;
	}
	if (PQntuples(q) != 1) {
		wf_err_set(e, 404, "not_found", "", "workflow '%s' does not exist", workflow);
		goto out;
	}
	char wid[32], ver[16], deadline[32];
	snprintf(wid, sizeof wid, "%s", PQgetvalue(q, 0, 0));
	snprintf(ver, sizeof ver, "%s", PQgetvalue(q, 0, 1));
	snprintf(deadline, sizeof deadline, "%s",
	         PQgetvalue(q, 0, 3)[0] ? PQgetvalue(q, 0, 3) : "0");
	if (!PQgetisnull(q, 0, 2))
		declared = json_loads(PQgetvalue(q, 0, 2), JSON_DECODE_ANY, NULL);
	PQclear(q);
	q = NULL;

	char sched[32];
	snprintf(sched, sizeof sched, "%lld", (long long)scheduled_for_ms);
	const char *pe[3] = {wid, idem_key, sched};
	if (idem_key || scheduled_for_ms > 0) {
		q = store_execp(s, "runs_trigger_existing", TRIGGER_EXISTING_SQL, 3, pe);
		if (!q) {
			runs__db_error(e, s, "looking up the run");
			goto out;
		}
		if (PQntuples(q) == 1) {
			id = strtoll(PQgetvalue(q, 0, 0), NULL, 10);
			*existing = 1;
			goto out;
		}
		PQclear(q);
		q = NULL;
	}

	merged = check_params(declared, params, e);
	if (!merged)
		goto out;
	params_text = json_dumps(merged, JSON_COMPACT | JSON_SORT_KEYS);

	const char *pi[8] = {wid, ver, params_text, trigger, sched, idem_key, deadline, actor};
	q = store_execp(s, "runs_trigger_insert", TRIGGER_INSERT_SQL, 8, pi);
	if (!q) {
		runs__db_error(e, s, "creating the run");
		goto out;
	}
	if (PQntuples(q) == 1) {
		id = strtoll(PQgetvalue(q, 0, 0), NULL, 10);
		log_info("run created", "run_id=%lld workflow=%s trigger=%s task_runs=%s", id,
		         workflow, trigger, PQgetvalue(q, 0, 1));
		goto out;
	}
	/* A concurrent trigger with the same key won the race. */
	PQclear(q);
	q = store_execp(s, "runs_trigger_existing", TRIGGER_EXISTING_SQL, 3, pe);
	if (!q) {
		runs__db_error(e, s, "looking up the run");
		goto out;
	}
	if (PQntuples(q) != 1) {
		wf_err_set(e, 409, "conflict", "", "a run of workflow '%s' already exists for %s",
		           workflow, scheduled_for_ms > 0 ? "that scheduled time" : "that key");
		goto out;
	}
	id = strtoll(PQgetvalue(q, 0, 0), NULL, 10);
	*existing = 1;
out:
	PQclear(q);
	json_decref(declared);
	json_decref(merged);
	free(params_text);
	return id;
}

/* ------------------------------------------------------------- cancel */

/* Locks the run; returns its state (new string) or NULL with e. */
static char *lock_run(struct store *s, long long run_id, char *wid, size_t widlen, char *ver,
                      size_t verlen, struct wf_err *e)
{
	char id[32];
	snprintf(id, sizeof id, "%lld", run_id);
	const char *p[1] = {id};
	PGresult *q =
	    store_exec(s,
	               "SELECT state, workflow_id, version FROM runs WHERE id = $1::bigint"
	               " FOR UPDATE",
	               1, p);
	if (!q) {
		runs__db_error(e, s, "locking the run");
		return NULL;
	}
	if (PQntuples(q) != 1) {
		wf_err_set(e, 404, "not_found", "", "run %lld does not exist", run_id);
		PQclear(q);
		return NULL;
	}
	char *state = xstrdup(PQgetvalue(q, 0, 0));
	snprintf(wid, widlen, "%s", PQgetvalue(q, 0, 1));
	snprintf(ver, verlen, "%s", PQgetvalue(q, 0, 2));
	PQclear(q);
	return state;
}

static int is_final_run(const char *state)
{
	return strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
	       strcmp(state, "cancelled") == 0;
}

static const char CANCEL_TASKS_SQL[] =
    "WITH lk AS (SELECT id, state, attempt_claimed_at AS claimed_at, attempt_started_at"
    "  FROM task_runs WHERE run_id = $1::bigint"
    "  AND state NOT IN (" RUNS_FINAL ") ORDER BY id FOR UPDATE),"
    " upd AS (UPDATE task_runs tr SET state = 'cancelled', finished_at = now(),"
    "  lease_expires_at = NULL, wait_reason = NULL, updated_at = now(),"
    "  error = 'cancelled by ' || coalesce($2, 'unknown')"
    "  FROM lk WHERE tr.id = lk.id"
    "  RETURNING tr.id, tr.run_id, tr.attempt, tr.executor_id, lk.state AS from_state,"
    "  lk.claimed_at, lk.attempt_started_at),"
    /* a running attempt ends here: its row (migration 013); a broadcast
     * parent (no executor) has none */
    " att AS (INSERT INTO attempts (task_run_id, attempt, executor_id, state, claimed_at,"
    "  sent_at, started_at, finished_at, error)"
    "  SELECT id, attempt, executor_id, 'cancelled', coalesce(claimed_at, now()), claimed_at,"
    "  attempt_started_at, now(), 'cancelled by ' || coalesce($2, 'unknown')"
    "  FROM upd WHERE from_state = 'running' AND executor_id IS NOT NULL),"
    " ev AS (INSERT INTO events (kind, workflow_id, run_id, task_run_id, actor, data)"
    "  SELECT 'task_run.state', $3::bigint, run_id, id, $2, jsonb_build_object("
    "  'from', from_state, 'to', 'cancelled', 'attempt', attempt) FROM upd)"
    " SELECT count(*), count(pg_notify('wf_cancel', jsonb_build_object('task_run_id', id,"
    "  'attempt', attempt, 'executor_id', executor_id)::text))"
    "  FILTER (WHERE from_state = 'running') FROM upd";

static const char CANCEL_RUN_SQL[] =
    "WITH upd AS (UPDATE runs SET state = 'cancelled', finished_at = now()"
    "  WHERE id = $1::bigint RETURNING id, workflow_id, state)"
    " INSERT INTO events (kind, workflow_id, run_id, actor, data)"
    " SELECT 'run.finished', workflow_id, id, $2, jsonb_build_object('state', state)"
    " FROM upd";

int runs_cancel(struct store *s, long long run_id, const char *actor, struct wf_err *e)
{
	int rc = -1;
	char *state = NULL;
	char wid[32], ver[16], id[32];
	PGresult *q = NULL;
	snprintf(id, sizeof id, "%lld", run_id);
	if (store_begin(s) != 0) {
		runs__db_error(e, s, "cancelling the run");
		return -1;
	}
	state = lock_run(s, run_id, wid, sizeof wid, ver, sizeof ver, e);
	if (!state)
		goto out;
	if (is_final_run(state)) {
		wf_err_set(e, 409, "conflict", "", "run %lld already %s", run_id, state);
		goto out;
	}
	const char *p[3] = {id, actor, wid};
	q = store_exec(s, CANCEL_TASKS_SQL, 3, p);
	if (!q) {
		runs__db_error(e, s, "cancelling the task runs");
		goto out;
	}
	PQclear(q);
	q = NULL;
	if (store_cmd(s, CANCEL_RUN_SQL, 2, p) != 0 ||
	    store_cmd(s, "SELECT pg_notify('wf_events', $1)", 1, p) != 0 || store_commit(s) != 0) {
		runs__db_error(e, s, "cancelling the run");
		goto out;
	}
	log_info("run cancelled", "run_id=%lld actor=%s", run_id, actor ? actor : "");
	rc = 0;
out:
	PQclear(q);
	if (rc != 0)
		store_rollback(s);
	free(state);
	return rc;
}

/* ------------------------------------------------------------- resume */

/* Resets the task runs to re-run: failed/dead/cancelled/upstream_failed,
 * plus from ($2) and everything downstream of it. */
static const char RESUME_RESET_SQL[] =
    "WITH RECURSIVE down(name) AS ("
    " SELECT $2::text WHERE $2::text IS NOT NULL"
    " UNION"
    " SELECT e.downstream FROM task_edges e JOIN down ON e.upstream = down.name"
    " WHERE e.workflow_id = $3::bigint AND e.version = $4::int"
    "), lk AS ("
    " SELECT tr.id, tr.state AS from_state, tr.attempt, tr.executor_id, tr.attempt_id,"
    "  tr.attempt_claimed_at, tr.attempt_started_at, tr.attempt_finished_at,"
    "  tr.attempt_exit_code, tr.attempt_http_status, tr.attempt_duration_ms, tr.attempt_output"
    " FROM task_runs tr"
    " WHERE tr.run_id = $1::bigint AND tr.target_executor IS NULL"
    "  AND (tr.state IN ('failed', 'dead', 'cancelled', 'upstream_failed')"
    "   OR tr.task IN (SELECT name FROM down))"
    " ORDER BY tr.id FOR UPDATE"
    "), held AS ("
    /* a succeeded attempt its task run kept (migration 014) moves into
     * attempts, with its id, before the task run forgets it */
    " INSERT INTO attempts (id, task_run_id, attempt, executor_id, state, claimed_at,"
    "  sent_at, started_at, finished_at, exit_code, http_status, duration_ms, output)"
    " OVERRIDING SYSTEM VALUE"
    " SELECT attempt_id, id, attempt, executor_id, 'succeeded',"
    "  coalesce(attempt_claimed_at, attempt_finished_at), attempt_claimed_at,"
    "  attempt_started_at, attempt_finished_at, attempt_exit_code, attempt_http_status,"
    "  attempt_duration_ms, attempt_output"
    " FROM lk WHERE attempt_id IS NOT NULL"
    "), upd AS ("
    " UPDATE task_runs tr SET state = 'pending', attempt_id = NULL,"
    "  attempt_finished_at = NULL, attempt_exit_code = NULL, attempt_http_status = NULL,"
    "  attempt_duration_ms = NULL, attempt_output = NULL,"
    "  max_attempts = tr.attempt + greatest(coalesce((t.spec->>'retries')::int, 0), 0) + 1,"
    "  retries_used = 0, error = NULL, outputs = NULL, wait_reason = NULL,"
    "  lease_expires_at = NULL, started_at = NULL, finished_at = NULL, available_at = now(),"
    "  updated_at = now()"
    " FROM lk, tasks t"
    " WHERE tr.id = lk.id AND t.workflow_id = $3::bigint AND t.version = $4::int"
    "  AND t.name = tr.task"
    " RETURNING tr.id, tr.task, tr.attempt, lk.from_state"
    "), dl AS ("
    " UPDATE dead_letters d SET resolved_at = now(), resolution = 'retried'"
    " FROM upd WHERE d.task_run_id = upd.id AND d.resolved_at IS NULL"
    "), ev AS ("
    " INSERT INTO events (kind, workflow_id, run_id, task_run_id, actor, data)"
    " SELECT 'task_run.state', $3::bigint, $1::bigint, id, $5, jsonb_build_object("
    "  'from', from_state, 'to', 'pending', 'attempt', attempt) FROM upd"
    ")"
    " SELECT task FROM upd ORDER BY task";

static const char RESUME_RUN_SQL[] =
    "WITH upd AS (UPDATE runs SET state = 'running', finished_at = NULL"
    "  WHERE id = $1::bigint RETURNING id, workflow_id)"
    " INSERT INTO events (kind, workflow_id, run_id, actor, data)"
    " SELECT 'run.resumed', workflow_id, id, $2, jsonb_build_object('from', $3::text,"
    "  'reset', $4::jsonb) FROM upd";

int runs_resume(struct store *s, long long run_id, const char *from_task, const char *actor,
                json_t **reset, struct wf_err *e)
{
	int rc = -1;
	char *state = NULL, *reset_text = NULL;
	char wid[32], ver[16], id[32];
	PGresult *q = NULL;
	json_t *names = json_array();
	if (reset)
		*reset = NULL;
	if (from_task && !*from_task)
		from_task = NULL;
	snprintf(id, sizeof id, "%lld", run_id);
	if (store_begin(s) != 0) {
		runs__db_error(e, s, "resuming the run");
		goto out;
	}
	state = lock_run(s, run_id, wid, sizeof wid, ver, sizeof ver, e);
	if (!state)
		goto out;
	if (!is_final_run(state)) {
		wf_err_set(e, 409, "conflict", "", "run %lld is still %s", run_id, state);
		goto out;
	}
	if (from_task) {
		const char *pf[2] = {id, from_task};
		q = store_exec(s, "SELECT 1 FROM task_runs WHERE run_id = $1::bigint AND task = $2",
		               2, pf);
		if (!q) {
			runs__db_error(e, s, "resuming the run");
			goto out;
		}
		if (PQntuples(q) == 0) {
			wf_err_set(e, 404, "not_found", "from", "run %lld has no task '%s'", run_id,
			           from_task);
			goto out;
		}
		PQclear(q);
		q = NULL;
	}
	const char *pr[5] = {id, from_task, wid, ver, actor};
	q = store_exec(s, RESUME_RESET_SQL, 5, pr);
	if (!q) {
		runs__db_error(e, s, "resetting task runs");
		goto out;
	}
	for (int i = 0; i < PQntuples(q); i++)
		json_array_append_new(names, json_string(PQgetvalue(q, i, 0)));
	PQclear(q);
	q = NULL;
	if (json_array_size(names) == 0) {
		wf_err_set(e, 409, "conflict", "",
		           "run %lld has nothing to re-run (every task %s); give a task to re-run "
		           "from",
		           run_id, strcmp(state, "succeeded") == 0 ? "succeeded" : "is final");
		goto out;
	}
	reset_text = json_dumps(names, JSON_COMPACT);
	const char *pu[4] = {id, actor, from_task, reset_text};
	if (store_cmd(s, RESUME_RUN_SQL, 4, pu) != 0) {
		runs__db_error(e, s, "resuming the run");
		goto out;
	}
	char lit[48];
	snprintf(lit, sizeof lit, "{%lld}", run_id);
	if (runs__settle(s, lit, RUNS_SETTLE_WORK_READY) != 0 || store_commit(s) != 0) {
		runs__db_error(e, s, "resuming the run");
		goto out;
	}
	log_info("run resumed", "run_id=%lld from=%s reset=%zu", run_id, from_task ? from_task : "",
	         json_array_size(names));
	if (reset) {
		*reset = names;
		names = NULL;
	}
	rc = 0;
out:
	PQclear(q);
	if (rc != 0)
		store_rollback(s);
	json_decref(names);
	free(state);
	free(reset_text);
	return rc;
}

/* -------------------------------------------------------------- pause */

static const char PAUSE_SQL[] =
    "WITH o AS (SELECT id, paused FROM workflows WHERE name = $1 AND deleted_at IS NULL"
    "  FOR UPDATE),"
    " upd AS (UPDATE workflows w SET paused = $2::boolean, updated_at = now() FROM o"
    "  WHERE w.id = o.id AND o.paused <> $2::boolean RETURNING w.id, w.paused),"
    " ev AS (INSERT INTO events (kind, workflow_id, actor)"
    "  SELECT CASE WHEN paused THEN 'workflow.paused' ELSE 'workflow.unpaused' END, id, $3"
    "  FROM upd)"
    " SELECT o.id, (SELECT count(*) FROM upd),"
    "  CASE WHEN NOT $2::boolean THEN pg_notify('wf_work', '') END FROM o";

int runs_set_paused(struct store *s, const char *workflow, int paused, const char *actor,
                    struct wf_err *e)
{
	const char *p[3] = {workflow, paused ? "true" : "false", actor};
	PGresult *q = store_exec(s, PAUSE_SQL, 3, p);
	if (!q) {
		runs__db_error(e, s, paused ? "pausing the workflow" : "unpausing the workflow");
		return -1;
	}
	int n = PQntuples(q);
	PQclear(q);
	if (n != 1) {
		wf_err_set(e, 404, "not_found", "", "workflow '%s' does not exist", workflow);
		return -1;
	}
	return 0;
}
