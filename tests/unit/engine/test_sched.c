/* The scheduler against a real PostgreSQL: catch-up policies, jitter,
 * overlap policies, max_active_runs, one-time schedules, paused workflows,
 * and two engines firing the same schedules without a duplicate. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "dsl.h"
#include "runs.h"
#include "sched.h"
#include "testdb.h"

static void submit(struct store *s, const char *yaml)
{
	struct dsl_result r;
	int rc = dsl_compile(yaml, strlen(yaml), "test.yaml", &r);
	if (rc != 0) {
		for (size_t i = 0; i < r.nerrors; i++) {
			char *m = dsl_error_format(&r.errors[i]);
			cr_log_error("%s", m);
			free(m);
		}
	}
	cr_assert_eq(rc, 0, "the test workflow must compile");
	int version, changed;
	struct wf_err e;
	cr_assert_eq(runs_submit(s, &r, yaml, "test.yaml", "test", &version, &changed, &e), 0, "%s",
	             e.message);
	dsl_result_release(&r);
}

static long long value_ll(struct testdb *db, const char *sql)
{
	char *v = testdb_value(db, sql);
	cr_assert_not_null(v, "query failed: %s", sql);
	long long n = atoll(v);
	free(v);
	return n;
}

static int value_is(struct testdb *db, const char *sql, const char *want)
{
	char *v = testdb_value(db, sql);
	cr_assert_not_null(v, "query failed: %s", sql);
	int same = strcmp(v, want) == 0;
	if (!same)
		cr_log_error("%s: got '%s', want '%s'", sql, v, want);
	free(v);
	return same;
}

static void exec_sql(struct testdb *db, const char *sql)
{
	cr_assert_eq(store_cmd(db->s, sql, 0, NULL), 0, "%s: %s", sql, store_error(db->s));
}

/* Epoch milliseconds of an RFC 3339 time, computed by PostgreSQL. */
static int64_t ms(struct testdb *db, const char *rfc3339)
{
	char sql[160];
	snprintf(sql, sizeof sql, "SELECT (extract(epoch FROM '%s'::timestamptz) * 1000)::bigint",
	         rfc3339);
	return value_ll(db, sql);
}

/* One scheduler pass as if the clock read `when`. */
static void tick_at(struct testdb *db, const char *when)
{
	cr_assert_geq(sched_tick_at(db->s, 500, ms(db, when)), 0, "sched_tick_at failed: %s",
	              store_error(db->s));
}

static int runs_are(struct testdb *db, const char *workflow, const char *want)
{
	char sql[512];
	snprintf(sql, sizeof sql,
	         "SELECT coalesce(string_agg(to_char(r.scheduled_for AT TIME ZONE 'UTC', "
	         "'HH24:MI:SS') || ' ' || r.state, ',' ORDER BY r.scheduled_for), '') "
	         "FROM runs r JOIN workflows w ON w.id = r.workflow_id WHERE w.name = '%s'",
	         workflow);
	return value_is(db, sql, want);
}

#define EVERY_MINUTE(name, extra)                                                             \
	"name: " name "\nschedule:\n  cron: \"* * * * *\"\n" extra "tasks:\n  a:\n    noop: " \
	"true\n"
#define T0 "2026-06-01T10:00:30Z"

Test(sched, new_schedule_gets_next_time_and_does_not_fire_early)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	submit(s, EVERY_MINUTE("fresh", ""));
	tick_at(&db, T0);
	cr_assert(
	    value_is(&db, "SELECT next_nominal_at = '2026-06-01T10:01:00Z' FROM schedules", "t"));
	cr_assert_eq(value_ll(&db, "SELECT count(*) FROM runs"), 0);
	tick_at(&db, "2026-06-01T10:00:59.9Z");
	cr_assert_eq(value_ll(&db, "SELECT count(*) FROM runs"), 0);
	tick_at(&db, "2026-06-01T10:01:00Z");
	cr_assert(runs_are(&db, "fresh", "10:01:00 running"));
	cr_assert(value_is(&db, "SELECT fired_at = '2026-06-01T10:01:00Z' FROM runs", "t"),
	          "the run records the actual fire time");
	testdb_close(&db);
}

