/* Workflows and executors over the REST API: submit, workflows, pause,
 * unpause, executors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/files.h"
#include "cli/output.h"
#include "util.h"
#include "xalloc.h"

/* -------------------------------------------------------------- submit */

static const char usage_submit[] =
    "usage: wfctl submit [--json] FILE|DIR...\n"
    "\n"
    "Compiles the workflow files locally (directories are searched recursively\n"
    "for *.yaml and *.yml); when any is invalid, prints the errors and submits\n"
    "nothing. Otherwise sends each file to the engine, which stores a new\n"
    "version when its content changed, and prints\n"
    "  name: version N (new|changed|unchanged)\n"
    "\n"
    "exit status: 0 ok, 1 invalid or refused, 3 engine unreachable, 4 denied\n";

/* Two files defining the same workflow would overwrite each other. */
static int check_duplicates(const struct cli_wf_files *fs)
{
	int dup = 0;
	for (size_t i = 0; i < fs->n; i++)
		for (size_t j = 0; j < i; j++) {
			const char *a = cli_str(fs->v[i].res.dag, "name");
			const char *b = cli_str(fs->v[j].res.dag, "name");
			if (a && b && strcmp(a, b) == 0) {
				if (!cli_opts.json)
					printf("%s: name: workflow '%s' is also defined in %s\n",
					       fs->v[i].path, a, fs->v[j].path);
				dup++;
				break;
			}
		}
	return dup;
}

int cmd_submit(int argc, char **argv)
{
	struct cli_strv pos = {0};
	struct cli_wf_files fs = {0};
	json_t *results = json_array();
	int rc = cli_parse_args(argc, argv, NULL, usage_submit, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n == 0) {
		rc = cli_usage_error(usage_submit, "submit: name at least one file or folder");
		goto out;
	}
	if (cli_wf_files_load(&fs, pos.v, pos.n) != 0) {
		rc = EXIT_USAGE;
		goto out;
	}
	if (fs.n == 0) {
		fprintf(stderr, "wfctl: submit: no workflow files found\n");
		rc = EXIT_FAIL;
		goto out;
	}
	int dup = check_duplicates(&fs);
	if (fs.invalid || dup) {
		if (cli_opts.json) {
			json_t *arr = json_array();
			for (size_t i = 0; i < fs.n; i++)
				json_array_append_new(arr, cli_wf_file_json(&fs.v[i]));
			json_t *o = json_pack("{s:o,s:b}", "files", arr, "submitted", 0);
			cli_print_json(o);
			json_decref(o);
		} else {
			for (size_t i = 0; i < fs.n; i++)
				if (!fs.v[i].valid)
					cli_wf_file_print_errors(&fs.v[i], stdout);
			printf("%zu file%s, %d invalid: nothing submitted\n", fs.n,
			       fs.n == 1 ? "" : "s", fs.invalid + dup);
		}
		rc = EXIT_FAIL;
		goto out;
	}
	rc = EXIT_OK;
	for (size_t i = 0; i < fs.n; i++) {
		const struct cli_wf_file *f = &fs.v[i];
		json_t *body =
		    json_pack("{s:s%,s:s}", "source", f->source, f->len, "filename", f->path);
		json_t *resp = NULL;
		char *what = xasprintf("%s", f->path);
		int r = body ? cli_call("POST", "/api/v1/workflows", body, NULL, what, &resp)
		             : EXIT_FAIL;
		if (!body)
			fprintf(stderr, "wfctl: %s: the file is not valid UTF-8\n", f->path);
		free(what);
		json_decref(body);
		if (r != EXIT_OK) {
			json_array_append_new(results,
			                      json_pack("{s:s,s:b}", "file", f->path, "ok", 0));
			if (rc == EXIT_OK)
				rc = r;
			if (r == EXIT_UNAVAIL || r == EXIT_DENIED) {
				rc = r; /* the next files would fail the same way */
				break;
			}
			continue;
		}
		long long version = cli_int(resp, "version", 0);
		int changed = json_is_true(json_object_get(resp, "changed"));
		const char *status = !changed ? "unchanged" : version == 1 ? "new" : "changed";
		if (!cli_opts.json)
			printf("%s: version %lld (%s)\n",
			       cli_str(resp, "workflow") ? cli_str(resp, "workflow")
			                                 : cli_str(f->res.dag, "name"),
			       version, status);
		json_object_set_new(resp, "file", json_string(f->path));
		json_object_set_new(resp, "status", json_string(status));
		json_object_set_new(resp, "ok", json_true());
		json_array_append_new(results, resp);
	}
	if (cli_opts.json) {
		json_t *o = json_pack("{s:O}", "results", results);
		cli_print_json(o);
		json_decref(o);
	}
out:
	json_decref(results);
	cli_wf_files_release(&fs);
	cli_strv_release(&pos);
	return rc;
}

