/* The executor registry: sockets, credit and the executors table.
 * Batches to PostgreSQL are passed as one JSON text and unpacked with
 * json_to_recordset, so no array literal has to be quoted by hand. */
#include "registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "runs.h"
#include "util.h"
#include "wire.h"
#include "xalloc.h"
#include "zsec.h"

#define PUSH_HWM      10000
#define SEND_BLOCK_MS 500

static const char *state_name(enum reg_state st)
{
	switch (st) {
	case REG_ONLINE:
		return "online";
	case REG_DRAINING:
		return "draining";
	case REG_LOST:
		return "lost";
	case REG_OFFLINE:
		return "offline";
	}
	return "online";
}

struct reg *reg_new(void *zctx, int64_t heartbeat_ms)
{
	struct reg *r = xcalloc(1, sizeof *r);
	r->zctx = zctx;
	r->heartbeat_ms = heartbeat_ms > 0 ? heartbeat_ms : 10000;
	return r;
}

static void close_socket(struct reg_exec *e)
{
	if (e->push) {
		if (e->mon)
			zmq_socket_monitor(e->push, NULL, 0);
		zmq_close(e->push);
		e->push = NULL;
	}
	if (e->mon) {
		zmq_close(e->mon);
		e->mon = NULL;
	}
	e->connected = 0;
}

static void open_socket(struct reg *r, struct reg_exec *e)
{
	int zero = 0, one = 1, hwm = PUSH_HWM;
	char addr[64];

	close_socket(e);
	e->push = zmq_socket(r->zctx, ZMQ_PUSH);
	if (!e->push) {
		log_error("cannot create a ZeroMQ socket", "executor_id=%s error=\"%s\"", e->id,
		          zmq_strerror(errno));
		return;
	}
	zmq_setsockopt(e->push, ZMQ_LINGER, &zero, sizeof zero);
	zmq_setsockopt(e->push, ZMQ_SNDHWM, &hwm, sizeof hwm);
	zmq_setsockopt(e->push, ZMQ_IMMEDIATE, &one, sizeof one);
	snprintf(addr, sizeof addr, "inproc://wf-reg-mon-%d", ++r->mon_seq);
	/* Connected means the handshake is done, not the TCP connect: with
	 * ZMQ_IMMEDIATE the pipe to the executor is attached only after the
	 * handshake (libzmq attaches it, then reports the handshake), and a
	 * task sent in between failed with EAGAIN and came back as a lost
	 * attempt (seen in executors_routing: two of three tasks sent to an
	 * executor that had just said hello) */
	if (zmq_socket_monitor(e->push, addr,
	                       ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED) == 0) {
		e->mon = zmq_socket(r->zctx, ZMQ_PAIR);
		if (e->mon && zmq_connect(e->mon, addr) != 0) {
			zmq_close(e->mon);
			e->mon = NULL;
		}
	}
	if (!e->mon)
		e->connected = 1; /* no events: trust the socket and its send errors */
	if (zsec_client(e->push, e->id) != 0) {
		close_socket(e);
		return;
	}
	if (zmq_connect(e->push, e->endpoint) != 0) {
		log_warn("cannot connect to executor", "executor_id=%s endpoint=%s error=\"%s\"",
		         e->id, e->endpoint, zmq_strerror(errno));
		close_socket(e);
	}
}

static void free_exec(struct reg_exec *e)
{
	close_socket(e);
	free(e->id);
	free(e->endpoint);
	free(e->pool);
	free(e->version);
	for (int i = 0; i < e->nlabels; i++)
		free(e->labels[i]);
	free(e->labels);
	free(e->sent);
	json_decref(e->running);
	json_decref(e->breakers);
	free(e);
}

void reg_free(struct reg *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->n; i++)
		free_exec(r->ex[i]);
	free(r->ex);
	free(r);
}

struct reg_exec *reg_find(struct reg *r, const char *id)
{
	if (!id)
		return NULL;
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->ex[i]->id, id) == 0)
			return r->ex[i];
	return NULL;
}

