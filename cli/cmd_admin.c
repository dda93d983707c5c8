/* Administration over the REST API: dlq, token list|revoke, plan,
 * submit --prune, schedules, events (--follow reads the SSE stream). */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/files.h"
#include "cli/output.h"
#include "xalloc.h"

/* Workflows made by the job façade (POST /api/v1/jobs) live only on the
 * engine: plan and --prune leave them alone. */
#define JOB_PREFIX "job-"

/* ------------------------------------------------------------ helpers */

/* Prints items as JSON {"items":[...]} (for --json). */
static void print_items(json_t *items)
{
	json_t *o = json_pack("{s:O}", "items", items);
	cli_print_json(o);
	json_decref(o);
}

/* s cut to max characters (bytes; never in the middle of a UTF-8
 * sequence), newlines as spaces. A new string. */
static char *cut(const char *s, size_t max)
{
	if (!s)
		return NULL;
	size_t n = strlen(s);
	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	char *c = xmalloc(n + 4);
	memcpy(c, s, n);
	c[n] = '\0';
	if (n < strlen(s))
		memcpy(c + n, "...", 4);
	for (char *p = c; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	return c;
}

static int single_id(int argc, char **argv, const char *usage, struct cli_strv *pos,
                     const char *what)
{
	int rc = cli_parse_args(argc, argv, NULL, usage, pos);
	if (rc >= 0)
		return rc;
	if (pos->n != 1)
		return cli_usage_error(usage, "%s: expected one %s", argv[0], what);
	return -1;
}

/* ------------------------------------------------------------ dlq */

static const char usage_dlq[] =
    "usage: wfctl dlq list [--workflow NAME] [--state open|resolved|all] [--json]\n"
    "       wfctl dlq retry ID [--json]\n"
    "       wfctl dlq drop ID [--json]\n"
    "\n"
    "Dead letters are task runs whose retries ran out. 'list' shows the open\n"
    "ones (or --state resolved|all); 'retry' queues the task run again with a\n"
    "fresh attempt budget (its downstream tasks wait for it again, and a\n"
    "finished run reopens); 'drop' marks it dropped and leaves the run failed.\n"
    "Retry and drop need the operator role.\n";

static int dlq_list(int argc, char **argv)
{
	const char *workflow = NULL, *state = "open";
	struct cli_opt opts[] = {{"--workflow", "-w", &workflow, NULL, NULL},
	                         {"--state", NULL, &state, NULL, NULL},
	                         {0}};
	struct cli_strv pos = {0};
	json_t *items = NULL;
	char *path = NULL, *w = NULL, *s = NULL;
	int rc = cli_parse_args(argc, argv, opts, usage_dlq, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n) {
		rc = cli_usage_error(usage_dlq, "dlq list: unexpected '%s'", pos.v[0]);
		goto out;
	}
	s = cli_escape(state);
	w = workflow ? cli_escape(workflow) : NULL;
	path = xasprintf("/api/v1/dead-letters?limit=500&state=%s%s%s", s, w ? "&workflow=" : "",
	                 w ? w : "");
	rc = cli_fetch_all(path, "dead letters", &items);
	if (rc != EXIT_OK)
		goto out;
	if (cli_opts.json) {
		print_items(items);
		goto out;
	}
	if (json_array_size(items) == 0) {
		printf("no %s dead letters\n", strcmp(state, "all") == 0 ? "" : state);
		goto out;
	}
	const char *hdr[] = {"ID",       "WORKFLOW", "RUN",        "TASK",
	                     "ATTEMPTS", "CREATED",  "RESOLUTION", "LAST ERROR"};
	struct cli_table *t = cli_table_new(8, hdr);
	size_t i;
	json_t *d;
	json_array_foreach(items, i, d)
	{
		char id[24], run[24], att[16], created[64];
		snprintf(id, sizeof id, "%lld", cli_int(d, "id", 0));
		snprintf(run, sizeof run, "%lld", cli_int(d, "run_id", 0));
		snprintf(att, sizeof att, "%lld", cli_int(d, "attempts", 0));
		cli_fmt_time(cli_str(d, "created_at"), created, sizeof created);
		char *err = cut(cli_str(d, "last_error"), 60);
		const char *row[] = {
		    id,      cli_str(d, "workflow"),   run, cli_str(d, "task"), att,
		    created, cli_str(d, "resolution"), err};
		cli_table_add(t, row);
		free(err);
	}
	cli_table_print(t, stdout, 0);
	cli_table_free(t);
out:
	json_decref(items);
	free(path);
	free(w);
	free(s);
	cli_strv_release(&pos);
	return rc;
}

static int dlq_action(int argc, char **argv, const char *action)
{
	struct cli_strv pos = {0};
	json_t *resp = NULL;
	char *path = NULL, *what = NULL, *id = NULL;
	int rc = single_id(argc, argv, usage_dlq, &pos, "dead letter id");
	if (rc >= 0)
		goto out;
	id = cli_escape(pos.v[0]);
	path = xasprintf("/api/v1/dead-letters/%s/%s", id, action);
	what = xasprintf("dead letter %s", pos.v[0]);
	rc = cli_call("POST", path, NULL, NULL, what, &resp);
	if (rc != EXIT_OK)
		goto out;
	if (cli_opts.json) {
		cli_print_json(resp);
	} else if (strcmp(action, "retry") == 0) {
		printf("dead letter %s: task %s of run %lld queued again", pos.v[0],
		       cli_str(resp, "task") ? cli_str(resp, "task") : "?",
		       cli_int(resp, "run_id", 0));
		size_t n = json_array_size(json_object_get(resp, "reset"));
		if (n > 1)
			printf(" (%zu downstream task%s waiting again)", n - 1, n == 2 ? "" : "s");
		printf("\n");
	} else {
		printf("dead letter %s dropped (task %s of run %lld stays dead)\n", pos.v[0],
		       cli_str(resp, "task") ? cli_str(resp, "task") : "?",
		       cli_int(resp, "run_id", 0));
	}
out:
	json_decref(resp);
	free(path);
	free(what);
	free(id);
	cli_strv_release(&pos);
	return rc;
}

int cmd_dlq(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage_dlq, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	if (strcmp(argv[1], "list") == 0)
		return dlq_list(argc - 1, argv + 1);
	if (strcmp(argv[1], "retry") == 0 || strcmp(argv[1], "drop") == 0)
		return dlq_action(argc - 1, argv + 1, argv[1]);
	return cli_usage_error(usage_dlq, "dlq: unknown subcommand '%s'", argv[1]);
}

/* ------------------------------------------------------------ token */

static const char usage_token[] =
    "usage: wfctl token create --role viewer|operator|admin --name NAME [--json]\n"
    "       wfctl token list [--json]\n"
    "       wfctl token revoke NAME [--json]\n"
    "\n"
    "'create' writes to the database directly (WF_DATABASE_URL) and prints the\n"
    "token once; only its hash is stored. 'list' and 'revoke' go through the\n"
    "engine's API and need an admin token. A revoked token is refused at once\n"
    "by the engine that revoked it and within 5 s by the others.\n";

static int token_list(int argc, char **argv)
{
	struct cli_strv pos = {0};
	json_t *items = NULL;
	int rc = cli_parse_args(argc, argv, NULL, usage_token, &pos);
	if (rc >= 0)
		goto out;
	rc = cli_fetch_all("/api/v1/tokens?limit=500", "tokens", &items);
	if (rc != EXIT_OK)
		goto out;
	if (cli_opts.json) {
		print_items(items);
		goto out;
	}
	const char *hdr[] = {"NAME", "ROLE", "CREATED", "LAST USED", "STATE"};
	struct cli_table *t = cli_table_new(5, hdr);
	size_t i;
	json_t *k;
	json_array_foreach(items, i, k)
	{
		char created[64], used[64];
		cli_fmt_time(cli_str(k, "created_at"), created, sizeof created);
		cli_fmt_time(cli_str(k, "last_used_at"), used, sizeof used);
		const char *row[] = {cli_str(k, "name"), cli_str(k, "role"), created, used,
		                     json_is_true(json_object_get(k, "revoked")) ? "revoked"
		                                                                 : "active"};
		cli_table_add(t, row);
	}
	cli_table_print(t, stdout, 0);
	cli_table_free(t);
out:
	json_decref(items);
	cli_strv_release(&pos);
	return rc;
}

static int token_revoke(int argc, char **argv)
{
	struct cli_strv pos = {0};
	json_t *resp = NULL;
	char *path = NULL, *what = NULL, *name = NULL;
	int rc = single_id(argc, argv, usage_token, &pos, "token name");
	if (rc >= 0)
		goto out;
	name = cli_escape(pos.v[0]);
	path = xasprintf("/api/v1/tokens/%s", name);
	what = xasprintf("token %s", pos.v[0]);
	rc = cli_call("DELETE", path, NULL, NULL, what, &resp);
	if (rc != EXIT_OK)
		goto out;
	if (cli_opts.json)
		cli_print_json(resp);
	else
		printf("token %s revoked%s\n", pos.v[0],
		       json_is_false(json_object_get(resp, "changed")) ? " (already)" : "");
out:
	json_decref(resp);
	free(path);
	free(what);
	free(name);
	cli_strv_release(&pos);
	return rc;
}

int cmd_token_admin(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return token_list(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "revoke") == 0)
		return token_revoke(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(usage_token, stdout);
		return EXIT_OK;
	}
	return cmd_token(argc, argv);
}

