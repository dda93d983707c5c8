/* The notifier against a real PostgreSQL, a real HTTP receiver
 * (libmicrohttpd, in the test) and a tiny SMTP sink (a socket thread
 * speaking just enough SMTP). Passes run synchronously with
 * notify_run_once unless a test is about the thread. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "engine/notify.h"
#include "testdb.h"
#include "util.h"
#include "xalloc.h"

#define SECRET "s3cret-for-tests"

static struct testdb g_tdb;

/* ------------------------------------------------------------ database */

static char *q(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *q(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *sql = xvasprintf(fmt, ap);
	va_end(ap);
	char *v = testdb_value(&g_tdb, sql);
	cr_assert(v, "%s: %s", sql, store_error(g_tdb.s));
	free(sql);
	return v;
}

static long long qi(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long qi(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *sql = xvasprintf(fmt, ap);
	va_end(ap);
	char *v = testdb_value(&g_tdb, sql);
	cr_assert(v, "%s: %s", sql, store_error(g_tdb.s));
	long long n = strtoll(v, NULL, 10);
	free(v);
	free(sql);
	return n;
}

/* A workflow "nightly" (version 1 with the given on_failure JSON), a run
 * in state with the given deadline SQL expression, and three task runs:
 * one succeeded, one dead with an error, one upstream_failed. */
static long long make_run(const char *on_failure, const char *state, const char *deadline)
{
	long long wid = qi("INSERT INTO workflows (name, current_version) VALUES ('nightly', 1)"
	                   " ON CONFLICT (name) DO UPDATE SET paused = false RETURNING id");
	free(q("INSERT INTO workflow_versions (workflow_id, version, hash, source, dag)"
	       " VALUES (%lld, 1, 'h', 'name: nightly', jsonb_build_object('name', 'nightly',"
	       " 'on_failure', '%s'::jsonb)) ON CONFLICT DO NOTHING",
	       wid, on_failure));
	long long run = qi("INSERT INTO runs (workflow_id, version, state, trigger, started_at,"
	                   " finished_at, deadline_at) VALUES (%lld, 1, '%s', 'schedule',"
	                   " now() - interval '1 hour', CASE WHEN '%s' IN ('failed', 'succeeded')"
	                   " THEN now() END, %s) RETURNING id",
	                   wid, state, state, deadline);
	free(q("INSERT INTO task_runs (run_id, task, state, attempt, error) VALUES"
	       " (%lld, 'prep', 'succeeded', 1, NULL), (%lld, 'extract', 'dead', 3, 'exit code 1'),"
	       " (%lld, 'load', 'upstream_failed', 0, 'an upstream task failed')",
	       run, run, run));
	return run;
}

static long long add_outbox(const char *kind, const char *target, const char *payload)
{
	return qi("INSERT INTO outbox (kind, target, payload) VALUES ('%s', '%s', '%s')"
	          " RETURNING id",
	          kind, target, payload);
}

/* ------------------------------------------------------------ HTTP receiver */

#define MAX_REQS 64
struct req {
	char path[128], delivery[32], event[64], sig[128], ts[32], ctype[64];
	char *body;
};
static struct {
	struct MHD_Daemon *d;
	int port;
	pthread_mutex_t mu;
	struct req reqs[MAX_REQS];
	int n;
	int statuses[8]; /* replies in order; then 200 */
	int nstatuses;
} g_rx = {.mu = PTHREAD_MUTEX_INITIALIZER};

struct upload {
	struct buf body;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **state)
{
	struct upload *u = *state;
	if (!u) {
		u = xcalloc(1, sizeof *u);
		buf_init(&u->body, 1 << 20);
		*state = u;
		return MHD_YES;
	}
	if (*upload_size) {
		cr_assert(buf_append(&u->body, upload_data, *upload_size) == 0);
		*upload_size = 0;
		return MHD_YES;
	}
	int status = 200;
	pthread_mutex_lock(&g_rx.mu);
	if (g_rx.n < MAX_REQS) {
		struct req *r = &g_rx.reqs[g_rx.n];
		const char *h;
		snprintf(r->path, sizeof r->path, "%s", url);
#define HDR(field, name)                                           \
	h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name); \
	snprintf(r->field, sizeof r->field, "%s", h ? h : "");
		HDR(delivery, "X-WF-Delivery")
		HDR(event, "X-WF-Event")
		HDR(sig, "X-WF-Signature")
		HDR(ts, "X-WF-Timestamp")
		HDR(ctype, "Content-Type")
#undef HDR
		r->body = u->body.data ? xstrdup(u->body.data) : xstrdup("");
		if (g_rx.n < g_rx.nstatuses)
			status = g_rx.statuses[g_rx.n];
		g_rx.n++;
	}
	pthread_mutex_unlock(&g_rx.mu);
	const char *text = status == 200 ? "ok" : "boom";
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode toe)
{
	struct upload *u = *state;
	if (u) {
		buf_release(&u->body);
		free(u);
	}
	*state = NULL;
}

static void rx_start(void)
{
	g_rx.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
	                          NULL, on_request, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
	                          NULL, MHD_OPTION_SOCK_ADDR, NULL, MHD_OPTION_END);
	cr_assert(g_rx.d, "cannot start the HTTP receiver");
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(g_rx.d, MHD_DAEMON_INFO_BIND_PORT);
	g_rx.port = di->port;
}

