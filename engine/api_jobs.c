/* The job façade for one-step jobs (the seed's API): POST /api/v1/jobs
 * creates or updates a workflow "job-<name>" with one task, "callback",
 * an http POST of the payload (JSON) to callback_url, on a cron or at
 * schedule. The workflow is generated as YAML and goes through
 * dsl_compile and runs_submit like any submitted file, so it gets the same
 * validation; errors name the JSON field. job_id is the name.
 * GET /api/v1/jobs/{id}/status and DELETE /api/v1/jobs/{id} (soft). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_int.h"
#include "buf.h"
#include "cron.h"
#include "dsl.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

#define JOB_NAME_MAX 100
#define JOB_PREFIX   "job-"

static void put(struct buf *b, const char *s)
{
	/* Unbounded buffer: only allocation can fail, and that aborts. */
	if (buf_puts(b, s) != 0)
		log_error("job YAML buffer append failed", "%s", "");
}

/* Appends s as a YAML double-quoted scalar (JSON string syntax is valid
 * YAML) with "${" written "$${", so no value is ever a template. */
static void put_quoted(struct buf *b, const char *s)
{
	struct buf t;
	buf_init(&t, 0);
	for (const char *p = s; *p; p++) {
		char c[2] = {*p, '\0'};
		if (p[0] == '$' && p[1] == '{')
			put(&t, "$");
		put(&t, c);
	}
	json_t *js = json_string(t.data ? t.data : "");
	char *q = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
	put(b, q ? q : "\"\"");
	free(q);
	json_decref(js);
	buf_release(&t);
}

static int valid_job_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > JOB_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int alnum =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '-' && c != '_' && c != '.')))
			return 0;
	}
	return 1;
}

/* The JSON field a DSL error field of the generated YAML came from. */
static const char *json_field(const char *dsl_field)
{
	static const struct {
		const char *prefix, *field;
	} map[] = {
	    {"schedule.cron", "cron"},
	    {"schedule.at", "at"},
	    {"schedule.timezone", "timezone"},
	    {"schedule", "cron"},
	    {"tasks.callback.http.url", "callback_url"},
	    {"tasks.callback.http.body", "payload"},
	    {"tasks.callback.priority", "priority"},
	    {"name", "name"},
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (strncmp(dsl_field, map[i].prefix, strlen(map[i].prefix)) == 0)
			return map[i].field;
	return NULL;
}

static void invalid_job(struct api_resp *rs, const struct dsl_result *r)
{
	json_t *details = json_array();
	const char *field = NULL, *msg = "invalid job";
	for (size_t i = 0; i < r->nerrors; i++) {
		const char *f = json_field(r->errors[i].field ? r->errors[i].field : "");
		if (i == 0) {
			field = f;
			msg = r->errors[i].message;
		}
		json_array_append_new(details,
		                      json_pack("{s:s?,s:s}", "field", f, "message",
		                                r->errors[i].message ? r->errors[i].message : ""));
	}
	api_json(rs, 400,
	         json_pack("{s:{s:s,s:s,s:s?,s:o}}", "error", "code", "invalid_field", "message",
	                   msg, "field", field, "details", details));
}

/* Epoch ms as RFC 3339 UTC into out. */
static void fmt_ms(int64_t ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	char base[32];
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, len, "%s.%03dZ", base, (int)(ms % 1000));
}

// clang-format off
static const char next_fire_sql[] =
    "SELECT " "wf_ts(s.next_fire_at)" ", s.kind, s.expr, s.timezone"
    " FROM schedules s JOIN workflows w ON w.id = s.workflow_id"
    " WHERE w.name = $1 AND s.enabled";
// clang-format on

/* The next fire time of a job: the scheduler's next_fire_at, else (not
 * computed yet) the cron's next nominal time. A new JSON value. */
