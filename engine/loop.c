/* The engine loop (see loop.h). One iteration:
 *   wait → NOTIFYs → frames (up to 4 batches; results and started records
 *   are buffered for the applier thread, applier.h, which applies them on
 *   its own connection) → hellos and leases → dispatch (when woken, when slots were freed, when a claim was
 *   full, or every poll-ms) → once a second: schedules, reaper, lost
 *   executors, heartbeat rows. */
#include "loop.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "applier.h"
#include "dispatch.h"
#include "ingest.h"
#include "log.h"
#include "registry.h"
#include "retention.h"
#include "runs.h"
#include "sched.h"
#include "util.h"
#include "xalloc.h"
#include "zsec.h"

#define TICK_MS           1000
#define BACKSTOP_EVERY    10  /* ticks */
#define SCHED_MS          200 /* due schedules are looked for this often */
#define SCHED_BATCH       2000
#define RETENTION_MS      60000
#define DB_BACKOFF_MAX_MS 2000
#define LISTEN_RETRY_MS   1000
#define DRAIN_MAX_MS      10000
#define STATS_EVERY_MS    10000

struct loop {
	const struct loop_opts *o;
	struct store *s;
	void *zctx, *pull;
	PGconn *listen;
	int64_t listen_retry_ms;
	struct reg *reg;
	struct ingest *ing;
	struct applier *ap;
	struct disp *disp;
	int64_t db_retry_ms, db_backoff_ms;
	int db_failed_logged;
	int64_t next_tick_ms, next_poll_ms, next_stats_ms, next_sched_ms, next_retention_ms;
	int wake, more, frames_pending;
	unsigned ticks;
	unsigned long long frames, sent, applied;
	int64_t apply_ms, disp_ms, tick_ms; /* time spent, for the stats line */
};

void loop_fault(const char *point)
{
	static int init;
	static const char *want;
	static double p = 1.0;
	if (!init) {
		init = 1;
		want = getenv("WF_FAULT");
		const char *ps = getenv("WF_FAULT_P");
		if (ps && *ps)
			p = strtod(ps, NULL);
		srand((unsigned)getpid() ^ (unsigned)mono_ms());
		if (want && *want)
			log_warn("fault injection armed (test only)", "point=%s p=%.3f", want, p);
	}
	if (!point || !want || strcmp(want, point) != 0)
		return;
	if (p < 1.0 && (double)rand() / ((double)RAND_MAX + 1.0) >= p)
		return;
	log_warn("fault injection: exiting now", "point=%s", point);
	_exit(137);
}

static void listen_close(struct loop *l)
{
	if (l->listen)
		PQfinish(l->listen);
	l->listen = NULL;
}

/* (Re)opens the LISTEN connection. A dedicated connection: the loop's store
 * reconnects by itself and would silently lose its LISTEN. */
static void listen_open(struct loop *l, int64_t now)
{
	PGresult *r = NULL;
	if (l->listen || now < l->listen_retry_ms)
		return;
	l->listen_retry_ms = now + LISTEN_RETRY_MS;
	l->listen = PQconnectdb(l->o->conninfo ? l->o->conninfo : store_default_conninfo());
	if (PQstatus(l->listen) != CONNECTION_OK)
		goto fail;
	r = PQexec(l->listen, "LISTEN wf_work");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		goto fail;
	PQclear(r);
	if (PQsetnonblocking(l->listen, 1) != 0)
		goto fail;
	l->wake = 1; /* NOTIFYs may have been missed while away */
	log_debug("listening for work notifications", "channel=%s", "wf_work");
	return;
fail:
	PQclear(r);
	listen_close(l);
}

static void listen_read(struct loop *l)
{
	PGnotify *n;
	if (!l->listen)
		return;
	if (!PQconsumeInput(l->listen)) {
		log_warn("LISTEN connection lost", "error=\"%s\"", PQerrorMessage(l->listen));
		listen_close(l);
		return;
	}
	/* Our own commits notify too: those are not news (db_work dispatches
	 * after applying results anyway). */
	PGconn *own = l->s ? store_conn(l->s) : NULL;
	int own_pid = own ? PQbackendPID(own) : 0;
	while ((n = PQnotifies(l->listen)) != NULL) {
		if (n->be_pid != own_pid)
			l->wake = 1;
		PQfreemem(n);
	}
}

