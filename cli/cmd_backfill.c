/* wfctl backfill: runs for every scheduled time of a past range, as a group. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/output.h"
#include "xalloc.h"

static const char usage[] =
    "usage: wfctl backfill WORKFLOW --from TIME --to TIME [--max N]\n"
    "       wfctl backfill list [--workflow NAME]\n"
    "       wfctl backfill cancel ID\n"
    "\n"
    "Creates one run for every time the workflow's cron schedule names in\n"
    "[--from, --to] (RFC 3339 times). The runs start in order under the\n"
    "workflow's overlap policy and max_active_runs; ${schedule.time} is each\n"
    "run's nominal time. Times that already have a run are not run again.\n";

static int list(int argc, char **argv)
{
	const char *workflow = NULL;
	struct cli_opt opts[] = {{"--workflow", "-w", &workflow, NULL, NULL}, {0}};
	struct cli_strv pos = {0};
	json_t *resp = NULL;
	char *path = NULL, *esc = NULL;
	int rc = cli_parse_args(argc, argv, opts, usage, &pos);
	if (rc >= 0)
		goto out;
	if (workflow) {
		esc = cli_escape(workflow);
		path = xasprintf("/api/v1/backfills?limit=500&workflow=%s", esc);
	} else {
		path = xstrdup("/api/v1/backfills?limit=500");
	}
	rc = cli_call("GET", path, NULL, NULL, "backfills", &resp);
	if (rc != EXIT_OK)
		goto out;
	if (cli_opts.json) {
		cli_print_json(resp);
		goto out;
	}
	static const char *const headers[] = {"ID",    "WORKFLOW", "FROM",    "TO",
	                                      "STATE", "RUNS",     "PROGRESS"};
	struct cli_table *t = cli_table_new(7, headers);
	size_t i;
	json_t *b;
	json_array_foreach(json_object_get(resp, "items"), i, b)
	{
		char id[24], runs[24], from[64], to[64], progress[256] = "";
		snprintf(id, sizeof id, "%lld",
		         (long long)json_integer_value(json_object_get(b, "id")));
		snprintf(runs, sizeof runs, "%lld",
		         (long long)json_integer_value(json_object_get(b, "runs")));
		cli_fmt_time(json_string_value(json_object_get(b, "from")), from, sizeof from);
		cli_fmt_time(json_string_value(json_object_get(b, "to")), to, sizeof to);
		const char *k;
		json_t *n;
		size_t used = 0;
		json_object_foreach(json_object_get(b, "run_states"), k, n)
		{
			int w = snprintf(progress + used, sizeof progress - used, "%s%s %lld",
			                 used ? ", " : "", k, (long long)json_integer_value(n));
			if (w < 0 || (size_t)w >= sizeof progress - used)
				break;
			used += (size_t)w;
		}
		const char *cells[] = {
		    id,      json_string_value(json_object_get(b, "workflow")), from,
		    to,      json_string_value(json_object_get(b, "state")),    runs,
		    progress};
		cli_table_add(t, cells);
	}
	if (cli_table_rows(t) == 0)
		printf("no backfills\n");
	else
		cli_table_print(t, stdout, 0);
	cli_table_free(t);
out:
	json_decref(resp);
	free(path);
	free(esc);
	cli_strv_release(&pos);
	return rc;
}

static int cancel(int argc, char **argv)
{
	struct cli_strv pos = {0};
	json_t *resp = NULL;
	char *path = NULL, *what = NULL;
	int rc = cli_parse_args(argc, argv, NULL, usage, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n != 1 || strspn(pos.v[0], "0123456789") != strlen(pos.v[0])) {
		rc = cli_usage_error(usage, "backfill cancel: expected one backfill id");
		goto out;
	}
	path = xasprintf("/api/v1/backfills/%s/cancel", pos.v[0]);
	what = xasprintf("backfill %s", pos.v[0]);
	rc = cli_call("POST", path, NULL, NULL, what, &resp);
	if (rc != EXIT_OK)
		goto out;
	if (cli_opts.json)
		cli_print_json(resp);
	else
		printf("backfill %s cancelled (%lld runs stopped)\n", pos.v[0],
		       (long long)json_integer_value(json_object_get(resp, "cancelled_runs")));
out:
	json_decref(resp);
	free(path);
	free(what);
	cli_strv_release(&pos);
	return rc;
}

int cmd_backfill(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return list(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "cancel") == 0)
		return cancel(argc - 1, argv + 1);
	const char *from = NULL, *to = NULL, *max = NULL;
	struct cli_opt opts[] = {{"--from", NULL, &from, NULL, NULL},
	                         {"--to", NULL, &to, NULL, NULL},
	                         {"--max", NULL, &max, NULL, NULL},
	                         {0}};
	struct cli_strv pos = {0};
	json_t *body = NULL, *resp = NULL;
	char *path = NULL, *what = NULL, *esc = NULL;
	int rc = cli_parse_args(argc, argv, opts, usage, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n != 1 || !from || !to) {
		rc = cli_usage_error(usage, "backfill: expected WORKFLOW --from TIME --to TIME");
		goto out;
	}
	body = json_pack("{s:s,s:s}", "from", from, "to", to);
	if (max) {
		char *end;
		long n = strtol(max, &end, 10);
		if (*end || n < 1) {
			rc = cli_usage_error(usage, "--max '%s': expected a positive number", max);
			goto out;
		}
		json_object_set_new(body, "max_runs", json_integer(n));
	}
	esc = cli_escape(pos.v[0]);
	path = xasprintf("/api/v1/workflows/%s/backfill", esc);
	what = xasprintf("backfill of %s", pos.v[0]);
	rc = cli_call("POST", path, body, NULL, what, &resp);
	if (rc != EXIT_OK)
		goto out;
	if (cli_opts.json)
		cli_print_json(resp);
	else
		printf("backfill %lld of %s: %lld runs created, %lld times already had a run\n",
		       (long long)json_integer_value(json_object_get(resp, "backfill_id")),
		       pos.v[0], (long long)json_integer_value(json_object_get(resp, "runs")),
		       (long long)json_integer_value(json_object_get(resp, "skipped")));
out:
	json_decref(body);
	json_decref(resp);
	free(path);
	free(what);
	free(esc);
	cli_strv_release(&pos);
	return rc;
}
