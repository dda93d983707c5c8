/* Runs over the REST API: run (and --wait), runs, show, logs, resume,
 * cancel. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/output.h"
#include "dsl.h"
#include "util.h"
#include "xalloc.h"

#define POLL_MS 300
/* How long --wait keeps trying while the engine does not answer. */
#define UNREACHABLE_GRACE_MS 15000

static int run_final(const char *state)
{
	return state && (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
	                 strcmp(state, "cancelled") == 0);
}

static int task_final(const char *state)
{
	static const char *const fin[] = {"succeeded",       "failed",  "cancelled",
	                                  "upstream_failed", "skipped", "dead"};
	for (size_t i = 0; state && i < sizeof fin / sizeof *fin; i++)
		if (strcmp(state, fin[i]) == 0)
			return 1;
	return 0;
}

/* A run id: digits only, so it cannot change the path. */
static int parse_run_id(const char *usage, const char *s, long long *id)
{
	int64_t v;
	if (parse_int64(s, 1, INT64_MAX, &v) != 0)
		return cli_usage_error(usage, "'%s' is not a run id (a positive number)", s);
	*id = v;
	return -1;
}

static int get_run(long long id, json_t **run)
{
	char path[64], what[48];
	snprintf(path, sizeof path, "/api/v1/runs/%lld", id);
	snprintf(what, sizeof what, "run %lld", id);
	return cli_call("GET", path, NULL, NULL, what, run);
}

/* The last entry of a task run's attempts, or NULL. */
static json_t *last_attempt(const json_t *tr)
{
	json_t *a = json_object_get(tr, "attempts");
	size_t n = json_array_size(a);
	return n ? json_array_get(a, n - 1) : NULL;
}

/* How long a task run took (finished) or has been taking (running). */
static int64_t task_duration(const json_t *tr)
{
	json_t *a = last_attempt(tr);
	if (!a)
		return -1;
	json_t *d = json_object_get(a, "duration_ms");
	if (json_is_integer(d))
		return json_integer_value(d);
	const char *start =
	    cli_str(a, "started_at") ? cli_str(a, "started_at") : cli_str(a, "claimed_at");
	const char *state = cli_str(tr, "state");
	if (state && strcmp(state, "running") == 0)
		return cli_elapsed_ms(start, NULL);
	return cli_elapsed_ms(start, cli_str(a, "finished_at"));
}

/* What a task run waits for, or why it failed. Borrowed. */
static const char *task_note(const json_t *tr)
{
	const char *state = cli_str(tr, "state");
	if (!state)
		return NULL;
	if (strcmp(state, "pending") == 0 || strcmp(state, "queued") == 0 ||
	    strcmp(state, "retrying") == 0) {
		const char *w = cli_str(tr, "wait_reason");
		if (w || strcmp(state, "retrying") != 0)
			return w;
	}
	if (strcmp(state, "succeeded") == 0 || strcmp(state, "running") == 0)
		return NULL;
	const char *err = cli_str(tr, "error");
	json_t *a = last_attempt(tr);
	if (!err && a)
		err = cli_str(a, "error");
	return err;
}

/* The task runs in topological order (by their needs). New array. */
static size_t *task_order(const json_t *trs)
{
	size_t n = json_array_size(trs);
	size_t *order = xcalloc(n ? n : 1, sizeof *order);
	cli_topo_order(trs, "task", "needs", order, NULL);
	return order;
}

