/* The real bin/wf-executor against a fake engine made of two ZeroMQ sockets,
 * with real processes and a real HTTP server (libmicrohttpd). Every frame
 * the executor sends is checked with wire_decode. */
#include <criterion/criterion.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "common/util.h"
#include "common/wire.h"
#include "exec.h"

struct fx {
	pid_t pid;
	void *ctx, *pull, *push;
	char id[64];
	char dir[64];
	char listen[64];
};

static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof a;
	cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &l), 0);
	close(s);
	return ntohs(a.sin_port);
}

/* Starts the executor with extra options (NULL-terminated) and environment
 * assignments "K=V" in envs (NULL-terminated, may be NULL). */
static void start(struct fx *f, const char *const *extra, const char *const *envs)
{
	memset(f, 0, sizeof *f);
	snprintf(f->id, sizeof f->id, "test-%ld", (long)getpid());
	snprintf(f->dir, sizeof f->dir, "/tmp/wf-exec-test-XXXXXX");
	cr_assert_not_null(mkdtemp(f->dir));
	char engine[64];
	snprintf(engine, sizeof engine, "tcp://127.0.0.1:%d", free_port());
	snprintf(f->listen, sizeof f->listen, "tcp://127.0.0.1:%d", free_port());
	f->ctx = zmq_ctx_new();
	f->pull = zmq_socket(f->ctx, ZMQ_PULL);
	cr_assert_eq(zmq_bind(f->pull, engine), 0, "%s", zmq_strerror(zmq_errno()));
	f->push = zmq_socket(f->ctx, ZMQ_PUSH);
	int zero = 0;
	zmq_setsockopt(f->push, ZMQ_LINGER, &zero, sizeof zero);
	zmq_setsockopt(f->pull, ZMQ_LINGER, &zero, sizeof zero);
	cr_assert_eq(zmq_connect(f->push, f->listen), 0);

	const char *bin = getenv("WF_BIN") ? getenv("WF_BIN") : "bin";
	char path[512];
	snprintf(path, sizeof path, "%s/wf-executor", bin);
	const char *argv[64] = {path,      "--id",         f->id,  "--listen",
	                        f->listen, "--engine",     engine, "--heartbeat-ms",
	                        "200",     "--kill-grace", "1s",   "--insecure-plaintext"};
	size_t n = 12;
	for (size_t i = 0; extra && extra[i]; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	f->pid = fork();
	cr_assert_neq(f->pid, -1);
	if (f->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
		for (size_t i = 0; envs && envs[i]; i++)
			putenv((char *)envs[i]);
		if (!getenv("WF_LOG_LEVEL"))
			setenv("WF_LOG_LEVEL", "error", 1);
		execv(path, (char **)argv);
		_exit(127);
	}
}

static void stop(struct fx *f)
{
	if (f->pid > 0) {
		kill(f->pid, SIGKILL);
		waitpid(f->pid, NULL, 0);
	}
	zmq_close(f->pull);
	zmq_close(f->push);
	zmq_ctx_term(f->ctx);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	(void)!system(cmd);
}

/* Next valid frame within ms, or NULL. */
static json_t *recv_frame(struct fx *f, int ms)
{
	zmq_pollitem_t it = {.socket = f->pull, .events = ZMQ_POLLIN};
	if (zmq_poll(&it, 1, ms) <= 0)
		return NULL;
	char buf[200000];
	int n = zmq_recv(f->pull, buf, sizeof buf, 0);
	cr_assert_geq(n, 0);
	cr_assert_lt(n, (int)sizeof buf);
	char err[300];
	json_t *m;
	cr_assert_eq(wire_decode(buf, (size_t)n, &m, err, sizeof err), 0,
	             "executor sent an invalid frame: %s: %.*s", err, n, buf);
	cr_assert_str_eq(json_string_value(json_object_get(m, "executor_id")), f->id);
	return m;
}

/* Waits for a frame of type (for task_run_id when id > 0), skipping others. */
static json_t *wait_for(struct fx *f, const char *type, int64_t id, int ms)
{
	int64_t end = mono_ms() + ms;
	for (;;) {
		int64_t left = end - mono_ms();
		cr_assert_gt(left, 0, "no %s frame for task %lld within %d ms", type, (long long)id,
		             ms);
		json_t *m = recv_frame(f, (int)left);
		if (!m)
			continue;
		if (strcmp(wire_type(m), type) == 0 &&
		    (id <= 0 || json_integer_value(json_object_get(m, "task_run_id")) == id))
			return m;
		json_decref(m);
	}
}

static void send_json(struct fx *f, json_t *m)
{
	char *s = json_dumps(m, JSON_COMPACT);
	cr_assert_eq(zmq_send(f->push, s, strlen(s), 0), (int)strlen(s));
	free(s);
	json_decref(m);
}

/* Sends a task with step (stolen); extra fields (stolen, may be NULL) merged in. */
static void send_task(struct fx *f, int64_t id, json_t *step, int64_t timeout_ms, json_t *extra)
{
	json_t *t =
	    json_pack("{s:s, s:I, s:i, s:i, s:s, s:s, s:o, s:s, s:n, s:{s:s}, s:i}", "type", "task",
	              "task_run_id", (json_int_t)id, "attempt", 1, "run_id", 5, "workflow", "wf",
	              "task", "extract", "step", step, "idempotency_key", "5-extract", "breaker",
	              "env", "WF_PARAM_REGION", "eu", "lease_ms", 30000);
	cr_assert_not_null(t);
	if (timeout_ms)
		json_object_set_new(t, "timeout_ms", json_integer(timeout_ms));
	if (extra) {
		json_object_update(t, extra);
		json_decref(extra);
	}
	send_json(f, t);
}

static json_t *argv_step(const char *const *argv)
{
	json_t *a = json_array();
	for (size_t i = 0; argv[i]; i++)
		json_array_append_new(a, json_string(argv[i]));
	return json_pack("{s:s, s:o}", "type", "shell", "argv", a);
}

static json_t *sh_step(const char *script)
{
	return json_pack("{s:s, s:s}", "type", "sh", "script", script);
}

/* Runs one task to its finished frame (started checked first unless refused). */
static json_t *run(struct fx *f, int64_t id, json_t *step, int64_t timeout_ms, json_t *extra)
{
	send_task(f, id, step, timeout_ms, extra);
	return wait_for(f, "finished", id, 15000);
}

static const char *str(const json_t *m, const char *k)
{
	const char *s = json_string_value(json_object_get(m, k));
	return s ? s : "(null)";
}

static json_int_t num(const json_t *m, const char *k)
{
	return json_integer_value(json_object_get(m, k));
}

/* ---------------------------------------------------------------- tests */

Test(executor, hello_and_heartbeat, .timeout = 20)
{
	struct fx f;
	const char *extra[] = {"--pool", "gpu",     "--label", "a", "--label",
	                       "b",      "--slots", "3",       NULL};
	start(&f, extra, NULL);
	json_t *h = wait_for(&f, "hello", 0, 5000);
	cr_assert_str_eq(str(h, "endpoint"), f.listen);
	cr_assert_str_eq(str(h, "pool"), "gpu");
	cr_assert_eq(num(h, "slots"), 3);
	cr_assert_eq(json_array_size(json_object_get(h, "labels")), 2);
	cr_assert_str_eq(str(h, "version"), WF_VERSION);
	json_decref(h);
	json_t *hb = wait_for(&f, "heartbeat", 0, 2000);
	cr_assert_eq(num(hb, "free_slots"), 3);
	cr_assert(json_is_false(json_object_get(hb, "draining")));
	cr_assert_eq(json_array_size(json_object_get(hb, "running")), 0);
	json_decref(hb);
	/* a second heartbeat within ~2 intervals */
	hb = wait_for(&f, "heartbeat", 0, 1000);
	json_decref(hb);
	stop(&f);
}

Test(executor, shell_echo, .timeout = 20)
{
	struct fx f;
	start(&f, NULL, NULL);
	const char *argv[] = {"/bin/echo", "hi", NULL};
	send_task(&f, 1, argv_step(argv), 0, NULL);
	json_t *s = wait_for(&f, "started", 1, 5000);
	cr_assert_eq(num(s, "attempt"), 1);
	cr_assert_gt(num(s, "at_ms"), 1700000000000LL);
	json_decref(s);
	json_t *m = wait_for(&f, "finished", 1, 5000);
	cr_assert_str_eq(str(m, "status"), "succeeded");
	cr_assert_eq(num(m, "exit_code"), 0);
	cr_assert_str_eq(str(m, "output"), "hi\n");
	cr_assert_null(json_object_get(m, "error"));       /* null: left out */
	cr_assert_null(json_object_get(m, "http_status")); /* null: left out */
	cr_assert_geq(num(m, "finished_ms"), num(m, "started_ms"));
	json_decref(m);
	stop(&f);
}

Test(executor, hostile_argv_is_not_interpreted, .timeout = 20)
{
	struct fx f;
	start(&f, NULL, NULL);
	/* sh only loops over "$@": every element must arrive as it was sent */
	const char *argv[] = {"/bin/sh",
	                      "-c",
	                      "for a in \"$@\"; do printf '[%s]\\n' \"$a\"; done",
	                      "sh",
	                      "$(id)",
	                      "`id`",
	                      "a; echo pwned",
	                      "'single' \"double\"",
	                      "line1\nline2",
	                      "--help",
	                      "-- x",
	                      "$HOME",
	                      "*",
	                      NULL};
	json_t *m = run(&f, 2, argv_step(argv), 0, NULL);
	cr_assert_str_eq(str(m, "status"), "succeeded");
	cr_assert_str_eq(str(m, "output"), "[$(id)]\n[`id`]\n[a; echo pwned]\n['single' "
	                                   "\"double\"]\n[line1\nline2]\n[--help]\n[-- x]\n"
	                                   "[$HOME]\n[*]\n");
	json_decref(m);
	/* and a program that takes them directly */
	const char *argv2[] = {"/usr/bin/printf", "%s|", "$(id)", "; ls", "--", NULL};
	m = run(&f, 3, argv_step(argv2), 0, NULL);
	cr_assert_str_eq(str(m, "output"), "$(id)|; ls|--|");
	json_decref(m);
	stop(&f);
}

Test(executor, exit_status_and_missing_command, .timeout = 20)
{
	struct fx f;
	start(&f, NULL, NULL);
	json_t *m = run(&f, 4, sh_step("echo bad >&2; exit 3"), 0, NULL);
	cr_assert_str_eq(str(m, "status"), "failed");
	cr_assert_eq(num(m, "exit_code"), 3);
	cr_assert_str_eq(str(m, "error"), "exit status 3");
	cr_assert_str_eq(str(m, "output"), "bad\n");
	json_decref(m);
	const char *argv[] = {"no-such-command-wf", NULL};
	m = run(&f, 5, argv_step(argv), 0, NULL);
	cr_assert_str_eq(str(m, "status"), "failed");
	cr_assert_str_eq(str(m, "error"),
	                 "cannot execute 'no-such-command-wf': No such file or directory");
	json_decref(m);
	m = run(&f, 6, sh_step("kill -9 $$"), 0, NULL);
	cr_assert_str_eq(str(m, "status"), "failed");
	cr_assert_null(json_object_get(m, "exit_code")); /* null: left out */
	cr_assert(strstr(str(m, "error"), "killed by signal 9"), "%s", str(m, "error"));
	json_decref(m);
	stop(&f);
}

Test(executor, timeout_kills_the_whole_group, .timeout = 20)
{
	struct fx f;
	start(&f, NULL, NULL);
	char script[256];
	snprintf(script, sizeof script, "echo $$ > %s/pgid; sleep 30 & sleep 30", f.dir);
	int64_t t0 = mono_ms();
	json_t *m = run(&f, 7, sh_step(script), 500, NULL);
	int64_t took = mono_ms() - t0;
	cr_assert_str_eq(str(m, "status"), "timeout");
	cr_assert(strstr(str(m, "error"), "timed out after 500 ms"), "%s", str(m, "error"));
	cr_assert_lt(took, 6000);
	json_decref(m);
	char path[128];
	snprintf(path, sizeof path, "%s/pgid", f.dir);
	FILE *p = fopen(path, "r");
	cr_assert_not_null(p);
	long pgid = 0;
	cr_assert_eq(fscanf(p, "%ld", &pgid), 1);
	fclose(p);
	cr_assert_gt(pgid, 1);
	cr_assert_eq(kill(-(pid_t)pgid, 0), -1, "process group %ld still alive", pgid);
	cr_assert_eq(errno, ESRCH);
	stop(&f);
}

Test(executor, step_ignoring_sigterm_is_killed, .timeout = 20)
{
	struct fx f;
	start(&f, NULL, NULL);
	int64_t t0 = mono_ms();
	json_t *m = run(&f, 8, sh_step("trap '' TERM; while :; do sleep 0.1; done"), 300, NULL);
	cr_assert_str_eq(str(m, "status"), "timeout");
	cr_assert_lt(mono_ms() - t0, 4000); /* 300 ms + 1 s kill grace */
	json_decref(m);
	stop(&f);
}

Test(executor, outputs_and_environment, .timeout = 20)
{
	struct fx f;
	const char *envs[] = {"EXECUTOR_ONLY=leak", NULL};
	start(&f, NULL, envs);
	json_t *step =
	    sh_step("printf '{\"x\":\"%s\",\"run\":\"%s\",\"task\":\"%s\",\"attempt\":"
	            "\"%s\",\"key\":\"%s\",\"region\":\"%s\",\"leak\":\"%s\"}' \"$X\" "
	            "\"$WF_RUN_ID\" \"$WF_TASK\" \"$WF_ATTEMPT\" \"$WF_IDEMPOTENCY_KEY\" "
	            "\"$WF_PARAM_REGION\" \"$EXECUTOR_ONLY\" > \"$WF_OUTPUT\"; pwd");
	json_object_set_new(step, "env", json_pack("{s:s}", "X", "b-42"));
	json_object_set_new(step, "dir", json_string(f.dir));
	json_t *m = run(&f, 9, step, 0, NULL);
	cr_assert_str_eq(str(m, "status"), "succeeded", "%s", str(m, "error"));
	json_t *o = json_object_get(m, "outputs");
	cr_assert(json_is_object(o));
	cr_assert_str_eq(str(o, "x"), "b-42");
	cr_assert_str_eq(str(o, "run"), "5");
	cr_assert_str_eq(str(o, "task"), "extract");
	cr_assert_str_eq(str(o, "attempt"), "1");
	cr_assert_str_eq(str(o, "key"), "5-extract");
	cr_assert_str_eq(str(o, "region"), "eu");
	cr_assert_str_eq(str(o, "leak"), "", "the executor's environment reached the step");
	char want[128];
	snprintf(want, sizeof want, "%s\n", f.dir);
	cr_assert_str_eq(str(m, "output"), want);
	json_decref(m);
	/* no file content: outputs null; broken JSON: failed */
	m = run(&f, 10, sh_step("true"), 0, NULL);
	cr_assert_null(json_object_get(m, "outputs")); /* null: left out */
	json_decref(m);
	m = run(&f, 11, sh_step("echo '{\"a\":' > \"$WF_OUTPUT\""), 0, NULL);
	cr_assert_str_eq(str(m, "status"), "failed");
	cr_assert(strstr(str(m, "error"), "WF_OUTPUT is not valid JSON"), "%s", str(m, "error"));
	json_decref(m);
	m = run(&f, 12, sh_step("echo '[1]' > \"$WF_OUTPUT\""), 0, NULL);
	cr_assert_str_eq(str(m, "status"), "failed");
	cr_assert(strstr(str(m, "error"), "must hold a JSON object"), "%s", str(m, "error"));
	json_decref(m);
	stop(&f);
}

Test(executor, output_keeps_the_tail, .timeout = 20)
{
	struct fx f;
	const char *extra[] = {"--max-output", "1024", NULL};
	start(&f, extra, NULL);
	json_t *m = run(&f, 13, sh_step("seq 1 100000; printf '\\377end'"), 0, NULL);
	cr_assert_str_eq(str(m, "status"), "succeeded");
	const char *out = str(m, "output");
	cr_assert_leq(strlen(out), 1024);
	cr_assert_eq(strncmp(out, "[... ", 5), 0, "%.40s", out);
	cr_assert(strstr(out, " bytes truncated ...]\n"));
	/* the invalid byte became U+FFFD */
	cr_assert(strstr(out, "99999\n100000\n\xef\xbf\xbd"
	                      "end"),
	          "%s", out + strlen(out) - 20);
	json_decref(m);
	stop(&f);
}

/* ---- HTTP ---- */

struct srv {
	struct MHD_Daemon *d;
	int port;
	atomic_int calls;
	pthread_mutex_t lock;
	char key[128];
	char body[256];
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
	struct srv *s = cls;
	if (!*con_cls) {
		*con_cls = s;
		return MHD_YES;
	}
	if (*upload_size) {
		pthread_mutex_lock(&s->lock);
		snprintf(s->body, sizeof s->body, "%.*s", (int)*upload_size, upload);
		pthread_mutex_unlock(&s->lock);
		*upload_size = 0;
		return MHD_YES;
	}
	atomic_fetch_add(&s->calls, 1);
	const char *k = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
	pthread_mutex_lock(&s->lock);
	snprintf(s->key, sizeof s->key, "%s", k ? k : "");
	pthread_mutex_unlock(&s->lock);
	unsigned code = strcmp(url, "/ok") == 0 ? 200 : 503;
	const char *text = code == 200 ? "hello" : "unavailable";
	if (strcmp(url, "/echo-auth") == 0) {
		code = 200;
		text = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
		text = text ? text : "none";
	}
	if (strcmp(url, "/slow") == 0)
		sleep_ms(3000);
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return rc;
}

static void srv_start(struct srv *s)
{
	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->lock, NULL);
	s->port = free_port();
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
	                        (uint16_t)s->port, NULL, NULL, on_request, s, MHD_OPTION_END);
	cr_assert_not_null(s->d);
}

