/* Tests of the admin side of the HTTP API: the role matrix over every
 * route, whoami, tokens, dead letters, the job façade, rate limits, the SSE
 * event stream, task run and schedule reads, soft delete, and retention.
 * Each test gets a fresh migrated database and the API in-process on a
 * free loopback port (see test_api.c for the basics). */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "engine/api.h"
#include "engine/api_int.h"
#include "engine/auth.h"
#include "engine/retention.h"
#include "testdb.h"
#include "util.h"
#include "xalloc.h"

#define VIEWER   "wf_t2_viewer_token"
#define OPERATOR "wf_t2_operator_token"
#define ADMIN    "wf_t2_admin_token"

static struct api *g_api;
static struct testdb g_tdb;
static char g_base[64];

static const char hello_yaml[] = "name: hello\n"
                                 "tasks:\n"
                                 "  first:\n"
                                 "    shell: [\"echo\", \"hi\"]\n"
                                 "    retries: 2\n"
                                 "  second:\n"
                                 "    needs: [first]\n"
                                 "    shell: [\"echo\", \"there\"]\n";

static const char cron_yaml[] = "name: nightly\n"
                                "schedule:\n"
                                "  cron: \"0 2 * * *\"\n"
                                "  timezone: Europe/Berlin\n"
                                "tasks:\n"
                                "  a:\n"
                                "    noop: {}\n";

/* ------------------------------------------------------------ setup */

static void sql(const char *q)
{
	char *v = testdb_value(&g_tdb, q);
	cr_assert(v, "%s failed", q);
	free(v);
}

static char *sql_value(const char *q)
{
	char *v = testdb_value(&g_tdb, q);
	cr_assert(v, "%s failed", q);
	return v;
}

static long long sql_int(const char *q)
{
	char *v = sql_value(q);
	long long n = atoll(v);
	free(v);
	return n;
}

static void insert_token(const char *name, const char *role, const char *token)
{
	char hash[65], *q;
	auth_hash_token(token, hash);
	q = xasprintf("INSERT INTO api_tokens (name, role, hash) VALUES ('%s', '%s', '%s')", name,
	              role, hash);
	sql(q);
	free(q);
}

static struct api *start_api(int insecure, int rate, int burst)
{
	char err[256];
	struct api_opts o = {.listen = "127.0.0.1:0",
	                     .conninfo = g_tdb.conninfo,
	                     .engine_id = "t2",
	                     .insecure_local = insecure,
	                     .threads = 2,
	                     .rate_per_s = rate,
	                     .rate_burst = burst};
	struct api *a = api_start(&o, err, sizeof err);
	cr_assert(a, "api_start: %s", err);
	snprintf(g_base, sizeof g_base, "http://127.0.0.1:%d", api_port(a));
	return a;
}

static void setup(void)
{
	testdb_open(&g_tdb);
	insert_token("viewer1", "viewer", VIEWER);
	insert_token("operator1", "operator", OPERATOR);
	insert_token("admin1", "admin", ADMIN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	g_api = start_api(0, 100000, 100000);
}

static void teardown(void)
{
	api_stop(g_api);
	g_api = NULL;
	testdb_close(&g_tdb);
	curl_global_cleanup();
}

TestSuite(api2, .init = setup, .fini = teardown, .timeout = 60);

/* ------------------------------------------------------------ http */

struct http {
	long status;
	char *body;
	size_t len;
	char *headers;
	json_t *json;
	CURLcode rc;
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

/* One request; timeout_ms 0 = 30 s and the transfer must succeed. */
static void req_t(struct http *h, const char *method, const char *path, const char *token,
                  const char *body, const char *extra, long timeout_ms)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	struct sink b = {0}, hd = {0};
	char *url = xasprintf("%s%s", g_base, path);
	char auth[256];

	memset(h, 0, sizeof *h);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sink_write);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &hd);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms ? timeout_ms : 30000L);
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
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	h->rc = curl_easy_perform(c);
	if (!timeout_ms)
		cr_assert_eq(h->rc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(h->rc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h->status);
	h->body = b.data ? b.data : xstrdup("");
	h->len = b.len;
	h->headers = hd.data ? hd.data : xstrdup("");
	h->json = json_loadb(h->body, h->len, 0, NULL);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	free(url);
}

static void req(struct http *h, const char *method, const char *path, const char *token,
                const char *body)
{
	req_t(h, method, path, token, body, NULL, 0);
}

static void http_free(struct http *h)
{
	free(h->body);
	free(h->headers);
	json_decref(h->json);
}

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

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static const char *err_field(const struct http *h)
{
	return json_string_value(json_object_get(json_object_get(h->json, "error"), "field"));
}