static struct cli_table *task_table(const json_t *run)
{
	const char *hdr[] = {"TASK", "STATE", "ATTEMPT", "EXECUTOR", "DURATION", "WAITING/ERROR"};
	struct cli_table *t = cli_table_new(6, hdr);
	json_t *trs = json_object_get(run, "task_runs");
	size_t *order = task_order(trs);
	for (size_t k = 0; k < json_array_size(trs); k++) {
		json_t *tr = json_array_get(trs, order[k]);
		char att[32], dur[32];
		long long a = cli_int(tr, "attempt", 0), max = cli_int(tr, "max_attempts", 0);
		if (max > 0)
			snprintf(att, sizeof att, "%lld/%lld", a, max);
		else
			snprintf(att, sizeof att, "%lld", a);
		cli_fmt_duration(task_duration(tr), dur, sizeof dur);
		const char *exec = cli_str(tr, "executor_id");
		json_t *la = last_attempt(tr);
		if (!exec && la)
			exec = cli_str(la, "executor_id");
		const char *row[] = {
		    cli_str(tr, "task"), cli_str(tr, "state"), a ? att : "-", exec, dur,
		    task_note(tr)};
		cli_table_add(t, row);
	}
	free(order);
	return t;
}

/* "3 tasks: 2 succeeded, 1 failed" into out. */
static void state_counts(const json_t *run, char *out, size_t outlen)
{
	static const char *const states[] = {"succeeded", "failed",  "dead",    "upstream_failed",
	                                     "cancelled", "skipped", "running", "retrying",
	                                     "queued",    "pending"};
	json_t *trs = json_object_get(run, "task_runs");
	size_t n = json_array_size(trs), used;
	used = (size_t)snprintf(out, outlen, "%zu task%s", n, n == 1 ? "" : "s");
	const char *sep = ": ";
	for (size_t s = 0; s < sizeof states / sizeof *states && used < outlen; s++) {
		int c = 0;
		for (size_t i = 0; i < n; i++) {
			const char *st = cli_str(json_array_get(trs, i), "state");
			c += st && strcmp(st, states[s]) == 0;
		}
		if (c) {
			used += (size_t)snprintf(out + used, outlen - used, "%s%d %s", sep, c,
			                         states[s]);
			sep = ", ";
		}
	}
}

static void print_run_header(const json_t *run)
{
	char created[64], started[64], finished[64], dur[32];
	cli_fmt_time(cli_str(run, "created_at"), created, sizeof created);
	cli_fmt_time(cli_str(run, "started_at"), started, sizeof started);
	cli_fmt_time(cli_str(run, "finished_at"), finished, sizeof finished);
	const char *start =
	    cli_str(run, "started_at") ? cli_str(run, "started_at") : cli_str(run, "created_at");
	cli_fmt_duration(cli_elapsed_ms(start, cli_str(run, "finished_at")), dur, sizeof dur);
	printf("run %lld  %s v%lld  %s\n", cli_int(run, "id", 0),
	       cli_str(run, "workflow") ? cli_str(run, "workflow") : "?",
	       cli_int(run, "version", 0), cli_str(run, "state") ? cli_str(run, "state") : "?");
	printf("trigger %s, created %s, started %s, finished %s (%s%s)\n",
	       cli_str(run, "trigger") ? cli_str(run, "trigger") : "-", created, started, finished,
	       dur, cli_str(run, "finished_at") ? "" : " so far");
	json_t *params = json_object_get(run, "params");
	if (json_object_size(params)) {
		printf("params");
		const char *k;
		json_t *v;
		json_object_foreach(params, k, v)
		{
			if (json_is_string(v)) {
				printf(" %s=%s", k, json_string_value(v));
			} else {
				char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
				printf(" %s=%s", k, s ? s : "?");
				free(s);
			}
		}
		printf("\n");
	}
}

/* ---------------------------------------------------------------- wait */

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Prints one line per task state change (not a terminal). seen holds
 * "task_run_id:attempt:state" keys already printed. */
