/* Metrics: histogram buckets and the Prometheus text format of the
 * in-process metrics, and the database gauges on a real PostgreSQL. */
#include <criterion/criterion.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "engine/metrics.h"
#include "testdb.h"

static char *render(void)
{
	struct buf b;
	buf_init(&b, 0);
	metrics_render(&b);
	return buf_detach(&b);
}

/* The value of the sample line that starts with "series " (e.g.
 * 'wf_x_bucket{le="1"}'), or -1 when there is none. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && *p;) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

static int count_lines(const char *text, const char *prefix)
{
	int c = 0;
	size_t n = strlen(prefix);
	for (const char *p = text; p && *p;) {
		if (strncmp(p, prefix, n) == 0)
			c++;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return c;
}

TestSuite(metrics, .init = metrics_reset, .timeout = 60);

Test(metrics, task_histogram_counts_cumulative_buckets)
{
	metrics_observe_task("succeeded", 0.003);
	metrics_observe_task("succeeded", 0.2);
	metrics_observe_task("succeeded", 0.25); /* le is inclusive */
	metrics_observe_task("succeeded", 7200); /* past the last bound */
	metrics_observe_task("failed", 1.5);
	metrics_observe_task("weird-status", 2);
	metrics_observe_task("succeeded", -1); /* a clock step counts as 0 */
	char *t = render();

	const char *s = "wf_task_duration_seconds_bucket{status=\"succeeded\",";
	char k[160];
#define BUCKET(le) (snprintf(k, sizeof k, "%sle=\"%s\"}", s, le), sample(t, k))
	cr_expect_eq(BUCKET("0.005"), 2);
	cr_expect_eq(BUCKET("0.1"), 2);
	cr_expect_eq(BUCKET("0.25"), 4);
	cr_expect_eq(BUCKET("3600"), 4);
	cr_expect_eq(BUCKET("+Inf"), 5);
#undef BUCKET
	cr_expect_eq(sample(t, "wf_task_duration_seconds_count{status=\"succeeded\"}"), 5);
	cr_expect_float_eq(sample(t, "wf_task_duration_seconds_sum{status=\"succeeded\"}"),
	                   7200.453, 1e-6);
	cr_expect_eq(sample(t, "wf_task_duration_seconds_bucket{status=\"failed\",le=\"1\"}"), 0);
	cr_expect_eq(sample(t, "wf_task_duration_seconds_bucket{status=\"failed\",le=\"2.5\"}"), 1);
	cr_expect_eq(sample(t, "wf_task_duration_seconds_count{status=\"other\"}"), 1);
	cr_expect_eq(sample(t, "wf_task_duration_seconds_count{status=\"timeout\"}"), 0);
	free(t);
}

Test(metrics, exposition_format_is_valid)
{
	metrics_observe_dispatch_latency(0.004);
	metrics_observe_dispatch_latency(0.004);
	metrics_observe_schedule_lag(0.7);
	metrics_count_delivery("webhook", "delivered");
	metrics_count_delivery("webhook", "delivered");
	metrics_count_delivery("email", "gave_up");
	metrics_count_delivery("sms", "delivered"); /* unknown: ignored */
	metrics_count_alert("dlq");
	char *t = render();

	/* every line is a HELP, a TYPE, or a sample */
	regex_t re;
	cr_assert(regcomp(&re,
	                  "^(# HELP [a-z_]+ .+|# TYPE [a-z_]+ (counter|gauge|histogram)|"
	                  "[a-z_]+(\\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\\})? "
	                  "[-+0-9.e]+)$",
	                  REG_EXTENDED | REG_NOSUB) == 0);
	char *copy = strdup(t), *save = NULL;
	int lines = 0;
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		cr_expect(regexec(&re, l, 0, NULL, 0) == 0, "bad line: %s", l);
		lines++;
	}
	regfree(&re);
	free(copy);
	cr_expect(lines > 50);
	cr_expect(t[strlen(t) - 1] == '\n');

	/* each family once */
	cr_expect_eq(count_lines(t, "# TYPE wf_task_duration_seconds histogram"), 1);
	cr_expect_eq(count_lines(t, "# HELP wf_task_duration_seconds "), 1);
	cr_expect_eq(count_lines(t, "# TYPE wf_dispatch_latency_seconds histogram"), 1);
	cr_expect_eq(count_lines(t, "# TYPE wf_schedule_fire_lag_seconds histogram"), 1);
	cr_expect_eq(count_lines(t, "# TYPE wf_notify_deliveries_total counter"), 1);

	cr_expect_eq(sample(t, "wf_dispatch_latency_seconds_bucket{le=\"0.0025\"}"), 0);
	cr_expect_eq(sample(t, "wf_dispatch_latency_seconds_bucket{le=\"0.005\"}"), 2);
	cr_expect_eq(sample(t, "wf_dispatch_latency_seconds_bucket{le=\"+Inf\"}"), 2);
	cr_expect_eq(sample(t, "wf_dispatch_latency_seconds_count"), 2);
	cr_expect_float_eq(sample(t, "wf_dispatch_latency_seconds_sum"), 0.008, 1e-9);
	cr_expect_eq(sample(t, "wf_schedule_fire_lag_seconds_bucket{le=\"0.5\"}"), 0);
	cr_expect_eq(sample(t, "wf_schedule_fire_lag_seconds_bucket{le=\"1\"}"), 1);
	cr_expect_eq(sample(t, "wf_notify_deliveries_total{kind=\"webhook\",result=\"delivered\"}"),
	             2);
	cr_expect_eq(sample(t, "wf_notify_deliveries_total{kind=\"email\",result=\"gave_up\"}"), 1);
	cr_expect_eq(sample(t, "wf_notify_deliveries_total{kind=\"email\",result=\"delivered\"}"),
	             0);
	cr_expect_eq(sample(t, "wf_notify_alerts_total{alert=\"dlq\"}"), 1);
	free(t);

	metrics_reset();
	t = render();
	cr_expect_eq(sample(t, "wf_dispatch_latency_seconds_count"), 0);
	free(t);
}

