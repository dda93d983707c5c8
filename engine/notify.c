/* The notifier (see notify.h for the contract): claim due outbox rows with
 * a lease, deliver the batch concurrently through one curl multi handle,
 * record each outcome fenced by the lease, and now and then write engine
 * alerts to the outbox. */
#include "notify.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "store.h"
#include "util.h"
#include "xalloc.h"

#define MAX_SECRET   4096
#define MAX_RESPONSE (64 * 1024) /* read at most this much of a response */
#define ERR_EXCERPT  300         /* response bytes kept in last_error */
#define MAX_FAILED_S "50"        /* failed tasks listed in a run notification */
#define USER_AGENT   "wf-notifier/" WF_VERSION

#ifndef WF_VERSION
#define WF_VERSION "0"
#endif

#define TS(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

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

/* ------------------------------------------------------------ options */

void notify_opts_init(struct notify_opts *o)
{
	memset(o, 0, sizeof *o);
	o->alert_dlq = -1;
	o->poll_ms = 1000;
	o->batch = 50;
	o->max_attempts = 20;
	o->lease_ms = 60000;
	o->timeout_ms = 10000;
	o->backoff_min_ms = 5000;
	o->backoff_max_ms = 3600000;
	o->alert_interval_ms = 5000;
	o->slots_grace_ms = 30000;
}

static const char *const arg_names[] = {
    "webhook-secret-file", "smtp-url",      "smtp-from",   "public-url",     "alert-dlq",
    "alert-min-slots",     "alert-webhook", "alert-email", "notify-poll-ms", NULL};

static int set_int(const char *name, const char *v, long long min, long long max, long long *out,
                   char *err, size_t errlen)
{
	int64_t x;
	if (parse_int64(v, min, max, &x) != 0) {
		snprintf(err, errlen, "--%s: expected an integer from %lld to %lld, got '%s'", name,
		         min, max, v);
		return -1;
	}
	*out = x;
	return 0;
}

static int set_opt(struct notify_opts *o, int which, const char *v, char *err, size_t errlen)
{
	long long x;
	switch (which) {
	case 0:
		o->webhook_secret_file = v;
		return 0;
	case 1:
		if (strncasecmp(v, "smtp://", 7) != 0 && strncasecmp(v, "smtps://", 8) != 0) {
			snprintf(
			    err, errlen,
			    "--smtp-url: expected smtp://host:port or smtps://host:port, got '%s'",
			    v);
			return -1;
		}
		o->smtp_url = v;
		return 0;
	case 2:
		o->smtp_from = v;
		return 0;
	case 3:
		o->public_url = v;
		return 0;
	case 4:
		return set_int("alert-dlq", v, 0, 1000000000, &o->alert_dlq, err, errlen);
	case 5:
		return set_int("alert-min-slots", v, 1, 1000000000, &o->alert_min_slots, err,
		               errlen);
	case 6:
		if (strncasecmp(v, "http://", 7) != 0 && strncasecmp(v, "https://", 8) != 0) {
			snprintf(err, errlen,
			         "--alert-webhook: expected an http or https URL, got '%s'", v);
			return -1;
		}
		o->alert_webhook = v;
		return 0;
	case 7:
		o->alert_email = v;
		return 0;
	default:
		if (set_int("notify-poll-ms", v, 10, 60000, &x, err, errlen) != 0)
			return -1;
		o->poll_ms = (int)x;
		return 0;
	}
}

int notify_opts_from_args(struct notify_opts *o, int *argc, char **argv, char *err, size_t errlen)
{
	int i = 1;
	while (i < *argc) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0)
			break;
		int which = -1;
		size_t len = 0;
		if (strncmp(a, "--", 2) == 0) {
			const char *eq = strchr(a + 2, '=');
			len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
			for (int k = 0; arg_names[k]; k++)
				if (strlen(arg_names[k]) == len &&
				    strncmp(a + 2, arg_names[k], len) == 0)
					which = k;
		}
		if (which < 0) {
			i++;
			continue;
		}
		int used = 1;
		const char *v = a[2 + len] == '=' ? a + 3 + len : NULL;
		if (!v) {
			if (i + 1 >= *argc) {
				snprintf(err, errlen, "--%s needs a value", arg_names[which]);
				return -1;
			}
			v = argv[i + 1];
			used = 2;
		}
		if (set_opt(o, which, v, err, errlen) != 0)
			return -1;
		memmove(&argv[i], &argv[i + used], (size_t)(*argc - i - used + 1) * sizeof *argv);
		*argc -= used;
	}
	return 0;
}

void notify_usage(FILE *f)
{
	fprintf(f,
	        "notifications (webhooks and e-mail from on_success/on_failure, engine alerts):\n"
	        "  --webhook-secret-file FILE  HMAC-SHA256 key for X-WF-Signature (else\n"
	        "                       $WF_WEBHOOK_SECRET; without one webhooks are unsigned)\n"
	        "  --smtp-url URL       smtp://host:port or smtps://host:port for e-mail\n"
	        "                       ($WF_SMTP_USER, $WF_SMTP_PASSWORD when it needs a login)\n"
	        "  --smtp-from ADDR     sender address (default wf@localhost)\n"
	        "  --public-url URL     dashboard address for links (default $WF_PUBLIC_URL)\n"
	        "  --alert-dlq N        alert when more than N dead letters are open\n"
	        "  --alert-min-slots N  alert when online executors have fewer than N slots\n"
	        "  --alert-webhook URL  where engine alerts go (run deadlines also go to the\n"
	        "  --alert-email ADDR   workflow's on_failure targets)\n"
	        "  --notify-poll-ms N   longest wait between looks at the outbox (default 1000)\n");
}

/* ------------------------------------------------------------ small helpers */

static char *dup_or_null(const char *s)
{
	return s && *s ? xstrdup(s) : NULL;
}

