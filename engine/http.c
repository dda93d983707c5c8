/* The HTTP server (libmicrohttpd): listening, request bodies with limits,
 * authentication, routing to the handlers of api_*.c, JSON and error
 * responses, security headers and the static dashboard. */
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "api_int.h"
#include "buf.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

#define AUTH_CACHE_MS     5000
#define CONN_MEMORY_LIMIT (64 * 1024)
#define CONN_TIMEOUT_S    60
#define CONN_LIMIT        1000
/* A chunked body over the limit is drained up to this much to answer 413. */
#define DRAIN_MAX (4 * API_MAX_BODY)

/* Per-connection request state, kept in MHD's con_cls. */
struct reqctx {
	struct buf body;
	int too_big;
	size_t discarded; /* bytes dropped after too_big */
};

/* ------------------------------------------------------------ helpers */

const char *http_content_type(const char *path)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	    {".html", "text/html; charset=utf-8"},
	    {".htm", "text/html; charset=utf-8"},
	    {".js", "text/javascript; charset=utf-8"},
	    {".mjs", "text/javascript; charset=utf-8"},
	    {".css", "text/css; charset=utf-8"},
	    {".svg", "image/svg+xml"},
	    {".png", "image/png"},
	    {".ico", "image/x-icon"},
	    {".json", "application/json"},
	    {".map", "application/json"},
	    {".txt", "text/plain; charset=utf-8"},
	    {".woff2", "font/woff2"},
	};
	const char *dot = strrchr(path, '.');
	const char *slash = strrchr(path, '/');
	if (dot && (!slash || dot > slash))
		for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
			if (strcasecmp(dot, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

int http_safe_path(const char *path)
{
	if (path[0] != '/' || strstr(path, "..") || strstr(path, "%00") || strstr(path, "//"))
		return 0;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '\\')
			return 0;
	return 1;
}

static void put(struct buf *b, const char *s, size_t n)
{
	/* Unbounded buffers: only allocation can fail, and xrealloc aborts. */
	if (buf_append(b, s, n) != 0)
		log_error("buffer append failed", "n=%zu", n);
}

int api_valid_time(const char *s)
{
	/* YYYY-MM-DD[(T| )HH:MM[:SS[.frac]]][Z|±HH[:]MM] */
	const char *pat = "dddd-dd-dd";
	size_t i;
	for (i = 0; pat[i]; i++)
		if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
			return 0;
	s += i;
	if (!*s)
		return 1;
	if (*s != 'T' && *s != ' ')
		return 0;
	s++;
	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2] != ':' ||
	    !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
		return 0;
	s += 5;
	if (s[0] == ':') {
		if (!isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2]))
			return 0;
		s += 3;
		if (*s == '.') {
			s++;
			if (!isdigit((unsigned char)*s))
				return 0;
			while (isdigit((unsigned char)*s))
				s++;
		}
	}
	if (*s == 'Z' || *s == 'z')
		return s[1] == '\0';
	if (*s == '+' || *s == '-') {
		s++;
		int digits = 0;
		for (; *s; s++) {
			if (isdigit((unsigned char)*s))
				digits++;
			else if (*s != ':')
				return 0;
		}
		return digits == 4 || digits == 2;
	}
	return *s == '\0';
}

/* ------------------------------------------------------------ responses */

static void resp_set(struct api_resp *rs, int status, char *body, size_t len, const char *type)
{
	free(rs->body);
	rs->status = status;
	rs->body = body;
	rs->len = len;
	rs->content_type = type;
}

void api_json(struct api_resp *rs, int status, json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(v);
	if (!text) {
		resp_set(rs, 500,
		         xstrdup("{\"error\":{\"code\":\"internal\",\"message\":\"cannot "
		                 "encode the response\",\"field\":null}}\n"),
		         0, "application/json");
		rs->len = strlen(rs->body);
		return;
	}
	size_t n = strlen(text);
	char *body = xmalloc(n + 2);
	memcpy(body, text, n);
	body[n] = '\n';
	body[n + 1] = '\0';
	free(text);
	resp_set(rs, status, body, n + 1, "application/json");
}