static void print_changes(const json_t *run, json_t *seen)
{
	json_t *trs = json_object_get(run, "task_runs");
	size_t *order = task_order(trs);
	for (size_t k = 0; k < json_array_size(trs); k++) {
		json_t *tr = json_array_get(trs, order[k]);
		char key[64];
		snprintf(key, sizeof key, "%lld", cli_int(tr, "id", (long long)order[k]));
		char *val = xasprintf("%s/%lld", cli_str(tr, "state") ? cli_str(tr, "state") : "?",
		                      cli_int(tr, "attempt", 0));
		const char *old = cli_str(seen, key);
		if (!old || strcmp(old, val) != 0) {
			char now[64], att[32] = "", dur[32];
			cli_fmt_time_ms(wall_ms(), now, sizeof now);
			long long a = cli_int(tr, "attempt", 0);
			if (a)
				snprintf(att, sizeof att, " attempt %lld/%lld", a,
				         cli_int(tr, "max_attempts", a));
			const char *exec = cli_str(tr, "executor_id");
			const char *note = task_note(tr);
			const char *st = cli_str(tr, "state");
			dur[0] = '\0';
			if (task_final(st) && task_duration(tr) >= 0) {
				char d[24];
				cli_fmt_duration(task_duration(tr), d, sizeof d);
				snprintf(dur, sizeof dur, " in %s", d);
			}
			printf("%s  %s %s%s%s%s%s%s%s\n", now + 11, cli_str(tr, "task"),
			       st ? st : "?", att, exec ? " on " : "", exec ? exec : "", dur,
			       note ? ": " : "", note ? note : "");
			json_object_set_new(seen, key, json_string(val));
		}
		free(val);
	}
	fflush(stdout);
	free(order);
}

/* Redraws the task table in place (a terminal). *lines is how many lines
 * the previous drawing took. */
static void redraw(const json_t *run, int *lines)
{
	if (*lines > 0)
		printf("\033[%dA\r\033[J", *lines);
	char counts[256], dur[32];
	state_counts(run, counts, sizeof counts);
	cli_fmt_duration(cli_elapsed_ms(cli_str(run, "created_at"), cli_str(run, "finished_at")),
	                 dur, sizeof dur);
	printf("run %lld %s %s: %s\n", cli_int(run, "id", 0), cli_str(run, "state"), dur, counts);
	struct cli_table *t = task_table(run);
	int width = cli_term_width();
	*lines = 1 + cli_table_print(t, stdout, width > 1 ? width - 1 : 0);
	cli_table_free(t);
	fflush(stdout);
}

/* Polls the run until it is final. Returns the exit code. */
static int wait_run(long long id, int64_t timeout_ms)
{
	int tty = !cli_opts.json && cli_stdout_tty(), lines = 0, rc;
	json_t *seen = json_object(), *run = NULL;
	int64_t start = mono_ms(), down_since = -1;
	struct sigaction sa = {0}, old_sa;
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, &old_sa);
	for (;;) {
		json_decref(run);
		run = NULL;
		struct cli_response r;
		char path[64];
		snprintf(path, sizeof path, "/api/v1/runs/%lld", id);
		int sent = cli_request("GET", path, NULL, NULL, &r);
		if (sent == 0 && r.status == 200 && json_is_object(r.json)) {
			run = json_incref(r.json);
			down_since = -1;
		} else if ((sent != 0 || r.status >= 500) &&
		           (down_since < 0 || mono_ms() - down_since < UNREACHABLE_GRACE_MS)) {
			/* the engine restarts or fails over: keep trying a while */
			if (down_since < 0)
				down_since = mono_ms();
		} else {
			char what[48];
			snprintf(what, sizeof what, "run %lld", id);
			rc = cli_report_error(&r, what);
			if (sent == 0 && r.status == 200)
				rc = EXIT_FAIL; /* 200 but not a run */
			cli_response_release(&r);
			goto out;
		}
		cli_response_release(&r);
		if (run) {
			if (tty)
				redraw(run, &lines);
			else if (!cli_opts.json)
				print_changes(run, seen);
			if (run_final(cli_str(run, "state")))
				break;
		}
		if (interrupted) {
			fprintf(stderr,
			        "\nwfctl: stopped waiting; run %lld goes on (wfctl show %lld, "
			        "wfctl cancel %lld)\n",
			        id, id, id);
			rc = 130;
			goto out;
		}
		if (timeout_ms > 0 && mono_ms() - start >= timeout_ms) {
			char d[32];
			cli_fmt_duration(timeout_ms, d, sizeof d);
			fprintf(
			    stderr,
			    "wfctl: run %lld not finished after %s; it goes on (wfctl show %lld)\n",
			    id, d, id);
			rc = EXIT_FAIL;
			goto out;
		}
		sleep_ms(POLL_MS);
	}
	const char *state = cli_str(run, "state");
	if (cli_opts.json) {
		cli_print_json(run);
	} else {
		char counts[256], dur[32];
		state_counts(run, counts, sizeof counts);
		const char *from = cli_str(run, "started_at") ? cli_str(run, "started_at")
		                                              : cli_str(run, "created_at");
		cli_fmt_duration(cli_elapsed_ms(from, cli_str(run, "finished_at")), dur,
		                 sizeof dur);
		printf("run %lld %s in %s (%s)\n", id, state, dur, counts);
		if (strcmp(state, "succeeded") != 0) {
			json_t *trs = json_object_get(run, "task_runs");
			size_t i;
			json_t *tr;
			json_array_foreach(trs, i, tr)
			{
				const char *st = cli_str(tr, "state");
				if (st && (strcmp(st, "failed") == 0 || strcmp(st, "dead") == 0))
					printf("  %s %s: %s (wfctl logs %lld %s)\n",
					       cli_str(tr, "task"), st,
					       task_note(tr) ? task_note(tr) : "no error recorded",
					       id, cli_str(tr, "task"));
			}
		}
	}
	rc = strcmp(state, "succeeded") == 0 ? EXIT_OK : EXIT_FAIL;