/* A plausible address for SMTP and a header: no spaces, controls or <>. */
static int valid_address(const char *a)
{
	const char *at = strchr(a, '@');
	if (!at || at == a || !at[1] || strlen(a) > 254)
		return 0;
	for (const unsigned char *p = (const unsigned char *)a; *p; p++)
		if (*p <= ' ' || *p == '<' || *p == '>' || *p == ',' || *p == 0x7f)
			return 0;
	return 1;
}

/* s with control characters (CR, LF, ...) replaced by spaces and cut at
 * max bytes: safe in a header or a line of a message. A new string. */
static char *one_line(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n > max)
		n = max;
	char *r = xstrndup(s, n);
	for (char *p = r; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			*p = ' ';
	return r;
}

static int read_secret(struct notifier *n, const char *file, char *err, size_t errlen)
{
	int rc = -1, fd = -1;
	char buf[MAX_SECRET + 1];
	size_t len = 0;
	struct stat st;

	if (!file) {
		const char *env = getenv("WF_WEBHOOK_SECRET");
		if (!env || !*env)
			return 0;
		n->secret_len = strlen(env);
		n->secret = (unsigned char *)xstrdup(env);
		return 0;
	}
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, errlen, "--webhook-secret-file %s: %s", file, strerror(errno));
		goto out;
	}
	if (st.st_mode & 077)
		log_warn("webhook secret file is readable by group or others", "file=%s", file);
	for (;;) {
		ssize_t r = read(fd, buf + len, sizeof buf - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "--webhook-secret-file %s: %s", file,
			         strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > MAX_SECRET) {
			snprintf(err, errlen, "--webhook-secret-file %s: longer than %d bytes",
			         file, MAX_SECRET);
			goto out;
		}
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		len--;
	if (!len) {
		snprintf(err, errlen, "--webhook-secret-file %s: the file is empty", file);
		goto out;
	}
	n->secret = xmalloc(len);
	memcpy(n->secret, buf, len);
	n->secret_len = len;
	rc = 0;
out:
	sodium_memzero(buf, sizeof buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int stopping(struct notifier *n)
{
	return atomic_load(&n->stop);
}

/* ------------------------------------------------------------ alerts */

/* Runs past their deadline: mark them alerted and write the alert to the
 * workflow's on_failure targets and the alert targets, in one statement.
 * $1 alert webhook, $2 alert e-mail (NULL = none), $3 public URL. */
// clang-format off
static const char DEADLINE_SQL[] =
    "WITH due AS ("
    " SELECT r.id, r.workflow_id, r.version, r.state, r.deadline_at FROM runs r"
    " WHERE r.state IN ('queued', 'running') AND r.deadline_at IS NOT NULL"
    "  AND r.deadline_at <= now() AND NOT r.deadline_alerted"
    " ORDER BY r.deadline_at LIMIT 100 FOR UPDATE SKIP LOCKED"
    "), upd AS ("
    " UPDATE runs r SET deadline_alerted = true FROM due WHERE r.id = due.id RETURNING r.id"
    "), p AS ("
    " SELECT due.id, due.workflow_id, w.name, v.dag->'on_failure' AS onf,"
    "  jsonb_build_object('event', 'run.deadline_missed', 'workflow', w.name,"
    "   'run_id', due.id, 'state', due.state, 'deadline_at', " TS("due.deadline_at") ","
    "   'url', CASE WHEN $3::text IS NOT NULL THEN $3::text || '/#/runs/' || due.id END)"
    "   AS payload"
    " FROM due JOIN workflows w ON w.id = due.workflow_id"
    " JOIN workflow_versions v ON v.workflow_id = due.workflow_id AND v.version = due.version"
    "), t AS ("
    " SELECT p.id, p.payload, e FROM p CROSS JOIN LATERAL jsonb_array_elements(CASE"
    "   jsonb_typeof(p.onf) WHEN 'array' THEN p.onf"
    "   WHEN 'object' THEN jsonb_build_array(p.onf) ELSE '[]'::jsonb END) e"
    " WHERE jsonb_typeof(e) = 'object' AND (e ? 'webhook' OR e ? 'email')"
    " UNION ALL SELECT p.id, p.payload, jsonb_build_object('webhook', $1::text) FROM p"
    "  WHERE $1::text IS NOT NULL"
    " UNION ALL SELECT p.id, p.payload, jsonb_build_object('email', $2::text) FROM p"
    "  WHERE $2::text IS NOT NULL"
    "), ob AS ("
    " INSERT INTO outbox (kind, target, payload, dedup_key)"
    " SELECT CASE WHEN e ? 'webhook' THEN 'webhook' ELSE 'email' END,"
    "  coalesce(e->>'webhook', e->>'email'), payload, 'run.deadline_missed:' || id FROM t"
    " ON CONFLICT (kind, target, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING"
    "), ev AS ("
    " INSERT INTO events (kind, workflow_id, run_id, data)"
    " SELECT 'run.deadline_missed', workflow_id, id, payload FROM p"
    ")"
    " SELECT p.id, p.name FROM p JOIN upd ON upd.id = p.id";
// clang-format on

static int check_deadlines(struct notifier *n)
{
	const char *p[3] = {n->alert_webhook, n->alert_email, n->public_url};
	PGresult *r = store_execp(n->s, "notify_deadlines", DEADLINE_SQL, 3, p);
	if (!r)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		log_warn("run missed its deadline", "run_id=%s workflow=%s", PQgetvalue(r, i, 0),
		         PQgetvalue(r, i, 1));
		metrics_count_alert("deadline");
	}
	PQclear(r);
	return 0;
}

struct threshold {
	const char *name;  /* notify_alerts.name and metrics label */
	const char *event; /* payload event when it fires */
	const char *value_sql;
	long long threshold;
	int below; /* 1: bad when value < threshold, 0: bad when value > threshold */
	const char *what, *page;
};

static char *alert_payload(struct notifier *n, const struct threshold *t, long long value)
{
	char at[40];
	fmt_time_ms(wall_ms(), at, sizeof at);
	json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:s,s:s}", "event", t->event, "alert", t->name,
	                      "value", (json_int_t)value, "threshold", (json_int_t)t->threshold,
	                      "engine", n->engine_id, "at", at);
	if (n->public_url)
		json_object_set_new(j, "url", json_sprintf("%s/#/%s", n->public_url, t->page));
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return s;
}

