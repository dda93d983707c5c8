/* The run lifecycle against a real PostgreSQL (engine/runs.h): submit,
 * trigger, results, retries, dead letters, trigger rules, stale results,
 * the reaper, resume, cancel, repair. DAGs are written by hand here (no
 * YAML compiler); the executor is simulated with the dispatcher's claim SQL.
 * Each test gets its own database (testdb.h). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/runs.h"
#include "log.h"
#include "testdb.h"
#include "util.h"
#include "xalloc.h"

static struct testdb db;
static struct store *S;

static void setup(void)
{
	log_set_level(LOG_WARN);
	S = testdb_open(&db);
}

static void teardown(void)
{
	testdb_close(&db);
}

TestSuite(runs, .init = setup, .fini = teardown, .timeout = 120);

/* ------------------------------------------------------------ helpers */

#define q(...)        testdb_q(&db, __VA_ARGS__)
#define qi(...)       testdb_qi(&db, __VA_ARGS__)
#define exec_sql(...) testdb_exec(&db, __VA_ARGS__)

/* A task: needs is a comma-separated list ("" = none). */
static json_t *task(const char *name, const char *needs, const char *trigger, int retries)
{
	json_t *t = json_object();
	json_object_set_new(t, "name", json_string(name));
	json_t *n = json_array();
	if (needs && *needs) {
		char *copy = xstrdup(needs), *save = NULL;
		for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save))
			json_array_append_new(n, json_string(p));
		free(copy);
	}
	json_object_set_new(t, "needs", n);
	json_object_set_new(t, "trigger", json_string(trigger ? trigger : "all_success"));
	json_object_set_new(t, "step", json_pack("{s:s}", "type", "noop"));
	json_object_set_new(t, "retries", json_integer(retries));
	json_object_set_new(t, "backoff",
	                    json_pack("{s:i,s:i,s:f,s:s}", "initial_ms", 1000, "max_ms", 5000,
	                              "multiplier", 2.0, "jitter", "none"));
	json_object_set_new(t, "timeout_ms", json_integer(600000));
	json_object_set_new(t, "priority", json_string("medium"));
	json_object_set_new(t, "pool", json_string("default"));
	json_object_set_new(t, "route", json_string("round-robin"));
	json_object_set_new(t, "breaker", json_null());
	return t;
}

/* A DAG named name with the given tasks (stolen), no schedule. */
static json_t *dag(const char *name, json_t *tasks)
{
	json_t *d = json_object();
	json_object_set_new(d, "name", json_string(name));
	json_object_set_new(d, "namespace", json_string("default"));
	json_object_set_new(d, "description", json_string(""));
	json_object_set_new(d, "schedule", json_null());
	json_object_set_new(d, "params", json_object());
	json_object_set_new(d, "max_active_runs", json_integer(0));
	json_object_set_new(d, "deadline_ms", json_null());
	json_object_set_new(d, "on_success",
	                    json_pack("[{s:s}]", "webhook", "https://hooks.example/ok"));
	json_object_set_new(d, "on_failure",
	                    json_pack("[{s:s},{s:s}]", "webhook", "https://hooks.example/fail",
	                              "email", "ops@example.com"));
	json_object_set_new(d, "tasks", tasks);
	return d;
}

/* Submits dag (borrowed) like the API would after dsl_compile. */
static int submit(json_t *d, int *version, int *changed)
{
	struct dsl_result r;
	memset(&r, 0, sizeof r);
	r.dag = d;
	r.canonical = json_dumps(d, JSON_SORT_KEYS | JSON_COMPACT);
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)r.canonical, strlen(r.canonical));
	hex_encode(h, sizeof h, r.hash);
	struct wf_err e;
	memset(&e, 0, sizeof e);
	int rc = runs_submit(S, &r, "# yaml source", "wf.yaml", "tester", version, changed, &e);
	cr_assert_eq(rc, 0, "submit: %d %s %s", e.status, e.code, e.message);
	free(r.canonical);
	return rc;
}

/* Submits a DAG (stolen) and returns its version. */
static int submit_new(json_t *d)
{
	int v, c;
	submit(d, &v, &c);
	json_decref(d);
	return v;
}

static long long trigger(const char *wf)
{
	struct wf_err e;
	int existing;
	long long id = runs_trigger(S, wf, NULL, NULL, "manual", 0, "tester", &existing, &e);
	cr_assert(id > 0, "trigger: %d %s %s", e.status, e.code, e.message);
	return id;
}

static long long trid(long long run, const char *task_name)
{
	return qi("SELECT id FROM task_runs WHERE run_id = %lld AND task = '%s'", run, task_name);
}

static const char *tstate(long long run, const char *task_name)
{
	return q("SELECT state FROM task_runs WHERE run_id = %lld AND task = '%s'", run, task_name);
}

static const char *rstate(long long run)
{
	return q("SELECT state FROM runs WHERE id = %lld", run);
}

/* The dispatcher's claim, for one task run (ignoring available_at so a test
 * need not wait for backoff). Returns the new attempt, or 0 when the task
 * run was not claimable. */
static int claim(long long id, const char *executor)
{
	/* as the dispatcher marks a claim: the attempt lives on the task run
	 * until it ends (migration 013) */
	return (int)qi("UPDATE task_runs SET state = 'running', attempt = attempt + 1,"
	               " executor_id = '%s', lease_expires_at = now() + interval '30 s',"
	               " attempt_claimed_at = now(), attempt_started_at = NULL, updated_at = now()"
	               " WHERE id = %lld AND state IN ('queued', 'retrying') RETURNING attempt",
	               executor, id);
}

static struct task_result result(long long id, int attempt, const char *status)
{
	struct task_result r;
	memset(&r, 0, sizeof r);
	r.task_run_id = id;
	r.attempt = attempt;
	r.executor_id = "x1";
	r.status = status;
	r.has_exit_code = 1;
	r.exit_code = strcmp(status, "succeeded") == 0 ? 0 : 1;
	r.output = "hello\n";
	r.error = strcmp(status, "succeeded") == 0 ? NULL : "boom";
	r.duration_ms = 12;
	r.started_ms = wall_ms() - 12;
	r.finished_ms = wall_ms();
	return r;
}

static int apply1(long long id, int attempt, const char *status)
{
	struct task_result r = result(id, attempt, status);
	int n = runs_apply_results(S, &r, 1);
	cr_assert(n >= 0, "apply failed: %s", store_error(S));
	return n;
}

/* Claims the task of run and finishes it with status. Returns the attempt. */
static int run_task(long long run, const char *task_name, const char *status)
{
	long long id = trid(run, task_name);
	int a = claim(id, "x1");
	cr_assert(a > 0, "task %s is not claimable (state %s)", task_name, tstate(run, task_name));
	cr_assert_eq(apply1(id, a, status), 1, "result for %s not applied", task_name);
	return a;
}

/* -------------------------------------------------------------- submit */

Test(runs, submit_same_hash_is_unchanged)
{
	json_t *d = dag("wf", json_pack("[o]", task("a", "", NULL, 0)));
	int v, c;
	submit(d, &v, &c);
	cr_assert_eq(v, 1);
	cr_assert_eq(c, 1);
	submit(d, &v, &c);
	cr_assert_eq(v, 1);
	cr_assert_eq(c, 0);
	cr_assert_eq(qi("SELECT count(*) FROM workflow_versions"), 1);
	cr_assert_eq(qi("SELECT count(*) FROM events WHERE kind = 'workflow.submitted'"), 1);
	cr_assert_str_eq(q("SELECT actor FROM events WHERE kind = 'workflow.submitted'"), "tester");
	json_decref(d);
}