static json_t *http_step(struct srv *s, const char *path, const char *method)
{
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
	return json_pack("{s:s, s:s, s:s, s:[i,i]}", "type", "http", "url", url, "method", method,
	                 "expect_status", 200, 202);
}

Test(executor, http_status_and_idempotency_key, .timeout = 20)
{
	struct srv s;
	srv_start(&s);
	struct fx f;
	start(&f, NULL, NULL);
	json_t *step = http_step(&s, "/ok", "POST");
	json_object_set_new(step, "body", json_string("{\"a\":1}"));
	json_t *m = run(&f, 20, step, 0, NULL);
	cr_assert_str_eq(str(m, "status"), "succeeded", "%s", str(m, "error"));
	cr_assert_eq(num(m, "http_status"), 200);
	cr_assert_str_eq(str(m, "output"), "hello");
	cr_assert_str_eq(s.key, "5-extract");
	cr_assert_str_eq(s.body, "{\"a\":1}");
	json_decref(m);
	m = run(&f, 21, http_step(&s, "/down", "GET"), 0, NULL);
	cr_assert_str_eq(str(m, "status"), "failed");
	cr_assert_eq(num(m, "http_status"), 503);
	cr_assert_str_eq(str(m, "error"), "HTTP 503, expected one of 200, 202");
	cr_assert_str_eq(str(m, "output"), "unavailable");
	json_decref(m);
	/* nothing listens there */
	json_t *dead = json_pack("{s:s, s:s}", "type", "http", "url", "http://127.0.0.1:1/");
	m = run(&f, 22, dead, 0, NULL);
	cr_assert_str_eq(str(m, "status"), "failed");
	cr_assert(strstr(str(m, "error"), "onnect"), "%s", str(m, "error"));
	json_decref(m);
	/* only http and https */
	json_t *file = json_pack("{s:s, s:s}", "type", "http", "url", "file:///etc/passwd");
	m = run(&f, 23, file, 0, NULL);
	cr_assert_str_eq(str(m, "status"), "failed");
	cr_assert_null(json_object_get(m, "output")); /* empty: left out */
	json_decref(m);
	/* the task timeout aborts a slow request */
	m = run(&f, 24, http_step(&s, "/slow", "GET"), 300, NULL);
	cr_assert_str_eq(str(m, "status"), "timeout");
	json_decref(m);
	stop(&f);
	MHD_stop_daemon(s.d);
}

