/* Internals of the notifier (the interface is notify.h), shared by
 * notify.c (transfers, the outbox, lifecycle), notify_alerts.c (deadline
 * and threshold alerts) and notify_mail.c (payloads and e-mail messages). */
#ifndef WF_NOTIFY_INT_H
#define WF_NOTIFY_INT_H
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "notify.h"

#define ERR_EXCERPT 300 /* response bytes kept in last_error */

struct store;

/* The notifier's state: its options, copies of their strings, its connection and thread. */
struct notifier {
	struct notify_opts o; /* strings point at the copies below */
	char *conninfo, *engine_id, *smtp_url, *smtp_from, *public_url, *alert_webhook,
	    *alert_email, *smtp_user, *smtp_password;
	unsigned char *secret;
	size_t secret_len;
	struct store *s;
	CURLM *multi;
	pthread_t thread;
	int has_thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_int stop;
	int64_t started_ms, next_alert_ms;
	int warned_no_smtp;
};

enum { K_WEBHOOK, K_EMAIL, K_OTHER };

/* One claimed outbox row on its way: what is sent, the transfer, and the outcome. */
struct job {
	struct notifier *n;
	long long id;
	char idtxt[24];
	char *lease;  /* available_at set by our claim: the fence for failures */
	int attempts; /* before this try */
	int kind;
	char *target;
	json_t *payload;
	int enriched; /* payload changed: store it back */
	char *body;
	size_t body_len, body_off;
	struct curl_slist *list; /* headers, or e-mail recipients */
	CURL *easy;
	char cerr[CURL_ERROR_SIZE];
	char resp[ERR_EXCERPT + 1];
	size_t resp_len, resp_total;
	int done, delivered, permanent;
	char fail[512];
};

/* Writes the alerts that fire (deadlines, thresholds) to the outbox; 0 or -1 (database). */
int notify__check_alerts(struct notifier *n);

/* Adds the run's details missing from j->payload; sets j->enriched when it changed it. */
void notify__enrich(struct job *j);
/* The RFC 5322 message (headers, text body) of e-mail job j from from: a new string. */
char *notify__build_message(struct job *j, const char *from);
/* s cut at max bytes, control characters made spaces (header-safe): a new string. */
char *notify__one_line(const char *s, size_t max);
/* The string at key in payload object o, or dflt (borrowed from o). */
const char *notify__pstr(json_t *o, const char *key, const char *dflt);

#endif
