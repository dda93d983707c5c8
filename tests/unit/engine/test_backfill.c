/* Backfills against a real PostgreSQL: the runs of a range, as a group,
 * started in order under the overlap policy, cancellable together. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfill.h"
#include "dsl.h"
#include "runs.h"
#include "sched.h"
#include "testdb.h"

static void submit(struct store *s, const char *yaml)
{
	struct dsl_result r;
	cr_assert_eq(dsl_compile(yaml, strlen(yaml), "t.yaml", &r), 0);
	int version, changed;
	struct wf_err e;
	cr_assert_eq(runs_submit(s, &r, yaml, "t.yaml", "test", &version, &changed, &e), 0, "%s",
	             e.message);
	dsl_result_release(&r);
}

static int64_t ms(struct testdb *db, const char *t)
{
	char sql[128];
	snprintf(sql, sizeof sql, "SELECT (extract(epoch FROM '%s'::timestamptz) * 1000)::bigint",
	         t);
	char *v = testdb_value(db, sql);
	int64_t n = atoll(v);
	free(v);
	return n;
}

static int is(struct testdb *db, const char *sql, const char *want)
{
	char *v = testdb_value(db, sql);
	cr_assert_not_null(v, "%s", sql);
	int ok = strcmp(v, want) == 0;
	if (!ok)
		cr_log_error("%s: got '%s', want '%s'", sql, v, want);
	free(v);
	return ok;
}

#define STATES                                                                                  \
	"SELECT string_agg(to_char(scheduled_for AT TIME ZONE 'UTC', 'HH24') || ' ' || state, " \
	"',' "                                                                                  \
	"ORDER BY scheduled_for) FROM runs"

#define HOURLY(name, overlap)                                                   \
	"name: " name "\nschedule:\n  cron: \"0 * * * *\"\n  overlap: " overlap \
	"\ntasks:\n  a:\n    shell: [echo, \"${schedule.time}\"]\n"

Test(backfill, creates_one_queued_run_per_time_and_starts_them_in_order)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	submit(s, HOURLY("hourly", "queue"));
	struct wf_err e;
	int created = 0, skipped = 0;
	long long id =
	    backfill_create(s, "hourly", ms(&db, "2026-01-01T00:00:00Z"),
	                    ms(&db, "2026-01-01T03:30:00Z"), 0, "test", &created, &skipped, &e);
	cr_assert_gt(id, 0, "%s", e.message);
	cr_assert_eq(created, 4);
	cr_assert_eq(skipped, 0);
	cr_assert(is(&db, STATES, "00 queued,01 queued,02 queued,03 queued"));
	cr_assert(is(&db, "SELECT count(DISTINCT backfill_id) || ' ' || min(trigger) FROM runs",
	             "1 backfill"));
	cr_assert_geq(sched_tick_at(s, 10, ms(&db, "2026-06-01T00:00:00Z")), 0);
	cr_assert(is(&db, STATES, "00 running,01 queued,02 queued,03 queued"),
	          "overlap queue: one at a time, oldest first");
	cr_assert(is(&db,
	             "UPDATE runs SET state = 'succeeded' WHERE state = 'running' "
	             "RETURNING 'x'",
	             "x"));
	cr_assert_geq(sched_tick_at(s, 10, ms(&db, "2026-06-01T00:00:01Z")), 0);
	cr_assert(is(&db, STATES, "00 succeeded,01 running,02 queued,03 queued"));
	testdb_close(&db);
}

Test(backfill, overlap_allow_starts_all_and_existing_times_are_not_rerun)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	submit(s, HOURLY("wide", "allow"));
	struct wf_err e;
	int created = 0, skipped = 0;
	cr_assert_gt(backfill_create(s, "wide", ms(&db, "2026-01-01T00:00:00Z"),
	                             ms(&db, "2026-01-01T02:00:00Z"), 0, "test", &created, &skipped,
	                             &e),
	             0);
	cr_assert_eq(created, 3);
	cr_assert_gt(backfill_create(s, "wide", ms(&db, "2026-01-01T01:00:00Z"),
	                             ms(&db, "2026-01-01T04:00:00Z"), 0, "test", &created, &skipped,
	                             &e),
	             0);
	cr_assert_eq(created, 2, "03 and 04 are new");
	cr_assert_eq(skipped, 2, "01 and 02 already had runs");
	cr_assert_geq(sched_tick_at(s, 10, ms(&db, "2026-06-01T00:00:00Z")), 0);
	cr_assert(is(&db, STATES, "00 running,01 running,02 running,03 running,04 running"));
	testdb_close(&db);
}

Test(backfill, refuses_bad_requests_and_writes_nothing)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	submit(s, "name: secs\nschedule:\n  cron: \"* * * * * *\"\ntasks:\n  a:\n    noop: true\n");
	submit(s, "name: manual\ntasks:\n  a:\n    noop: true\n");
	struct wf_err e;
	cr_assert_eq(backfill_create(s, "secs", ms(&db, "2026-01-01T00:00:00Z"),
	                             ms(&db, "2026-01-02T00:00:00Z"), 0, "test", NULL, NULL, &e),
	             -1);
	cr_assert_eq(e.status, 400);
	cr_assert(strstr(e.message, "more than 10000 fire times"), "%s", e.message);
	cr_assert_eq(backfill_create(s, "manual", 0, 1000, 0, "test", NULL, NULL, &e), -1);
	cr_assert_eq(e.status, 400);
	cr_assert(strstr(e.message, "no cron schedule"), "%s", e.message);
	cr_assert_eq(backfill_create(s, "nope", 0, 1000, 0, "test", NULL, NULL, &e), -1);
	cr_assert_eq(e.status, 404);
	cr_assert_eq(backfill_create(s, "secs", 5000, 1000, 0, "test", NULL, NULL, &e), -1);
	cr_assert_eq(e.status, 400);
	cr_assert(
	    is(&db, "SELECT (SELECT count(*) FROM runs) + (SELECT count(*) FROM backfills)", "0"));
	testdb_close(&db);
}

Test(backfill, cancel_stops_the_whole_group)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	submit(s, HOURLY("group", "queue"));
	struct wf_err e;
	long long id = backfill_create(s, "group", ms(&db, "2026-01-01T00:00:00Z"),
	                               ms(&db, "2026-01-01T02:00:00Z"), 0, "test", NULL, NULL, &e);
	cr_assert_gt(id, 0);
	cr_assert_geq(sched_tick_at(s, 10, ms(&db, "2026-06-01T00:00:00Z")), 0);
	cr_assert_eq(backfill_cancel(s, id, "test", &e), 3, "%s", e.message);
	cr_assert(is(&db, STATES, "00 cancelled,01 cancelled,02 cancelled"));
	cr_assert(is(&db, "SELECT state FROM backfills", "cancelled"));
	cr_assert(is(&db, "SELECT count(*) FROM task_runs WHERE state <> 'cancelled'", "0"));
	cr_assert_eq(backfill_cancel(s, id + 100, "test", &e), -1);
	cr_assert_eq(e.status, 404);
	testdb_close(&db);
}
