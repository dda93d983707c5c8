/* In-process counters and histograms behind one mutex (observations are a
 * few additions; the loop and the notifier thread take it for nanoseconds),
 * and the database gauges of a scrape. */
#include "metrics.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

#define MAX_BUCKETS 24

struct hist {
	const double *bounds; /* upper bounds, ascending; +Inf is implicit */
	int nbounds;
	uint64_t counts[MAX_BUCKETS + 1]; /* per bucket, not cumulative */
	double sum;
	uint64_t count;
};

static const double task_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,    2.5,
                                     5,     10,   30,    60,   120, 300,  600, 1800, 3600};
static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                        0.5,   1,      2.5,   5,    10,    30,   60};
static const double lag_bounds[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900};

#define NBOUNDS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Task outcomes get fixed labels, so a bad status cannot grow the series. */
static const char *const task_statuses[] = {"succeeded",    "failed",   "timeout", "cancelled",
                                            "breaker_open", "rejected", "lost",    "other"};
#define NSTATUS ((int)(sizeof task_statuses / sizeof task_statuses[0]))

static const char *const delivery_kinds[] = {"webhook", "email"};
static const char *const delivery_results[] = {"delivered", "failed", "gave_up"};
static const char *const alert_names[] = {"deadline", "dlq", "slots"};

static struct {
	pthread_mutex_t mu;
	struct hist task[NSTATUS];
	struct hist dispatch;
	struct hist lag;
	uint64_t deliveries[2][3];
	uint64_t alerts[3];
	int ready;
} m = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Called with m.mu held. */
static void init_locked(void)
{
	if (m.ready)
		return;
	for (int i = 0; i < NSTATUS; i++) {
		memset(&m.task[i], 0, sizeof m.task[i]);
		m.task[i].bounds = task_bounds;
		m.task[i].nbounds = NBOUNDS(task_bounds);
	}
	memset(&m.dispatch, 0, sizeof m.dispatch);
	m.dispatch.bounds = latency_bounds;
	m.dispatch.nbounds = NBOUNDS(latency_bounds);
	memset(&m.lag, 0, sizeof m.lag);
	m.lag.bounds = lag_bounds;
	m.lag.nbounds = NBOUNDS(lag_bounds);
	memset(m.deliveries, 0, sizeof m.deliveries);
	memset(m.alerts, 0, sizeof m.alerts);
	m.ready = 1;
}

static void observe(struct hist *h, double v)
{
	if (!(v >= 0)) /* negative or NaN: a clock step; count it as 0 */
		v = 0;
	int i = 0;
	while (i < h->nbounds && v > h->bounds[i])
		i++;
	h->counts[i]++;
	h->sum += v;
	h->count++;
}

static int index_of(const char *const *names, int n, const char *v)
{
	for (int i = 0; v && i < n; i++)
		if (strcmp(names[i], v) == 0)
			return i;
	return -1;
}

void metrics_observe_task(const char *status, double seconds)
{
	int i = index_of(task_statuses, NSTATUS, status);
	if (i < 0)
		i = NSTATUS - 1;
	pthread_mutex_lock(&m.mu);
	init_locked();
	observe(&m.task[i], seconds);
	pthread_mutex_unlock(&m.mu);
}

void metrics_observe_dispatch_latency(double seconds)
{
	pthread_mutex_lock(&m.mu);
	init_locked();
	observe(&m.dispatch, seconds);
	pthread_mutex_unlock(&m.mu);
}

void metrics_observe_schedule_lag(double seconds)
{
	pthread_mutex_lock(&m.mu);
	init_locked();
	observe(&m.lag, seconds);
	pthread_mutex_unlock(&m.mu);
}

void metrics_count_delivery(const char *kind, const char *result)
{
	int k = index_of(delivery_kinds, 2, kind), r = index_of(delivery_results, 3, result);
	if (k < 0 || r < 0)
		return;
	pthread_mutex_lock(&m.mu);
	init_locked();
	m.deliveries[k][r]++;
	pthread_mutex_unlock(&m.mu);
}

void metrics_count_alert(const char *alert)
{
	int a = index_of(alert_names, 3, alert);
	if (a < 0)
		return;
	pthread_mutex_lock(&m.mu);
	init_locked();
	m.alerts[a]++;
	pthread_mutex_unlock(&m.mu);
}