Test(executor, breaker_opens_and_spares_the_server, .timeout = 20)
{
	struct srv s;
	srv_start(&s);
	struct fx f;
	start(&f, NULL, NULL);
	for (int i = 0; i < 5; i++) {
		json_t *extra =
		    json_pack("{s:{s:s, s:i, s:i, s:f, s:i, s:i}}", "breaker", "name", "billing",
		              "failures", 2, "window_ms", 60000, "failure_rate", 0.5, "open_for_ms",
		              60000, "half_open_probes", 1);
		json_t *m = run(&f, 30 + i, http_step(&s, "/down", "GET"), 0, extra);
		if (i < 2) {
			cr_assert_str_eq(str(m, "status"), "failed");
		} else {
			cr_assert_str_eq(str(m, "status"), "breaker_open");
			cr_assert(
			    strstr(str(m, "error"), "circuit breaker 'billing' open until 20"),
			    "%s", str(m, "error"));
		}
		json_decref(m);
	}
	cr_assert_eq(atomic_load(&s.calls), 2, "the server was called while the breaker was open");
	json_t *hb = wait_for(&f, "heartbeat", 0, 2000);
	json_t *b = json_object_get(json_object_get(hb, "breakers"), "billing");
	cr_assert_str_eq(str(b, "state"), "open");
	cr_assert_gt(num(b, "until_ms"), 1700000000000LL);
	json_decref(hb);
	stop(&f);
	MHD_stop_daemon(s.d);
}