void api_json_text(struct api_resp *rs, int status, const char *text, size_t len)
{
	char *body = xmalloc(len + 2);
	memcpy(body, text, len);
	body[len] = '\n';
	body[len + 1] = '\0';
	resp_set(rs, status, body, len + 1, "application/json");
}

void api_error(struct api_resp *rs, int status, const char *code, const char *field,
               const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	api_json(rs, status,
	         json_pack("{s:{s:s,s:s,s:s?}}", "error", "code", code, "message", msg, "field",
	                   field && *field ? field : NULL));
	free(msg);
}

void api_error_wf(struct api_resp *rs, const struct wf_err *e)
{
	int status = e->status >= 400 && e->status <= 599 ? e->status : 500;
	api_error(rs, status, e->code[0] ? e->code : "internal", e->field, "%s",
	          e->message[0] ? e->message : "the request failed");
}

void api_error_db(struct api_req *rq, struct api_resp *rs)
{
	struct store *s = api_store(rq);
	const char *state = store_sqlstate(s);
	if (store_down(s) || strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
	    strcmp(state, "53300") == 0) {
		api_error(rs, 503, "unavailable", NULL, "database unavailable, retry later");
		return;
	}
	log_error("API query failed", "method=%s path=%s sqlstate=%s error=%s", rq->method,
	          rq->path, state, store_error(s));
	api_error(rs, 500, "internal", NULL, "internal error (sqlstate %s); see the engine log",
	          state[0] ? state : "none");
}

/* ------------------------------------------------------------ requests */

struct store *api_store(struct api_req *rq)
{
	if (!rq->store)
		rq->store = store_pool_get(rq->api->pool);
	return rq->store;
}

const char *api_arg(struct api_req *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *api_header(struct api_req *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

static int json_depth_ok(json_t *v, int depth)
{
	if (!json_is_object(v) && !json_is_array(v))
		return 1;
	if (depth > API_MAX_DEPTH)
		return 0;
	if (json_is_object(v)) {
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x)
		{
			if (!json_depth_ok(x, depth + 1))
				return 0;
		}
	} else {
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
		{
			if (!json_depth_ok(x, depth + 1))
				return 0;
		}
	}
	return 1;
}

int api_body_object(struct api_req *rq, struct api_resp *rs, const char *const *allowed,
                    json_t **out)
{
	int rc = -1;
	json_t *v = NULL;
	json_error_t err;

	*out = NULL;
	size_t n = rq->body_len;
	while (n && isspace((unsigned char)rq->body[n - 1]))
		n--;
	if (n == 0) {
		*out = json_object();
		return 0;
	}
	v = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &err);
	if (!v) {
		api_error(rs, 400, "invalid_json", NULL, "invalid JSON at line %d, column %d: %s",
		          err.line, err.column, err.text);
		goto out;
	}
	if (!json_is_object(v)) {
		api_error(rs, 400, "invalid_json", NULL, "the body must be a JSON object");
		goto out;
	}
	if (!json_depth_ok(v, 1)) {
		api_error(rs, 400, "invalid_json", NULL, "JSON nested deeper than %d levels",
		          API_MAX_DEPTH);
		goto out;
	}
	const char *k;
	json_t *x;
	json_object_foreach(v, k, x)
	{
		int known = 0;
		for (int i = 0; allowed && allowed[i]; i++)
			if (strcmp(allowed[i], k) == 0)
				known = 1;
		if (!known) {
			api_error(rs, 400, "unknown_field", k, "unknown field '%s' in the body", k);
			goto out;
		}
	}
	*out = v;
	v = NULL;
	rc = 0;
out:
	json_decref(v);
	return rc;
}

int api_arg_limit(struct api_req *rq, struct api_resp *rs, int *limit)
{
	const char *s = api_arg(rq, "limit");
	int64_t v = API_LIMIT_DEFAULT;
	if (s && parse_int64(s, 1, API_LIMIT_MAX, &v) != 0) {
		api_error(rs, 400, "invalid_param", "limit",
		          "limit must be an integer from 1 to %d", API_LIMIT_MAX);
		return -1;
	}
	*limit = (int)v;
	return 0;
}

