/* Tests of the HTTP API: each test gets a fresh migrated database (from the
 * PostgreSQL that PGHOST/PGPORT/PGUSER name), tokens of each role, and the
 * API started in-process on a free loopback port; requests go through
 * libcurl. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/api.h"
#include "engine/api_int.h"
#include "engine/auth.h"
#include "engine/http.h"
#include "testdb.h"
#include "xalloc.h"

#define VIEWER   "wf_test_viewer_token"
#define OPERATOR "wf_test_operator_token"
#define ADMIN    "wf_test_admin_token"

static struct api *g_api;
static struct testdb g_tdb;
static char g_conninfo[512];
static char g_web[128];
static char g_base[64];

static const char hello_yaml[] = "name: hello\n"
                                 "description: say hello\n"
                                 "tasks:\n"
                                 "  first:\n"
                                 "    shell: [\"echo\", \"hi\"]\n"
                                 "  second:\n"
                                 "    needs: [first]\n"
                                 "    shell: [\"echo\", \"there\"]\n";

/* ------------------------------------------------------------ database */

static void sql(PGconn *db, const char *q)
{
	PGresult *r = PQexec(db, q);
	ExecStatusType st = PQresultStatus(r);
	cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", q,
	          PQresultErrorMessage(r));
	PQclear(r);
}

/* The first value of a query, as a new string ("" when no row). */
static char *sql_value(const char *q)
{
	char *v = testdb_value(&g_tdb, q);
	cr_assert(v, "%s failed", q);
	return v;
}

static void insert_token(PGconn *db, const char *name, const char *role, const char *token)
{
	char hash[65];
	auth_hash_token(token, hash);
	const char *p[3] = {name, role, hash};
	PGresult *r =
	    PQexecParams(db, "INSERT INTO api_tokens (name, role, hash) VALUES ($1, $2, $3)", 3,
	                 NULL, p, NULL, NULL, 0);
	cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
	PQclear(r);
}

static void create_db(void)
{
	testdb_open(&g_tdb);
	snprintf(g_conninfo, sizeof g_conninfo, "%s", g_tdb.conninfo);
	PGconn *db = PQconnectdb(g_conninfo);
	cr_assert_eq(PQstatus(db), CONNECTION_OK);
	insert_token(db, "viewer1", "viewer", VIEWER);
	insert_token(db, "operator1", "operator", OPERATOR);
	insert_token(db, "admin1", "admin", ADMIN);
	PQfinish(db);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert(f);
	fputs(text, f);
	fclose(f);
	free(path);
}

static struct api *start(const char *conninfo, int insecure, char *err, size_t errlen)
{
	struct api_opts o = {.listen = "127.0.0.1:0",
	                     .conninfo = conninfo,
	                     .web_dir = g_web,
	                     .engine_id = "test-engine",
	                     .insecure_local = insecure,
	                     .threads = 2};
	struct api *a = api_start(&o, err, errlen);
	if (a)
		snprintf(g_base, sizeof g_base, "http://127.0.0.1:%d", api_port(a));
	return a;
}

static void setup(void)
{
	char err[256];
	create_db();
	snprintf(g_web, sizeof g_web, "/tmp/wf-api-web-%d", (int)getpid());
	mkdir(g_web, 0755);
	write_file(g_web, "index.html", "<!doctype html><title>wf</title>\n");
	write_file(g_web, "app.js", "console.log('wf');\n");
	write_file(g_web, "secret.txt", "outside\n");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	g_api = start(g_conninfo, 0, err, sizeof err);
	cr_assert(g_api, "api_start: %s", err);
}

static void teardown(void)
{
	api_stop(g_api);
	g_api = NULL;
	testdb_close(&g_tdb);
	char *cmd = xasprintf("rm -rf '%s'", g_web);
	if (system(cmd) != 0)
		cr_log_warn("cannot remove %s", g_web);
	free(cmd);
	curl_global_cleanup();
}

TestSuite(api, .init = setup, .fini = teardown, .timeout = 60);

/* ------------------------------------------------------------ http */

struct http {
	long status;
	char *body;
	size_t len;
	char *headers;
	size_t hlen;
	json_t *json; /* the body parsed, or NULL */
};

struct sink {
	char *data;
	size_t len;
};

static size_t sink_write(char *p, size_t size, size_t n, void *ud)
{
	struct sink *s = ud;
	size_t k = size * n;
	s->data = xrealloc(s->data, s->len + k + 1);
	memcpy(s->data + s->len, p, k);
	s->len += k;
	s->data[s->len] = '\0';
	return k;
}