Test(runs, submit_changed_makes_new_version_and_old_hash_is_reused)
{
	json_t *d1 = dag("wf", json_pack("[o]", task("a", "", NULL, 0)));
	json_t *d2 = dag("wf", json_pack("[o,o,o]", task("a", "", NULL, 0), task("b", "a", NULL, 0),
	                                 task("c", "a,b", NULL, 0)));
	int v, c;
	submit(d1, &v, &c);
	submit(d2, &v, &c);
	cr_assert_eq(v, 2);
	cr_assert_eq(c, 1);
	cr_assert_eq(qi("SELECT current_version FROM workflows WHERE name = 'wf'"), 2);
	cr_assert_eq(qi("SELECT count(*) FROM tasks WHERE version = 2"), 3);
	cr_assert_eq(qi("SELECT count(*) FROM task_edges WHERE version = 2"), 3);
	cr_assert_str_eq(q("SELECT spec->>'trigger' FROM tasks WHERE version = 2 AND name = 'c'"),
	                 "all_success");
	/* the first DAG again: version 1 becomes current, no version 3 */
	submit(d1, &v, &c);
	cr_assert_eq(v, 1);
	cr_assert_eq(c, 1);
	cr_assert_eq(qi("SELECT current_version FROM workflows WHERE name = 'wf'"), 1);
	cr_assert_eq(qi("SELECT count(*) FROM workflow_versions"), 2);
	json_decref(d1);
	json_decref(d2);
}

Test(runs, submit_writes_and_removes_schedules)
{
	json_t *d = dag("wf", json_pack("[o]", task("a", "", NULL, 0)));
	json_object_set_new(d, "schedule",
	                    json_pack("{s:s,s:s,s:i,s:s,s:s}", "cron", "0 2 * * *", "timezone",
	                              "Europe/Berlin", "jitter_ms", 30000, "catchup", "latest",
	                              "overlap", "skip"));
	int v, c;
	submit(d, &v, &c);
	cr_assert_str_eq(q("SELECT kind || ' ' || expr || ' ' || timezone || ' ' || jitter_ms ||"
	                   " ' ' || overlap || ' ' || (next_fire_at IS NULL) FROM schedules"),
	                 "cron 0 2 * * * Europe/Berlin 30000 skip true");
	/* the scheduler computed next_fire_at; an unrelated change keeps it */
	exec_sql("UPDATE schedules SET next_fire_at = '2030-01-01T01:00:00Z'");
	json_object_set_new(d, "description", json_string("changed"));
	submit(d, &v, &c);
	cr_assert_eq(v, 2);
	cr_assert_str_eq(q("SELECT next_fire_at = '2030-01-01T01:00:00Z' FROM schedules"), "t");
	/* a one-time schedule: next_fire_at is the at time */
	json_object_set_new(
	    d, "schedule", json_pack("{s:s,s:s}", "at", "2030-12-01T09:00:00Z", "timezone", "UTC"));
	submit(d, &v, &c);
	cr_assert_str_eq(q("SELECT kind || ' ' || (next_fire_at = '2030-12-01T09:00:00Z')"
	                   " FROM schedules"),
	                 "at true");
	json_object_set_new(d, "schedule", json_null());
	submit(d, &v, &c);
	cr_assert_eq(qi("SELECT count(*) FROM schedules"), 0);
	json_decref(d);
}

Test(runs, submit_rejects_a_dag_without_name)
{
	json_t *d = json_pack("{s:[]}", "tasks");
	struct dsl_result r;
	memset(&r, 0, sizeof r);
	r.dag = d;
	struct wf_err e;
	int v, c;
	cr_assert_eq(runs_submit(S, &r, "", "x.yaml", "t", &v, &c, &e), -1);
	cr_assert_eq(e.status, 400);
	cr_assert_str_eq(e.code, "invalid_workflow");
	json_decref(d);
}

/* ------------------------------------------------------------- trigger */

Test(runs, trigger_creates_task_runs)
{
	json_t *a = task("a", "", NULL, 3);
	json_object_set_new(a, "priority", json_string("high"));
	json_object_set_new(a, "pool", json_string("gpu"));
	submit_new(dag("wf", json_pack("[o,o]", a, task("b", "a", NULL, 0))));
	long long run = trigger("wf");
	cr_assert_str_eq(rstate(run), "running");
	cr_assert_str_eq(q("SELECT state || ' ' || max_attempts || ' ' || priority || ' ' || pool"
	                   " FROM task_runs WHERE run_id = %lld AND task = 'a'",
	                   run),
	                 "queued 4 0 gpu");
	cr_assert_str_eq(q("SELECT state || ' ' || max_attempts || ' ' || priority FROM task_runs"
	                   " WHERE run_id = %lld AND task = 'b'",
	                   run),
	                 "pending 1 1");
	cr_assert_eq(
	    qi("SELECT count(*) FROM events WHERE kind = 'run.created' AND run_id = %lld", run), 1);
	cr_assert_str_eq(q("SELECT (started_at IS NOT NULL AND fired_at IS NOT NULL)::text"
	                   " FROM runs WHERE id = %lld",
	                   run),
	                 "true");
}

Test(runs, trigger_unknown_workflow_is_404)
{
	struct wf_err e;
	int existing;
	cr_assert_eq(runs_trigger(S, "nope", NULL, NULL, "manual", 0, "t", &existing, &e), -1);
	cr_assert_eq(e.status, 404);
	cr_assert_str_eq(e.code, "not_found");
	cr_assert_str_eq(e.message, "workflow 'nope' does not exist");
}

Test(runs, trigger_is_idempotent)
{
	submit_new(dag("wf", json_pack("[o]", task("a", "", NULL, 0))));
	struct wf_err e;
	int existing;
	long long r1 = runs_trigger(S, "wf", NULL, "key-1", "api", 0, "t", &existing, &e);
	cr_assert(r1 > 0);
	cr_assert_eq(existing, 0);
	long long r2 = runs_trigger(S, "wf", NULL, "key-1", "api", 0, "t", &existing, &e);
	cr_assert_eq(r2, r1);
	cr_assert_eq(existing, 1);
	long long r3 = runs_trigger(S, "wf", NULL, "key-2", "api", 0, "t", &existing, &e);
	cr_assert_neq(r3, r1);
	/* a schedule firing twice for the same nominal time makes one run */
	long long s1 =
	    runs_trigger(S, "wf", NULL, NULL, "schedule", 1764100000000LL, "sched", &existing, &e);
	long long s2 =
	    runs_trigger(S, "wf", NULL, NULL, "schedule", 1764100000000LL, "sched", &existing, &e);
	cr_assert_eq(s1, s2);
	cr_assert_eq(existing, 1);
	cr_assert_eq(qi("SELECT count(*) FROM runs"), 3);
	cr_assert_eq(qi("SELECT count(*) FROM task_runs"), 3);
}

Test(runs, trigger_validates_params)
{
	json_t *d = dag("wf", json_pack("[o]", task("a", "", NULL, 0)));
	json_object_set_new(d, "params",
	                    json_pack("{s:{s:s},s:{s:n,s:b},s:{s:n}}", "region", "default", "eu",
	                              "date", "default", "required", 1, "opt", "default"));
	submit_new(d);
	struct wf_err e;
	int existing;
	json_t *p = json_pack("{s:s,s:i}", "x", "1", "date", 5);
	cr_assert_eq(runs_trigger(S, "wf", p, NULL, "manual", 0, "t", &existing, &e), -1);
	cr_assert_eq(e.status, 400);
	cr_assert_str_eq(e.code, "invalid_params");
	cr_assert_str_eq(e.field, "params.x");
	cr_assert_str_eq(e.message, "unknown parameter 'x' (declared: date, opt, region)");
	json_decref(p);

	p = json_pack("{s:s}", "region", "us");
	cr_assert_eq(runs_trigger(S, "wf", p, NULL, "manual", 0, "t", &existing, &e), -1);
	cr_assert_eq(e.status, 400);
	cr_assert_str_eq(e.field, "params.date");
	cr_assert_str_eq(e.message, "missing required parameter 'date'");
	json_decref(p);

	p = json_pack("{s:{}}", "date");
	cr_assert_eq(runs_trigger(S, "wf", p, NULL, "manual", 0, "t", &existing, &e), -1);
	cr_assert_eq(e.status, 400);
	cr_assert_str_eq(e.field, "params.date");
	json_decref(p);

	p = json_pack("[]");
	cr_assert_eq(runs_trigger(S, "wf", p, NULL, "manual", 0, "t", &existing, &e), -1);
	cr_assert_str_eq(e.field, "params");
	json_decref(p);

	p = json_pack("{s:i,s:b}", "date", 20260101, "region", 1);
	long long run = runs_trigger(S, "wf", p, NULL, "manual", 0, "t", &existing, &e);
	cr_assert(run > 0, "%s", e.message);
	cr_assert_str_eq(q("SELECT params::text FROM runs WHERE id = %lld", run),
	                 "{\"date\": \"20260101\", \"region\": \"true\"}");
	json_decref(p);

	p = json_pack("{s:s}", "date", "d");
	run = runs_trigger(S, "wf", p, NULL, "manual", 0, "t", &existing, &e);
	cr_assert_str_eq(q("SELECT params::text FROM runs WHERE id = %lld", run),
	                 "{\"date\": \"d\", \"region\": \"eu\"}");
	json_decref(p);
}

