/* The engine's set-based hot paths against a real PostgreSQL: the compiled
 * spec cache (engine/specs.h), the dispatcher's index-driven claim with its
 * filters (engine/dispatch.h, with a real registry and ZeroMQ sockets),
 * broadcast fan-out and its roll-up (advance.c), and the ingester skipping
 * `started` records whose `finished` is in the same batch. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "engine/dispatch.h"
#include "engine/ingest.h"
#include "engine/registry.h"
#include "engine/runs.h"
#include "engine/specs.h"
#include "log.h"
#include "testdb.h"
#include "util.h"
#include "wire.h"
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

TestSuite(perf_paths, .init = setup, .fini = teardown, .timeout = 120);

/* ------------------------------------------------------------ helpers */

#define q(...)        testdb_q(&db, __VA_ARGS__)
#define qi(...)       testdb_qi(&db, __VA_ARGS__)
#define exec_sql(...) testdb_exec(&db, __VA_ARGS__)

static json_t *task(const char *name, const char *needs, const char *route)
{
	json_t *n = json_array();
	if (needs)
		json_array_append_new(n, json_string(needs));
	return json_pack("{s:s, s:o, s:s, s:{s:s}, s:i, s:i, s:s, s:s, s:s, s:n}", "name", name,
	                 "needs", n, "trigger", "all_success", "step", "type", "noop", "retries", 0,
	                 "timeout_ms", 600000, "priority", "medium", "pool", "default", "route",
	                 route ? route : "round-robin", "breaker");
}

/* Submits a workflow (tasks stolen). Returns its id. */
static long long submit(const char *name, json_t *tasks)
{
	json_t *d = json_pack("{s:s, s:s, s:s, s:n, s:{}, s:i, s:n, s:[], s:[], s:o}", "name", name,
	                      "namespace", "default", "description", "", "schedule", "params",
	                      "max_active_runs", 0, "deadline_ms", "on_success", "on_failure",
	                      "tasks", tasks);
	struct dsl_result r;
	memset(&r, 0, sizeof r);
	r.dag = d;
	r.canonical = json_dumps(d, JSON_SORT_KEYS | JSON_COMPACT);
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)r.canonical, strlen(r.canonical));
	hex_encode(h, sizeof h, r.hash);
	struct wf_err e;
	int v, c;
	cr_assert_eq(runs_submit(S, &r, "#", "x.yaml", "t", &v, &c, &e), 0, "%s", e.message);
	free(r.canonical);
	json_decref(d);
	return qi("SELECT id FROM workflows WHERE name = '%s'", name);
}

static long long trigger(const char *wf)
{
	struct wf_err e;
	int existing;
	long long id = runs_trigger(S, wf, NULL, NULL, "manual", 0, "t", &existing, &e);
	cr_assert(id > 0, "trigger: %s", e.message);
	return id;
}

/* An executor: a PULL socket on a free loopback port, registered by hello. */
struct fake_exec {
	void *pull;
	struct reg_exec *e;
};

static void fake_exec(void *zctx, struct reg *r, struct fake_exec *f, const char *id, int slots)
{
	char ep[128];
	size_t len = sizeof ep;
	int zero = 0;
	f->pull = zmq_socket(zctx, ZMQ_PULL);
	zmq_setsockopt(f->pull, ZMQ_LINGER, &zero, sizeof zero);
	cr_assert_eq(zmq_bind(f->pull, "tcp://127.0.0.1:*"), 0);
	zmq_getsockopt(f->pull, ZMQ_LAST_ENDPOINT, ep, &len);
	json_t *hello =
	    json_pack("{s:s, s:s, s:s, s:s, s:[], s:i, s:s}", "type", "hello", "executor_id", id,
	              "endpoint", ep, "pool", "default", "labels", "slots", slots, "version", "t");
	reg_hello(r, hello);
	json_decref(hello);
	f->e = reg_find(r, id);
	cr_assert(f->e);
	for (int i = 0; i < 200 && !f->e->connected; i++) {
		reg_poll_monitors(r);
		sleep_ms(10);
	}
	cr_assert(f->e->connected, "the registry did not connect to %s", ep);
}