static void rx_stop(void)
{
	if (g_rx.d)
		MHD_stop_daemon(g_rx.d);
	g_rx.d = NULL;
	for (int i = 0; i < g_rx.n; i++)
		free(g_rx.reqs[i].body);
	g_rx.n = 0;
}

static int rx_count(void)
{
	pthread_mutex_lock(&g_rx.mu);
	int n = g_rx.n;
	pthread_mutex_unlock(&g_rx.mu);
	return n;
}

static char *url(const char *path)
{
	return xasprintf("http://127.0.0.1:%d%s", g_rx.port, path);
}

static void expect_signature(const struct req *r, const char *secret)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char hex[2 * sizeof mac + 1], want[80];
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)r->body, strlen(r->body));
	crypto_auth_hmacsha256_final(&st, mac);
	hex_encode(mac, sizeof mac, hex);
	snprintf(want, sizeof want, "sha256=%s", hex);
	cr_expect_str_eq(r->sig, want, "signature of %s", r->body);
}

/* ------------------------------------------------------------ notifier */

static void opts(struct notify_opts *o)
{
	notify_opts_init(o);
	o->conninfo = g_tdb.conninfo;
	o->engine_id = "test-engine";
	o->timeout_ms = 3000;
	o->backoff_min_ms = 20;
	o->backoff_max_ms = 40;
	o->alert_interval_ms = 0;
	o->slots_grace_ms = 0;
	o->public_url = "https://wf.example.com/";
}

static struct notifier *new_notifier(const struct notify_opts *o)
{
	char err[256] = "";
	struct notifier *n = notify_new(o, err, sizeof err);
	cr_assert(n, "notify_new: %s", err);
	return n;
}

static int pass(struct notifier *n)
{
	int r = notify_run_once(n);
	cr_assert(r >= 0, "notify_run_once failed");
	return r;
}

/* Runs passes until the row is delivered or given up (at most ~5 s). */
static void pass_until_settled(struct notifier *n, long long id)
{
	for (int i = 0; i < 250; i++) {
		if (qi("SELECT count(*) FROM outbox WHERE id = %lld AND (delivered_at IS NOT NULL"
		       " OR gave_up_at IS NOT NULL)",
		       id))
			return;
		(void)pass(n);
		sleep_ms(20);
	}
	cr_assert_fail("outbox row %lld was neither delivered nor given up", id);
}