Test(executor, breaker_half_open_probe_closes, .timeout = 20)
{
	struct srv s;
	srv_start(&s);
	struct fx f;
	start(&f, NULL, NULL);
	const char *paths[] = {"/down", "/ok", "/ok", "/ok"};
	const char *want[] = {"failed", "breaker_open", "succeeded", "succeeded"};
	for (int i = 0; i < 4; i++) {
		json_t *extra = json_pack("{s:{s:s, s:i, s:i}}", "breaker", "name", "b2",
		                          "failures", 1, "open_for_ms", 400);
		json_t *m = run(&f, 40 + i, http_step(&s, paths[i], "GET"), 0, extra);
		cr_assert_str_eq(str(m, "status"), want[i], "call %d: %s", i, str(m, "error"));
		json_decref(m);
		if (i == 1)
			sleep_ms(500); /* open_for elapses: the next call is the probe */
	}
	cr_assert_eq(atomic_load(&s.calls), 3);
	stop(&f);
	MHD_stop_daemon(s.d);
}

Test(executor, cancel_kills_and_reports, .timeout = 20)
{
	struct fx f;
	start(&f, NULL, NULL);
	send_task(&f, 50, sh_step("sleep 30"), 0, NULL);
	json_decref(wait_for(&f, "started", 50, 5000));
	int64_t t0 = mono_ms();
	send_json(&f, wire_cancel(50, 1));
	json_t *m = wait_for(&f, "finished", 50, 5000);
	cr_assert_str_eq(str(m, "status"), "cancelled");
	cr_assert_lt(mono_ms() - t0, 2000);
	json_decref(m);
	/* a sleep step too, and a cancel for an unknown attempt is ignored */
	send_task(&f, 51, json_pack("{s:s, s:i}", "type", "sleep", "duration_ms", 30000), 0, NULL);
	json_decref(wait_for(&f, "started", 51, 5000));
	send_json(&f, wire_cancel(51, 7));
	send_json(&f, wire_cancel(51, 1));
	m = wait_for(&f, "finished", 51, 5000);
	cr_assert_str_eq(str(m, "status"), "cancelled");
	json_decref(m);
	stop(&f);
}