static void expect(struct http *h, long status)
{
	cr_assert_eq(h->status, status, "status %ld, expected %ld: %s", h->status, status, h->body);
}

static void submit(const char *yaml)
{
	struct http h;
	json_t *o = json_pack("{s:s,s:s}", "source", yaml, "filename", "w.yaml");
	char *b = json_dumps(o, JSON_COMPACT);
	req(&h, "POST", "/api/v1/workflows", ADMIN, b);
	cr_assert(h.status == 201 || h.status == 200, "%ld %s", h.status, h.body);
	http_free(&h);
	free(b);
	json_decref(o);
}

static long long trigger(const char *wf)
{
	struct http h;
	char *path = xasprintf("/api/v1/workflows/%s/runs", wf);
	req(&h, "POST", path, OPERATOR, "{}");
	expect(&h, 201);
	long long id = json_integer_value(json_object_get(h.json, "run_id"));
	http_free(&h);
	free(path);
	return id;
}

/* ------------------------------------------------------------ role matrix */

/* The pattern with every {} replaced by "1". */
static char *concrete(const char *pattern)
{
	struct sink s = {0};
	for (const char *p = pattern; *p;) {
		if (p[0] == '{' && p[1] == '}') {
			sink_write((char *)"1", 1, 1, &s);
			p += 2;
		} else {
			sink_write((char *)p, 1, 1, &s);
			p++;
		}
	}
	return s.data;
}

Test(api2, role_matrix_covers_every_route)
{
	static const struct {
		const char *token;
		enum auth_role role;
	} callers[] = {{NULL, AUTH_NONE},
	               {VIEWER, AUTH_VIEWER},
	               {OPERATOR, AUTH_OPERATOR},
	               {ADMIN, AUTH_ADMIN}};
	size_t ntables, nroutes = 0;
	const struct api_route *const *tables = api_route_tables(&ntables);
	for (size_t t = 0; t < ntables; t++) {
		for (const struct api_route *r = tables[t]; r->method; r++) {
			char *path = concrete(r->pattern);
			nroutes++;
			for (size_t c = 0; c < sizeof callers / sizeof callers[0]; c++) {
				struct http h;
				int is_stream = strstr(r->pattern, "/stream") != NULL;
				req_t(&h, r->method, path, callers[c].token,
				      strcmp(r->method, "POST") == 0 ? "{}" : NULL, NULL,
				      is_stream ? 1500 : 0);
				if (r->role == AUTH_NONE) {
					cr_assert(h.status != 401 && h.status != 403,
					          "%s %s open to all: got %ld", r->method, path,
					          h.status);
				} else if (!callers[c].token) {
					cr_assert_eq(h.status, 401, "%s %s without a token: %ld %s",
					             r->method, path, h.status, h.body);
				} else if (callers[c].role < r->role) {
					cr_assert_eq(
					    h.status, 403, "%s %s as %s: %ld %s", r->method, path,
					    auth_role_name(callers[c].role), h.status, h.body);
				} else {
					cr_assert(
					    h.status != 401 && h.status != 403 && h.status != 0,
					    "%s %s as %s: %ld %s", r->method, path,
					    auth_role_name(callers[c].role), h.status, h.body);
				}
				http_free(&h);
			}
			free(path);
		}
	}
	cr_assert_geq(nroutes, 30, "only %zu routes", nroutes);
}

/* ------------------------------------------------------------ whoami, tokens */

Test(api2, whoami)
{
	struct http h;
	req(&h, "GET", "/api/v1/whoami", OPERATOR, NULL);
	expect(&h, 200);
	cr_assert_str_eq(jstr(h.json, "name"), "operator1");
	cr_assert_str_eq(jstr(h.json, "role"), "operator");
	http_free(&h);
	api_stop(g_api);
	g_api = start_api(1, 0, 0);
	req(&h, "GET", "/api/v1/whoami", NULL, NULL);
	expect(&h, 200);
	cr_assert_str_eq(jstr(h.json, "name"), "local");
	cr_assert_str_eq(jstr(h.json, "role"), "admin");
	http_free(&h);
}

