/* The scheduler: fires due schedules in batches.
 *
 * One transaction per batch claims due rows of `schedules` (next_fire_at <=
 * now(), FOR UPDATE SKIP LOCKED, so several engines share the work), creates
 * their runs and advances next_fire_at. A run has a unique key on
 * (workflow, scheduled_for), so even a double firing cannot create two runs.
 *
 * Times: next_nominal_at is the time the expression names; next_fire_at is
 * that plus the workflow's stable jitter offset. Catch-up after downtime:
 *   none    fire the missed time only when it is less than MISFIRE_GRACE late
 *   latest  one run for the most recent missed time
 *   all     every missed time, at most catchup_max (the most recent ones)
 * Every search is bounded, so a clock jump or a far-away schedule never
 * loops or bursts.
 *
 * Overlap, when a run of the workflow is still active:
 *   allow   start another (up to max_active_runs; beyond that it queues)
 *   skip    record a skipped firing (event schedule.skipped), start nothing
 *   queue   create the run as 'queued'; runs start one at a time, FIFO
 *   replace cancel the active runs, start the new one
 * Queued runs (from overlap queue, max_active_runs or a backfill) are
 * promoted at every tick, oldest first, while the workflow is under its
 * limit: one at a time for overlap queue, skip and replace, else
 * max_active_runs (or no limit). */
#include "sched.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "buf.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "runs.h"
#include "util.h"
#include "xalloc.h"

#define MISFIRE_GRACE_MS 60000
#define SEARCH_STEPS     100000
#define HARD_CATCHUP_MAX 100000 /* the DSL's bound for catchup_max */

struct due {
	long long id, workflow_id;
	const char *workflow, *kind, *expr, *tz, *catchup, *overlap;
	int version;
	int64_t jitter_ms, nominal_ms, now_ms;
	int catchup_max, max_active;
	int needs_params; /* a required parameter has no default */
	enum cron_dst_gap gap;
	enum cron_dst_repeat repeat;
};

/* The stable jitter offset of a workflow inside its window. */
static int64_t jitter_offset(const char *workflow, int64_t jitter_ms)
{
	if (jitter_ms <= 0)
		return 0;
	return (int64_t)(cron_hash(workflow) % (uint64_t)(jitter_ms + 1));
}

static int next_after(const struct cron_expr *e, const struct due *d, int64_t after_ms,
                      int64_t *out_ms)
{
	int64_t next;
	/* cron_next works in seconds and returns a time strictly after. */
	int64_t after_s = after_ms / 1000;
	if (after_ms % 1000 != 0 && after_ms < 0)
		after_s--;
	if (cron_next(e, d->tz, d->gap, d->repeat, after_s, &next) != 0)
		return -1;
	*out_ms = next * 1000;
	return 0;
}

/* The nominal times to fire now, oldest first, into times (at most max).
 * Returns the count. first_ms is the first missed nominal time. */
static int missed_times(const struct cron_expr *e, const struct due *d, int max, int64_t *times)
{
	int n = 0, dropped = 0, steps = 0;
	int64_t t = d->nominal_ms;
	/* A long downtime with a frequent expression: start the walk closer to
	 * now, in widening windows, instead of stepping through years. */
	static const int64_t windows[] = {60000LL, 3600000LL, 86400000LL, 31 * 86400000LL,
	                                  366 * 86400000LL};
	while (t <= d->now_ms) {
		if (++steps > SEARCH_STEPS) {
			/* Jump: find the newest window that still holds a fire time. */
			int64_t from = t;
			for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
				int64_t cand;
				if (d->now_ms - windows[i] > t &&
				    next_after(e, d, d->now_ms - windows[i], &cand) == 0 &&
				    cand <= d->now_ms) {
					from = cand;
					break;
				}
			}
			if (from == t)
				break;
			dropped += steps;
			t = from;
			steps = 0;
		}
		if (n == max) {
			memmove(times, times + 1, (size_t)(max - 1) * sizeof *times);
			n--;
			dropped++;
		}
		times[n++] = t;
		int64_t nt;
		if (next_after(e, d, t, &nt) != 0)
			break;
		t = nt;
	}
	if (dropped)
		log_warn("catch-up bounded", "workflow=%s missed=%d fired=%d catchup=%s",
		         d->workflow, n + dropped, n, d->catchup);
	return n;
}