Test(runs, pause_and_unpause)
{
	submit_new(dag("wf", json_pack("[o]", task("a", "", NULL, 0))));
	struct wf_err e;
	cr_assert_eq(runs_set_paused(S, "wf", 1, "op", &e), 0);
	cr_assert_str_eq(q("SELECT paused::text FROM workflows"), "true");
	/* a manual trigger on a paused workflow still creates the run */
	long long run = trigger("wf");
	cr_assert_str_eq(tstate(run, "a"), "queued");
	cr_assert_eq(runs_set_paused(S, "wf", 1, "op", &e), 0); /* no change, no event */
	cr_assert_eq(runs_set_paused(S, "wf", 0, "op", &e), 0);
	cr_assert_str_eq(q("SELECT string_agg(kind, ',' ORDER BY id) FROM events"
	                   " WHERE kind LIKE 'workflow.%%paused'"),
	                 "workflow.paused,workflow.unpaused");
	cr_assert_eq(runs_set_paused(S, "nope", 1, "op", &e), -1);
	cr_assert_eq(e.status, 404);
}

/* ------------------------------------------------------------- results */

Test(runs, diamond_completes_in_order)
{
	submit_new(dag("wf", json_pack("[o,o,o,o]", task("a", "", NULL, 0), task("b", "a", NULL, 0),
	                               task("c", "a", NULL, 0), task("d", "b,c", NULL, 0))));
	long long run = trigger("wf");
	cr_assert_str_eq(tstate(run, "a"), "queued");
	cr_assert_str_eq(tstate(run, "b"), "pending");
	cr_assert_eq(claim(trid(run, "b"), "x1"), 0, "b must not be claimable before a");

	long long a = trid(run, "a");
	int att = claim(a, "x1");
	struct task_result r = result(a, att, "succeeded");
	r.outputs = json_pack("{s:s}", "batch_id", "b-42");
	cr_assert_eq(runs_apply_results(S, &r, 1), 1);
	json_decref(r.outputs);
	cr_assert_str_eq(q("SELECT outputs->>'batch_id' FROM task_runs WHERE id = %lld", a),
	                 "b-42");
	cr_assert_str_eq(q("SELECT state || ' ' || exit_code || ' ' || output || ' ' ||"
	                   " (finished_at IS NOT NULL) FROM attempts_all WHERE task_run_id = %lld",
	                   a),
	                 "succeeded 0 hello\n true");
	cr_assert_str_eq(tstate(run, "b"), "queued");
	cr_assert_str_eq(tstate(run, "c"), "queued");
	cr_assert_str_eq(tstate(run, "d"), "pending");

	run_task(run, "b", "succeeded");
	cr_assert_str_eq(tstate(run, "d"), "pending");
	run_task(run, "c", "succeeded");
	cr_assert_str_eq(tstate(run, "d"), "queued");
	cr_assert_str_eq(rstate(run), "running");
	run_task(run, "d", "succeeded");
	cr_assert_str_eq(rstate(run), "succeeded");
	cr_assert_str_eq(q("SELECT (finished_at IS NOT NULL)::text FROM runs WHERE id = %lld", run),
	                 "true");
	cr_assert_eq(qi("SELECT count(*) FROM events WHERE kind = 'run.finished'"), 1);
	cr_assert_str_eq(q("SELECT kind || ' ' || target || ' ' || (payload->>'state') || ' ' ||"
	                   " (payload->>'workflow') || ' ' || (payload->>'run_id') FROM outbox"),
	                 q("SELECT 'webhook https://hooks.example/ok succeeded wf %lld'", run));
	cr_assert_eq(qi("SELECT count(*) FROM events WHERE kind = 'task_run.state'"
	                " AND data->>'to' = 'queued'"),
	             3);
}

Test(runs, retry_with_backoff_then_dead_and_downstream_fails)
{
	json_t *a = task("a", "", NULL, 2);
	submit_new(dag("wf", json_pack("[o,o,o,o]", a, task("b", "a", NULL, 0),
	                               task("c", "b", NULL, 0), task("z", "", NULL, 0))));
	long long run = trigger("wf");
	run_task(run, "z", "succeeded");
	long long id = trid(run, "a");

	/* attempt 1 fails: retry after initial_ms (jitter none) */
	cr_assert_eq(run_task(run, "a", "failed"), 1);
	cr_assert_str_eq(tstate(run, "a"), "retrying");
	long long ms = qi("SELECT (extract(epoch FROM available_at - now()) * 1000)::bigint"
	                  " FROM task_runs WHERE id = %lld",
	                  id);
	cr_assert(ms > 500 && ms <= 1000, "backoff after attempt 1: %lld ms", ms);
	cr_assert_eq(qi("SELECT retries_used FROM task_runs WHERE id = %lld", id), 1);
	cr_assert_str_eq(q("SELECT error FROM task_runs WHERE id = %lld", id), "boom");
	cr_assert_eq(claim(id, "x1"), 2);
	cr_assert_eq(apply1(id, 2, "timeout"), 1);
	ms = qi("SELECT (extract(epoch FROM available_at - now()) * 1000)::bigint"
	        " FROM task_runs WHERE id = %lld",
	        id);
	cr_assert(ms > 1500 && ms <= 2000, "backoff after attempt 2: %lld ms", ms);
	cr_assert_str_eq(
	    q("SELECT state FROM attempts_all WHERE task_run_id = %lld AND attempt = 2", id),
	    "timeout");

	/* attempt 3 is the last one */
	cr_assert_eq(claim(id, "x1"), 3);
	cr_assert_eq(apply1(id, 3, "failed"), 1);
	cr_assert_str_eq(tstate(run, "a"), "dead");
	cr_assert_str_eq(q("SELECT task || ' ' || attempts || ' ' || last_error FROM dead_letters"),
	                 "a 3 boom");
	cr_assert_str_eq(tstate(run, "b"), "upstream_failed");
	cr_assert_str_eq(tstate(run, "c"), "upstream_failed");
	cr_assert_str_eq(rstate(run), "failed");
	cr_assert_str_eq(q("SELECT string_agg(kind || ':' || target, ' ' ORDER BY id) FROM outbox"),
	                 "webhook:https://hooks.example/fail email:ops@example.com");
	cr_assert_str_eq(q("SELECT payload->>'event' FROM outbox LIMIT 1"), "run.failed");
}

Test(runs, full_jitter_stays_within_the_cap)
{
	json_t *a = task("a", "", NULL, 5);
	json_object_set_new(a, "backoff",
	                    json_pack("{s:i,s:i,s:f,s:s}", "initial_ms", 4000, "max_ms", 6000,
	                              "multiplier", 3.0, "jitter", "full"));
	submit_new(dag("wf", json_pack("[o]", a)));
	long long run = trigger("wf");
	long long id = trid(run, "a");
	for (int i = 1; i <= 4; i++) {
		cr_assert_eq(claim(id, "x1"), i);
		cr_assert_eq(apply1(id, i, "failed"), 1);
		long long ms = qi("SELECT (extract(epoch FROM available_at - now()) * 1000)::bigint"
		                  " FROM task_runs WHERE id = %lld",
		                  id);
		long long cap = i == 1 ? 4000 : 6000;
		cr_assert(ms >= -200 && ms <= cap, "attempt %d: backoff %lld ms > cap %lld", i, ms,
		          cap);
	}
}

