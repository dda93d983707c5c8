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
/* How long a result of a task this engine did not send is held before it
 * is applied. Executors send every result to every engine: the engine that
 * sent the task applies it at once, and the others' copies, held this
 * long, are then dropped by one read (runs_recorded) instead of each going
 * through the locks and statements of applying it (bench/README.md, round
 * 7). Only when the sending engine did not record it (it stopped, say) is
 * the copy applied, this much later. */
#define COPY_HOLD_MS 1000

/* A finished frame (owned) and what the engine knew of its task when it
 * sent it (registry.c; run_id 0: not sent by this engine); a copy is held
 * until due_ms (monotonic). */
struct pend {
	json_t *msg;
	long long run_id;
	int sole;
	int64_t due_ms;
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
	/* held copies (COPY_HOLD_MS), oldest first */
	struct pend *cp;
	size_t ncp, capcp;
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
	for (size_t i = 0; i < g->ncp; i++)
		json_decref(g->cp[i].msg);
	free(g->res);
	free(g->cp);
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
	size_t n = g->nres + g->ncp + g->nst + g->inflight;
	pthread_mutex_unlock(&g->mu);
	return n;
}

/* Called with mu held: whether the oldest held copy is due. */
static int copy_due(const struct ingest *g, int64_t now)
{
	return g->ncp > 0 && g->cp[0].due_ms <= now;
}

