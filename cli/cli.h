/* wfctl: one file per group of commands, each an entry in cli/main.c. */
#ifndef WF_CLI_H
#define WF_CLI_H

/* Exit codes that mean something to scripts. */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,     /* the thing asked about failed (invalid file, failed run) */
	EXIT_USAGE = 2,    /* bad command line */
	EXIT_UNAVAIL = 3,  /* the engine or database could not be reached */
	EXIT_DENIED = 4,   /* authentication or authorisation refused */
	EXIT_NOTFOUND = 5, /* the named workflow, run or task does not exist */
};

/* Options every command understands. */
struct cli_global {
	int json;          /* --json: machine-readable output */
	const char *url;   /* --url / WF_URL: the engine's base URL */
	const char *token; /* --token / WF_TOKEN */
};
extern struct cli_global cli_opts;

typedef int (*cli_cmd_fn)(int argc, char **argv);

int cmd_migrate(int argc, char **argv);
int cmd_token(int argc, char **argv);

#endif
