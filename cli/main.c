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
	{"migrate", cmd_migrate, "apply the missing database migrations"},
	{"token", cmd_token, "token create --role viewer|operator|admin --name NAME"},
	{NULL, NULL, NULL},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: wfctl [--json] [--url URL] [--token TOKEN] COMMAND [ARGS]\n\ncommands:\n");
	for (const struct command *c = commands; c->name; c++)
		fprintf(f, "  %-12s %s\n", c->name, c->summary);
	fprintf(f, "\nenvironment: WF_URL, WF_TOKEN, WF_DATABASE_URL (or PGHOST, PGDATABASE, ...)\n"
		   "exit codes: 0 ok, 1 failed, 2 usage, 3 unavailable, 4 denied, 5 not found\n");
}

int main(int argc, char **argv)
{
	log_init("wfctl");
	log_set_level(LOG_WARN);
	cli_opts.url = getenv("WF_URL");
	cli_opts.token = getenv("WF_TOKEN");
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0)
			cli_opts.json = 1;
		else if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
			cli_opts.url = argv[++i];
		else if (strcmp(argv[i], "--token") == 0 && i + 1 < argc)
			cli_opts.token = argv[++i];
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
	for (const struct command *c = commands; c->name; c++)
		if (strcmp(c->name, argv[i]) == 0)
			return c->fn(argc - i, argv + i);
	fprintf(stderr, "wfctl: unknown command '%s' (see wfctl --help)\n", argv[i]);
	return EXIT_USAGE;
}