static int cancel_active(struct store *s, long long workflow_id)
{
	char wid[24];
	snprintf(wid, sizeof wid, "%lld", workflow_id);
	const char *p[1] = {wid};
	return store_cmd(
	    s,
	    "WITH r AS (UPDATE runs SET state = 'cancelled', finished_at = now() "
	    "  WHERE workflow_id = $1 AND state IN ('queued', 'running') RETURNING id), "
	    "t AS (UPDATE task_runs SET state = 'cancelled', finished_at = now(), updated_at = "
	    "now(), "
	    "  error = 'cancelled: replaced by a newer scheduled run' "
	    "  WHERE run_id IN (SELECT id FROM r) AND state NOT IN ('succeeded', 'failed', "
	    "  'cancelled', 'upstream_failed', 'skipped', 'dead') RETURNING 1) "
	    "INSERT INTO events (kind, workflow_id, run_id, actor, data) "
	    "SELECT 'run.state', $1, id, 'scheduler', '{\"to\":\"cancelled\",\"reason\":\"overlap "
	    "replace\"}' FROM r",
	    1, p);
}

static int parse_expr(const struct due *d, struct cron_expr **e)
{
	char err[256];
	*e = NULL;
	if (strcmp(d->kind, "cron") != 0)
		return 0;
	if (cron_parse(d->expr, d->workflow, e, err, sizeof err) != 0) {
		log_error("schedule has an invalid cron expression", "workflow=%s expr=%s error=%s",
		          d->workflow, d->expr, err);
		return -1;
	}
	return 0;
}

static void load_due(PGresult *r, int i, struct due *d)
{
	d->id = atoll(PQgetvalue(r, i, 0));
	d->workflow_id = atoll(PQgetvalue(r, i, 1));
	d->workflow = PQgetvalue(r, i, 2);
	d->version = atoi(PQgetvalue(r, i, 3));
	d->kind = PQgetvalue(r, i, 4);
	d->expr = PQgetvalue(r, i, 5);
	d->tz = PQgetvalue(r, i, 6);
	d->jitter_ms = atoll(PQgetvalue(r, i, 7));
	d->catchup = PQgetvalue(r, i, 8);
	d->overlap = PQgetvalue(r, i, 9);
	if (cron_dst_gap_parse(PQgetvalue(r, i, 10), &d->gap) != 0)
		d->gap = CRON_GAP_SHIFT;
	if (cron_dst_repeat_parse(PQgetvalue(r, i, 11), &d->repeat) != 0)
		d->repeat = CRON_REPEAT_ONCE;
	d->nominal_ms = PQgetisnull(r, i, 12) ? -1 : atoll(PQgetvalue(r, i, 12));
	d->catchup_max = atoi(PQgetvalue(r, i, 13));
	d->max_active = atoi(PQgetvalue(r, i, 14));
	d->now_ms = atoll(PQgetvalue(r, i, 15));
	d->needs_params = PQgetvalue(r, i, 16)[0] == 't';
	if (d->catchup_max <= 0 || d->catchup_max > HARD_CATCHUP_MAX)
		d->catchup_max = d->catchup_max <= 0 ? 100 : HARD_CATCHUP_MAX;
}

#define DUE_COLUMNS                                                                             \
	"SELECT s.id, s.workflow_id, w.name, w.current_version, s.kind, coalesce(s.expr, ''), " \
	"s.timezone, s.jitter_ms, s.catchup, s.overlap, s.dst_gap, s.dst_repeat, "              \
	"(extract(epoch FROM coalesce(s.next_nominal_at, s.at_time)) * 1000)::bigint, "         \
	"coalesce((v.dag->'schedule'->>'catchup_max')::int, 100), "                             \
	"coalesce((v.dag->>'max_active_runs')::int, 0), "                                       \
	"$2::bigint, "                                                                          \
	"EXISTS (SELECT 1 FROM jsonb_each(v.dag->'params') e(k, x) "                            \
	"  WHERE coalesce((x->>'required')::boolean, false) "                                   \
	"  AND coalesce(x->'default', 'null') = 'null') "                                       \
	"FROM schedules s JOIN workflows w ON w.id = s.workflow_id "                            \
	"JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.current_version "

