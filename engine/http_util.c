/* The request and response helpers of the API handlers (api_int.h) and the
 * request-independent HTTP helpers (http.h): JSON bodies and errors, query
 * arguments, lists with cursors, time and path checks, content types. */
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "api_body.h"
#include "api_int.h"
#include "buf.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

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

int api_body_object(struct api_req *rq, struct api_resp *rs, const char *const *allowed,
                    json_t **out)
{
	struct api_body_err e;
	if (api_body_parse(rq->body, rq->body_len, allowed, API_MAX_DEPTH, out, &e) == 0)
		return 0;
	api_error(rs, e.status, e.code, e.field[0] ? e.field : NULL, "%s", e.message);
	return -1;
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

/* ------------------------------------------------------------ callers and events */

void api_client_ip(struct api_req *rq, char *out, size_t outlen)
{
	const union MHD_ConnectionInfo *ci =
	    rq->conn ? MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS) : NULL;
	snprintf(out, outlen, "?");
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out,
		          (socklen_t)outlen);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
		          (socklen_t)outlen);
}

static const char event_sql[] =
    "WITH ev AS (INSERT INTO events (kind, workflow_id, run_id, task_run_id, actor, data)"
    " VALUES ($1, (SELECT id FROM workflows WHERE name = $2), $3::bigint, $4::bigint, $5,"
    "  COALESCE($6::jsonb, '{}'::jsonb)) RETURNING id, run_id)"
    " SELECT pg_notify('wf_events', COALESCE(run_id::text, '')) FROM ev";

int api_event(struct api_req *rq, const char *kind, const char *workflow, long long run_id,
              long long task_run_id, json_t *data)
{
	char run[24], tr[24];
	char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
	snprintf(run, sizeof run, "%lld", run_id);
	snprintf(tr, sizeof tr, "%lld", task_run_id);
	const char *p[6] = {
	    kind, workflow, run_id > 0 ? run : NULL, task_run_id > 0 ? tr : NULL, rq->actor, text};
	PGresult *r = store_execp(api_store(rq), "api_event", event_sql, 6, p);
	free(text);
	if (!r) {
		log_warn("cannot record an event", "kind=%s error=\"%s\"", kind,
		         store_error(api_store(rq)));
		return -1;
	}
	PQclear(r);
	return 0;
}