/* One threshold alert in one transaction: whoever locks its notify_alerts
 * row first evaluates it (others skip this round); it fires once when the
 * value crosses to the bad side and re-arms when it is back. */
static int check_threshold(struct notifier *n, const struct threshold *t)
{
	int rc = -1;
	char *payload = NULL;
	PGresult *r = NULL;
	const char *pn[1] = {t->name};

	if (store_begin(n->s) != 0)
		return -1;
	if (store_cmd(n->s, "INSERT INTO notify_alerts (name) VALUES ($1) ON CONFLICT DO NOTHING",
	              1, pn) != 0)
		goto out;
	r = store_exec(
	    n->s, "SELECT firing FROM notify_alerts WHERE name = $1 FOR UPDATE SKIP LOCKED", 1, pn);
	if (!r)
		goto out;
	if (PQntuples(r) == 0) { /* another engine is looking right now */
		rc = 0;
		goto out;
	}
	int firing = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	r = store_exec(n->s, t->value_sql, 0, NULL);
	if (!r)
		goto out;
	long long value = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	r = NULL;
	int bad = t->below ? value < t->threshold : value > t->threshold;
	char v[24], th[24];
	snprintf(v, sizeof v, "%lld", value);
	snprintf(th, sizeof th, "%lld", t->threshold);
	if (bad && !firing) {
		const char *pu[3] = {t->name, v, th};
		r = store_exec(n->s,
		               "UPDATE notify_alerts SET firing = true, crossings = crossings + 1,"
		               " value = $2::bigint, threshold = $3::bigint, changed_at = now()"
		               " WHERE name = $1 RETURNING crossings",
		               3, pu);
		if (!r)
			goto out;
		char *key = xasprintf("%s:%s", t->event, PQgetvalue(r, 0, 0));
		PQclear(r);
		r = NULL;
		payload = alert_payload(n, t, value);
		const char *po[4] = {n->alert_webhook, n->alert_email, payload, key};
		int ok =
		    store_cmd(n->s,
		              "INSERT INTO outbox (kind, target, payload, dedup_key)"
		              " SELECT k, t, $3::jsonb, $4 FROM (VALUES ('webhook', $1::text),"
		              "  ('email', $2::text)) v(k, t) WHERE t IS NOT NULL"
		              " ON CONFLICT (kind, target, dedup_key) WHERE dedup_key IS NOT NULL"
		              " DO NOTHING",
		              4, po) == 0 &&
		    store_cmd(n->s,
		              "INSERT INTO events (kind, actor, data) VALUES ($1, 'notifier', $2)",
		              2, (const char *[]){t->event, payload}) == 0;
		free(key);
		if (!ok)
			goto out;
		log_warn("alert", "alert=%s %s=%lld threshold=%lld", t->name, t->what, value,
		         t->threshold);
		metrics_count_alert(t->name);
	} else if (!bad && firing) {
		const char *pu[3] = {t->name, v, th};
		if (store_cmd(n->s,
		              "UPDATE notify_alerts SET firing = false, value = $2::bigint,"
		              " threshold = $3::bigint, changed_at = now() WHERE name = $1",
		              3, pu) != 0)
			goto out;
		log_info("alert resolved", "alert=%s %s=%lld threshold=%lld", t->name, t->what,
		         value, t->threshold);
	}
	rc = 0;
out:
	PQclear(r);
	free(payload);
	if (rc == 0 && store_commit(n->s) == 0)
		return 0;
	store_rollback(n->s);
	return -1;
}

static int check_alerts(struct notifier *n)
{
	int rc = 0;
	if (check_deadlines(n) != 0)
		rc = -1;
	if (n->o.alert_dlq >= 0) {
		struct threshold t = {"dlq",
		                      "alert.dlq_over_threshold",
		                      "SELECT count(*) FROM dead_letters WHERE resolved_at IS NULL",
		                      n->o.alert_dlq,
		                      0,
		                      "open_dead_letters",
		                      "dead-letters"};
		if (check_threshold(n, &t) != 0)
			rc = -1;
	}
	if (n->o.alert_min_slots > 0 && mono_ms() - n->started_ms >= n->o.slots_grace_ms) {
		struct threshold t = {
		    "slots",
		    "alert.executor_slots_low",
		    "SELECT coalesce(sum(slots), 0) FROM executors WHERE state = 'online'",
		    n->o.alert_min_slots,
		    1,
		    "online_slots",
		    "executors"};
		if (check_threshold(n, &t) != 0)
			rc = -1;
	}
	if (!n->smtp_url && !n->warned_no_smtp) {
		PGresult *r = store_exec(n->s,
		                         "SELECT count(*) FROM outbox WHERE kind = 'email'"
		                         " AND delivered_at IS NULL AND gave_up_at IS NULL",
		                         0, NULL);
		if (r && strcmp(PQgetvalue(r, 0, 0), "0") != 0) {
			log_warn(
			    "e-mail notifications are waiting but this engine has no --smtp-url",
			    "pending=%s", PQgetvalue(r, 0, 0));
			n->warned_no_smtp = 1;
		}
		PQclear(r);
	}
	return rc;
}

/* ------------------------------------------------------------ payloads */

