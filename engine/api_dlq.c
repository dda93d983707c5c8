/* Dead letters: task runs whose retries ran out. List (viewer), retry and
 * drop (operator).
 *
 * Retry re-queues that one task run with a fresh attempt budget (the
 * task's retries again, counted from its current attempt number, so
 * attempt numbers stay unique), puts its downstream task runs that were
 * upstream_failed or skipped back to pending, and reopens the run when it
 * had finished. It is runs_resume (engine/runs.c) narrowed to one task run
 * and allowed while the run is still running; the reset statement mirrors
 * RESUME_RESET_SQL and follows the same locking rule (run row first, then
 * task runs in id order). Downstream task runs that already ran (trigger
 * all_done / one_failed / always) are left as they are. */
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

// clang-format off
#define DL_JSON                                                                          \
	"json_build_object('id', d.id, 'workflow', w.name, 'run_id', d.run_id,"          \
	" 'task_run_id', d.task_run_id, 'task', d.task, 'attempts', d.attempts,"         \
	" 'last_error', d.last_error, 'created_at', " "wf_ts(d.created_at)" ","         \
	" 'resolved_at', " "wf_ts(d.resolved_at)" ", 'resolution', d.resolution,"       \
	" 'task_state', tr.state, 'run_state', r.state)"

static const char list_sql[] =
    "SELECT " DL_JSON "::text, d.id FROM dead_letters d"
    " LEFT JOIN workflows w ON w.id = d.workflow_id"
    " LEFT JOIN task_runs tr ON tr.id = d.task_run_id"
    " LEFT JOIN runs r ON r.id = d.run_id"
    " WHERE ($1::text IS NULL OR w.name = $1)"
    "   AND ($2 = 'all' OR ($2 = 'open') = (d.resolved_at IS NULL))"
    "   AND ($3::bigint IS NULL OR d.id < $3::bigint)"
    "   AND ($4::bigint IS NULL OR d.run_id = $4::bigint)"
    "   AND ($6::text IS NULL OR w.namespace = $6)"
    " ORDER BY d.id DESC LIMIT $5::int";

/* $1 run, $2 task run, $3 workflow id, $4 version, $5 actor, $6 dead letter. */
static const char reset_sql[] =
    "WITH RECURSIVE down(name) AS ("
    " SELECT e.downstream FROM task_edges e, task_runs x"
    " WHERE x.id = $2::bigint AND e.workflow_id = $3::bigint AND e.version = $4::int"
    "  AND e.upstream = x.task"
    " UNION"
    " SELECT e.downstream FROM task_edges e JOIN down ON e.upstream = down.name"
    " WHERE e.workflow_id = $3::bigint AND e.version = $4::int"
    "), lk AS ("
    " SELECT tr.id, tr.state AS from_state FROM task_runs tr"
    " WHERE tr.run_id = $1::bigint AND (tr.id = $2::bigint"
    "  OR (tr.task IN (SELECT name FROM down) AND tr.state IN ('upstream_failed', 'skipped')))"
    " ORDER BY tr.id FOR UPDATE"
    "), upd AS ("
    " UPDATE task_runs tr SET"
    "  state = CASE WHEN tr.id = $2::bigint THEN 'queued' ELSE 'pending' END,"
    "  max_attempts = CASE WHEN tr.id = $2::bigint"
    "   THEN tr.attempt + greatest(coalesce((t.spec->>'retries')::int, 0), 0) + 1"
    "   ELSE tr.max_attempts END,"
    "  retries_used = 0, error = NULL, outputs = NULL, wait_reason = NULL,"
    "  lease_expires_at = NULL, started_at = NULL, finished_at = NULL, available_at = now(),"
    "  updated_at = now()"
    " FROM lk, tasks t"
    " WHERE tr.id = lk.id AND t.workflow_id = $3::bigint AND t.version = $4::int"
    "  AND t.name = tr.task"
    " RETURNING tr.id, tr.task, tr.attempt, tr.state, lk.from_state"
    "), dl AS ("
    " UPDATE dead_letters SET resolved_at = now(), resolution = 'retried'"
    " WHERE id = $6::bigint AND resolved_at IS NULL"
    "), ev AS ("
    " INSERT INTO events (kind, workflow_id, run_id, task_run_id, actor, data)"
    " SELECT 'task_run.state', $3::bigint, $1::bigint, id, $5, jsonb_build_object("
    "  'from', from_state, 'to', state, 'attempt', attempt) FROM upd"
    " UNION ALL"
    " SELECT 'dead_letter.retried', $3::bigint, $1::bigint, $2::bigint, $5,"
    "  jsonb_build_object('dead_letter_id', $6::bigint,"
    "   'reset', (SELECT jsonb_agg(task ORDER BY task) FROM upd))"
    ")"
    " SELECT task FROM upd ORDER BY task";