static void setup(void)
{
	(void)testdb_open(&g_tdb);
	cr_assert(sodium_init() >= 0);
	setenv("WF_WEBHOOK_SECRET", SECRET, 1);
	unsetenv("WF_PUBLIC_URL");
	unsetenv("WF_SMTP_USER");
	rx_start();
}

static void teardown(void)
{
	rx_stop();
	testdb_close(&g_tdb);
}

TestSuite(notify, .init = setup, .fini = teardown, .timeout = 60);

Test(notify, webhook_is_signed_enriched_and_marked_delivered)
{
	struct notify_opts o;
	opts(&o);
	struct notifier *n = new_notifier(&o);
	long long run = make_run("[]", "failed", "NULL");
	char *hook = url("/hook");
	char *payload =
	    xasprintf("{\"event\":\"run.failed\",\"workflow\":\"nightly\",\"run_id\":%lld,"
	              "\"state\":\"failed\"}",
	              run);
	long long id = add_outbox("webhook", hook, payload);

	cr_assert_eq(pass(n), 1);
	cr_assert_eq(rx_count(), 1);
	struct req *r = &g_rx.reqs[0];
	cr_expect_str_eq(r->path, "/hook");
	cr_expect_eq(strtoll(r->delivery, NULL, 10), id);
	cr_expect_str_eq(r->event, "run.failed");
	cr_expect_str_eq(r->ctype, "application/json");
	cr_expect(llabs(strtoll(r->ts, NULL, 10) - (long long)(wall_ms() / 1000)) < 60);
	expect_signature(r, SECRET);

	json_t *b = json_loads(r->body, 0, NULL);
	cr_assert(b, "body is not JSON: %s", r->body);
	cr_expect_str_eq(json_string_value(json_object_get(b, "workflow")), "nightly");
	cr_expect_eq(json_integer_value(json_object_get(b, "run_id")), run);
	cr_expect(json_is_string(json_object_get(b, "started_at")), "started_at in %s", r->body);
	cr_expect(json_is_string(json_object_get(b, "finished_at")));
	cr_expect_eq(json_integer_value(json_object_get(b, "failed_tasks_total")), 2);
	json_t *ft = json_array_get(json_object_get(b, "failed_tasks"), 0);
	cr_expect_str_eq(json_string_value(json_object_get(ft, "task")), "extract");
	cr_expect_str_eq(json_string_value(json_object_get(ft, "error")), "exit code 1");
	char *want_url = xasprintf("https://wf.example.com/#/runs/%lld", run);
	cr_expect_str_eq(json_string_value(json_object_get(b, "url")), want_url);
	json_decref(b);

	cr_expect_eq(qi("SELECT count(*) FROM outbox WHERE id = %lld AND delivered_at IS NOT NULL"
	                " AND attempts = 1 AND last_error IS NULL",
	                id),
	             1);
	/* the enriched payload was stored, so a retry would send the same body */
	cr_expect_eq(
	    qi("SELECT count(*) FROM outbox WHERE id = %lld AND payload ? 'failed_tasks'", id), 1);
	cr_expect_eq(pass(n), 0, "a delivered row is not sent again");
	cr_expect_eq(rx_count(), 1);
	free(want_url);
	free(payload);
	free(hook);
	notify_stop(n);
}

Test(notify, unsigned_without_a_secret_and_secret_file_is_read)
{
	struct notify_opts o;
	opts(&o);
	unsetenv("WF_WEBHOOK_SECRET");
	struct notifier *n = new_notifier(&o);
	char *hook = url("/plain");
	add_outbox("webhook", hook, "{\"event\":\"test\"}");
	cr_assert_eq(pass(n), 1);
	cr_assert_eq(rx_count(), 1);
	cr_expect_str_eq(g_rx.reqs[0].sig, "");
	notify_stop(n);

	char path[] = "/tmp/wf-secret-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert(write(fd, "from-a-file\n", 12) == 12);
	close(fd);
	o.webhook_secret_file = path;
	n = new_notifier(&o);
	add_outbox("webhook", hook, "{\"event\":\"test\"}");
	cr_assert_eq(pass(n), 1);
	cr_assert_eq(rx_count(), 2);
	expect_signature(&g_rx.reqs[1], "from-a-file");
	notify_stop(n);
	unlink(path);
	free(hook);
}

