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
#include "log.h"
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

static long long run_count(struct store *s, long long workflow_id, const char *states)
{
	char wid[24];
	snprintf(wid, sizeof wid, "%lld", workflow_id);
	const char *p[2] = {wid, states};
	PGresult *r = store_execp(s, "sched_active",
	                          "SELECT count(*) FROM runs WHERE workflow_id = $1 "
	                          "AND state = ANY($2::text[])",
	                          2, p);
	if (!r)
		return -1;
	long long n = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
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

static int record_skip(struct store *s, const struct due *d, int64_t nominal_ms)
{
	char wid[24], nom[40];
	snprintf(wid, sizeof wid, "%lld", d->workflow_id);
	fmt_time_ms(nominal_ms, nom, sizeof nom);
	const char *p[2] = {wid, nom};
	return store_cmd(
	    s,
	    "INSERT INTO events (kind, workflow_id, actor, data) VALUES "
	    "('schedule.skipped', $1, 'scheduler', jsonb_build_object('nominal', $2::text, "
	    "'reason', 'a previous run is still active (overlap: skip)'))",
	    2, p);
}

/* Creates one scheduled run and its task runs (through runs_trigger, inside
 * this transaction), in the given state, with the actual fire time.
 * Returns 1 created, 0 when it already existed or cannot be created (a
 * required parameter without a default: logged), -1 on a database error. */
static int create_run(struct store *s, const struct due *d, int64_t nominal_ms, const char *state)
{
	struct wf_err e;
	int existing = 0;
	long long id = runs_trigger(s, d->workflow, NULL, NULL, "schedule", nominal_ms, "scheduler",
	                            &existing, &e);
	if (id < 0) {
		if (e.status >= 500)
			return -1;
		log_error("scheduled run not created", "workflow=%s error=%s", d->workflow,
		          e.message);
		return 0;
	}
	if (existing)
		return 0;
	char rid[24], nom[40], now[40];
	snprintf(rid, sizeof rid, "%lld", id);
	fmt_time_ms(nominal_ms, nom, sizeof nom);
	fmt_time_ms(d->now_ms, now, sizeof now);
	const char *p[4] = {rid, nom, state, now};
	if (store_cmd(
	        s,
	        "WITH r AS (UPDATE runs SET fired_at = $4::timestamptz, state = $3, "
	        "  started_at = CASE WHEN $3 = 'running' THEN started_at END "
	        "  WHERE id = $1 RETURNING workflow_id) "
	        "INSERT INTO events (kind, workflow_id, run_id, actor, data) "
	        "SELECT 'schedule.fired', workflow_id, $1, 'scheduler', jsonb_build_object("
	        "'nominal', $2::text, 'state', $3::text, 'lateness_ms', "
	        "(extract(epoch FROM $4::timestamptz - $2::timestamptz) * 1000)::bigint) FROM r",
	        4, p) != 0)
		return -1;
	log_info("schedule fired", "workflow=%s run_id=%lld nominal=%s state=%s", d->workflow, id,
	         nom, state);
	return 1;
}

static int fire_one(struct store *s, const struct due *d, int64_t nominal_ms)
{
	const char *state = "running";
	if (strcmp(d->overlap, "replace") == 0) {
		if (cancel_active(s, d->workflow_id) != 0)
			return -1;
	} else if (strcmp(d->overlap, "allow") != 0) {
		long long active = run_count(s, d->workflow_id, "{queued,running}");
		if (active < 0)
			return -1;
		if (active > 0 && strcmp(d->overlap, "skip") == 0)
			return record_skip(s, d, nominal_ms) == 0 ? 0 : -1;
		if (active > 0)
			state = "queued";
	}
	if (strcmp(state, "running") == 0 && d->max_active > 0) {
		long long running = run_count(s, d->workflow_id, "{queued,running}");
		if (running < 0)
			return -1;
		if (running >= d->max_active)
			state = "queued";
	}
	return create_run(s, d, nominal_ms, state);
}

static int advance(struct store *s, const struct due *d, const struct cron_expr *e)
{
	char id[24], nom[40], fire[40];
	snprintf(id, sizeof id, "%lld", d->id);
	const char *p[3] = {id, NULL, NULL};
	int64_t next;
	if (!e || next_after(e, d, d->now_ms, &next) != 0)
		return store_cmd(
		    s,
		    "UPDATE schedules SET next_fire_at = NULL, next_nominal_at = NULL, "
		    "enabled = false, last_fired_at = now(), "
		    "updated_at = now() WHERE id = $1",
		    1, p);
	fmt_time_ms(next, nom, sizeof nom);
	fmt_time_ms(next + jitter_offset(d->workflow, d->jitter_ms), fire, sizeof fire);
	p[1] = nom;
	p[2] = fire;
	return store_cmd(
	    s,
	    "UPDATE schedules SET next_nominal_at = $2, next_fire_at = $3, "
	    "last_fired_at = now(), last_nominal_at = next_nominal_at, updated_at = now() "
	    "WHERE id = $1",
	    3, p);
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
	if (d->catchup_max <= 0 || d->catchup_max > HARD_CATCHUP_MAX)
		d->catchup_max = d->catchup_max <= 0 ? 100 : HARD_CATCHUP_MAX;
}

#define DUE_COLUMNS                                                                             \
	"SELECT s.id, s.workflow_id, w.name, w.current_version, s.kind, coalesce(s.expr, ''), " \
	"s.timezone, s.jitter_ms, s.catchup, s.overlap, s.dst_gap, s.dst_repeat, "              \
	"(extract(epoch FROM coalesce(s.next_nominal_at, s.at_time)) * 1000)::bigint, "         \
	"coalesce((v.dag->'schedule'->>'catchup_max')::int, 100), "                             \
	"coalesce((v.dag->>'max_active_runs')::int, 0), "                                       \
	"$2::bigint "                                                                           \
	"FROM schedules s JOIN workflows w ON w.id = s.workflow_id "                            \
	"JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.current_version "

/* Newly submitted schedules have no next time yet: compute it from now. */
static int init_new(struct store *s, int batch, const char *now)
{
	char lim[16];
	snprintf(lim, sizeof lim, "%d", batch);
	const char *p[2] = {lim, now};
	PGresult *r = store_execp(s, "sched_new",
	                          DUE_COLUMNS "WHERE s.enabled AND s.next_nominal_at IS NULL "
	                                      "AND (s.kind = 'cron' OR s.at_time IS NOT NULL) "
	                                      "LIMIT $1 FOR UPDATE OF s SKIP LOCKED",
	                          2, p);
	if (!r)
		return -1;
	int rc = 0;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
		struct due d;
		load_due(r, i, &d);
		char id[24], nom[40], fire[40];
		snprintf(id, sizeof id, "%lld", d.id);
		int64_t next = d.nominal_ms;
		if (strcmp(d.kind, "cron") == 0) {
			struct cron_expr *e;
			if (parse_expr(&d, &e) != 0 || next_after(e, &d, d.now_ms, &next) != 0) {
				cron_free(e);
				const char *q[1] = {id};
				rc = store_cmd(
				    s, "UPDATE schedules SET enabled = false WHERE id = $1", 1, q);
				continue;
			}
			cron_free(e);
		}
		fmt_time_ms(next, nom, sizeof nom);
		fmt_time_ms(next + jitter_offset(d.workflow, d.jitter_ms), fire, sizeof fire);
		const char *q[3] = {id, nom, fire};
		rc = store_cmd(s,
		               "UPDATE schedules SET next_nominal_at = $2, next_fire_at = $3, "
		               "updated_at = now() WHERE id = $1",
		               3, q);
	}
	PQclear(r);
	return rc;
}

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

