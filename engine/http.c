/* The HTTP server (libmicrohttpd): listening, request bodies with limits,
 * authentication, rate limits, routing to the handlers of api_*.c,
 * security headers and the static dashboard. The request and response
 * helpers are in http_util.c.
 *
 * Threads: MHD_USE_THREAD_PER_CONNECTION. The SSE stream
 * (GET /api/v1/events/stream) blocks in its content reader callback while
 * it waits for events; with a thread pool that would stall every other
 * connection served by the same pool thread, so each connection gets its
 * own thread instead. Connections are bounded by CONN_LIMIT (threads), SSE
 * streams by api_opts.max_streams (503 beyond), and database work by the
 * store pool of api_opts.threads connections (handlers wait for one). */
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
#define CONN_LIMIT        512
/* A body over the limit (chunked, or with a Content-Length up to this) is
 * read and dropped up to this much to answer 413. */
#define DRAIN_MAX (4 * API_MAX_BODY)

/* Per-connection request state, kept in MHD's con_cls. */
struct reqctx {
	struct buf body;
	int too_big;
	size_t discarded; /* bytes dropped after too_big */
};

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
    api_misc_routes,  api_workflow_routes, api_run_routes, api_task_routes,     api_event_routes,
    api_token_routes, api_dlq_routes,      api_job_routes, api_backfill_routes,
};

const struct api_route *const *api_route_tables(size_t *n)
{
	*n = sizeof route_tables / sizeof route_tables[0];
	return route_tables;
}

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

/* Takes a token from the caller's bucket: the token's name, or the client
 * address when by_ip (no token). Returns 0, or 1 with a 429 set (over an
 * earlier response, which is then replaced). */
static int rate_limited(struct api_req *rq, struct api_resp *rs, int by_ip)
{
	char key[200], ip[64];
	if (!rq->api->rate)
		return 0;
	if (by_ip) {
		api_client_ip(rq, ip, sizeof ip);
		snprintf(key, sizeof key, "ip:%s", ip);
	} else {
		snprintf(key, sizeof key, "%s", rq->actor);
	}
	int64_t wait_ms = api_rate_take(rq->api->rate, key);
	if (wait_ms <= 0)
		return 0;
	int secs = (int)((wait_ms + 999) / 1000);
	api_error(rs, 429, "rate_limited", NULL,
	          "too many requests from %s: the limit is %d requests/s with bursts of %d; "
	          "retry after %d s",
	          by_ip ? key + 3 : rq->actor, api_rate_per_s(rq->api->rate),
	          api_rate_burst(rq->api->rate), secs);
	rs->retry_after = secs;
	rs->www_authenticate = 0;
	log_debug("rate limited", "key=%s wait_ms=%lld", key, (long long)wait_ms);
	return 1;
}

/* ------------------------------------------------------------ sending */

/* Set when the server speaks HTTPS (one API per process). */
static int serve_hsts;

static void add_common_headers(struct MHD_Response *resp)
{
	if (serve_hsts)
		MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
	MHD_add_response_header(resp, "Content-Security-Policy", HTTP_CSP);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
}