static const char reopen_sql[] =
    "WITH upd AS (UPDATE runs SET state = 'running', finished_at = NULL"
    "  WHERE id = $1::bigint AND state IN ('succeeded', 'failed', 'cancelled')"
    "  RETURNING id, workflow_id),"
    " ev AS (INSERT INTO events (kind, workflow_id, run_id, actor, data)"
    "  SELECT 'run.resumed', workflow_id, id, $2, jsonb_build_object('dead_letter_id',"
    "   $3::bigint) FROM upd)"
    " SELECT pg_notify('wf_work', ''), pg_notify('wf_events', $1::text)";
// clang-format on

static void list_dead_letters(struct api_req *rq, struct api_resp *rs)
{
	int limit;
	int64_t v;
	char lim[16];
	const char *state = api_arg(rq, "state"), *cursor = api_arg(rq, "cursor"),
	           *run = api_arg(rq, "run");
	if (api_arg_limit(rq, rs, &limit) != 0)
		return;
	if (!state)
		state = "open";
	if (strcmp(state, "open") != 0 && strcmp(state, "resolved") != 0 &&
	    strcmp(state, "all") != 0) {
		api_error(rs, 400, "invalid_param", "state", "state must be open, resolved or all");
		return;
	}
	if (cursor && parse_int64(cursor, 1, INT64_MAX, &v) != 0) {
		api_error(rs, 400, "invalid_param", "cursor", "cursor must be a dead letter id");
		return;
	}
	if (run && parse_int64(run, 1, INT64_MAX, &v) != 0) {
		api_error(rs, 400, "invalid_param", "run", "run must be a run id");
		return;
	}
	snprintf(lim, sizeof lim, "%d", limit + 1);
	const char *p[6] = {api_arg(rq, "workflow"), state, cursor, run, lim, api_ns_scope(rq)};
	api_list(rq, rs, list_sql, 6, p, limit, 1);
}

/* The dead letter of the path: fills its fields. Returns 1 found, 0 not
 * (404 set), -1 db error (set). lock: FOR UPDATE (inside a transaction). */
struct dl {
	char id[24], task_run_id[24], run_id[24], task[256], workflow[256];
	int resolved;
	char resolution[32];
};

