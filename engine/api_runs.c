/* Run endpoints: list, detail (with task runs, attempts and why each task
 * run waits), resume, cancel. */
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

static const char *const run_states[] = {"queued",    "running", "succeeded", "failed",
                                         "cancelled", "paused",  NULL};

int api_run_state(struct api_req *rq, long long id, char *out, size_t outlen)
{
	char ids[24];
	snprintf(ids, sizeof ids, "%lld", id);
	const char *p[1] = {ids};
	PGresult *r = store_execp(api_store(rq), "api_run_state",
	                          "SELECT state FROM runs WHERE id = $1::bigint", 1, p);
	if (!r)
		return -1;
	snprintf(out, outlen, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	return 0;
}

/* The run id of the path, or -1 with a 404 set. */
static long long path_run_id(struct api_req *rq, struct api_resp *rs)
{
	int64_t id;
	if (parse_int64(rq->caps[0], 1, INT64_MAX, &id) != 0) {
		api_error(rs, 404, "not_found", NULL, "no run '%s' (run ids are numbers)",
		          rq->caps[0]);
		return -1;
	}
	return id;
}

/* ------------------------------------------------------------ list */

static int is_run_state(const char *s)
{
	for (int i = 0; run_states[i]; i++)
		if (strcmp(run_states[i], s) == 0)
			return 1;
	return 0;
}

static void list_runs(struct api_req *rq, struct api_resp *rs)
{
	int limit;
	int64_t cur;
	char lim[16];
	const char *state = api_arg(rq, "state"), *since = api_arg(rq, "since"),
	           *until = api_arg(rq, "until"), *cursor = api_arg(rq, "cursor");

	if (api_arg_limit(rq, rs, &limit) != 0)
		return;
	if (state && !is_run_state(state)) {
		api_error(rs, 400, "invalid_param", "state",
		          "unknown run state '%s' (queued, running, succeeded, failed, cancelled, "
		          "paused)",
		          state);
		return;
	}
	if (since && !api_valid_time(since)) {
		api_error(rs, 400, "invalid_param", "since",
		          "since must be an RFC 3339 time such as 2026-01-02T03:04:05Z");
		return;
	}
	if (until && !api_valid_time(until)) {
		api_error(rs, 400, "invalid_param", "until",
		          "until must be an RFC 3339 time such as 2026-01-02T03:04:05Z");
		return;
	}
	if (cursor && parse_int64(cursor, 1, INT64_MAX, &cur) != 0) {
		api_error(rs, 400, "invalid_param", "cursor", "cursor must be a run id");
		return;
	}
	snprintf(lim, sizeof lim, "%d", limit + 1);
	const char *p[7] = {api_arg(rq, "workflow"), state, since, until, cursor, lim,
	                    api_ns_scope(rq)};
	api_list(rq, rs,
	         "SELECT json_build_object('id', r.id, 'workflow', w.name, 'version', "
	         "r.version, 'state', r.state, 'trigger', r.trigger, 'params', r.params, "
	         "'scheduled_for', wf_ts(r.scheduled_for), 'created_by', r.created_by, "
	         "'created_at', wf_ts(r.created_at), 'started_at', wf_ts(r.started_at), "
	         "'finished_at', wf_ts(r.finished_at))::text, r.id FROM runs r JOIN workflows w "
	         "ON w.id = r.workflow_id WHERE ($1::text IS NULL OR w.name = $1) AND ($2::text "
	         "IS NULL OR r.state = $2)   AND ($3::timestamptz IS NULL OR r.created_at >= "
	         "$3::timestamptz)   AND ($4::timestamptz IS NULL OR r.created_at < "
	         "$4::timestamptz)   AND ($5::bigint IS NULL OR r.id < $5::bigint) "
	         "  AND ($7::text IS NULL OR w.namespace = $7) ORDER BY "
	         "r.id DESC LIMIT $6::int",
	         7, p, limit, 1);
}

/* ------------------------------------------------------------ detail */

/* clang-format off: SQL is laid out by hand. */
#define NOT_FINAL      "('pending', 'queued', 'running', 'retrying')"
#define ONLINE_IN_POOL "x.pool = tr.pool AND x.state = 'online'"
#define BREAKER        "(tr.spec->'breaker'->>'name')"
/* The executor a task is pinned to (route: executor:<id>), else NULL. */
#define PINNED                                                                       \
	"COALESCE(tr.target_executor, CASE WHEN tr.spec->>'route' LIKE 'executor:%'" \
	" THEN substr(tr.spec->>'route', 10) END)"

/* Why a task run is not running (or where it runs); null when final. The
 * reason the engine stored (tr.wait_reason, e.g. the breaker that refused
 * the last attempt) comes before the generic "retrying at". */
#define WAIT_REASON                                                                           \
	"CASE tr.state"                                                                       \
	" WHEN 'pending' THEN COALESCE('waiting on upstream: ' || ("                          \
	"   SELECT string_agg(n, ', ' ORDER BY n)"                                            \
	"   FROM jsonb_array_elements_text(COALESCE(tr.spec->'needs', '[]')) n"               \
	"   WHERE EXISTS (SELECT 1 FROM task_runs u WHERE u.run_id = tr.run_id"               \
	"     AND u.task = n AND u.state IN " NOT_FINAL ")), 'waiting to be queued')"         \
	" WHEN 'retrying' THEN COALESCE(tr.wait_reason || '; ', '')"                          \
	"   || 'retrying at ' || wf_ts(tr.available_at)"                                      \
	"   || ' (attempt ' || (tr.attempt + 1) || ' of ' || tr.max_attempts || ')'"          \
	" WHEN 'queued' THEN CASE"                                                            \
	"   WHEN r.wf_paused THEN 'workflow paused'"                                          \
	"   WHEN r.state = 'paused' THEN 'run paused'"                                        \
	"   WHEN r.state = 'queued' THEN 'run queued: the workflow is at its limit of active" \
	" runs (max_active_runs, overlap queue, or a backfill started in order)'"             \
	"   WHEN " PINNED " IS NOT NULL AND NOT EXISTS (SELECT 1 FROM executors x"            \
	"       WHERE x.id = " PINNED " AND x.state = 'online')"                              \
	"     THEN 'executor ''' || " PINNED " || ''' is not online'"                         \
	"   WHEN NOT EXISTS (SELECT 1 FROM executors x WHERE " ONLINE_IN_POOL ")"             \
	"     THEN 'no online executor in pool ''' || tr.pool || ''''"                        \
	"   WHEN tr.spec->>'route' LIKE 'label:%' AND NOT EXISTS (SELECT 1 FROM executors x"  \
	"       WHERE " ONLINE_IN_POOL " AND substr(tr.spec->>'route', 7) = ANY (x.labels))"  \
	"     THEN 'no online executor with label ''' || substr(tr.spec->>'route', 7)"        \
	"       || ''' in pool ''' || tr.pool || ''''"                                        \
	"   WHEN " BREAKER " IS NOT NULL AND NOT EXISTS (SELECT 1 FROM executors x"           \
	"       WHERE " ONLINE_IN_POOL "       AND COALESCE(x.breakers->" BREAKER             \
	"->>'state', 'closed') <> 'open')"                                                    \
	"     THEN 'circuit breaker ''' || " BREAKER " || ''' open until ' || COALESCE(("     \
	"       SELECT wf_ts(to_timestamp(min((x.breakers->" BREAKER "->>'until_ms')"         \
	"         ::double precision) / 1000.0))"                                             \
	"       FROM executors x WHERE " ONLINE_IN_POOL "), '?')"                             \
	"   WHEN tr.available_at > now() THEN 'available at ' || wf_ts(tr.available_at)"      \
	"   ELSE 'waiting for a free slot' END"                                               \
	" WHEN 'running' THEN 'running on ' || COALESCE(tr.executor_id, '?') || ' since '"    \
	"   || COALESCE(wf_ts(COALESCE(tr.started_at, tr.attempt_started_at,"                 \
	"     tr.attempt_claimed_at)), '?')"                                                  \
	" ELSE NULL END"

#define ATTEMPTS                                                                   \
	"COALESCE((SELECT json_agg(json_build_object("                             \
	"   'attempt', a.attempt, 'executor_id', a.executor_id, 'state', a.state," \
	"   'claimed_at', wf_ts(a.claimed_at), 'started_at', wf_ts(a.started_at)," \
	"   'finished_at', wf_ts(a.finished_at), 'exit_code', a.exit_code,"        \
	"   'http_status', a.http_status, 'duration_ms', a.duration_ms,"           \
	"   'output', a.output, 'error', a.error, 'stale', a.stale)"               \
	"   ORDER BY a.attempt, a.id)"                                             \
	" FROM attempts_all a WHERE a.task_run_id = tr.id), '[]'::json)"

#define TASK_RUN                                                                                  \
	"json_build_object('id', tr.id, 'task', tr.task, 'state', tr.state,"                      \
	" 'attempt', tr.attempt, 'max_attempts', tr.max_attempts,"                                \
	" 'priority', CASE tr.priority WHEN 0 THEN 'high' WHEN 1 THEN 'medium' ELSE 'low' END,"   \
	" 'pool', tr.pool, 'executor_id', tr.executor_id, 'target_executor', tr.target_executor," \
	" 'available_at', wf_ts(tr.available_at), 'started_at', wf_ts(tr.started_at),"            \
	" 'finished_at', wf_ts(tr.finished_at), 'wait_reason', " WAIT_REASON ","                  \
	" 'error', tr.error, 'outputs', tr.outputs,"                                              \
	" 'needs', COALESCE(tr.spec->'needs', '[]'::jsonb), 'attempts', " ATTEMPTS ")"

/* The whole run detail in one statement. */
static const char run_sql[] =
    "WITH r AS ("
    "  SELECT r.*, w.name AS workflow, w.paused AS wf_paused, wv.dag"
    "  FROM runs r JOIN workflows w ON w.id = r.workflow_id"
    "  JOIN workflow_versions wv ON wv.workflow_id = r.workflow_id AND wv.version = r.version"
    "  WHERE r.id = $1::bigint),"
    " spec AS (SELECT e->>'name' AS name, e AS spec"
    "  FROM r, jsonb_array_elements(COALESCE(r.dag->'tasks', '[]')) e),"
    " tr AS (SELECT t.*, spec.spec FROM task_runs t LEFT JOIN spec ON spec.name = t.task"
    "  WHERE t.run_id = $1::bigint)"
    " SELECT json_build_object('id', r.id, 'workflow', r.workflow, 'version', r.version,"
    "  'state', r.state, 'trigger', r.trigger, 'params', r.params,"
    "  'scheduled_for', wf_ts(r.scheduled_for), 'fired_at', wf_ts(r.fired_at),"
    "  'idempotency_key', r.idempotency_key, 'created_by', r.created_by,"
    "  'created_at', wf_ts(r.created_at), 'started_at', wf_ts(r.started_at),"
    "  'finished_at', wf_ts(r.finished_at), 'deadline_at', wf_ts(r.deadline_at),"
    "  'workflow_paused', r.wf_paused,"
    "  'task_runs', COALESCE((SELECT json_agg(" TASK_RUN
    "    ORDER BY tr.task, tr.target_executor NULLS FIRST, tr.id) FROM tr), '[]'::json)"
    " )::text FROM r";
/* clang-format on */

static void get_run(struct api_req *rq, struct api_resp *rs)
{
	if (path_run_id(rq, rs) < 0)
		return;
	const char *p[1] = {rq->caps[0]};
	char *msg = xasprintf("no run %s", rq->caps[0]);
	api_one(rq, rs, run_sql, 1, p, 200, msg);
	free(msg);
}

/* ------------------------------------------------------------ actions */

static void resume(struct api_req *rq, struct api_resp *rs)
{
	static const char *const allowed[] = {"from", NULL};
	json_t *body = NULL, *reset = NULL;
	struct wf_err e = {0};
	char state[32];
	long long id = path_run_id(rq, rs);

	if (id < 0 || api_body_object(rq, rs, allowed, &body) != 0)
		goto out;
	json_t *from = json_object_get(body, "from");
	if (from && !json_is_null(from) && !json_is_string(from)) {
		api_error(rs, 400, "invalid_field", "from", "'from' must be a task name");
		goto out;
	}
	if (runs_resume(api_store(rq), id, json_string_value(from), rq->actor, &reset, &e) != 0) {
		api_error_wf(rs, &e);
		goto out;
	}
	if (api_run_state(rq, id, state, sizeof state) != 0) {
		api_error_db(rq, rs);
		goto out;
	}
	if (!reset)
		reset = json_array();
	api_json(
	    rs, 200,
	    json_pack("{s:I,s:s,s:O}", "run_id", (json_int_t)id, "state", state, "reset", reset));
out:
	json_decref(reset);
	json_decref(body);
}

static void cancel(struct api_req *rq, struct api_resp *rs)
{
	json_t *body = NULL;
	struct wf_err e = {0};
	char state[32];
	long long id = path_run_id(rq, rs);

	if (id < 0 || api_body_object(rq, rs, NULL, &body) != 0)
		goto out;
	if (runs_cancel(api_store(rq), id, rq->actor, &e) != 0) {
		api_error_wf(rs, &e);
		goto out;
	}
	if (api_run_state(rq, id, state, sizeof state) != 0) {
		api_error_db(rq, rs);
		goto out;
	}
	api_json(rs, 200, json_pack("{s:I,s:s}", "run_id", (json_int_t)id, "state", state));
out:
	json_decref(body);
}

const struct api_route api_run_routes[] = {
    {"GET", "/api/v1/runs", AUTH_VIEWER, list_runs},
    {"GET", "/api/v1/runs/{}", AUTH_VIEWER, get_run},
    {"POST", "/api/v1/runs/{}/resume", AUTH_OPERATOR, resume},
    {"POST", "/api/v1/runs/{}/cancel", AUTH_OPERATOR, cancel},
    {NULL, NULL, AUTH_NONE, NULL},
};