Test(api2, tokens_create_list_revoke)
{
	struct http h;
	req(&h, "POST", "/api/v1/tokens", ADMIN, "{\"name\":\"ci\",\"role\":\"operator\"}");
	expect(&h, 201);
	cr_assert_str_eq(jstr(h.json, "role"), "operator");
	char *tok = xstrdup(jstr(h.json, "token"));
	cr_assert(strncmp(tok, "wf_", 3) == 0 && strlen(tok) == 67, "%s", tok);
	http_free(&h);

	req(&h, "GET", "/api/v1/whoami", tok, NULL);
	expect(&h, 200);
	cr_assert_str_eq(jstr(h.json, "name"), "ci");
	http_free(&h);

	req(&h, "POST", "/api/v1/tokens", ADMIN, "{\"name\":\"ci\",\"role\":\"viewer\"}");
	expect(&h, 409);
	http_free(&h);
	req(&h, "POST", "/api/v1/tokens", ADMIN, "{\"name\":\"x\",\"role\":\"root\"}");
	expect(&h, 400);
	cr_assert_str_eq(err_field(&h), "role");
	http_free(&h);

	req(&h, "GET", "/api/v1/tokens", ADMIN, NULL);
	expect(&h, 200);
	cr_assert(!strstr(h.body, "hash") && !strstr(h.body, tok), "%s", h.body);
	json_t *items = json_object_get(h.json, "items");
	cr_assert_eq(json_array_size(items), 4, "%s", h.body);
	http_free(&h);

	req(&h, "DELETE", "/api/v1/tokens/ci", ADMIN, NULL);
	expect(&h, 200);
	http_free(&h);
	/* Refused at once, although the auth cache had it. */
	req(&h, "GET", "/api/v1/whoami", tok, NULL);
	expect(&h, 401);
	http_free(&h);
	req(&h, "GET", "/api/v1/tokens?limit=500", ADMIN, NULL);
	json_t *ci = json_array_get(json_object_get(h.json, "items"), 1);
	cr_assert_str_eq(jstr(ci, "name"), "ci");
	cr_assert(json_is_true(json_object_get(ci, "revoked")), "%s", h.body);
	http_free(&h);
	req(&h, "DELETE", "/api/v1/tokens/nobody", ADMIN, NULL);
	expect(&h, 404);
	http_free(&h);
	cr_assert_eq(sql_int("SELECT count(*) FROM events WHERE kind IN ('token.created', "
	                     "'token.revoked') AND actor = 'token:admin1'"),
	             2);
	free(tok);
}

/* ------------------------------------------------------------ dead letters */

/* Makes task 'first' of a new run dead (second upstream_failed, the run
 * failed) with a dead letter; returns the dead letter id. */
static long long make_dead(long long *run_out)
{
	long long run = trigger("hello");
	char *q = xasprintf(
	    "WITH a AS (UPDATE task_runs SET state = 'dead', attempt = 3, error = 'boom',"
	    "  finished_at = now() WHERE run_id = %lld AND task = 'first' RETURNING id),"
	    " b AS (UPDATE task_runs SET state = 'upstream_failed' WHERE run_id = %lld"
	    "  AND task = 'second'),"
	    " c AS (UPDATE runs SET state = 'failed', finished_at = now() WHERE id = %lld)"
	    " INSERT INTO dead_letters (task_run_id, run_id, workflow_id, task, attempts,"
	    "  last_error) SELECT a.id, %lld, (SELECT id FROM workflows WHERE name = 'hello'),"
	    "  'first', 3, 'boom' FROM a RETURNING id",
	    run, run, run, run);
	long long id = sql_int(q);
	free(q);
	*run_out = run;
	return id;
}