void ingest_wait(struct ingest *g, int timeout_ms)
{
	pthread_mutex_lock(&g->mu);
	int64_t until = mono_ms() + timeout_ms;
	for (;;) {
		int64_t now = mono_ms();
		if (g->woken || g->nres + g->nst > 0 || copy_due(g, now) || now >= until)
			break;
		/* until the timeout or the oldest held copy, whichever is first */
		int64_t wait = until - now;
		if (g->ncp > 0 && g->cp[0].due_ms - now < wait)
			wait = g->cp[0].due_ms - now;
		struct timespec ts = deadline_in(CLOCK_REALTIME, wait);
		pthread_cond_timedwait(&g->cond, &g->mu, &ts);
	}
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

/* Room for n entries in a buffer of results (*v, *cap: res or cp). */
static void reserve(struct pend **v, size_t *cap, size_t n)
{
	if (n <= *cap)
		return;
	while (*cap < n)
		*cap = *cap ? *cap * 2 : 1024;
	*v = xrealloc(*v, *cap * sizeof **v);
}

/* Buffers a result; hold: a copy (another engine sent its task). */
static void push_result(struct ingest *g, json_t *finished, const struct reg_sent *sent, int hold)
{
	pthread_mutex_lock(&g->mu);
	if (g->nres + g->ncp >= g->max) {
		g->dropped_results++;
		log_full(g, "results");
		pthread_mutex_unlock(&g->mu);
		json_decref(finished);
		return;
	}
	struct pend p = {finished, sent ? sent->run_id : 0, sent ? sent->sole : 0, 0};
	if (hold) {
		reserve(&g->cp, &g->capcp, g->ncp + 1);
		p.due_ms = mono_ms() + COPY_HOLD_MS;
		g->cp[g->ncp++] = p;
	} else {
		reserve(&g->res, &g->capres, g->nres + 1);
		g->res[g->nres++] = p;
		pthread_cond_signal(&g->cond);
	}
	pthread_mutex_unlock(&g->mu);
}

void ingest_push_result(struct ingest *g, json_t *finished)
{
	push_result(g, finished, NULL, 0);
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
		/* a result of a task this engine did not send is held (a
		 * rejection is this engine's to requeue: never held) */
		int rejected = status && strcmp(status, "rejected") == 0;
		push_result(g, msg, known ? &sent : NULL, !known && !rejected);
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

/* What one ingest_apply took out of the buffers: the first ncopy
 * results are held copies that came due. */
struct taken {
	struct pend *res;
	size_t nres, ncopy;
	long long *st_id;
	int *st_att;
	int64_t *st_at;
	size_t nst;
	size_t taken; /* counted in the ingest's inflight */
};

/* Forgets the buffered started records whose `finished` is buffered too
 * (held copies included; called with mu held): the result carries started_ms and sets the
 * attempt's started_at itself, so applying `started` first would only
 * update the same rows twice (most short tasks report both at once). */
static void drop_started_of_finished(struct ingest *g)
{
	size_t n = g->nres + g->ncp;
	if (g->nst == 0 || n == 0)
		return;
	long long *keys = xmalloc(n * 2 * sizeof *keys);
	for (size_t i = 0; i < n; i++) {
		const json_t *m = i < g->nres ? g->res[i].msg : g->cp[i - g->nres].msg;
		keys[2 * i] = json_integer_value(json_object_get(m, "task_run_id"));
		keys[2 * i + 1] = json_integer_value(json_object_get(m, "attempt"));
	}
	qsort(keys, n, 2 * sizeof *keys, cmp_key);
	size_t k = 0;
	for (size_t i = 0; i < g->nst; i++) {
		long long key[2] = {g->st_id[i], g->st_att[i]};
		if (bsearch(key, keys, n, 2 * sizeof *keys, cmp_key))
			continue;
		g->st_id[k] = g->st_id[i];
		g->st_att[k] = g->st_att[i];
		g->st_at[k] = g->st_at[i];
		k++;
	}
	g->nst = k;
	free(keys);
}

/* Takes the held copies that came due, then the oldest results, max in
 * all, and every started record out (the loop keeps pushing meanwhile, and
 * other appliers may take the rest). */
static void take(struct ingest *g, struct taken *t, size_t max)
{
	pthread_mutex_lock(&g->mu);
	drop_started_of_finished(g); /* against every buffered result */
	int64_t now = mono_ms();
	size_t nc = 0;
	while (nc < g->ncp && nc < max && g->cp[nc].due_ms <= now)
		nc++;
	size_t nr = g->nres < max - nc ? g->nres : max - nc;
	t->ncopy = nc;
	t->nres = nc + nr;
	t->res = xmalloc((t->nres ? t->nres : 1) * sizeof *t->res);
	/* (the buffers are NULL while nothing was ever pushed to them) */
	if (nc > 0) {
		memcpy(t->res, g->cp, nc * sizeof *t->res);
		memmove(g->cp, g->cp + nc, (g->ncp - nc) * sizeof *g->cp);
		g->ncp -= nc;
	}
	if (nr > 0) {
		memcpy(t->res + nc, g->res, nr * sizeof *t->res);
		memmove(g->res, g->res + nr, (g->nres - nr) * sizeof *g->res);
		g->nres -= nr;
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
		reserve(&g->res, &g->capres, g->nres + left);
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

/* Drops the held copies at the front of t whose report another engine
 * has recorded already (runs_recorded), batch at a time; those left are
 * applied as any result. Returns how many were dropped, or -1 (t as it
 * was). */
static int drop_recorded(struct store *s, struct taken *t, struct task_result *tr, int batch)
{
	if (t->ncopy == 0) /* no copies: the rule with one engine */
		return 0;
	unsigned char *rec = xcalloc(t->ncopy, 1);
	int dropped = 0;
	for (size_t done = 0; done < t->ncopy;) {
		size_t n = t->ncopy - done;
		if (n > (size_t)batch)
			n = (size_t)batch;
		for (size_t i = 0; i < n; i++)
			to_result(&t->res[done + i], &tr[i]);
		if (runs_recorded(s, tr, (int)n, rec + done) < 0) {
			free(rec);
			if (transient(s))
				return -1;
			/* refused while the database is up: the copies are
			 * applied as any result (APPLY_SQL checks the same) */
			log_warn("cannot check copies of results: applying them",
			         "count=%zu error=\"%s\"", t->ncopy, store_error(s));
			t->ncopy = 0;
			return 0;
		}
		done += n;
	}
	size_t k = 0;
	for (size_t i = 0; i < t->nres; i++) {
		if (i < t->ncopy && rec[i]) {
			struct task_result r;
			to_result(&t->res[i], &r);
			metrics_observe_task(r.status, r.duration_ms / 1000.0);
			json_decref(t->res[i].msg);
			dropped++;
			continue;
		}
		t->res[k++] = t->res[i];
	}
	/* still counted in the ingest's inflight (t->taken) until put_back */
	t->nres = k;
	t->ncopy = 0;
	free(rec);
	return dropped;
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
	int dropped = drop_recorded(s, &t, tr, batch);
	if (dropped < 0) {
		free(tr);
		put_back(g, &t, 0, 0);
		return -1;
	}
	applied += dropped;
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