/* ------------------------------------------------------------ plan */

static const char usage_plan[] =
    "usage: wfctl plan [--json] FILE|DIR...\n"
    "\n"
    "Compiles the workflow files locally and compares them with the engine's\n"
    "current versions by content hash, like 'terraform plan': each workflow is\n"
    "new, changed, unchanged, or removed (on the engine, not in the files:\n"
    "what 'submit --prune' would delete; job-* workflows of the job API are\n"
    "never listed). Changes nothing.\n"
    "\n"
    "exit status: 0 ok (whatever the differences), 1 invalid files, 3 engine\n"
    "unreachable, 4 denied\n";

/* The plan: {"workflows":[{"workflow","status","file","local_hash",
 * "remote_hash","remote_version"}], counts}. Returns an exit code. */
static int make_plan(const struct cli_wf_files *fs, json_t **out)
{
	json_t *remote = NULL, *list = json_array();
	int counts[4] = {0};
	static const char *const names[] = {"new", "changed", "unchanged", "removed"};
	*out = NULL;
	int rc = cli_fetch_all("/api/v1/workflows?limit=500", "workflows", &remote);
	if (rc != EXIT_OK)
		goto out;
	for (size_t i = 0; i < fs->n; i++) {
		const char *name = cli_str(fs->v[i].res.dag, "name");
		json_t *match = NULL, *w;
		size_t j;
		json_array_foreach(remote, j, w)
		{
			if (name && cli_str(w, "name") && strcmp(cli_str(w, "name"), name) == 0)
				match = w;
		}
		int st = !match ? 0
		         : strcmp(cli_str(match, "hash") ? cli_str(match, "hash") : "",
		                  fs->v[i].res.hash) != 0
		             ? 1
		             : 2;
		counts[st]++;
		json_array_append_new(
		    list,
		    json_pack("{s:s?,s:s,s:s,s:s,s:s?,s:o}", "workflow", name, "status", names[st],
		              "file", fs->v[i].path, "local_hash", fs->v[i].res.hash, "remote_hash",
		              match ? cli_str(match, "hash") : NULL, "remote_version",
		              match ? json_integer(cli_int(match, "version", 0)) : json_null()));
	}
	size_t j;
	json_t *w;
	json_array_foreach(remote, j, w)
	{
		const char *rn = cli_str(w, "name");
		int found = 0;
		if (!rn || strncmp(rn, JOB_PREFIX, strlen(JOB_PREFIX)) == 0)
			continue;
		for (size_t i = 0; i < fs->n && !found; i++) {
			const char *name = cli_str(fs->v[i].res.dag, "name");
			found = name && strcmp(name, rn) == 0;
		}
		if (found)
			continue;
		counts[3]++;
		json_array_append_new(list, json_pack("{s:s,s:s,s:n,s:s?,s:I}", "workflow", rn,
		                                      "status", "removed", "file", "remote_hash",
		                                      cli_str(w, "hash"), "remote_version",
		                                      (json_int_t)cli_int(w, "version", 0)));
	}
	*out = json_pack("{s:O,s:i,s:i,s:i,s:i}", "workflows", list, "new", counts[0], "changed",
	                 counts[1], "unchanged", counts[2], "removed", counts[3]);
out:
	json_decref(remote);
	json_decref(list);
	return rc;
}

