/* Namespace scopes of API tokens. A token with a namespace may only see
 * and act on the workflows of that namespace and on what hangs off them:
 * runs, task runs, attempts, dead letters, backfills and jobs. The check
 * is central: http.c calls api_ns_guard for every authorised request, and
 * it resolves the namespace of the object a route names from its path.
 * Lists filter with api_ns_scope; a submitted workflow is checked by its
 * handler once compiled (api_ns_check). */
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "util.h"
#include "xalloc.h"

int api_ns_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n > 0 && n <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

const char *api_ns_scope(const struct api_req *rq)
{
	return rq->who.ns[0] ? rq->who.ns : NULL;
}

int api_ns_check(struct api_req *rq, struct api_resp *rs, const char *ns, const char *workflow)
{
	const char *scope = api_ns_scope(rq);
	if (!scope || !ns || strcmp(scope, ns) == 0)
		return 0;
	api_error(rs, 403, "forbidden", NULL,
	          "token '%s' may only act on namespace '%s'; workflow '%s' is in '%s'",
	          rq->who.name, scope, workflow ? workflow : "?", ns);
	return -1;
}

/* Runs sql ($1 = key) returning (namespace, workflow name) and checks it.
 * No row: 0 (the handler answers 404). */
static int check_sql(struct api_req *rq, struct api_resp *rs, const char *sql, const char *key)
{
	const char *p[1] = {key};
	PGresult *r = store_exec(api_store(rq), sql, 1, p);
	int rc = 0;
	if (!r) {
		api_error_db(rq, rs);
		return -1;
	}
	if (PQntuples(r) == 1)
		rc = api_ns_check(rq, rs, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
	PQclear(r);
	return rc;
}

static int is_id(const char *s)
{
	int64_t v;
	return s && parse_int64(s, 1, INT64_MAX, &v) == 0;
}

static int starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* POST /api/v1/jobs: the job's workflow "job-<name>", or a new one in
 * the default namespace. */
static int check_new_job(struct api_req *rq, struct api_resp *rs)
{
	json_t *body = json_loadb(rq->body, rq->body_len, 0, NULL);
	const char *name = json_string_value(json_object_get(body, "name"));
	int rc = 0;
	if (name) {
		char *wf = xasprintf("job-%s", name);
		const char *p[1] = {wf};
		PGresult *r = store_exec(api_store(rq),
		                         "SELECT namespace FROM workflows WHERE name = $1", 1, p);
		if (!r) {
			api_error_db(rq, rs);
			rc = -1;
		} else {
			rc = api_ns_check(rq, rs,
			                  PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "default", wf);
			PQclear(r);
		}
		free(wf);
	}
	json_decref(body);
	return rc;
}

int api_ns_guard(struct api_req *rq, struct api_resp *rs, const struct api_route *route)
{
	const char *pat = route->pattern, *scope = api_ns_scope(rq);
	if (!scope)
		return 0;
	if (starts(pat, "/api/v1/tokens")) {
		api_error(rs, 403, "forbidden", NULL,
		          "token '%s' is limited to namespace '%s' and cannot manage tokens",
		          rq->who.name, scope);
		return -1;
	}
	if (strcmp(pat, "/api/v1/events/stream") == 0) {
		api_error(
		    rs, 403, "forbidden", NULL,
		    "token '%s' is limited to namespace '%s'; the live event stream spans every "
		    "namespace: poll GET /api/v1/events instead",
		    rq->who.name, scope);
		return -1;
	}
	if (rq->ncaps < 1) {
		if (strcmp(pat, "/api/v1/jobs") == 0 && strcmp(route->method, "POST") == 0)
			return check_new_job(rq, rs);
		return 0; /* lists filter themselves; submit checks once compiled */
	}
	const char *key = rq->caps[0];
	if (starts(pat, "/api/v1/workflows/{}"))
		return check_sql(rq, rs, "SELECT namespace, name FROM workflows WHERE name = $1",
		                 key);
	if (starts(pat, "/api/v1/jobs/{}")) {
		char *wf = xasprintf("job-%s", key);
		int rc =
		    check_sql(rq, rs, "SELECT namespace, name FROM workflows WHERE name = $1", wf);
		free(wf);
		return rc;
	}
	if (!is_id(key))
		return 0; /* the handler refuses it */
	if (starts(pat, "/api/v1/runs/{}"))
		return check_sql(rq, rs,
		                 "SELECT w.namespace, w.name FROM runs r JOIN workflows w"
		                 " ON w.id = r.workflow_id WHERE r.id = $1::bigint",
		                 key);
	if (starts(pat, "/api/v1/backfills/{}"))
		return check_sql(rq, rs,
		                 "SELECT w.namespace, w.name FROM backfills b JOIN workflows w"
		                 " ON w.id = b.workflow_id WHERE b.id = $1::bigint",
		                 key);
	if (starts(pat, "/api/v1/dead-letters/{}"))
		return check_sql(rq, rs,
		                 "SELECT w.namespace, w.name FROM dead_letters d JOIN workflows w"
		                 " ON w.id = d.workflow_id WHERE d.id = $1::bigint",
		                 key);
	return 0;
}
