/* wfctl dev: the whole of wf on one machine, in the foreground.
 *
 * A private PostgreSQL under ./.wf (initdb on first use, Unix socket only),
 * the migrations, an admin token kept in .wf/token, one wf-engine, N
 * wf-executors and the HTTP helper the examples call; then the workflows of
 * DIR are submitted and .wf/env is written for other shells. Ctrl-C stops
 * everything in order: executors (they drain), engine, helper, PostgreSQL.
 *
 * Every program is started with fork + exec of an argv array: no shell.
 * The private PostgreSQL is in dev_pg.c, the child processes in dev_procs.c. */
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli/cli.h"
#include "cli/dev_int.h"
#include "cli/files.h"
#include "engine/migrate.h"
#include "util.h"
#include "xalloc.h"

/* The executors' drain timeout is 30s: give them a little more. */
#define STOP_EXECUTORS_MS 35000
#define STOP_ENGINE_MS    20000
#define STOP_HELPER_MS    5000

static const char usage_dev[] =
    "usage: wfctl dev [DIR] [--reset] [--http PORT] [--zmq PORT] [--executors N]\n"
    "                 [--foreground-logs]\n"
    "\n"
    "Runs the whole of wf on this machine, in the foreground: a private\n"
    "PostgreSQL in ./.wf (created on first use; Unix socket only), the schema\n"
    "migrations, one wf-engine with the dashboard, N wf-executors, and the HTTP\n"
    "helper on 127.0.0.1:8089 when DIR's workflows call it. Submits every\n"
    "workflow of DIR, prints the dashboard URL and an admin token, and writes\n"
    "./.wf/env so that another shell can run  . .wf/env && wfctl workflows\n"
    "\n"
    "Ctrl-C (or SIGTERM) stops everything, executors first so that they drain,\n"
    "and keeps the data: running it again reuses it, with the same token.\n"
    "\n"
    "options:\n"
    "  --reset            delete ./.wf (data, token, logs) first\n"
    "  --http PORT        the engine's API and dashboard port (default 8080)\n"
    "  --zmq PORT         the engine's ZeroMQ port (default 5555); the executors\n"
    "                     listen on the next free ports after it\n"
    "  --executors N      how many executors, dev-executor-1..N (default 2)\n"
    "  --foreground-logs  engine, executor and helper logs on this terminal\n"
    "                     instead of ./.wf/logs/*.log\n"
    "\n"
    "As root, PostgreSQL runs as the 'postgres' user (created when missing); when\n"
    "that user cannot reach ./.wf, the data lives in " VAR_DIR "/<hash> behind\n"
    "the symlink .wf/pg. PG_BIN overrides where initdb and pg_ctl are found.\n"
    "exit status: 0 stopped by Ctrl-C or SIGTERM, 1 failed or a process died,\n"
    "2 usage\n";

/* ------------------------------------------------------------ small helpers */

int dev_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static int parse_port(const char *s, const char *opt, int *out)
{
	int64_t v;
	if (parse_int64(s, 1, 65535, &v) != 0)
		return cli_usage_error(usage_dev, "%s '%s': expected a port number (1-65535)", opt,
		                       s);
	*out = (int)v;
	return -1;
}

/* Writes text to path with mode (created or truncated). Returns 0 or -1. */
int dev_write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		goto fail;
	size_t len = strlen(text), off = 0;
	if (fchmod(fd, mode) != 0)
		goto fail_fd;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			goto fail_fd;
		off += (size_t)w;
	}
	if (close(fd) != 0)
		goto fail;
	return 0;
fail_fd:
	close(fd);
fail:
	fprintf(stderr, "wfctl dev: cannot write %s: %s\n", path, strerror(errno));
	return -1;
}

/* A path shown to the user: relative to the current directory when inside. */
const char *dev_rel(const struct dev *d, const char *path)
{
	size_t n = strlen(d->cwd);
	if (path && strncmp(path, d->cwd, n) == 0 && path[n] == '/')
		return path + n + 1;
	return path;
}

/* --------------------------------------------------------------- locations */

/* The directory of this wfctl binary. */
static char *find_bindir(void)
{
	char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
	if (n <= 0)
		return xstrdup(".");
	buf[n] = '\0';
	char *slash = strrchr(buf, '/');
	if (slash)
		*slash = '\0';
	return xstrdup(buf[0] ? buf : "/");
}

/* ------------------------------------------------------------- .wf/ itself */