static int open_pull(struct loop *l)
{
	int hwm = 1000000, zero = 0;
	l->pull = zmq_socket(l->zctx, ZMQ_PULL);
	if (!l->pull)
		return -1;
	zmq_setsockopt(l->pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
	zmq_setsockopt(l->pull, ZMQ_LINGER, &zero, sizeof zero);
	if (zsec_server(l->zctx, l->pull) != 0)
		return -1;
	if (zmq_bind(l->pull, l->o->zmq_endpoint) != 0) {
		log_error("cannot bind the ZeroMQ socket", "endpoint=%s error=\"%s\"",
		          l->o->zmq_endpoint, zmq_strerror(errno));
		return -1;
	}
	log_info("listening for executors", "endpoint=%s", l->o->zmq_endpoint);
	return 0;
}

static int total_credit(const struct reg *r)
{
	int c = 0;
	for (int i = 0; i < r->n; i++)
		if (reg_can_take(r->ex[i]))
			c += r->ex[i]->credit;
	return c;
}

/* Receives what is waiting, at most max frames. Returns the number. */
static int receive(struct loop *l, int max)
{
	int n = 0;
	while (n < max) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, l->pull, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			break;
		}
		if (zsec_frame(&m) == 0)
			(void)ingest_frame(l->ing, l->reg, l->s, zmq_msg_data(&m),
			                   zmq_msg_size(&m));
		zmq_msg_close(&m);
		n++;
	}
	l->frames += (unsigned long long)n;
	l->frames_pending = n == max;
	return n;
}

static void db_failed(struct loop *l, int64_t now, const char *what)
{
	l->db_backoff_ms = l->db_backoff_ms ? l->db_backoff_ms * 2 : 100;
	if (l->db_backoff_ms > DB_BACKOFF_MAX_MS)
		l->db_backoff_ms = DB_BACKOFF_MAX_MS;
	l->db_retry_ms = now + l->db_backoff_ms;
	if (!l->db_failed_logged)
		log_warn("database work failed: retrying with backoff",
		         "what=%s error=\"%s\" buffered=%zu", what, store_error(l->s),
		         ingest_pending(l->ing));
	l->db_failed_logged = 1;
}

static void db_ok(struct loop *l)
{
	if (l->db_failed_logged) {
		log_info("database work resumed", "buffered=%zu", ingest_pending(l->ing));
		applier_kick(l->ap);
	}
	l->db_failed_logged = 0;
	l->db_backoff_ms = 0;
	l->db_retry_ms = 0;
}

/* Everything that needs the database. Returns 0, or -1 (retry later). */
static int db_work(struct loop *l, int64_t now, int draining, int credit_grew)
{
	int64_t t0;
	if (reg_needs_flush(l->reg) && reg_flush(l->reg, l->s, 0) != 0) {
		db_failed(l, now, "register executors");
		return -1;
	}
	if (reg_needs_renew(l->reg) && reg_renew(l->reg, l->s, l->o->lease_ms) != 0) {
		db_failed(l, now, "renew leases");
		return -1;
	}
	if (!draining && (l->wake || l->more || credit_grew || now >= l->next_poll_ms) &&
	    total_credit(l->reg) > 0) {
		int more = 0;
		t0 = mono_ms();
		int n = disp_run(l->disp, l->s, l->reg, l->ing, &more);
		l->disp_ms += mono_ms() - t0;
		if (n < 0) {
			db_failed(l, now, "dispatch");
			return -1;
		}
		l->sent += (unsigned long long)n;
		l->wake = 0;
		l->more = more;
		l->next_poll_ms = now + l->o->poll_ms;
	} else if (now >= l->next_poll_ms) {
		l->wake = 0;
		l->next_poll_ms = now + l->o->poll_ms;
	}
	if (now >= l->next_sched_ms && !draining) {
		l->next_sched_ms = now + SCHED_MS;
		t0 = mono_ms();
		/* bigger batches than dispatch: a firing is cheap, a round trip is not */
		int fired = sched_tick(l->s, l->o->batch < SCHED_BATCH ? SCHED_BATCH : l->o->batch);
		if (fired < 0) {
			db_failed(l, now, "schedules");
			return -1;
		}
		if (fired > 0)
			l->wake = 1;
		l->tick_ms += mono_ms() - t0;
	}
	if (l->o->retention_ms > 0 && now >= l->next_retention_ms) {
		l->next_retention_ms = now + RETENTION_MS;
		if (retention_sweep(l->s, l->o->retention_ms, RETENTION_BATCH) < 0)
			log_warn("retention sweep failed", "error=%s", store_error(l->s));
	}
	/* no reaping while buffered results cannot be applied: they may be
	 * the results of the leases that expired meanwhile */
	if (now >= l->next_tick_ms && !applier_failing(l->ap)) {
		l->next_tick_ms = now + TICK_MS;
		t0 = mono_ms();
		/* timeouts (the backstop reads every running task's spec) every
		 * BACKSTOP_EVERY ticks; expired leases every tick */
		int reaped = runs_reap(l->s, l->o->batch, l->ticks++ % BACKSTOP_EVERY == 0);
		if (reaped < 0) {
			db_failed(l, now, "reaper");
			return -1;
		}
		if (reaped > 0) {
			log_info("reaped expired leases", "count=%d", reaped);
			l->wake = 1;
		}
		if (disp_reap(l->disp, l->s) < 0) {
			db_failed(l, now, "broadcast copies");
			return -1;
		}
		if (reg_flush(l->reg, l->s, 1) != 0) {
			db_failed(l, now, "executor heartbeats");
			return -1;
		}
		l->tick_ms += mono_ms() - t0;
	}
	return 0;
}

/* How long zmq_poll may wait: until the next thing that is due, but never
 * before the database may be tried again (no spinning while it is away or
 * while there is nothing to dispatch to). */
