/* In-process metrics of one engine (counters and histograms, thread-safe)
 * and their rendering in the Prometheus text exposition format (0.0.4),
 * plus a few gauges computed from PostgreSQL for every scrape.
 *
 * Process metrics count what this engine saw since it started (they reset
 * on restart, as Prometheus counters may); database gauges describe the
 * whole cluster, so every engine reports the same values for them. */
#ifndef WF_METRICS_H
#define WF_METRICS_H

#include "buf.h"
#include "store.h"

/* A finished attempt applied by this engine: status as in the wire
 * "finished" message (succeeded, failed, timeout, cancelled, breaker_open,
 * rejected; the reaper's "lost"; anything else counts as "other") and its
 * duration in seconds. */
void metrics_observe_task(const char *status, double seconds);
/* Time from a task run becoming ready (available_at) to being sent. */
void metrics_observe_dispatch_latency(double seconds);
/* Time from a schedule's due time (next_fire_at) to the run being fired. */
void metrics_observe_schedule_lag(double seconds);
/* One notification attempt of the notifier: kind webhook | email, result
 * delivered | failed | gave_up. */
void metrics_count_delivery(const char *kind, const char *result);
/* An engine alert written to the outbox: deadline | dlq | slots. */
void metrics_count_alert(const char *alert);

/* Appends the in-process metrics (HELP, TYPE, samples) to out. */
void metrics_render(struct buf *out);
/* Appends formatted text to a metrics page (logs when the buffer is full). */
void metrics_out(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A label value with \, " and newlines escaped (a new string). */
char *metrics_label(const char *v);
/* Appends the database gauges (schedule lag, outbox given up, breaker
 * states, retries of the last hour) to out. Returns 0, or -1 when the
 * query failed (nothing appended). */
int metrics_render_db(struct store *s, struct buf *out) __attribute__((warn_unused_result));

/* Zeroes every in-process metric (for tests). */
void metrics_reset(void);

#endif