Test(api2, dead_letters_list_retry_drop)
{
	struct http h;
	long long run, run2;
	char path[128], *q;
	submit(hello_yaml);
	long long dl = make_dead(&run);

	req(&h, "GET", "/api/v1/dead-letters?workflow=hello", VIEWER, NULL);
	expect(&h, 200);
	json_t *items = json_object_get(h.json, "items");
	cr_assert_eq(json_array_size(items), 1, "%s", h.body);
	cr_assert_str_eq(jstr(json_array_get(items, 0), "task"), "first");
	cr_assert_str_eq(jstr(json_array_get(items, 0), "last_error"), "boom");
	http_free(&h);

	snprintf(path, sizeof path, "/api/v1/dead-letters/%lld/retry", dl);
	req(&h, "POST", path, VIEWER, NULL);
	expect(&h, 403);
	http_free(&h);
	req(&h, "POST", path, OPERATOR, NULL);
	expect(&h, 200);
	cr_assert_str_eq(jstr(h.json, "state"), "queued");
	cr_assert_eq(json_array_size(json_object_get(h.json, "reset")), 2, "%s", h.body);
	http_free(&h);
	q = xasprintf("SELECT string_agg(task || '=' || state || '/' || max_attempts, ',' ORDER BY "
	              "task) || ' ' || (SELECT state FROM runs WHERE id = %lld) FROM task_runs "
	              "WHERE run_id = %lld",
	              run, run);
	char *v = sql_value(q);
	free(q);
	/* attempt 3 + retries 2 + 1: a fresh budget of three attempts */
	cr_assert_str_eq(v, "first=queued/6,second=pending/1 running");
	free(v);
	v = sql_value("SELECT resolution FROM dead_letters");
	cr_assert_str_eq(v, "retried");
	free(v);
	req(&h, "POST", path, OPERATOR, NULL);
	expect(&h, 409);
	http_free(&h);
	cr_assert_eq(sql_int("SELECT count(*) FROM events WHERE kind = 'dead_letter.retried'"), 1);

	long long dl2 = make_dead(&run2);
	snprintf(path, sizeof path, "/api/v1/dead-letters/%lld/drop", dl2);
	req(&h, "POST", path, OPERATOR, NULL);
	expect(&h, 200);
	cr_assert_str_eq(jstr(h.json, "resolution"), "dropped");
	http_free(&h);
	req(&h, "GET", "/api/v1/dead-letters?state=resolved", VIEWER, NULL);
	cr_assert_eq(json_array_size(json_object_get(h.json, "items")), 2, "%s", h.body);
	http_free(&h);
	req(&h, "GET", "/api/v1/dead-letters", VIEWER, NULL);
	cr_assert_eq(json_array_size(json_object_get(h.json, "items")), 0, "%s", h.body);
	http_free(&h);
	req(&h, "POST", "/api/v1/dead-letters/999/drop", OPERATOR, NULL);
	expect(&h, 404);
	http_free(&h);
	req(&h, "GET", "/api/v1/dead-letters?state=bogus", VIEWER, NULL);
	expect(&h, 400);
	http_free(&h);
}

/* ------------------------------------------------------------ jobs */

Test(api2, job_facade)
{
	struct http h;
	req(&h, "POST", "/api/v1/jobs", OPERATOR,
	    "{\"name\":\"report\",\"cron\":\"0 3 * * *\",\"timezone\":\"Europe/Berlin\","
	    "\"callback_url\":\"https://example.com/hook\",\"priority\":\"high\","
	    "\"payload\":{\"kind\":\"daily\",\"tmpl\":\"${not.a.template}\"}}");
	expect(&h, 201);
	cr_assert_str_eq(jstr(h.json, "job_id"), "report");
	cr_assert(jstr(h.json, "next_fire_time"), "%s", h.body);
	http_free(&h);
	char *dag = sql_value("SELECT dag->'tasks'->0->'step'->>'body' FROM workflow_versions v"
	                      " JOIN workflows w ON w.id = v.workflow_id WHERE w.name = "
	                      "'job-report'");
	/* "$${" is a literal "${" when the engine expands the body. */
	cr_assert_str_eq(dag, "{\"kind\":\"daily\",\"tmpl\":\"$${not.a.template}\"}");
	free(dag);

	req(&h, "GET", "/api/v1/jobs/report/status", VIEWER, NULL);
	expect(&h, 200);
	cr_assert_str_eq(jstr(h.json, "status"), "scheduled");
	cr_assert(json_is_null(json_object_get(h.json, "last_run")), "%s", h.body);
	cr_assert(jstr(h.json, "next_run"), "%s", h.body);
	cr_assert_eq(json_integer_value(json_object_get(h.json, "retry_count")), 0);
	http_free(&h);

	long long run = trigger("job-report");
	char *q = xasprintf("UPDATE task_runs SET attempt = 3 WHERE run_id = %lld", run);
	sql(q);
	free(q);
	req(&h, "GET", "/api/v1/jobs/report/status", VIEWER, NULL);
	cr_assert_eq(json_integer_value(json_object_get(h.json, "retry_count")), 2, "%s", h.body);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(h.json, "last_run"), "id")),
	             run);
	http_free(&h);

	req(&h, "POST", "/api/v1/jobs", OPERATOR,
	    "{\"name\":\"bad\",\"cron\":\"0 3 * *\",\"callback_url\":\"https://x/\"}");
	expect(&h, 400);
	cr_assert_str_eq(err_field(&h), "cron", "%s", h.body);
	http_free(&h);
	req(&h, "POST", "/api/v1/jobs", OPERATOR,
	    "{\"name\":\"bad\",\"cron\":\"0 3 * * *\",\"timezone\":\"Mars/Base\","
	    "\"callback_url\":\"https://x/\"}");
	expect(&h, 400);
	cr_assert_str_eq(err_field(&h), "timezone", "%s", h.body);
	http_free(&h);
	req(&h, "POST", "/api/v1/jobs", OPERATOR,
	    "{\"name\":\"bad\",\"at\":\"2030-01-01T00:00:00Z\",\"callback_url\":\"ftp://x/\"}");
	expect(&h, 400);
	cr_assert_str_eq(err_field(&h), "callback_url", "%s", h.body);
	http_free(&h);
	req(&h, "POST", "/api/v1/jobs", OPERATOR,
	    "{\"name\":\"once\",\"at\":\"2030-01-01T00:00:00Z\",\"callback_url\":\"http://x/\"}");
	expect(&h, 201);
	cr_assert_str_eq(jstr(h.json, "next_fire_time"), "2030-01-01T00:00:00.000Z", "%s", h.body);
	http_free(&h);

	req(&h, "DELETE", "/api/v1/jobs/report", OPERATOR, NULL);
	expect(&h, 200);
	http_free(&h);
	req(&h, "GET", "/api/v1/jobs/report/status", VIEWER, NULL);
	expect(&h, 404);
	http_free(&h);
	req(&h, "DELETE", "/api/v1/jobs/report", OPERATOR, NULL);
	expect(&h, 404);
	http_free(&h);
}