out:
	sigaction(SIGINT, &old_sa, NULL);
	json_decref(run);
	json_decref(seen);
	return rc;
}

/* ----------------------------------------------------------------- run */

static const char usage_run[] =
    "usage: wfctl run WORKFLOW [-p NAME=VALUE]... [--idempotency-key KEY]\n"
    "                 [--wait] [--timeout DURATION] [--json]\n"
    "\n"
    "Starts a run of the workflow's current version and prints its id.\n"
    "\n"
    "options:\n"
    "  -p, --param NAME=VALUE   a parameter (repeatable)\n"
    "  --idempotency-key KEY    a repeated call with the same key returns the same run\n"
    "  --wait                   follow the run until it finishes (Ctrl-C stops waiting,\n"
    "                           not the run)\n"
    "  --timeout DURATION       with --wait: give up waiting after this long (10m, 1h)\n"
    "\n"
    "exit status: 0 started (or succeeded with --wait), 1 failed or cancelled,\n"
    "3 engine unreachable, 4 denied, 5 no such workflow\n";

int cmd_run(int argc, char **argv)
{
	const char *idem = NULL, *timeout = NULL;
	int wait = 0, rc;
	struct cli_strv pos = {0}, params = {0};
	json_t *body = NULL, *resp = NULL;
	char *path = NULL, *what = NULL, *hdr = NULL, *name = NULL;
	const struct cli_opt opts[] = {{"--param", "-p", NULL, NULL, &params},
	                               {"--idempotency-key", NULL, &idem, NULL, NULL},
	                               {"--wait", "-w", NULL, &wait, NULL},
	                               {"--timeout", NULL, &timeout, NULL, NULL},
	                               {0}};
	rc = cli_parse_args(argc, argv, opts, usage_run, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n != 1) {
		rc = cli_usage_error(usage_run, "run: expected one workflow name");
		goto out;
	}
	long long timeout_ms = 0;
	if (timeout && (dsl_parse_duration(timeout, &timeout_ms) != 0 || timeout_ms <= 0)) {
		rc = cli_usage_error(usage_run, "--timeout '%s': expected a duration such as 10m",
		                     timeout);
		goto out;
	}
	if (idem && (!*idem || strpbrk(idem, "\r\n"))) {
		rc = cli_usage_error(usage_run, "--idempotency-key: expected one non-empty line");
		goto out;
	}
	json_t *pobj = json_object();
	body = json_pack("{s:o}", "params", pobj);
	for (int i = 0; i < params.n; i++) {
		const char *eq = strchr(params.v[i], '=');
		if (!eq || eq == params.v[i]) {
			rc =
			    cli_usage_error(usage_run, "-p '%s': expected NAME=VALUE", params.v[i]);
			goto out;
		}
		char *k = xstrndup(params.v[i], (size_t)(eq - params.v[i]));
		json_t *v = json_string(eq + 1);
		if (!v) {
			free(k);
			rc = cli_usage_error(usage_run, "-p '%s': not valid UTF-8", params.v[i]);
			goto out;
		}
		json_object_set_new(pobj, k, v);
		free(k);
	}
	name = cli_escape(pos.v[0]);
	path = xasprintf("/api/v1/workflows/%s/runs", name);
	what = xasprintf("workflow %s", pos.v[0]);
	if (idem)
		hdr = xasprintf("Idempotency-Key: %s", idem);
	const char *headers[] = {hdr, NULL};
	rc = cli_call("POST", path, body, headers, what, &resp);
	if (rc != EXIT_OK)
		goto out;
	long long id = cli_int(resp, "run_id", 0);
	if (id <= 0) {
		fprintf(stderr, "wfctl: %s: the engine's answer has no run_id\n", what);
		rc = EXIT_FAIL;
		goto out;
	}
	if (!wait) {
		if (cli_opts.json)
			cli_print_json(resp);
		else
			printf("%lld\n", id);
		goto out;
	}
	if (!cli_opts.json)
		fprintf(stderr, "run %lld of %s started\n", id, pos.v[0]);
	rc = wait_run(id, timeout_ms);
out:
	json_decref(body);
	json_decref(resp);
	free(path);
	free(what);
	free(hdr);
	free(name);
	cli_strv_release(&pos);
	cli_strv_release(&params);
	return rc;
}