/* ----------------------------------------------------------- workflows */

static const char usage_workflows[] =
    "usage: wfctl workflows [--json]\n"
    "\n"
    "Lists the workflows: current version, paused or active, schedule, next\n"
    "fire time and last run.\n";

static char *schedule_text(const json_t *s)
{
	if (!json_is_object(s))
		return NULL;
	const char *tz = cli_str(s, "timezone");
	if (cli_str(s, "cron"))
		return xasprintf("%s (%s)", cli_str(s, "cron"), tz ? tz : "UTC");
	if (cli_str(s, "at")) {
		char t[64];
		cli_fmt_time(cli_str(s, "at"), t, sizeof t);
		return xasprintf("once at %s", t);
	}
	return NULL;
}

int cmd_workflows(int argc, char **argv)
{
	struct cli_strv pos = {0};
	json_t *items = NULL;
	int rc = cli_parse_args(argc, argv, NULL, usage_workflows, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n) {
		rc = cli_usage_error(usage_workflows, "workflows: unexpected '%s'", pos.v[0]);
		goto out;
	}
	rc = cli_fetch_all("/api/v1/workflows?limit=500", "workflows", &items);
	if (rc != EXIT_OK)
		goto out;
	if (cli_opts.json) {
		json_t *o = json_pack("{s:O}", "items", items);
		cli_print_json(o);
		json_decref(o);
		goto out;
	}
	if (json_array_size(items) == 0) {
		printf("no workflows yet (wfctl submit DIR)\n");
		goto out;
	}
	const char *hdr[] = {"NAME", "VERSION", "STATE", "SCHEDULE", "NEXT FIRE", "LAST RUN"};
	struct cli_table *t = cli_table_new(6, hdr);
	size_t i;
	json_t *w;
	json_array_foreach(items, i, w)
	{
		char ver[32], next[64], last[128] = "";
		snprintf(ver, sizeof ver, "%lld", cli_int(w, "version", 0));
		cli_fmt_time(cli_str(w, "next_fire_at"), next, sizeof next);
		json_t *lr = json_object_get(w, "last_run");
		if (json_is_object(lr)) {
			char when[64];
			cli_fmt_time(cli_str(lr, "created_at"), when, sizeof when);
			snprintf(last, sizeof last, "%lld %s %s", cli_int(lr, "id", 0),
			         cli_str(lr, "state") ? cli_str(lr, "state") : "?", when);
		}
		char *sched = schedule_text(json_object_get(w, "schedule"));
		const char *row[] = {cli_str(w, "name"),
		                     ver,
		                     json_is_true(json_object_get(w, "paused")) ? "paused"
		                                                                : "active",
		                     sched,
		                     next,
		                     last};
		cli_table_add(t, row);
		free(sched);
	}
	cli_table_print(t, stdout, 0);
	cli_table_free(t);
out:
	json_decref(items);
	cli_strv_release(&pos);
	return rc;
}

/* ----------------------------------------------------- pause / unpause */

static const char usage_pause[] =
    "usage: wfctl pause [--json] WORKFLOW\n"
    "\n"
    "Stops the workflow's schedule from firing new runs; runs in flight go on.\n";