Test(executor, slots_sleep_noop_and_bad_frames, .timeout = 20)
{
	struct fx f;
	const char *extra[] = {"--slots", "1", NULL};
	start(&f, extra, NULL);
	send_task(&f, 60, json_pack("{s:s, s:i}", "type", "sleep", "duration_ms", 800), 0, NULL);
	json_decref(wait_for(&f, "started", 60, 5000));
	json_t *m = run(&f, 61, json_pack("{s:s}", "type", "noop"), 0, NULL);
	cr_assert_str_eq(str(m, "status"), "rejected");
	cr_assert_str_eq(str(m, "error"), "no free slot");
	json_decref(m);
	json_t *hb = wait_for(&f, "heartbeat", 0, 2000);
	cr_assert_eq(num(hb, "free_slots"), 0);
	cr_assert_eq(num(json_array_get(json_object_get(hb, "running"), 0), "task_run_id"), 60);
	json_decref(hb);
	m = wait_for(&f, "finished", 60, 5000);
	cr_assert_str_eq(str(m, "status"), "succeeded");
	cr_assert_geq(num(m, "duration_ms"), 790);
	json_decref(m);
	m = run(&f, 62, json_pack("{s:s}", "type", "noop"), 0, NULL);
	cr_assert_str_eq(str(m, "status"), "succeeded");
	json_decref(m);
	m = run(&f, 63, json_pack("{s:s, s:i}", "type", "sleep", "duration_ms", 5000), 200, NULL);
	cr_assert_str_eq(str(m, "status"), "timeout");
	json_decref(m);
	/* garbage is logged and ignored; a broken task is reported failed */
	zmq_send(f.push, "not json", 8, 0);
	send_json(&f,
	          json_pack("{s:s, s:i, s:i}", "type", "task", "task_run_id", 64, "attempt", 1));
	m = wait_for(&f, "finished", 64, 5000);
	cr_assert_str_eq(str(m, "status"), "failed");
	cr_assert(strstr(str(m, "error"), "missing field 'run_id'"), "%s", str(m, "error"));
	json_decref(m);
	stop(&f);
}