/* A registry and an ingester on their own ZeroMQ context, with n
 * executors (e1, e2) of the given slots registered by hello: what each
 * dispatcher test starts from. */
struct rig {
	void *zctx;
	struct reg *r;
	struct ingest *g;
	struct fake_exec f[2];
	int n;
};

static void rig_open(struct rig *k, int n, int slots)
{
	static const char *const ids[2] = {"e1", "e2"};
	cr_assert(n >= 1 && n <= 2);
	k->zctx = zmq_ctx_new();
	k->r = reg_new(k->zctx, 10000);
	k->g = ingest_new(1000);
	k->n = n;
	for (int i = 0; i < n; i++)
		fake_exec(k->zctx, k->r, &k->f[i], ids[i], slots);
}

static void rig_close(struct rig *k)
{
	ingest_free(k->g);
	reg_free(k->r);
	for (int i = 0; i < k->n; i++)
		zmq_close(k->f[i].pull);
	zmq_ctx_term(k->zctx);
}

/* An executor that said hello is not sent tasks until the ZeroMQ handshake
 * with it is done: the TCP connection alone is not enough (with
 * ZMQ_IMMEDIATE the pipe is attached after the handshake, and a task sent
 * before failed with EAGAIN and became a lost attempt). The endpoint here
 * accepts TCP connections and never speaks ZMTP. */
Test(perf_paths, registry_waits_for_the_handshake_before_sending)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(listen(fd, 8), 0);
	socklen_t alen = sizeof a;
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	char ep[64];
	snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", ntohs(a.sin_port));

	void *zctx = zmq_ctx_new();
	struct reg *r = reg_new(zctx, 10000);
	json_t *hello = json_pack("{s:s, s:s, s:s, s:s, s:[], s:i, s:s}", "type", "hello",
	                          "executor_id", "mute", "endpoint", ep, "pool", "default",
	                          "labels", "slots", 4, "version", "t");
	reg_hello(r, hello);
	json_decref(hello);
	struct reg_exec *e = reg_find(r, "mute");
	cr_assert(e);
	for (int i = 0; i < 30; i++) {
		reg_poll_monitors(r);
		sleep_ms(10);
	}
	int c = accept(fd, NULL, NULL); /* the TCP connection is there */
	cr_assert(c >= 0);
	reg_poll_monitors(r);
	cr_assert(!e->connected, "connected before any handshake");
	cr_assert(!reg_can_take(e));
	close(c);
	close(fd);
	reg_free(r);
	zmq_ctx_term(zctx);
}

/* Receives the task frames waiting on f. Returns how many. */
static int drain(struct fake_exec *f, long long *ids, int max)
{
	int n = 0;
	for (int tries = 0; tries < 50; tries++) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, f->pull, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			sleep_ms(10);
			continue;
		}
		json_t *j = json_loadb(zmq_msg_data(&m), zmq_msg_size(&m), 0, NULL);
		if (ids && n < max)
			ids[n] = json_integer_value(json_object_get(j, "task_run_id"));
		n++;
		json_decref(j);
		zmq_msg_close(&m);
		tries = 40; /* keep draining quickly once frames flow */
	}
	return n;
}

/* --------------------------------------------------------------- specs */

Test(perf_paths, spec_cache_loads_versions_with_one_query_and_stays_bounded)
{
	long long a = submit("wa", json_pack("[o,o]", task("x", NULL, NULL), task("y", "x", NULL)));
	long long b = submit("wb", json_pack("[o]", task("z", NULL, "broadcast")));
	struct specs *c = specs_new(1);
	long long wfs[3] = {a, b, a};
	int vers[3] = {1, 1, 1};
	cr_assert_eq(specs_load(c, S, wfs, vers, 3), 0);
	const char *name = NULL;
	json_t *y = specs_task(c, a, 1, "y", &name);
	cr_assert_str_eq(name, "wa");
	cr_assert_str_eq(json_string_value(json_object_get(y, "name")), "y");
	cr_assert_str_eq(
	    json_string_value(json_object_get(specs_task(c, b, 1, "z", NULL), "route")),
	    "broadcast");
	cr_assert_null(specs_task(c, a, 1, "nope", NULL));
	cr_assert_null(specs_task(c, a, 2, "x", &name));
	cr_assert_null(name);
	/* full (max 1, holds 2): the next load empties it first */
	long long only[1] = {b};
	cr_assert_eq(specs_load(c, S, only, vers, 1), 0);
	cr_assert_null(specs_task(c, a, 1, "x", NULL));
	cr_assert_not_null(specs_task(c, b, 1, "z", NULL));
	specs_free(c);
}