// clang-format off
static const char ENRICH_SQL[] =
    "SELECT jsonb_build_object('workflow', w.name, 'run_id', r.id, 'version', r.version,"
    " 'state', r.state, 'trigger', r.trigger,"
    " 'created_at', " TS("r.created_at") ","
    " 'started_at', " TS("r.started_at") ","
    " 'finished_at', " TS("r.finished_at") ","
    " 'scheduled_for', " TS("r.scheduled_for") ","
    " 'deadline_at', " TS("r.deadline_at") ","
    " 'failed_tasks', coalesce((SELECT jsonb_agg(x.o ORDER BY x.rank, x.task) FROM ("
    "   SELECT jsonb_build_object('task', tr.task, 'state', tr.state, 'attempt', tr.attempt,"
    "    'error', left(tr.error, 1000)) AS o, tr.task,"
    "    CASE WHEN tr.state = 'upstream_failed' THEN 1 ELSE 0 END AS rank"
    "   FROM task_runs tr WHERE tr.run_id = r.id"
    "    AND tr.state IN ('failed', 'dead', 'upstream_failed')"
    "   ORDER BY rank, tr.task LIMIT " MAX_FAILED_S ") x), '[]'::jsonb),"
    " 'failed_tasks_total', (SELECT count(*) FROM task_runs tr WHERE tr.run_id = r.id"
    "   AND tr.state IN ('failed', 'dead', 'upstream_failed')))::text"
    " FROM runs r JOIN workflows w ON w.id = r.workflow_id WHERE r.id = $1";
// clang-format on

/* Adds what a receiver needs about the run that the writer of the row
 * left out (the writer's keys win). Once per row: the result is stored. */
static void enrich(struct job *j)
{
	json_t *rid = json_object_get(j->payload, "run_id");
	if (!json_is_integer(rid) || json_object_get(j->payload, "failed_tasks"))
		return;
	char id[24];
	snprintf(id, sizeof id, "%lld", (long long)json_integer_value(rid));
	const char *p[1] = {id};
	PGresult *r = store_execp(j->n->s, "notify_enrich", ENRICH_SQL, 1, p);
	if (r && PQntuples(r) == 1) {
		json_t *x = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
		if (json_is_object(x)) {
			json_object_update_missing(j->payload, x);
			j->enriched = 1;
		}
		json_decref(x);
	}
	PQclear(r);
	if (j->n->public_url && !json_object_get(j->payload, "url")) {
		json_object_set_new(j->payload, "url",
		                    json_sprintf("%s/#/runs/%s", j->n->public_url, id));
		j->enriched = 1;
	}
}

static const char *pstr(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : dflt;
}

static long long pint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

/* ------------------------------------------------------------ e-mail */

static char *subject_of(json_t *p)
{
	const char *ev = pstr(p, "event", "notification"), *wf = pstr(p, "workflow", "?");
	long long run = pint(p, "run_id");
	if (strcmp(ev, "run.deadline_missed") == 0)
		return xasprintf("[wf] run %lld of %s missed its deadline", run, wf);
	if (strcmp(ev, "alert.dlq_over_threshold") == 0)
		return xasprintf("[wf] alert: %lld open dead letters (threshold %lld)",
		                 pint(p, "value"), pint(p, "threshold"));
	if (strcmp(ev, "alert.executor_slots_low") == 0)
		return xasprintf("[wf] alert: %lld executor slots online (minimum %lld)",
		                 pint(p, "value"), pint(p, "threshold"));
	if (strncmp(ev, "run.", 4) == 0)
		return xasprintf("[wf] run %lld of %s %s", run, wf, pstr(p, "state", ev + 4));
	return xasprintf("[wf] %s", ev);
}

/* A header value: one line, and RFC 2047 base64 when it is not ASCII. */
static char *header_value(const char *s)
{
	char *line = one_line(s, 400);
	int ascii = 1;
	for (const unsigned char *q = (const unsigned char *)line; *q; q++)
		if (*q >= 0x80)
			ascii = 0;
	if (ascii)
		return line;
	size_t n = strlen(line), cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = xmalloc(cap);
	sodium_bin2base64(b64, cap, (const unsigned char *)line, n, sodium_base64_VARIANT_ORIGINAL);
	char *r = xasprintf("=?UTF-8?B?%s?=", b64);
	free(b64);
	free(line);
	return r;
}

static void line(struct buf *b, const char *label, const char *v)
{
	if (!v || !*v)
		return;
	char *s = one_line(v, 900);
	if (buf_printf(b, "%-10s %s\r\n", label, s) != 0)
		abort();
	free(s);
}

static void text_body(struct buf *b, struct job *j)
{
	json_t *p = j->payload;
	const char *ev = pstr(p, "event", "notification");
	char num[64];
	int rc = 0;
	if (strncmp(ev, "run.", 4) == 0) {
		const char *wf = pstr(p, "workflow", "?");
		char *head = one_line(wf, 200);
		if (strcmp(ev, "run.deadline_missed") == 0)
			rc |= buf_printf(
			    b, "Run %lld of workflow %s has not finished by its deadline.\r\n\r\n",
			    pint(p, "run_id"), head);
		else
			rc |= buf_printf(b, "Run %lld of workflow %s %s.\r\n\r\n",
			                 pint(p, "run_id"), head, pstr(p, "state", "finished"));
		free(head);
		line(b, "Workflow:", wf);
		snprintf(num, sizeof num, "%lld", pint(p, "version"));
		line(b, "Version:", pint(p, "version") ? num : NULL);
		snprintf(num, sizeof num, "%lld", pint(p, "run_id"));
		line(b, "Run:", num);
		line(b, "Trigger:", pstr(p, "trigger", NULL));
		line(b, "State:", pstr(p, "state", NULL));
		line(b, "Started:", pstr(p, "started_at", NULL));
		line(b, "Finished:", pstr(p, "finished_at", NULL));
		line(b, "Deadline:", pstr(p, "deadline_at", NULL));
		json_t *ft = json_object_get(p, "failed_tasks");
		if (json_array_size(ft) > 0) {
			rc |= buf_printf(b, "\r\nFailed tasks (%lld):\r\n",
			                 pint(p, "failed_tasks_total"));
			size_t i;
			json_t *t;
			json_array_foreach(ft, i, t)
			{
				char *name = one_line(pstr(t, "task", "?"), 200);
				char *err = one_line(pstr(t, "error", ""), 300);
				char after[48] = "";
				if (pint(t, "attempt") > 0)
					snprintf(after, sizeof after, " after attempt %lld",
					         pint(t, "attempt"));
				rc |=
				    buf_printf(b, "  - %s: %s%s%s%s\r\n", name,
				               pstr(t, "state", "?"), after, *err ? ": " : "", err);
				free(name);
				free(err);
			}
		}
	} else if (strncmp(ev, "alert.", 6) == 0) {
		char *subj = subject_of(p);
		rc |= buf_printf(b, "%s\r\n\r\n", subj + 5);
		free(subj);
		line(b, "Engine:", pstr(p, "engine", NULL));
		line(b, "At:", pstr(p, "at", NULL));
	} else {
		char *js = json_dumps(p, JSON_INDENT(2) | JSON_SORT_KEYS);
		rc |= buf_puts(b, "A wf notification:\r\n\r\n");
		for (char *q = js; q && *q;) {
			size_t n = strcspn(q, "\n");
			rc |= buf_printf(b, "%.*s\r\n", (int)(n > 900 ? 900 : n), q);
			q += n + (q[n] == '\n');
		}
		free(js);
	}
	if (pstr(p, "url", NULL)) {
		rc |= buf_puts(b, "\r\n");
		line(b, "Dashboard:", pstr(p, "url", NULL));
	}
	rc |= buf_printf(b, "\r\n-- \r\nwf notifier, engine %s, delivery %s\r\n", j->n->engine_id,
	                 j->idtxt);
	if (rc)
		abort(); /* unbounded buffer: cannot fail */
}