Test(executor, sigterm_drains, .timeout = 20)
{
	struct fx f;
	start(&f, NULL, NULL);
	json_decref(wait_for(&f, "hello", 0, 5000));
	send_task(&f, 70, sh_step("sleep 1; echo done"), 0, NULL);
	json_decref(wait_for(&f, "started", 70, 5000));
	kill(f.pid, SIGTERM);
	json_t *hb;
	for (;;) {
		hb = wait_for(&f, "heartbeat", 0, 2000);
		if (json_is_true(json_object_get(hb, "draining")))
			break;
		json_decref(hb);
	}
	cr_assert_eq(num(hb, "free_slots"), 0);
	json_decref(hb);
	json_t *m = run(&f, 71, json_pack("{s:s}", "type", "noop"), 0, NULL);
	cr_assert_str_eq(str(m, "status"), "rejected");
	cr_assert(strstr(str(m, "error"), "draining"), "%s", str(m, "error"));
	json_decref(m);
	m = wait_for(&f, "finished", 70, 5000);
	cr_assert_str_eq(str(m, "status"), "succeeded");
	cr_assert_str_eq(str(m, "output"), "done\n");
	json_decref(m);
	json_decref(wait_for(&f, "bye", 0, 3000));
	int st;
	cr_assert_eq(waitpid(f.pid, &st, 0), f.pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
	f.pid = 0;
	stop(&f);
}

Test(executor, drain_timeout_and_second_sigterm, .timeout = 20)
{
	struct fx f;
	const char *extra[] = {"--drain-timeout", "300ms", NULL};
	start(&f, extra, NULL);
	send_task(&f, 80, sh_step("sleep 30"), 0, NULL);
	json_decref(wait_for(&f, "started", 80, 5000));
	kill(f.pid, SIGTERM);
	json_t *m = wait_for(&f, "finished", 80, 5000);
	cr_assert_str_eq(str(m, "status"), "cancelled");
	cr_assert_str_eq(str(m, "error"), "executor shut down");
	json_decref(m);
	json_decref(wait_for(&f, "bye", 0, 3000));
	int st;
	cr_assert_eq(waitpid(f.pid, &st, 0), f.pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	f.pid = 0;
	stop(&f);

	/* a second SIGTERM does not wait for the drain */
	start(&f, NULL, NULL);
	send_task(&f, 81, sh_step("trap '' TERM; sleep 30"), 0, NULL);
	json_decref(wait_for(&f, "started", 81, 5000));
	kill(f.pid, SIGTERM);
	sleep_ms(200);
	kill(f.pid, SIGTERM);
	m = wait_for(&f, "finished", 81, 3000);
	cr_assert_str_eq(str(m, "status"), "cancelled");
	json_decref(m);
	cr_assert_eq(waitpid(f.pid, &st, 0), f.pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	f.pid = 0;
	stop(&f);
}

Test(executor, secrets_expanded_and_masked, .timeout = 20)
{
	struct srv s;
	srv_start(&s);
	struct fx f;
	char dirarg[64] = "/tmp/wf-secrets-test-XXXXXX";
	cr_assert_not_null(mkdtemp(dirarg));
	char path[160];
	snprintf(path, sizeof path, "%s/db-pass", dirarg);
	FILE *fp = fopen(path, "w");
	cr_assert_not_null(fp);
	fputs("file-secret-42\n", fp);
	fclose(fp);
	const char *envs[] = {"WF_SECRET_TOKEN=s3cr3t-t0ken", NULL};
	const char *extra[] = {"--secrets-dir", dirarg, NULL};
	start(&f, extra, envs);
	const char *argv[] = {
	    "/bin/sh",          "-c", "echo \"token=$1 db=$DB\"; echo \"$1\" >&2", "sh",
	    "${secrets.TOKEN}", NULL};
	json_t *step = argv_step(argv);
	json_object_set_new(step, "env", json_pack("{s:s}", "DB", "${secrets.db-pass}"));
	json_t *m = run(&f, 90, step, 0, NULL);
	cr_assert_str_eq(str(m, "status"), "succeeded", "%s", str(m, "error"));
	cr_assert_str_eq(str(m, "output"), "token=*** db=***\n***\n");
	json_decref(m);
	/* nor through WF_OUTPUT */
	const char *argv4[] = {
	    "/bin/sh",          "-c", "printf '{\"k\":[\"x%sx\"]}' \"$1\" > \"$WF_OUTPUT\"", "sh",
	    "${secrets.TOKEN}", NULL};
	m = run(&f, 94, argv_step(argv4), 0, NULL);
	cr_assert_str_eq(str(m, "status"), "succeeded", "%s", str(m, "error"));
	cr_assert_str_eq(json_string_value(json_array_get(
	                     json_object_get(json_object_get(m, "outputs"), "k"), 0)),
	                 "x***x");
	json_decref(m);
	/* the real value reached the program: it can compare it */
	const char *argv2[] = {"/bin/sh",          "-c", "test \"$1\" = s3cr3t-t0ken", "sh",
	                       "${secrets.TOKEN}", NULL};
	m = run(&f, 91, argv_step(argv2), 0, NULL);
	cr_assert_str_eq(str(m, "status"), "succeeded");
	json_decref(m);
	/* http header */
	json_t *h = http_step(&s, "/echo-auth", "GET");
	json_object_set_new(h, "headers",
	                    json_pack("{s:s}", "Authorization", "Bearer ${secrets.TOKEN}"));
	m = run(&f, 92, h, 0, NULL);
	cr_assert_str_eq(str(m, "status"), "succeeded", "%s", str(m, "error"));
	cr_assert_str_eq(str(m, "output"), "Bearer ***");
	json_decref(m);
	const char *argv3[] = {"/bin/echo", "${secrets.NOPE}", NULL};
	m = run(&f, 93, argv_step(argv3), 0, NULL);
	cr_assert_str_eq(str(m, "status"), "failed");
	char want[160];
	snprintf(want, sizeof want, "secret NOPE is not defined on executor %s", f.id);
	cr_assert_str_eq(str(m, "error"), want);
	json_decref(m);
	stop(&f);
	char cmd[160];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dirarg);
	(void)!system(cmd);
	MHD_stop_daemon(s.d);
}

Test(executor, bad_usage_exits_2, .timeout = 20)
{
	const char *bin = getenv("WF_BIN") ? getenv("WF_BIN") : "bin";
	char cmd[300];
	snprintf(cmd, sizeof cmd, "%s/wf-executor --slots zero 2>/dev/null", bin);
	int st = system(cmd);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %d", st);
	snprintf(cmd, sizeof cmd, "%s/wf-executor --help >/dev/null", bin);
	st = system(cmd);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

Test(executor, config_file_env_and_reload, .timeout = 20)
{
	char dir[64] = "/tmp/wf-conf-test-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char conf[128], arg[160];
	snprintf(conf, sizeof conf, "%s/executor.conf", dir);
	FILE *fp = fopen(conf, "w");
	fputs("# test\nslots = 2\nlabel=x\npool=filepool\n", fp);
	fclose(fp);
	snprintf(arg, sizeof arg, "%s", conf);
	const char *extra[] = {"--config", arg, "--hello-every", "2", NULL};
	const char *envs[] = {"WF_POOL=envpool", NULL};
	struct fx f;
	start(&f, extra, envs);
	json_t *h = wait_for(&f, "hello", 0, 5000);
	cr_assert_str_eq(str(h, "pool"), "envpool", "the environment wins over the file");
	cr_assert_eq(num(h, "slots"), 2);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(h, "labels"), 0)), "x");
	json_decref(h);
	/* hello comes again every 2 heartbeats */
	json_decref(wait_for(&f, "hello", 0, 2000));
	fp = fopen(conf, "w");
	fputs("slots=5\nlabel=y\nlabel=z\nheartbeat-ms=100\n", fp);
	fclose(fp);
	kill(f.pid, SIGHUP);
	for (;;) {
		h = wait_for(&f, "hello", 0, 3000);
		if (num(h, "slots") == 5)
			break;
		json_decref(h);
	}
	cr_assert_eq(json_array_size(json_object_get(h, "labels")), 2);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(h, "labels"), 1)), "z");
	json_decref(h);
	/* a broken file changes nothing and the executor lives on */
	fp = fopen(conf, "w");
	fputs("slots=many\n", fp);
	fclose(fp);
	kill(f.pid, SIGHUP);
	json_t *m = run(&f, 100, json_pack("{s:s}", "type", "noop"), 0, NULL);
	cr_assert_str_eq(str(m, "status"), "succeeded");
	json_decref(m);
	json_t *hb = wait_for(&f, "heartbeat", 0, 2000);
	cr_assert_eq(num(hb, "free_slots"), 5);
	json_decref(hb);
	stop(&f);
	snprintf(arg, sizeof arg, "rm -rf %s", dir);
	(void)!system(arg);
}