static int timeout_ms(const struct loop *l, int64_t now)
{
	if (l->frames_pending)
		return 0;
	int64_t due = l->next_tick_ms < l->next_poll_ms ? l->next_tick_ms : l->next_poll_ms;
	if (l->next_sched_ms < due)
		due = l->next_sched_ms;
	if ((l->wake || l->more) && total_credit(l->reg) > 0)
		due = now;
	if (reg_needs_flush(l->reg) || reg_needs_renew(l->reg))
		due = now;
	if (due < l->db_retry_ms)
		due = l->db_retry_ms;
	int64_t t = due - now;
	if (t < 0)
		t = 0;
	if (t > l->o->poll_ms)
		t = l->o->poll_ms;
	return (int)t;
}

int loop_run(const struct loop_opts *o, struct store *s, volatile sig_atomic_t *stop,
             volatile sig_atomic_t *reload)
{
	struct loop l;
	int rc = 1, draining = 0;
	int64_t drain_until = 0;
	struct disp_opts dopts = {o->engine_id, o->lease_ms, o->batch};

	memset(&l, 0, sizeof l);
	l.o = o;
	l.s = s;
	l.zctx = zmq_ctx_new();
	if (!l.zctx || open_pull(&l) != 0)
		goto out;
	l.reg = reg_new(l.zctx, o->heartbeat_ms);
	l.ing = ingest_new(o->max_buffer);
	l.ap = applier_start(o->conninfo, l.ing, o->batch, o->appliers);
	if (!l.ap)
		goto out;
	l.disp = disp_new(&dopts);
	l.wake = 1;
	loop_fault(NULL);

	for (;;) {
		int64_t now = mono_ms();
		if (*reload) {
			*reload = 0;
			log_info("reload", "%s", "");
		}
		if (*stop && !draining) {
			draining = 1;
			drain_until = now + DRAIN_MAX_MS;
			log_info("draining: no new work is claimed", "buffered=%zu",
			         ingest_pending(l.ing));
		}
		listen_open(&l, now);

		zmq_pollitem_t items[3] = {{l.pull, 0, ZMQ_POLLIN, 0},
		                           {NULL, applier_fd(l.ap), ZMQ_POLLIN, 0},
		                           {NULL, -1, ZMQ_POLLIN, 0}};
		int nitems = 2;
		if (l.listen && PQsocket(l.listen) >= 0) {
			items[2].fd = PQsocket(l.listen);
			nitems = 3;
		}
		/* draining: the applier's signal ends the wait */
		if (zmq_poll(items, nitems, draining ? 10 : timeout_ms(&l, now)) < 0 &&
		    errno != EINTR && errno != EAGAIN) {
			log_error("zmq_poll failed", "error=\"%s\"", zmq_strerror(errno));
			sleep_ms(100);
		}
		if (nitems == 3 && (items[2].revents & ZMQ_POLLIN))
			listen_read(&l);
		if (items[1].revents & ZMQ_POLLIN) {
			unsigned long long n = applier_collect(l.ap, &l.apply_ms);
			l.applied += n;
			if (n > 0)
				l.wake = 1; /* downstream work may be ready */
		}

		int before = total_credit(l.reg);
		receive(&l, 4 * o->batch);
		reg_poll_monitors(l.reg);
		int credit_grew = total_credit(l.reg) > before;

		now = mono_ms();
		if (now >= l.next_tick_ms)
			reg_check_lost(l.reg);
		if (now >= l.db_retry_ms && db_work(&l, now, draining, credit_grew) == 0)
			db_ok(&l);

		if (now >= l.next_stats_ms) {
			if (l.next_stats_ms)
				log_info(
				    "engine stats",
				    "frames=%llu sent=%llu applied=%llu buffered=%zu apply_ms=%lld "
				    "dispatch_ms=%lld tick_ms=%lld",
				    l.frames, l.sent, l.applied, ingest_pending(l.ing),
				    (long long)l.apply_ms, (long long)l.disp_ms,
				    (long long)l.tick_ms);
			l.next_stats_ms = now + STATS_EVERY_MS;
		}
		if (draining && !l.frames_pending && ingest_pending(l.ing) == 0)
			break;
		if (draining && now >= drain_until) {
			log_error("drain timed out: results not applied (leases will recover them)",
			          "buffered=%zu", ingest_pending(l.ing));
			break;
		}
	}
	log_info("engine loop stopped",
	         "frames=%llu sent=%llu applied=%llu apply_ms=%lld dispatch_ms=%lld tick_ms=%lld",
	         l.frames, l.sent, l.applied, (long long)l.apply_ms, (long long)l.disp_ms,
	         (long long)l.tick_ms);
	rc = 0;
out:
	disp_free(l.disp);
	applier_stop(l.ap);
	ingest_free(l.ing);
	reg_free(l.reg);
	listen_close(&l);
	if (l.pull)
		zmq_close(l.pull);
	if (l.zctx)
		zmq_ctx_term(l.zctx);
	return rc;
}