static void print_invalid(const struct cli_wf_files *fs)
{
	if (cli_opts.json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < fs->n; i++)
			json_array_append_new(arr, cli_wf_file_json(&fs->v[i]));
		json_t *o = json_pack("{s:o}", "files", arr);
		cli_print_json(o);
		json_decref(o);
		return;
	}
	for (size_t i = 0; i < fs->n; i++)
		if (!fs->v[i].valid)
			cli_wf_file_print_errors(&fs->v[i], stdout);
	printf("%d of %zu files invalid\n", fs->invalid, fs->n);
}

int cmd_plan(int argc, char **argv)
{
	struct cli_strv pos = {0};
	struct cli_wf_files fs = {0};
	json_t *plan = NULL;
	int rc = cli_parse_args(argc, argv, NULL, usage_plan, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n == 0) {
		rc = cli_usage_error(usage_plan, "plan: name at least one file or folder");
		goto out;
	}
	if (cli_wf_files_load(&fs, pos.v, pos.n) != 0) {
		rc = EXIT_USAGE;
		goto out;
	}
	if (fs.invalid) {
		print_invalid(&fs);
		rc = EXIT_FAIL;
		goto out;
	}
	rc = make_plan(&fs, &plan);
	if (rc != EXIT_OK)
		goto out;
	if (cli_opts.json) {
		cli_print_json(plan);
		goto out;
	}
	size_t i;
	json_t *w;
	json_array_foreach(json_object_get(plan, "workflows"), i, w)
	{
		const char *st = cli_str(w, "status");
		char mark = strcmp(st, "new") == 0       ? '+'
		            : strcmp(st, "changed") == 0 ? '~'
		            : strcmp(st, "removed") == 0 ? '-'
		                                         : ' ';
		if (strcmp(st, "changed") == 0)
			printf("%c %s: changed (version %lld on the engine; %s)\n", mark,
			       cli_str(w, "workflow"), cli_int(w, "remote_version", 0),
			       cli_str(w, "file"));
		else if (strcmp(st, "removed") == 0)
			printf("%c %s: removed (on the engine only; 'submit --prune' deletes it)\n",
			       mark, cli_str(w, "workflow"));
		else
			printf("%c %s: %s (%s)\n", mark, cli_str(w, "workflow"), st,
			       cli_str(w, "file"));
	}
	printf("plan: %lld new, %lld changed, %lld unchanged, %lld removed\n",
	       cli_int(plan, "new", 0), cli_int(plan, "changed", 0), cli_int(plan, "unchanged", 0),
	       cli_int(plan, "removed", 0));
out:
	json_decref(plan);
	cli_wf_files_release(&fs);
	cli_strv_release(&pos);
	return rc;
}