/* --------------------------------------------------------------- claim */

Test(perf_paths, claim_skips_paused_and_unroutable_work_without_starving_the_rest)
{
	struct rig k;
	rig_open(&k, 1, 20);
	submit("paused", json_pack("[o]", task("p", NULL, NULL)));
	submit("pinned", json_pack("[o]", task("k", NULL, "executor:elsewhere")));
	submit("plain", json_pack("[o]", task("n", NULL, NULL)));
	/* the oldest ready work cannot be dispatched: 30 paused, 30 pinned */
	for (int i = 0; i < 30; i++)
		trigger("paused");
	for (int i = 0; i < 30; i++)
		trigger("pinned");
	for (int i = 0; i < 50; i++)
		trigger("plain");
	exec_sql("UPDATE workflows SET paused = true WHERE name = 'paused'");
	exec_sql("UPDATE task_runs SET available_at = now() - interval '1 s' * (1000 - id)");

	struct disp_opts o = {"eng", 30000, 500};
	struct disp *d = disp_new(&o);
	int more = 0;
	cr_assert_eq(disp_run(d, S, k.r, k.g, &more), 20, "%s", store_error(S));
	long long ids[64];
	cr_assert_eq(drain(&k.f[0], ids, 64), 20);
	cr_assert_eq(qi("SELECT count(*) FROM task_runs t JOIN runs r ON r.id = t.run_id JOIN"
	                " workflows w ON w.id = r.workflow_id WHERE t.state = 'running' AND"
	                " w.name = 'plain' AND t.executor_id = 'e1' AND t.attempt = 1"),
	             20);
	/* the running attempts live on their task runs until they end */
	cr_assert_eq(qi("SELECT count(*) FROM attempts_all WHERE state = 'running' AND sent_at IS"
	                " NOT NULL AND executor_id = 'e1'"),
	             20);
	cr_assert_eq(qi("SELECT count(*) FROM attempts"), 0);
	/* oldest first among what can run */
	cr_assert_eq(qi("SELECT count(*) FROM task_runs t WHERE t.state = 'running' AND t.id >"
	                " (SELECT min(id) FROM task_runs WHERE state = 'queued' AND task = 'n')"),
	             0);
	cr_assert_eq(qi("SELECT count(*) FROM task_runs WHERE task IN ('p', 'k') AND state <>"
	                " 'queued'"),
	             0);
	disp_free(d);
	rig_close(&k);
}

/* Active-active: another engine's claim holds the oldest ready task runs
 * (locked, still queued in this claim's snapshot). The claim passes over
 * them and fills its batch with the next ones. Locking only the chosen
 * candidates afterwards skipped them all and claimed nothing. */
Test(perf_paths, claim_passes_over_task_runs_another_engine_holds)
{
	struct rig k;
	rig_open(&k, 1, 10);
	submit("held", json_pack("[o]", task("h", NULL, NULL)));
	for (int i = 0; i < 30; i++)
		trigger("held");
	exec_sql("UPDATE task_runs SET available_at = now() - interval '1 s' * (1000 - id)");

	/* the other engine: the 10 oldest, locked in an open transaction */
	PGconn *other = PQconnectdb(db.conninfo);
	cr_assert_eq(PQstatus(other), CONNECTION_OK);
	PGresult *res = PQexec(other, "BEGIN");
	PQclear(res);
	res =
	    PQexec(other, "SELECT id FROM task_runs ORDER BY available_at, id LIMIT 10 FOR UPDATE");
	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(other));
	cr_assert_eq(PQntuples(res), 10);
	long long held_max = atoll(PQgetvalue(res, 9, 0));
	PQclear(res);

	struct disp_opts o = {"eng", 30000, 10};
	struct disp *d = disp_new(&o);
	int more = 0;
	cr_assert_eq(disp_run(d, S, k.r, k.g, &more), 10, "%s", store_error(S));
	long long ids[16];
	cr_assert_eq(drain(&k.f[0], ids, 16), 10);
	for (int i = 0; i < 10; i++)
		cr_assert_gt(ids[i], held_max, "task run %lld is held by the other engine", ids[i]);
	/* the next ten in order, and nothing of the held ones touched */
	cr_assert_eq(qi("SELECT count(*) FROM task_runs WHERE state = 'running' AND id > %lld AND"
	                " id <= %lld + 10",
	                held_max, held_max),
	             10);
	cr_assert_eq(
	    qi("SELECT count(*) FROM task_runs WHERE state = 'running' AND id <= %lld", held_max),
	    0);
	res = PQexec(other, "ROLLBACK");
	PQclear(res);
	PQfinish(other);
	disp_free(d);
	rig_close(&k);
}