void api_list(struct api_req *rq, struct api_resp *rs, const char *sql, int nparams,
              const char *const *params, int limit, int cursor_is_number)
{
	struct buf b;
	PGresult *r = store_exec(api_store(rq), sql, nparams, params);
	if (!r) {
		api_error_db(rq, rs);
		return;
	}
	buf_init(&b, 0);
	int n = PQntuples(r);
	int keep = n > limit ? limit : n;
	put(&b, "{\"items\":[", 10);
	for (int i = 0; i < keep; i++) {
		if (i)
			put(&b, ",", 1);
		put(&b, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
	}
	put(&b, "],\"next_cursor\":", 16);
	if (n > limit && PQnfields(r) > 1) {
		const char *c = PQgetvalue(r, keep - 1, 1);
		if (cursor_is_number) {
			put(&b, c, strlen(c));
		} else {
			json_t *js = json_string(c);
			char *t = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
			put(&b, t ? t : "null", strlen(t ? t : "null"));
			free(t);
			json_decref(js);
		}
	} else {
		put(&b, "null", 4);
	}
	put(&b, "}", 1);
	api_json_text(rs, 200, b.data, b.len);
	buf_release(&b);
	PQclear(r);
}

void api_one(struct api_req *rq, struct api_resp *rs, const char *sql, int nparams,
             const char *const *params, int status, const char *notfound_msg)
{
	PGresult *r = store_exec(api_store(rq), sql, nparams, params);
	if (!r) {
		api_error_db(rq, rs);
		return;
	}
	if (PQntuples(r) == 0 || PQgetisnull(r, 0, 0))
		api_error(rs, 404, "not_found", NULL, "%s", notfound_msg);
	else
		api_json_text(rs, status, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
	PQclear(r);
}

/* ------------------------------------------------------------ routing */

int api_route_match(const char *pattern, const char *path, struct api_req *rq)
{
	const char *p = pattern, *s = path;
	int ncaps = 0;
	const char *caps[API_MAX_CAPS];
	size_t caplen[API_MAX_CAPS];

	while (*p && *s) {
		if (p[0] == '{' && p[1] == '}') {
			size_t n = strcspn(s, "/");
			if (n == 0 || ncaps == API_MAX_CAPS)
				return 0;
			caps[ncaps] = s;
			caplen[ncaps++] = n;
			s += n;
			p += 2;
		} else if (*p == *s) {
			p++;
			s++;
		} else {
			return 0;
		}
	}
	if (*p || *s)
		return 0;
	if (rq) {
		for (int i = 0; i < ncaps; i++)
			rq->caps[i] = xstrndup(caps[i], caplen[i]);
		rq->ncaps = ncaps;
	}
	return 1;
}

static const struct api_route *const route_tables[] = {
    api_misc_routes,
    api_workflow_routes,
    api_run_routes,
};

static int same_method(const char *route, const char *method)
{
	if (strcmp(route, method) == 0)
		return 1;
	return strcmp(route, "GET") == 0 && strcmp(method, "HEAD") == 0;
}

/* Finds the route; sets *path_known when the path matched some method. */
static const struct api_route *find_route(struct api_req *rq, char *allow, size_t allowlen,
                                          int *path_known)
{
	*path_known = 0;
	allow[0] = '\0';
	for (size_t t = 0; t < sizeof route_tables / sizeof route_tables[0]; t++) {
		for (const struct api_route *r = route_tables[t]; r->method; r++) {
			if (!api_route_match(r->pattern, rq->path, NULL))
				continue;
			*path_known = 1;
			if (same_method(r->method, rq->method)) {
				allow[0] = '\0';
				if (!api_route_match(r->pattern, rq->path, rq))
					return NULL;
				return r;
			}
			size_t n = strlen(allow);
			snprintf(allow + n, allowlen - n, "%s%s%s", n ? ", " : "", r->method,
			         strcmp(r->method, "GET") == 0 ? ", HEAD" : "");
		}
	}
	return NULL;
}

/* Authenticates and checks the role. Returns 0, or -1 with the response. */
static int authorize(struct api_req *rq, struct api_resp *rs, enum auth_role need)
{
	const char *h = api_header(rq, MHD_HTTP_HEADER_AUTHORIZATION);
	if ((!h || !*h) && rq->api->insecure_local) {
		snprintf(rq->who.name, sizeof rq->who.name, "local");
		rq->who.role = AUTH_ADMIN;
		snprintf(rq->actor, sizeof rq->actor, "local");
		return 0;
	}
	switch (auth_check(rq->api->auth, api_store(rq), h, &rq->who)) {
	case AUTH_OK:
		break;
	case AUTH_MISSING:
		api_error(rs, 401, "unauthorized", NULL,
		          "missing bearer token: send 'Authorization: Bearer <token>' "
		          "(create one with 'wfctl token create')");
		rs->www_authenticate = 1;
		return -1;
	case AUTH_BAD:
		api_error(rs, 401, "unauthorized", NULL, "invalid or revoked token");
		rs->www_authenticate = 1;
		return -1;
	case AUTH_UNAVAILABLE:
		api_error(rs, 503, "unavailable", NULL, "database unavailable, retry later");
		return -1;
	}
	snprintf(rq->actor, sizeof rq->actor, "token:%s", rq->who.name);
	if (rq->who.role < need) {
		api_error(rs, 403, "forbidden", NULL,
		          "this needs the %s role; your token '%s' is %s", auth_role_name(need),
		          rq->who.name, auth_role_name(rq->who.role));
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ sending */

static void add_common_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Content-Security-Policy", HTTP_CSP);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
}

static enum MHD_Result send_resp(struct MHD_Connection *c, struct api_resp *rs)
{
	struct MHD_Response *resp;
	if (rs->body) {
		resp = MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_MUST_FREE);
		if (resp)
			rs->body = NULL;
	} else {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	}
	if (!resp)
		return MHD_NO;
	add_common_headers(resp);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        rs->content_type ? rs->content_type : "application/json");
	if (rs->allow[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rs->allow);
	if (rs->www_authenticate)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		                        "Bearer realm=\"wf\"");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)rs->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Serves a file of web_dir, or sets an error response and returns 0. */
static int serve_static(struct api_req *rq, struct api_resp *rs, enum MHD_Result *ret)
{
	int fd = -1;
	char *file = NULL;
	struct stat st;

	if (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "HEAD") != 0) {
		api_error(rs, 405, "method_not_allowed", NULL, "%s is not allowed on %s",
		          rq->method, rq->path);
		snprintf(rs->allow, sizeof rs->allow, "GET, HEAD");
		return 0;
	}
	if (!http_safe_path(rq->path)) {
		api_error(rs, 400, "invalid_path", NULL, "invalid path");
		return 0;
	}
	if (!rq->api->web_dir) {
		api_error(rs, 404, "not_found", NULL, "no such page: %s", rq->path);
		return 0;
	}
	size_t n = strlen(rq->path);
	file = xasprintf("%s%s%s", rq->api->web_dir, rq->path,
	                 rq->path[n - 1] == '/' ? "index.html" : "");
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		api_error(rs, 404, "not_found", NULL, "no such page: %s", rq->path);
		goto fail;
	}
	struct MHD_Response *resp = MHD_create_response_from_fd64((uint64_t)st.st_size, fd);
	if (!resp) {
		api_error(rs, 500, "internal", NULL, "cannot send the file");
		goto fail;
	}
	fd = -1; /* MHD closes it */
	add_common_headers(resp);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, http_content_type(file));
	*ret = MHD_queue_response(rq->conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	free(file);
	return 1;
fail:
	if (fd >= 0)
		close(fd);
	free(file);
	return 0;
}