int sched_tick_at(struct store *s, int batch, int64_t now_ms)
{
	int fired = 0;
	char now[24];
	snprintf(now, sizeof now, "%lld", (long long)now_ms);
	if (store_begin(s) != 0)
		return -1;
	if (init_new(s, batch, now) != 0)
		goto fail;
	char lim[16];
	snprintf(lim, sizeof lim, "%d", batch);
	const char *p[2] = {lim, now};
	PGresult *r =
	    store_execp(s, "sched_due",
	                DUE_COLUMNS "WHERE s.enabled AND NOT w.paused "
	                            "AND s.next_fire_at <= to_timestamp($2::bigint / 1000.0) "
	                            "ORDER BY s.next_fire_at "
	                            "LIMIT $1 FOR UPDATE OF s SKIP LOCKED",
	                2, p);
	if (!r)
		goto fail;
	int64_t *times = NULL;
	for (int i = 0; i < PQntuples(r); i++) {
		struct due d;
		load_due(r, i, &d);
		free(times);
		times = xcalloc((size_t)d.catchup_max, sizeof *times);
		struct cron_expr *e = NULL;
		if (d.nominal_ms < 0 || parse_expr(&d, &e) != 0) {
			const char *q[1] = {PQgetvalue(r, i, 0)};
			if (store_cmd(s, "UPDATE schedules SET enabled = false WHERE id = $1", 1,
			              q))
				goto fail_loop;
			continue;
		}
		int n;
		if (!e) {
			times[0] = d.nominal_ms; /* one time "at" */
			n = 1;
		} else if (strcmp(d.catchup, "all") == 0) {
			n = missed_times(e, &d, d.catchup_max, times);
		} else {
			n = missed_times(e, &d, 1, times);
			if (n && strcmp(d.catchup, "none") == 0 &&
			    d.now_ms - times[0] > MISFIRE_GRACE_MS + d.jitter_ms) {
				log_info("missed firing not caught up (catchup: none)",
				         "workflow=%s late_ms=%lld", d.workflow,
				         (long long)(d.now_ms - times[0]));
				n = 0;
			}
		}
		for (int k = 0; k < n; k++) {
			int c = fire_one(s, &d, times[k]);
			if (c < 0) {
				cron_free(e);
				goto fail_loop;
			}
			fired += c;
		}
		int rc = advance(s, &d, e);
		cron_free(e);
		if (rc != 0)
			goto fail_loop;
	}
	free(times);
	PQclear(r);
	if (promote_queued(s) < 0)
		goto fail;
	if (fired > 0 && store_cmd(s, "SELECT pg_notify('wf_work', '')", 0, NULL) != 0)
		goto fail;
	if (store_commit(s) != 0)
		return -1;
	return fired;
fail_loop:
	free(times);
	PQclear(r);
fail:
	store_rollback(s);
	log_warn("scheduler batch rolled back", "error=%s", store_error(s));
	return -1;
}