/* ----------------------------------------------------------- broadcast */

/* Task frames: a step with nothing to expand is spliced in from its spec
 * (dispatch.c, frag_of); the frame must be the one wire_task builds, field
 * for field, escapes and parameters included. A step with templates is
 * built per task and expanded. */
Test(perf_paths, task_frames_spliced_from_the_spec_equal_the_built_ones)
{
	struct rig k;
	rig_open(&k, 1, 20);
	const char *odd = "n\"q\\é/\t";
	json_t *a = task(odd, NULL, NULL);
	json_object_set_new(
	    a, "breaker",
	    json_pack("{s:s, s:i, s:i}", "name", "b\"1", "failures", 3, "open_for_ms", 1000));
	json_t *b = task("shell", NULL, NULL);
	json_object_set_new(
	    b, "step",
	    json_pack("{s:s, s:[s, s]}", "type", "shell", "argv", "/bin/echo", "${params.region}"));
	json_object_del(b, "timeout_ms");
	submit("frag", json_pack("[o, o]", a, b));
	long long run = trigger("frag");
	/* the run's parameters (declared ones, as the API would have checked) */
	exec_sql("UPDATE runs SET params = '{\"region\": \"eu\\\"w\", \"n\": 7}' WHERE id = %lld",
	         run);

	struct disp_opts o = {"eng\"1", 30000, 500};
	struct disp *d = disp_new(&o);
	int more = 0;
	cr_assert_eq(disp_run(d, S, k.r, k.g, &more), 2, "%s", store_error(S));
	int seen = 0;
	for (int tries = 0; tries < 100 && seen < 2; tries++) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, k.f[0].pull, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			sleep_ms(10);
			continue;
		}
		char err[256];
		json_t *frame = NULL;
		cr_assert_eq(
		    wire_decode(zmq_msg_data(&m), zmq_msg_size(&m), &frame, err, sizeof err), 0,
		    "%s: %.*s", err, (int)zmq_msg_size(&m), (char *)zmq_msg_data(&m));
		zmq_msg_close(&m);
		const char *name = json_string_value(json_object_get(frame, "task"));
		long long id = json_integer_value(json_object_get(frame, "task_run_id"));
		char key[64];
		json_t *env =
		    json_pack("{s:s, s:s}", "WF_PARAM_REGION", "eu\"w", "WF_PARAM_N", "7");
		if (strcmp(name, odd) == 0) {
			json_t *step = json_pack("{s:s}", "type", "noop");
			json_t *brk = json_pack("{s:s, s:i, s:i}", "name", "b\"1", "failures", 3,
			                        "open_for_ms", 1000);
			snprintf(key, sizeof key, "%lld-%s", run, odd);
			struct wire_task t = {.task_run_id = id,
			                      .attempt = 1,
			                      .run_id = run,
			                      .workflow = "frag",
			                      .task = odd,
			                      .step = step,
			                      .timeout_ms = 600000,
			                      .idempotency_key = key,
			                      .breaker = brk,
			                      .env = env,
			                      .lease_ms = 30000,
			                      .engine_id = "eng\"1"};
			json_t *want = wire_task(&t);
			cr_assert(json_equal(frame, want), "spliced %s\nbuilt   %s",
			          json_dumps(frame, JSON_COMPACT), json_dumps(want, JSON_COMPACT));
			json_decref(want);
			json_decref(step);
			json_decref(brk);
		} else {
			cr_assert_str_eq(name, "shell");
			cr_assert_str_eq(
			    json_string_value(json_array_get(
			        json_object_get(json_object_get(frame, "step"), "argv"), 1)),
			    "eu\"w");
			cr_assert(json_equal(json_object_get(frame, "env"), env));
			cr_assert_null(json_object_get(frame, "timeout_ms"));
		}
		json_decref(env);
		json_decref(frame);
		seen++;
	}
	cr_assert_eq(seen, 2);
	cr_assert_eq(disp_spliced(d), 1, "the noop's frame was not spliced");
	disp_free(d);
	rig_close(&k);
}

