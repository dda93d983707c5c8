/* The notifier: delivers the outbox (webhooks, e-mail) and writes engine
 * alerts to it, in a thread of its own with its own database connection.
 *
 * Delivery is at-least-once. A batch of due rows is claimed in one
 * statement that also pushes their available_at a lease ahead (60 s), so
 * an engine that dies mid-delivery only delays them: when the lease runs
 * out any engine claims them again. A delivery that succeeded just before
 * a crash, before delivered_at was written, is therefore sent again:
 * receivers must deduplicate on the X-WF-Delivery header (the outbox id,
 * the same on every attempt; e-mail keeps the same Message-ID).
 *
 * Webhooks: POST of the JSON payload, http/https only, Content-Type
 * application/json, X-WF-Event, X-WF-Delivery, X-WF-Timestamp (Unix
 * seconds) and, when a secret is set, X-WF-Signature: sha256=<hex
 * HMAC-SHA256 of the raw body>. 2xx within the timeout = delivered.
 * E-mail: SMTP through libcurl, a short text message. A failure retries
 * with exponential backoff (5 s doubling to 1 h, half jitter) and gives up
 * after max_attempts: the row stays with gave_up_at and last_error set.
 *
 * Run notifications are enriched once at delivery time from the database
 * (version, trigger, started_at, failed tasks with their errors, the
 * dashboard URL) and the enriched payload is stored back, so every retry
 * sends the same body.
 *
 * Alerts (each written once, whichever engine sees it first):
 * - run.deadline_missed: a queued/running run past runs.deadline_at →
 *   the workflow's on_failure targets and the alert targets;
 * - alert.dlq_over_threshold: open dead letters > alert_dlq;
 * - alert.executor_slots_low: slots of online executors < alert_min_slots.
 * Threshold alerts fire once per crossing and re-arm when the value is back
 * (table notify_alerts). Engines should share one alert configuration. */
#ifndef WF_NOTIFY_H
#define WF_NOTIFY_H
#include <stdint.h>
#include <stdio.h>

struct notify_opts {
	const char *conninfo;            /* NULL = store_default_conninfo() */
	const char *engine_id;           /* named in alerts and logs */
	const char *webhook_secret_file; /* NULL: $WF_WEBHOOK_SECRET, else unsigned */
	const char *smtp_url;            /* smtp://host:port or smtps://; NULL = no e-mail */
	const char *smtp_from;           /* envelope and From: address */
	const char *public_url;          /* dashboard base URL for links; NULL: $WF_PUBLIC_URL */
	long long alert_dlq;             /* alert when open dead letters exceed it; < 0 = off */
	long long alert_min_slots;       /* alert when online slots drop below it; 0 = off */
	const char *alert_webhook;       /* where engine alerts go (either, both or none) */
	const char *alert_email;
	int poll_ms;               /* longest wait between looks at the outbox (1000) */
	int batch;                 /* rows per claim (50) */
	int max_attempts;          /* give up after this many (20) */
	int64_t lease_ms;          /* claim lease (60000) */
	int64_t timeout_ms;        /* per webhook (10000); e-mail gets 3× */
	int64_t backoff_min_ms;    /* first retry delay (5000) */
	int64_t backoff_max_ms;    /* longest retry delay (3600000) */
	int64_t alert_interval_ms; /* how often alerts are evaluated (5000) */
	int64_t slots_grace_ms;    /* no slots alert this soon after start (30000) */
	int test_stop_after_claim; /* tests: claim, then return as if killed */
};

struct notifier;

/* Fills o with the defaults (every field; alerts off). */
void notify_opts_init(struct notify_opts *o);

/* Takes the notifier's command-line options out of argv (both "--opt V"
 * and "--opt=V"), closing the gap so the caller's getopt never sees them,
 * and sets them in o (strings borrowed from argv). Stops at "--".
 * Options: --webhook-secret-file FILE, --smtp-url URL, --smtp-from ADDR,
 * --public-url URL, --alert-dlq N, --alert-min-slots N, --alert-webhook
 * URL, --alert-email ADDR, --notify-poll-ms N. Returns 0, or -1 with a
 * message in err. */
int notify_opts_from_args(struct notify_opts *o, int *argc, char **argv, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Prints the options above for a usage text. */
void notify_usage(FILE *f);

/* Opens the notifier's connection and reads the secret, without a thread
 * (o and its strings are copied). Returns NULL with a message in err. */
struct notifier *notify_new(const struct notify_opts *o, char *err, size_t errlen);
/* One pass on the calling thread: alerts when due, then one batch of due
 * outbox rows. Returns the rows handled, or -1 when the database failed. */
int notify_run_once(struct notifier *n) __attribute__((warn_unused_result));
/* notify_new plus a thread that runs passes until notify_stop. */
struct notifier *notify_start(const struct notify_opts *o, char *err, size_t errlen);
/* Stops the thread (if any; transfers in flight are abandoned and their
 * rows released for another try at once), closes and frees n (NULL ok). */
void notify_stop(struct notifier *n);

#endif