/* Holds .wf/dev.lock: one wfctl dev per directory. */
static int take_lock(struct dev *d)
{
	char *path = xasprintf("%s/dev.lock", d->wf);
	int rc = -1;
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lock_fd < 0) {
		fprintf(stderr, "wfctl dev: cannot open %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		char pid[32] = "";
		ssize_t n = pread(d->lock_fd, pid, sizeof pid - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		fprintf(stderr,
		        "wfctl dev: another wfctl dev (pid %s) is running in this directory; "
		        "stop it first (Ctrl-C in its terminal)\n",
		        pid[0] ? pid : "?");
		goto out;
	}
	/* The pid only helps the message above: a failure to write it is harmless. */
	char *pid = xasprintf("%ld\n", (long)getpid());
	if (ftruncate(d->lock_fd, 0) == 0 && pwrite(d->lock_fd, pid, strlen(pid), 0) < 0)
		pid[0] = '\0';
	free(pid);
	rc = 0;
out:
	free(path);
	return rc;
}

/* Migrations, then the admin token: the one in .wf/token when the database
 * knows it, else a new one. */
static int prepare_db(struct dev *d)
{
	char err[1024];
	char *path = xasprintf("%s/token", d->wf);
	int rc = -1;
	PGconn *db = PQconnectdb(d->dburl);
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "wfctl dev: cannot connect to PostgreSQL: %s", PQerrorMessage(db));
		goto out;
	}
	PQclear(PQexec(db, "SET client_min_messages = warning"));
	int n = migrate_up(db, err, sizeof err);
	if (n < 0) {
		fprintf(stderr, "wfctl dev: migrate: %s\n", err);
		goto out;
	}
	if (n > 0)
		printf("applied %d migration%s; schema at version %d\n", n, n == 1 ? "" : "s",
		       migrate_latest());
	FILE *f = fopen(path, "r");
	d->token[0] = '\0';
	if (f) {
		if (!fgets(d->token, sizeof d->token, f))
			d->token[0] = '\0';
		d->token[strcspn(d->token, "\r\n")] = '\0';
		fclose(f);
	}
	int known = d->token[0] ? cli_token_known(d->token) : 0;
	if (known < 0)
		goto out;
	if (!known) {
		if (d->token[0])
			printf("the token in .wf/token is unknown to the database: making a new "
			       "one\n");
		char *name = xasprintf("wfctl-dev-admin-%lld", (long long)time(NULL));
		int r = cli_token_create("admin", name, d->token, sizeof d->token);
		free(name);
		if (r != EXIT_OK)
			goto out;
		char *line = xasprintf("%s\n", d->token);
		r = dev_write_file(path, line, 0600);
		sodium_memzero(line, strlen(line));
		free(line);
		if (r != 0)
			goto out;
	}
	rc = 0;
out:
	PQfinish(db);
	free(path);
	return rc;
}

/* --------------------------------------------------------------- the loop */

static int write_env(struct dev *d)
{
	char *path = xasprintf("%s/env", d->wf);
	char *text = xasprintf("# written by wfctl dev; in another shell: . .wf/env\n"
	                       "export WF_URL='%s'\n"
	                       "export WF_TOKEN='%s'\n"
	                       "export WF_DATABASE_URL='%s'\n",
	                       d->url, d->token, d->dburl);
	int rc = dev_write_file(path, text, 0600);
	sodium_memzero(text, strlen(text));
	free(text);
	free(path);
	if (rc != 0)
		return -1;
	/* The pids, for scripts that check nothing is left behind. */
	struct buf b;
	buf_init(&b, 0);
	path = xasprintf("%s/pids", d->wf);
	int bad = buf_printf(&b, "postgres %ld\n", (long)d->postmaster);
	for (int i = 0; i < d->nch; i++)
		if (d->ch[i].pid > 0)
			bad |= buf_printf(&b, "%s %ld\n", d->ch[i].what, (long)d->ch[i].pid);
	rc = bad ? -1 : dev_write_file(path, b.data, 0644);
	buf_release(&b);
	free(path);
	return rc;
}

static void print_banner(const struct dev *d)
{
	printf("\n"
	       "  wf is running.\n"
	       "    dashboard:    %s/\n"
	       "    admin token:  %s\n"
	       "    in another shell:  . .wf/env && %s/wfctl workflows\n"
	       "    logs:         %s\n"
	       "  Press Ctrl-C to stop.\n\n",
	       d->url, d->token, dev_rel(d, d->bindir), d->fg_logs ? "this terminal" : ".wf/logs/");
	fflush(stdout);
}

