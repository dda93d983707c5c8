/* API tokens over the API (admin): list, create (the token is shown once;
 * only its SHA-256 is stored), revoke. Revoking clears this engine's auth
 * cache, so the token is refused at once here and within the cache's TTL
 * (5 s) on other engines. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

#define TOKEN_NAME_MAX 100

// clang-format off
#define TOKEN_JSON                                                                        \
	"json_build_object('name', name, 'role', role, 'namespace', namespace,"           \
	" 'created_at', " "wf_ts(created_at)" ", 'last_used_at', " "wf_ts(last_used_at)" \
	", 'revoked', revoked_at IS NOT NULL, 'revoked_at', " "wf_ts(revoked_at)" ")"
// clang-format on

static void list_tokens(struct api_req *rq, struct api_resp *rs)
{
	int limit;
	char lim[16];
	if (api_arg_limit(rq, rs, &limit) != 0)
		return;
	snprintf(lim, sizeof lim, "%d", limit + 1);
	const char *p[2] = {api_arg(rq, "cursor"), lim};
	api_list(rq, rs,
	         "SELECT " TOKEN_JSON "::text, name FROM api_tokens"
	         " WHERE ($1::text IS NULL OR name > $1) ORDER BY name LIMIT $2::int",
	         2, p, limit, 0);
}

static int valid_token_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > TOKEN_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.' || *s == '@'))
			return 0;
	return 1;
}

static void create_token(struct api_req *rq, struct api_resp *rs)
{
	static const char *const allowed[] = {"name", "role", "namespace", NULL};
	json_t *body = NULL;
	unsigned char raw[32];
	char token[3 + 64 + 1], hash[65];
	PGresult *r = NULL;

	if (api_body_object(rq, rs, allowed, &body) != 0)
		goto out;
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *role = json_string_value(json_object_get(body, "role"));
	if (!name || !valid_token_name(name)) {
		api_error(rs, 400, "invalid_field", "name",
		          "'name' is required: 1 to %d letters, digits, '-', '_', '.' or '@'",
		          TOKEN_NAME_MAX);
		goto out;
	}
	if (auth_role_parse(role) == AUTH_NONE) {
		api_error(rs, 400, "invalid_field", "role",
		          "'role' is required: viewer, operator or admin");
		goto out;
	}
	const json_t *nsv = json_object_get(body, "namespace");
	const char *ns = json_string_value(nsv);
	if (nsv && !json_is_null(nsv) && (!ns || !api_ns_valid(ns))) {
		api_error(rs, 400, "invalid_field", "namespace",
		          "'namespace' must be null (every namespace) or 1 to 64 characters from "
		          "a-z, 0-9, '_' and '-'");
		goto out;
	}
	randombytes_buf(raw, sizeof raw);
	memcpy(token, "wf_", 3);
	hex_encode(raw, sizeof raw, token + 3);
	auth_hash_token(token, hash);
	const char *p[5] = {name, role, hash, rq->actor, ns};
	r = store_exec(api_store(rq),
	               "WITH t AS (INSERT INTO api_tokens (name, role, hash, namespace)"
	               "  VALUES ($1, $2, $3, $5) ON CONFLICT (name) DO NOTHING RETURNING id),"
	               " ev AS (INSERT INTO events (kind, actor, data)"
	               "  SELECT 'token.created', $4, jsonb_build_object('name', $1::text,"
	               "   'role', $2::text, 'namespace', $5::text) FROM t)"
	               " SELECT count(*) FROM t",
	               5, p);
	if (!r) {
		api_error_db(rq, rs);
		goto out;
	}
	if (strcmp(PQgetvalue(r, 0, 0), "1") != 0) {
		api_error(rs, 409, "conflict", "name",
		          "a token named '%s' exists already (revoked tokens keep their name)",
		          name);
		goto out;
	}
	auth_invalidate(rq->api->auth); /* a cached "unknown" for this hash */
	log_info("API token created", "name=%s role=%s namespace=%s actor=%s", name, role,
	         ns ? ns : "*", rq->actor);
	api_json(rs, 201,
	         json_pack("{s:s,s:s,s:o,s:s}", "name", name, "role", role, "namespace",
	                   ns ? json_string(ns) : json_null(), "token", token));
out:
	sodium_memzero(token, sizeof token);
	sodium_memzero(raw, sizeof raw);
	PQclear(r);
	json_decref(body);
}

static void revoke_token(struct api_req *rq, struct api_resp *rs)
{
	const char *p[2] = {rq->caps[0], rq->actor};
	PGresult *r = store_exec(
	    api_store(rq),
	    "WITH o AS (SELECT id, revoked_at FROM api_tokens WHERE name = $1 FOR UPDATE),"
	    " u AS (UPDATE api_tokens t SET revoked_at = now() FROM o"
	    "  WHERE t.id = o.id AND o.revoked_at IS NULL RETURNING t.id),"
	    " ev AS (INSERT INTO events (kind, actor, data)"
	    "  SELECT 'token.revoked', $2, jsonb_build_object('name', $1::text) FROM u)"
	    " SELECT (SELECT count(*) FROM o), (SELECT count(*) FROM u)",
	    2, p);
	if (!r) {
		api_error_db(rq, rs);
		return;
	}
	int found = strcmp(PQgetvalue(r, 0, 0), "0") != 0;
	int changed = strcmp(PQgetvalue(r, 0, 1), "0") != 0;
	PQclear(r);
	if (!found) {
		api_error(rs, 404, "not_found", NULL, "no token named '%s'", rq->caps[0]);
		return;
	}
	auth_invalidate(rq->api->auth);
	if (changed)
		log_info("API token revoked", "name=%s actor=%s", rq->caps[0], rq->actor);
	api_json(rs, 200,
	         json_pack("{s:s,s:b,s:b}", "name", rq->caps[0], "revoked", 1, "changed", changed));
}

const struct api_route api_token_routes[] = {
    {"GET", "/api/v1/tokens", AUTH_ADMIN, list_tokens},
    {"POST", "/api/v1/tokens", AUTH_ADMIN, create_token},
    {"DELETE", "/api/v1/tokens/{}", AUTH_ADMIN, revoke_token},
    {NULL, NULL, AUTH_NONE, NULL},
};