Test(sched, catchup_latest_fires_once_for_the_most_recent_time)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	submit(s, EVERY_MINUTE("latest", "  catchup: latest\n"));
	tick_at(&db, T0);
	tick_at(&db, "2026-06-01T10:10:30Z"); /* down for ten minutes */
	cr_assert(runs_are(&db, "latest", "10:10:00 running"));
	cr_assert(value_is(&db, "SELECT trigger FROM runs", "schedule"));
	cr_assert_eq(value_ll(&db, "SELECT count(*) FROM task_runs WHERE state = 'queued'"), 1);
	cr_assert(
	    value_is(&db, "SELECT next_nominal_at = '2026-06-01T10:11:00Z' FROM schedules", "t"));
	tick_at(&db, "2026-06-01T10:10:31Z");
	cr_assert_eq(value_ll(&db, "SELECT count(*) FROM runs"), 1, "a second tick fires nothing");
	testdb_close(&db);
}

Test(sched, catchup_all_fires_every_missed_time_up_to_the_bound)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	submit(s, EVERY_MINUTE("all3", "  catchup: all\n"));
	submit(s, EVERY_MINUTE("all5", "  catchup: all\n  catchup_max: 5\n"));
	tick_at(&db, T0);
	tick_at(&db, "2026-06-01T10:03:30Z");
	cr_assert(runs_are(&db, "all3", "10:01:00 running,10:02:00 running,10:03:00 running"));
	tick_at(&db, "2026-06-01T10:30:30Z"); /* 27 more missed: only the latest 5 run */
	cr_assert(runs_are(&db, "all5",
	                   "10:01:00 running,10:02:00 running,10:03:00 running,"
	                   "10:26:00 running,10:27:00 running,10:28:00 running,10:29:00 running,"
	                   "10:30:00 running"));
	cr_assert_eq(value_ll(&db, "SELECT count(*) FROM runs r JOIN workflows w ON "
	                           "w.id = r.workflow_id WHERE w.name = 'all3'"),
	             30, "all 30 under the default bound of 100");
	testdb_close(&db);
}

Test(sched, catchup_none_skips_missed_times_but_fires_on_time)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	submit(s, "name: hourly\nschedule:\n  cron: \"0 * * * *\"\n  catchup: none\n"
	          "tasks:\n  a:\n    noop: true\n");
	tick_at(&db, T0);
	tick_at(&db, "2026-06-01T12:30:30Z"); /* 11:00 and 12:00 were missed */
	cr_assert(runs_are(&db, "hourly", ""));
	cr_assert(
	    value_is(&db, "SELECT next_nominal_at = '2026-06-01T13:00:00Z' FROM schedules", "t"));
	tick_at(&db, "2026-06-01T13:00:00.4Z"); /* on time */
	cr_assert(runs_are(&db, "hourly", "13:00:00 running"));
	testdb_close(&db);
}

Test(sched, jitter_is_a_stable_offset_inside_the_window)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	submit(s, EVERY_MINUTE("jittery", "  jitter: 30s\n"));
	tick_at(&db, T0);
	long long off = value_ll(&db, "SELECT (extract(epoch FROM next_fire_at - next_nominal_at) "
	                              "* 1000)::bigint FROM schedules");
	cr_assert_eq(off, (long long)(cron_hash("jittery") % 30001u));
	/* Not due before nominal + offset; due at it. */
	int64_t nominal = ms(&db, "2026-06-01T10:01:00Z");
	cr_assert_geq(sched_tick_at(s, 10, nominal + off - 1), 0);
	cr_assert_eq(value_ll(&db, "SELECT count(*) FROM runs"), 0);
	cr_assert_eq(sched_tick_at(s, 10, nominal + off), 1);
	cr_assert(runs_are(&db, "jittery", "10:01:00 running"), "the run keeps the nominal time");
	long long off2 = value_ll(&db, "SELECT (extract(epoch FROM next_fire_at - next_nominal_at) "
	                               "* 1000)::bigint FROM schedules");
	cr_assert_eq(off2, off, "the same offset every time");
	testdb_close(&db);
}

Test(sched, overlap_skip_records_a_skipped_firing)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	submit(s, EVERY_MINUTE("skipper", "  overlap: skip\n"));
	tick_at(&db, T0);
	tick_at(&db, "2026-06-01T10:01:05Z");
	tick_at(&db, "2026-06-01T10:02:05Z");
	cr_assert(runs_are(&db, "skipper", "10:01:00 running"), "the second firing is skipped");
	cr_assert_eq(value_ll(&db, "SELECT count(*) FROM events WHERE kind = 'schedule.skipped'"),
	             1);
	testdb_close(&db);
}