Test(metrics, database_gauges)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	static const char *const setup[] = {
	    "INSERT INTO workflows (name, current_version) VALUES ('w', 1), ('p', 1)",
	    "UPDATE workflows SET paused = true WHERE name = 'p'",
	    "INSERT INTO workflow_versions (workflow_id, version, hash, source, dag)"
	    " SELECT id, 1, 'h', 's', '{}' FROM workflows",
	    /* w is 30 s late; p is paused and an hour late: not counted */
	    "INSERT INTO schedules (workflow_id, kind, expr, next_fire_at)"
	    " SELECT id, 'cron', '* * * * *', now() - CASE name WHEN 'w' THEN interval '30 s'"
	    " ELSE interval '1 hour' END FROM workflows",
	    "INSERT INTO outbox (kind, target, payload, gave_up_at, available_at) VALUES"
	    " ('webhook', 'http://x', '{}', now(), 'infinity'),"
	    " ('webhook', 'http://x', '{}', NULL, now())",
	    "INSERT INTO events (kind, data) VALUES"
	    " ('task_run.state', '{\"from\":\"running\",\"to\":\"retrying\"}'),"
	    " ('task_run.state', '{\"from\":\"running\",\"to\":\"retrying\"}'),"
	    " ('task_run.state', '{\"from\":\"running\",\"to\":\"succeeded\"}')",
	    "INSERT INTO events (kind, at, data) VALUES ('task_run.state', now() - interval '2 h',"
	    " '{\"from\":\"running\",\"to\":\"retrying\"}')",
	    "INSERT INTO executors (id, endpoint, state, breakers) VALUES"
	    " ('e1', 'tcp://a', 'online', '{\"billing\":{\"state\":\"open\"},"
	    "   \"chat\":{\"state\":\"half_open\"}}'),"
	    " ('e2', 'tcp://b', 'lost', '{\"billing\":{\"state\":\"open\"}}')",
	    NULL};
	for (int i = 0; setup[i]; i++)
		cr_assert(store_cmd(s, setup[i], 0, NULL) == 0, "%s: %s", setup[i], store_error(s));

	struct buf b;
	buf_init(&b, 0);
	cr_assert_eq(metrics_render_db(s, &b), 0);
	const char *t = b.data;
	double lag = sample(t, "wf_schedule_lag_seconds");
	cr_expect(lag >= 29 && lag < 120, "lag %g\n%s", lag, t);
	cr_expect_eq(sample(t, "wf_outbox_given_up"), 1);
	cr_expect(sample(t, "wf_outbox_oldest_pending_seconds") >= 0);
	cr_expect_eq(sample(t, "wf_task_retries_last_hour"), 2);
	cr_expect_eq(
	    sample(t, "wf_breaker_state{executor=\"e1\",breaker=\"billing\",state=\"open\"}"), 1);
	cr_expect_eq(
	    sample(t, "wf_breaker_state{executor=\"e1\",breaker=\"billing\",state=\"closed\"}"), 0);
	cr_expect_eq(
	    sample(t, "wf_breaker_state{executor=\"e1\",breaker=\"chat\",state=\"half_open\"}"), 1);
	cr_expect(!strstr(t, "executor=\"e2\""), "lost executors are left out");
	buf_release(&b);

	/* nothing late: lag 0 */
	cr_assert(store_cmd(s, "UPDATE schedules SET next_fire_at = now() + interval '1 h'", 0,
	                    NULL) == 0);
	buf_init(&b, 0);
	cr_assert_eq(metrics_render_db(s, &b), 0);
	cr_expect_eq(sample(b.data, "wf_schedule_lag_seconds"), 0);
	buf_release(&b);
	testdb_close(&db);
}