static int load_dl(struct api_req *rq, struct api_resp *rs, struct dl *d, int lock)
{
	int64_t v;
	if (parse_int64(rq->caps[0], 1, INT64_MAX, &v) != 0) {
		api_error(rs, 404, "not_found", NULL, "no dead letter '%s' (ids are numbers)",
		          rq->caps[0]);
		return 0;
	}
	const char *p[1] = {rq->caps[0]};
	PGresult *r = store_exec(api_store(rq),
	                         lock ? "SELECT d.id, d.task_run_id, d.run_id, d.task,"
	                                " COALESCE(w.name, ''), d.resolved_at IS NOT NULL,"
	                                " COALESCE(d.resolution, '') FROM dead_letters d"
	                                " LEFT JOIN workflows w ON w.id = d.workflow_id"
	                                " WHERE d.id = $1::bigint FOR UPDATE OF d"
	                              : "SELECT d.id, d.task_run_id, d.run_id, d.task,"
	                                " COALESCE(w.name, ''), d.resolved_at IS NOT NULL,"
	                                " COALESCE(d.resolution, '') FROM dead_letters d"
	                                " LEFT JOIN workflows w ON w.id = d.workflow_id"
	                                " WHERE d.id = $1::bigint",
	                         1, p);
	if (!r) {
		api_error_db(rq, rs);
		return -1;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		api_error(rs, 404, "not_found", NULL, "no dead letter %s", rq->caps[0]);
		return 0;
	}
	snprintf(d->id, sizeof d->id, "%s", PQgetvalue(r, 0, 0));
	snprintf(d->task_run_id, sizeof d->task_run_id, "%s", PQgetvalue(r, 0, 1));
	snprintf(d->run_id, sizeof d->run_id, "%s", PQgetvalue(r, 0, 2));
	snprintf(d->task, sizeof d->task, "%s", PQgetvalue(r, 0, 3));
	snprintf(d->workflow, sizeof d->workflow, "%s", PQgetvalue(r, 0, 4));
	d->resolved = PQgetvalue(r, 0, 5)[0] == 't';
	snprintf(d->resolution, sizeof d->resolution, "%s", PQgetvalue(r, 0, 6));
	PQclear(r);
	return 1;
}

static void retry_dead_letter(struct api_req *rq, struct api_resp *rs)
{
	struct store *s = api_store(rq);
	struct dl d;
	json_t *body = NULL, *reset = json_array();
	PGresult *r = NULL;
	int began = 0, ok = 0;
	char wid[24], ver[16], run_state[32], tr_state[32];

	if (api_body_object(rq, rs, NULL, &body) != 0)
		goto out;
	/* Unlocked first, for the run id: the run row is locked before the
	 * dead letter (runs_resume takes them in that order too). */
	if (load_dl(rq, rs, &d, 0) != 1)
		goto out;
	if (store_begin(s) != 0) {
		api_error_db(rq, rs);
		goto out;
	}
	began = 1;
	const char *pr[2] = {d.run_id, d.task_run_id};
	r = store_exec(s,
	               "SELECT r.state, r.workflow_id, r.version,"
	               " (SELECT state FROM task_runs WHERE id = $2::bigint)"
	               " FROM runs r WHERE r.id = $1::bigint FOR UPDATE",
	               2, pr);
	if (!r) {
		api_error_db(rq, rs);
		goto out;
	}
	if (PQntuples(r) == 0 || PQgetisnull(r, 0, 3)) {
		api_error(rs, 404, "not_found", NULL,
		          "the run or task run of dead letter %s no longer exists", d.id);
		goto out;
	}
	snprintf(run_state, sizeof run_state, "%s", PQgetvalue(r, 0, 0));
	snprintf(wid, sizeof wid, "%s", PQgetvalue(r, 0, 1));
	snprintf(ver, sizeof ver, "%s", PQgetvalue(r, 0, 2));
	snprintf(tr_state, sizeof tr_state, "%s", PQgetvalue(r, 0, 3));
	PQclear(r);
	r = NULL;
	if (load_dl(rq, rs, &d, 1) != 1)
		goto out;
	if (d.resolved) {
		api_error(rs, 409, "conflict", NULL, "dead letter %s was %s already", d.id,
		          d.resolution[0] ? d.resolution : "resolved");
		goto out;
	}
	if (strcmp(tr_state, "dead") != 0) {
		api_error(rs, 409, "conflict", NULL,
		          "task run %s (%s) is %s, not dead: nothing to retry", d.task_run_id,
		          d.task, tr_state);
		goto out;
	}
	const char *p[6] = {d.run_id, d.task_run_id, wid, ver, rq->actor, d.id};
	r = store_exec(s, reset_sql, 6, p);
	if (!r) {
		api_error_db(rq, rs);
		goto out;
	}
	for (int i = 0; i < PQntuples(r); i++)
		json_array_append_new(reset, json_string(PQgetvalue(r, i, 0)));
	PQclear(r);
	r = NULL;
	if (json_array_size(reset) == 0) {
		api_error(rs, 409, "conflict", NULL,
		          "task '%s' is no longer part of version %s of the workflow", d.task, ver);
		goto out;
	}
	const char *po[3] = {d.run_id, rq->actor, d.id};
	r = store_exec(s, reopen_sql, 3, po);
	if (!r || store_commit(s) != 0) {
		api_error_db(rq, rs);
		goto out;
	}
	began = 0;
	ok = 1;
	log_info("dead letter retried", "id=%s run_id=%s task=%s actor=%s", d.id, d.run_id, d.task,
	         rq->actor);
	api_json(rs, 200,
	         json_pack("{s:I,s:I,s:I,s:s,s:s,s:s,s:O}", "id", (json_int_t)atoll(d.id), "run_id",
	                   (json_int_t)atoll(d.run_id), "task_run_id",
	                   (json_int_t)atoll(d.task_run_id), "task", d.task, "resolution",
	                   "retried", "state", "queued", "reset", reset));
out:
	PQclear(r);
	if (began && !ok)
		store_rollback(s);
	json_decref(reset);
	json_decref(body);
}