Test(sched, overlap_queue_runs_one_at_a_time_in_order)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	submit(s, EVERY_MINUTE("queuer", "  overlap: queue\n"));
	tick_at(&db, T0);
	tick_at(&db, "2026-06-01T10:01:05Z");
	tick_at(&db, "2026-06-01T10:02:05Z");
	tick_at(&db, "2026-06-01T10:03:05Z");
	cr_assert(runs_are(&db, "queuer", "10:01:00 running,10:02:00 queued,10:03:00 queued"));
	/* The first run ends: the oldest queued one starts, and only that one. */
	exec_sql(&db, "UPDATE runs SET state = 'succeeded', finished_at = now() WHERE id = "
	              "(SELECT min(id) FROM runs)");
	tick_at(&db, "2026-06-01T10:03:10Z");
	cr_assert(runs_are(&db, "queuer", "10:01:00 succeeded,10:02:00 running,10:03:00 queued"));
	testdb_close(&db);
}

Test(sched, overlap_replace_cancels_the_active_run)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	submit(s, EVERY_MINUTE("replacer", "  overlap: replace\n"));
	tick_at(&db, T0);
	tick_at(&db, "2026-06-01T10:01:05Z");
	tick_at(&db, "2026-06-01T10:02:05Z");
	cr_assert(runs_are(&db, "replacer", "10:01:00 cancelled,10:02:00 running"));
	cr_assert(value_is(&db,
	                   "SELECT string_agg(t.state, ',' ORDER BY r.scheduled_for) FROM "
	                   "task_runs t JOIN runs r ON r.id = t.run_id",
	                   "cancelled,queued"));
	testdb_close(&db);
}

Test(sched, max_active_runs_queues_beyond_the_limit)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	submit(s, "name: capped\nmax_active_runs: 2\nschedule:\n  cron: \"* * * * *\"\n"
	          "tasks:\n  a:\n    noop: true\n");
	tick_at(&db, T0);
	tick_at(&db, "2026-06-01T10:01:05Z");
	tick_at(&db, "2026-06-01T10:02:05Z");
	tick_at(&db, "2026-06-01T10:03:05Z");
	tick_at(&db, "2026-06-01T10:04:05Z");
	cr_assert(runs_are(&db, "capped",
	                   "10:01:00 running,10:02:00 running,10:03:00 queued,10:04:00 queued"));
	testdb_close(&db);
}

Test(sched, one_time_schedule_fires_once)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	submit(s, "name: once\nschedule:\n  at: 2026-07-01T09:00:00+02:00\n"
	          "tasks:\n  a:\n    noop: true\n");
	tick_at(&db, "2026-07-01T06:59:59Z");
	cr_assert_eq(value_ll(&db, "SELECT count(*) FROM runs"), 0);
	tick_at(&db, "2026-07-01T07:00:00.2Z");
	tick_at(&db, "2026-07-01T07:00:01Z");
	tick_at(&db, "2026-07-02T07:00:00Z");
	cr_assert(runs_are(&db, "once", "07:00:00 running"));
	cr_assert(value_is(&db,
	                   "SELECT enabled::text || coalesce(next_fire_at::text, '-') FROM "
	                   "schedules",
	                   "false-"));
	testdb_close(&db);
}

Test(sched, paused_workflow_does_not_fire_until_unpaused)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	submit(s, EVERY_MINUTE("sleepy", "  catchup: latest\n"));
	tick_at(&db, T0);
	exec_sql(&db, "UPDATE workflows SET paused = true");
	tick_at(&db, "2026-06-01T10:05:30Z");
	cr_assert(runs_are(&db, "sleepy", ""));
	exec_sql(&db, "UPDATE workflows SET paused = false");
	tick_at(&db, "2026-06-01T10:05:31Z");
	cr_assert(runs_are(&db, "sleepy", "10:05:00 running"), "catch-up applies on unpause");
	testdb_close(&db);
}