Test(notify, failures_retry_with_backoff_until_delivered)
{
	g_rx.statuses[0] = 500;
	g_rx.statuses[1] = 500;
	g_rx.statuses[2] = 200;
	g_rx.nstatuses = 3;
	struct notify_opts o;
	opts(&o);
	o.backoff_min_ms = 200;
	o.backoff_max_ms = 200;
	struct notifier *n = new_notifier(&o);
	char *hook = url("/flaky");
	long long id = add_outbox("webhook", hook, "{\"event\":\"run.failed\",\"run_id\":999999}");

	cr_assert_eq(pass(n), 1);
	cr_expect_eq(qi("SELECT attempts FROM outbox WHERE id = %lld", id), 1);
	char *err = q("SELECT last_error FROM outbox WHERE id = %lld", id);
	cr_expect_str_eq(err, "HTTP 500: boom");
	free(err);
	/* backoff: not due again at once ([100, 200] ms with jitter) */
	cr_expect_eq(qi("SELECT count(*) FROM outbox WHERE id = %lld AND delivered_at IS NULL"
	                " AND available_at > now() + interval '50 ms'",
	                id),
	             1);
	cr_expect_eq(pass(n), 0);
	pass_until_settled(n, id);
	cr_assert_eq(rx_count(), 3);
	for (int i = 0; i < 3; i++)
		cr_expect_eq(strtoll(g_rx.reqs[i].delivery, NULL, 10), id, "same delivery id");
	cr_expect_str_eq(g_rx.reqs[0].body, g_rx.reqs[2].body, "every try sends the same body");
	cr_expect_eq(qi("SELECT count(*) FROM outbox WHERE id = %lld AND delivered_at IS NOT NULL"
	                " AND attempts = 3 AND last_error IS NULL",
	                id),
	             1);
	free(hook);
	notify_stop(n);
}

Test(notify, gives_up_after_max_attempts_and_keeps_the_row)
{
	for (int i = 0; i < 8; i++)
		g_rx.statuses[i] = 503;
	g_rx.nstatuses = 8;
	struct notify_opts o;
	opts(&o);
	o.max_attempts = 3;
	struct notifier *n = new_notifier(&o);
	char *hook = url("/down");
	long long id = add_outbox("webhook", hook, "{\"event\":\"x\"}");
	long long bad = add_outbox("webhook", "ftp://example.com/x", "{\"event\":\"x\"}");
	pass_until_settled(n, id);
	pass_until_settled(n, bad);
	cr_expect_eq(rx_count(), 3);
	char *err = q("SELECT attempts || '|' || last_error FROM outbox WHERE id = %lld"
	              " AND delivered_at IS NULL AND gave_up_at IS NOT NULL",
	              id);
	cr_expect_str_eq(err, "3|gave up after 3 attempts: HTTP 503: boom");
	free(err);
	err = q("SELECT attempts || '|' || last_error FROM outbox WHERE id = %lld"
	        " AND gave_up_at IS NOT NULL",
	        bad);
	cr_expect_str_eq(
	    err, "1|gave up after 1 attempt: not an http or https URL: ftp://example.com/x");
	free(err);
	sleep_ms(100);
	cr_expect_eq(pass(n), 0, "given-up rows are not claimed again");
	free(hook);
	notify_stop(n);
}

