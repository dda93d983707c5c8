/* Backfill endpoints: create a group of runs for a past range, list the
 * groups with their progress, cancel a group. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "backfill.h"

/* Epoch milliseconds of an RFC 3339 time, parsed by PostgreSQL. */
static int to_ms(struct api_req *rq, struct api_resp *rs, json_t *body, const char *field,
                 int64_t *out)
{
	const char *text = json_string_value(json_object_get(body, field));
	if (!text || !api_valid_time(text)) {
		api_error(rs, 400, "invalid_field", field,
		          "'%s' must be an RFC 3339 time such as 2026-01-01T00:00:00Z", field);
		return -1;
	}
	const char *p[1] = {text};
	PGresult *r = store_exec(
	    api_store(rq), "SELECT (extract(epoch FROM $1::timestamptz) * 1000)::bigint", 1, p);
	if (!r) {
		api_error(rs, 400, "invalid_field", field, "'%s' is not a valid time: %s", field,
		          text);
		return -1;
	}
	*out = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

static void create(struct api_req *rq, struct api_resp *rs)
{
	static const char *const allowed[] = {"from", "to", "max_runs", NULL};
	json_t *body = NULL;
	if (api_body_object(rq, rs, allowed, &body) != 0)
		return;
	int64_t from, to;
	json_t *max = json_object_get(body, "max_runs");
	if (max && (!json_is_integer(max) || json_integer_value(max) < 1 ||
	            json_integer_value(max) > BACKFILL_MAX_RUNS)) {
		api_error(rs, 400, "invalid_field", "max_runs", "'max_runs' must be 1 to %d",
		          BACKFILL_MAX_RUNS);
		goto out;
	}
	if (to_ms(rq, rs, body, "from", &from) != 0 || to_ms(rq, rs, body, "to", &to) != 0)
		goto out;
	struct wf_err e;
	int created = 0, skipped = 0;
	long long id = backfill_create(api_store(rq), rq->caps[0], from, to,
	                               max ? (int)json_integer_value(max) : 0, rq->actor, &created,
	                               &skipped, &e);
	if (id < 0) {
		api_error_wf(rs, &e);
		goto out;
	}
	api_json(rs, 201,
	         json_pack("{s:I,s:s,s:i,s:i}", "backfill_id", (json_int_t)id, "workflow",
	                   rq->caps[0], "runs", created, "skipped", skipped));
out:
	json_decref(body);
}

/* clang-format off */
#define BACKFILL_JSON \
	"json_build_object('id', b.id, 'workflow', w.name," \
	" 'from', wf_ts(b.from_at), 'to', wf_ts(b.to_at), 'state', b.state," \
	" 'runs', b.runs, 'skipped', b.skipped, 'created_by', b.created_by," \
	" 'created_at', wf_ts(b.created_at)," \
	" 'run_states', (SELECT coalesce(json_object_agg(state, n), '{}') FROM (" \
	"   SELECT r.state, count(*) AS n FROM runs r WHERE r.backfill_id = b.id" \
	"   GROUP BY r.state) c))"
/* clang-format on */

static void list(struct api_req *rq, struct api_resp *rs)
{
	int limit;
	if (api_arg_limit(rq, rs, &limit) != 0)
		return;
	const char *workflow = api_arg(rq, "workflow");
	const char *cursor = api_arg(rq, "cursor");
	if (cursor && strspn(cursor, "0123456789") != strlen(cursor)) {
		api_error(rs, 400, "invalid_param", "cursor", "cursor must be a backfill id");
		return;
	}
	char lim[16];
	snprintf(lim, sizeof lim, "%d", limit + 1);
	const char *p[4] = {workflow, cursor, lim, api_ns_scope(rq)};
	api_list(rq, rs,
	         "SELECT " BACKFILL_JSON ", b.id FROM backfills b JOIN workflows w ON "
	         "w.id = b.workflow_id WHERE ($1::text IS NULL OR w.name = $1) AND ($2::bigint IS "
	         "NULL OR b.id < $2::bigint) AND ($4::text IS NULL OR w.namespace = $4) "
	         "ORDER BY b.id DESC LIMIT $3::int",
	         4, p, limit, 1);
}

static long long id_arg(struct api_resp *rs, const char *text)
{
	if (!*text || strspn(text, "0123456789") != strlen(text) || strlen(text) > 18) {
		api_error(rs, 404, "not_found", NULL, "no backfill '%s' (ids are numbers)", text);
		return -1;
	}
	return atoll(text);
}

static void show(struct api_req *rq, struct api_resp *rs)
{
	if (id_arg(rs, rq->caps[0]) < 0)
		return;
	const char *p[1] = {rq->caps[0]};
	api_one(rq, rs,
	        "SELECT " BACKFILL_JSON
	        " FROM backfills b JOIN workflows w ON w.id = b.workflow_id "
	        "WHERE b.id = $1::bigint",
	        1, p, 200, "no such backfill");
}

static void cancel(struct api_req *rq, struct api_resp *rs)
{
	long long id = id_arg(rs, rq->caps[0]);
	if (id < 0)
		return;
	struct wf_err e;
	int n = backfill_cancel(api_store(rq), id, rq->actor, &e);
	if (n < 0) {
		api_error_wf(rs, &e);
		return;
	}
	api_json(rs, 200,
	         json_pack("{s:I,s:s,s:i}", "backfill_id", (json_int_t)id, "state", "cancelled",
	                   "cancelled_runs", n));
}

const struct api_route api_backfill_routes[] = {
    {"POST", "/api/v1/workflows/{}/backfill", AUTH_OPERATOR, create},
    {"GET", "/api/v1/backfills", AUTH_VIEWER, list},
    {"GET", "/api/v1/backfills/{}", AUTH_VIEWER, show},
    {"POST", "/api/v1/backfills/{}/cancel", AUTH_OPERATOR, cancel},
    {NULL, NULL, 0, NULL},
};