/* One request. token NULL = no Authorization; body NULL = none; extra is one
 * more header line or NULL. */
static void req(struct http *h, const char *method, const char *path, const char *token,
                const char *body, long bodylen, const char *extra)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	struct sink b = {0}, hd = {0};
	char *url = xasprintf("%s%s", g_base, path);
	char auth[256];

	memset(h, 0, sizeof *h);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sink_write);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &hd);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (token) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	if (extra)
		hdrs = curl_slist_append(hdrs, extra);
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (body) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE,
		                 bodylen >= 0 ? bodylen : (long)strlen(body));
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	CURLcode rc = curl_easy_perform(c);
	cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h->status);
	h->body = b.data ? b.data : xstrdup("");
	h->len = b.len;
	h->headers = hd.data ? hd.data : xstrdup("");
	h->hlen = hd.len;
	h->json = json_loadb(h->body, h->len, 0, NULL);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	free(url);
}

static void http_free(struct http *h)
{
	free(h->body);
	free(h->headers);
	json_decref(h->json);
}

/* The value of header name (a new string) or NULL. */
static char *header(const struct http *h, const char *name)
{
	size_t n = strlen(name);
	for (const char *l = h->headers; l && *l;) {
		const char *end = strstr(l, "\r\n");
		if (!end)
			break;
		if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
			const char *v = l + n + 1;
			while (*v == ' ')
				v++;
			return xstrndup(v, (size_t)(end - v));
		}
		l = end + 2;
	}
	return NULL;
}

static const char *jstr(json_t *o, const char *path)
{
	/* "error.code" style dotted path into objects */
	char *p = xstrdup(path), *save = NULL;
	json_t *v = o;
	for (char *k = strtok_r(p, ".", &save); k && v; k = strtok_r(NULL, ".", &save))
		v = json_object_get(v, k);
	free(p);
	return json_string_value(v);
}

static void assert_error(const struct http *h, long status, const char *code)
{
	cr_assert_eq(h->status, status, "status %ld, expected %ld: %s", h->status, status, h->body);
	cr_assert(h->json, "not JSON: %s", h->body);
	cr_assert_str_eq(jstr(h->json, "error.code"), code, "%s", h->body);
	cr_assert(jstr(h->json, "error.message"), "%s", h->body);
	cr_assert(json_object_get(json_object_get(h->json, "error"), "field"), "%s", h->body);
}

static char *submit_body(const char *yaml, const char *filename)
{
	json_t *o = json_pack("{s:s,s:s}", "source", yaml, "filename", filename);
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static void submit_hello(void)
{
	struct http h;
	char *b = submit_body(hello_yaml, "hello.yaml");
	req(&h, "POST", "/api/v1/workflows", ADMIN, b, -1, NULL);
	cr_assert(h.status == 201 || h.status == 200, "%ld %s", h.status, h.body);
	http_free(&h);
	free(b);
}

static long long trigger_hello(const char *key, long expect_status)
{
	struct http h;
	char hdr[128];
	if (key)
		snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key);
	req(&h, "POST", "/api/v1/workflows/hello/runs", OPERATOR, "{\"params\":{}}", -1,
	    key ? hdr : NULL);
	cr_assert_eq(h.status, expect_status, "%ld %s", h.status, h.body);
	long long id = json_integer_value(json_object_get(h.json, "run_id"));
	cr_assert_gt(id, 0, "%s", h.body);
	cr_assert(jstr(h.json, "state"), "%s", h.body);
	http_free(&h);
	return id;
}

/* ------------------------------------------------------------ no database needed */

Test(api_unit, route_match)
{
	struct api_req rq = {0};
	cr_assert(api_route_match("/api/v1/runs/{}", "/api/v1/runs/12", &rq));
	cr_assert_eq(rq.ncaps, 1);
	cr_assert_str_eq(rq.caps[0], "12");
	free(rq.caps[0]);
	cr_assert_not(api_route_match("/api/v1/runs/{}", "/api/v1/runs/", NULL));
	cr_assert_not(api_route_match("/api/v1/runs/{}", "/api/v1/runs/1/x", NULL));
	cr_assert_not(api_route_match("/api/v1/runs", "/api/v1/runs/", NULL));
	cr_assert(api_route_match("/api/v1/workflows/{}/versions/{}",
	                          "/api/v1/workflows/a/versions/3", NULL));
}