Test(notify, a_notifier_killed_after_its_claim_only_delays_the_delivery)
{
	struct notify_opts o;
	opts(&o);
	o.lease_ms = 500;
	o.test_stop_after_claim = 1;
	struct notifier *dead = new_notifier(&o);
	o.test_stop_after_claim = 0;
	struct notifier *alive = new_notifier(&o);
	char *hook = url("/once");
	long long id = add_outbox("webhook", hook, "{\"event\":\"run.failed\"}");

	cr_assert_eq(pass(dead), 1, "the first notifier claims the row");
	notify_stop(dead); /* "killed": it never delivers nor releases */
	cr_expect_eq(pass(alive), 0, "the lease keeps the row from others");
	cr_expect_eq(rx_count(), 0);
	sleep_ms(600);
	cr_expect_eq(pass(alive), 1, "after the lease another notifier delivers it");
	cr_expect_eq(pass(alive), 0);
	cr_assert_eq(rx_count(), 1, "delivered exactly once");
	cr_expect_eq(strtoll(g_rx.reqs[0].delivery, NULL, 10), id);
	cr_expect_eq(qi("SELECT count(*) FROM outbox WHERE id = %lld AND delivered_at IS NOT NULL"
	                " AND attempts = 1",
	                id),
	             1);
	free(hook);
	notify_stop(alive);
}

Test(notify, missed_deadline_alerts_once_to_on_failure_and_alert_targets)
{
	char *wf_hook = url("/wf-failure"), *alert_hook = url("/alerts");
	char *onf = xasprintf("{\"webhook\": \"%s\"}", wf_hook);
	long long late = make_run(onf, "running", "now() - interval '1 second'");
	long long early = make_run(onf, "running", "now() + interval '1 hour'");
	long long done = make_run(onf, "succeeded", "now() - interval '1 hour'");
	struct notify_opts o;
	opts(&o);
	o.alert_webhook = alert_hook;
	struct notifier *a = new_notifier(&o), *b = new_notifier(&o);

	cr_assert_eq(pass(a), 2, "two alert rows delivered in the same pass");
	cr_expect_eq(pass(b), 0, "a second engine does not alert again");
	cr_expect_eq(pass(a), 0);
	cr_assert_eq(rx_count(), 2);
	int seen_wf = 0, seen_alert = 0;
	for (int i = 0; i < 2; i++) {
		struct req *r = &g_rx.reqs[i];
		cr_expect_str_eq(r->event, "run.deadline_missed");
		seen_wf += strcmp(r->path, "/wf-failure") == 0;
		seen_alert += strcmp(r->path, "/alerts") == 0;
		json_t *j = json_loads(r->body, 0, NULL);
		cr_expect_eq(json_integer_value(json_object_get(j, "run_id")), late);
		cr_expect(json_is_string(json_object_get(j, "deadline_at")));
		json_decref(j);
		expect_signature(r, SECRET);
	}
	cr_expect_eq(seen_wf, 1);
	cr_expect_eq(seen_alert, 1);
	cr_expect_eq(qi("SELECT count(*) FROM runs WHERE deadline_alerted"), 1);
	cr_expect_eq(qi("SELECT count(*) FROM runs WHERE id = %lld AND deadline_alerted", late), 1);
	cr_expect_eq(qi("SELECT count(*) FROM events WHERE kind = 'run.deadline_missed'"
	                " AND run_id = %lld",
	                late),
	             1);
	cr_expect_eq(
	    qi("SELECT count(*) FROM outbox WHERE dedup_key = 'run.deadline_missed:%lld'", late),
	    2);
	(void)early;
	(void)done;
	free(onf);
	free(wf_hook);
	free(alert_hook);
	notify_stop(a);
	notify_stop(b);
}

static void add_dead_letters(long long run, int count)
{
	for (int i = 0; i < count; i++)
		free(q("INSERT INTO dead_letters (task_run_id, run_id, workflow_id, task, attempts,"
		       " last_error) SELECT id, run_id, 1, task, 3, 'boom' FROM task_runs"
		       " WHERE run_id = %lld AND task = 'extract'",
		       run));
}

