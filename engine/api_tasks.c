/* Task runs and schedules: GET /api/v1/runs/{id}/tasks/{task} (a task run
 * and its attempts), GET /api/v1/runs/{id}/tasks/{task}/attempts/{n} (one
 * attempt with its output and error), GET /api/v1/schedules. */
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

// clang-format off
#define ATTEMPT_FIELDS                                                                   \
	"'task_run_id', a.task_run_id, 'attempt', a.attempt, 'executor_id', a.executor_id," \
	" 'state', a.state, 'claimed_at', " "wf_ts(a.claimed_at)" ","                     \
	" 'sent_at', " "wf_ts(a.sent_at)" ", 'started_at', " "wf_ts(a.started_at)" ","   \
	" 'finished_at', " "wf_ts(a.finished_at)" ", 'exit_code', a.exit_code,"           \
	" 'http_status', a.http_status, 'duration_ms', a.duration_ms, 'stale', a.stale"

/* The task's main task run (broadcast copies after it) and the attempts
 * of every task run of that task, without their output. */
static const char task_sql[] =
    "WITH trs AS (SELECT * FROM task_runs WHERE run_id = $1::bigint AND task = $2)"
    " SELECT json_build_object('run_id', t.run_id, 'task', t.task, 'id', t.id,"
    " 'state', t.state, 'attempt', t.attempt, 'max_attempts', t.max_attempts,"
    " 'retries_used', t.retries_used,"
    " 'priority', CASE t.priority WHEN 0 THEN 'high' WHEN 1 THEN 'medium' ELSE 'low' END,"
    " 'pool', t.pool, 'executor_id', t.executor_id, 'target_executor', t.target_executor,"
    " 'available_at', " "wf_ts(t.available_at)" ", 'lease_expires_at', "
    "wf_ts(t.lease_expires_at)" ", 'started_at', " "wf_ts(t.started_at)" ","
    " 'finished_at', " "wf_ts(t.finished_at)" ", 'wait_reason', t.wait_reason,"
    " 'error', t.error, 'outputs', t.outputs,"
    " 'copies', (SELECT json_agg(json_build_object('id', c.id, 'target_executor',"
    "   c.target_executor, 'state', c.state, 'attempt', c.attempt) ORDER BY c.id)"
    "   FROM trs c WHERE c.id <> t.id),"
    " 'attempts', COALESCE((SELECT json_agg(json_build_object(" ATTEMPT_FIELDS ")"
    "   ORDER BY a.attempt, a.stale, a.id) FROM trs c2"
    /* per task run, OFFSET 0: joined the plain way the view attempts_all
     * was read whole (every task run that kept a succeeded attempt:
     * 30 ms at 100,000 task runs, growing with the history) */
    "   CROSS JOIN LATERAL (SELECT * FROM attempts_all a"
    "    WHERE a.task_run_id = c2.id OFFSET 0) a), '[]'::json))::text"
    " FROM trs t ORDER BY t.target_executor NULLS FIRST, t.id LIMIT 1";

static const char attempt_sql[] =
    "SELECT json_build_object('run_id', tr.run_id, 'task', tr.task, " ATTEMPT_FIELDS ","
    " 'target_executor', tr.target_executor, 'output', a.output, 'error', a.error)::text"
    " FROM task_runs tr CROSS JOIN LATERAL (SELECT * FROM attempts_all a"
    "  WHERE a.task_run_id = tr.id AND a.attempt = $3::int OFFSET 0) a"
    " WHERE tr.run_id = $1::bigint AND tr.task = $2"
    " ORDER BY tr.target_executor NULLS FIRST, a.stale, tr.id, a.id LIMIT 1";

#define SCHEDULE_JSON                                                                     \
	"json_build_object('workflow', w.name, 'kind', s.kind, 'expr', s.expr,"           \
	" 'at', " "wf_ts(s.at_time)" ", 'timezone', s.timezone, 'jitter_ms', s.jitter_ms," \
	" 'catchup', s.catchup, 'overlap', s.overlap,"                                    \
	" 'next_fire_at', " "wf_ts(s.next_fire_at)" ","                                  \
	" 'next_nominal_at', " "wf_ts(s.next_nominal_at)" ","                            \
	" 'last_fired_at', " "wf_ts(s.last_fired_at)" ", 'enabled', s.enabled,"          \
	" 'paused', w.paused)"

static const char schedules_sql[] =
    "SELECT " SCHEDULE_JSON "::text, w.name FROM schedules s"
    " JOIN workflows w ON w.id = s.workflow_id"
    " WHERE w.deleted_at IS NULL AND ($1::text IS NULL OR w.name = $1)"
    "   AND ($2::text IS NULL OR w.name > $2)"
    "   AND ($4::text IS NULL OR w.namespace = $4)"
    " ORDER BY w.name LIMIT $3::int";
// clang-format on

static int run_id_ok(struct api_req *rq, struct api_resp *rs)
{
	int64_t id;
	if (parse_int64(rq->caps[0], 1, INT64_MAX, &id) != 0) {
		api_error(rs, 404, "not_found", NULL, "no run '%s' (run ids are numbers)",
		          rq->caps[0]);
		return 0;
	}
	return 1;
}

static void get_task(struct api_req *rq, struct api_resp *rs)
{
	if (!run_id_ok(rq, rs))
		return;
	const char *p[2] = {rq->caps[0], rq->caps[1]};
	char *msg = xasprintf("run %s has no task '%s'", rq->caps[0], rq->caps[1]);
	api_one(rq, rs, task_sql, 2, p, 200, msg);
	free(msg);
}

static void get_attempt(struct api_req *rq, struct api_resp *rs)
{
	int64_t n;
	if (!run_id_ok(rq, rs))
		return;
	if (parse_int64(rq->caps[2], 1, INT32_MAX, &n) != 0) {
		api_error(rs, 404, "not_found", NULL,
		          "no attempt '%s' (attempts are numbered from 1)", rq->caps[2]);
		return;
	}
	const char *p[3] = {rq->caps[0], rq->caps[1], rq->caps[2]};
	char *msg = xasprintf("task '%s' of run %s has no attempt %s", rq->caps[1], rq->caps[0],
	                      rq->caps[2]);
	api_one(rq, rs, attempt_sql, 3, p, 200, msg);
	free(msg);
}

static void list_schedules(struct api_req *rq, struct api_resp *rs)
{
	int limit;
	char lim[16];
	if (api_arg_limit(rq, rs, &limit) != 0)
		return;
	snprintf(lim, sizeof lim, "%d", limit + 1);
	const char *p[4] = {api_arg(rq, "workflow"), api_arg(rq, "cursor"), lim, api_ns_scope(rq)};
	api_list(rq, rs, schedules_sql, 4, p, limit, 0);
}

const struct api_route api_task_routes[] = {
    {"GET", "/api/v1/runs/{}/tasks/{}", AUTH_VIEWER, get_task},
    {"GET", "/api/v1/runs/{}/tasks/{}/attempts/{}", AUTH_VIEWER, get_attempt},
    {"GET", "/api/v1/schedules", AUTH_VIEWER, list_schedules},
    {NULL, NULL, AUTH_NONE, NULL},
};