void metrics_reset(void)
{
	pthread_mutex_lock(&m.mu);
	m.ready = 0;
	init_locked();
	pthread_mutex_unlock(&m.mu);
}

/* ------------------------------------------------------------ rendering */

void metrics_out(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	if (buf_puts(b, s) != 0)
		log_error("metrics buffer full", "%s", "");
	free(s);
}

char *metrics_label(const char *v)
{
	struct buf b;
	buf_init(&b, 0);
	if (buf_puts(&b, "") != 0)
		abort();
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			metrics_out(&b, "\\%c", *v);
		else if (*v == '\n')
			metrics_out(&b, "\\n");
		else
			metrics_out(&b, "%c", *v);
	}
	return buf_detach(&b);
}

/* One histogram's samples; lbl is "" or 'status="x",' (with the comma). */
static void hist_samples(struct buf *b, const char *name, const char *lbl, const struct hist *h)
{
	uint64_t cum = 0;
	for (int i = 0; i < h->nbounds; i++) {
		cum += h->counts[i];
		metrics_out(b, "%s_bucket{%sle=\"%g\"} %llu\n", name, lbl, h->bounds[i],
		            (unsigned long long)cum);
	}
	cum += h->counts[h->nbounds];
	metrics_out(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, lbl, (unsigned long long)cum);
	/* the label set without its trailing comma */
	size_t n = strlen(lbl);
	if (n)
		metrics_out(b, "%s_sum{%.*s} %.9g\n%s_count{%.*s} %llu\n", name, (int)n - 1, lbl,
		            h->sum, name, (int)n - 1, lbl, (unsigned long long)h->count);
	else
		metrics_out(b, "%s_sum %.9g\n%s_count %llu\n", name, h->sum, name,
		            (unsigned long long)h->count);
}

void metrics_render(struct buf *b)
{
	struct hist task[NSTATUS], dispatch, lag;
	uint64_t deliveries[2][3], alerts[3];

	/* copy under the lock, format without it */
	pthread_mutex_lock(&m.mu);
	init_locked();
	memcpy(task, m.task, sizeof task);
	dispatch = m.dispatch;
	lag = m.lag;
	memcpy(deliveries, m.deliveries, sizeof deliveries);
	memcpy(alerts, m.alerts, sizeof alerts);
	pthread_mutex_unlock(&m.mu);

	metrics_out(b,
	            "# HELP wf_task_duration_seconds Attempt durations reported by executors and "
	            "applied by this engine, by outcome.\n"
	            "# TYPE wf_task_duration_seconds histogram\n");
	for (int i = 0; i < NSTATUS; i++) {
		char lbl[64];
		snprintf(lbl, sizeof lbl, "status=\"%s\",", task_statuses[i]);
		hist_samples(b, "wf_task_duration_seconds", lbl, &task[i]);
	}
	metrics_out(
	    b, "# HELP wf_dispatch_latency_seconds Time from a task run becoming ready to this "
	       "engine sending it to an executor.\n"
	       "# TYPE wf_dispatch_latency_seconds histogram\n");
	hist_samples(b, "wf_dispatch_latency_seconds", "", &dispatch);
	metrics_out(b,
	            "# HELP wf_schedule_fire_lag_seconds Time from a schedule's due time to this "
	            "engine firing the run.\n"
	            "# TYPE wf_schedule_fire_lag_seconds histogram\n");
	hist_samples(b, "wf_schedule_fire_lag_seconds", "", &lag);
	metrics_out(b, "# HELP wf_notify_deliveries_total Notification attempts of this engine's "
	               "notifier, by kind and result.\n"
	               "# TYPE wf_notify_deliveries_total counter\n");
	for (int k = 0; k < 2; k++)
		for (int r = 0; r < 3; r++)
			metrics_out(b,
			            "wf_notify_deliveries_total{kind=\"%s\",result=\"%s\"} %llu\n",
			            delivery_kinds[k], delivery_results[r],
			            (unsigned long long)deliveries[k][r]);
	metrics_out(b,
	            "# HELP wf_notify_alerts_total Engine alerts this engine wrote to the outbox.\n"
	            "# TYPE wf_notify_alerts_total counter\n");
	for (int a = 0; a < 3; a++)
		metrics_out(b, "wf_notify_alerts_total{alert=\"%s\"} %llu\n", alert_names[a],
		            (unsigned long long)alerts[a]);
}

/* ------------------------------------------------------------ database */

