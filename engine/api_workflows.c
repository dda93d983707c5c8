/* Workflow endpoints: submit, list, show, versions, trigger, pause. */
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "dsl.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

#define MAX_IDEM_KEY 200
#define MAX_FILENAME 255

/* The JSON fields of a workflow (w), its current version (wv) and schedule (s). */
/* clang-format off: SQL is laid out by hand. */
#define WF_FIELDS                                                                \
	"'name', w.name, 'namespace', w.namespace, 'paused', w.paused,"          \
	" 'version', w.current_version, 'hash', wv.hash,"                        \
	" 'description', wv.dag->'description', 'schedule', wv.dag->'schedule'," \
	" 'next_fire_at', wf_ts(s.next_fire_at),"                                \
	" 'last_run', (SELECT json_build_object('id', r.id, 'state', r.state,"   \
	"   'created_at', wf_ts(r.created_at)) FROM runs r"                      \
	"   WHERE r.workflow_id = w.id ORDER BY r.id DESC LIMIT 1),"             \
	" 'created_at', wf_ts(w.created_at), 'updated_at', wf_ts(w.updated_at)"
/* clang-format on */
#define WF_FROM                                                                      \
	" FROM workflows w"                                                          \
	" LEFT JOIN workflow_versions wv ON wv.workflow_id = w.id AND wv.version = " \
	"w.current_version"                                                          \
	" LEFT JOIN schedules s ON s.workflow_id = w.id AND s.enabled"

/* ------------------------------------------------------------ submit */

static int valid_filename(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > MAX_FILENAME)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static void invalid_workflow(struct api_resp *rs, const struct dsl_result *r, const char *filename)
{
	json_t *details = json_array();
	for (size_t i = 0; i < r->nerrors; i++) {
		char *line = dsl_error_format(&r->errors[i]);
		json_array_append_new(details, json_string(line ? line : "(unprintable error)"));
		free(line);
	}
	char *msg =
	    xasprintf("%zu error%s in %s", r->nerrors, r->nerrors == 1 ? "" : "s", filename);
	api_json(rs, 400,
	         json_pack("{s:{s:s,s:s,s:n,s:o}}", "error", "code", "invalid_workflow", "message",
	                   msg, "field", "details", details));
	free(msg);
}

/* A namespace-scoped token may submit only into its namespace, and may
 * not take over a workflow of the same name in another one. */
static int submit_scope(struct api_req *rq, struct api_resp *rs, const json_t *dag)
{
	const char *name = json_string_value(json_object_get(dag, "name"));
	const char *ns = json_string_value(json_object_get(dag, "namespace"));
	if (api_ns_check(rq, rs, ns ? ns : "default", name) != 0)
		return -1;
	const char *p[1] = {name};
	PGresult *res =
	    store_exec(api_store(rq), "SELECT namespace FROM workflows WHERE name = $1", 1, p);
	if (!res) {
		api_error_db(rq, rs);
		return -1;
	}
	int rc = PQntuples(res) == 1 ? api_ns_check(rq, rs, PQgetvalue(res, 0, 0), name) : 0;
	PQclear(res);
	return rc;
}

static void submit(struct api_req *rq, struct api_resp *rs)
{
	static const char *const allowed[] = {"source", "filename", NULL};
	json_t *body = NULL;
	struct dsl_result r;
	struct wf_err e = {0};
	int version = 0, changed = 0, compiled = 0;

	memset(&r, 0, sizeof r);
	if (api_body_object(rq, rs, allowed, &body) != 0)
		goto out;
	json_t *src = json_object_get(body, "source");
	json_t *fn = json_object_get(body, "filename");
	if (!json_is_string(src)) {
		api_error(rs, 400, "invalid_field", "source",
		          "'source' is required: a string holding the workflow YAML");
		goto out;
	}
	if (fn && !json_is_null(fn) &&
	    (!json_is_string(fn) || !valid_filename(json_string_value(fn)))) {
		api_error(rs, 400, "invalid_field", "filename",
		          "'filename' must be a file name of 1 to %d printable characters",
		          MAX_FILENAME);
		goto out;
	}
	const char *filename = json_is_string(fn) ? json_string_value(fn) : "workflow.yaml";
	const char *source = json_string_value(src);
	compiled = 1;
	if (dsl_compile(source, json_string_length(src), filename, &r) != 0) {
		invalid_workflow(rs, &r, filename);
		goto out;
	}
	if (api_ns_scope(rq) && submit_scope(rq, rs, r.dag) != 0)
		goto out;
	if (runs_submit(api_store(rq), &r, source, filename, rq->actor, &version, &changed, &e) !=
	    0) {
		api_error_wf(rs, &e);
		goto out;
	}
	const char *name = json_string_value(json_object_get(r.dag, "name"));
	log_info("workflow submitted", "workflow=%s version=%d changed=%d actor=%s",
	         name ? name : "?", version, changed, rq->actor);
	api_json(rs, changed ? 201 : 200,
	         json_pack("{s:s,s:i,s:s,s:b}", "workflow", name ? name : "", "version", version,
	                   "hash", r.hash, "changed", changed));
out:
	if (compiled)
		dsl_result_release(&r);
	json_decref(body);
}