/* ------------------------------------------------------------ rate limit */

Test(api2, rate_limit_429_with_retry_after)
{
	struct http h;
	submit(hello_yaml);
	api_stop(g_api);
	g_api = start_api(0, 1, 3);
	for (int i = 0; i < 3; i++) {
		req(&h, "GET", "/api/v1/whoami", OPERATOR, NULL);
		expect(&h, 200);
		http_free(&h);
	}
	req(&h, "POST", "/api/v1/workflows/hello/runs", OPERATOR, "{}");
	expect(&h, 429);
	char *ra = header(&h, "Retry-After");
	cr_assert(ra && atoi(ra) >= 1, "Retry-After: %s", ra ? ra : "(none)");
	free(ra);
	cr_assert(strstr(jstr(json_object_get(h.json, "error"), "message"), "operator1"), "%s",
	          h.body);
	http_free(&h);
	/* The refused request changed nothing; another token has its own bucket. */
	cr_assert_eq(sql_int("SELECT count(*) FROM runs"), 0);
	req(&h, "GET", "/api/v1/whoami", VIEWER, NULL);
	expect(&h, 200);
	http_free(&h);
	/* Anonymous callers are limited by address. */
	for (int i = 0; i < 3; i++) {
		req(&h, "GET", "/healthz", NULL, NULL);
		http_free(&h);
	}
	req(&h, "GET", "/healthz", NULL, NULL);
	expect(&h, 429);
	http_free(&h);
}

/* ------------------------------------------------------------ SSE */

struct stream {
	pthread_t th;
	char last_id[32];
	const char *query;
	struct sink got;
	pthread_mutex_t lock;
	atomic_int stop;
	long status;
};

static size_t stream_write(char *p, size_t size, size_t n, void *ud)
{
	struct stream *s = ud;
	if (atomic_load(&s->stop))
		return 0;
	pthread_mutex_lock(&s->lock);
	sink_write(p, size, n, &s->got);
	pthread_mutex_unlock(&s->lock);
	return size * n;
}

static void *stream_main(void *ud)
{
	struct stream *s = ud;
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	char lei[64];
	char *url = xasprintf("%s/api/v1/events%s", g_base, s->query);
	hdrs = curl_slist_append(hdrs, "Authorization: Bearer " VIEWER);
	hdrs = curl_slist_append(hdrs, "Accept: text/event-stream");
	if (s->last_id[0]) {
		snprintf(lei, sizeof lei, "Last-Event-ID: %s", s->last_id);
		hdrs = curl_slist_append(hdrs, lei);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, stream_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 8000L);
	curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &s->status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	free(url);
	return NULL;
}

static void stream_start(struct stream *s, const char *query, const char *last_id)
{
	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->lock, NULL);
	s->query = query;
	if (last_id)
		snprintf(s->last_id, sizeof s->last_id, "%s", last_id);
	cr_assert_eq(pthread_create(&s->th, NULL, stream_main, s), 0);
}

/* Waits up to ms for text in the stream. Returns 1 when seen. */
static int stream_wait(struct stream *s, const char *text, int ms)
{
	int64_t end = mono_ms() + ms;
	while (mono_ms() < end) {
		pthread_mutex_lock(&s->lock);
		int seen = s->got.data && strstr(s->got.data, text);
		pthread_mutex_unlock(&s->lock);
		if (seen)
			return 1;
		usleep(20000);
	}
	return 0;
}

static void stream_end(struct stream *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->th, NULL);
	free(s->got.data);
	pthread_mutex_destroy(&s->lock);
}