Test(api_unit, listen_addresses)
{
	struct sockaddr_storage ss;
	int lo, port;
	char err[128];
	cr_assert_eq(api_parse_listen("127.0.0.1:8080", &ss, &lo, &port, err, sizeof err), 0);
	cr_assert(lo && port == 8080);
	cr_assert_eq(api_parse_listen("[::1]:9", &ss, &lo, &port, err, sizeof err), 0);
	cr_assert(lo && port == 9);
	cr_assert_eq(api_parse_listen("0.0.0.0:80", &ss, &lo, &port, err, sizeof err), 0);
	cr_assert_not(lo);
	cr_assert_eq(api_parse_listen("localhost:80", &ss, &lo, &port, err, sizeof err), 0);
	cr_assert(lo);
	cr_assert_eq(api_parse_listen("nonsense", &ss, &lo, &port, err, sizeof err), -1);
	cr_assert_eq(api_parse_listen("1.2.3.4:99999", &ss, &lo, &port, err, sizeof err), -1);
	cr_assert_eq(api_parse_listen("[::1:80", &ss, &lo, &port, err, sizeof err), -1);
}

Test(api_unit, refuses_remote_listen)
{
	char err[256];
	struct api_opts o = {.listen = "0.0.0.0:0", .engine_id = "x"};
	cr_assert_null(api_start(&o, err, sizeof err));
	cr_assert(strstr(err, "non-loopback"), "%s", err);
	o.insecure_local = 1;
	o.allow_remote = 1;
	cr_assert_null(api_start(&o, err, sizeof err));
	cr_assert(strstr(err, "loopback"), "%s", err);
}

Test(api_unit, static_paths_and_types)
{
	cr_assert(http_safe_path("/index.html"));
	cr_assert_not(http_safe_path("/../etc/passwd"));
	cr_assert_not(http_safe_path("/a/..%00"));
	cr_assert_not(http_safe_path("/a%00.html"));
	cr_assert_str_eq(http_content_type("/x/app.js"), "text/javascript; charset=utf-8");
	cr_assert_str_eq(http_content_type("/a.svg"), "image/svg+xml");
	cr_assert_str_eq(http_content_type("/a.PNG"), "image/png");
	cr_assert_str_eq(http_content_type("/a.json"), "application/json");
	cr_assert_str_eq(http_content_type("/a.css"), "text/css; charset=utf-8");
	cr_assert_str_eq(http_content_type("/v1.2/blob"), "application/octet-stream");
}

Test(api_unit, times)
{
	cr_assert(api_valid_time("2026-01-02"));
	cr_assert(api_valid_time("2026-01-02T03:04:05Z"));
	cr_assert(api_valid_time("2026-01-02T03:04:05.123+02:00"));
	cr_assert_not(api_valid_time("yesterday"));
	cr_assert_not(api_valid_time("2026-01-02T03:04:05Zjunk"));
}

/* ------------------------------------------------------------ auth */