Test(runs, trigger_rules_after_a_failure)
{
	submit_new(
	    dag("wf",
	        json_pack("[o,o,o,o,o,o]", task("a", "", NULL, 0), task("done", "a", "all_done", 0),
	                  task("onfail", "a", "one_failed", 0), task("always", "a", "always", 0),
	                  task("success", "a", "all_success", 0),
	                  task("after", "success", "all_done", 0))));
	long long run = trigger("wf");
	run_task(run, "a", "failed");
	cr_assert_str_eq(tstate(run, "a"), "dead");
	cr_assert_str_eq(tstate(run, "done"), "queued");
	cr_assert_str_eq(tstate(run, "onfail"), "queued");
	cr_assert_str_eq(tstate(run, "always"), "queued");
	cr_assert_str_eq(tstate(run, "success"), "upstream_failed");
	/* all_done after an upstream_failed task: runs */
	cr_assert_str_eq(tstate(run, "after"), "queued");
	run_task(run, "done", "succeeded");
	run_task(run, "onfail", "succeeded");
	run_task(run, "always", "succeeded");
	run_task(run, "after", "succeeded");
	cr_assert_str_eq(rstate(run), "failed");
}

Test(runs, trigger_rules_after_a_success_skip)
{
	submit_new(dag("wf", json_pack("[o,o,o,o]", task("a", "", NULL, 0),
	                               task("onfail", "a", "one_failed", 0),
	                               task("next", "onfail", NULL, 0),
	                               task("next2", "next", "one_failed", 0))));
	long long run = trigger("wf");
	run_task(run, "a", "succeeded");
	cr_assert_str_eq(tstate(run, "onfail"), "skipped");
	/* skipped counts as success for all_success */
	cr_assert_str_eq(tstate(run, "next"), "queued");
	run_task(run, "next", "succeeded");
	cr_assert_str_eq(tstate(run, "next2"), "skipped");
	cr_assert_str_eq(rstate(run), "succeeded");
}

/* A one-task run whose task a failed attempt 1 and now runs attempt 2
 * (on executor x2). Returns the run; *id is a's task run. */
static long long at_second_attempt(long long *id)
{
	submit_new(dag("wf", json_pack("[o]", task("a", "", NULL, 3))));
	long long run = trigger("wf");
	*id = trid(run, "a");
	cr_assert_eq(run_task(run, "a", "failed"), 1);
	cr_assert_eq(claim(*id, "x2"), 2);
	return run;
}

Test(runs, stale_result_is_recorded_and_ignored)
{
	long long id, run = at_second_attempt(&id);
	/* a late duplicate of attempt 1, reporting success this time */
	cr_assert_eq(apply1(id, 1, "succeeded"), 0);
	cr_assert_str_eq(tstate(run, "a"), "running");
	cr_assert_eq(qi("SELECT attempt FROM task_runs WHERE id = %lld", id), 2);
	cr_assert_str_eq(
	    q("SELECT attempt || ' ' || state FROM attempts_all WHERE task_run_id = %lld"
	      " AND stale",
	      id),
	    "1 succeeded");
	/* the same stale report again is not stored twice */
	cr_assert_eq(apply1(id, 1, "succeeded"), 0);
	cr_assert_eq(qi("SELECT count(*) FROM attempts_all WHERE stale"), 1);
	/* a result for a task run that does not exist is dropped */
	cr_assert_eq(apply1(999999, 1, "succeeded"), 0);
	cr_assert_eq(apply1(id, 2, "succeeded"), 1);
	cr_assert_str_eq(rstate(run), "succeeded");
}

Test(runs, stale_and_current_success_in_one_batch)
{
	long long id, run = at_second_attempt(&id);
	/* attempt 1's late success and attempt 2's, in one batch: the second
	 * is applied, the first recorded stale */
	struct task_result r[2] = {result(id, 1, "succeeded"), result(id, 2, "succeeded")};
	cr_assert_eq(runs_apply_results(S, r, 2), 1);
	cr_assert_str_eq(tstate(run, "a"), "succeeded");
	cr_assert_str_eq(q("SELECT string_agg(attempt || ' ' || state || ' ' || stale, ', '"
	                   " ORDER BY attempt, stale) FROM attempts_all WHERE task_run_id = %lld",
	                   id),
	                 "1 failed false, 1 succeeded true, 2 succeeded false");
	cr_assert_str_eq(rstate(run), "succeeded");
}

Test(runs, duplicate_result_applied_once)
{
	submit_new(dag("wf", json_pack("[o,o]", task("a", "", NULL, 3), task("b", "a", NULL, 0))));
	long long run = trigger("wf");
	long long id = trid(run, "a");
	int att = claim(id, "x1");
	struct task_result r[2] = {result(id, att, "succeeded"), result(id, att, "succeeded")};
	cr_assert_eq(runs_apply_results(S, r, 2), 1);
	/* and again in a later batch (a second engine got it too) */
	cr_assert_eq(runs_apply_results(S, r, 1), 0);
	cr_assert_eq(qi("SELECT count(*) FROM attempts_all WHERE task_run_id = %lld", id), 1);
	cr_assert_eq(qi("SELECT count(*) FROM events WHERE kind = 'task_run.state'"
	                " AND task_run_id = %lld",
	                id),
	             1);
	cr_assert_str_eq(tstate(run, "b"), "queued");
}

/* Claims task a of run and applies its success; returns its task run id. */
static long long succeed_a(long long run)
{
	long long id = trid(run, "a");
	struct task_result r = result(id, claim(id, "x1"), "succeeded");
	cr_assert_eq(runs_apply_results(S, &r, 1), 1);
	return id;
}

/* The only task run of a run: its success is said by the run's run.finished
 * (same transaction), not by a task_run.state event of its own; a run that
 * does not finish with it (paused) still gets the task's event. */
Test(runs, single_task_success_is_said_by_run_finished)
{
	submit_new(dag("wf", json_pack("[o]", task("a", "", NULL, 0))));
	long long run = trigger("wf");
	long long id = succeed_a(run);
	cr_assert_str_eq(rstate(run), "succeeded");
	cr_assert_eq(qi("SELECT count(*) FROM events WHERE kind = 'run.finished' AND run_id = %lld"
	                " AND data->>'state' = 'succeeded'",
	                run),
	             1);
	cr_assert_eq(qi("SELECT count(*) FROM events WHERE kind = 'task_run.state'"
	                " AND task_run_id = %lld",
	                id),
	             0);
	cr_assert_str_eq(q("SELECT state FROM attempts_all WHERE task_run_id = %lld", id),
	                 "succeeded");
	/* the run's duration in whole milliseconds, halves rounded up */
	cr_assert_eq(qi("SELECT count(*) FROM events e JOIN runs r ON r.id = e.run_id"
	                " WHERE e.kind = 'run.finished' AND e.run_id = %lld"
	                " AND (e.data->>'duration_ms')::bigint ="
	                " round(extract(epoch FROM r.finished_at - r.started_at) * 1000)",
	                run),
	             1);

	long long run2 = trigger("wf");
	exec_sql("UPDATE runs SET state = 'paused' WHERE id = %lld", run2);
	long long id2 = succeed_a(run2);
	cr_assert_str_eq(rstate(run2), "paused");
	/* written by the run completion statement, which read the run */
	cr_assert_eq(qi("SELECT count(*) FROM events WHERE kind = 'task_run.state'"
	                " AND task_run_id = %lld AND data->>'to' = 'succeeded'"
	                " AND data->>'from' = 'running' AND data->>'attempt' = '1'"
	                " AND run_id = %lld AND workflow_id = (SELECT workflow_id FROM runs"
	                " WHERE id = %lld)",
	                id2, run2, run2),
	             1);
	cr_assert_eq(
	    qi("SELECT count(*) FROM events WHERE run_id = %lld AND kind = 'run.finished'", run2),
	    0);
}

/* The engine that sent a task knows its run and whether it is the run's
 * only task run (struct task_result): the run is locked and settled
 * without reading the task run's siblings. Unknown (0, -1) reads them. */