/* Starts queued runs, oldest first, while their workflow is under its limit
 * (1 for overlap queue/skip, max_active_runs otherwise). */
static int promote_queued(struct store *s)
{
	PGresult *r = store_execp(
	    s, "sched_promote",
	    "WITH lim AS (SELECT w.id AS wf, CASE WHEN s.overlap IN ('queue', 'skip', 'replace') "
	    "THEN 1 "
	    "    WHEN coalesce((v.dag->>'max_active_runs')::int, 0) > 0 "
	    "    THEN (v.dag->>'max_active_runs')::int END AS lim, "
	    "  (SELECT count(*) FROM runs x WHERE x.workflow_id = w.id AND x.state = 'running') AS "
	    "n "
	    "  FROM workflows w JOIN workflow_versions v ON v.workflow_id = w.id "
	    "    AND v.version = w.current_version LEFT JOIN schedules s ON s.workflow_id = w.id "
	    "  WHERE NOT w.paused AND EXISTS (SELECT 1 FROM runs q WHERE q.workflow_id = w.id "
	    "    AND q.state = 'queued')), "
	    "cand AS (SELECT r.id, row_number() OVER (PARTITION BY r.workflow_id ORDER BY r.id) "
	    "  AS rn, l.lim, l.n FROM runs r JOIN lim l ON l.wf = r.workflow_id "
	    "  WHERE r.state = 'queued'), "
	    "up AS (UPDATE runs r SET state = 'running', started_at = now() FROM cand c "
	    "  WHERE r.id = c.id AND (c.lim IS NULL OR c.n + c.rn <= c.lim) RETURNING r.id, "
	    "  r.workflow_id) "
	    "INSERT INTO events (kind, workflow_id, run_id, actor, data) "
	    "SELECT 'run.state', workflow_id, id, 'scheduler', "
	    "'{\"from\":\"queued\",\"to\":\"running\"}' FROM up RETURNING run_id",
	    0, NULL);
	if (!r)
		return -1;
	int n = PQntuples(r);
	PQclear(r);
	return n;
}

/* ------------------------------------------------------------ batches */

/* What one batch decides, as PostgreSQL array literals, written in a few
 * statements at the end instead of a round trip per run. */
struct plan {
	struct buf fire_wid, fire_ver, fire_nominal, fire_state;  /* runs to create */
	struct buf skip_wid, skip_nominal;                        /* skipped firings */
	struct buf sched_id, sched_nominal, sched_fire, sched_on; /* next times */
	int nfire, nskip, nsched;
};

static void plan_init(struct plan *p)
{
	struct buf *all[] = {&p->fire_wid,   &p->fire_ver,     &p->fire_nominal, &p->fire_state,
	                     &p->skip_wid,   &p->skip_nominal, &p->sched_id,     &p->sched_nominal,
	                     &p->sched_fire, &p->sched_on};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		buf_init(all[i], 0);
		(void)!buf_puts(all[i], "{");
	}
	p->nfire = p->nskip = p->nsched = 0;
}

static void plan_release(struct plan *p)
{
	struct buf *all[] = {&p->fire_wid,   &p->fire_ver,     &p->fire_nominal, &p->fire_state,
	                     &p->skip_wid,   &p->skip_nominal, &p->sched_id,     &p->sched_nominal,
	                     &p->sched_fire, &p->sched_on};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		buf_release(all[i]);
}

/* Appends one element to an array literal; NULL is SQL NULL. */
static void add(struct buf *b, int first, const char *v)
{
	(void)!buf_printf(b, "%s%s%s%s", first ? "" : ",", v ? "\"" : "", v ? v : "NULL",
	                  v ? "\"" : "");
}

static void add_ms(struct buf *b, int first, int64_t ms)
{
	char t[40];
	fmt_time_ms(ms, t, sizeof t);
	add(b, first, t);
}

static void add_ll(struct buf *b, int first, long long v)
{
	char t[24];
	snprintf(t, sizeof t, "%lld", v);
	add(b, first, t);
}

static void plan_fire(struct plan *p, const struct due *d, int64_t nominal, const char *state)
{
	add_ll(&p->fire_wid, p->nfire == 0, d->workflow_id);
	add_ll(&p->fire_ver, p->nfire == 0, d->version);
	add_ms(&p->fire_nominal, p->nfire == 0, nominal);
	add(&p->fire_state, p->nfire == 0, state);
	p->nfire++;
}