Test(notify, dlq_alert_fires_once_per_crossing_and_rearms)
{
	char *alert_hook = url("/alerts");
	long long run = make_run("[]", "failed", "NULL");
	struct notify_opts o;
	opts(&o);
	o.alert_dlq = 1;
	o.alert_webhook = alert_hook;
	struct notifier *a = new_notifier(&o), *b = new_notifier(&o);

	add_dead_letters(run, 1);
	cr_expect_eq(pass(a), 0, "1 open dead letter is not over 1");
	add_dead_letters(run, 1);
	cr_expect_eq(pass(a), 1, "2 are: one alert");
	cr_expect_eq(pass(b), 0, "the other engine sees it fired");
	add_dead_letters(run, 3);
	cr_expect_eq(pass(a), 0, "still over: no new alert");
	cr_assert_eq(rx_count(), 1);
	cr_expect_str_eq(g_rx.reqs[0].event, "alert.dlq_over_threshold");
	json_t *j = json_loads(g_rx.reqs[0].body, 0, NULL);
	cr_expect_eq(json_integer_value(json_object_get(j, "value")), 2);
	cr_expect_eq(json_integer_value(json_object_get(j, "threshold")), 1);
	cr_expect_str_eq(json_string_value(json_object_get(j, "url")),
	                 "https://wf.example.com/#/dead-letters");
	json_decref(j);

	free(q("UPDATE dead_letters SET resolved_at = now(), resolution = 'dropped'"));
	cr_expect_eq(pass(b), 0, "back under: re-armed, nothing sent");
	cr_expect_eq(qi("SELECT count(*) FROM notify_alerts WHERE name = 'dlq' AND NOT firing"), 1);
	add_dead_letters(run, 2);
	cr_expect_eq(pass(b), 1, "crossing again alerts again");
	cr_expect_eq(rx_count(), 2);
	cr_expect_eq(qi("SELECT count(*) FROM outbox WHERE dedup_key LIKE 'alert.dlq%%'"), 2);
	cr_expect_eq(qi("SELECT count(*) FROM events WHERE kind = 'alert.dlq_over_threshold'"), 2);
	free(alert_hook);
	notify_stop(a);
	notify_stop(b);
}

Test(notify, slots_alert_when_online_slots_drop_below_minimum)
{
	char *alert_hook = url("/alerts");
	struct notify_opts o;
	opts(&o);
	o.alert_min_slots = 4;
	o.alert_webhook = alert_hook;
	struct notifier *n = new_notifier(&o);
	free(q("INSERT INTO executors (id, endpoint, slots, state) VALUES"
	       " ('a', 'tcp://x:1', 2, 'online'), ('b', 'tcp://x:2', 2, 'online')"));
	cr_expect_eq(pass(n), 0, "4 slots: fine");
	free(q("UPDATE executors SET state = 'lost' WHERE id = 'b'"));
	cr_expect_eq(pass(n), 1);
	cr_expect_eq(pass(n), 0);
	cr_assert_eq(rx_count(), 1);
	cr_expect_str_eq(g_rx.reqs[0].event, "alert.executor_slots_low");
	cr_expect(strstr(g_rx.reqs[0].body, "\"value\":2"), "%s", g_rx.reqs[0].body);
	free(alert_hook);
	notify_stop(n);
}

/* ------------------------------------------------------------ SMTP sink */

static struct {
	int fd, port;
	pthread_t th;
	pthread_mutex_t mu;
	struct buf transcript; /* client lines as received */
	int done;
} g_smtp = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void say(int fd, const char *s)
{
	size_t n = strlen(s);
	cr_assert(send(fd, s, n, MSG_NOSIGNAL) == (ssize_t)n);
}