static char *build_message(struct job *j, const char *from)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct buf b;
	struct tm tm;
	time_t now = time(NULL);
	gmtime_r(&now, &tm);
	const char *at = strchr(from, '@');
	char *subj_raw = subject_of(j->payload), *subj = header_value(subj_raw);
	char *ev = one_line(pstr(j->payload, "event", "notification"), 100);
	buf_init(&b, 0);
	int rc = buf_printf(&b,
	                    "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n"
	                    "From: <%s>\r\nTo: <%s>\r\n"
	                    "Message-ID: <wf.outbox.%s@%s>\r\n"
	                    "Subject: %s\r\n"
	                    "MIME-Version: 1.0\r\n"
	                    "Content-Type: text/plain; charset=utf-8\r\n"
	                    "Content-Transfer-Encoding: 8bit\r\n"
	                    "Auto-Submitted: auto-generated\r\n"
	                    "X-WF-Event: %s\r\nX-WF-Delivery: %s\r\n\r\n",
	                    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
	                    tm.tm_hour, tm.tm_min, tm.tm_sec, from, j->target, j->idtxt,
	                    at ? at + 1 : "wf.invalid", subj, ev, j->idtxt);
	if (rc)
		abort();
	text_body(&b, j);
	free(subj_raw);
	free(subj);
	free(ev);
	return buf_detach(&b);
}

/* ------------------------------------------------------------ transfers */

static size_t on_response(char *data, size_t size, size_t nmemb, void *ud)
{
	struct job *j = ud;
	size_t n = size * nmemb;
	if (j->resp_len < ERR_EXCERPT) {
		size_t k = n < ERR_EXCERPT - j->resp_len ? n : ERR_EXCERPT - j->resp_len;
		memcpy(j->resp + j->resp_len, data, k);
		j->resp_len += k;
		j->resp[j->resp_len] = '\0';
	}
	j->resp_total += n;
	return j->resp_total > MAX_RESPONSE ? 0 : n; /* 0 stops the transfer */
}

static size_t on_upload(char *dst, size_t size, size_t nmemb, void *ud)
{
	struct job *j = ud;
	size_t n = size * nmemb, left = j->body_len - j->body_off;
	if (n > left)
		n = left;
	memcpy(dst, j->body + j->body_off, n);
	j->body_off += n;
	return n;
}

static void fail_now(struct job *j, int permanent, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_now(struct job *j, int permanent, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(j->fail, sizeof j->fail, fmt, ap);
	va_end(ap);
	j->permanent = permanent;
	j->done = 1;
}

static CURL *easy_common(struct job *j, long timeout_ms)
{
	CURL *e = curl_easy_init();
	if (!e)
		return NULL;
	curl_easy_setopt(e, CURLOPT_PRIVATE, j);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->cerr);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? timeout_ms : 5000L);
	curl_easy_setopt(e, CURLOPT_URL, j->kind == K_WEBHOOK ? j->target : j->n->smtp_url);
	return e;
}

static void prepare_webhook(struct job *j)
{
	struct notifier *n = j->n;
	char hdr[256], ts[24];
	if (strncasecmp(j->target, "http://", 7) != 0 &&
	    strncasecmp(j->target, "https://", 8) != 0) {
		fail_now(j, 1, "not an http or https URL: %.200s", j->target);
		return;
	}
	j->body = json_dumps(j->payload, JSON_COMPACT | JSON_SORT_KEYS);
	j->body_len = strlen(j->body);
	char *ev = one_line(pstr(j->payload, "event", "notification"), 100);
	snprintf(hdr, sizeof hdr, "X-WF-Event: %s", ev);
	free(ev);
	j->list = curl_slist_append(j->list, "Content-Type: application/json");
	j->list = curl_slist_append(j->list, hdr);
	snprintf(hdr, sizeof hdr, "X-WF-Delivery: %s", j->idtxt);
	j->list = curl_slist_append(j->list, hdr);
	snprintf(ts, sizeof ts, "%lld", (long long)(wall_ms() / 1000));
	snprintf(hdr, sizeof hdr, "X-WF-Timestamp: %s", ts);
	j->list = curl_slist_append(j->list, hdr);
	if (n->secret) {
		unsigned char mac[crypto_auth_hmacsha256_BYTES];
		char hex[2 * crypto_auth_hmacsha256_BYTES + 1];
		crypto_auth_hmacsha256_state st;
		crypto_auth_hmacsha256_init(&st, n->secret, n->secret_len);
		crypto_auth_hmacsha256_update(&st, (const unsigned char *)j->body, j->body_len);
		crypto_auth_hmacsha256_final(&st, mac);
		hex_encode(mac, sizeof mac, hex);
		snprintf(hdr, sizeof hdr, "X-WF-Signature: sha256=%s", hex);
		j->list = curl_slist_append(j->list, hdr);
	}
	j->list = curl_slist_append(j->list, "Expect:");
	CURL *e = easy_common(j, (long)n->o.timeout_ms);
	if (!j->list || !e) {
		if (e)
			curl_easy_cleanup(e);
		fail_now(j, 0, "%s", "out of curl handles");
		return;
	}
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 3L);
	curl_easy_setopt(e, CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
	curl_easy_setopt(e, CURLOPT_USERAGENT, USER_AGENT);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->list);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->body_len);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_response);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
	j->easy = e;
}

