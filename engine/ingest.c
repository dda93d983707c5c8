/* The ingester: frames in, batches out. */
#include "ingest.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "runs.h"
#include "util.h"
#include "wire.h"
#include "xalloc.h"

#define FULL_LOG_EVERY_MS 5000

/* A finished frame (owned) and what the engine knew of its task when it
 * sent it (registry.c; run_id 0: not sent by this engine). */
struct pend {
	json_t *msg;
	long long run_id;
	int sole;
};

/* The buffers are shared by the loop (which pushes) and the applier
 * thread (which takes them out in ingest_apply): mu guards every field
 * below it; cond is signalled when something was pushed or on
 * ingest_wake (after which no wait blocks: it is the appliers' stop). */
struct ingest {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int woken;
	size_t inflight; /* taken out by ingest_apply, not applied yet */
	size_t max;
	/* finished frames, oldest first */
	struct pend *res;
	size_t nres, capres;
	/* started records */
	long long *st_id;
	int *st_att;
	int64_t *st_at;
	size_t nst, capst;
	int64_t full_logged_ms;
	unsigned long long dropped_results, dropped_started, malformed;
};

struct ingest *ingest_new(size_t max_buffer)
{
	struct ingest *g = xcalloc(1, sizeof *g);
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->max = max_buffer ? max_buffer : 100000;
	return g;
}

void ingest_free(struct ingest *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->nres; i++)
		json_decref(g->res[i].msg);
	free(g->res);
	free(g->st_id);
	free(g->st_att);
	free(g->st_at);
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

size_t ingest_pending(struct ingest *g)
{
	pthread_mutex_lock(&g->mu);
	size_t n = g->nres + g->nst + g->inflight;
	pthread_mutex_unlock(&g->mu);
	return n;
}

void ingest_wait(struct ingest *g, int timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&g->mu);
	while (!g->woken && g->nres + g->nst == 0)
		if (pthread_cond_timedwait(&g->cond, &g->mu, &ts) != 0)
			break;
	pthread_mutex_unlock(&g->mu);
}

void ingest_wake(struct ingest *g)
{
	pthread_mutex_lock(&g->mu);
	g->woken = 1;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->mu);
}

static void log_full(struct ingest *g, const char *what)
{
	int64_t now = mono_ms();
	if (now - g->full_logged_ms < FULL_LOG_EVERY_MS)
		return;
	g->full_logged_ms = now;
	log_error("ingest buffer full: dropping (leases will recover the tasks)",
	          "what=%s buffered=%zu dropped_results=%llu dropped_started=%llu", what, g->max,
	          g->dropped_results, g->dropped_started);
}

static void reserve_res(struct ingest *g, size_t n)
{
	if (n <= g->capres)
		return;
	while (g->capres < n)
		g->capres = g->capres ? g->capres * 2 : 1024;
	g->res = xrealloc(g->res, g->capres * sizeof *g->res);
}

static void push_result(struct ingest *g, json_t *finished, const struct reg_sent *sent)
{
	pthread_mutex_lock(&g->mu);
	if (g->nres >= g->max) {
		g->dropped_results++;
		log_full(g, "results");
		pthread_mutex_unlock(&g->mu);
		json_decref(finished);
		return;
	}
	reserve_res(g, g->nres + 1);
	g->res[g->nres++] = (struct pend){finished, sent ? sent->run_id : 0, sent ? sent->sole : 0};
	pthread_cond_signal(&g->cond);
	pthread_mutex_unlock(&g->mu);
}

void ingest_push_result(struct ingest *g, json_t *finished)
{
	push_result(g, finished, NULL);
}

static void push_started_locked(struct ingest *g, long long id, int attempt, int64_t at_ms)
{
	if (g->nst >= g->max) {
		g->dropped_started++;
		log_full(g, "started");
		return;
	}
	if (g->nst == g->capst) {
		g->capst = g->capst ? g->capst * 2 : 1024;
		g->st_id = xrealloc(g->st_id, g->capst * sizeof *g->st_id);
		g->st_att = xrealloc(g->st_att, g->capst * sizeof *g->st_att);
		g->st_at = xrealloc(g->st_at, g->capst * sizeof *g->st_at);
	}
	g->st_id[g->nst] = id;
	g->st_att[g->nst] = attempt;
	g->st_at[g->nst] = at_ms;
	g->nst++;
}

static void push_started(struct ingest *g, long long id, int attempt, int64_t at_ms)
{
	pthread_mutex_lock(&g->mu);
	push_started_locked(g, id, attempt, at_ms);
	pthread_cond_signal(&g->cond);
	pthread_mutex_unlock(&g->mu);
}