Test(api2, sse_live_and_resume)
{
	struct stream s;
	struct http h;
	submit(hello_yaml);
	stream_start(&s, "/stream?workflow=hello", NULL);
	cr_assert(stream_wait(&s, ": connected", 3000), "no stream opened");
	int64_t t0 = mono_ms();
	req(&h, "POST", "/api/v1/workflows/hello/pause", OPERATOR, NULL);
	expect(&h, 200);
	http_free(&h);
	cr_assert(stream_wait(&s, "event: workflow.paused", 2000), "no event within 2 s: %s",
	          s.got.data ? s.got.data : "");
	cr_log_info("SSE event after %lld ms", (long long)(mono_ms() - t0));
	cr_assert(strstr(s.got.data, "\"workflow\":\"hello\""), "%s", s.got.data);
	cr_assert(strstr(s.got.data, "\"actor\":\"token:operator1\""), "%s", s.got.data);
	stream_end(&s);

	long long id = sql_int("SELECT id FROM events WHERE kind = 'workflow.paused'");
	char last[32], want[64];
	snprintf(last, sizeof last, "%lld", id - 1);
	snprintf(want, sizeof want, "id: %lld\nevent: workflow.paused", id);
	/* Accept: text/event-stream on the list URL streams too. */
	stream_start(&s, "", last);
	cr_assert(stream_wait(&s, want, 2000), "resume missed the event: %s",
	          s.got.data ? s.got.data : "");
	stream_end(&s);

	/* Filters: another workflow's stream does not see it. */
	stream_start(&s, "/stream?after=0&workflow=other", NULL);
	cr_assert(stream_wait(&s, ": connected", 3000));
	cr_assert_not(stream_wait(&s, "workflow.paused", 1500), "%s", s.got.data);
	stream_end(&s);
}

Test(api2, sse_stream_limit)
{
	struct http h;
	api_stop(g_api);
	char err[256];
	struct api_opts o = {.listen = "127.0.0.1:0",
	                     .conninfo = g_tdb.conninfo,
	                     .engine_id = "t2",
	                     .threads = 2,
	                     .max_streams = 1};
	g_api = api_start(&o, err, sizeof err);
	cr_assert(g_api, "%s", err);
	snprintf(g_base, sizeof g_base, "http://127.0.0.1:%d", api_port(g_api));
	struct stream s;
	stream_start(&s, "/stream", NULL);
	cr_assert(stream_wait(&s, ": connected", 3000));
	req_t(&h, "GET", "/api/v1/events/stream", VIEWER, NULL, NULL, 3000);
	expect(&h, 503);
	http_free(&h);
	stream_end(&s);
}

/* ------------------------------------------------------------ reads */

Test(api2, events_list_and_filters)
{
	struct http h;
	submit(hello_yaml);
	submit(cron_yaml);
	trigger("hello");
	req(&h, "GET", "/api/v1/events?workflow=hello&limit=500", VIEWER, NULL);
	expect(&h, 200);
	json_t *items = json_object_get(h.json, "items");
	cr_assert_gt(json_array_size(items), 0, "%s", h.body);
	size_t i;
	json_t *e;
	long long prev = 0;
	json_array_foreach(items, i, e)
	{
		cr_assert_str_eq(jstr(e, "workflow"), "hello");
		long long id = json_integer_value(json_object_get(e, "id"));
		cr_assert_gt(id, prev);
		prev = id;
		cr_assert(jstr(e, "kind") && jstr(e, "at"));
	}
	http_free(&h);
	req(&h, "GET", "/api/v1/events?limit=1", VIEWER, NULL);
	cr_assert(json_is_integer(json_object_get(h.json, "next_cursor")), "%s", h.body);
	http_free(&h);
	req(&h, "GET", "/api/v1/events?after=x", VIEWER, NULL);
	expect(&h, 400);
	http_free(&h);
}