Test(sched, far_future_and_clock_jumps_are_bounded)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	submit(s, "name: leap\nschedule:\n  cron: \"0 0 29 2 *\"\ntasks:\n  a:\n    noop: true\n");
	submit(s, "name: busy\nschedule:\n  cron: \"* * * * * *\"\n  catchup: all\n"
	          "  catchup_max: 50\ntasks:\n  a:\n    noop: true\n");
	tick_at(&db, T0);
	cr_assert(value_is(&db,
	                   "SELECT next_nominal_at = '2028-02-29T00:00:00Z' FROM schedules s "
	                   "JOIN workflows w ON w.id = s.workflow_id WHERE w.name = 'leap'",
	                   "t"));
	/* The clock jumps forward by three days: a per-second schedule with
	 * catchup all creates catchup_max runs, not 259,200. */
	tick_at(&db, "2026-06-04T10:00:30Z");
	cr_assert_eq(value_ll(&db, "SELECT count(*) FROM runs"), 50);
	/* ... then back by an hour: nothing is due, nothing fires. */
	tick_at(&db, "2026-06-04T09:00:30Z");
	cr_assert_eq(value_ll(&db, "SELECT count(*) FROM runs"), 50);
	/* ... and forward again: the schedule goes on from where it was. */
	tick_at(&db, "2026-06-04T10:00:31Z");
	cr_assert_eq(value_ll(&db, "SELECT count(*) FROM runs"), 51);
	testdb_close(&db);
}

/* The DST policies of docs/workflow-format.md, with an injected clock:
 * Europe/Berlin skips 02:00-03:00 on 2026-03-29 and repeats 02:00-03:00 on
 * 2026-10-25. */
static void dst_case(const char *name, const char *dst, const char *from, const char *to,
                     const char *want)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	char yaml[256];
	snprintf(yaml, sizeof yaml,
	         "name: %s\nschedule:\n  cron: \"30 2 * * *\"\n  timezone: Europe/Berlin\n"
	         "  catchup: all\n  dst: {%s}\ntasks:\n  a:\n    noop: true\n",
	         name, dst);
	submit(s, yaml);
	tick_at(&db, from);
	tick_at(&db, to);
	cr_assert(runs_are(&db, name, want), "%s", dst);
	testdb_close(&db);
}

Test(sched, dst_gap_shift)
{
	dst_case("gap-shift", "gap: shift", "2026-03-28T12:00:00Z", "2026-03-29T06:00:00Z",
	         "01:30:00 running");
}

Test(sched, dst_gap_next)
{
	dst_case("gap-next", "gap: next", "2026-03-28T12:00:00Z", "2026-03-29T06:00:00Z",
	         "01:00:00 running");
}

Test(sched, dst_gap_skip)
{
	dst_case("gap-skip", "gap: skip", "2026-03-28T12:00:00Z", "2026-03-30T06:00:00Z",
	         "00:30:00 running");
}

Test(sched, dst_repeat_once)
{
	dst_case("rep-once", "repeat: once", "2026-10-24T12:00:00Z", "2026-10-25T06:00:00Z",
	         "00:30:00 running");
}

Test(sched, dst_repeat_twice)
{
	dst_case("rep-twice", "repeat: twice", "2026-10-24T12:00:00Z", "2026-10-25T06:00:00Z",
	         "00:30:00 running,01:30:00 running");
}

struct racer {
	const char *conninfo;
	int64_t at;
	int fired;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	char err[256];
	struct store *s = store_open(r->conninfo, err, sizeof err);
	if (!s)
		return NULL;
	for (int i = 0; i < 20; i++) {
		int n = sched_tick_at(s, 25, r->at);
		if (n > 0)
			r->fired += n;
	}
	store_close(s);
	return NULL;
}

Test(sched, two_engines_never_fire_the_same_time_twice, .timeout = 60)
{
	struct testdb db;
	struct store *s = testdb_open(&db);
	for (int i = 0; i < 100; i++) {
		char yaml[256];
		snprintf(yaml, sizeof yaml, EVERY_MINUTE("race-%d", "  catchup: all\n"), i);
		submit(s, yaml);
	}
	tick_at(&db, T0);
	int64_t at = ms(&db, "2026-06-01T10:02:30Z");
	struct racer a = {db.conninfo, at, 0}, b = {db.conninfo, at, 0};
	pthread_t ta, tb;
	pthread_create(&ta, NULL, race, &a);
	pthread_create(&tb, NULL, race, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	cr_assert_eq(value_ll(&db, "SELECT count(*) FROM runs"), 200, "2 firings x 100 schedules");
	cr_assert_eq(a.fired + b.fired, 200);
	cr_assert_eq(value_ll(&db, "SELECT count(*) FROM (SELECT workflow_id, scheduled_for FROM "
	                           "runs GROUP BY 1, 2 HAVING count(*) > 1) d"),
	             0);
	cr_log_info("engine A fired %d, engine B fired %d", a.fired, b.fired);
	testdb_close(&db);
}