int ingest_frame(struct ingest *g, struct reg *r, struct store *s, const void *data, size_t len)
{
	json_t *msg = NULL;
	char err[256];
	int rc = -1;

	if (wire_decode(data, len, &msg, err, sizeof err) != 0) {
		g->malformed++;
		log_warn("dropping a malformed frame", "reason=\"%s\" bytes=%zu", err, len);
		goto out;
	}
	const char *type = wire_type(msg);
	const char *exec_id = json_string_value(json_object_get(msg, "executor_id"));
	long long id = json_integer_value(json_object_get(msg, "task_run_id"));
	int attempt = (int)json_integer_value(json_object_get(msg, "attempt"));
	rc = 0;
	if (strcmp(type, "finished") == 0) {
		const char *status = json_string_value(json_object_get(msg, "status"));
		struct reg_sent sent;
		int known = 0;
		if (status && strcmp(status, "rejected") == 0)
			reg_rejected(r, exec_id, id, attempt);
		else
			known = reg_finished(r, exec_id, id, attempt, &sent);
		push_result(g, msg, known ? &sent : NULL);
		msg = NULL;
		rc = 1;
	} else if (strcmp(type, "started") == 0) {
		reg_started(r, exec_id, id, attempt);
		push_started(g, id, attempt, json_integer_value(json_object_get(msg, "at_ms")));
	} else if (strcmp(type, "heartbeat") == 0) {
		reg_heartbeat(r, s, msg);
	} else if (strcmp(type, "hello") == 0) {
		reg_hello(r, msg);
	} else if (strcmp(type, "bye") == 0) {
		reg_bye(r, msg);
	} else {
		g->malformed++;
		log_warn("dropping a frame an engine does not take", "type=%s executor_id=%s", type,
		         exec_id ? exec_id : "");
		rc = -1;
	}
out:
	json_decref(msg);
	return rc;
}

static int64_t int_or(const json_t *o, const char *key, int64_t dflt)
{
	const json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static void to_result(const struct pend *p, struct task_result *t)
{
	const json_t *v, *m = p->msg;
	memset(t, 0, sizeof *t);
	t->run_id = p->run_id;
	t->sole = p->run_id ? p->sole : -1;
	t->task_run_id = json_integer_value(json_object_get(m, "task_run_id"));
	t->attempt = (int)json_integer_value(json_object_get(m, "attempt"));
	t->executor_id = json_string_value(json_object_get(m, "executor_id"));
	t->status = json_string_value(json_object_get(m, "status"));
	v = json_object_get(m, "exit_code");
	if (json_is_integer(v)) {
		t->exit_code = (int)json_integer_value(v);
		t->has_exit_code = 1;
	}
	v = json_object_get(m, "http_status");
	if (json_is_integer(v)) {
		t->http_status = (int)json_integer_value(v);
		t->has_http_status = 1;
	}
	/* absent: an empty output, which executors leave out (wire_finished) */
	v = json_object_get(m, "output");
	t->output = v ? json_string_value(v) : "";
	t->error = json_string_value(json_object_get(m, "error"));
	t->duration_ms = int_or(m, "duration_ms", 0);
	v = json_object_get(m, "outputs");
	t->outputs = json_is_object(v) ? (json_t *)v : NULL;
	t->started_ms = int_or(m, "started_ms", 0);
	t->finished_ms = int_or(m, "finished_ms", 0);
}

/* 1 when the last failure may go away by itself (connection, shutdown,
 * resources, deadlock or serialization, locks): retry, never drop. */
static int transient(const struct store *s)
{
	static const char *const classes[] = {"08", "57", "53", "40", "55", "58", NULL};
	const char *st = store_sqlstate(s);
	if (store_down(s) || !st[0])
		return 1;
	for (int i = 0; classes[i]; i++)
		if (strncmp(st, classes[i], 2) == 0)
			return 1;
	return 0;
}

/* A batch failed while the database is up: applies its results one by one
 * and drops (with an error) each one the database refuses on its own, so a
 * poison result cannot block every result behind it; its task comes back
 * through lease expiry. Returns 0, or -1 when the database went away. */
static int isolate(struct task_result *tr, struct store *s, struct pend *res, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		to_result(&res[i], &tr[i]);
		if (runs_apply_results(s, &tr[i], 1) >= 0)
			continue;
		if (transient(s))
			return -1;
		log_error("dropping a result the database refuses",
		          "task_run_id=%lld attempt=%d executor_id=%s error=\"%s\"",
		          tr[i].task_run_id, tr[i].attempt,
		          tr[i].executor_id ? tr[i].executor_id : "", store_error(s));
	}
	return 0;
}

static int cmp_key(const void *a, const void *b)
{
	const long long *x = a, *y = b;
	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return (x[1] > y[1]) - (x[1] < y[1]);
}

/* What one ingest_apply took out of the buffers. */
struct taken {
	struct pend *res;
	size_t nres;
	long long *st_id;
	int *st_att;
	int64_t *st_at;
	size_t nst;
	size_t taken; /* counted in the ingest's inflight */
};

/* Forgets the buffered started records whose `finished` is buffered too
 * (called with mu held): the result carries started_ms and sets the
 * attempt's started_at itself, so applying `started` first would only
 * update the same rows twice (most short tasks report both at once). */