/* ------------------------------------------------------------ submit --prune */

int cmd_submit_prune(int argc, char **argv)
{
	char **args = xcalloc((size_t)argc + 1, sizeof *args);
	int n = 0, prune = 0, help = 0, rc;
	struct cli_strv files = {0};
	struct cli_wf_files fs = {0};
	json_t *plan = NULL, *removed = json_array();

	for (int i = 0; i < argc; i++) {
		if (i > 0 && strcmp(argv[i], "--prune") == 0) {
			prune = 1;
			continue;
		}
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			help = 1;
		args[n++] = argv[i];
	}
	rc = cmd_submit(n, args);
	if (help) {
		printf("\n  --prune   after submitting, delete the workflows the engine has that\n"
		       "            the files do not define (job-* workflows are kept); see\n"
		       "            'wfctl plan'. With --json the deletions follow as a second\n"
		       "            JSON document {\"pruned\":[...]}.\n");
		goto out;
	}
	if (rc != EXIT_OK || !prune)
		goto out;
	/* The files compiled and were submitted; their names are the keep list. */
	for (int i = 1; i < n; i++)
		if (args[i][0] != '-')
			cli_strv_push(&files, args[i]);
	if (cli_wf_files_load(&fs, files.v, files.n) != 0 || fs.invalid || fs.n == 0) {
		fprintf(stderr, "wfctl: submit --prune: cannot reload the files; nothing pruned\n");
		rc = EXIT_FAIL;
		goto out;
	}
	rc = make_plan(&fs, &plan);
	if (rc != EXIT_OK)
		goto out;
	size_t i;
	json_t *w;
	json_array_foreach(json_object_get(plan, "workflows"), i, w)
	{
		if (strcmp(cli_str(w, "status"), "removed") != 0)
			continue;
		char *name = cli_escape(cli_str(w, "workflow"));
		char *path = xasprintf("/api/v1/workflows/%s", name);
		char *what = xasprintf("workflow %s", cli_str(w, "workflow"));
		int r = cli_call("DELETE", path, NULL, NULL, what, NULL);
		free(name);
		free(path);
		free(what);
		if (r != EXIT_OK) {
			rc = r;
			break;
		}
		json_array_append_new(removed, json_string(cli_str(w, "workflow")));
		if (!cli_opts.json)
			printf("%s: removed\n", cli_str(w, "workflow"));
	}
	if (cli_opts.json) {
		json_t *o = json_pack("{s:O}", "pruned", removed);
		cli_print_json(o);
		json_decref(o);
	}
out:
	json_decref(plan);
	json_decref(removed);
	cli_wf_files_release(&fs);
	cli_strv_release(&files);
	free(args);
	return rc;
}