static void *smtp_main(void *arg)
{
	int c = accept(g_smtp.fd, NULL, NULL);
	if (c < 0)
		return NULL;
	char buf[4096], line[2048];
	size_t len = 0;
	int in_data = 0;
	say(c, "220 sink ESMTP\r\n");
	for (;;) {
		ssize_t r = recv(c, buf, sizeof buf, 0);
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r; i++) {
			if (len < sizeof line - 1)
				line[len++] = buf[i];
			if (buf[i] != '\n')
				continue;
			line[len] = '\0';
			pthread_mutex_lock(&g_smtp.mu);
			cr_assert(buf_puts(&g_smtp.transcript, line) == 0);
			pthread_mutex_unlock(&g_smtp.mu);
			len = 0;
			if (in_data) {
				if (strcmp(line, ".\r\n") == 0) {
					in_data = 0;
					say(c, "250 queued\r\n");
				}
			} else if (strncasecmp(line, "EHLO", 4) == 0 ||
			           strncasecmp(line, "HELO", 4) == 0)
				say(c, "250 sink\r\n");
			else if (strncasecmp(line, "MAIL", 4) == 0 ||
			         strncasecmp(line, "RCPT", 4) == 0)
				say(c, "250 ok\r\n");
			else if (strncasecmp(line, "DATA", 4) == 0) {
				in_data = 1;
				say(c, "354 go ahead\r\n");
			} else if (strncasecmp(line, "QUIT", 4) == 0) {
				say(c, "221 bye\r\n");
				goto out;
			} else
				say(c, "502 not implemented\r\n");
		}
	}
out:
	close(c);
	pthread_mutex_lock(&g_smtp.mu);
	g_smtp.done = 1;
	pthread_mutex_unlock(&g_smtp.mu);
	return NULL;
}

static void smtp_start(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	buf_init(&g_smtp.transcript, 1 << 20);
	cr_assert(buf_puts(&g_smtp.transcript, "") == 0);
	g_smtp.fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(g_smtp.fd >= 0);
	cr_assert(bind(g_smtp.fd, (struct sockaddr *)&a, sizeof a) == 0);
	cr_assert(listen(g_smtp.fd, 4) == 0);
	cr_assert(getsockname(g_smtp.fd, (struct sockaddr *)&a, &al) == 0);
	g_smtp.port = ntohs(a.sin_port);
	cr_assert(pthread_create(&g_smtp.th, NULL, smtp_main, NULL) == 0);
}

Test(notify, email_is_sent_over_smtp_with_subject_and_recipient)
{
	smtp_start();
	long long run = make_run("[]", "failed", "NULL");
	char *smtp = xasprintf("smtp://127.0.0.1:%d", g_smtp.port);
	char *payload =
	    xasprintf("{\"event\":\"run.failed\",\"workflow\":\"nightly\",\"run_id\":%lld,"
	              "\"state\":\"failed\"}",
	              run);
	struct notify_opts o;
	opts(&o);
	o.smtp_url = smtp;
	o.smtp_from = "wf@example.com";
	struct notifier *n = new_notifier(&o);
	long long id = add_outbox("email", "ops@example.com", payload);

	cr_assert_eq(pass(n), 1);
	/* delivered means the sink answered the final "." with 250; curl keeps
	 * the connection for the next message and says QUIT when it closes */
	notify_stop(n);
	pthread_join(g_smtp.th, NULL);
	close(g_smtp.fd);
	const char *t = g_smtp.transcript.data;
	cr_expect(strstr(t, "QUIT\r\n"), "%s", t);
	if (getenv("WF_TEST_SHOW"))
		cr_log_info("%s", t);
	char *subject = xasprintf("Subject: [wf] run %lld of nightly failed\r\n", run);
	char *link = xasprintf("https://wf.example.com/#/runs/%lld", run);
	char *msgid = xasprintf("Message-ID: <wf.outbox.%lld@example.com>", id);
	cr_expect(strstr(t, "MAIL FROM:<wf@example.com>"), "%s", t);
	cr_expect(strstr(t, "RCPT TO:<ops@example.com>"), "%s", t);
	cr_expect(strstr(t, subject), "%s", t);
	cr_expect(strstr(t, "\r\nTo: <ops@example.com>\r\n"), "%s", t);
	cr_expect(strstr(t, "\r\nFrom: <wf@example.com>\r\n"), "%s", t);
	cr_expect(strstr(t, msgid), "%s", t);
	cr_expect(strstr(t, "\r\nDate: "), "%s", t);
	cr_expect(strstr(t, "extract: dead after attempt 3: exit code 1"), "%s", t);
	cr_expect(strstr(t, link), "%s", t);
	cr_expect_eq(
	    qi("SELECT count(*) FROM outbox WHERE id = %lld AND delivered_at IS NOT NULL", id), 1);
	free(subject);
	free(link);
	free(msgid);
	free(payload);
	free(smtp);
	buf_release(&g_smtp.transcript);
}