static void plan_skip(struct plan *p, const struct due *d, int64_t nominal)
{
	add_ll(&p->skip_wid, p->nskip == 0, d->workflow_id);
	add_ms(&p->skip_nominal, p->nskip == 0, nominal);
	p->nskip++;
}

/* The schedule's next time (nominal < 0: no next time; it is disabled). */
static void plan_next(struct plan *p, const struct due *d, int64_t nominal)
{
	add_ll(&p->sched_id, p->nsched == 0, d->id);
	if (nominal < 0) {
		add(&p->sched_nominal, p->nsched == 0, NULL);
		add(&p->sched_fire, p->nsched == 0, NULL);
	} else {
		add_ms(&p->sched_nominal, p->nsched == 0, nominal);
		add_ms(&p->sched_fire, p->nsched == 0,
		       nominal + jitter_offset(d->workflow, d->jitter_ms));
	}
	add(&p->sched_on, p->nsched == 0, nominal < 0 ? "f" : "t");
	p->nsched++;
}

static void plan_close(struct plan *p)
{
	struct buf *all[] = {&p->fire_wid,   &p->fire_ver,     &p->fire_nominal, &p->fire_state,
	                     &p->skip_wid,   &p->skip_nominal, &p->sched_id,     &p->sched_nominal,
	                     &p->sched_fire, &p->sched_on};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		(void)!buf_puts(all[i], "}");
}

/* Active runs of the workflows of a batch, counted as the batch decides. */
struct active {
	long long workflow_id;
	int running, total; /* running, and queued + running */
};

static struct active *find_active(struct active *a, int n, long long workflow_id)
{
	for (int i = 0; i < n; i++)
		if (a[i].workflow_id == workflow_id)
			return &a[i];
	return NULL;
}

/* Decides one firing of d at nominal by the overlap policy and
 * max_active_runs, adding it to the plan. Returns 0 or -1. */
static int decide(struct store *s, struct plan *p, const struct due *d, struct active *act,
                  int64_t nominal)
{
	const char *state = "running";
	if (strcmp(d->overlap, "replace") == 0) {
		if (act->total > 0 && cancel_active(s, d->workflow_id) != 0)
			return -1;
		act->total = act->running = 0;
	} else if (strcmp(d->overlap, "allow") != 0 && act->total > 0) {
		if (strcmp(d->overlap, "skip") == 0) {
			plan_skip(p, d, nominal);
			return 0;
		}
		state = "queued";
	}
	if (strcmp(state, "running") == 0 && d->max_active > 0 && act->total >= d->max_active)
		state = "queued";
	plan_fire(p, d, nominal, state);
	act->total++;
	if (strcmp(state, "running") == 0)
		act->running++;
	return 0;
}

/* A workflow whose required parameter has no default cannot run on a
 * schedule: recorded as an event, and the schedule moves on. */
static int record_unfireable(struct store *s, const struct due *d, int64_t nominal)
{
	char wid[24], nom[40];
	snprintf(wid, sizeof wid, "%lld", d->workflow_id);
	fmt_time_ms(nominal, nom, sizeof nom);
	const char *q[2] = {wid, nom};
	log_error("scheduled run not created: a required parameter has no default",
	          "workflow=%s nominal=%s", d->workflow, nom);
	return store_cmd(
	    s,
	    "INSERT INTO events (kind, workflow_id, actor, data) VALUES "
	    "('schedule.error', $1, 'scheduler', jsonb_build_object('nominal', $2::text, "
	    "'error', 'a required parameter has no default, so no run was created'))",
	    2, q);
}

/* clang-format off: SQL is laid out by hand. */

/* The runs of a batch, their task runs and events, in one statement. The
 * task-run rows mirror runs_trigger's (runs.c); params are the declared
 * defaults. A time that already has a run is skipped by the unique index. */