/* ------------------------------------------------------------ schedules */

static const char usage_schedules[] =
    "usage: wfctl schedules [--json]\n"
    "\n"
    "Lists the schedules: workflow, cron expression or one-time 'at', time\n"
    "zone, next and last fire time, and whether it is active or paused.\n";

int cmd_schedules(int argc, char **argv)
{
	struct cli_strv pos = {0};
	json_t *items = NULL;
	int rc = cli_parse_args(argc, argv, NULL, usage_schedules, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n) {
		rc = cli_usage_error(usage_schedules, "schedules: unexpected '%s'", pos.v[0]);
		goto out;
	}
	rc = cli_fetch_all("/api/v1/schedules?limit=500", "schedules", &items);
	if (rc != EXIT_OK)
		goto out;
	if (cli_opts.json) {
		print_items(items);
		goto out;
	}
	if (json_array_size(items) == 0) {
		printf("no schedules (workflows without 'schedule:' run only when triggered)\n");
		goto out;
	}
	const char *hdr[] = {"WORKFLOW",  "SCHEDULE",   "TIMEZONE",
	                     "NEXT FIRE", "LAST FIRED", "STATE"};
	struct cli_table *t = cli_table_new(6, hdr);
	size_t i;
	json_t *s;
	json_array_foreach(items, i, s)
	{
		char next[64], last[64], at[64];
		char *sched;
		cli_fmt_time(cli_str(s, "next_fire_at"), next, sizeof next);
		cli_fmt_time(cli_str(s, "last_fired_at"), last, sizeof last);
		if (cli_str(s, "kind") && strcmp(cli_str(s, "kind"), "at") == 0) {
			cli_fmt_time(cli_str(s, "at"), at, sizeof at);
			sched = xasprintf("once at %s", at);
		} else {
			sched = xstrdup(cli_str(s, "expr") ? cli_str(s, "expr") : "?");
		}
		const char *state = !json_is_true(json_object_get(s, "enabled")) ? "disabled"
		                    : json_is_true(json_object_get(s, "paused")) ? "paused"
		                                                                 : "active";
		const char *row[] = {
		    cli_str(s, "workflow"), sched, cli_str(s, "timezone"), next, last, state};
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

/* ------------------------------------------------------------ events */

static const char usage_events[] =
    "usage: wfctl events [--run ID] [--workflow NAME] [--limit N] [--follow] [--json]\n"
    "\n"
    "Prints the latest events (state changes, submissions, actions and who\n"
    "did them), oldest first. --follow then keeps printing new ones as they\n"
    "happen (the engine's Server-Sent Events stream; reconnects by itself and\n"
    "resumes where it stopped; Ctrl-C ends). --json prints one JSON object a\n"
    "line.\n";

static void print_event(const json_t *e)
{
	if (cli_opts.json) {
		char *s = json_dumps(e, JSON_COMPACT);
		printf("%s\n", s ? s : "{}");
		free(s);
		fflush(stdout);
		return;
	}
	char when[64], run[32] = "-";
	cli_fmt_time(cli_str(e, "at"), when, sizeof when);
	if (json_is_integer(json_object_get(e, "run_id")))
		snprintf(run, sizeof run, "run %lld", cli_int(e, "run_id", 0));
	char *data = json_object_size(json_object_get(e, "data"))
	                 ? json_dumps(json_object_get(e, "data"), JSON_COMPACT)
	                 : NULL;
	char *d = cut(data, 120);
	printf("%-8lld %s  %-22s %-20s %-10s %-18s %s\n", cli_int(e, "id", 0), when,
	       cli_str(e, "kind") ? cli_str(e, "kind") : "?",
	       cli_str(e, "workflow") ? cli_str(e, "workflow") : "-", run,
	       cli_str(e, "actor") ? cli_str(e, "actor") : "-", d ? d : "");
	free(d);
	free(data);
	fflush(stdout);
}

/* The token, resolved as client.c does (--token, WF_TOKEN, ./.wf/env,
 * the config file). A new string or NULL. */
static char *find_token(void)
{
	if (cli_opts.token)
		return xstrdup(cli_opts.token);
	const char *env = getenv("WF_TOKEN");
	if (env && *env)
		return xstrdup(env);
	char *conf = NULL, *tok = NULL;
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	const char *files[2] = {NULL, NULL};
	const char *keys[2] = {"WF_TOKEN", "token"};
	if (!cli_opts.url && !(getenv("WF_URL") && *getenv("WF_URL")))
		files[0] = ".wf/env";
	if (xdg && *xdg)
		conf = xasprintf("%s/wf/config", xdg);
	else if (home && *home)
		conf = xasprintf("%s/.config/wf/config", home);
	files[1] = conf;
	for (int f = 0; f < 2 && !tok; f++) {
		FILE *fp = files[f] ? fopen(files[f], "r") : NULL;
		char line[4096];
		while (fp && !tok && fgets(line, sizeof line, fp)) {
			char *p = line;
			while (*p == ' ' || *p == '\t')
				p++;
			if (strncmp(p, "export ", 7) == 0)
				p += 7;
			size_t kl = strlen(keys[f]);
			if (strncmp(p, keys[f], kl) != 0 || p[kl] != '=')
				continue;
			char *v = p + kl + 1;
			v[strcspn(v, "\r\n")] = '\0';
			size_t vl = strlen(v);
			if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
				v[vl - 1] = '\0';
				v++;
			}
			if (*v)
				tok = xstrdup(v);
		}
		if (fp)
			fclose(fp);
	}
	free(conf);
	return tok;
}

struct follow {
	struct buf line;
	char data[64 * 1024];
	size_t dlen;
	long long last_id;
	int denied;
};

static void follow_line(struct follow *f, const char *l)
{
	if (*l == '\0') {
		if (f->dlen) {
			json_t *e = json_loadb(f->data, f->dlen, 0, NULL);
			if (e) {
				long long id = cli_int(e, "id", 0);
				if (id > f->last_id)
					f->last_id = id;
				print_event(e);
			}
			json_decref(e);
		}
		f->dlen = 0;
		return;
	}
	if (strncmp(l, "data:", 5) == 0) {
		const char *v = l + 5 + (l[5] == ' ');
		size_t n = strlen(v);
		if (f->dlen + n < sizeof f->data) {
			memcpy(f->data + f->dlen, v, n);
			f->dlen += n;
		}
	}
}

static size_t follow_write(char *p, size_t size, size_t n, void *ud)
{
	struct follow *f = ud;
	for (size_t i = 0; i < size * n; i++) {
		if (p[i] == '\n') {
			follow_line(f, f->line.data ? f->line.data : "");
			buf_reset(&f->line);
		} else if (p[i] != '\r' && buf_append(&f->line, p + i, 1) != 0) {
			return 0;
		}
	}
	return size * n;
}

static int follow_stream(const char *query, long long after)
{
	struct follow f = {.last_id = after};
	char *token = find_token();
	int rc = EXIT_OK;
	buf_init(&f.line, 1024 * 1024);
	for (int failures = 0;;) {
		CURL *h = curl_easy_init();
		struct curl_slist *hdrs = NULL;
		char *url = xasprintf("%s/api/v1/events/stream?%s", cli_base_url(), query);
		char *auth = token ? xasprintf("Authorization: Bearer %s", token) : NULL;
		char lei[64];
		snprintf(lei, sizeof lei, "Last-Event-ID: %lld", f.last_id);
		hdrs = curl_slist_append(hdrs, "Accept: text/event-stream");
		hdrs = curl_slist_append(hdrs, lei);
		if (auth)
			hdrs = curl_slist_append(hdrs, auth);
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, follow_write);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &f);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
		/* Heartbeats come every 15 s: a minute of silence is a dead link. */
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		CURLcode cc = curl_easy_perform(h);
		long status = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		curl_slist_free_all(hdrs);
		curl_easy_cleanup(h);
		free(url);
		free(auth);
		buf_reset(&f.line);
		f.dlen = 0;
		if (status == 401 || status == 403) {
			fprintf(stderr, "wfctl: events: %s\nhint: set WF_TOKEN or --token\n",
			        status == 401 ? "unauthorized" : "forbidden");
			rc = EXIT_DENIED;
			break;
		}
		if (status == 200)
			failures = 0;
		if (++failures > 30) {
			fprintf(stderr, "wfctl: events: the stream keeps failing: %s (HTTP %ld)\n",
			        curl_easy_strerror(cc), status);
			rc = EXIT_UNAVAIL;
			break;
		}
		if (!cli_opts.json)
			fprintf(stderr, "wfctl: events: stream ended (%s); reconnecting\n",
			        cc == CURLE_OK ? "closed by the engine" : curl_easy_strerror(cc));
		sleep(failures > 5 ? 5 : 1);
	}
	buf_release(&f.line);
	free(token);
	return rc;
}