/* ------------------------------------------------------------ reads */

static void list_workflows(struct api_req *rq, struct api_resp *rs)
{
	int limit;
	char lim[16];
	if (api_arg_limit(rq, rs, &limit) != 0)
		return;
	snprintf(lim, sizeof lim, "%d", limit + 1);
	const char *p[4] = {api_arg(rq, "namespace"), api_arg(rq, "cursor"), lim, api_ns_scope(rq)};
	api_list(rq, rs,
	         "SELECT json_build_object(" WF_FIELDS ")::text, w.name" WF_FROM
	         " WHERE w.deleted_at IS NULL AND ($1::text IS NULL OR w.namespace = $1)"
	         "   AND ($2::text IS NULL OR w.name > $2)"
	         "   AND ($4::text IS NULL OR w.namespace = $4)"
	         " ORDER BY w.name LIMIT $3::int",
	         4, p, limit, 0);
}

static void get_workflow(struct api_req *rq, struct api_resp *rs)
{
	const char *p[1] = {rq->caps[0]};
	char *msg = xasprintf("no workflow named '%s'", rq->caps[0]);
	api_one(rq, rs,
	        "SELECT json_build_object(" WF_FIELDS ", 'dag', wv.dag)::text" WF_FROM
	        " WHERE w.name = $1 AND w.deleted_at IS NULL",
	        1, p, 200, msg);
	free(msg);
}

/* 1 when the workflow exists, 0 when not (404 set), -1 on a db error (set). */
static int workflow_exists(struct api_req *rq, struct api_resp *rs, const char *name)
{
	const char *p[1] = {name};
	PGresult *r =
	    store_execp(api_store(rq), "api_wf_exists",
	                "SELECT 1 FROM workflows WHERE name = $1 AND deleted_at IS NULL", 1, p);
	if (!r) {
		api_error_db(rq, rs);
		return -1;
	}
	int n = PQntuples(r);
	PQclear(r);
	if (n == 0)
		api_error(rs, 404, "not_found", NULL, "no workflow named '%s'", name);
	return n > 0;
}

/* clang-format off */
#define VERSION_FIELDS \
	"'workflow', w.name, 'version', v.version, 'hash', v.hash, 'filename', v.filename," \
	" 'current', v.version IS NOT DISTINCT FROM w.current_version," \
	" 'created_by', v.created_by, 'created_at', wf_ts(v.created_at)," \
	" 'source', v.source, 'dag', v.dag"
/* clang-format on */

static void list_versions(struct api_req *rq, struct api_resp *rs)
{
	int limit;
	char lim[16];
	int64_t cur;
	const char *cursor = api_arg(rq, "cursor");
	if (api_arg_limit(rq, rs, &limit) != 0)
		return;
	if (cursor && parse_int64(cursor, 1, INT32_MAX, &cur) != 0) {
		api_error(rs, 400, "invalid_param", "cursor", "cursor must be a version number");
		return;
	}
	if (workflow_exists(rq, rs, rq->caps[0]) != 1)
		return;
	snprintf(lim, sizeof lim, "%d", limit + 1);
	const char *p[3] = {rq->caps[0], cursor, lim};
	api_list(rq, rs,
	         "SELECT json_build_object(" VERSION_FIELDS ")::text, v.version"
	         " FROM workflows w JOIN workflow_versions v ON v.workflow_id = w.id"
	         " WHERE w.name = $1 AND w.deleted_at IS NULL"
	         "   AND ($2::int IS NULL OR v.version < $2::int)"
	         " ORDER BY v.version DESC LIMIT $3::int",
	         3, p, limit, 1);
}

static void get_version(struct api_req *rq, struct api_resp *rs)
{
	int64_t v;
	if (parse_int64(rq->caps[1], 1, INT32_MAX, &v) != 0) {
		api_error(rs, 404, "not_found", NULL, "no version '%s' of workflow '%s'",
		          rq->caps[1], rq->caps[0]);
		return;
	}
	const char *p[2] = {rq->caps[0], rq->caps[1]};
	char *msg = xasprintf("no version %s of workflow '%s'", rq->caps[1], rq->caps[0]);
	api_one(rq, rs,
	        "SELECT json_build_object(" VERSION_FIELDS ")::text"
	        " FROM workflows w JOIN workflow_versions v ON v.workflow_id = w.id"
	        " WHERE w.name = $1 AND w.deleted_at IS NULL AND v.version = $2::int",
	        2, p, 200, msg);
	free(msg);
}

/* ------------------------------------------------------------ actions */