static enum MHD_Result send_resp(struct MHD_Connection *c, struct api_resp *rs)
{
	struct MHD_Response *resp;
	if (rs->raw) {
		resp = rs->raw;
		rs->raw = NULL;
		add_common_headers(resp);
		enum MHD_Result ret = MHD_queue_response(c, (unsigned)rs->status, resp);
		MHD_destroy_response(resp);
		return ret;
	}
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
	if (rs->retry_after > 0) {
		char ra[16];
		snprintf(ra, sizeof ra, "%d", rs->retry_after);
		MHD_add_response_header(resp, "Retry-After", ra);
	}
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
	if (r->role != AUTH_NONE && authorize(&rq, &rs, r->role) != 0) {
		/* Refused callers are limited by address, so guessing tokens
		 * costs time too. */
		(void)rate_limited(&rq, &rs, 1);
		goto send;
	}
	if (r->role == AUTH_NONE)
		snprintf(rq.actor, sizeof rq.actor, "anonymous");
	if (rate_limited(&rq, &rs, r->role == AUTH_NONE || strncmp(rq.actor, "token:", 6) != 0))
		goto send;
	if (r->role != AUTH_NONE && api_ns_guard(&rq, &rs, r) != 0)
		goto send;
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
	if (rs.raw)
		MHD_destroy_response(rs.raw);
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
		if (!cl || parse_int64(cl, 0, INT64_MAX, &len) != 0)
			len = 0; /* none (chunked) or unreadable: bounded as it is read */
		if (len > API_MAX_BODY && len <= DRAIN_MAX) {
			/* Read and drop it, then answer 413: closing a connection
			 * with unread data resets it, and a client still sending
			 * (no Expect: 100-continue) may never see the answer (a
			 * test failed that way under ASan, one run in four). */
			ctx->too_big = 1;
			return MHD_YES;
		}
		if (len > DRAIN_MAX) {
			/* Far too large to read: answer before reading; MHD then
			 * skips the body and closes the connection. */
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
			/* A body over the limit: we cannot answer in the middle
			 * of an upload, so drain a bounded amount to send a 413
			 * at the end; past that, stop reading and close. */
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
	int tls = o->tls_cert_pem && o->tls_key_pem;
	if (!loopback && !o->allow_remote && !tls) {
		snprintf(err, errlen,
		         "refusing to listen on non-loopback address %s without TLS "
		         "(tokens would cross the network in clear text): give --tls-cert and "
		         "--tls-key, or put a TLS proxy in front and pass --allow-remote",
		         o->listen);
		return NULL;
	}
	if (tls && !MHD_is_feature_supported(MHD_FEATURE_TLS)) {
		snprintf(err, errlen, "this libmicrohttpd was built without TLS support");
		return NULL;
	}
	struct MHD_OptionItem tls_opts[3] = {{MHD_OPTION_END, 0, NULL}};
	if (tls) {
		tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0,
		                                      (void *)(uintptr_t)o->tls_key_pem};
		tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0,
		                                      (void *)(uintptr_t)o->tls_cert_pem};
		tls_opts[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	}
	a = xcalloc(1, sizeof *a);
	a->threads = o->threads > 0 ? o->threads : 4;
	if (a->threads > 64)
		a->threads = 64;
	a->insecure_local = o->insecure_local;
	a->tls = tls;
	serve_hsts = tls;
	a->conninfo = o->conninfo ? xstrdup(o->conninfo) : NULL;
	a->max_streams = o->max_streams > 0 ? o->max_streams : API_STREAMS_DEFAULT;
	atomic_init(&a->streams, 0);
	atomic_init(&a->stopping, 0);
	if (o->rate_per_s >= 0) {
		int per_s = o->rate_per_s > 0 ? o->rate_per_s : API_RATE_DEFAULT;
		int burst = o->rate_burst > 0   ? o->rate_burst
		            : o->rate_per_s > 0 ? 2 * per_s
		                                : API_BURST_DEFAULT;
		a->rate = api_rate_new(per_s, burst);
	}
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

	unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD |
	                 MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (tls)
		flags |= MHD_USE_TLS;
	/* The logger first, so MHD never prints on its own. */
	a->mhd = MHD_start_daemon(
	    flags, (uint16_t)port, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
	    a, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)CONN_MEMORY_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_LIMIT, MHD_OPTION_NOTIFY_COMPLETED,
	    on_completed, a, MHD_OPTION_UNESCAPE_CALLBACK, unescape, a, MHD_OPTION_ARRAY, tls_opts,
	    MHD_OPTION_END);
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
	log_info("HTTP API listening", "listen=%s port=%d threads=%d web_dir=%s tls=%s", o->listen,
	         a->port, a->threads, a->web_dir ? a->web_dir : "-", tls ? "on" : "off");
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
	/* Streams notice within a tick and end, so their threads can join. */
	atomic_store(&a->stopping, 1);
	if (a->mhd)
		MHD_stop_daemon(a->mhd);
	api_rate_free(a->rate);
	free(a->conninfo);
	store_pool_free(a->pool);
	auth_free(a->auth);
	free(a->web_dir);
	free(a->engine_id);
	free(a);
}