static struct task_result res(long long id, int attempt, const char *ex, const char *status)
{
	struct task_result t;
	memset(&t, 0, sizeof t);
	t.task_run_id = id;
	t.attempt = attempt;
	t.executor_id = ex;
	t.status = status;
	t.started_ms = wall_ms() - 5;
	t.finished_ms = wall_ms();
	return t;
}

static void broadcast_case(const char *mode, const char *want_parent, const char *want_run)
{
	struct rig k;
	rig_open(&k, 2, 4);
	json_t *b = task("b", NULL, "broadcast");
	json_object_set_new(b, "broadcast_success", json_string(mode));
	submit("bc", json_pack("[o,o]", b, task("after", "b", NULL)));
	long long run = trigger("bc");
	struct disp_opts o = {"eng", 30000, 500};
	struct disp *d = disp_new(&o);
	int more = 0;
	/* first round: the parent fans out (nothing sent), then the copies go */
	cr_assert_eq(disp_run(d, S, k.r, k.g, &more), 0, "%s", store_error(S));
	cr_assert_eq(more, 1);
	cr_assert_str_eq(q("SELECT string_agg(coalesce(target_executor, '-') || '=' || state, ' '"
	                   " ORDER BY target_executor NULLS FIRST) FROM task_runs WHERE run_id ="
	                   " %lld AND task = 'b'",
	                   run),
	                 "-=running e1=queued e2=queued");
	cr_assert_eq(disp_run(d, S, k.r, k.g, &more), 2, "%s", store_error(S));
	long long id1, id2;
	cr_assert_eq(drain(&k.f[0], &id1, 1), 1);
	cr_assert_eq(drain(&k.f[1], &id2, 1), 1);
	cr_assert_str_eq(q("SELECT target_executor FROM task_runs WHERE id = %lld", id1), "e1");
	cr_assert_str_eq(q("SELECT target_executor FROM task_runs WHERE id = %lld", id2), "e2");
	/* e1 succeeds; the parent waits for e2 */
	struct task_result t1 = res(id1, 1, "e1", "succeeded");
	cr_assert_eq(runs_apply_results(S, &t1, 1), 1);
	cr_assert_str_eq(q("SELECT state FROM task_runs WHERE run_id = %lld AND task = 'b' AND"
	                   " target_executor IS NULL",
	                   run),
	                 "running");
	struct task_result t2 = res(id2, 1, "e2", "failed");
	cr_assert_eq(runs_apply_results(S, &t2, 1), 1);
	cr_assert_str_eq(q("SELECT state FROM task_runs WHERE run_id = %lld AND task = 'b' AND"
	                   " target_executor IS NULL",
	                   run),
	                 want_parent);
	cr_assert_str_eq(
	    q("SELECT state FROM task_runs WHERE run_id = %lld AND task = 'after'", run),
	    strcmp(want_parent, "succeeded") == 0 ? "queued" : "upstream_failed");
	if (strcmp(want_parent, "failed") == 0)
		cr_assert_str_eq(
		    q("SELECT error FROM task_runs WHERE run_id = %lld AND task = 'b' AND"
		      " target_executor IS NULL",
		      run),
		    "broadcast: 1 of 2 copies did not succeed (e2: failed)");
	cr_assert_str_eq(q("SELECT state FROM runs WHERE id = %lld", run), want_run);
	disp_free(d);
	rig_close(&k);
}

Test(perf_paths, broadcast_all_fails_when_one_copy_fails)
{
	broadcast_case("all", "failed", "failed");
}