static int unstarted(const struct reg_exec *e)
{
	int n = 0;
	for (int i = 0; i < e->nsent; i++)
		n += !e->sent[i].started;
	return n;
}

static void set_credit(struct reg_exec *e, int free_slots)
{
	int c = free_slots - unstarted(e);
	if (c > e->slots)
		c = e->slots;
	e->credit = c < 0 ? 0 : c;
}

static void set_labels(struct reg_exec *e, const json_t *labels)
{
	for (int i = 0; i < e->nlabels; i++)
		free(e->labels[i]);
	free(e->labels);
	e->labels = NULL;
	e->nlabels = 0;
	if (!json_is_array(labels) || json_array_size(labels) == 0)
		return;
	e->labels = xcalloc(json_array_size(labels), sizeof *e->labels);
	size_t i;
	const json_t *l;
	json_array_foreach(labels, i, l)
	{
		if (json_is_string(l))
			e->labels[e->nlabels++] = xstrdup(json_string_value(l));
	}
}

static void replace_str(char **dst, const char *src)
{
	if (*dst && src && strcmp(*dst, src) == 0)
		return;
	free(*dst);
	*dst = src ? xstrdup(src) : NULL;
}

/* Registers or updates an executor from hello-like fields. Returns it. */
static struct reg_exec *upsert(struct reg *r, const char *id, const char *endpoint,
                               const char *pool, const json_t *labels, int slots,
                               const char *version)
{
	struct reg_exec *e = reg_find(r, id);
	int fresh = 0, reopen = 0;

	if (!e) {
		if (r->n == r->cap) {
			r->cap = r->cap ? r->cap * 2 : 8;
			r->ex = xrealloc(r->ex, (size_t)r->cap * sizeof *r->ex);
		}
		e = xcalloc(1, sizeof *e);
		e->id = xstrdup(id);
		r->ex[r->n++] = e;
		fresh = 1;
	}
	if (!e->endpoint || strcmp(e->endpoint, endpoint) != 0)
		reopen = 1;
	replace_str(&e->endpoint, endpoint);
	replace_str(&e->pool, pool);
	if (version)
		replace_str(&e->version, version);
	set_labels(e, labels);
	e->slots = slots;
	if (fresh || e->state == REG_LOST || e->state == REG_OFFLINE) {
		/* A (re)started executor: assume it idle until its heartbeat. */
		e->nsent = 0;
		e->free_slots = slots;
		set_credit(e, slots);
		e->state = REG_ONLINE;
		reopen = 1;
		log_info("executor online", "executor_id=%s endpoint=%s pool=%s slots=%d", e->id,
		         e->endpoint, e->pool, slots);
	}
	if (e->credit > slots)
		e->credit = slots;
	if (reopen || !e->push)
		open_socket(r, e);
	e->last_seen_ms = mono_ms();
	e->upsert_pending = 1;
	return e;
}

void reg_hello(struct reg *r, const json_t *msg)
{
	json_int_t slots = json_integer_value(json_object_get(msg, "slots"));
	upsert(r, json_string_value(json_object_get(msg, "executor_id")),
	       json_string_value(json_object_get(msg, "endpoint")),
	       json_string_value(json_object_get(msg, "pool")), json_object_get(msg, "labels"),
	       slots > 100000 ? 100000 : (int)slots,
	       json_string_value(json_object_get(msg, "version")));
}

/* Registers an executor this engine has not seen from its executors row. */
static struct reg_exec *from_row(struct reg *r, struct store *s, const char *id)
{
	struct reg_exec *e = NULL;
	json_t *labels = NULL;
	const char *p[1] = {id};
	PGresult *res;

	if (!s)
		return NULL;
	res = store_execp(s, "reg_row",
	                  "SELECT endpoint, pool, array_to_json(labels)::text, slots, version "
	                  "FROM executors WHERE id = $1",
	                  1, p);
	if (!res || PQntuples(res) != 1)
		goto out;
	labels = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
	e = upsert(r, id, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), labels,
	           atoi(PQgetvalue(res, 0, 3)),
	           PQgetisnull(res, 0, 4) ? NULL : PQgetvalue(res, 0, 4));
	log_info("executor known from the database", "executor_id=%s", id);