Test(runs, results_with_the_run_the_dispatcher_knew)
{
	submit_new(dag("one", json_pack("[o]", task("a", "", NULL, 0))));
	submit_new(
	    dag("two", json_pack("[o, o]", task("a", "", NULL, 0), task("b", "a", NULL, 0))));
	long long r1 = trigger("one"), r2 = trigger("two"), r3 = trigger("one");
	long long t1 = trid(r1, "a"), t2 = trid(r2, "a"), t3 = trid(r3, "a");
	struct task_result b[3] = {result(t1, claim(t1, "x1"), "succeeded"),
	                           result(t2, claim(t2, "x1"), "succeeded"),
	                           result(t3, claim(t3, "x1"), "succeeded")};
	b[0].run_id = r1, b[0].sole = 1;
	b[1].run_id = r2, b[1].sole = 0;
	b[2].run_id = 0, b[2].sole = -1; /* sent by another engine */
	cr_assert_eq(runs_apply_results(S, b, 3), 3, "%s", store_error(S));
	cr_assert_str_eq(rstate(r1), "succeeded");
	cr_assert_str_eq(rstate(r3), "succeeded");
	cr_assert_str_eq(rstate(r2), "running"); /* not the only task run: b is next */
	cr_assert_str_eq(tstate(r2, "b"), "queued");
	cr_assert_eq(qi("SELECT count(*) FROM events WHERE kind = 'run.finished'"
	                " AND run_id IN (%lld, %lld)",
	                r1, r3),
	             2);
	/* the flag is taken as given, not probed again: a sole run said not
	 * to be one is settled the general way, whose task run writes its own
	 * task_run.state event (a sole one leaves that to run.finished) */
	long long r5 = trigger("one"), t5 = trid(r5, "a");
	struct task_result ns = result(t5, claim(t5, "x1"), "succeeded");
	ns.run_id = r5;
	ns.sole = 0;
	cr_assert_eq(runs_apply_results(S, &ns, 1), 1, "%s", store_error(S));
	cr_assert_str_eq(rstate(r5), "succeeded");
	cr_assert_eq(qi("SELECT count(*) FROM events WHERE kind = 'task_run.state'"
	                " AND task_run_id = %lld",
	                t5),
	             1);
	cr_assert_eq(qi("SELECT count(*) FROM events WHERE kind = 'task_run.state'"
	                " AND task_run_id IN (%lld, %lld)",
	                t1, t3),
	             0);

	/* a run id that is not the task run's (a bug): the fast path leaves
	 * the result alone and the general one applies it to the right run */
	long long r4 = trigger("one"), t4 = trid(r4, "a");
	struct task_result w = result(t4, claim(t4, "x1"), "succeeded");
	w.run_id = r2;
	w.sole = 1;
	cr_assert_eq(runs_apply_results(S, &w, 1), 1, "%s", store_error(S));
	cr_assert_str_eq(tstate(r4, "a"), "succeeded");
	cr_assert_str_eq(rstate(r4), "succeeded");
	cr_assert_str_eq(rstate(r2), "running");
}

/* Notifications on wf_events that arrived within wait_ms. */
static int wf_events_notified(PGconn *l, int wait_ms)
{
	int n = 0;
	usleep((useconds_t)wait_ms * 1000);
	cr_assert(PQconsumeInput(l), "%s", PQerrorMessage(l));
	PGnotify *m;
	while ((m = PQnotifies(l)) != NULL) {
		n += strcmp(m->relname, "wf_events") == 0;
		PQfreemem(m);
	}
	return n;
}

/* Result batches wake the live event streams (NOTIFY wf_events) at once,
 * but at most every 200 ms per engine (advance.c: each NOTIFY serialises
 * the commits of the transactions that send one). */
Test(runs, results_wake_event_streams_at_most_every_200_ms)
{
	PGconn *l = PQconnectdb(db.conninfo);
	cr_assert_eq(PQstatus(l), CONNECTION_OK, "%s", PQerrorMessage(l));
	PQclear(PQexec(l, "LISTEN wf_events"));
	submit_new(dag("wf", json_pack("[o]", task("a", "", NULL, 0))));
	long long run[7];
	for (int i = 0; i < 7; i++)
		run[i] = trigger("wf"); /* each notifies (runs.c) */
	(void)wf_events_notified(l, 100);

	int64_t t0 = mono_ms();
	for (int i = 0; i < 6; i++)
		succeed_a(run[i]);
	int64_t took = mono_ms() - t0;
	int k = wf_events_notified(l, 100);
	cr_assert_geq(k, 1, "the first result batch woke no stream");
	cr_assert_leq(k, 1 + took / 200, "%d notifications for 6 batches in %lld ms", k,
	              (long long)took);
	for (int i = 0; i < 6; i++)
		cr_assert_str_eq(rstate(run[i]), "succeeded");

	/* a lone result after the window wakes the streams at once */
	usleep(250 * 1000);
	succeed_a(run[6]);
	cr_assert_eq(wf_events_notified(l, 100), 1);
	PQfinish(l);
}

Test(runs, rejected_and_breaker_open_do_not_count)
{
	json_t *a = task("a", "", NULL, 0);
	json_object_set_new(
	    a, "breaker",
	    json_pack("{s:s,s:i,s:i}", "name", "billing", "failures", 5, "open_for_ms", 30000));
	submit_new(dag("wf", json_pack("[o]", a)));
	long long run = trigger("wf");
	long long id = trid(run, "a");
	cr_assert_eq(claim(id, "x1"), 1);
	cr_assert_eq(apply1(id, 1, "rejected"), 1);
	cr_assert_str_eq(q("SELECT state || ' ' || max_attempts || ' ' || retries_used ||"
	                   " ' ' || (available_at <= now()) FROM task_runs WHERE id = %lld",
	                   id),
	                 "queued 2 0 true");
	cr_assert_eq(claim(id, "x1"), 2);
	cr_assert_eq(apply1(id, 2, "breaker_open"), 1);
	cr_assert_str_eq(q("SELECT state || ' ' || max_attempts || ' ' || retries_used ||"
	                   " ' ' || wait_reason FROM task_runs WHERE id = %lld",
	                   id),
	                 "retrying 3 0 circuit breaker billing open");
	long long ms = qi("SELECT (extract(epoch FROM available_at - now()) * 1000)::bigint"
	                  " FROM task_runs WHERE id = %lld",
	                  id);
	cr_assert(ms > 29000 - 500 && ms <= 30000, "breaker wait %lld", ms);
	/* the one real attempt is still there */
	cr_assert_eq(claim(id, "x1"), 3);
	cr_assert_eq(apply1(id, 3, "failed"), 1);
	cr_assert_str_eq(tstate(run, "a"), "dead");
}

Test(runs, executor_cancelled_result)
{
	submit_new(dag("wf", json_pack("[o,o]", task("a", "", NULL, 3), task("b", "a", NULL, 0))));
	long long run = trigger("wf");
	run_task(run, "a", "cancelled");
	cr_assert_str_eq(tstate(run, "a"), "cancelled");
	cr_assert_str_eq(tstate(run, "b"), "upstream_failed");
	cr_assert_str_eq(rstate(run), "failed");
}

Test(runs, output_is_bounded_and_cleaned)
{
	submit_new(dag("wf", json_pack("[o]", task("a", "", NULL, 0))));
	long long run = trigger("wf");
	long long id = trid(run, "a");
	int att = claim(id, "x1");
	size_t big = 200 * 1024;
	char *out = xmalloc(big + 1);
	memset(out, 'x', big);
	out[0] = (char)0xff; /* invalid UTF-8 */
	out[1] = (char)0xc3; /* é, then ASCII */
	out[2] = (char)0xa9;
	out[big] = '\0';
	struct task_result r = result(id, att, "succeeded");
	r.output = out;
	r.outputs = json_loads("{\"k\": \"a\\u0000b\"}", JSON_ALLOW_NUL, NULL);
	cr_assert_eq(runs_apply_results(S, &r, 1), 1);
	cr_assert_eq(
	    qi("SELECT octet_length(output) FROM attempts_all WHERE task_run_id = %lld", id),
	    64 * 1024);
	cr_assert_str_eq(q("SELECT left(output, 3) FROM attempts_all WHERE task_run_id = %lld", id),
	                 "?\xc3\xa9x");
	cr_assert_str_eq(q("SELECT (outputs IS NULL)::text FROM task_runs WHERE id = %lld", id),
	                 "true");
	cr_assert_str_eq(tstate(run, "a"), "succeeded");
	json_decref(r.outputs);
	free(out);
}