static const char usage_unpause[] = "usage: wfctl unpause [--json] WORKFLOW\n"
                                    "\n"
                                    "Lets the workflow's schedule fire again.\n";

static int set_paused(int argc, char **argv, int paused)
{
	const char *usage = paused ? usage_pause : usage_unpause;
	struct cli_strv pos = {0};
	json_t *resp = NULL;
	char *path = NULL, *what = NULL, *name = NULL;
	int rc = cli_parse_args(argc, argv, NULL, usage, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n != 1) {
		rc = cli_usage_error(usage, "%s: expected one workflow name", argv[0]);
		goto out;
	}
	name = cli_escape(pos.v[0]);
	path = xasprintf("/api/v1/workflows/%s/%s", name, paused ? "pause" : "unpause");
	what = xasprintf("workflow %s", pos.v[0]);
	rc = cli_call("POST", path, NULL, NULL, what, &resp);
	if (rc != EXIT_OK)
		goto out;
	if (cli_opts.json)
		cli_print_json(resp);
	else
		printf("workflow %s %s\n", pos.v[0], paused ? "paused" : "unpaused");
out:
	json_decref(resp);
	free(name);
	free(path);
	free(what);
	cli_strv_release(&pos);
	return rc;
}

int cmd_pause(int argc, char **argv)
{
	return set_paused(argc, argv, 1);
}

int cmd_unpause(int argc, char **argv)
{
	return set_paused(argc, argv, 0);
}

/* ----------------------------------------------------------- executors */

static const char usage_executors[] =
    "usage: wfctl executors [--json]\n"
    "\n"
    "Lists the executors the engine knows, one per line:\n"
    "  ID          the executor id (--id)\n"
    "  POOL        its pool (--pool)\n"
    "  STATE       online | draining (finishing its tasks, taking no new work)\n"
    "              | offline (said bye) | lost (no heartbeat for 3 intervals)\n"
    "  FREE/SLOTS  free and total slots as last reported\n"
    "  LOAD        the host's 1-minute load average\n"
    "  LABELS      its labels (--label), for route: label:<l>\n"
    "  BREAKERS    circuit breakers that are not closed, e.g.\n"
    "              billing.internal:open(12s) (open for 12 s more) or\n"
    "              billing.internal:half_open (probing); - when all are closed\n"
    "  HEARTBEAT   age of the last hello or heartbeat\n"
    "Breakers of offline and lost executors are not shown (they are stale).\n"
    "--json prints the API's JSON (GET /api/v1/executors) unchanged.\n";

static char *join_strings(const json_t *arr)
{
	char *s = NULL;
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
	{
		const char *x = json_string_value(v);
		char *more = xasprintf("%s%s%s", s ? s : "", s ? "," : "", x ? x : "?");
		free(s);
		s = more;
	}
	return s;
}

/* "billing.internal:open(12s),x:half_open" for breakers that are not
 * closed, sorted by name; NULL when none. now_ms: the current epoch ms. */
static char *breakers_text(const json_t *b, int64_t now_ms)
{
	char *s = NULL;
	const char *key;
	json_t *v;
	if (!json_is_object(b))
		return NULL;
	/* jansson keeps insertion order: sort the names for a stable line */
	size_t n = json_object_size(b), k = 0;
	const char **names = xcalloc(n ? n : 1, sizeof *names);
	json_object_foreach((json_t *)b, key, v)
	{
		names[k++] = key;
	}
	for (size_t i = 1; i < k; i++)
		for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			const char *t = names[j];
			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	for (size_t i = 0; i < k; i++) {
		v = json_object_get(b, names[i]);
		const char *state = json_is_object(v) ? cli_str(v, "state") : json_string_value(v);
		if (!state || strcmp(state, "closed") == 0)
			continue;
		char extra[48] = "";
		json_t *until = json_is_object(v) ? json_object_get(v, "until_ms") : NULL;
		if (strcmp(state, "open") == 0 && json_is_number(until)) {
			int64_t left = (int64_t)json_number_value(until) - now_ms;
			char d[32];
			if (left < 0)
				left = 0;
			/* whole seconds, rounded up: "open(1s)" until it is over */
			if (left < 60000)
				snprintf(d, sizeof d, "%llds", (long long)((left + 999) / 1000));
			else
				cli_fmt_duration(left, d, sizeof d);
			snprintf(extra, sizeof extra, "(%s)", d);
		}
		char *more =
		    xasprintf("%s%s%s:%s%s", s ? s : "", s ? "," : "", names[i], state, extra);
		free(s);
		s = more;
	}
	free(names);
	return s;
}