Test(api2, task_runs_attempts_schedules)
{
	struct http h;
	char path[160], *q;
	submit(hello_yaml);
	submit(cron_yaml);
	long long run = trigger("hello");
	q = xasprintf("INSERT INTO attempts (task_run_id, attempt, executor_id, state, output, "
	              "error) SELECT id, 1, 'x1', 'failed', 'the output', 'exit 1' FROM task_runs "
	              "WHERE run_id = %lld AND task = 'first'",
	              run);
	sql(q);
	free(q);
	snprintf(path, sizeof path, "/api/v1/runs/%lld/tasks/first", run);
	req(&h, "GET", path, VIEWER, NULL);
	expect(&h, 200);
	cr_assert_str_eq(jstr(h.json, "task"), "first");
	json_t *att = json_object_get(h.json, "attempts");
	cr_assert_eq(json_array_size(att), 1, "%s", h.body);
	cr_assert_null(json_object_get(json_array_get(att, 0), "output"));
	http_free(&h);
	snprintf(path, sizeof path, "/api/v1/runs/%lld/tasks/first/attempts/1", run);
	req(&h, "GET", path, VIEWER, NULL);
	expect(&h, 200);
	cr_assert_str_eq(jstr(h.json, "output"), "the output");
	cr_assert_str_eq(jstr(h.json, "error"), "exit 1");
	http_free(&h);
	snprintf(path, sizeof path, "/api/v1/runs/%lld/tasks/first/attempts/2", run);
	req(&h, "GET", path, VIEWER, NULL);
	expect(&h, 404);
	http_free(&h);
	/* attempt 2 claimed and running: it lives on its task run (no attempts
	 * row until it ends) and shows as the running attempt */
	q = xasprintf("UPDATE task_runs SET state = 'running', attempt = 2, executor_id = 'x2',"
	              " attempt_claimed_at = now(), lease_expires_at = now() + interval '30 s'"
	              " WHERE run_id = %lld AND task = 'first'",
	              run);
	sql(q);
	free(q);
	snprintf(path, sizeof path, "/api/v1/runs/%lld/tasks/first", run);
	req(&h, "GET", path, VIEWER, NULL);
	expect(&h, 200);
	att = json_object_get(h.json, "attempts");
	cr_assert_eq(json_array_size(att), 2, "%s", h.body);
	cr_assert_str_eq(jstr(json_array_get(att, 1), "state"), "running");
	cr_assert_str_eq(jstr(json_array_get(att, 1), "executor_id"), "x2");
	cr_assert(json_is_string(json_object_get(json_array_get(att, 1), "claimed_at")), "%s",
	          h.body);
	http_free(&h);
	snprintf(path, sizeof path, "/api/v1/runs/%lld/tasks/first/attempts/2", run);
	req(&h, "GET", path, VIEWER, NULL);
	expect(&h, 200);
	cr_assert_str_eq(jstr(h.json, "state"), "running");
	http_free(&h);
	snprintf(path, sizeof path, "/api/v1/runs/%lld", run);
	req(&h, "GET", path, VIEWER, NULL);
	expect(&h, 200);
	{
		json_t *trs = json_object_get(h.json, "task_runs"), *tr, *running = NULL;
		size_t i;
		json_array_foreach(trs, i, tr)
		{
			if (strcmp(jstr(tr, "task"), "first") == 0)
				running = json_array_get(json_object_get(tr, "attempts"), 1);
		}
		cr_assert(running, "%s", h.body);
		cr_assert_str_eq(jstr(running, "state"), "running");
		cr_assert_str_eq(jstr(running, "executor_id"), "x2");
	}
	http_free(&h);
	snprintf(path, sizeof path, "/api/v1/runs/%lld/tasks/nope", run);
	req(&h, "GET", path, VIEWER, NULL);
	expect(&h, 404);
	http_free(&h);

	req(&h, "GET", "/api/v1/schedules", VIEWER, NULL);
	expect(&h, 200);
	json_t *items = json_object_get(h.json, "items");
	cr_assert_eq(json_array_size(items), 1, "%s", h.body);
	json_t *s = json_array_get(items, 0);
	cr_assert_str_eq(jstr(s, "workflow"), "nightly");
	cr_assert_str_eq(jstr(s, "expr"), "0 2 * * *");
	cr_assert_str_eq(jstr(s, "timezone"), "Europe/Berlin");
	cr_assert(json_is_true(json_object_get(s, "enabled")));
	http_free(&h);
}

Test(api2, run_now_and_soft_delete)
{
	struct http h;
	submit(cron_yaml);
	req(&h, "POST", "/api/v1/workflows/nightly/run-now", OPERATOR, NULL);
	expect(&h, 201);
	http_free(&h);
	cr_assert_eq(sql_int("SELECT count(*) FROM runs WHERE trigger = 'manual'"), 1);
	req(&h, "DELETE", "/api/v1/workflows/nightly", OPERATOR, NULL);
	expect(&h, 403);
	http_free(&h);
	req(&h, "DELETE", "/api/v1/workflows/nightly", ADMIN, NULL);
	expect(&h, 200);
	http_free(&h);
	req(&h, "GET", "/api/v1/workflows", VIEWER, NULL);
	cr_assert_eq(json_array_size(json_object_get(h.json, "items")), 0, "%s", h.body);
	http_free(&h);
	req(&h, "GET", "/api/v1/schedules", VIEWER, NULL);
	cr_assert_eq(json_array_size(json_object_get(h.json, "items")), 0, "%s", h.body);
	http_free(&h);
	cr_assert_eq(sql_int("SELECT count(*) FROM schedules WHERE enabled"), 0);
	req(&h, "DELETE", "/api/v1/workflows/nightly", ADMIN, NULL);
	expect(&h, 404);
	http_free(&h);
	/* Submitting it again revives it. */
	submit(cron_yaml);
	req(&h, "GET", "/api/v1/workflows/nightly", VIEWER, NULL);
	expect(&h, 200);
	http_free(&h);
}