Test(runs, a_result_the_database_refuses_does_not_block_the_batch)
{
	submit_new(dag("wf", json_pack("[o,o]", task("a", "", NULL, 0), task("b", "", NULL, 0))));
	long long run = trigger("wf");
	long long a = trid(run, "a"), b = trid(run, "b");
	struct task_result r[2] = {result(a, claim(a, "x1"), "succeeded"),
	                           result(b, claim(b, "x1"), "succeeded")};
	r[0].started_ms = INT64_MAX; /* timestamp out of range */
	cr_assert_eq(runs_apply_results(S, r, 2), 1);
	cr_assert_str_eq(tstate(run, "a"), "running");
	cr_assert_str_eq(tstate(run, "b"), "succeeded");
}

/* ------------------------------------------------- started and leases */

Test(runs, started_and_lease_renewal_are_fenced)
{
	submit_new(dag("wf", json_pack("[o]", task("a", "", NULL, 0))));
	long long run = trigger("wf");
	long long id = trid(run, "a");
	int att = claim(id, "x1");
	long long ids[2] = {id, id};
	int atts[2] = {att + 1, att};
	int64_t at[2] = {1000, 1764100000000LL};
	cr_assert_eq(runs_apply_started(S, ids, atts, at, 2), 0);
	cr_assert_str_eq(q("SELECT (started_at = to_timestamp(1764100000)) FROM attempts_all"
	                   " WHERE task_run_id = %lld",
	                   id),
	                 "t");
	cr_assert_str_eq(q("SELECT (started_at = to_timestamp(1764100000)) FROM task_runs"
	                   " WHERE id = %lld",
	                   id),
	                 "t");
	cr_assert_eq(runs_renew_leases(S, &id, &att, 1, 600000), 0);
	long long left = qi("SELECT extract(epoch FROM lease_expires_at - now())::bigint"
	                    " FROM task_runs WHERE id = %lld",
	                    id);
	cr_assert(left > 590 && left <= 600, "lease %lld s", left);
	int wrong = att + 1;
	cr_assert_eq(runs_renew_leases(S, &id, &wrong, 1, 1000), 0);
	left = qi("SELECT extract(epoch FROM lease_expires_at - now())::bigint"
	          " FROM task_runs WHERE id = %lld",
	          id);
	cr_assert(left > 590, "a wrong attempt renewed the lease");
}

Test(runs, reaper_retries_expired_leases_and_late_result_is_stale)
{
	submit_new(dag("wf", json_pack("[o,o]", task("a", "", NULL, 1), task("b", "a", NULL, 0))));
	long long run = trigger("wf");
	long long id = trid(run, "a");
	cr_assert_eq(claim(id, "host-1"), 1);
	cr_assert_eq(runs_reap(S, 100, 1), 0, "a live lease is not reaped");
	exec_sql("UPDATE task_runs SET lease_expires_at = now() - interval '1 s'");
	cr_assert_eq(runs_reap(S, 100, 1), 1);
	cr_assert_str_eq(
	    q("SELECT state || ' ' || retries_used FROM task_runs WHERE id = %lld", id),
	    "retrying 1");
	cr_assert_str_eq(
	    q("SELECT state || ' ' || error FROM attempts_all WHERE task_run_id = %lld", id),
	    "lost lease expired (executor host-1 stopped heartbeating)");
	/* the executor was only slow: its result arrives late */
	cr_assert_eq(apply1(id, 1, "succeeded"), 0);
	cr_assert_eq(qi("SELECT count(*) FROM attempts_all WHERE task_run_id = %lld AND stale", id),
	             1);
	cr_assert_str_eq(tstate(run, "a"), "retrying");
	/* the last attempt is lost too: dead */
	cr_assert_eq(claim(id, "host-2"), 2);
	exec_sql("UPDATE task_runs SET lease_expires_at = now() - interval '1 s'"
	         " WHERE state = 'running'");
	cr_assert_eq(runs_reap(S, 100, 1), 1);
	cr_assert_str_eq(tstate(run, "a"), "dead");
	cr_assert_str_eq(tstate(run, "b"), "upstream_failed");
	cr_assert_str_eq(rstate(run), "failed");
	cr_assert_str_eq(q("SELECT last_error FROM dead_letters"),
	                 "lease expired (executor host-2 stopped heartbeating)");
}

Test(runs, reaper_backstop_for_hung_tasks)
{
	json_t *a = task("a", "", NULL, 1);
	json_object_set_new(a, "timeout_ms", json_integer(1000));
	submit_new(dag("wf", json_pack("[o]", a)));
	long long run = trigger("wf");
	long long id = trid(run, "a");
	cr_assert_eq(claim(id, "x1"), 1);
	/* heartbeats keep the lease fresh, but the task runs far too long */
	exec_sql("UPDATE task_runs SET attempt_claimed_at = now() - interval '40 s'");
	cr_assert_eq(runs_reap(S, 100, 1), 1);
	cr_assert_str_eq(tstate(run, "a"), "retrying");
	cr_assert_str_eq(q("SELECT state FROM attempts_all WHERE task_run_id = %lld", id),
	                 "timeout");
	cr_assert(strstr(q("SELECT error FROM attempts_all WHERE task_run_id = %lld", id),
	                 "timeout (engine backstop"));
}

/* --------------------------------------------------- resume and cancel */

Test(runs, resume_reruns_only_what_failed)
{
	submit_new(dag("wf", json_pack("[o,o,o,o]", task("a", "", NULL, 0), task("b", "a", NULL, 1),
	                               task("c", "b", NULL, 0), task("x", "", NULL, 0))));
	long long run = trigger("wf");
	struct wf_err e;
	json_t *reset = NULL;
	cr_assert_eq(runs_resume(S, run, NULL, "op", &reset, &e), -1);
	cr_assert_eq(e.status, 409);
	cr_assert_str_eq(e.message, q("SELECT 'run %lld is still running'", run));

	long long a = trid(run, "a");
	int att = claim(a, "x1");
	struct task_result r = result(a, att, "succeeded");
	r.outputs = json_pack("{s:s}", "k", "v");
	cr_assert_eq(runs_apply_results(S, &r, 1), 1);
	json_decref(r.outputs);
	run_task(run, "x", "succeeded");
	run_task(run, "b", "failed");
	run_task(run, "b", "failed");
	cr_assert_str_eq(tstate(run, "b"), "dead");
	cr_assert_str_eq(tstate(run, "c"), "upstream_failed");
	cr_assert_str_eq(rstate(run), "failed");

	cr_assert_eq(runs_resume(S, run, NULL, "op", &reset, &e), 0, "%s", e.message);
	char *txt = json_dumps(reset, JSON_COMPACT);
	cr_assert_str_eq(txt, "[\"b\",\"c\"]");
	free(txt);
	json_decref(reset);
	cr_assert_str_eq(rstate(run), "running");
	cr_assert_str_eq(tstate(run, "a"), "succeeded");
	cr_assert_str_eq(q("SELECT outputs->>'k' FROM task_runs WHERE id = %lld", a), "v");
	cr_assert_str_eq(tstate(run, "b"), "queued");
	cr_assert_str_eq(tstate(run, "c"), "pending");
	cr_assert_str_eq(q("SELECT attempt || ' ' || max_attempts FROM task_runs WHERE id = %lld",
	                   trid(run, "b")),
	                 "2 4");
	cr_assert_str_eq(q("SELECT resolution FROM dead_letters"), "retried");
	cr_assert_eq(qi("SELECT count(*) FROM events WHERE kind = 'run.resumed'"), 1);

	cr_assert_eq(run_task(run, "b", "succeeded"), 3);
	run_task(run, "c", "succeeded");
	cr_assert_str_eq(rstate(run), "succeeded");
	/* every attempt of every resume is kept */
	cr_assert_eq(
	    qi("SELECT count(*) FROM attempts_all WHERE task_run_id = %lld", trid(run, "b")), 3);
	cr_assert_eq(runs_resume(S, run, NULL, "op", &reset, &e), -1);
	cr_assert_eq(e.status, 409);
}