static void prepare_email(struct job *j)
{
	struct notifier *n = j->n;
	char addr[300];
	if (!n->smtp_url) {
		fail_now(j, 0, "%s", "no --smtp-url on this engine");
		return;
	}
	if (!valid_address(j->target)) {
		fail_now(j, 1, "not an e-mail address: %.200s", j->target);
		return;
	}
	j->body = build_message(j, n->smtp_from);
	j->body_len = strlen(j->body);
	snprintf(addr, sizeof addr, "<%s>", j->target);
	j->list = curl_slist_append(NULL, addr);
	CURL *e = easy_common(j, (long)n->o.timeout_ms * 3);
	if (!j->list || !e) {
		if (e)
			curl_easy_cleanup(e);
		fail_now(j, 0, "%s", "out of curl handles");
		return;
	}
	snprintf(addr, sizeof addr, "<%s>", n->smtp_from);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(e, CURLOPT_MAIL_FROM, addr);
	curl_easy_setopt(e, CURLOPT_MAIL_RCPT, j->list);
	curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, on_upload);
	curl_easy_setopt(e, CURLOPT_READDATA, j);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_response);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
	if (n->smtp_user) {
		/* never send a password in the clear */
		curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
		curl_easy_setopt(e, CURLOPT_USERNAME, n->smtp_user);
		curl_easy_setopt(e, CURLOPT_PASSWORD, n->smtp_password ? n->smtp_password : "");
	} else {
		curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	}
	j->easy = e;
}

/* The outcome of a finished transfer. */
static void finish(struct job *j, CURLcode res)
{
	long code = 0;
	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
	j->done = 1;
	if (j->kind == K_WEBHOOK) {
		/* a 2xx whose body we stopped reading is still a 2xx */
		if ((res == CURLE_OK ||
		     (res == CURLE_WRITE_ERROR && j->resp_total > MAX_RESPONSE)) &&
		    code >= 200 && code < 300) {
			j->delivered = 1;
			return;
		}
		if (res == CURLE_OK || res == CURLE_WRITE_ERROR) {
			char *excerpt = one_line(j->resp, ERR_EXCERPT);
			snprintf(j->fail, sizeof j->fail, "HTTP %ld%s%s", code,
			         *excerpt ? ": " : "", excerpt);
			free(excerpt);
			return;
		}
	} else if (res == CURLE_OK) {
		j->delivered = 1;
		return;
	}
	snprintf(j->fail, sizeof j->fail, "%s%s%s", curl_easy_strerror(res), j->cerr[0] ? ": " : "",
	         j->cerr);
}

/* Runs the prepared transfers together. Returns 1 when interrupted by
 * notify_stop (unfinished jobs stay !done), else 0. */
static int perform(struct notifier *n, struct job *jobs, int count)
{
	int running = 0, added = 0;
	for (int i = 0; i < count; i++)
		if (jobs[i].easy && !jobs[i].done &&
		    curl_multi_add_handle(n->multi, jobs[i].easy) == CURLM_OK)
			added++;
		else if (jobs[i].easy && !jobs[i].done)
			fail_now(&jobs[i], 0, "%s", "cannot start the transfer");
	if (!added)
		return 0;
	for (;;) {
		if (curl_multi_perform(n->multi, &running) != CURLM_OK)
			break;
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(n->multi, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			char *priv = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
			if (priv)
				finish((struct job *)priv, msg->data.result);
		}
		if (!running)
			break;
		if (stopping(n))
			return 1;
		curl_multi_poll(n->multi, NULL, 0, 200, NULL);
	}
	for (int i = 0; i < count; i++) /* the multi handle broke: say so */
		if (jobs[i].easy && !jobs[i].done)
			fail_now(&jobs[i], 0, "%s", "transfer aborted");
	return 0;
}

/* ------------------------------------------------------------ the outbox */

static const char CLAIM_SQL[] =
    "WITH c AS ("
    " SELECT id FROM outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL"
    "  AND available_at <= now() AND (kind <> 'email' OR $3::int = 1)"
    " ORDER BY available_at, id LIMIT $1::int FOR UPDATE SKIP LOCKED"
    ")"
    " UPDATE outbox o SET available_at = now() + $2::bigint * interval '1 millisecond'"
    " FROM c WHERE o.id = c.id"
    " RETURNING o.id, o.kind, o.target, o.payload::text, o.attempts, o.available_at::text";

static const char DELIVERED_SQL[] =
    "UPDATE outbox SET delivered_at = now(), attempts = attempts + 1, last_error = NULL,"
    " payload = coalesce($2::jsonb, payload) WHERE id = $1 AND delivered_at IS NULL";

/* $4: 1 = give up. Fenced by our lease ($6): if the lease ran out and
 * another engine claimed the row, its bookkeeping wins. */
static const char FAILED_SQL[] =
    "UPDATE outbox SET attempts = attempts + 1, last_error = $2,"
    " payload = coalesce($3::jsonb, payload),"
    " available_at = CASE WHEN $4::int = 1 THEN 'infinity'"
    "  ELSE now() + $5::bigint * interval '1 millisecond' END,"
    " gave_up_at = CASE WHEN $4::int = 1 THEN now() END"
    " WHERE id = $1 AND delivered_at IS NULL AND available_at = $6::timestamptz";