Test(perf_paths, broadcast_any_succeeds_when_one_copy_succeeds)
{
	broadcast_case("any", "succeeded", "running");
}

Test(perf_paths, broadcast_copy_of_a_lost_executor_fails_after_the_lease)
{
	submit("bl", json_pack("[o]", task("b", NULL, "broadcast")));
	long long run = trigger("bl");
	long long parent = qi("SELECT id FROM task_runs WHERE run_id = %lld", run);
	exec_sql("UPDATE task_runs SET state = 'running', attempt = 1 WHERE id = %lld", parent);
	exec_sql("INSERT INTO task_runs (run_id, task, state, target_executor) VALUES"
	         " (%lld, 'b', 'queued', 'gone'), (%lld, 'b', 'succeeded', 'here')",
	         run, run);
	exec_sql("INSERT INTO executors (id, endpoint, state, last_heartbeat) VALUES"
	         " ('gone', 'tcp://x', 'lost', now() - interval '10 s')");
	struct disp_opts o = {"eng", 60000, 500};
	struct disp *d = disp_new(&o);
	cr_assert_eq(disp_reap(d, S), 0, "within the lease: %s", store_error(S));
	disp_free(d);
	o.lease_ms = 5000;
	d = disp_new(&o);
	cr_assert_eq(disp_reap(d, S), 1, "%s", store_error(S));
	cr_assert_str_eq(q("SELECT state || ': ' || error FROM task_runs WHERE run_id = %lld AND"
	                   " target_executor = 'gone'",
	                   run),
	                 "failed: executor gone is lost: this broadcast copy could not run there");
	cr_assert_str_eq(q("SELECT state FROM task_runs WHERE id = %lld", parent), "failed");
	cr_assert_str_eq(q("SELECT state FROM runs WHERE id = %lld", run), "failed");
	disp_free(d);
}

/* -------------------------------------------------------------- ingest */

/* A run of workflow name with two task runs, a and b, both running their
 * first attempt on executor x (which this engine did not send them to). */
static void two_running(const char *name, long long *a, long long *b)
{
	submit(name, json_pack("[o,o]", task("a", NULL, NULL), task("b", NULL, NULL)));
	long long run = trigger(name);
	exec_sql("UPDATE task_runs SET state = 'running', attempt = 1, executor_id = 'x',"
	         " lease_expires_at = now() + interval '30 s', attempt_claimed_at = now()"
	         " WHERE run_id = %lld",
	         run);
	*a = qi("SELECT id FROM task_runs WHERE run_id = %lld AND task = 'a'", run);
	*b = qi("SELECT id FROM task_runs WHERE run_id = %lld AND task = 'b'", run);
}

Test(perf_paths, started_is_not_applied_when_finished_is_in_the_same_batch)
{
	long long a, b;
	two_running("st", &a, &b);
	struct reg *r = reg_new(NULL, 10000);
	struct ingest *g = ingest_new(100);
	const int64_t st_ms = 1700000000000LL, res_ms = 1700000001000LL;
	json_t *frames[3] = {wire_started("x", a, 1, st_ms), wire_started("x", b, 1, st_ms), NULL};
	struct wire_result wr = {.task_run_id = a,
	                         .attempt = 1,
	                         .status = "succeeded",
	                         .exit_code = 0,
	                         .started_ms = res_ms,
	                         .finished_ms = res_ms + 5};
	frames[2] = wire_finished("x", &wr);
	for (int i = 0; i < 3; i++) {
		char *text = json_dumps(frames[i], JSON_COMPACT);
		cr_assert(ingest_frame(g, r, S, text, strlen(text)) >= 0);
		free(text);
		json_decref(frames[i]);
	}
	cr_assert_eq(ingest_pending(g), 3);
	/* executor x's task was not sent by this engine: its result is held a
	 * second (ingest.c, COPY_HOLD_MS); b's started record goes now, a's
	 * not (its finished is buffered) */
	cr_assert_eq(ingest_apply(g, S, 500), 0, "%s", store_error(S));
	cr_assert_eq(ingest_pending(g), 1);
	sleep_ms(1100);
	cr_assert_eq(ingest_apply(g, S, 500), 1, "%s", store_error(S));
	cr_assert_eq(ingest_pending(g), 0);
	/* a: the result's own start time; b (still running): the started record */
	cr_assert_eq(qi("SELECT (extract(epoch FROM started_at) * 1000)::bigint FROM attempts_all"
	                " WHERE task_run_id = %lld",
	                a),
	             res_ms);
	/* the frame left out its empty output and null fields: stored as an
	 * empty output and nulls, the exit code as sent */
	cr_assert_eq(qi("SELECT (output = '' AND exit_code = 0 AND http_status IS NULL AND error IS"
	                " NULL)::int FROM attempts_all WHERE task_run_id = %lld",
	                a),
	             1);
	cr_assert_eq(qi("SELECT (extract(epoch FROM started_at) * 1000)::bigint FROM attempts_all"
	                " WHERE task_run_id = %lld",
	                b),
	             st_ms);
	ingest_free(g);
	reg_free(r);
}