static void drop_dead_letter(struct api_req *rq, struct api_resp *rs)
{
	struct dl d;
	json_t *body = NULL;
	PGresult *r = NULL;
	if (api_body_object(rq, rs, NULL, &body) != 0)
		goto out;
	if (load_dl(rq, rs, &d, 0) != 1)
		goto out;
	const char *p[2] = {d.id, rq->actor};
	r = store_exec(api_store(rq),
	               "WITH u AS (UPDATE dead_letters SET resolved_at = now(),"
	               "  resolution = 'dropped' WHERE id = $1::bigint AND resolved_at IS NULL"
	               "  RETURNING id, workflow_id, run_id, task_run_id, task),"
	               " ev AS (INSERT INTO events (kind, workflow_id, run_id, task_run_id, actor,"
	               "  data) SELECT 'dead_letter.dropped', workflow_id, run_id, task_run_id,"
	               "  $2, jsonb_build_object('dead_letter_id', id, 'task', task) FROM u)"
	               " SELECT (SELECT count(*) FROM u),"
	               "  pg_notify('wf_events', COALESCE((SELECT run_id::text FROM u), ''))",
	               2, p);
	if (!r) {
		api_error_db(rq, rs);
		goto out;
	}
	if (strcmp(PQgetvalue(r, 0, 0), "1") != 0) {
		api_error(rs, 409, "conflict", NULL, "dead letter %s was %s already", d.id,
		          d.resolution[0] ? d.resolution : "resolved");
		goto out;
	}
	log_info("dead letter dropped", "id=%s run_id=%s task=%s actor=%s", d.id, d.run_id, d.task,
	         rq->actor);
	api_json(rs, 200,
	         json_pack("{s:I,s:I,s:s,s:s}", "id", (json_int_t)atoll(d.id), "run_id",
	                   (json_int_t)atoll(d.run_id), "task", d.task, "resolution", "dropped"));
out:
	PQclear(r);
	json_decref(body);
}

const struct api_route api_dlq_routes[] = {
    {"GET", "/api/v1/dead-letters", AUTH_VIEWER, list_dead_letters},
    {"POST", "/api/v1/dead-letters/{}/retry", AUTH_OPERATOR, retry_dead_letter},
    {"POST", "/api/v1/dead-letters/{}/drop", AUTH_OPERATOR, drop_dead_letter},
    {NULL, NULL, AUTH_NONE, NULL},
};