Test(notify, email_rows_wait_for_an_engine_with_smtp)
{
	struct notify_opts o;
	opts(&o);
	struct notifier *n = new_notifier(&o);
	long long id = add_outbox("email", "ops@example.com", "{\"event\":\"x\"}");
	cr_expect_eq(pass(n), 0, "no --smtp-url: e-mail rows are left for another engine");
	cr_expect_eq(qi("SELECT attempts FROM outbox WHERE id = %lld", id), 0);
	notify_stop(n);
}

Test(notify, the_thread_delivers_and_stops)
{
	struct notify_opts o;
	opts(&o);
	o.poll_ms = 50;
	char err[256] = "";
	struct notifier *n = notify_start(&o, err, sizeof err);
	cr_assert(n, "%s", err);
	char *hook = url("/threaded");
	add_outbox("webhook", hook, "{\"event\":\"run.succeeded\"}");
	for (int i = 0; i < 200 && rx_count() < 1; i++)
		sleep_ms(20);
	cr_expect_eq(rx_count(), 1);
	int64_t t0 = mono_ms();
	notify_stop(n);
	cr_expect(mono_ms() - t0 < 2000, "stops promptly");
	free(hook);
}

Test(notify, options_are_taken_out_of_argv)
{
	char *argv[] = {"wf-engine",         "--http",     "127.0.0.1:1",
	                "--alert-dlq=5",     "--smtp-url", "smtp://h:25",
	                "--public-url",      "https://x/", "--migrate",
	                "--alert-min-slots", "3",          "--",
	                "--alert-dlq",       NULL};
	int argc = 13;
	struct notify_opts o;
	char err[256] = "";
	notify_opts_init(&o);
	cr_assert_eq(notify_opts_from_args(&o, &argc, argv, err, sizeof err), 0, "%s", err);
	cr_expect_eq(argc, 6);
	cr_expect_str_eq(argv[1], "--http");
	cr_expect_str_eq(argv[2], "127.0.0.1:1");
	cr_expect_str_eq(argv[3], "--migrate");
	cr_expect_str_eq(argv[4], "--");
	cr_expect_str_eq(argv[5], "--alert-dlq");
	cr_expect_null(argv[6]);
	cr_expect_eq(o.alert_dlq, 5);
	cr_expect_eq(o.alert_min_slots, 3);
	cr_expect_str_eq(o.smtp_url, "smtp://h:25");
	cr_expect_str_eq(o.public_url, "https://x/");

	char *bad[] = {"wf-engine", "--smtp-url", "http://h", NULL};
	argc = 3;
	cr_expect_eq(notify_opts_from_args(&o, &argc, bad, err, sizeof err), -1);
	cr_expect(strstr(err, "--smtp-url"), "%s", err);
	char *missing[] = {"wf-engine", "--alert-dlq", NULL};
	argc = 2;
	cr_expect_eq(notify_opts_from_args(&o, &argc, missing, err, sizeof err), -1);
}