/* ---------------------------------------------------------------- runs */

static const char usage_runs[] =
    "usage: wfctl runs [--workflow NAME] [--state STATE] [--limit N] [--cursor C] [--json]\n"
    "\n"
    "Lists runs, newest first.\n"
    "\n"
    "options:\n"
    "  --workflow NAME   only this workflow's runs\n"
    "  --state STATE     queued, running, succeeded, failed, cancelled or paused\n"
    "  --limit N         at most N runs (default 20)\n"
    "  --cursor C        the next page, as printed after a full page\n";

int cmd_runs(int argc, char **argv)
{
	const char *wf = NULL, *state = NULL, *limit = NULL, *cursor = NULL;
	struct cli_strv pos = {0};
	json_t *resp = NULL;
	char *path = NULL;
	const struct cli_opt opts[] = {{"--workflow", "-w", &wf, NULL, NULL},
	                               {"--state", "-s", &state, NULL, NULL},
	                               {"--limit", "-n", &limit, NULL, NULL},
	                               {"--cursor", NULL, &cursor, NULL, NULL},
	                               {0}};
	int rc = cli_parse_args(argc, argv, opts, usage_runs, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n) {
		rc = cli_usage_error(usage_runs, "runs: unexpected '%s'", pos.v[0]);
		goto out;
	}
	int64_t lim = 20;
	if (limit && parse_int64(limit, 1, 10000, &lim) != 0) {
		rc = cli_usage_error(usage_runs, "--limit '%s': expected a number from 1 to 10000",
		                     limit);
		goto out;
	}
	path = xasprintf("/api/v1/runs?limit=%lld", (long long)lim);
	const char *keys[] = {"workflow", "state", "cursor"};
	const char *vals[] = {wf, state, cursor};
	for (int i = 0; i < 3; i++) {
		if (!vals[i])
			continue;
		char *e = cli_escape(vals[i]);
		char *more = xasprintf("%s&%s=%s", path, keys[i], e);
		free(e);
		free(path);
		path = more;
	}
	rc = cli_call("GET", path, NULL, NULL, "runs", &resp);
	if (rc != EXIT_OK)
		goto out;
	if (cli_opts.json) {
		cli_print_json(resp);
		goto out;
	}
	json_t *items = json_object_get(resp, "items");
	if (json_array_size(items) == 0) {
		printf("no runs\n");
		goto out;
	}
	const char *hdr[] = {"ID",      "WORKFLOW", "VERSION", "STATE",
	                     "TRIGGER", "CREATED",  "DURATION"};
	struct cli_table *t = cli_table_new(7, hdr);
	size_t i;
	json_t *run;
	json_array_foreach(items, i, run)
	{
		char id[32], ver[32], created[64], dur[32];
		snprintf(id, sizeof id, "%lld", cli_int(run, "id", 0));
		snprintf(ver, sizeof ver, "%lld", cli_int(run, "version", 0));
		cli_fmt_time(cli_str(run, "created_at"), created, sizeof created);
		const char *from = cli_str(run, "started_at") ? cli_str(run, "started_at")
		                                              : cli_str(run, "created_at");
		int64_t d = -1;
		if (cli_str(run, "finished_at") ||
		    strcmp(cli_str(run, "state") ? cli_str(run, "state") : "", "running") == 0)
			d = cli_elapsed_ms(from, cli_str(run, "finished_at"));
		cli_fmt_duration(d, dur, sizeof dur);
		const char *row[] = {id,
		                     cli_str(run, "workflow"),
		                     ver,
		                     cli_str(run, "state"),
		                     cli_str(run, "trigger"),
		                     created,
		                     dur};
		cli_table_add(t, row);
	}
	cli_table_print(t, stdout, 0);
	cli_table_free(t);
	json_t *next = json_object_get(resp, "next_cursor");
	if (json_is_string(next) || json_is_integer(next)) {
		char *s = json_dumps(next, JSON_ENCODE_ANY);
		if (s && s[0] == '"') {
			s[strlen(s) - 1] = '\0';
			printf("more: wfctl runs --cursor %s\n", s + 1);
		} else if (s) {
			printf("more: wfctl runs --cursor %s\n", s);
		}
		free(s);
	}
out:
	json_decref(resp);
	free(path);
	cli_strv_release(&pos);
	return rc;
}