Test(executor, every_engine_gets_every_result, .timeout = 20)
{
	char second[64];
	snprintf(second, sizeof second, "tcp://127.0.0.1:%d", free_port());
	struct fx f;
	const char *extra[] = {"--engine", second, NULL};
	start(&f, extra, NULL);
	void *pull2 = zmq_socket(f.ctx, ZMQ_PULL);
	int zero = 0;
	zmq_setsockopt(pull2, ZMQ_LINGER, &zero, sizeof zero);
	/* the second engine comes up late: what was sent meanwhile waits for it */
	json_t *m = run(&f, 110, sh_step("echo one"), 0, NULL);
	cr_assert_str_eq(str(m, "output"), "one\n");
	json_decref(m);
	cr_assert_eq(zmq_bind(pull2, second), 0);
	void *keep = f.pull;
	f.pull = pull2;
	json_decref(wait_for(&f, "hello", 0, 5000));
	m = wait_for(&f, "finished", 110, 5000);
	cr_assert_str_eq(str(m, "status"), "succeeded");
	json_decref(m);
	f.pull = keep;
	zmq_close(pull2);
	stop(&f);
}

Test(executor, wildcard_listen_is_advertised_by_name, .timeout = 20)
{
	char listen[64], want[400], host[256] = "";
	int port = free_port();
	snprintf(listen, sizeof listen, "tcp://*:%d", port);
	cr_assert_eq(gethostname(host, sizeof host - 1), 0);
	snprintf(want, sizeof want, "tcp://%s:%d", host, port);
	/* A wildcard bind is never plaintext (anyone could send it work), so
	 * the advertised endpoint is checked on a CURVE configuration, and a
	 * plaintext one must be refused. */
	char pub[41], sec[41], err[256];
	cr_assert_eq(zmq_curve_keypair(pub, sec), 0);
	char *argv[] = {"wf-executor", "--listen",     listen, "--curve-secret",
	                "unused.key",  "--engine-key", pub,    NULL};
	struct exec_config c;
	cr_assert_eq(exec_config_parse(&c, 7, argv, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(c.advertise, want);
	exec_config_release(&c);
	char *plain[] = {"wf-executor", "--listen", listen, "--insecure-plaintext", NULL};
	cr_assert_eq(exec_config_parse(&c, 4, plain, err, sizeof err), -1);
	cr_assert(strstr(err, "not loopback"), "%s", err);
	exec_config_release(&c);
}