/* ------------------------------------------------------------ retention */

Test(api2, retention_deletes_only_old_finished_runs)
{
	submit(hello_yaml);
	long long old_done = trigger("hello"), old_running = trigger("hello"),
	          new_done = trigger("hello");
	char *q = xasprintf("UPDATE runs SET state = 'succeeded', finished_at = now() - interval "
	                    "'40 days' WHERE id = %lld",
	                    old_done);
	sql(q);
	free(q);
	q = xasprintf("UPDATE runs SET created_at = now() - interval '40 days' WHERE id = %lld",
	              old_running);
	sql(q);
	free(q);
	q = xasprintf("UPDATE runs SET state = 'failed', finished_at = now() - interval '1 day'"
	              " WHERE id = %lld",
	              new_done);
	sql(q);
	free(q);
	/* events are swept oldest first by id, stopping at the first young
	 * one: age the old run's events and everything written before them */
	q = xasprintf("UPDATE events SET at = now() - interval '40 days' WHERE id <= (SELECT "
	              "max(id) FROM events WHERE run_id = %lld)",
	              old_done);
	sql(q);
	free(q);
	/* an attempt and a dead letter of the old run, an attempt of the young
	 * one: the sweep takes the old run's, nothing of the young one's */
	q = xasprintf("INSERT INTO attempts (task_run_id, attempt, state) SELECT id, 1, 'failed'"
	              " FROM task_runs WHERE run_id IN (%lld, %lld)",
	              old_done, new_done);
	sql(q);
	free(q);
	q = xasprintf("INSERT INTO dead_letters (task_run_id, run_id, workflow_id, task, attempts)"
	              " SELECT tr.id, tr.run_id, r.workflow_id, tr.task, 1 FROM task_runs tr"
	              " JOIN runs r ON r.id = tr.run_id WHERE tr.run_id = %lld",
	              old_done);
	sql(q);
	free(q);
	long long events_before = sql_int("SELECT count(*) FROM events");
	long long old_events = sql_int("SELECT count(*) FROM events WHERE at < now() - interval "
	                               "'30 days'");
	cr_assert_gt(old_events, 0);
	int64_t keep;
	cr_assert_eq(retention_parse("30d", &keep), 0);
	cr_assert_eq(keep, 30LL * 86400000);
	cr_assert_eq(retention_parse("bogus", &keep), -1);
	cr_assert_eq(retention_parse("off", &keep), 0);
	cr_assert_eq(keep, 0);
	int n = retention_sweep(g_tdb.s, 30LL * 86400000, 1);
	cr_assert_eq(n, 1 + old_events, "deleted %d", n);
	q = xasprintf("SELECT string_agg(id::text, ',' ORDER BY id) FROM runs");
	char *v = sql_value(q);
	free(q);
	char want[64];
	snprintf(want, sizeof want, "%lld,%lld", old_running, new_done);
	cr_assert_str_eq(v, want);
	free(v);
	q = xasprintf("SELECT count(*) FROM task_runs WHERE run_id = %lld", old_done);
	cr_assert_eq(sql_int(q), 0);
	free(q);
	q = xasprintf("SELECT count(*) FROM task_runs WHERE run_id = %lld", new_done);
	cr_assert_gt(sql_int(q), 0);
	free(q);
	cr_assert_eq(sql_int("SELECT count(*) FROM attempts_all a WHERE NOT EXISTS"
	                     " (SELECT 1 FROM task_runs tr WHERE tr.id = a.task_run_id)"),
	             0);
	q = xasprintf(
	    "SELECT count(*) FROM attempts_all a JOIN task_runs tr ON tr.id = a.task_run_id"
	    " WHERE tr.run_id = %lld",
	    new_done);
	cr_assert_gt(sql_int(q), 0);
	free(q);
	q = xasprintf("SELECT count(*) FROM dead_letters WHERE run_id = %lld", old_done);
	cr_assert_eq(sql_int(q), 0);
	free(q);
	cr_assert_eq(sql_int("SELECT count(*) FROM events"), events_before - old_events);
	cr_assert_eq(retention_sweep(g_tdb.s, 30LL * 86400000, 100), 0);
}
