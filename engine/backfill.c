#include "backfill.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

/* The workflow's schedule, locked for the duration of the transaction so two
 * backfills of one workflow do not interleave. */
static PGresult *lock_schedule(struct store *s, const char *workflow, struct wf_err *e)
{
	const char *p[1] = {workflow};
	PGresult *r =
	    store_exec(s,
	               "SELECT w.id, s.kind, coalesce(s.expr, ''), s.timezone, s.dst_gap, "
	               "s.dst_repeat FROM workflows w LEFT JOIN schedules s ON "
	               "s.workflow_id = w.id WHERE w.name = $1 AND w.deleted_at IS NULL "
	               "FOR UPDATE OF w",
	               1, p);
	if (!r) {
		wf_err_set(e, 503, "unavailable", "", "database unavailable: %s", store_error(s));
		return NULL;
	}
	if (PQntuples(r) != 1) {
		wf_err_set(e, 404, "not_found", "workflow", "workflow '%s' does not exist",
		           workflow);
		PQclear(r);
		return NULL;
	}
	if (PQgetisnull(r, 0, 1) || strcmp(PQgetvalue(r, 0, 1), "cron") != 0) {
		wf_err_set(e, 400, "invalid_request", "workflow",
		           "workflow '%s' has no cron schedule to backfill", workflow);
		PQclear(r);
		return NULL;
	}
	return r;
}

long long backfill_create(struct store *s, const char *workflow, int64_t from_ms, int64_t to_ms,
                          int max_runs, const char *actor, int *created, int *skipped,
                          struct wf_err *e)
{
	long long id = -1;
	int made = 0, had = 0;
	struct cron_expr *expr = NULL;
	PGresult *r = NULL;
	if (max_runs <= 0 || max_runs > BACKFILL_MAX_RUNS)
		max_runs = BACKFILL_MAX_RUNS;
	if (to_ms < from_ms) {
		wf_err_set(e, 400, "invalid_request", "to", "the range ends before it starts");
		return -1;
	}
	if (store_begin(s) != 0) {
		wf_err_set(e, 503, "unavailable", "", "database unavailable: %s", store_error(s));
		return -1;
	}
	r = lock_schedule(s, workflow, e);
	if (!r)
		goto fail;
	char err[256];
	if (cron_parse(PQgetvalue(r, 0, 2), workflow, &expr, err, sizeof err) != 0) {
		wf_err_set(e, 400, "invalid_request", "workflow", "schedule of '%s': %s", workflow,
		           err);
		goto fail;
	}
	enum cron_dst_gap gap;
	enum cron_dst_repeat repeat;
	if (cron_dst_gap_parse(PQgetvalue(r, 0, 4), &gap) != 0)
		gap = CRON_GAP_SHIFT;
	if (cron_dst_repeat_parse(PQgetvalue(r, 0, 5), &repeat) != 0)
		repeat = CRON_REPEAT_ONCE;
	char *tz = xstrdup(PQgetvalue(r, 0, 3));
	char wid[24];
	snprintf(wid, sizeof wid, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);