/* ---------------------------------------------------------------- show */

static const char usage_show[] =
    "usage: wfctl show RUN [--json]\n"
    "\n"
    "Shows a run: its header, then one line per task run with its state,\n"
    "attempt, executor, duration, and what it waits for or why it failed.\n";

int cmd_show(int argc, char **argv)
{
	struct cli_strv pos = {0};
	json_t *run = NULL;
	long long id = 0;
	int rc = cli_parse_args(argc, argv, NULL, usage_show, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n != 1) {
		rc = cli_usage_error(usage_show, "show: expected one run id");
		goto out;
	}
	if ((rc = parse_run_id(usage_show, pos.v[0], &id)) >= 0)
		goto out;
	rc = get_run(id, &run);
	if (rc != EXIT_OK)
		goto out;
	if (cli_opts.json) {
		cli_print_json(run);
		goto out;
	}
	print_run_header(run);
	printf("\n");
	struct cli_table *t = task_table(run);
	cli_table_print(t, stdout, 0);
	cli_table_free(t);
out:
	json_decref(run);
	cli_strv_release(&pos);
	return rc;
}

/* ---------------------------------------------------------------- logs */

static const char usage_logs[] =
    "usage: wfctl logs RUN TASK [--attempt N] [--json]\n"
    "\n"
    "Prints the output (the tail of stdout and stderr) of a task's attempt, the\n"
    "last one unless --attempt is given; a header and the error go to stderr.\n";