static void drop_started_of_finished(struct ingest *g)
{
	if (g->nst == 0 || g->nres == 0)
		return;
	long long *keys = xmalloc(g->nres * 2 * sizeof *keys);
	for (size_t i = 0; i < g->nres; i++) {
		keys[2 * i] = json_integer_value(json_object_get(g->res[i].msg, "task_run_id"));
		keys[2 * i + 1] = json_integer_value(json_object_get(g->res[i].msg, "attempt"));
	}
	qsort(keys, g->nres, 2 * sizeof *keys, cmp_key);
	size_t k = 0;
	for (size_t i = 0; i < g->nst; i++) {
		long long key[2] = {g->st_id[i], g->st_att[i]};
		if (bsearch(key, keys, g->nres, 2 * sizeof *keys, cmp_key))
			continue;
		g->st_id[k] = g->st_id[i];
		g->st_att[k] = g->st_att[i];
		g->st_at[k] = g->st_at[i];
		k++;
	}
	g->nst = k;
	free(keys);
}

/* Takes the oldest max results and every started record out (the loop
 * keeps pushing meanwhile, and other appliers may take the rest). */
static void take(struct ingest *g, struct taken *t, size_t max)
{
	pthread_mutex_lock(&g->mu);
	drop_started_of_finished(g); /* against every buffered result */
	if (g->nres <= max) {
		t->res = g->res;
		t->nres = g->nres;
		g->res = NULL;
		g->nres = g->capres = 0;
	} else {
		t->nres = max;
		t->res = xmalloc(max * sizeof *t->res);
		memcpy(t->res, g->res, max * sizeof *t->res);
		memmove(g->res, g->res + max, (g->nres - max) * sizeof *g->res);
		g->nres -= max;
	}
	t->st_id = g->st_id;
	t->st_att = g->st_att;
	t->st_at = g->st_at;
	t->nst = g->nst;
	g->st_id = NULL;
	g->st_att = NULL;
	g->st_at = NULL;
	g->nst = g->capst = 0;
	t->taken = t->nres + t->nst;
	g->inflight += t->taken;
	pthread_mutex_unlock(&g->mu);
}

/* Puts back what was not applied, ahead of what arrived meanwhile, and
 * frees the taken arrays. */
static void put_back(struct ingest *g, struct taken *t, size_t res_from, int started_too)
{
	size_t left = t->nres - res_from;
	pthread_mutex_lock(&g->mu);
	if (left > 0) {
		reserve_res(g, g->nres + left);
		memmove(g->res + left, g->res, g->nres * sizeof *g->res);
		memcpy(g->res, t->res + res_from, left * sizeof *g->res);
		g->nres += left;
	}
	if (started_too)
		for (size_t i = 0; i < t->nst; i++)
			push_started_locked(g, t->st_id[i], t->st_att[i], t->st_at[i]);
	g->inflight -= t->taken;
	pthread_mutex_unlock(&g->mu);
	free(t->res);
	free(t->st_id);
	free(t->st_att);
	free(t->st_at);
}

int ingest_apply(struct ingest *g, struct store *s, int batch)
{
	return ingest_apply_some(g, s, batch, (size_t)-1);
}

int ingest_apply_some(struct ingest *g, struct store *s, int batch, size_t max)
{
	int applied = 0;
	size_t done = 0;
	struct taken t;
	struct task_result *tr = NULL;

	if (batch <= 0)
		batch = 500;
	take(g, &t, max);
	if (t.nst > 0) {
		if (runs_apply_started(s, t.st_id, t.st_att, t.st_at, (int)t.nst) != 0) {
			if (transient(s)) {
				put_back(g, &t, 0, 1);
				return -1;
			}
			/* The database is up but refused: never let one bad record
			 * block the stream (started records are informative). */
			log_warn("dropping started records the database refused",
			         "count=%zu error=\"%s\"", t.nst, store_error(s));
		}
		t.nst = 0;
	}
	tr = xmalloc((size_t)batch * sizeof *tr); /* per call: appliers run side by side */
	while (done < t.nres) {
		size_t n = t.nres - done;
		if (n > (size_t)batch)
			n = (size_t)batch;
		for (size_t i = 0; i < n; i++)
			to_result(&t.res[done + i], &tr[i]);
		if (runs_apply_results(s, tr, (int)n) < 0) {
			if (transient(s) || isolate(tr, s, t.res + done, n) != 0)
				break;
		}
		for (size_t i = 0; i < n; i++) {
			/* before the decref: status points into the frame */
			metrics_observe_task(tr[i].status, tr[i].duration_ms / 1000.0);
			json_decref(t.res[done + i].msg);
		}
		done += n;
		applied += (int)n;
	}
	free(tr);
	int all = done == t.nres;
	put_back(g, &t, done, 0);
	return all ? applied : -1;
}