out:
	json_decref(labels);
	PQclear(res);
	return e;
}

static int in_running(const json_t *running, long long id, int attempt)
{
	size_t i;
	const json_t *x;
	json_array_foreach(running, i, x)
	{
		if (json_integer_value(json_object_get(x, "task_run_id")) == id &&
		    json_integer_value(json_object_get(x, "attempt")) == attempt)
			return 1;
	}
	return 0;
}

void reg_heartbeat(struct reg *r, struct store *s, const json_t *msg)
{
	const char *id = json_string_value(json_object_get(msg, "executor_id"));
	struct reg_exec *e = reg_find(r, id);
	const json_t *running = json_object_get(msg, "running");
	int64_t now = mono_ms();

	if (!e || e->state == REG_LOST || e->state == REG_OFFLINE) {
		const char *ep = json_string_value(json_object_get(msg, "endpoint"));
		const char *pool = json_string_value(json_object_get(msg, "pool"));
		json_int_t slots = json_integer_value(json_object_get(msg, "slots"));
		if (ep && pool && slots > 0)
			e = upsert(r, id, ep, pool, json_object_get(msg, "labels"),
			           slots > 100000 ? 100000 : (int)slots,
			           json_string_value(json_object_get(msg, "version")));
		else if (e)
			e = upsert(r, id, e->endpoint, e->pool, NULL, e->slots, e->version);
		else
			e = from_row(r, s, id);
		if (!e) {
			log_debug("heartbeat from an unknown executor: waiting for its hello",
			          "executor_id=%s", id);
			return;
		}
	}
	e->last_seen_ms = now;
	json_int_t fs = json_integer_value(json_object_get(msg, "free_slots"));
	e->free_slots = fs > e->slots ? e->slots : (int)fs;
	e->load = json_number_value(json_object_get(msg, "load"));
	enum reg_state st =
	    json_is_true(json_object_get(msg, "draining")) ? REG_DRAINING : REG_ONLINE;
	if (st != e->state) {
		log_info(st == REG_DRAINING ? "executor draining" : "executor online",
		         "executor_id=%s", e->id);
		e->state = st;
		e->state_dirty = 1;
	}
	/* Forget tasks that ended without us seeing `finished`, and sends that
	 * never arrived. */
	int64_t too_old = now - 3 * r->heartbeat_ms;
	int k = 0;
	for (int i = 0; i < e->nsent; i++) {
		struct reg_sent *t = &e->sent[i];
		if (t->started ? !in_running(running, t->task_run_id, t->attempt)
		               : t->sent_ms < too_old)
			continue;
		e->sent[k++] = *t;
	}
	e->nsent = k;
	set_credit(e, e->free_slots);
	json_decref(e->running);
	e->running = json_incref((json_t *)running);
	json_decref(e->breakers);
	e->breakers = json_incref(json_object_get(msg, "breakers"));
	e->row_dirty = 1;
	if (json_array_size(running) > 0)
		e->renew_pending = 1;
}

void reg_bye(struct reg *r, const json_t *msg)
{
	struct reg_exec *e = reg_find(r, json_string_value(json_object_get(msg, "executor_id")));
	if (!e)
		return;
	log_info("executor said bye", "executor_id=%s", e->id);
	e->state = REG_OFFLINE;
	e->state_dirty = 1;
	e->credit = 0;
	e->nsent = 0;
	e->renew_pending = 0;
	close_socket(e);
}

static struct reg_sent *find_sent(struct reg_exec *e, long long id, int attempt)
{
	for (int i = 0; i < e->nsent; i++)
		if (e->sent[i].task_run_id == id && e->sent[i].attempt == attempt)
			return &e->sent[i];
	return NULL;
}