int cmd_events(int argc, char **argv)
{
	const char *run = NULL, *workflow = NULL, *limit = "50";
	int follow = 0;
	struct cli_opt opts[] = {{"--run", "-r", &run, NULL, NULL},
	                         {"--workflow", "-w", &workflow, NULL, NULL},
	                         {"--limit", "-n", &limit, NULL, NULL},
	                         {"--follow", "-f", NULL, &follow, NULL},
	                         {0}};
	struct cli_strv pos = {0};
	struct buf q;
	json_t *resp = NULL;
	char *path = NULL;
	buf_init(&q, 0);
	int rc = cli_parse_args(argc, argv, opts, usage_events, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n) {
		rc = cli_usage_error(usage_events, "events: unexpected '%s'", pos.v[0]);
		goto out;
	}
	char *l = cli_escape(limit);
	char *r = run ? cli_escape(run) : NULL, *w = workflow ? cli_escape(workflow) : NULL;
	path =
	    xasprintf("%s%s%s%s", r ? "&run=" : "", r ? r : "", w ? "&workflow=" : "", w ? w : "");
	char *list = xasprintf("/api/v1/events?order=desc&limit=%s%s", l, path);
	free(l);
	free(r);
	free(w);
	rc = cli_call("GET", list, NULL, NULL, "events", &resp);
	free(list);
	if (rc != EXIT_OK)
		goto out;
	json_t *items = json_object_get(resp, "items");
	long long last = 0;
	for (size_t i = json_array_size(items); i > 0; i--) {
		json_t *e = json_array_get(items, i - 1);
		print_event(e);
		if (cli_int(e, "id", 0) > last)
			last = cli_int(e, "id", 0);
	}
	if (!follow)
		goto out;
	if (last == 0) {
		/* Nothing matched yet: start from the newest event of all. */
		json_t *top = NULL;
		rc = cli_call("GET", "/api/v1/events?order=desc&limit=1", NULL, NULL, "events",
		              &top);
		if (rc != EXIT_OK)
			goto out;
		last = cli_int(json_array_get(json_object_get(top, "items"), 0), "id", 0);
		json_decref(top);
	}
	rc = follow_stream(path[0] ? path + 1 : "", last);
out:
	json_decref(resp);
	free(path);
	buf_release(&q);
	cli_strv_release(&pos);
	return rc;
}