/* "1.2s ago": the API's heartbeat_age_s (measured by the database, so no
 * clock skew between here and there), else from last_heartbeat. */
static void heartbeat_text(const json_t *e, char *out, size_t outlen)
{
	json_t *age = json_object_get(e, "heartbeat_age_s");
	int64_t ms = -1;
	char d[32];
	if (json_is_number(age))
		ms = (int64_t)(json_number_value(age) * 1000.0 + 0.5);
	else if (json_is_string(age))
		ms = (int64_t)(atof(json_string_value(age)) * 1000.0 + 0.5);
	else {
		const char *last = cli_str(e, "last_heartbeat");
		if (!last)
			last = cli_str(e, "last_heartbeat_at");
		ms = cli_elapsed_ms(last, NULL);
	}
	if (ms < 0) {
		snprintf(out, outlen, "-");
		return;
	}
	cli_fmt_duration(ms, d, sizeof d);
	snprintf(out, outlen, "%s ago", d);
}

int cmd_executors(int argc, char **argv)
{
	struct cli_strv pos = {0};
	json_t *items = NULL;
	int rc = cli_parse_args(argc, argv, NULL, usage_executors, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n) {
		rc = cli_usage_error(usage_executors, "executors: unexpected '%s'", pos.v[0]);
		goto out;
	}
	rc = cli_fetch_all("/api/v1/executors", "executors", &items);
	if (rc != EXIT_OK)
		goto out;
	if (cli_opts.json) {
		json_t *o = json_pack("{s:O}", "items", items);
		cli_print_json(o);
		json_decref(o);
		goto out;
	}
	if (json_array_size(items) == 0) {
		printf("no executors have said hello yet\n");
		goto out;
	}
	const char *hdr[] = {"ID",   "POOL",   "STATE",    "FREE/SLOTS",
	                     "LOAD", "LABELS", "BREAKERS", "HEARTBEAT"};
	struct cli_table *t = cli_table_new(8, hdr);
	int64_t now = wall_ms();
	size_t i;
	json_t *e;
	json_array_foreach(items, i, e)
	{
		char slots[48], load[32], hb[96];
		const char *state = cli_str(e, "state");
		snprintf(slots, sizeof slots, "%lld/%lld", cli_int(e, "free_slots", 0),
		         cli_int(e, "slots", 0));
		json_t *lv = json_object_get(e, "load");
		snprintf(load, sizeof load, "%.2f",
		         json_is_number(lv) ? json_number_value(lv) : 0.0);
		heartbeat_text(e, hb, sizeof hb);
		char *labels = join_strings(json_object_get(e, "labels"));
		int live =
		    state && (strcmp(state, "online") == 0 || strcmp(state, "draining") == 0);
		char *br = live ? breakers_text(json_object_get(e, "breakers"), now) : NULL;
		const char *row[] = {cli_str(e, "id") ? cli_str(e, "id") : "?",
		                     cli_str(e, "pool") ? cli_str(e, "pool") : "?",
		                     state ? state : "?",
		                     slots,
		                     load,
		                     labels ? labels : "-",
		                     br ? br : "-",
		                     hb};
		cli_table_add(t, row);
		free(labels);
		free(br);
	}
	cli_table_print(t, stdout, 0);
	cli_table_free(t);
out:
	json_decref(items);
	cli_strv_release(&pos);
	return rc;
}