void reg_started(struct reg *r, const char *executor_id, long long task_run_id, int attempt)
{
	struct reg_exec *e = reg_find(r, executor_id);
	struct reg_sent *t = e ? find_sent(e, task_run_id, attempt) : NULL;
	if (t)
		t->started = 1;
}

int reg_finished(struct reg *r, const char *executor_id, long long task_run_id, int attempt,
                 struct reg_sent *sent)
{
	struct reg_exec *e = reg_find(r, executor_id);
	struct reg_sent *t = e ? find_sent(e, task_run_id, attempt) : NULL;
	if (!t)
		return 0;
	if (sent)
		*sent = *t;
	*t = e->sent[--e->nsent];
	if (e->state == REG_ONLINE || e->state == REG_DRAINING)
		if (e->credit < e->slots)
			e->credit++;
	return 1;
}

void reg_rejected(struct reg *r, const char *executor_id, long long task_run_id, int attempt)
{
	struct reg_exec *e = reg_find(r, executor_id);
	struct reg_sent *t = e ? find_sent(e, task_run_id, attempt) : NULL;
	if (t)
		*t = e->sent[--e->nsent];
	/* It had no free slot (another engine's tasks, most likely): sending
	 * more before its next heartbeat would only be refused again. */
	if (e)
		e->credit = 0;
}

int reg_can_take(const struct reg_exec *e)
{
	return e->state == REG_ONLINE && e->push && e->connected && e->credit > 0 &&
	       (e->blocked_until == 0 || mono_ms() >= e->blocked_until);
}

static int send_text(struct reg_exec *e, const char *text, size_t len)
{
	if (!e->push)
		return -1;
	if (zmq_send(e->push, text, len, ZMQ_DONTWAIT) < 0) {
		log_warn("cannot send to executor", "executor_id=%s error=\"%s\"", e->id,
		         zmq_strerror(errno));
		e->blocked_until = mono_ms() + SEND_BLOCK_MS;
		return -1;
	}
	e->blocked_until = 0;
	return 0;
}

static int send_frame(struct reg_exec *e, const json_t *msg)
{
	char *text = wire_encode(msg);
	int rc = text ? send_text(e, text, strlen(text)) : -1;
	free(text);
	return rc;
}

int reg_send_task(struct reg *r, struct reg_exec *e, const char *text, size_t len,
                  const struct reg_sent *task)
{
	(void)r;
	if (send_text(e, text, len) != 0)
		return -1;
	if (e->nsent == e->capsent) {
		e->capsent = e->capsent ? e->capsent * 2 : 16;
		e->sent = xrealloc(e->sent, (size_t)e->capsent * sizeof *e->sent);
	}
	struct reg_sent t = *task;
	t.started = 0;
	t.sent_ms = mono_ms();
	e->sent[e->nsent++] = t;
	return 0;
}

int reg_send_cancel(struct reg *r, struct reg_exec *e, long long task_run_id, int attempt)
{
	(void)r;
	json_t *m = json_pack("{s:s, s:I, s:i}", "type", "cancel", "task_run_id",
	                      (json_int_t)task_run_id, "attempt", attempt);
	int rc = m ? send_frame(e, m) : -1;
	json_decref(m);
	if (rc == 0)
		log_info("cancel sent", "executor_id=%s task_run_id=%lld attempt=%d", e->id,
		         task_run_id, attempt);
	return rc;
}

void reg_unclaim(struct reg_exec *e)
{
	if (e->credit < e->slots)
		e->credit++;
}

void reg_poll_monitors(struct reg *r)
{
	for (int i = 0; i < r->n; i++) {
		struct reg_exec *e = r->ex[i];
		while (e->mon) {
			zmq_msg_t m;
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, e->mon, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&m);
				break;
			}
			uint16_t ev = 0;
			if (zmq_msg_size(&m) >= 6)
				memcpy(&ev, zmq_msg_data(&m), sizeof ev);
			int more = zmq_msg_more(&m);
			zmq_msg_close(&m);
			while (more) { /* the endpoint frame */
				zmq_msg_init(&m);
				if (zmq_msg_recv(&m, e->mon, 0) < 0)
					more = 0;
				else
					more = zmq_msg_more(&m);
				zmq_msg_close(&m);
			}
			if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
				e->connected = 1;
				e->blocked_until = 0;
				log_debug("connected to executor", "executor_id=%s", e->id);
			} else if (ev == ZMQ_EVENT_DISCONNECTED) {
				e->connected = 0;
				log_info("executor disconnected", "executor_id=%s", e->id);
			}
		}
	}
}