static json_t *next_fire(struct api_req *rq, const char *workflow)
{
	const char *p[1] = {workflow};
	json_t *v = json_null();
	PGresult *r = store_exec(api_store(rq), next_fire_sql, 1, p);
	if (!r || PQntuples(r) == 0)
		goto out;
	if (!PQgetisnull(r, 0, 0)) {
		json_decref(v);
		v = json_string(PQgetvalue(r, 0, 0));
		goto out;
	}
	if (strcmp(PQgetvalue(r, 0, 1), "cron") == 0 && !PQgetisnull(r, 0, 2)) {
		struct cron_expr *e = NULL;
		char err[256], text[48];
		int64_t next;
		if (cron_parse(PQgetvalue(r, 0, 2), workflow, &e, err, sizeof err) == 0 &&
		    cron_next(e, PQgetvalue(r, 0, 3), CRON_GAP_SHIFT, CRON_REPEAT_ONCE,
		              wall_ms() / 1000, &next) == 0) {
			fmt_ms(next * 1000, text, sizeof text);
			json_decref(v);
			v = json_string(text);
		}
		cron_free(e);
	}
out:
	PQclear(r);
	return v;
}

static void create_job(struct api_req *rq, struct api_resp *rs)
{
	static const char *const allowed[] = {"name",         "cron",     "at",      "timezone",
	                                      "callback_url", "priority", "payload", NULL};
	json_t *body = NULL;
	struct buf y;
	struct dsl_result r;
	struct wf_err e = {0};
	char *workflow = NULL, *filename = NULL, *payload = NULL;
	int compiled = 0, version = 0, changed = 0;

	memset(&r, 0, sizeof r);
	buf_init(&y, 0);
	if (api_body_object(rq, rs, allowed, &body) != 0)
		goto out;
	json_t *name = json_object_get(body, "name"), *cron = json_object_get(body, "cron"),
	       *at = json_object_get(body, "at"), *tz = json_object_get(body, "timezone"),
	       *url = json_object_get(body, "callback_url"),
	       *prio = json_object_get(body, "priority"), *pl = json_object_get(body, "payload");
	if (!json_is_string(name) || !valid_job_name(json_string_value(name))) {
		api_error(rs, 400, "invalid_field", "name",
		          "'name' is required: 1 to %d letters, digits, '-', '_' or '.', starting "
		          "with a letter or digit",
		          JOB_NAME_MAX);
		goto out;
	}
	if ((cron && !json_is_null(cron)) == (at && !json_is_null(at))) {
		api_error(rs, 400, "invalid_field", cron ? "at" : "cron",
		          "give exactly one of 'cron' (a cron expression) or 'at' (an RFC 3339 "
		          "time)");
		goto out;
	}
	if (cron && !json_is_null(cron) && !json_is_string(cron)) {
		api_error(rs, 400, "invalid_field", "cron", "'cron' must be a string");
		goto out;
	}
	if (at && !json_is_null(at) && !json_is_string(at)) {
		api_error(rs, 400, "invalid_field", "at", "'at' must be a string");
		goto out;
	}
	if (tz && !json_is_null(tz) && !json_is_string(tz)) {
		api_error(rs, 400, "invalid_field", "timezone",
		          "'timezone' must be an IANA zone name such as Europe/Berlin");
		goto out;
	}
	const char *u = json_string_value(url);
	if (!u || (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)) {
		api_error(rs, 400, "invalid_field", "callback_url",
		          "'callback_url' is required: an http:// or https:// URL");
		goto out;
	}
	const char *pr = json_string_value(prio);
	if (prio && !json_is_null(prio) &&
	    (!pr ||
	     (strcmp(pr, "high") != 0 && strcmp(pr, "medium") != 0 && strcmp(pr, "low") != 0))) {
		api_error(rs, 400, "invalid_field", "priority",
		          "'priority' must be high, medium or low");
		goto out;
	}
	if (pl && !json_is_null(pl)) {
		payload = json_dumps(pl, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		if (!payload) {
			api_error(rs, 400, "invalid_field", "payload", "cannot encode 'payload'");
			goto out;
		}
	}
	workflow = xasprintf(JOB_PREFIX "%s", json_string_value(name));
	filename = xasprintf("%s.yaml", workflow);

	put(&y, "name: ");
	put_quoted(&y, workflow);
	put(&y, "\ndescription: \"job: POST to its callback URL\"\nschedule:\n  ");
	put(&y, json_is_string(cron) ? "cron: " : "at: ");
	put_quoted(&y, json_string_value(json_is_string(cron) ? cron : at));
	if (json_is_string(tz)) {
		put(&y, "\n  timezone: ");
		put_quoted(&y, json_string_value(tz));
	}
	put(&y, "\ntasks:\n  callback:\n    http:\n      method: POST\n      url: ");
	put_quoted(&y, u);
	if (payload) {
		put(&y, "\n      headers: {\"Content-Type\": \"application/json\"}\n      body: ");
		put_quoted(&y, payload);
	}
	if (pr) {
		put(&y, "\n    priority: ");
		put(&y, pr);
	}
	put(&y, "\n");

	compiled = 1;
	if (dsl_compile(y.data, y.len, filename, &r) != 0) {
		invalid_job(rs, &r);
		goto out;
	}
	if (runs_submit(api_store(rq), &r, y.data, filename, rq->actor, &version, &changed, &e) !=
	    0) {
		api_error_wf(rs, &e);
		goto out;
	}
	log_info("job saved", "job=%s version=%d changed=%d actor=%s", json_string_value(name),
	         version, changed, rq->actor);
	api_json(rs, 201,
	         json_pack("{s:s,s:s,s:i,s:b,s:o}", "job_id", json_string_value(name), "workflow",
	                   workflow, "version", version, "changed", changed, "next_fire_time",
	                   next_fire(rq, workflow)));
out:
	if (compiled)
		dsl_result_release(&r);
	buf_release(&y);
	free(payload);
	free(workflow);
	free(filename);
	json_decref(body);
}

// clang-format off
static const char status_sql[] =
    "SELECT json_build_object('job_id', $2::text, 'workflow', w.name,"
    " 'status', COALESCE(lr.state, 'scheduled'), 'paused', w.paused,"
    " 'last_run', CASE WHEN lr.id IS NULL THEN NULL ELSE json_build_object('id', lr.id,"
    "   'state', lr.state, 'created_at', " "wf_ts(lr.created_at)" ","
    "   'finished_at', " "wf_ts(lr.finished_at)" ") END,"
    " 'next_run', " "wf_ts(s.next_fire_at)" ","
    " 'retry_count', COALESCE((SELECT sum(greatest(t.attempt - 1, 0)) FROM task_runs t"
    "   WHERE t.run_id = lr.id), 0))::text"
    " FROM workflows w LEFT JOIN schedules s ON s.workflow_id = w.id AND s.enabled"
    " LEFT JOIN LATERAL (SELECT id, state, created_at, finished_at FROM runs"
    "   WHERE workflow_id = w.id ORDER BY id DESC LIMIT 1) lr ON true"
    " WHERE w.name = $1 AND w.deleted_at IS NULL";
// clang-format on

static void job_status(struct api_req *rq, struct api_resp *rs)
{
	char *workflow = xasprintf(JOB_PREFIX "%s", rq->caps[0]);
	const char *p[2] = {workflow, rq->caps[0]};
	PGresult *r = store_exec(api_store(rq), status_sql, 2, p);
	json_t *v = NULL;
	if (!r) {
		api_error_db(rq, rs);
		goto out;
	}
	if (PQntuples(r) == 0) {
		api_error(rs, 404, "not_found", NULL, "no job '%s'", rq->caps[0]);
		goto out;
	}
	v = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
	if (!v) {
		api_error(rs, 500, "internal", NULL, "cannot read the job's status");
		goto out;
	}
	if (json_is_null(json_object_get(v, "next_run")))
		json_object_set_new(v, "next_run", next_fire(rq, workflow));
	api_json(rs, 200, v);
	v = NULL;
out:
	json_decref(v);
	PQclear(r);
	free(workflow);
}

static void delete_job(struct api_req *rq, struct api_resp *rs)
{
	char *workflow = xasprintf(JOB_PREFIX "%s", rq->caps[0]);
	int rc = api_workflow_delete(rq, rs, workflow);
	if (rc == 0)
		api_error(rs, 404, "not_found", NULL, "no job '%s'", rq->caps[0]);
	else if (rc == 1)
		api_json(rs, 200, json_pack("{s:s,s:b}", "job_id", rq->caps[0], "deleted", 1));
	free(workflow);
}

const struct api_route api_job_routes[] = {
    {"POST", "/api/v1/jobs", AUTH_OPERATOR, create_job},
    {"GET", "/api/v1/jobs/{}/status", AUTH_VIEWER, job_status},
    {"DELETE", "/api/v1/jobs/{}", AUTH_OPERATOR, delete_job},
    {NULL, NULL, AUTH_NONE, NULL},
};