/* Until Ctrl-C (EXIT_OK) or a process died (EXIT_FAIL). */
static int supervise(struct dev *d)
{
	for (;;) {
		int sig = dev_wait_signal(d, 1000), st;
		if (sig) {
			printf("\nstopping wf (%s) ...\n", strsignal(sig));
			return EXIT_OK;
		}
		struct child *dead = dev_reap(d, &st);
		if (dead) {
			dev_report_death(d, dead, st);
			return EXIT_FAIL;
		}
		if (d->postmaster > 0 && !dev_pid_alive(d->postmaster)) {
			fprintf(stderr,
			        "wfctl dev: PostgreSQL (pid %ld) stopped unexpectedly; its log is "
			        "%s/postgres.log:\n",
			        (long)d->postmaster, dev_rel(d, d->logs));
			char *pglog = xasprintf("%s/postgres.log", d->logs);
			dev_print_tail(pglog, 8);
			free(pglog);
			d->pg_running = 0;
			return EXIT_FAIL;
		}
	}
}

static void stop_all(struct dev *d)
{
	int any = 0;
	for (int i = 0; i < d->nch; i++)
		any |= d->ch[i].pid > 0;
	if (any) {
		printf("stopping the executors (they finish their tasks first) ...\n");
		fflush(stdout);
		dev_stop_stage(d, STAGE_EXECUTOR, STOP_EXECUTORS_MS);
		printf("stopping the engine ...\n");
		fflush(stdout);
		dev_stop_stage(d, STAGE_ENGINE, STOP_ENGINE_MS);
		dev_stop_stage(d, STAGE_HELPER, STOP_HELPER_MS);
	}
	dev_stop_pg(d);
}

/* ------------------------------------------------------------------ command */

static int parse_options(struct dev *d, int argc, char **argv)
{
	const char *http = NULL, *zmq = NULL, *nexec = NULL;
	struct cli_strv pos = {0};
	const struct cli_opt opts[] = {
	    {"--reset", NULL, NULL, &d->reset, NULL},
	    {"--http", NULL, &http, NULL, NULL},
	    {"--zmq", NULL, &zmq, NULL, NULL},
	    {"--executors", NULL, &nexec, NULL, NULL},
	    {"--foreground-logs", NULL, NULL, &d->fg_logs, NULL},
	    {0},
	};
	int rc = cli_parse_args(argc, argv, opts, usage_dev, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n > 1) {
		rc = cli_usage_error(usage_dev, "dev: at most one folder of workflows");
		goto out;
	}
	d->dir = pos.n ? pos.v[0] : NULL;
	if (http && (rc = parse_port(http, "--http", &d->http_port)) >= 0)
		goto out;
	if (zmq && (rc = parse_port(zmq, "--zmq", &d->zmq_port)) >= 0)
		goto out;
	int64_t n;
	if (nexec && parse_int64(nexec, 0, MAX_EXECUTORS, &n) != 0) {
		rc = cli_usage_error(usage_dev, "--executors '%s': expected 0 to %d", nexec,
		                     MAX_EXECUTORS);
		goto out;
	}
	if (nexec)
		d->nexec = (int)n;
	if (d->http_port == d->zmq_port) {
		rc = cli_usage_error(usage_dev, "--http and --zmq must differ");
		goto out;
	}
	rc = -1;
out:
	cli_strv_release(&pos);
	return rc;
}

static int check_ports(const struct dev *d)
{
	if (dev_port_in_use(d->http_port)) {
		fprintf(stderr,
		        "wfctl dev: port %d (the engine's HTTP port) is in use; stop what uses "
		        "it or choose another with --http PORT\n",
		        d->http_port);
		return -1;
	}
	if (dev_port_in_use(d->zmq_port)) {
		fprintf(stderr,
		        "wfctl dev: port %d (the engine's ZeroMQ port) is in use; stop what "
		        "uses it or choose another with --zmq PORT\n",
		        d->zmq_port);
		return -1;
	}
	return 0;
}

static void dev_release(struct dev *d)
{
	for (int i = 0; i < d->nch; i++) {
		free(d->ch[i].what);
		free(d->ch[i].log);
	}
	sodium_memzero(d->token, sizeof d->token);
	free(d->cwd);
	free(d->wf);
	free(d->logs);
	free(d->bindir);
	free(d->web);
	free(d->pgdir);
	free(d->pgdata);
	free(d->pgbin);
	free(d->helper);
	free(d->url);
	free(d->dburl);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
}