static const char FIRE_SQL[] =
    "WITH f AS (SELECT * FROM unnest($1::bigint[], $2::int[], $3::timestamptz[], $4::text[])"
    "   AS f(wid, ver, nominal, state)),"
    " ins AS (INSERT INTO runs (workflow_id, version, state, params, trigger, scheduled_for,"
    "   fired_at, started_at, deadline_at, created_by)"
    "  SELECT f.wid, f.ver, f.state,"
    "   coalesce((SELECT jsonb_object_agg(k, x->'default') FROM jsonb_each(v.dag->'params')"
    "     AS e(k, x) WHERE coalesce(x->'default', 'null') <> 'null'), '{}'),"
    "   'schedule', f.nominal, $5::timestamptz,"
    "   CASE WHEN f.state = 'running' THEN now() END,"
    "   CASE WHEN coalesce(v.dag->'deadline_ms', 'null') <> 'null'"
    "     THEN now() + (v.dag->>'deadline_ms')::bigint * interval '1 millisecond' END,"
    "   'scheduler'"
    "  FROM f JOIN workflow_versions v ON v.workflow_id = f.wid AND v.version = f.ver"
    "  ON CONFLICT (workflow_id, scheduled_for) WHERE scheduled_for IS NOT NULL"
    "   AND trigger IN ('schedule', 'backfill') DO NOTHING"
    "  RETURNING id, workflow_id, version, scheduled_for, state),"
    " trs AS (INSERT INTO task_runs (run_id, task, state, max_attempts, priority, pool)"
    "  SELECT ins.id, t.name,"
    "   CASE WHEN jsonb_typeof(t.spec->'needs') = 'array'"
    "     AND jsonb_array_length(t.spec->'needs') > 0 THEN 'pending' ELSE 'queued' END,"
    "   greatest(coalesce((t.spec->>'retries')::int, 0), 0) + 1,"
    "   CASE t.spec->>'priority' WHEN 'high' THEN 0 WHEN 'low' THEN 2 ELSE 1 END,"
    "   coalesce(t.spec->>'pool', 'default')"
    "  FROM ins JOIN tasks t ON t.workflow_id = ins.workflow_id AND t.version = ins.version"
    "  RETURNING 1),"
    " ev AS (INSERT INTO events (kind, workflow_id, run_id, actor, data)"
    "  SELECT 'schedule.fired', workflow_id, id, 'scheduler', jsonb_build_object("
    "   'nominal', wf_ts(scheduled_for), 'state', state, 'lateness_ms',"
    "   (extract(epoch FROM $5::timestamptz - scheduled_for) * 1000)::bigint) FROM ins)"
    " SELECT (extract(epoch FROM $5::timestamptz - scheduled_for) * 1000)::bigint,"
    "  (SELECT count(*) FROM trs) FROM ins";

static const char SKIP_SQL[] =
    "INSERT INTO events (kind, workflow_id, actor, data)"
    " SELECT 'schedule.skipped', w, 'scheduler', jsonb_build_object('nominal', wf_ts(n),"
    "  'reason', 'a previous run is still active (overlap: skip)')"
    " FROM unnest($1::bigint[], $2::timestamptz[]) AS u(w, n)";

static const char NEXT_SQL[] =
    "UPDATE schedules s SET next_nominal_at = u.nominal, next_fire_at = u.fire,"
    "  enabled = s.enabled AND u.enabled, updated_at = now(),"
    "  last_fired_at = CASE WHEN $5 THEN to_timestamp($6::bigint / 1000.0)"
    "    ELSE s.last_fired_at END,"
    "  last_nominal_at = CASE WHEN $5 THEN s.next_nominal_at ELSE s.last_nominal_at END"
    " FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[], $4::boolean[])"
    "   AS u(id, nominal, fire, enabled)"
    " WHERE s.id = u.id";

#define ACTIVE_SQL                                                                          \
	"SELECT workflow_id, count(*) FILTER (WHERE state = 'running'), count(*) FROM runs" \
	" WHERE workflow_id = ANY($1::bigint[]) AND state IN ('queued', 'running')"         \
	" GROUP BY workflow_id"

/* clang-format on */

static int write_next(struct store *s, struct plan *p, int fired, int64_t now_ms)
{
	if (p->nsched == 0)
		return 0;
	char now[24];
	snprintf(now, sizeof now, "%lld", (long long)now_ms);
	const char *q[6] = {p->sched_id.data, p->sched_nominal.data, p->sched_fire.data,
	                    p->sched_on.data, fired ? "t" : "f",     now};
	return store_execp(s, "sched_next", NEXT_SQL, 6, q) ? 0 : -1;
}