/* Executors send every result to every engine. A result of a task this
 * engine did not send is held a second, then dropped by one read when the
 * engine that sent the task has recorded it, and applied when it has not
 * (that engine stopped, say). Nothing is written for the dropped copy. */
Test(perf_paths, held_copies_are_dropped_when_recorded_and_applied_when_not)
{
	long long a, b;
	two_running("cp", &a, &b);
	/* the engine that sent a applies its result */
	struct task_result ra = {.task_run_id = a,
	                         .attempt = 1,
	                         .executor_id = "x",
	                         .status = "succeeded",
	                         .output = "",
	                         .run_id = 0,
	                         .sole = -1};
	cr_assert_eq(runs_apply_results(S, &ra, 1), 1, "%s", store_error(S));
	/* the read that tells them apart: a's report is recorded, b's not,
	 * and another outcome of a's attempt is not the one recorded */
	struct task_result both[2] = {ra, ra};
	both[1].task_run_id = b;
	unsigned char rec[2];
	cr_assert_eq(runs_recorded(S, both, 2, rec), 1, "%s", store_error(S));
	cr_assert(rec[0] && !rec[1]);
	both[0].status = "failed";
	cr_assert_eq(runs_recorded(S, both, 2, rec), 0, "%s", store_error(S));
	long long events = qi("SELECT count(*) FROM events");
	long long attempts = qi("SELECT count(*) FROM attempts");

	struct reg *r = reg_new(NULL, 10000);
	struct ingest *g = ingest_new(100);
	struct wire_result wr = {
	    .attempt = 1, .status = "succeeded", .started_ms = 1, .finished_ms = 2};
	long long ids[2] = {a, b};
	for (int i = 0; i < 2; i++) {
		wr.task_run_id = ids[i];
		json_t *f = wire_finished("x", &wr);
		char *text = json_dumps(f, JSON_COMPACT);
		cr_assert_eq(ingest_frame(g, r, S, text, strlen(text)), 1);
		free(text);
		json_decref(f);
	}
	int64_t t0 = mono_ms();
	cr_assert_eq(ingest_apply(g, S, 500), 0, "held, not due yet");
	cr_assert_eq(ingest_pending(g), 2);
	cr_assert_str_eq(q("SELECT state FROM task_runs WHERE id = %lld", b), "running");
	/* an applier waits for the oldest copy to come due, not longer */
	ingest_wait(g, 5000);
	cr_assert_geq(mono_ms() - t0, 900);
	cr_assert_lt(mono_ms() - t0, 3000);
	/* a's copy dropped, b's applied: both counted as handled */
	cr_assert_eq(ingest_apply(g, S, 500), 2, "%s", store_error(S));
	cr_assert_eq(ingest_pending(g), 0);
	cr_assert_str_eq(q("SELECT state FROM task_runs WHERE id = %lld", b), "succeeded");
	/* nothing written for a's copy: no stale attempt, no event of its own */
	cr_assert_eq(qi("SELECT count(*) FROM attempts"), attempts);
	cr_assert_eq(qi("SELECT count(*) FROM events WHERE task_run_id = %lld", a), 1);
	cr_assert_eq(qi("SELECT count(*) FROM events"), events + 2, "b's change and run.finished");
	ingest_free(g);
	reg_free(r);
}