int cmd_dev(int argc, char **argv)
{
	struct dev d = {.http_port = 8080, .zmq_port = 5555, .nexec = 2, .lock_fd = -1};
	struct cli_wf_files fs = {0};
	int rc = parse_options(&d, argc, argv);
	if (rc >= 0)
		goto out;
	rc = EXIT_FAIL;
	cli_opts.json = 0;
	if (sodium_init() < 0)
		goto out;
	/* Signals are taken in the loop with sigtimedwait, never by handlers.
	 * An ignored signal is never pending: a shell starting us with '&'
	 * ignores SIGINT, which must stop us all the same; SIGHUP stays ignored
	 * under nohup. */
	sigemptyset(&d.sigs);
	sigaddset(&d.sigs, SIGINT);
	sigaddset(&d.sigs, SIGTERM);
	sigaddset(&d.sigs, SIGCHLD);
	if (signal(SIGHUP, SIG_DFL) != SIG_IGN)
		sigaddset(&d.sigs, SIGHUP);
	else
		signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigprocmask(SIG_BLOCK, &d.sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Everything that can be refused is checked before anything starts. */
	if (d.dir) {
		const char *dirs[] = {d.dir};
		if (cli_wf_files_load(&fs, dirs, 1) != 0)
			goto out;
		if (fs.invalid) {
			for (size_t i = 0; i < fs.n; i++)
				if (!fs.v[i].valid)
					cli_wf_file_print_errors(&fs.v[i], stderr);
			fprintf(stderr,
			        "wfctl dev: %d of %zu files in %s are invalid; fix them or "
			        "leave the folder out\n",
			        fs.invalid, fs.n, d.dir);
			goto out;
		}
	}
	d.cwd = getcwd(NULL, 0);
	if (!d.cwd) {
		fprintf(stderr, "wfctl dev: getcwd: %s\n", strerror(errno));
		goto out;
	}
	d.wf = xasprintf("%s/.wf", d.cwd);
	if (dev_exists(d.wf) && take_lock(&d) != 0)
		goto out;
	if (check_ports(&d) != 0)
		goto out;
	d.logs = xasprintf("%s/logs", d.wf);
	d.bindir = find_bindir();
	d.pgbin = dev_find_pgbin();
	char *web = xasprintf("%s/../web", d.bindir);
	d.web = realpath(web, NULL);
	free(web);
	if (!d.web)
		d.web = xstrdup(WF_DATADIR "/web");
	d.url = xasprintf("http://127.0.0.1:%d", d.http_port);
	if (d.dir && dev_plan_helper(&d, &fs) != 0)
		goto out;
	if (geteuid() == 0 && dev_find_pg_user(&d) != 0)
		goto out;
	if (d.reset && dev_reset_data(&d) != 0)
		goto out;
	if (dev_make_dirs(&d) != 0 || take_lock(&d) != 0)
		goto out;

	if (dev_start_pg(&d) != 0 || prepare_db(&d) != 0)
		goto stop;
	cli_opts.url = d.url;
	cli_opts.token = d.token;
	printf("starting the engine on %s and %d executor%s ...\n", d.url, d.nexec,
	       d.nexec == 1 ? "" : "s");
	int started = dev_start_services(&d);
	if (started != 0) {
		rc = started > 0 ? EXIT_OK : EXIT_FAIL;
		goto stop;
	}
	if (d.dir) {
		char *sargv[] = {"submit", (char *)d.dir, NULL};
		printf("submitting %s ...\n", d.dir);
		if (cmd_submit(2, sargv) != EXIT_OK)
			fprintf(stderr,
			        "wfctl dev: some workflows were not submitted (see above)\n");
	}
	if (write_env(&d) != 0)
		goto stop;
	print_banner(&d);
	rc = supervise(&d);
stop:
	stop_all(&d);
	if (d.pgdata) {
		char *pids = xasprintf("%s/pids", d.wf);
		unlink(pids);
		free(pids);
		printf("stopped; the data is kept in .wf/ (wfctl dev --reset starts afresh)\n");
	}
out:
	fflush(stdout);
	cli_wf_files_release(&fs);
	dev_release(&d);
	return rc;
}