/* Newly submitted schedules have no next time yet: compute it from now. */
static int init_new(struct store *s, int batch, const char *now)
{
	char lim[16];
	snprintf(lim, sizeof lim, "%d", batch);
	const char *q[2] = {lim, now};
	PGresult *r = store_execp(s, "sched_new",
	                          DUE_COLUMNS "WHERE s.enabled AND s.next_nominal_at IS NULL "
	                                      "AND (s.kind = 'cron' OR s.at_time IS NOT NULL) "
	                                      "LIMIT $1 FOR UPDATE OF s SKIP LOCKED",
	                          2, q);
	if (!r)
		return -1;
	struct plan p;
	plan_init(&p);
	for (int i = 0; i < PQntuples(r); i++) {
		struct due d;
		load_due(r, i, &d);
		int64_t next = d.nominal_ms; /* "at": the time itself */
		if (strcmp(d.kind, "cron") == 0) {
			struct cron_expr *e;
			if (parse_expr(&d, &e) != 0 || next_after(e, &d, d.now_ms, &next) != 0)
				next = -1;
			cron_free(e);
		}
		plan_next(&p, &d, next);
	}
	PQclear(r);
	plan_close(&p);
	int rc = write_next(s, &p, 0, 0);
	plan_release(&p);
	return rc;
}

/* The active-run counts of the batch's workflows. Returns a new array of
 * *n entries, or NULL on a database error. */
static struct active *load_active(struct store *s, PGresult *due, int *n)
{
	struct buf ids;
	buf_init(&ids, 0);
	(void)!buf_puts(&ids, "{");
	for (int i = 0; i < PQntuples(due); i++)
		(void)!buf_printf(&ids, "%s%s", i ? "," : "", PQgetvalue(due, i, 1));
	(void)!buf_puts(&ids, "}");
	const char *q[1] = {ids.data};
	PGresult *r = store_execp(s, "sched_active", ACTIVE_SQL, 1, q);
	buf_release(&ids);
	if (!r)
		return NULL;
	/* one entry per due row, so every workflow of the batch has one */
	struct active *a = xcalloc((size_t)PQntuples(due) + 1, sizeof *a);
	int k = 0;
	for (int i = 0; i < PQntuples(due); i++) {
		long long wid = atoll(PQgetvalue(due, i, 1));
		if (find_active(a, k, wid))
			continue;
		a[k].workflow_id = wid;
		for (int j = 0; j < PQntuples(r); j++) {
			if (atoll(PQgetvalue(r, j, 0)) == wid) {
				a[k].running = atoi(PQgetvalue(r, j, 1));
				a[k].total = atoi(PQgetvalue(r, j, 2));
			}
		}
		k++;
	}
	PQclear(r);
	*n = k;
	return a;
}

/* The nominal times d fires now, by its catch-up policy, into times. */
static int times_to_fire(const struct cron_expr *e, const struct due *d, int64_t *times)
{
	if (!e) {
		times[0] = d->nominal_ms; /* one time "at" */
		return 1;
	}
	if (strcmp(d->catchup, "all") == 0)
		return missed_times(e, d, d->catchup_max, times);
	int n = missed_times(e, d, 1, times);
	if (n && strcmp(d->catchup, "none") == 0 &&
	    d->now_ms - times[0] > MISFIRE_GRACE_MS + d->jitter_ms) {
		log_info("missed firing not caught up (catchup: none)", "workflow=%s late_ms=%lld",
		         d->workflow, (long long)(d->now_ms - times[0]));
		n = 0;
	}
	return n;
}

/* One batch: claims up to batch due schedules and writes what they decide.
 * *claimed says how many were claimed. Returns the runs created, or -1. */