Test(runs, resume_from_resets_downstream)
{
	submit_new(dag("wf", json_pack("[o,o,o,o]", task("a", "", NULL, 0), task("b", "a", NULL, 0),
	                               task("c", "b", NULL, 0), task("x", "a", NULL, 0))));
	long long run = trigger("wf");
	run_task(run, "a", "succeeded");
	long long b = trid(run, "b");
	int att = claim(b, "x1");
	struct task_result r = result(b, att, "succeeded");
	r.outputs = json_pack("{s:s}", "k", "v");
	cr_assert_eq(runs_apply_results(S, &r, 1), 1);
	json_decref(r.outputs);
	run_task(run, "c", "succeeded");
	run_task(run, "x", "succeeded");
	cr_assert_str_eq(rstate(run), "succeeded");
	/* b's succeeded attempt is kept on its task run, not in attempts
	 * (migration 014), with an id of its own */
	cr_assert_eq(qi("SELECT count(*) FROM attempts"), 0);
	long long b_att = qi("SELECT attempt_id FROM task_runs WHERE id = %lld", b);
	cr_assert_gt(b_att, 0);
	cr_assert_str_eq(q("SELECT id || ' ' || attempt || ' ' || state || ' ' || executor_id"
	                   " FROM attempts_all WHERE task_run_id = %lld",
	                   b),
	                 q("SELECT '%lld 1 succeeded x1'", b_att));

	struct wf_err e;
	json_t *reset = NULL;
	cr_assert_eq(runs_resume(S, run, "nope", "op", &reset, &e), -1);
	cr_assert_eq(e.status, 404);
	cr_assert_str_eq(e.field, "from");
	cr_assert_eq(runs_resume(S, run, "b", "op", &reset, &e), 0, "%s", e.message);
	char *txt = json_dumps(reset, JSON_COMPACT);
	cr_assert_str_eq(txt, "[\"b\",\"c\"]");
	free(txt);
	json_decref(reset);
	cr_assert_str_eq(tstate(run, "a"), "succeeded");
	cr_assert_str_eq(tstate(run, "x"), "succeeded");
	cr_assert_str_eq(tstate(run, "b"), "queued");
	cr_assert_str_eq(tstate(run, "c"), "pending");
	cr_assert_str_eq(q("SELECT (outputs IS NULL)::text FROM task_runs WHERE id = %lld", b),
	                 "true");
	/* the reset moved b's attempt into attempts, same id, nothing lost */
	cr_assert_str_eq(q("SELECT id || ' ' || attempt || ' ' || state || ' ' || executor_id"
	                   " FROM attempts WHERE task_run_id = %lld",
	                   b),
	                 q("SELECT '%lld 1 succeeded x1'", b_att));
	cr_assert_eq(qi("SELECT count(*) FROM task_runs WHERE id = %lld AND (attempt_id IS NOT NULL"
	                " OR attempt_output IS NOT NULL OR attempt_finished_at IS NOT NULL)",
	                b),
	             0);
	run_task(run, "b", "succeeded");
	run_task(run, "c", "succeeded");
	cr_assert_str_eq(rstate(run), "succeeded");
	cr_assert_str_eq(q("SELECT string_agg(attempt || ' ' || state, ', ' ORDER BY attempt)"
	                   " FROM attempts_all WHERE task_run_id = %lld",
	                   b),
	                 "1 succeeded, 2 succeeded");
	cr_assert_eq(qi("SELECT count(DISTINCT id) FROM attempts_all WHERE task_run_id = %lld", b),
	             2);
	cr_assert_eq(qi("SELECT count(*) FROM events WHERE kind = 'run.finished'"), 2);
}

Test(runs, cancel)
{
	submit_new(dag("wf", json_pack("[o,o,o]", task("a", "", NULL, 0), task("b", "", NULL, 0),
	                               task("c", "a", NULL, 0))));
	long long run = trigger("wf");
	long long a = trid(run, "a");
	int att = claim(a, "x1");
	struct wf_err e;
	cr_assert_eq(runs_cancel(S, run, "op", &e), 0, "%s", e.message);
	cr_assert_str_eq(rstate(run), "cancelled");
	cr_assert_eq(
	    qi("SELECT count(*) FROM task_runs WHERE run_id = %lld AND state = 'cancelled'", run),
	    3);
	cr_assert_str_eq(q("SELECT state FROM attempts_all WHERE task_run_id = %lld", a),
	                 "cancelled");
	cr_assert_eq(qi("SELECT count(*) FROM outbox"), 0, "cancel is not a failure");
	/* the executor confirms the kill: nothing changes, nothing stored */
	cr_assert_eq(apply1(a, att, "cancelled"), 0);
	cr_assert_eq(qi("SELECT count(*) FROM attempts_all WHERE stale"), 0);
	cr_assert_eq(runs_cancel(S, run, "op", &e), -1);
	cr_assert_eq(e.status, 409);
	cr_assert_str_eq(e.message, q("SELECT 'run %lld already cancelled'", run));
	cr_assert_eq(runs_cancel(S, 424242, "op", &e), -1);
	cr_assert_eq(e.status, 404);
	/* a cancelled run can be resumed */
	json_t *reset = NULL;
	cr_assert_eq(runs_resume(S, run, NULL, "op", &reset, &e), 0, "%s", e.message);
	cr_assert_eq(json_array_size(reset), 3);
	json_decref(reset);
	cr_assert_str_eq(tstate(run, "a"), "queued");
	cr_assert_str_eq(tstate(run, "c"), "pending");
}

/* -------------------------------------------------------------- repair */

Test(runs, repair_completes_and_advances)
{
	submit_new(dag("wf", json_pack("[o,o]", task("a", "", NULL, 0), task("b", "a", NULL, 0))));
	long long r1 = trigger("wf");
	long long r2 = trigger("wf");
	long long r3 = trigger("wf");
	/* r1: everything final but the run not completed */
	exec_sql("UPDATE task_runs SET state = 'succeeded' WHERE run_id = %lld", r1);
	/* r2: a succeeded, b still pending */
	exec_sql("UPDATE task_runs SET state = 'succeeded' WHERE run_id = %lld AND task = 'a'", r2);
	/* r3: no task runs at all */
	exec_sql("DELETE FROM task_runs WHERE run_id = %lld", r3);
	/* r4: cancelled by hand, a task run left queued */
	long long r4 = trigger("wf");
	exec_sql("UPDATE runs SET state = 'cancelled' WHERE id = %lld", r4);
	cr_assert_eq(runs_repair(S), 0);
	cr_assert_str_eq(rstate(r1), "succeeded");
	cr_assert_str_eq(tstate(r4, "a"), "cancelled");
	cr_assert_str_eq(tstate(r4, "b"), "cancelled");
	cr_assert_str_eq(tstate(r2, "b"), "queued");
	cr_assert_str_eq(rstate(r2), "running");
	cr_assert_str_eq(rstate(r3), "failed");
	cr_assert_eq(runs_repair(S), 0);
}

/* ------------------------------------------------------ concurrency */

struct racer {
	const char *conninfo;
	struct task_result r;
	int applied;
};

static void *race(void *arg)
{
	struct racer *x = arg;
	char err[256];
	struct store *s = store_open(x->conninfo, err, sizeof err);
	if (!s) {
		x->applied = -1;
		return NULL;
	}
	x->applied = runs_apply_results(s, &x->r, 1);
	store_close(s);
	return NULL;
}

