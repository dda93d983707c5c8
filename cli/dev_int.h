/* Internals of wfctl dev shared by cmd_dev.c (the command), dev_pg.c (the
 * private PostgreSQL) and dev_procs.c (the child processes). */
#ifndef WF_CLI_DEV_INT_H
#define WF_CLI_DEV_INT_H
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli/cli.h"

#define PG_USER       "postgres"
#define MAX_EXECUTORS 64
#define VAR_DIR       "/var/lib/wf-dev"

struct cli_wf_files;

/* What a child is, in the order they are stopped. */
enum stage { STAGE_EXECUTOR, STAGE_ENGINE, STAGE_HELPER };

/* A long-running program started by wfctl dev. */
struct child {
	char *what; /* "engine", "executor dev-executor-1", ... */
	char *log;  /* its log file, NULL when it writes to the terminal */
	enum stage stage;
	pid_t pid; /* 0 once reaped */
};

/* One wfctl dev: its options, paths, PostgreSQL and children. */
struct dev {
	/* options */
	const char *dir;
	int reset, fg_logs, http_port, zmq_port, nexec;
	/* paths, all absolute */
	char *cwd, *wf, *logs, *bindir, *web;
	char *pgdir;  /* holds data/ and the socket: .wf/pg or VAR_DIR/<hash> */
	char *pgdata; /* pgdir/data */
	char *pgbin;  /* PostgreSQL's programs, NULL: search PATH */
	char *helper; /* the examples' HTTP helper to start, or NULL */
	char *url, *dburl;
	char token[CLI_TOKEN_LEN];
	/* as root, PostgreSQL runs as PG_USER */
	int as_user;
	uid_t uid;
	gid_t gid;
	pid_t postmaster;
	int pg_running; /* stop PostgreSQL at the end */
	struct child ch[MAX_EXECUTORS + 2];
	int nch;
	int lock_fd;
	sigset_t sigs; /* blocked and taken with sigtimedwait */
};

/* --- cmd_dev.c */
/* 1 when path exists. */
int dev_exists(const char *path);
/* A path shown to the user: relative to the current directory when inside (borrowed). */
const char *dev_rel(const struct dev *d, const char *path);
/* Writes text to path with mode (created or truncated). Returns 0 or -1 (message printed). */
int dev_write_file(const char *path, const char *text, mode_t mode);

/* --- dev_procs.c */
/* Waits up to ms for a stop signal (returned) or SIGCHLD / the timeout (0). */
int dev_wait_signal(struct dev *d, long ms);
/* Runs argv to its end (as PG_USER when as_user). Returns its exit status, or -1. */
int dev_run(const struct dev *d, char *const argv[], const char *log, int as_user);
/* Reaps the children that ended. Returns the first (its status in *st), or NULL. */
struct child *dev_reap(struct dev *d, int *st);
/* Tells the user that child c ended with status st, with the tail of its log. */
void dev_report_death(const struct dev *d, const struct child *c, int st);
/* Stops the children of one stage: SIGTERM, then SIGKILL after grace_ms or a second Ctrl-C. */
void dev_stop_stage(struct dev *d, enum stage stage, int64_t grace_ms);
/* 1 while pid runs (a zombie waiting for init does not count). */
int dev_pid_alive(pid_t pid);
/* Prints the last lines of a log file on stderr, indented. */
void dev_print_tail(const char *path, int lines);
/* 1 when something listens on (or holds) 127.0.0.1:port. */
int dev_port_in_use(int port);
/* Sets d->helper when DIR's workflows call the examples' HTTP helper and it is found. */
int dev_plan_helper(struct dev *d, const struct cli_wf_files *fs);
/* Starts the engine, executors and helper; 0, 1 when asked to stop meanwhile, or -1. */
int dev_start_services(struct dev *d);

/* --- dev_pg.c */
/* The newest /usr/lib/postgresql/N/bin, or $PG_BIN, or NULL (use PATH): a new string. */
char *dev_find_pgbin(void);
/* As root: PG_USER exists (created when missing); sets as_user, uid and gid. */
int dev_find_pg_user(struct dev *d);
/* --reset: stops a PostgreSQL left running, removes .wf/ and the data behind .wf/pg. */
int dev_reset_data(struct dev *d);
/* Creates .wf, .wf/logs and the PostgreSQL directory; sets pgdir and pgdata. */
int dev_make_dirs(struct dev *d);
/* initdb on first use, then starts PostgreSQL (or reuses a running one); sets dburl. */
int dev_start_pg(struct dev *d);
/* Stops the PostgreSQL started by dev_start_pg, if it runs. */
void dev_stop_pg(struct dev *d);

#endif