static void trigger(struct api_req *rq, struct api_resp *rs)
{
	static const char *const allowed[] = {"params", NULL};
	json_t *body = NULL;
	struct wf_err e = {0};
	int existing = 0;
	char state[32];

	if (api_body_object(rq, rs, allowed, &body) != 0)
		goto out;
	json_t *params = json_object_get(body, "params");
	if (params && !json_is_object(params) && !json_is_null(params)) {
		api_error(rs, 400, "invalid_field", "params",
		          "'params' must be an object of parameter names to values");
		goto out;
	}
	if (json_is_null(params))
		params = NULL;
	const char *key = api_header(rq, "Idempotency-Key");
	if (key && (strlen(key) == 0 || strlen(key) > MAX_IDEM_KEY)) {
		api_error(rs, 400, "invalid_header", "Idempotency-Key",
		          "Idempotency-Key must be 1 to %d characters", MAX_IDEM_KEY);
		goto out;
	}
	long long id = runs_trigger(api_store(rq), rq->caps[0], params, key, "manual", 0, rq->actor,
	                            &existing, &e);
	if (id < 0) {
		api_error_wf(rs, &e);
		goto out;
	}
	if (api_run_state(rq, id, state, sizeof state) != 0) {
		api_error_db(rq, rs);
		goto out;
	}
	api_json(rs, existing ? 200 : 201,
	         json_pack("{s:I,s:s,s:b}", "run_id", (json_int_t)id, "state", state, "existing",
	                   existing));
out:
	json_decref(body);
}

static void set_paused(struct api_req *rq, struct api_resp *rs, int paused)
{
	json_t *body = NULL;
	struct wf_err e = {0};
	if (api_body_object(rq, rs, NULL, &body) != 0)
		return;
	json_decref(body);
	if (runs_set_paused(api_store(rq), rq->caps[0], paused, rq->actor, &e) != 0) {
		api_error_wf(rs, &e);
		return;
	}
	api_json(rs, 200, json_pack("{s:s,s:b}", "name", rq->caps[0], "paused", paused));
}

static void pause_workflow(struct api_req *rq, struct api_resp *rs)
{
	set_paused(rq, rs, 1);
}

static void unpause_workflow(struct api_req *rq, struct api_resp *rs)
{
	set_paused(rq, rs, 0);
}

/* ------------------------------------------------------------ delete */

int api_workflow_delete(struct api_req *rq, struct api_resp *rs, const char *name)
{
	const char *p[2] = {name, rq->actor};
	PGresult *r =
	    store_exec(api_store(rq),
	               "WITH w AS (UPDATE workflows SET deleted_at = now(), updated_at = now()"
	               "  WHERE name = $1 AND deleted_at IS NULL RETURNING id),"
	               " s AS (UPDATE schedules SET enabled = false, updated_at = now()"
	               "  WHERE workflow_id IN (SELECT id FROM w)),"
	               " ev AS (INSERT INTO events (kind, workflow_id, actor)"
	               "  SELECT 'workflow.deleted', id, $2 FROM w)"
	               " SELECT count(*), pg_notify('wf_events', '') FROM w",
	               2, p);
	if (!r) {
		api_error_db(rq, rs);
		return -1;
	}
	int n = strcmp(PQgetvalue(r, 0, 0), "0") != 0;
	PQclear(r);
	if (!n) {
		api_error(rs, 404, "not_found", NULL, "no workflow named '%s'", name);
		return 0;
	}
	log_info("workflow deleted", "workflow=%s actor=%s", name, rq->actor);
	return 1;
}

static void delete_workflow(struct api_req *rq, struct api_resp *rs)
{
	if (api_workflow_delete(rq, rs, rq->caps[0]) == 1)
		api_json(rs, 200, json_pack("{s:s,s:b}", "name", rq->caps[0], "deleted", 1));
}

const struct api_route api_workflow_routes[] = {
    {"POST", "/api/v1/workflows", AUTH_ADMIN, submit},
    {"GET", "/api/v1/workflows", AUTH_VIEWER, list_workflows},
    {"GET", "/api/v1/workflows/{}", AUTH_VIEWER, get_workflow},
    {"GET", "/api/v1/workflows/{}/versions", AUTH_VIEWER, list_versions},
    {"GET", "/api/v1/workflows/{}/versions/{}", AUTH_VIEWER, get_version},
    {"DELETE", "/api/v1/workflows/{}", AUTH_ADMIN, delete_workflow},
    {"POST", "/api/v1/workflows/{}/runs", AUTH_OPERATOR, trigger},
    {"POST", "/api/v1/workflows/{}/run-now", AUTH_OPERATOR, trigger},
    {"POST", "/api/v1/workflows/{}/pause", AUTH_OPERATOR, pause_workflow},
    {"POST", "/api/v1/workflows/{}/unpause", AUTH_OPERATOR, unpause_workflow},
    {NULL, NULL, AUTH_NONE, NULL},
};