void reg_check_lost(struct reg *r)
{
	int64_t limit = mono_ms() - 3 * r->heartbeat_ms;
	for (int i = 0; i < r->n; i++) {
		struct reg_exec *e = r->ex[i];
		if ((e->state != REG_ONLINE && e->state != REG_DRAINING) ||
		    e->last_seen_ms >= limit)
			continue;
		log_warn("executor lost: no heartbeat for 3 intervals",
		         "executor_id=%s heartbeat_ms=%lld", e->id, (long long)r->heartbeat_ms);
		e->state = REG_LOST;
		e->state_dirty = 1;
		e->credit = 0;
		e->nsent = 0;
		e->renew_pending = 0;
		close_socket(e);
	}
}

int reg_needs_flush(const struct reg *r)
{
	for (int i = 0; i < r->n; i++)
		if (r->ex[i]->upsert_pending || r->ex[i]->state_dirty)
			return 1;
	return 0;
}

int reg_needs_renew(const struct reg *r)
{
	for (int i = 0; i < r->n; i++)
		if (r->ex[i]->renew_pending)
			return 1;
	return 0;
}

/* Runs a prepared statement whose result is not needed. Returns 0 or -1. */
static int execp_cmd(struct store *s, const char *name, const char *sql, int n,
                     const char *const *p)
{
	PGresult *res = store_execp(s, name, sql, n, p);
	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

static int write_hello(struct store *s, struct reg_exec *e)
{
	int rc = -1;
	char slots[16], free_slots[16];
	json_t *labels = json_array();
	char *ltext = NULL;

	for (int i = 0; i < e->nlabels; i++)
		json_array_append_new(labels, json_string(e->labels[i]));
	ltext = json_dumps(labels, JSON_COMPACT);
	snprintf(slots, sizeof slots, "%d", e->slots);
	snprintf(free_slots, sizeof free_slots, "%d", e->free_slots);
	const char *p[8] = {e->id, e->endpoint, e->pool,    ltext,
	                    slots, free_slots,  e->version, state_name(e->state)};
	if (execp_cmd(
	        s, "reg_hello",
	        "INSERT INTO executors AS x (id, endpoint, pool, labels, slots, free_slots, "
	        "version, state, started_at, last_heartbeat) "
	        "VALUES ($1, $2, $3, ARRAY(SELECT json_array_elements_text($4::json)), $5, $6, "
	        "$7, $8, now(), now()) "
	        "ON CONFLICT (id) DO UPDATE SET endpoint = EXCLUDED.endpoint, "
	        "pool = EXCLUDED.pool, labels = EXCLUDED.labels, slots = EXCLUDED.slots, "
	        "version = coalesce(EXCLUDED.version, x.version), state = EXCLUDED.state, "
	        "started_at = CASE WHEN x.state IN ('lost', 'offline') THEN now() "
	        "ELSE x.started_at END, last_heartbeat = now()",
	        8, p) != 0)
		goto out;
	rc = 0;
out:
	free(ltext);
	json_decref(labels);
	return rc;
}

/* clang-format off */
/* Heartbeat fields of every dirty executor in one statement, with an event
 * for every breaker that changed state and every executor that changed
 * between online and draining (all sub-statements see the rows as they were
 * before the update; two engines applying the same heartbeat at the same
 * moment may both record a change). */
static const char HEARTBEATS_SQL[] =
	"WITH u AS (SELECT * FROM json_to_recordset($1::json) AS u(id text, free int,"
	"   load real, breakers jsonb, running jsonb, state text)),"
	" old AS (SELECT x.id, x.breakers, x.state FROM executors x JOIN u ON u.id = x.id),"
	" upd AS (UPDATE executors x SET free_slots = u.free, load = u.load,"
	"   breakers = u.breakers, running = u.running, state = u.state, last_heartbeat = now()"
	"   FROM u WHERE x.id = u.id RETURNING x.id),"
	" brk AS (INSERT INTO events (kind, actor, data)"
	"   SELECT 'breaker.' || CASE b.value->>'state' WHEN 'open' THEN 'opened'"
	"     WHEN 'half_open' THEN 'half_open' ELSE 'closed' END,"
	"    'executor:' || u.id, jsonb_build_object('executor', u.id, 'breaker', b.key,"
	"     'from', coalesce(o.breakers->b.key->>'state', 'closed'),"
	"     'to', coalesce(b.value->>'state', 'closed'), 'until_ms', b.value->'until_ms')"
	"   FROM u JOIN old o ON o.id = u.id, jsonb_each(coalesce(u.breakers, '{}')) b"
	"   WHERE coalesce(o.breakers->b.key->>'state', 'closed')"
	"     IS DISTINCT FROM coalesce(b.value->>'state', 'closed')),"
	" st AS (INSERT INTO events (kind, actor, data)"
	"   SELECT 'executor.' || u.state, 'executor:' || u.id,"
	"    jsonb_build_object('executor', u.id, 'from', o.state, 'to', u.state)"
	"   FROM u JOIN old o ON o.id = u.id WHERE o.state IS DISTINCT FROM u.state)"
	" SELECT count(*) FROM upd";
/* clang-format on */

/* Heartbeat fields of every dirty executor in one statement. */
static int write_heartbeats(struct reg *r, struct store *s)
{
	int rc = -1, n = 0;
	json_t *rows = json_array();
	char *text = NULL;

	for (int i = 0; i < r->n; i++) {
		struct reg_exec *e = r->ex[i];
		if (!e->row_dirty)
			continue;
		json_array_append_new(
		    rows, json_pack("{s:s, s:i, s:f, s:o, s:o, s:s}", "id", e->id, "free",
		                    e->free_slots, "load", e->load, "breakers",
		                    e->breakers ? json_incref(e->breakers) : json_object(),
		                    "running", e->running ? json_incref(e->running) : json_array(),
		                    "state", state_name(e->state)));
		n++;
	}
	if (n == 0) {
		rc = 0;
		goto out;
	}
	text = json_dumps(rows, JSON_COMPACT);
	const char *p[1] = {text};
	if (execp_cmd(s, "reg_heartbeats", HEARTBEATS_SQL, 1, p) != 0)
		goto out;
	for (int i = 0; i < r->n; i++)
		r->ex[i]->row_dirty = 0;
	rc = 0;
out:
	free(text);
	json_decref(rows);
	return rc;
}

int reg_flush(struct reg *r, struct store *s, int heartbeats)
{
	for (int i = 0; i < r->n; i++) {
		struct reg_exec *e = r->ex[i];
		if (e->upsert_pending) {
			if (write_hello(s, e) != 0)
				return -1;
			e->upsert_pending = 0;
			e->state_dirty = 0;
		}
		if (e->state_dirty) {
			/* heard of by no engine for two intervals: an engine that
			 * still hears it wrote its row within an interval and a
			 * flush (rows are written once a second) */
			char quiet[24];
			snprintf(quiet, sizeof quiet, "%lld", (long long)(2 * r->heartbeat_ms));
			const char *p[3] = {e->id, state_name(e->state), quiet};
			/* An executor found lost gives its tasks back at once: their
			 * leases end now (the reaper requeues them on its next tick)
			 * instead of when they would have run out. Only when no engine
			 * has heard from it either (its row's last heartbeat, which
			 * every engine writes): cut off from this engine alone, it may
			 * still be running them for another one, which renews them. */
			if (execp_cmd(
			        s, "reg_state",
			        "WITH e AS (UPDATE executors SET state = $2, last_heartbeat = "
			        "CASE WHEN $2 IN ('online', 'draining') THEN now() ELSE "
			        "last_heartbeat END WHERE id = $1 RETURNING id) "
			        "UPDATE task_runs SET lease_expires_at = now() "
			        "WHERE $2 = 'lost' AND state = 'running' AND executor_id = $1 "
			        "AND lease_expires_at > now() AND (SELECT x.last_heartbeat "
			        "FROM executors x WHERE x.id = $1) < now() - $3::bigint * "
			        "interval '1 millisecond'",
			        3, p) != 0)
				return -1;
			e->state_dirty = 0;
		}
	}
	if (!heartbeats)
		return 0;
	if (write_heartbeats(r, s) != 0)
		return -1;
	/* Executors nobody has heard from (e.g. dead while every engine was
	 * down) must not stay online in the table. */
	char limit[24];
	snprintf(limit, sizeof limit, "%lld", (long long)(3 * r->heartbeat_ms));
	const char *p[1] = {limit};
	return execp_cmd(
	    s, "reg_stale",
	    "UPDATE executors SET state = 'lost' WHERE state IN ('online', 'draining') "
	    "AND last_heartbeat < now() - $1::bigint * interval '1 millisecond'",
	    1, p);
}

int reg_renew(struct reg *r, struct store *s, int64_t lease_ms)
{
	int rc = -1, n = 0;
	long long *ids = NULL;
	int *atts = NULL;
	struct reg_exec **owner = NULL;
	json_t *rows = json_array();
	char *text = NULL;
	PGresult *res = NULL;

	for (int i = 0; i < r->n; i++)
		if (r->ex[i]->renew_pending)
			n += (int)json_array_size(r->ex[i]->running);
	if (n == 0) {
		rc = 0;
		goto done;
	}
	ids = xcalloc((size_t)n, sizeof *ids);
	atts = xcalloc((size_t)n, sizeof *atts);
	owner = xcalloc((size_t)n, sizeof *owner);
	n = 0;
	for (int i = 0; i < r->n; i++) {
		struct reg_exec *e = r->ex[i];
		if (!e->renew_pending)
			continue;
		size_t j;
		const json_t *x;
		json_array_foreach(e->running, j, x)
		{
			ids[n] = json_integer_value(json_object_get(x, "task_run_id"));
			atts[n] = (int)json_integer_value(json_object_get(x, "attempt"));
			owner[n] = e;
			json_array_append_new(rows,
			                      json_pack("[I, i]", (json_int_t)ids[n], atts[n]));
			n++;
		}
	}
	if (runs_renew_leases(s, ids, atts, n, lease_ms) != 0)
		goto out;
	/* Orphans: attempts an executor runs that the database no longer has
	 * running (cancelled, superseded after a lost lease, finished). */
	text = json_dumps(rows, JSON_COMPACT);
	const char *p[1] = {text};
	res = store_execp(s, "reg_orphans",
	                  "SELECT u.i - 1 FROM json_array_elements($1::json) WITH ORDINALITY "
	                  "AS u(e, i) LEFT JOIN task_runs t ON t.id = (u.e->>0)::bigint "
	                  "WHERE t.id IS NULL OR t.state <> 'running' "
	                  "OR t.attempt <> (u.e->>1)::int",
	                  1, p);
	if (!res)
		goto out;
	for (int i = 0; i < PQntuples(res); i++) {
		int k = atoi(PQgetvalue(res, i, 0));
		if (k < 0 || k >= n || !owner[k]->push)
			continue;
		log_info("orphan attempt on executor", "executor_id=%s task_run_id=%lld attempt=%d",
		         owner[k]->id, ids[k], atts[k]);
		(void)reg_send_cancel(r, owner[k], ids[k], atts[k]);
	}
done:
	for (int i = 0; i < r->n; i++)
		r->ex[i]->renew_pending = 0;
	rc = 0;
out:
	PQclear(res);
	free(text);
	free(ids);
	free(atts);
	free(owner);
	json_decref(rows);
	return rc;
}