	/* Count first: a range too large is refused before anything is written. */
	int64_t *times = xcalloc((size_t)max_runs, sizeof *times);
	int n = 0;
	int64_t t = from_ms / 1000 - 1, next;
	while (cron_next(expr, tz, gap, repeat, t, &next) == 0 && next * 1000 <= to_ms) {
		if (n == max_runs) {
			wf_err_set(e, 400, "invalid_request", "to",
			           "the range holds more than %d fire times; narrow it", max_runs);
			free(times);
			free(tz);
			r = NULL;
			goto fail;
		}
		times[n++] = next * 1000;
		t = next;
	}
	free(tz);
	char from[40], to[40];
	fmt_time_ms(from_ms, from, sizeof from);
	fmt_time_ms(to_ms, to, sizeof to);
	const char *pb[4] = {wid, from, to, actor};
	r = store_exec(s,
	               "INSERT INTO backfills (workflow_id, from_at, to_at, created_by) "
	               "VALUES ($1, $2, $3, $4) RETURNING id",
	               4, pb);
	if (!r) {
		free(times);
		wf_err_set(e, 503, "unavailable", "", "database unavailable: %s", store_error(s));
		goto fail;
	}
	char bid[24];
	snprintf(bid, sizeof bid, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	r = NULL;
	for (int i = 0; i < n; i++) {
		int existing = 0;
		long long run = runs_trigger(s, workflow, NULL, NULL, "backfill", times[i], actor,
		                             &existing, e);
		if (run < 0) {
			free(times);
			goto fail;
		}
		if (existing) {
			had++;
			continue;
		}
		char rid[24];
		snprintf(rid, sizeof rid, "%lld", run);
		const char *pr[2] = {rid, bid};
		if (store_cmd(
		        s,
		        "UPDATE runs SET state = 'queued', started_at = NULL, backfill_id = $2 "
		        "WHERE id = $1",
		        2, pr) != 0) {
			free(times);
			wf_err_set(e, 503, "unavailable", "", "database unavailable: %s",
			           store_error(s));
			goto fail;
		}
		made++;
	}
	free(times);
	char cnt[16], skip[16];
	snprintf(cnt, sizeof cnt, "%d", made);
	snprintf(skip, sizeof skip, "%d", had);
	const char *pu[5] = {bid, cnt, skip, wid, actor};
	if (store_cmd(
	        s,
	        "WITH b AS (UPDATE backfills SET runs = $2, skipped = $3 WHERE id = $1) "
	        "INSERT INTO events (kind, workflow_id, actor, data) VALUES ('backfill.created', "
	        "$4, $5, jsonb_build_object('backfill_id', $1::bigint, 'runs', $2::int, "
	        "'skipped', $3::int))",
	        5, pu) != 0 ||
	    store_commit(s) != 0) {
		wf_err_set(e, 503, "unavailable", "", "database unavailable: %s", store_error(s));
		goto fail;
	}
	id = atoll(bid);
	log_info("backfill created", "workflow=%s backfill_id=%lld runs=%d skipped=%d", workflow,
	         id, made, had);
	if (created)
		*created = made;
	if (skipped)
		*skipped = had;
	cron_free(expr);
	return id;
fail:
	PQclear(r);
	cron_free(expr);
	store_rollback(s);
	return -1;
}

int backfill_cancel(struct store *s, long long id, const char *actor, struct wf_err *e)
{
	char bid[24];
	snprintf(bid, sizeof bid, "%lld", id);
	const char *p[2] = {bid, actor};
	PGresult *r =
	    store_exec(s,
	               "WITH b AS (UPDATE backfills SET state = 'cancelled', "
	               "cancelled_at = coalesce(cancelled_at, now()) WHERE id = $1 "
	               "RETURNING id, workflow_id), "
	               "ev AS (INSERT INTO events (kind, workflow_id, actor, data) SELECT "
	               "'backfill.cancelled', workflow_id, $2, jsonb_build_object("
	               "'backfill_id', id) FROM b) "
	               "SELECT (SELECT count(*) FROM b), array(SELECT r.id FROM runs r "
	               "WHERE r.backfill_id = $1 AND r.state IN ('queued', 'running', 'paused') "
	               "ORDER BY r.id)",
	               2, p);
	if (!r) {
		wf_err_set(e, 503, "unavailable", "", "database unavailable: %s", store_error(s));
		return -1;
	}
	if (strcmp(PQgetvalue(r, 0, 0), "0") == 0) {
		wf_err_set(e, 404, "not_found", "", "backfill %lld does not exist", id);
		PQclear(r);
		return -1;
	}
	/* "{1,2,3}": the unfinished runs, cancelled one by one like any run. */
	int cancelled = 0;
	const char *ids = PQgetvalue(r, 0, 1);
	for (const char *c = ids; *c;) {
		while (*c == '{' || *c == ',' || *c == '}')
			c++;
		if (!*c)
			break;
		long long run = strtoll(c, (char **)&c, 10);
		struct wf_err ignore;
		/* A run that finished in the meantime answers 409: not an error here. */
		if (runs_cancel(s, run, actor, &ignore) == 0) {
			cancelled++;
		} else if (ignore.status >= 500) {
			*e = ignore;
			PQclear(r);
			return -1;
		}
	}
	PQclear(r);
	log_info("backfill cancelled", "backfill_id=%lld runs=%d", id, cancelled);
	return cancelled;
}
