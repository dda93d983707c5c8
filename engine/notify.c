/* The notifier (see notify.h for the contract): claim due outbox rows with
 * a lease, deliver the batch concurrently through one curl multi handle,
 * record each outcome fenced by the lease, and now and then write engine
 * alerts to the outbox (notify_alerts.c). Payloads and e-mail messages are
 * built in notify_mail.c, options parsed in notify_opts.c. */
#include "notify_int.h"

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
#define USER_AGENT   "wf-notifier/" WF_VERSION

/* ------------------------------------------------------------ secrets and addresses */

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
	char *ev = notify__one_line(notify__pstr(j->payload, "event", "notification"), 100);
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
	j->body = notify__build_message(j, n->smtp_from);
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
			char *excerpt = notify__one_line(j->resp, ERR_EXCERPT);
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
		notify__enrich(j);
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
		if (notify__check_alerts(n) != 0)
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
		struct timespec ts = deadline_in(CLOCK_MONOTONIC, wait);
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