static const char RELEASE_SQL[] =
    "UPDATE outbox SET available_at = now()"
    " WHERE id = $1 AND delivered_at IS NULL AND available_at = $2::timestamptz";

static int64_t backoff_ms(const struct notifier *n, int attempts_done)
{
	int64_t d = n->o.backoff_min_ms;
	for (int i = 1; i < attempts_done && d < n->o.backoff_max_ms; i++)
		d *= 2;
	if (d > n->o.backoff_max_ms)
		d = n->o.backoff_max_ms;
	/* half jitter: [d/2, d] */
	uint32_t half = (uint32_t)(d / 2 > UINT32_MAX - 1 ? UINT32_MAX - 1 : d / 2);
	return d - half + (int64_t)randombytes_uniform(half + 1);
}

static int record(struct notifier *n, struct job *j)
{
	const char *kind = j->kind == K_EMAIL ? "email" : "webhook";
	char *payload = j->enriched ? json_dumps(j->payload, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int rc;
	if (j->delivered) {
		const char *p[2] = {j->idtxt, payload};
		rc = store_cmd(n->s, DELIVERED_SQL, 2, p);
		log_info("notification delivered", "outbox_id=%s kind=%s attempt=%d", j->idtxt,
		         kind, j->attempts + 1);
		metrics_count_delivery(kind, "delivered");
	} else {
		int done = j->attempts + 1, give_up = j->permanent || done >= n->o.max_attempts;
		char delay[24], *msg;
		snprintf(delay, sizeof delay, "%lld", (long long)backoff_ms(n, done));
		msg = give_up ? xasprintf("gave up after %d attempt%s: %s", done,
		                          done == 1 ? "" : "s", j->fail)
		              : xstrdup(j->fail);
		const char *p[6] = {j->idtxt, msg, payload, give_up ? "1" : "0", delay, j->lease};
		rc = store_cmd(n->s, FAILED_SQL, 6, p);
		if (give_up)
			log_error("notification given up",
			          "outbox_id=%s kind=%s attempts=%d error=%s", j->idtxt, kind, done,
			          j->fail);
		else
			log_warn("notification failed",
			         "outbox_id=%s kind=%s attempt=%d retry_in_ms=%s "
			         "error=%s",
			         j->idtxt, kind, done, delay, j->fail);
		metrics_count_delivery(kind, give_up ? "gave_up" : "failed");
		free(msg);
	}
	free(payload);
	return rc;
}

static void job_release(struct notifier *n, struct job *j)
{
	if (j->easy) {
		curl_multi_remove_handle(n->multi, j->easy);
		curl_easy_cleanup(j->easy);
	}
	curl_slist_free_all(j->list);
	json_decref(j->payload);
	free(j->body);
	free(j->target);
	free(j->lease);
}

static int deliver_batch(struct notifier *n)
{
	int rc = -1, count = 0, interrupted = 0;
	struct job *jobs = NULL;
	char lim[16], lease[24];
	snprintf(lim, sizeof lim, "%d", n->o.batch);
	snprintf(lease, sizeof lease, "%lld", (long long)n->o.lease_ms);
	const char *p[3] = {lim, lease, n->smtp_url ? "1" : "0"};
	PGresult *r = store_execp(n->s, "notify_claim", CLAIM_SQL, 3, p);
	if (!r)
		return -1;
	count = PQntuples(r);
	if (n->o.test_stop_after_claim) {
		PQclear(r);
		return count;
	}
	jobs = xcalloc(count ? (size_t)count : 1, sizeof *jobs);
	for (int i = 0; i < count; i++) {
		struct job *j = &jobs[i];
		j->n = n;
		j->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		snprintf(j->idtxt, sizeof j->idtxt, "%lld", j->id);
		const char *kind = PQgetvalue(r, i, 1);
		j->kind = strcmp(kind, "webhook") == 0 ? K_WEBHOOK
		          : strcmp(kind, "email") == 0 ? K_EMAIL
		                                       : K_OTHER;
		j->target = xstrdup(PQgetvalue(r, i, 2));
		j->payload = json_loads(PQgetvalue(r, i, 3), 0, NULL);
		j->attempts = (int)strtol(PQgetvalue(r, i, 4), NULL, 10);
		j->lease = xstrdup(PQgetvalue(r, i, 5));
		if (!json_is_object(j->payload)) {
			json_decref(j->payload);
			j->payload = json_object();
		}
		if (j->kind == K_OTHER) {
			fail_now(j, 1, "unknown notification kind '%.50s'", kind);
			continue;
		}
		enrich(j);
		if (j->kind == K_WEBHOOK)
			prepare_webhook(j);
		else
			prepare_email(j);
	}
	PQclear(r);
	interrupted = perform(n, jobs, count);
	rc = count;
	for (int i = 0; i < count; i++) {
		struct job *j = &jobs[i];
		if (j->done) {
			if (record(n, j) != 0)
				rc = -1;
		} else if (interrupted) {
			const char *pr[2] = {j->idtxt, j->lease};
			if (store_cmd(n->s, RELEASE_SQL, 2, pr) != 0)
				rc = -1;
		}
		job_release(n, j);
	}
	free(jobs);
	return rc;
}

/* ------------------------------------------------------------ lifecycle */

int notify_run_once(struct notifier *n)
{
	int rc = 0;
	if (mono_ms() >= n->next_alert_ms) {
		n->next_alert_ms = mono_ms() + n->o.alert_interval_ms;
		if (check_alerts(n) != 0)
			rc = -1;
	}
	int d = deliver_batch(n);
	return d < 0 ? -1 : rc < 0 ? -1 : d;
}

struct notifier *notify_new(const struct notify_opts *o, char *err, size_t errlen)
{
	struct notifier *n = xcalloc(1, sizeof *n);
	n->o = *o;
	n->conninfo = dup_or_null(o->conninfo);
	n->engine_id = xstrdup(o->engine_id ? o->engine_id : "engine");
	n->smtp_url = dup_or_null(o->smtp_url);
	n->smtp_from = xstrdup(o->smtp_from && *o->smtp_from ? o->smtp_from : "wf@localhost");
	n->public_url = dup_or_null(o->public_url ? o->public_url : getenv("WF_PUBLIC_URL"));
	n->alert_webhook = dup_or_null(o->alert_webhook);
	n->alert_email = dup_or_null(o->alert_email);
	n->smtp_user = dup_or_null(getenv("WF_SMTP_USER"));
	n->smtp_password = dup_or_null(getenv("WF_SMTP_PASSWORD"));
	n->o.conninfo = n->conninfo;
	n->o.engine_id = n->engine_id;
	n->o.smtp_url = n->smtp_url;
	n->o.smtp_from = n->smtp_from;
	n->o.public_url = n->public_url;
	n->o.alert_webhook = n->alert_webhook;
	n->o.alert_email = n->alert_email;
	n->o.webhook_secret_file = NULL;
	pthread_mutex_init(&n->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->cv, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&n->stop, 0);
	n->started_ms = mono_ms();

	if (n->public_url) { /* links are built as URL + "/#/..." */
		size_t k = strlen(n->public_url);
		while (k && n->public_url[k - 1] == '/')
			n->public_url[--k] = '\0';
	}
	if (n->o.poll_ms <= 0 || n->o.batch <= 0 || n->o.max_attempts <= 0 || n->o.lease_ms <= 0 ||
	    n->o.timeout_ms <= 0 || n->o.backoff_min_ms <= 0 ||
	    n->o.backoff_max_ms < n->o.backoff_min_ms) {
		snprintf(err, errlen, "notifier: invalid options (call notify_opts_init first)");
		goto fail;
	}
	if (n->alert_email && !valid_address(n->alert_email)) {
		snprintf(err, errlen, "--alert-email: not an e-mail address: '%s'", n->alert_email);
		goto fail;
	}
	if (!valid_address(n->smtp_from)) {
		snprintf(err, errlen, "--smtp-from: not an e-mail address: '%s'", n->smtp_from);
		goto fail;
	}
	if (n->alert_email && !n->smtp_url)
		log_warn("--alert-email without --smtp-url: another engine must send the e-mail",
		         "alert_email=%s", n->alert_email);
	if (sodium_init() < 0) {
		snprintf(err, errlen, "notifier: libsodium failed to initialise");
		goto fail;
	}
	if (read_secret(n, o->webhook_secret_file, err, errlen) != 0)
		goto fail;
	if (!n->secret)
		log_warn("no webhook secret: webhooks are sent without X-WF-Signature", "hint=%s",
		         "set --webhook-secret-file FILE or WF_WEBHOOK_SECRET");
	if ((n->o.alert_dlq >= 0 || n->o.alert_min_slots > 0) && !n->alert_webhook &&
	    !n->alert_email)
		log_warn("alerts have no --alert-webhook or --alert-email: they go to the log and "
		         "the events table only",
		         "%s", "");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "notifier: libcurl failed to initialise");
		goto fail;
	}
	n->multi = curl_multi_init();
	if (!n->multi) {
		snprintf(err, errlen, "notifier: cannot create a curl multi handle");
		goto fail;
	}
	n->s = store_open(n->conninfo, err, errlen);
	if (!n->s)
		goto fail;
	return n;