static void print_attempt(const json_t *tr, const json_t *a)
{
	char dur[32], when[64], code[48] = "", exec[160] = "";
	cli_fmt_duration(cli_int(a, "duration_ms", -1), dur, sizeof dur);
	cli_fmt_time(cli_str(a, "started_at") ? cli_str(a, "started_at") : cli_str(a, "claimed_at"),
	             when, sizeof when);
	if (json_is_integer(json_object_get(a, "exit_code")))
		snprintf(code, sizeof code, ", exit %lld", cli_int(a, "exit_code", 0));
	else if (json_is_integer(json_object_get(a, "http_status")))
		snprintf(code, sizeof code, ", HTTP %lld", cli_int(a, "http_status", 0));
	if (cli_str(a, "executor_id"))
		snprintf(exec, sizeof exec, " on %s", cli_str(a, "executor_id"));
	fprintf(stderr, "--- %s attempt %lld: %s%s, %s%s, started %s%s ---\n", cli_str(tr, "task"),
	        cli_int(a, "attempt", 0), cli_str(a, "state") ? cli_str(a, "state") : "?", code,
	        dur, exec, when, json_is_true(json_object_get(a, "stale")) ? " (stale)" : "");
	fflush(stderr);
	const char *out = cli_str(a, "output");
	if (out && *out) {
		fputs(out, stdout);
		if (out[strlen(out) - 1] != '\n')
			fputc('\n', stdout);
	} else {
		fprintf(stderr, "(no output)\n");
	}
	fflush(stdout);
	if (cli_str(a, "error"))
		fprintf(stderr, "error: %s\n", cli_str(a, "error"));
}

int cmd_logs(int argc, char **argv)
{
	const char *attempt_s = NULL;
	struct cli_strv pos = {0};
	json_t *run = NULL, *picked = json_array();
	long long id = 0;
	int64_t want = 0;
	const struct cli_opt opts[] = {{"--attempt", "-a", &attempt_s, NULL, NULL}, {0}};
	int rc = cli_parse_args(argc, argv, opts, usage_logs, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n != 2) {
		rc = cli_usage_error(usage_logs, "logs: expected a run id and a task name");
		goto out;
	}
	if ((rc = parse_run_id(usage_logs, pos.v[0], &id)) >= 0)
		goto out;
	if (attempt_s && parse_int64(attempt_s, 1, 1000000, &want) != 0) {
		rc = cli_usage_error(usage_logs, "--attempt '%s': expected a positive number",
		                     attempt_s);
		goto out;
	}
	rc = get_run(id, &run);
	if (rc != EXIT_OK)
		goto out;
	json_t *trs = json_object_get(run, "task_runs");
	size_t i, found = 0;
	json_t *tr;
	json_array_foreach(trs, i, tr)
	{
		const char *t = cli_str(tr, "task");
		if (!t || strcmp(t, pos.v[1]) != 0)
			continue;
		found++;
		json_t *atts = json_object_get(tr, "attempts");
		json_t *a = NULL;
		if (want) {
			size_t j;
			json_t *x;
			json_array_foreach(atts, j, x) if (cli_int(x, "attempt", 0) == want) a = x;
		} else {
			a = last_attempt(tr);
		}
		if (a)
			json_array_append_new(picked,
			                      json_pack("{s:O,s:O}", "task_run", tr, "attempt", a));
		else if (!want)
			fprintf(stderr, "wfctl: run %lld: task %s has not started yet (%s%s%s)\n",
			        id, pos.v[1], cli_str(tr, "state") ? cli_str(tr, "state") : "?",
			        task_note(tr) ? ": " : "", task_note(tr) ? task_note(tr) : "");
	}
	if (!found) {
		fprintf(stderr, "wfctl: run %lld: no task '%s'\n", id, pos.v[1]);
		rc = EXIT_NOTFOUND;
		goto out;
	}
	if (want && json_array_size(picked) == 0) {
		fprintf(stderr, "wfctl: run %lld: task %s has no attempt %lld\n", id, pos.v[1],
		        (long long)want);
		rc = EXIT_NOTFOUND;
		goto out;
	}
	if (cli_opts.json) {
		json_t *o = json_pack("{s:I,s:s,s:O}", "run_id", (json_int_t)id, "task", pos.v[1],
		                      "attempts", picked);
		cli_print_json(o);
		json_decref(o);
		goto out;
	}
	json_t *p;
	json_array_foreach(picked, i, p)
	    print_attempt(json_object_get(p, "task_run"), json_object_get(p, "attempt"));
out:
	json_decref(picked);
	json_decref(run);
	cli_strv_release(&pos);
	return rc;
}