static int is_api_path(const char *path)
{
	return strncmp(path, "/api/", 5) == 0 || strcmp(path, "/api") == 0 ||
	       strcmp(path, "/metrics") == 0 || strcmp(path, "/healthz") == 0 ||
	       strcmp(path, "/readyz") == 0;
}

static enum MHD_Result dispatch(struct api *a, struct MHD_Connection *c, const char *url,
                                const char *method, struct reqctx *ctx)
{
	struct api_req rq = {.api = a, .conn = c, .method = method, .path = url};
	struct api_resp rs = {.status = 500};
	enum MHD_Result ret = MHD_YES;
	int64_t t0 = mono_ms();
	int path_known = 0;

	rq.body = ctx->body.data ? ctx->body.data : "";
	rq.body_len = ctx->body.len;
	if (ctx->too_big) {
		api_error(&rs, 413, "payload_too_large", NULL,
		          "the request body is larger than %d bytes", API_MAX_BODY);
		goto send;
	}
	const struct api_route *r = find_route(&rq, rs.allow, sizeof rs.allow, &path_known);
	if (!r && path_known) {
		api_error(&rs, 405, "method_not_allowed", NULL, "%s is not allowed on %s; use %s",
		          method, url, rs.allow);
		goto send;
	}
	if (!r && is_api_path(url)) {
		api_error(&rs, 404, "not_found", NULL, "no such endpoint: %s %s", method, url);
		goto send;
	}
	if (!r) {
		if (serve_static(&rq, &rs, &ret))
			goto done;
		goto send;
	}
	if (r->role != AUTH_NONE && authorize(&rq, &rs, r->role) != 0)
		goto send;
	if (r->role == AUTH_NONE)
		snprintf(rq.actor, sizeof rq.actor, "anonymous");
	r->handler(&rq, &rs);
send:
	ret = send_resp(c, &rs);
done:
	log_debug("http request", "method=%s path=%s status=%d ms=%lld actor=%s", method, url,
	          rs.status, (long long)(mono_ms() - t0), rq.actor[0] ? rq.actor : "-");
	if (rq.store)
		store_pool_put(a->pool, rq.store);
	for (int i = 0; i < rq.ncaps; i++)
		free(rq.caps[i]);
	free(rs.body);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	struct api *a = cls;
	struct reqctx *ctx = *con_cls;

	if (!ctx) {
		ctx = xcalloc(1, sizeof *ctx);
		buf_init(&ctx->body, API_MAX_BODY);
		*con_cls = ctx;
		const char *cl =
		    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		int64_t len;
		if (cl && parse_int64(cl, 0, INT64_MAX, &len) == 0 && len > API_MAX_BODY) {
			/* Answer before reading: MHD then skips the body and
			 * closes the connection. */
			struct api_resp rs = {0};
			api_error(&rs, 413, "payload_too_large", NULL,
			          "the request body is larger than %d bytes", API_MAX_BODY);
			log_debug("http request", "method=%s path=%s status=413", method, url);
			return send_resp(c, &rs);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (ctx->too_big) {
			/* A chunked body over the limit: we cannot answer in the
			 * middle of an upload, so drain a bounded amount to send a
			 * 413 at the end; past that, stop reading and close. */
			ctx->discarded += *upload_data_size;
			*upload_data_size = 0;
			if (ctx->discarded > DRAIN_MAX) {
				log_warn("request body far too large; closing the connection",
				         "method=%s path=%s", method, url);
				return MHD_NO;
			}
			return MHD_YES;
		}
		if (buf_append(&ctx->body, upload_data, *upload_data_size) != 0) {
			ctx->too_big = 1;
			ctx->discarded = *upload_data_size;
			buf_release(&ctx->body);
			buf_init(&ctx->body, API_MAX_BODY);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	return dispatch(a, c, url, method, ctx);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct reqctx *ctx = *con_cls;
	if (!ctx)
		return;
	buf_release(&ctx->body);
	free(ctx);
	*con_cls = NULL;
}

/* Decodes %HH, but keeps "%00" as it is so paths never hold a NUL byte. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	char *w = s;
	for (const char *r = s; *r;) {
		if (r[0] == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2])) {
			char hex[3] = {r[1], r[2], '\0'};
			unsigned long v = strtoul(hex, NULL, 16);
			if (v != 0) {
				*w++ = (char)v;
				r += 3;
				continue;
			}
		}
		*w++ = *r++;
	}
	*w = '\0';
	return (size_t)(w - s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	log_warn("libmicrohttpd", "msg=\"%s\"", msg);
}

/* ------------------------------------------------------------ start/stop */

int api_parse_listen(const char *listen, void *addr, int *loopback, int *port, char *err,
                     size_t errlen)
{
	struct sockaddr_storage *ss = addr;
	char host[128];
	const char *ps;
	int64_t p;

	memset(ss, 0, sizeof *ss);
	if (!listen || !*listen) {
		snprintf(err, errlen, "empty listen address (expected host:port)");
		return -1;
	}
	if (listen[0] == '[') {
		const char *end = strchr(listen, ']');
		if (!end || end[1] != ':' || (size_t)(end - listen - 1) >= sizeof host)
			goto bad;
		memcpy(host, listen + 1, (size_t)(end - listen - 1));
		host[end - listen - 1] = '\0';
		ps = end + 2;
	} else {
		const char *colon = strrchr(listen, ':');
		if (!colon || (size_t)(colon - listen) >= sizeof host)
			goto bad;
		memcpy(host, listen, (size_t)(colon - listen));
		host[colon - listen] = '\0';
		ps = colon + 1;
	}
	if (parse_int64(ps, 0, 65535, &p) != 0)
		goto bad;
	*port = (int)p;
	if (listen[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)p);
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			goto bad;
		*loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
		return 0;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	a4->sin_family = AF_INET;
	a4->sin_port = htons((uint16_t)p);
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof host, "127.0.0.1");
	else if (host[0] == '\0' || strcmp(host, "*") == 0)
		snprintf(host, sizeof host, "0.0.0.0");
	if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
		goto bad;
	*loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
	return 0;
bad:
	snprintf(err, errlen, "invalid listen address '%s' (expected 127.0.0.1:8080 or [::1]:8080)",
	         listen);
	return -1;
}

struct api *api_start(const struct api_opts *o, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	int loopback = 0, port = 0;
	struct api *a = NULL;

	if (api_parse_listen(o->listen, &ss, &loopback, &port, err, errlen) != 0)
		return NULL;
	if (!loopback && o->insecure_local) {
		snprintf(err, errlen,
		         "refusing to listen on %s: insecure local mode (no tokens) serves "
		         "loopback only; use 127.0.0.1 or [::1]",
		         o->listen);
		return NULL;
	}
	if (!loopback && !o->allow_remote) {
		snprintf(err, errlen,
		         "refusing to listen on non-loopback address %s without allow-remote "
		         "(tokens would cross the network in clear text: put a TLS proxy in front)",
		         o->listen);
		return NULL;
	}
	a = xcalloc(1, sizeof *a);
	a->threads = o->threads > 0 ? o->threads : 4;
	if (a->threads > 64)
		a->threads = 64;
	a->insecure_local = o->insecure_local;
	a->web_dir = o->web_dir ? xstrdup(o->web_dir) : NULL;
	a->engine_id = xstrdup(o->engine_id ? o->engine_id : "");
	if (a->web_dir) {
		size_t n = strlen(a->web_dir);
		while (n > 1 && a->web_dir[n - 1] == '/')
			a->web_dir[--n] = '\0';
		struct stat st;
		if (stat(a->web_dir, &st) != 0 || !S_ISDIR(st.st_mode))
			log_warn("web directory not found; the dashboard will answer 404",
			         "web_dir=%s", a->web_dir);
	}
	a->pool = store_pool_new(o->conninfo, a->threads);
	a->auth = auth_new(AUTH_CACHE_MS);

	unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The logger first, so MHD never prints on its own. */
	a->mhd = MHD_start_daemon(
	    flags, (uint16_t)port, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
	    a, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
	    (unsigned)a->threads, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY_LIMIT,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)CONN_LIMIT, MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
	    MHD_OPTION_UNESCAPE_CALLBACK, unescape, a, MHD_OPTION_END);
	if (!a->mhd) {
		snprintf(err, errlen, "cannot listen on %s: %s", o->listen,
		         errno ? strerror(errno) : "libmicrohttpd failed to start");
		api_stop(a);
		return NULL;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
	a->port = info ? info->port : port;
	if (a->insecure_local)
		log_warn("INSECURE: the API accepts requests without a token as admin "
		         "(insecure local mode, loopback only). Never use this in production.",
		         "listen=%s", o->listen);
	log_info("HTTP API listening", "listen=%s port=%d threads=%d web_dir=%s", o->listen,
	         a->port, a->threads, a->web_dir ? a->web_dir : "-");
	return a;
}

int api_port(const struct api *a)
{
	return a ? a->port : 0;
}

void api_stop(struct api *a)
{
	if (!a)
		return;
	if (a->mhd)
		MHD_stop_daemon(a->mhd);
	store_pool_free(a->pool);
	auth_free(a->auth);
	free(a->web_dir);
	free(a->engine_id);
	free(a);
}