fail:
	notify_stop(n);
	return NULL;
}

static void *thread_main(void *arg)
{
	struct notifier *n = arg;
	int64_t wait = n->o.poll_ms;
	while (!stopping(n)) {
		int handled = notify_run_once(n);
		if (handled >= n->o.batch)
			continue; /* more may be due */
		/* on a database error the store reconnects by itself: back off */
		wait = handled < 0 ? (wait * 2 > 5000 ? 5000 : wait * 2) : n->o.poll_ms;
		if (wait < n->o.poll_ms)
			wait = n->o.poll_ms;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(wait / 1000);
		ts.tv_nsec += (long)(wait % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&n->mu);
		while (!stopping(n) && pthread_cond_timedwait(&n->cv, &n->mu, &ts) == 0)
			;
		pthread_mutex_unlock(&n->mu);
	}
	return NULL;
}

struct notifier *notify_start(const struct notify_opts *o, char *err, size_t errlen)
{
	struct notifier *n = notify_new(o, err, errlen);
	if (!n)
		return NULL;
	int e = pthread_create(&n->thread, NULL, thread_main, n);
	if (e != 0) {
		snprintf(err, errlen, "notifier: cannot start its thread: %s", strerror(e));
		notify_stop(n);
		return NULL;
	}
	n->has_thread = 1;
	log_info("notifier started",
	         "engine_id=%s signed=%s smtp=%s alert_dlq=%lld alert_min_slots=%lld", n->engine_id,
	         n->secret ? "yes" : "no", n->smtp_url ? n->smtp_url : "none", n->o.alert_dlq,
	         n->o.alert_min_slots);
	return n;
}

void notify_stop(struct notifier *n)
{
	if (!n)
		return;
	if (n->has_thread) {
		pthread_mutex_lock(&n->mu);
		atomic_store(&n->stop, 1);
		pthread_cond_broadcast(&n->cv);
		pthread_mutex_unlock(&n->mu);
		if (n->multi)
			curl_multi_wakeup(n->multi);
		pthread_join(n->thread, NULL);
	}
	if (n->multi)
		curl_multi_cleanup(n->multi);
	store_close(n->s);
	pthread_cond_destroy(&n->cv);
	pthread_mutex_destroy(&n->mu);
	if (n->secret)
		sodium_memzero(n->secret, n->secret_len);
	if (n->smtp_password)
		sodium_memzero(n->smtp_password, strlen(n->smtp_password));
	free(n->secret);
	free(n->conninfo);
	free(n->engine_id);
	free(n->smtp_url);
	free(n->smtp_from);
	free(n->public_url);
	free(n->alert_webhook);
	free(n->alert_email);
	free(n->smtp_user);
	free(n->smtp_password);
	free(n);
}