Test(runs, two_engines_finishing_one_run_complete_it_once)
{
	for (int round = 0; round < 10; round++) {
		char name[32];
		snprintf(name, sizeof name, "wf%d", round);
		submit_new(
		    dag(name, json_pack("[o,o]", task("a", "", NULL, 0), task("b", "", NULL, 0))));
		long long run = trigger(name);
		long long a = trid(run, "a"), b = trid(run, "b");
		struct racer x[2] = {{db.conninfo, result(a, claim(a, "x1"), "succeeded"), 0},
		                     {db.conninfo, result(b, claim(b, "x1"), "succeeded"), 0}};
		pthread_t t[2];
		for (int i = 0; i < 2; i++)
			pthread_create(&t[i], NULL, race, &x[i]);
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		cr_assert_eq(x[0].applied + x[1].applied, 2);
		cr_assert_str_eq(rstate(run), "succeeded");
		cr_assert_eq(qi("SELECT count(*) FROM events WHERE kind = 'run.finished'"
		                " AND run_id = %lld",
		                run),
		             1);
		cr_assert_eq(
		    qi("SELECT count(*) FROM outbox WHERE (payload->>'run_id')::bigint = %lld",
		       run),
		    1);
	}
}

/* ---------------------------------------------------------- batches */

static void apply_batch(long long run_filter_min, const char *label)
{
	/* claim every queued task run at once, like a dispatcher batch */
	exec_sql("UPDATE task_runs SET state = 'running', attempt = attempt + 1,"
	         " executor_id = 'x1', lease_expires_at = now() + interval '30 s',"
	         " attempt_claimed_at = now() WHERE state = 'queued'");
	PGresult *r = store_exec(S,
	                         "SELECT id, attempt FROM task_runs WHERE state = 'running'"
	                         " ORDER BY id",
	                         0, NULL);
	cr_assert(r != NULL);
	int n = PQntuples(r);
	struct task_result *res = xcalloc((size_t)n, sizeof *res);
	for (int i = 0; i < n; i++) {
		res[i] = result(strtoll(PQgetvalue(r, i, 0), NULL, 10), atoi(PQgetvalue(r, i, 1)),
		                "succeeded");
		res[i].output = "some output of a task\n";
	}
	PQclear(r);
	int64_t t0 = mono_ms();
	int applied = runs_apply_results(S, res, n);
	int64_t t1 = mono_ms();
	cr_assert_eq(applied, n, "applied %d of %d", applied, n);
	printf("runs_apply_results: %s: %d results in one call: %lld ms (%.0f results/s)\n", label,
	       n, (long long)(t1 - t0), n * 1000.0 / (double)(t1 - t0 > 0 ? t1 - t0 : 1));
	fflush(stdout);
	(void)run_filter_min;
	free(res);
}

Test(runs, batch_of_500_results_in_one_run)
{
	json_t *tasks = json_array();
	for (int i = 0; i < 500; i++) {
		char name[16];
		snprintf(name, sizeof name, "t%03d", i);
		json_array_append_new(tasks, task(name, "", NULL, 0));
	}
	json_array_append_new(tasks, task("last", "t000,t250,t499", NULL, 0));
	submit_new(dag("wide", tasks));
	long long run = trigger("wide");
	cr_assert_eq(qi("SELECT count(*) FROM task_runs WHERE state = 'queued'"), 500);
	apply_batch(0, "500 tasks of one run");
	cr_assert_eq(qi("SELECT count(*) FROM task_runs WHERE state = 'succeeded'"), 500);
	cr_assert_str_eq(tstate(run, "last"), "queued");
	run_task(run, "last", "succeeded");
	cr_assert_str_eq(rstate(run), "succeeded");
}

Test(runs, batch_of_500_results_across_500_runs)
{
	submit_new(dag("wf", json_pack("[o]", task("a", "", NULL, 0))));
	for (int i = 0; i < 500; i++)
		trigger("wf");
	apply_batch(0, "500 runs of one task");
	cr_assert_eq(qi("SELECT count(*) FROM runs WHERE state = 'succeeded'"), 500);
	cr_assert_eq(qi("SELECT count(*) FROM outbox"), 500);
	cr_assert_eq(qi("SELECT count(*) FROM events WHERE kind = 'run.finished'"), 500);
}

/* Executors send every result to every engine, so each engine but the
 * one that sent the task gets a copy it cannot apply: the task run has
 * already succeeded with it. The copy is dropped (nothing applied, nothing
 * recorded twice) by index probes: the plan reads no table whole (through
 * the view attempts_all it read every task run that kept a succeeded
 * attempt, for every result: 1.5 s per 500 copies, and two engines did
 * half the work of one). */
Test(runs, copies_of_applied_results_are_dropped_by_index_probes)
{
	submit_new(dag("wf", json_pack("[o]", task("a", "", NULL, 0))));
	for (int i = 0; i < 500; i++)
		trigger("wf");
	apply_batch(0, "500 runs of one task");
	PGresult *r = store_exec(S, "SELECT id, attempt FROM task_runs ORDER BY id", 0, NULL);
	cr_assert(r != NULL);
	int n = PQntuples(r);
	cr_assert_eq(n, 500);
	struct task_result *res = xcalloc((size_t)n, sizeof *res);
	size_t cap = (size_t)n * 96 + 2, len = 0;
	char *js = xmalloc(cap);
	js[len++] = '[';
	for (int i = 0; i < n; i++) {
		long long id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		int att = atoi(PQgetvalue(r, i, 1));
		res[i] = result(id, att, "succeeded"); /* run_id 0: another engine's task */
		len += (size_t)snprintf(js + len, cap - len,
		                        "%s{\"id\":%lld,\"attempt\":%d,\"executor_id\":\"x1\","
		                        "\"status\":\"succeeded\"}",
		                        i ? "," : "", id, att);
	}
	js[len++] = ']';
	js[len] = '\0';
	PQclear(r);

	cr_assert_eq(runs_apply_results(S, res, n), 0);
	cr_assert_eq(qi("SELECT count(*) FROM attempts_all"), 500);
	cr_assert_eq(qi("SELECT count(*) FROM attempts"), 0);
	cr_assert_eq(qi("SELECT count(*) FROM events WHERE kind = 'run.finished'"), 500);
	cr_assert_eq(qi("SELECT count(*) FROM runs WHERE state = 'succeeded'"), 500);

	/* the statement the copies went through (prepared by the call above),
	 * as the engine's appliers run it (enable_seqscan off) */
	cr_assert_eq(store_cmd(S, "SET enable_seqscan = off", 0, NULL), 0);
	char *sql = xasprintf("EXPLAIN EXECUTE runs_apply('%s'::jsonb, '0')", js);
	r = store_exec(S, sql, 0, NULL);
	cr_assert(r != NULL, "%s", store_error(S));
	for (int i = 0; i < PQntuples(r); i++)
		cr_assert(strstr(PQgetvalue(r, i, 0), "Seq Scan") == NULL, "a table read whole: %s",
		          PQgetvalue(r, i, 0));
	PQclear(r);
	cr_assert_eq(store_cmd(S, "RESET enable_seqscan", 0, NULL), 0);
	free(sql);
	free(js);
	free(res);
}

/* A connection whose server closed it while it idled (a restart, an
 * administrator's pg_terminate_backend) is found out before the next
 * statement and reopened: that statement succeeds instead of failing once
 * (the API answered 503 on each pooled connection after a restart). */
Test(store, idle_connection_closed_by_the_server_is_reopened)
{
	struct testdb t;
	struct store *s = testdb_open(&t);
	PGresult *r = store_exec(s, "SELECT pg_backend_pid()", 0, NULL);
	cr_assert(r, "%s", store_error(s));
	long long pid = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PGconn *admin = testdb__admin();
	cr_assert(admin);
	char sql[96];
	snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)", pid);
	cr_assert_eq(testdb__exec(admin, sql), 0);
	PQfinish(admin);
	/* idle past the second after which a connection is checked */
	struct timespec nap = {1, 200 * 1000 * 1000};
	nanosleep(&nap, NULL);
	r = store_exec(s, "SELECT pg_backend_pid()", 0, NULL);
	cr_assert(r, "the first statement after the close failed: %s", store_error(s));
	cr_assert_neq(strtoll(PQgetvalue(r, 0, 0), NULL, 10), pid);
	PQclear(r);
	cr_assert_eq(store_down(s), 0);
	testdb_close(&t);
}
