/* wfctl: one file per group of commands, each an entry in cli/main.c. */
#ifndef WF_CLI_H
#define WF_CLI_H
#include <stddef.h>

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

/* A list of strings borrowed from argv (free only v). */
struct cli_strv {
	const char **v;
	int n;
};
void cli_strv_push(struct cli_strv *sv, const char *s);
void cli_strv_release(struct cli_strv *sv);

/* One option of a command. Exactly one of val, flag, multi is set:
 * val receives the argument (the last one wins), flag is set to 1, multi
 * collects every argument of a repeatable option. */
struct cli_opt {
	const char *name;  /* "--tz" */
	const char *alias; /* "-n", or NULL */
	const char **val;
	int *flag;
	struct cli_strv *multi;
};

/* Parses argv[1..] (argv[0] is the command's name) against opts (ended by a
 * zeroed entry, may be NULL) and the global options --json, --url, --token
 * and --help. "--name=value" is accepted, "--" ends the options. Positional
 * arguments are appended to pos. Returns -1 to go on, or the exit code to
 * return at once: EXIT_OK after --help (usage printed on stdout),
 * EXIT_USAGE after a bad option (message and usage on stderr). */
int cli_parse_args(int argc, char **argv, const struct cli_opt *opts, const char *usage,
                   struct cli_strv *pos) __attribute__((warn_unused_result));
/* Prints "wfctl: <message>" and the usage on stderr; returns EXIT_USAGE. */
int cli_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* cmd_db.c: PostgreSQL directly. */
int cmd_migrate(int argc, char **argv);
int cmd_token(int argc, char **argv);

/* Room for a token: "wf_" + 64 hex digits + NUL. */
#define CLI_TOKEN_LEN 68
/* Creates an API token with role and name in the database of
 * WF_DATABASE_URL (only its hash is stored) and writes it to token (len >=
 * CLI_TOKEN_LEN). Returns EXIT_OK, or an exit code with the reason printed
 * on stderr. */
int cli_token_create(const char *role, const char *name, char *token, size_t len)
    __attribute__((warn_unused_result));
/* 1 when the token's hash is in the database, 0 when not, -1 when the
 * database could not be asked (message printed). */
int cli_token_known(const char *token) __attribute__((warn_unused_result));

/* cmd_keys.c: CURVE key pairs for the executor channel (offline). */
int cmd_keys(int argc, char **argv);
/* wfctl dev's key pairs in WFDIR/keys (made once, then reused): paths for
 * the engine (engine_key, allow = the executors' public keys) and the
 * executors (executor_key, engine_pub). Returns 0 or -1 (printed). */
struct cli_dev_keys {
	char engine_key[512], engine_pub[512], executor_key[512], allow[512];
};
int cli_dev_keys(const char *wfdir, struct cli_dev_keys *k) __attribute__((warn_unused_result));

/* cmd_backfill.c: runs for every scheduled time of a past range. */
int cmd_backfill(int argc, char **argv);

/* cmd_dev.c: a private PostgreSQL, an engine and executors in ./.wf/. */
int cmd_dev(int argc, char **argv);

/* cmd_offline.c: no engine, no database. */
int cmd_validate(int argc, char **argv);
int cmd_next(int argc, char **argv);
int cmd_graph(int argc, char **argv);

/* cmd_workflows.c: workflows and executors over HTTP. */
int cmd_submit(int argc, char **argv);
int cmd_workflows(int argc, char **argv);
int cmd_pause(int argc, char **argv);
int cmd_unpause(int argc, char **argv);
int cmd_executors(int argc, char **argv);

/* cmd_admin.c: administration over HTTP. cmd_token_admin handles
 * "token list|revoke" and hands "token create" to cmd_token;
 * cmd_submit_prune is cmd_submit plus --prune. */
int cmd_dlq(int argc, char **argv);
int cmd_token_admin(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_submit_prune(int argc, char **argv);
int cmd_schedules(int argc, char **argv);
int cmd_events(int argc, char **argv);

/* cmd_runs.c: runs over HTTP. */
int cmd_run(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_cancel(int argc, char **argv);

#endif
