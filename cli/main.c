/* wfctl: the command line of wf. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "log.h"

struct cli_global cli_opts;

struct command {
	const char *name;
	cli_cmd_fn fn;
	const char *summary;
};

static const struct command commands[] = {
    {"validate", cmd_validate, "compile workflow files and report errors (offline)"},
    {"graph", cmd_graph, "print a workflow's DAG as text or Graphviz dot (offline)"},
    {"next", cmd_next, "the next fire times of a cron expression (offline)"},
    {"submit", cmd_submit_prune, "compile and upload workflow files (--prune deletes the rest)"},
    {"plan", cmd_plan, "compare workflow files with the engine: new, changed, removed"},
    {"workflows", cmd_workflows, "list workflows"},
    {"pause", cmd_pause, "stop a workflow's schedule"},
    {"unpause", cmd_unpause, "restart a workflow's schedule"},
    {"run", cmd_run, "start a run (--wait to follow it)"},
    {"runs", cmd_runs, "list runs"},
    {"show", cmd_show, "a run and its tasks"},
    {"logs", cmd_logs, "a task's output and error"},
    {"resume", cmd_resume, "re-run the failed tasks of a run"},
    {"cancel", cmd_cancel, "cancel a run"},
    {"executors", cmd_executors, "list executors"},
    {"schedules", cmd_schedules, "list schedules and their next fire times"},
    {"backfill", cmd_backfill, "WORKFLOW --from T --to T | list | cancel ID: runs for past times"},
    {"dlq", cmd_dlq, "dead letters: list, retry ID, drop ID"},
    {"events", cmd_events, "recent events (--follow streams them)"},
    {"migrate", cmd_migrate, "apply the missing database migrations"},
    {"keys", cmd_keys, "keys generate [--out PREFIX]: a CURVE key pair for engines/executors"},
    {"token", cmd_token_admin, "token create --role R --name N | list | revoke NAME"},
    {"dev", cmd_dev, "a private PostgreSQL, engine and executors in ./.wf (Ctrl-C stops)"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: wfctl [--json] [--url URL] [--token TOKEN] COMMAND [ARGS]\n\ncommands:\n");
	for (const struct command *c = commands; c->name; c++)
		fprintf(f, "  %-12s %s\n", c->name, c->summary);
	fprintf(
	    f,
	    "\n'wfctl COMMAND --help' describes a command. Options may also follow the command.\n"
	    "\nengine: --url, WF_URL, ./.wf/env, ~/.config/wf/config (url=, token=),\n"
	    "        default http://127.0.0.1:8080; token: --token, WF_TOKEN, the same files\n"
	    "database (migrate, token): WF_DATABASE_URL (or PGHOST, PGDATABASE, ...)\n"
	    "exit codes: 0 ok, 1 failed, 2 usage, 3 unavailable, 4 denied, 5 not found\n");
}

static const struct command *find(const char *name)
{
	for (const struct command *c = commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

int main(int argc, char **argv)
{
	log_init("wfctl");
	log_set_level(LOG_WARN);
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0)
			cli_opts.json = 1;
		else if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
			cli_opts.url = argv[++i];
		else if (strcmp(argv[i], "--token") == 0 && i + 1 < argc)
			cli_opts.token = argv[++i];
		else if (strncmp(argv[i], "--url=", 6) == 0)
			cli_opts.url = argv[i] + 6;
		else if (strncmp(argv[i], "--token=", 8) == 0)
			cli_opts.token = argv[i] + 8;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return EXIT_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("wfctl %s\n", WF_VERSION);
			return EXIT_OK;
		} else {
			fprintf(stderr, "wfctl: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i == argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 == argc) {
			usage(stdout);
			return EXIT_OK;
		}
		const struct command *c = find(argv[i + 1]);
		if (!c) {
			fprintf(stderr, "wfctl: unknown command '%s' (see wfctl --help)\n",
			        argv[i + 1]);
			return EXIT_USAGE;
		}
		char *help_argv[] = {argv[i + 1], "--help", NULL};
		return c->fn(2, help_argv);
	}
	const struct command *c = find(argv[i]);
	if (c)
		return c->fn(argc - i, argv + i);
	fprintf(stderr, "wfctl: unknown command '%s' (see wfctl --help)\n", argv[i]);
	return EXIT_USAGE;
}