static int tick_once(struct store *s, int batch, int64_t now_ms, int *claimed)
{
	int fired = 0, nact = 0;
	char now[24], lim[16], now_text[40];
	struct active *act = NULL;
	int64_t *times = NULL;
	PGresult *r = NULL;
	struct plan p;
	plan_init(&p);
	*claimed = 0;
	snprintf(now, sizeof now, "%lld", (long long)now_ms);
	snprintf(lim, sizeof lim, "%d", batch);
	fmt_time_ms(now_ms, now_text, sizeof now_text);

	if (store_begin(s) != 0)
		goto fail;
	if (init_new(s, batch, now) != 0)
		goto fail;
	const char *q[2] = {lim, now};
	r = store_execp(s, "sched_due",
	                DUE_COLUMNS "WHERE s.enabled AND NOT w.paused "
	                            "AND s.next_fire_at <= to_timestamp($2::bigint / 1000.0) "
	                            "ORDER BY s.next_fire_at LIMIT $1 FOR UPDATE OF s SKIP LOCKED",
	                2, q);
	if (!r)
		goto fail;
	*claimed = PQntuples(r);
	if (*claimed > 0 && !(act = load_active(s, r, &nact)))
		goto fail;
	for (int i = 0; i < PQntuples(r); i++) {
		struct due d;
		load_due(r, i, &d);
		struct cron_expr *e = NULL;
		if (d.nominal_ms < 0 || parse_expr(&d, &e) != 0) {
			plan_next(&p, &d, -1);
			continue;
		}
		free(times);
		times = xcalloc((size_t)d.catchup_max, sizeof *times);
		int n = times_to_fire(e, &d, times);
		struct active *a = find_active(act, nact, d.workflow_id);
		for (int k = 0; k < n; k++) {
			int rc = d.needs_params ? record_unfireable(s, &d, times[k])
			                        : decide(s, &p, &d, a, times[k]);
			if (rc != 0) {
				cron_free(e);
				goto fail;
			}
		}
		int64_t next = -1;
		if (e && next_after(e, &d, d.now_ms, &next) != 0)
			next = -1;
		plan_next(&p, &d, next);
		cron_free(e);
	}
	plan_close(&p);
	if (p.nfire > 0) {
		const char *f[5] = {p.fire_wid.data, p.fire_ver.data, p.fire_nominal.data,
		                    p.fire_state.data, now_text};
		PGresult *ins = store_execp(s, "sched_fire", FIRE_SQL, 5, f);
		if (!ins)
			goto fail;
		fired = PQntuples(ins);
		for (int i = 0; i < fired; i++)
			metrics_observe_schedule_lag(atoll(PQgetvalue(ins, i, 0)) / 1000.0);
		PQclear(ins);
	}
	if (p.nskip > 0) {
		const char *k[2] = {p.skip_wid.data, p.skip_nominal.data};
		PGresult *sk = store_execp(s, "sched_skip", SKIP_SQL, 2, k);
		if (!sk)
			goto fail;
		PQclear(sk);
	}
	if (write_next(s, &p, 1, now_ms) != 0)
		goto fail;
	if (fired > 0)
		loop_fault("in-sched-batch"); /* runs written, not committed */
	if (promote_queued(s) < 0)
		goto fail;
	if (fired > 0 && store_cmd(s, "SELECT pg_notify('wf_work', '')", 0, NULL) != 0)
		goto fail;
	if (store_commit(s) != 0)
		goto fail;
	if (fired > 0)
		log_info("schedules fired", "claimed=%d runs=%d skipped=%d", *claimed, fired,
		         p.nskip);
	PQclear(r);
	free(times);
	free(act);
	plan_release(&p);
	return fired;
fail:
	store_rollback(s);
	log_warn("scheduler batch rolled back", "error=%s", store_error(s));
	PQclear(r);
	free(times);
	free(act);
	plan_release(&p);
	return -1;
}

/* A tick works through full batches for up to this long, so a second with
 * thousands of due schedules is not spread over many ticks. */
#define TICK_BUDGET_MS 800

int sched_tick_at(struct store *s, int batch, int64_t now_ms)
{
	int total = 0, claimed = 0;
	int64_t start = mono_ms();
	do {
		int n = tick_once(s, batch, now_ms, &claimed);
		if (n < 0)
			return total > 0 ? total : -1;
		total += n;
	} while (claimed == batch && mono_ms() - start < TICK_BUDGET_MS);
	return total;
}

int sched_tick(struct store *s, int batch)
{
	/* The database's clock is the one all engines share. */
	PGresult *r = store_execp(s, "sched_now",
	                          "SELECT (extract(epoch FROM now()) * 1000)::bigint", 0, NULL);
	if (!r)
		return -1;
	int64_t now_ms = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return sched_tick_at(s, batch, now_ms);
}