/* -------------------------------------------------------- resume/cancel */

static const char usage_resume[] =
    "usage: wfctl resume RUN [--from TASK] [--json]\n"
    "\n"
    "Re-runs the failed, dead, cancelled and upstream_failed tasks of a finished\n"
    "run, keeping the succeeded ones and their outputs. With --from, that task\n"
    "and everything downstream of it run again too.\n";
static const char usage_cancel[] =
    "usage: wfctl cancel RUN [--json]\n"
    "\n"
    "Cancels a run: its unfinished tasks become cancelled and running steps are\n"
    "stopped.\n";

int cmd_resume(int argc, char **argv)
{
	const char *from = NULL;
	struct cli_strv pos = {0};
	json_t *resp = NULL, *body = NULL;
	long long id = 0;
	const struct cli_opt opts[] = {{"--from", NULL, &from, NULL, NULL}, {0}};
	int rc = cli_parse_args(argc, argv, opts, usage_resume, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n != 1) {
		rc = cli_usage_error(usage_resume, "resume: expected one run id");
		goto out;
	}
	if ((rc = parse_run_id(usage_resume, pos.v[0], &id)) >= 0)
		goto out;
	body = from ? json_pack("{s:s}", "from", from) : json_object();
	char path[80], what[48];
	snprintf(path, sizeof path, "/api/v1/runs/%lld/resume", id);
	snprintf(what, sizeof what, "run %lld", id);
	rc = cli_call("POST", path, body, NULL, what, &resp);
	if (rc != EXIT_OK)
		goto out;
	if (cli_opts.json) {
		cli_print_json(resp);
		goto out;
	}
	printf("run %lld %s", id, cli_str(resp, "state") ? cli_str(resp, "state") : "resumed");
	json_t *reset = json_object_get(resp, "reset");
	size_t i;
	json_t *t;
	json_array_foreach(reset, i, t)
	    printf("%s%s", i ? ", " : "; reset: ", json_string_value(t));
	printf("\n");
out:
	json_decref(body);
	json_decref(resp);
	cli_strv_release(&pos);
	return rc;
}

int cmd_cancel(int argc, char **argv)
{
	struct cli_strv pos = {0};
	json_t *resp = NULL;
	long long id = 0;
	int rc = cli_parse_args(argc, argv, NULL, usage_cancel, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n != 1) {
		rc = cli_usage_error(usage_cancel, "cancel: expected one run id");
		goto out;
	}
	if ((rc = parse_run_id(usage_cancel, pos.v[0], &id)) >= 0)
		goto out;
	char path[80], what[48];
	snprintf(path, sizeof path, "/api/v1/runs/%lld/cancel", id);
	snprintf(what, sizeof what, "run %lld", id);
	rc = cli_call("POST", path, NULL, NULL, what, &resp);
	if (rc != EXIT_OK)
		goto out;
	if (cli_opts.json)
		cli_print_json(resp);
	else
		printf("run %lld %s\n", id,
		       cli_str(resp, "state") ? cli_str(resp, "state") : "cancelled");
out:
	json_decref(resp);
	cli_strv_release(&pos);
	return rc;
}