Test(api, healthz_needs_no_token)
{
	struct http h;
	req(&h, "GET", "/healthz", NULL, NULL, 0, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	cr_assert_str_eq(jstr(h.json, "status"), "ok");
	cr_assert_str_eq(jstr(h.json, "engine"), "test-engine");
	http_free(&h);
	req(&h, "GET", "/readyz", NULL, NULL, 0, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	http_free(&h);
}

Test(api, unauthorized_without_token)
{
	struct http h;
	req(&h, "GET", "/api/v1/workflows", NULL, NULL, 0, NULL);
	assert_error(&h, 401, "unauthorized");
	char *w = header(&h, "WWW-Authenticate");
	cr_assert(w && strncmp(w, "Bearer", 6) == 0);
	free(w);
	http_free(&h);
}

Test(api, unauthorized_bad_token)
{
	struct http h;
	req(&h, "GET", "/api/v1/runs", "wf_not_a_token", NULL, 0, NULL);
	assert_error(&h, 401, "unauthorized");
	http_free(&h);
	req(&h, "GET", "/api/v1/runs", NULL, NULL, 0, "Authorization: Basic Zm9vOmJhcg==");
	assert_error(&h, 401, "unauthorized");
	http_free(&h);
}

Test(api, viewer_reads_but_cannot_trigger)
{
	struct http h;
	req(&h, "GET", "/api/v1/workflows", VIEWER, NULL, 0, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	cr_assert(json_is_array(json_object_get(h.json, "items")));
	cr_assert(json_is_null(json_object_get(h.json, "next_cursor")));
	http_free(&h);
	req(&h, "POST", "/api/v1/workflows/hello/runs", VIEWER, "{}", -1, NULL);
	assert_error(&h, 403, "forbidden");
	cr_assert(strstr(jstr(h.json, "error.message"), "operator"), "%s", h.body);
	cr_assert(strstr(jstr(h.json, "error.message"), "'viewer1' is viewer"), "%s", h.body);
	http_free(&h);
	req(&h, "POST", "/api/v1/workflows", OPERATOR, "{}", -1, NULL);
	assert_error(&h, 403, "forbidden");
	http_free(&h);
}

Test(api, revoked_token_is_refused)
{
	PGconn *db = PQconnectdb(g_conninfo);
	insert_token(db, "gone", "admin", "wf_revoked_token");
	sql(db, "UPDATE api_tokens SET revoked_at = now() WHERE name = 'gone'");
	PQfinish(db);
	struct http h;
	req(&h, "GET", "/api/v1/runs", "wf_revoked_token", NULL, 0, NULL);
	assert_error(&h, 401, "unauthorized");
	http_free(&h);
}

Test(api, last_used_is_recorded)
{
	struct http h;
	req(&h, "GET", "/api/v1/executors", VIEWER, NULL, 0, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	http_free(&h);
	char *v =
	    sql_value("SELECT last_used_at IS NOT NULL FROM api_tokens WHERE name = 'viewer1'");
	cr_assert_str_eq(v, "t");
	free(v);
}

Test(api, insecure_local_acts_as_admin)
{
	char err[256];
	api_stop(g_api);
	g_api = start(g_conninfo, 1, err, sizeof err);
	cr_assert(g_api, "%s", err);
	struct http h;
	req(&h, "GET", "/api/v1/workflows", NULL, NULL, 0, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	http_free(&h);
	/* A token that is sent is still checked. */
	req(&h, "GET", "/api/v1/workflows", "wf_bogus", NULL, 0, NULL);
	assert_error(&h, 401, "unauthorized");
	http_free(&h);
}

Test(api, database_down_gives_503)
{
	char err[256];
	api_stop(g_api);
	g_api = start("host=127.0.0.1 port=1 connect_timeout=2", 0, err, sizeof err);
	cr_assert(g_api, "%s", err);
	struct http h;
	req(&h, "GET", "/healthz", NULL, NULL, 0, NULL);
	cr_assert_eq(h.status, 503, "%s", h.body);
	cr_assert_str_eq(jstr(h.json, "status"), "db_unavailable");
	http_free(&h);
	req(&h, "GET", "/api/v1/runs", VIEWER, NULL, 0, NULL);
	assert_error(&h, 503, "unavailable");
	cr_assert_str_eq(jstr(h.json, "error.message"), "database unavailable, retry later");
	http_free(&h);
	req(&h, "GET", "/readyz", NULL, NULL, 0, NULL);
	cr_assert_eq(h.status, 503, "%s", h.body);
	http_free(&h);
	req(&h, "GET", "/metrics", NULL, NULL, 0, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	cr_assert(strstr(h.body, "wf_db_up 0"), "%s", h.body);
	http_free(&h);
}

/* ------------------------------------------------------------ limits and errors */

Test(api, body_too_large)
{
	size_t n = 2 * 1024 * 1024;
	char *big = xmalloc(n + 1);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	struct http h;
	req(&h, "POST", "/api/v1/workflows", ADMIN, big, (long)n, NULL);
	assert_error(&h, 413, "payload_too_large");
	http_free(&h);
	free(big);
}

Test(api, malformed_json)
{
	struct http h;
	req(&h, "POST", "/api/v1/workflows", ADMIN, "{\"source\": ", -1, NULL);
	assert_error(&h, 400, "invalid_json");
	cr_assert(strstr(jstr(h.json, "error.message"), "line 1"), "%s", h.body);
	http_free(&h);
	req(&h, "POST", "/api/v1/workflows", ADMIN, "{\"source\":\"a\",\"source\":\"b\"}", -1,
	    NULL);
	assert_error(&h, 400, "invalid_json");
	http_free(&h);
	req(&h, "POST", "/api/v1/workflows", ADMIN, "[1]", -1, NULL);
	assert_error(&h, 400, "invalid_json");
	http_free(&h);
}

Test(api, deep_json)
{
	char body[256] = "{\"params\":";
	for (int i = 0; i < 40; i++)
		body[strlen(body)] = '[';
	for (int i = 0; i < 40; i++)
		body[strlen(body)] = ']';
	body[strlen(body)] = '}';
	struct http h;
	req(&h, "POST", "/api/v1/workflows/hello/runs", OPERATOR, body, -1, NULL);
	assert_error(&h, 400, "invalid_json");
	cr_assert(strstr(jstr(h.json, "error.message"), "deeper"), "%s", h.body);
	http_free(&h);
}

Test(api, unknown_field)
{
	struct http h;
	req(&h, "POST", "/api/v1/workflows", ADMIN, "{\"source\":\"x\",\"colour\":1}", -1, NULL);
	assert_error(&h, 400, "unknown_field");
	cr_assert_str_eq(jstr(h.json, "error.field"), "colour");
	http_free(&h);
	req(&h, "POST", "/api/v1/workflows", ADMIN, "{\"filename\":\"x.yaml\"}", -1, NULL);
	assert_error(&h, 400, "invalid_field");
	cr_assert_str_eq(jstr(h.json, "error.field"), "source");
	http_free(&h);
}

Test(api, not_found_and_method)
{
	struct http h;
	req(&h, "GET", "/api/v1/runs/999999", VIEWER, NULL, 0, NULL);
	assert_error(&h, 404, "not_found");
	http_free(&h);
	req(&h, "GET", "/api/v1/runs/abc", VIEWER, NULL, 0, NULL);
	assert_error(&h, 404, "not_found");
	http_free(&h);
	req(&h, "GET", "/api/v1/workflows/nope", VIEWER, NULL, 0, NULL);
	assert_error(&h, 404, "not_found");
	http_free(&h);
	req(&h, "GET", "/api/v1/nothing-here", VIEWER, NULL, 0, NULL);
	assert_error(&h, 404, "not_found");
	http_free(&h);
	req(&h, "DELETE", "/api/v1/runs", ADMIN, NULL, 0, NULL);
	assert_error(&h, 405, "method_not_allowed");
	char *allow = header(&h, "Allow");
	cr_assert(allow && strstr(allow, "GET"), "%s", h.headers);
	free(allow);
	http_free(&h);
	req(&h, "GET", "/api/v1/runs/1/cancel", ADMIN, NULL, 0, NULL);
	assert_error(&h, 405, "method_not_allowed");
	allow = header(&h, "Allow");
	cr_assert(allow && strcmp(allow, "POST") == 0, "%s", h.headers);
	free(allow);
	http_free(&h);
	req(&h, "POST", "/api/v1/runs/999999/cancel", OPERATOR, NULL, 0, NULL);
	cr_assert_eq(h.status, 404, "%s", h.body);
	http_free(&h);
}

Test(api, bad_query_params)
{
	struct http h;
	req(&h, "GET", "/api/v1/runs?limit=0", VIEWER, NULL, 0, NULL);
	assert_error(&h, 400, "invalid_param");
	cr_assert_str_eq(jstr(h.json, "error.field"), "limit");
	http_free(&h);
	req(&h, "GET", "/api/v1/runs?limit=501", VIEWER, NULL, 0, NULL);
	assert_error(&h, 400, "invalid_param");
	http_free(&h);
	req(&h, "GET", "/api/v1/runs?state=sleeping", VIEWER, NULL, 0, NULL);
	assert_error(&h, 400, "invalid_param");
	http_free(&h);
	req(&h, "GET", "/api/v1/runs?since=yesterday", VIEWER, NULL, 0, NULL);
	assert_error(&h, 400, "invalid_param");
	http_free(&h);
	req(&h, "GET", "/api/v1/runs?since=2020-01-01T00:00:00Z&state=running&limit=5", VIEWER,
	    NULL, 0, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	http_free(&h);
}

Test(api, security_headers_everywhere)
{
	const char *paths[] = {"/api/v1/workflows", "/healthz", "/", "/api/v1/missing", NULL};
	for (int i = 0; paths[i]; i++) {
		struct http h;
		req(&h, "GET", paths[i], VIEWER, NULL, 0, NULL);
		char *csp = header(&h, "Content-Security-Policy");
		cr_assert(csp, "%s: %s", paths[i], h.headers);
		cr_assert_str_eq(csp, HTTP_CSP);
		free(csp);
		const char *want[][2] = {{"X-Content-Type-Options", "nosniff"},
		                         {"Referrer-Policy", "no-referrer"},
		                         {"X-Frame-Options", "DENY"}};
		for (int k = 0; k < 3; k++) {
			char *v = header(&h, want[k][0]);
			cr_assert(v && strcmp(v, want[k][1]) == 0, "%s %s: %s", paths[i],
			          want[k][0], h.headers);
			free(v);
		}
		if (strncmp(paths[i], "/api", 4) == 0) {
			char *cc = header(&h, "Cache-Control");
			cr_assert(cc && strcmp(cc, "no-store") == 0, "%s", h.headers);
			free(cc);
			char *ct = header(&h, "Content-Type");
			cr_assert(ct && strcmp(ct, "application/json") == 0, "%s", h.headers);
			free(ct);
		}
		http_free(&h);
	}
}

/* ------------------------------------------------------------ static files */

Test(api, static_files)
{
	struct http h;
	req(&h, "GET", "/", NULL, NULL, 0, NULL);
	cr_assert_eq(h.status, 200);
	cr_assert(strstr(h.body, "<title>wf</title>"));
	char *ct = header(&h, "Content-Type");
	cr_assert_str_eq(ct, "text/html; charset=utf-8");
	free(ct);
	http_free(&h);
	req(&h, "GET", "/app.js", NULL, NULL, 0, NULL);
	cr_assert_eq(h.status, 200);
	ct = header(&h, "Content-Type");
	cr_assert_str_eq(ct, "text/javascript; charset=utf-8");
	free(ct);
	http_free(&h);
	req(&h, "HEAD", "/app.js", NULL, NULL, 0, NULL);
	cr_assert_eq(h.status, 200);
	http_free(&h);
	req(&h, "GET", "/../etc/passwd", NULL, NULL, 0, NULL);
	cr_assert_eq(h.status, 400, "%s", h.body);
	http_free(&h);
	req(&h, "GET", "/%2e%2e/etc/passwd", NULL, NULL, 0, NULL);
	cr_assert_eq(h.status, 400, "%s", h.body);
	http_free(&h);
	req(&h, "GET", "/index.html%00.js", NULL, NULL, 0, NULL);
	cr_assert_eq(h.status, 400, "%s", h.body);
	http_free(&h);
	req(&h, "GET", "/missing.css", NULL, NULL, 0, NULL);
	assert_error(&h, 404, "not_found");
	http_free(&h);
	req(&h, "POST", "/index.html", NULL, "{}", -1, NULL);
	cr_assert_eq(h.status, 405);
	http_free(&h);
}

/* ------------------------------------------------------------ metrics */

Test(api, metrics_text)
{
	struct http h;
	req(&h, "GET", "/metrics", NULL, NULL, 0, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	cr_assert(strstr(h.body, "wf_runs{state=\"running\"} 0"), "%s", h.body);
	cr_assert(strstr(h.body, "wf_task_runs{state=\"queued\"}"), "%s", h.body);
	cr_assert(strstr(h.body, "wf_executors{state=\"online\"}"), "%s", h.body);
	cr_assert(strstr(h.body, "wf_dead_letters_open 0"), "%s", h.body);
	cr_assert(strstr(h.body, "wf_outbox_pending"), "%s", h.body);
	cr_assert(strstr(h.body, "wf_attempts_total 0"), "%s", h.body);
	cr_assert(strstr(h.body, "wf_db_up 1"), "%s", h.body);
	char *ct = header(&h, "Content-Type");
	cr_assert(ct && strncmp(ct, "text/plain", 10) == 0);
	free(ct);
	http_free(&h);
}

Test(api, executors_list)
{
	PGconn *db = PQconnectdb(g_conninfo);
	sql(db, "INSERT INTO executors (id, endpoint, pool, slots, free_slots, labels) VALUES"
	        " ('ex-1', 'tcp://127.0.0.1:1', 'default', 4, 3, '{gpu}'),"
	        " ('ex-2', 'tcp://127.0.0.1:2', 'other', 1, 1, '{}')");
	PQfinish(db);
	struct http h;
	req(&h, "GET", "/api/v1/executors?limit=1", VIEWER, NULL, 0, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	json_t *items = json_object_get(h.json, "items");
	cr_assert_eq(json_array_size(items), 1, "%s", h.body);
	json_t *e = json_array_get(items, 0);
	cr_assert_str_eq(jstr(e, "id"), "ex-1");
	cr_assert(json_is_number(json_object_get(e, "heartbeat_age_s")), "%s", h.body);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(e, "labels"), 0)), "gpu");
	cr_assert_str_eq(jstr(h.json, "next_cursor"), "ex-1");
	http_free(&h);
	req(&h, "GET", "/api/v1/executors?cursor=ex-1", VIEWER, NULL, 0, NULL);
	cr_assert_eq(json_array_size(json_object_get(h.json, "items")), 1, "%s", h.body);
	http_free(&h);
	req(&h, "GET", "/metrics", NULL, NULL, 0, NULL);
	cr_assert(strstr(h.body, "wf_executor_free_slots{pool=\"default\"} 3"), "%s", h.body);
	cr_assert(strstr(h.body, "wf_executors{state=\"online\"} 2"), "%s", h.body);
	http_free(&h);
}

/* ------------------------------------------------------------ workflows and runs
 * (these need dsl_compile and runs.c) */

Test(api, submit_then_unchanged)
{
	struct http h;
	char *b = submit_body(hello_yaml, "hello.yaml");
	req(&h, "POST", "/api/v1/workflows", ADMIN, b, -1, NULL);
	cr_assert_eq(h.status, 201, "%s", h.body);
	cr_assert_str_eq(jstr(h.json, "workflow"), "hello");
	cr_assert_eq(json_integer_value(json_object_get(h.json, "version")), 1);
	cr_assert_eq(strlen(jstr(h.json, "hash")), 64);
	cr_assert(json_is_true(json_object_get(h.json, "changed")));
	http_free(&h);
	req(&h, "POST", "/api/v1/workflows", ADMIN, b, -1, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	cr_assert(json_is_false(json_object_get(h.json, "changed")), "%s", h.body);
	cr_assert_eq(json_integer_value(json_object_get(h.json, "version")), 1);
	http_free(&h);
	free(b);

	req(&h, "GET", "/api/v1/workflows", VIEWER, NULL, 0, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	json_t *w = json_array_get(json_object_get(h.json, "items"), 0);
	cr_assert_str_eq(jstr(w, "name"), "hello");
	cr_assert(json_is_false(json_object_get(w, "paused")));
	cr_assert_eq(json_integer_value(json_object_get(w, "version")), 1);
	cr_assert(json_is_null(json_object_get(w, "last_run")), "%s", h.body);
	http_free(&h);

	req(&h, "GET", "/api/v1/workflows/hello", VIEWER, NULL, 0, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	cr_assert_str_eq(jstr(h.json, "description"), "say hello");
	cr_assert(json_is_array(json_object_get(json_object_get(h.json, "dag"), "tasks")));
	http_free(&h);

	req(&h, "GET", "/api/v1/workflows/hello/versions", VIEWER, NULL, 0, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	json_t *v = json_array_get(json_object_get(h.json, "items"), 0);
	cr_assert_str_eq(jstr(v, "source"), hello_yaml);
	cr_assert_str_eq(jstr(v, "filename"), "hello.yaml");
	http_free(&h);
	req(&h, "GET", "/api/v1/workflows/hello/versions/1", VIEWER, NULL, 0, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	cr_assert(json_is_object(json_object_get(h.json, "dag")));
	http_free(&h);
	req(&h, "GET", "/api/v1/workflows/hello/versions/2", VIEWER, NULL, 0, NULL);
	assert_error(&h, 404, "not_found");
	http_free(&h);
}

Test(api, submit_invalid_names_line_and_column)
{
	struct http h;
	char *b = submit_body("name: bad\ntasks:\n  a:\n    needs: [missing]\n    shell: [\"x\"]\n",
	                      "bad.yaml");
	req(&h, "POST", "/api/v1/workflows", ADMIN, b, -1, NULL);
	assert_error(&h, 400, "invalid_workflow");
	cr_assert(strstr(jstr(h.json, "error.message"), "in bad.yaml"), "%s", h.body);
	json_t *d = json_object_get(json_object_get(h.json, "error"), "details");
	cr_assert_geq(json_array_size(d), 1, "%s", h.body);
	const char *line = json_string_value(json_array_get(d, 0));
	int l = 0, c = 0;
	cr_assert_eq(sscanf(line, "bad.yaml:%d:%d:", &l, &c), 2, "%s", line);
	cr_assert_gt(l, 0);
	cr_assert_gt(c, 0);
	http_free(&h);
	free(b);
}

Test(api, trigger_is_idempotent_and_recorded)
{
	submit_hello();
	long long a = trigger_hello("key-1", 201);
	long long b = trigger_hello("key-1", 200);
	cr_assert_eq(a, b);
	long long c = trigger_hello(NULL, 201);
	cr_assert_neq(a, c);
	char *actor = sql_value("SELECT string_agg(DISTINCT actor, ',') FROM events"
	                        " WHERE actor LIKE 'token:%'");
	cr_assert(strstr(actor, "token:operator1"), "events actors: %s", actor);
	free(actor);

	struct http h;
	req(&h, "GET", "/api/v1/runs?workflow=hello&limit=1", VIEWER, NULL, 0, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	json_t *items = json_object_get(h.json, "items");
	cr_assert_eq(json_array_size(items), 1);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(items, 0), "id")), c);
	cr_assert_eq(json_integer_value(json_object_get(h.json, "next_cursor")), c, "%s", h.body);
	http_free(&h);
	char path[96];
	snprintf(path, sizeof path, "/api/v1/runs?workflow=hello&cursor=%lld", c);
	req(&h, "GET", path, VIEWER, NULL, 0, NULL);
	items = json_object_get(h.json, "items");
	cr_assert_eq(json_array_size(items), 1, "%s", h.body);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(items, 0), "id")), a);
	http_free(&h);

	req(&h, "POST", "/api/v1/workflows/nope/runs", OPERATOR, "{}", -1, NULL);
	cr_assert_eq(h.status, 404, "%s", h.body);
	http_free(&h);
}

static json_t *task_run(json_t *run, const char *task)
{
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(run, "task_runs"), i, t)
	{
		if (strcmp(jstr(t, "task"), task) == 0)
			return t;
	}
	return NULL;
}

Test(api, run_detail_shape_and_wait_reasons)
{
	submit_hello();
	long long id = trigger_hello(NULL, 201);
	char path[64];
	snprintf(path, sizeof path, "/api/v1/runs/%lld", id);
	struct http h;
	req(&h, "GET", path, VIEWER, NULL, 0, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	cr_assert_eq(json_integer_value(json_object_get(h.json, "id")), id);
	cr_assert_str_eq(jstr(h.json, "workflow"), "hello");
	const char *created = jstr(h.json, "created_at");
	cr_assert(created && strlen(created) == 24 && created[10] == 'T' && created[23] == 'Z',
	          "%s", h.body);
	json_t *first = task_run(h.json, "first"), *second = task_run(h.json, "second");
	cr_assert(first && second, "%s", h.body);
	static const char *const keys[] = {"id",           "task",        "state", "attempt",
	                                   "max_attempts", "priority",    "pool",  "executor_id",
	                                   "available_at", "wait_reason", "error", "outputs",
	                                   "needs",        "attempts",    NULL};
	for (int i = 0; keys[i]; i++)
		cr_assert(json_object_get(first, keys[i]), "no %s in %s", keys[i], h.body);
	cr_assert_str_eq(jstr(first, "state"), "queued", "%s", h.body);
	cr_assert_str_eq(jstr(first, "wait_reason"), "no online executor in pool 'default'", "%s",
	                 h.body);
	cr_assert_str_eq(jstr(second, "state"), "pending", "%s", h.body);
	cr_assert_str_eq(jstr(second, "wait_reason"), "waiting on upstream: first", "%s", h.body);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(second, "needs"), 0)),
	                 "first");
	cr_assert(json_is_array(json_object_get(first, "attempts")));
	http_free(&h);

	/* An online executor: now it waits for a slot. */
	PGconn *db = PQconnectdb(g_conninfo);
	sql(db, "INSERT INTO executors (id, endpoint) VALUES ('ex-1', 'tcp://127.0.0.1:1')");
	PQfinish(db);
	req(&h, "GET", path, VIEWER, NULL, 0, NULL);
	cr_assert_str_eq(jstr(task_run(h.json, "first"), "wait_reason"), "waiting for a free slot",
	                 "%s", h.body);
	http_free(&h);

	req(&h, "POST", "/api/v1/workflows/hello/pause", OPERATOR, NULL, 0, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	cr_assert(json_is_true(json_object_get(h.json, "paused")));
	http_free(&h);
	req(&h, "GET", path, VIEWER, NULL, 0, NULL);
	cr_assert_str_eq(jstr(task_run(h.json, "first"), "wait_reason"), "workflow paused", "%s",
	                 h.body);
	http_free(&h);
	req(&h, "POST", "/api/v1/workflows/hello/unpause", OPERATOR, "{}", -1, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	http_free(&h);

	snprintf(path, sizeof path, "/api/v1/runs/%lld/cancel", id);
	req(&h, "POST", path, OPERATOR, NULL, 0, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	cr_assert_str_eq(jstr(h.json, "state"), "cancelled", "%s", h.body);
	http_free(&h);
	snprintf(path, sizeof path, "/api/v1/runs/%lld", id);
	req(&h, "GET", path, VIEWER, NULL, 0, NULL);
	cr_assert(json_is_null(json_object_get(task_run(h.json, "first"), "wait_reason")), "%s",
	          h.body);
	http_free(&h);

	snprintf(path, sizeof path, "/api/v1/runs/%lld/resume", id);
	req(&h, "POST", path, OPERATOR, "{\"from\":\"first\"}", -1, NULL);
	cr_assert_eq(h.status, 200, "%s", h.body);
	cr_assert(json_is_array(json_object_get(h.json, "reset")), "%s", h.body);
	http_free(&h);
}