/* kind, label 1, label 2, value. Schedule lag: the oldest due schedule of
 * an unpaused workflow that has not fired yet (0 when none is late).
 * Retries: task runs that went to retrying in the last hour, from the
 * events table (every engine writes one event per transition, so this
 * counts cluster-wide and survives restarts; it includes postponements
 * behind an open circuit breaker). Breakers: as executors last reported
 * them in a heartbeat, for executors that are online or draining. */
static const char db_sql[] =
    "SELECT 'lag', '', '', coalesce(greatest(extract(epoch FROM now() - min(s.next_fire_at)),"
    "  0), 0)::float8::text"
    " FROM schedules s JOIN workflows w ON w.id = s.workflow_id"
    " WHERE s.enabled AND s.next_fire_at <= now() AND NOT w.paused AND w.deleted_at IS NULL"
    " UNION ALL SELECT 'gave_up', '', '', count(*)::text FROM outbox"
    "  WHERE delivered_at IS NULL AND gave_up_at IS NOT NULL"
    " UNION ALL SELECT 'oldest', '', '', coalesce(extract(epoch FROM now() - min(created_at)),"
    "  0)::float8::text FROM outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL"
    " UNION ALL SELECT 'retries', '', '', count(*)::text FROM events"
    "  WHERE at > now() - interval '1 hour' AND kind = 'task_run.state'"
    "  AND data->>'to' = 'retrying'"
    " UNION ALL SELECT 'breaker', e.id, b.key, coalesce(b.value->>'state', 'closed')"
    "  FROM executors e CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(e.breakers) ="
    "   'object' THEN e.breakers ELSE '{}'::jsonb END) b"
    "  WHERE e.state IN ('online', 'draining')";

static const char *value_of(PGresult *r, const char *kind)
{
	for (int i = 0; i < PQntuples(r); i++)
		if (strcmp(PQgetvalue(r, i, 0), kind) == 0)
			return PQgetvalue(r, i, 3);
	return "0";
}

int metrics_render_db(struct store *s, struct buf *b)
{
	static const char *const breaker_states[] = {"closed", "open", "half_open"};
	PGresult *r = store_execp(s, "metrics_db", db_sql, 0, NULL);
	if (!r)
		return -1;
	metrics_out(
	    b,
	    "# HELP wf_schedule_lag_seconds How late the most overdue schedule is (0 when all "
	    "fired on time).\n# TYPE wf_schedule_lag_seconds gauge\nwf_schedule_lag_seconds %s\n",
	    value_of(r, "lag"));
	metrics_out(
	    b,
	    "# HELP wf_outbox_given_up Notifications the notifier stopped retrying (kept in the "
	    "outbox with last_error).\n# TYPE wf_outbox_given_up gauge\nwf_outbox_given_up %s\n",
	    value_of(r, "gave_up"));
	metrics_out(
	    b,
	    "# HELP wf_outbox_oldest_pending_seconds Age of the oldest notification still to be "
	    "delivered.\n# TYPE wf_outbox_oldest_pending_seconds gauge\n"
	    "wf_outbox_oldest_pending_seconds %s\n",
	    value_of(r, "oldest"));
	metrics_out(
	    b,
	    "# HELP wf_task_retries_last_hour Task runs that went to retrying in the last hour "
	    "(events table; includes breaker-open postponements).\n"
	    "# TYPE wf_task_retries_last_hour gauge\nwf_task_retries_last_hour %s\n",
	    value_of(r, "retries"));
	metrics_out(
	    b, "# HELP wf_breaker_state Circuit breaker states as executors last reported them "
	       "(1 for the current state).\n# TYPE wf_breaker_state gauge\n");
	for (int i = 0; i < PQntuples(r); i++) {
		if (strcmp(PQgetvalue(r, i, 0), "breaker") != 0)
			continue;
		char *ex = metrics_label(PQgetvalue(r, i, 1)),
		     *br = metrics_label(PQgetvalue(r, i, 2));
		const char *st = PQgetvalue(r, i, 3);
		for (int k = 0; k < 3; k++)
			metrics_out(
			    b, "wf_breaker_state{executor=\"%s\",breaker=\"%s\",state=\"%s\"} %d\n",
			    ex, br, breaker_states[k], strcmp(st, breaker_states[k]) == 0);
		free(ex);
		free(br);
	}
	PQclear(r);
	return 0;
}
