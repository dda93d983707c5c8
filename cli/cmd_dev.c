/* wfctl dev: the whole of wf on one machine, in the foreground.
 *
 * A private PostgreSQL under ./.wf (initdb on first use, Unix socket only),
 * the migrations, an admin token kept in .wf/token, one wf-engine, N
 * wf-executors and the HTTP helper the examples call; then the workflows of
 * DIR are submitted and .wf/env is written for other shells. Ctrl-C stops
 * everything in order: executors (they drain), engine, helper, PostgreSQL.
 *
 * Every program is started with fork + exec of an argv array: no shell. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/files.h"
#include "engine/migrate.h"
#include "util.h"
#include "xalloc.h"

#define PG_PORT              5432
#define PG_USER              "postgres"
#define HELPER_PORT          8089
#define MAX_EXECUTORS        64
#define VAR_DIR              "/var/lib/wf-dev"
#define START_TIMEOUT_MS     30000
#define EXECUTORS_TIMEOUT_MS 15000
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

enum stage { STAGE_EXECUTOR, STAGE_ENGINE, STAGE_HELPER };

/* A long-running program started by wfctl dev. */
struct child {
	char *what; /* "engine", "executor dev-executor-1", ... */
	char *log;  /* its log file, NULL when it writes to the terminal */
	enum stage stage;
	pid_t pid; /* 0 once reaped */
};

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

/* ------------------------------------------------------------ small helpers */

static int exists(const char *path)
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

/* 1 when something listens on (or holds) 127.0.0.1:port. */
static int port_in_use(int port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return 0;
	int one = 1;
	(void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int used = bind(s, (struct sockaddr *)&a, sizeof a) != 0 && errno == EADDRINUSE;
	close(s);
	return used;
}

/* Prints the last lines of a log file on stderr, indented. */
static void print_tail(const char *path, int lines)
{
	char buf[4096];
	FILE *f = path ? fopen(path, "r") : NULL;
	if (!f)
		return;
	long start = 0;
	if (fseek(f, 0, SEEK_END) == 0 && ftell(f) > (long)sizeof buf - 1)
		start = ftell(f) - (long)sizeof buf + 1;
	size_t n = fseek(f, start, SEEK_SET) == 0 ? fread(buf, 1, sizeof buf - 1, f) : 0;
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	char *p = buf + n;
	for (int k = 0; p > buf; p--)
		if (p[-1] == '\n' && ++k == lines)
			break;
	while (*p) {
		size_t len = strcspn(p, "\n");
		fprintf(stderr, "  | %.*s\n", (int)len, p);
		p += len + (p[len] == '\n');
	}
}

/* Writes text to path with mode (created or truncated). Returns 0 or -1. */
static int write_file(const char *path, const char *text, mode_t mode)
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

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (remove(path) != 0 && errno != ENOENT) {
		fprintf(stderr, "wfctl dev: cannot remove %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* rm -rf path. Returns 0 or -1 (message printed). */
static int remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return 0;
	return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

static int make_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) != 0 && errno != EEXIST) {
		fprintf(stderr, "wfctl dev: cannot create %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* The first 12 hex digits of SHA-256(path + "\n"), as scripts/demo.sh had it. */
static void path_hash(const char *path, char out[13])
{
	unsigned char d[crypto_hash_sha256_BYTES];
	char hex[2 * crypto_hash_sha256_BYTES + 1];
	char *line = xasprintf("%s\n", path);
	crypto_hash_sha256(d, (const unsigned char *)line, strlen(line));
	free(line);
	hex_encode(d, sizeof d, hex);
	memcpy(out, hex, 12);
	out[12] = '\0';
}

/* Percent-encodes s for a URI query value ('/' kept). New string. */
static char *uri_encode(const char *s)
{
	static const char hexd[] = "0123456789ABCDEF";
	char *out = xmalloc(3 * strlen(s) + 1), *o = out;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~/", *p)) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hexd[*p >> 4];
			*o++ = hexd[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

/* s as a PostgreSQL configuration string: 'it''s'. New string. */
static char *conf_quote(const char *s)
{
	char *out = xmalloc(2 * strlen(s) + 3), *o = out;
	*o++ = '\'';
	for (; *s; s++) {
		if (*s == '\'' || *s == '\\')
			*o++ = *s;
		*o++ = *s;
	}
	*o++ = '\'';
	*o = '\0';
	return out;
}

/* A path shown to the user: relative to the current directory when inside. */
static const char *rel(const struct dev *d, const char *path)
{
	size_t n = strlen(d->cwd);
	if (path && strncmp(path, d->cwd, n) == 0 && path[n] == '/')
		return path + n + 1;
	return path;
}

/* ----------------------------------------------------------------- signals */

/* Waits up to ms for SIGINT, SIGTERM, SIGHUP or SIGCHLD. Returns the stop
 * signal taken, or 0 (timeout or SIGCHLD). */
static int wait_signal(struct dev *d, long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	int sig = sigtimedwait(&d->sigs, NULL, &ts);
	return sig == SIGINT || sig == SIGTERM || sig == SIGHUP ? sig : 0;
}

/* ----------------------------------------------------------------- spawning */

/* In the child after fork: never returns. Reports an exec failure's errno
 * on errfd. */
static void child_exec(const struct dev *d, char *const argv[], const char *log, int as_user,
                       pid_t parent, int errfd)
{
	sigset_t none;
	sigemptyset(&none);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Its own process group: Ctrl-C reaches wfctl only, which stops
	 * everything in order. It dies with us if we are killed. */
	setpgid(0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
		_exit(126);
	int fd = open("/dev/null", O_RDONLY);
	if (fd > 0) {
		dup2(fd, 0);
		close(fd);
	}
	if (log) {
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			goto fail;
		if (fd > 2)
			close(fd);
	}
	if (as_user) {
		if (chdir("/") != 0 || initgroups(PG_USER, d->gid) != 0 || setgid(d->gid) != 0 ||
		    setuid(d->uid) != 0)
			goto fail;
	}
	if (strchr(argv[0], '/'))
		execv(argv[0], argv);
	else
		execvp(argv[0], argv);
fail:;
	int e = errno;
	if (write(errfd, &e, sizeof e) < 0)
		_exit(127);
	_exit(127);
}

/* Starts argv (argv[0] a path, or a name searched in PATH) with its output
 * appended to log (NULL: this terminal), as PG_USER when as_user. Returns
 * the pid, or -1 with the reason printed. */
static pid_t spawn(const struct dev *d, char *const argv[], const char *log, int as_user)
{
	int pfd[2];
	pid_t parent = getpid();
	fflush(stdout);
	fflush(stderr);
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		fprintf(stderr, "wfctl dev: pipe: %s\n", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0)
		child_exec(d, argv, log, as_user, parent, pfd[1]);
	close(pfd[1]);
	if (pid < 0) {
		fprintf(stderr, "wfctl dev: fork: %s\n", strerror(errno));
		close(pfd[0]);
		return -1;
	}
	int err = 0;
	ssize_t n;
	do
		n = read(pfd[0], &err, sizeof err);
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n == (ssize_t)sizeof err) {
		fprintf(stderr, "wfctl dev: cannot run %s%s: %s\n", argv[0],
		        as_user ? " as user " PG_USER : "", strerror(err));
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

/* Runs argv to its end. Returns its exit status, or -1. */
static int run(const struct dev *d, char *const argv[], const char *log, int as_user)
{
	int st;
	pid_t pid = spawn(d, argv, log, as_user);
	if (pid < 0)
		return -1;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void describe_status(int st, char *out, size_t len)
{
	if (WIFEXITED(st))
		snprintf(out, len, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(out, len, "was killed by signal %d (%s)", WTERMSIG(st),
		         strsignal(WTERMSIG(st)));
	else
		snprintf(out, len, "stopped (status %d)", st);
}

static struct child *start_child(struct dev *d, enum stage stage, char *what, char *log,
                                 char *const argv[])
{
	struct child *c = &d->ch[d->nch];
	c->what = what;
	c->log = log;
	c->stage = stage;
	if (log) {
		/* One line between runs, so that a log tells runs apart. */
		char when[40], *line;
		fmt_time_ms(wall_ms(), when, sizeof when);
		FILE *f = fopen(log, "a");
		if (f) {
			line = xasprintf("---- wfctl dev started %s at %s ----\n", what, when);
			fputs(line, f);
			free(line);
			fclose(f);
		}
	}
	c->pid = spawn(d, argv, log, 0);
	d->nch++;
	return c->pid > 0 ? c : NULL;
}

/* Reaps the children that ended. Returns the first that did (its status
 * in *st), or NULL. */
static struct child *reap(struct dev *d, int *st)
{
	struct child *dead = NULL;
	for (int i = 0; i < d->nch; i++) {
		int s;
		struct child *c = &d->ch[i];
		if (c->pid > 0 && waitpid(c->pid, &s, WNOHANG) == c->pid) {
			c->pid = 0;
			if (!dead) {
				dead = c;
				*st = s;
			}
		}
	}
	return dead;
}

static void report_death(const struct dev *d, const struct child *c, int st)
{
	char how[96];
	describe_status(st, how, sizeof how);
	fprintf(stderr, "wfctl dev: the %s %s unexpectedly", c->what, how);
	if (c->log) {
		fprintf(stderr, "; its log is %s:\n", rel(d, c->log));
		print_tail(c->log, 8);
	} else {
		fprintf(stderr, "\n");
	}
}

/* Stops the children of one stage: SIGTERM, then SIGKILL after grace_ms or
 * at a second Ctrl-C. */
static void stop_stage(struct dev *d, enum stage stage, int64_t grace_ms)
{
	int any = 0, st;
	for (int i = 0; i < d->nch; i++)
		if (d->ch[i].stage == stage && d->ch[i].pid > 0) {
			kill(d->ch[i].pid, SIGTERM);
			any = 1;
		}
	int64_t deadline = mono_ms() + grace_ms;
	int killed = 0;
	while (any) {
		any = 0;
		reap(d, &st);
		for (int i = 0; i < d->nch; i++)
			any |= d->ch[i].stage == stage && d->ch[i].pid > 0;
		if (!any)
			break;
		int sig = wait_signal(d, 100);
		if (!killed && (sig || mono_ms() > deadline)) {
			fprintf(stderr, "wfctl dev: %s; killing what is left\n",
			        sig ? "asked again" : "still running after the grace time");
			for (int i = 0; i < d->nch; i++)
				if (d->ch[i].stage == stage && d->ch[i].pid > 0)
					kill(d->ch[i].pid, SIGKILL);
			killed = 1;
		}
	}
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

/* The newest /usr/lib/postgresql/N/bin, or $PG_BIN, or NULL (use PATH). */
static char *find_pgbin(void)
{
	const char *env = getenv("PG_BIN");
	if (env && *env)
		return xstrdup(env);
	glob_t g;
	char *best = NULL;
	if (glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++)
			if (!best || strverscmp(g.gl_pathv[i], best) > 0)
				best = g.gl_pathv[i];
		best = best ? xstrndup(best, strlen(best) - strlen("/pg_ctl")) : NULL;
	}
	globfree(&g);
	return best;
}

static char *pg_prog(const struct dev *d, const char *name)
{
	return d->pgbin ? xasprintf("%s/%s", d->pgbin, name) : xstrdup(name);
}

/* As root: PG_USER exists (created when missing). */
static int find_pg_user(struct dev *d)
{
	struct passwd *pw = getpwnam(PG_USER);
	if (!pw) {
		char *argv[] = {"useradd", "--system", "--no-create-home", PG_USER, NULL};
		printf("creating the system user '%s' for PostgreSQL ...\n", PG_USER);
		if (run(d, argv, NULL, 0) != 0) {
			fprintf(stderr, "wfctl dev: useradd %s failed\n", PG_USER);
			return -1;
		}
		pw = getpwnam(PG_USER);
		if (!pw) {
			fprintf(stderr, "wfctl dev: no user '%s' after useradd\n", PG_USER);
			return -1;
		}
	}
	d->as_user = 1;
	d->uid = pw->pw_uid;
	d->gid = pw->pw_gid;
	return 0;
}

/* 1 when PG_USER may search (traverse) dir. */
static int user_can_traverse(const struct dev *d, const char *dir)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (initgroups(PG_USER, d->gid) != 0 || setgid(d->gid) != 0 || setuid(d->uid) != 0)
			_exit(2);
		_exit(access(dir, X_OK) == 0 ? 0 : 1);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
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

/* --reset: stops a PostgreSQL left running, removes .wf/ and the data
 * directory behind .wf/pg. */
static int reset_data(struct dev *d)
{
	char *link = xasprintf("%s/pg", d->wf);
	char *real = realpath(link, NULL);
	char *data = real ? xasprintf("%s/data", real) : NULL;
	char *pidfile = data ? xasprintf("%s/postmaster.pid", data) : NULL;
	char *pg_ctl = pg_prog(d, "pg_ctl");
	int rc = -1;
	if (pidfile && exists(pidfile)) {
		char *argv[] = {pg_ctl, "-D", data, "-m", "fast", "-w", "-t", "30", "stop", NULL};
		if (run(d, argv, "/dev/null", d->as_user) != 0) {
			char *now[] = {pg_ctl, "-D", data, "-m", "immediate", "stop", NULL};
			if (run(d, now, "/dev/null", d->as_user) != 0 && exists(pidfile)) {
				fprintf(stderr, "wfctl dev: cannot stop the PostgreSQL in %s\n",
				        data);
				goto out;
			}
		}
	}
	struct stat st;
	if (real && lstat(link, &st) == 0 && S_ISLNK(st.st_mode) &&
	    strncmp(real, VAR_DIR "/", strlen(VAR_DIR) + 1) == 0) {
		if (remove_tree(real) != 0)
			goto out;
		printf("removed %s\n", real);
	}
	if (remove_tree(d->wf) != 0)
		goto out;
	printf("removed .wf/\n");
	rc = 0;
out:
	free(pg_ctl);
	free(pidfile);
	free(data);
	free(real);
	free(link);
	return rc;
}

/* Creates .wf, .wf/logs and the PostgreSQL directory (behind a symlink in
 * VAR_DIR when PG_USER cannot reach .wf). Sets pgdir and pgdata. */
static int make_dirs(struct dev *d)
{
	char *link = xasprintf("%s/pg", d->wf);
	int rc = -1;
	struct stat st;
	if (make_dir(d->wf, 0700) != 0 || make_dir(d->logs, 0700) != 0)
		goto out;
	/* PG_USER needs to traverse .wf to reach .wf/pg. */
	if (chmod(d->wf, d->as_user ? 0711 : 0700) != 0)
		goto out;
	int is_link = lstat(link, &st) == 0 && S_ISLNK(st.st_mode);
	if (d->as_user && !user_can_traverse(d, d->wf)) {
		char h[13];
		path_hash(d->cwd, h);
		d->pgdir = xasprintf("%s/%s", VAR_DIR, h);
		if (!is_link && lstat(link, &st) == 0) {
			fprintf(stderr,
			        "wfctl dev: the data in %s/ cannot be reached by the '%s' user;\n"
			        "make the parent directories searchable (chmod o+x) or start "
			        "afresh with --reset\n",
			        rel(d, link), PG_USER);
			goto out;
		}
		if (make_dir(VAR_DIR, 0755) != 0 || make_dir(d->pgdir, 0700) != 0)
			goto out;
		if (!is_link && symlink(d->pgdir, link) != 0) {
			fprintf(stderr, "wfctl dev: cannot link %s: %s\n", link, strerror(errno));
			goto out;
		}
	} else if (is_link) {
		/* Made by an earlier run: keep using what it points to. */
		char target[4096];
		ssize_t n = readlink(link, target, sizeof target - 1);
		if (n <= 0)
			goto out;
		target[n] = '\0';
		d->pgdir = xstrdup(target);
		if (make_dir(d->pgdir, 0700) != 0)
			goto out;
	} else {
		d->pgdir = xstrdup(link);
		if (make_dir(d->pgdir, 0700) != 0)
			goto out;
	}
	if (d->as_user && (chown(d->pgdir, d->uid, d->gid) != 0 || chmod(d->pgdir, 0700) != 0)) {
		fprintf(stderr, "wfctl dev: cannot give %s to %s: %s\n", d->pgdir, PG_USER,
		        strerror(errno));
		goto out;
	}
	/* sockaddr_un.sun_path holds 107 bytes. */
	if (strlen(d->pgdir) + strlen("/.s.PGSQL.5432") > 107) {
		fprintf(stderr,
		        "wfctl dev: %s is too long a path for PostgreSQL's Unix socket;\n"
		        "run wfctl dev from a directory with a shorter path\n",
		        d->pgdir);
		goto out;
	}
	d->pgdata = xasprintf("%s/data", d->pgdir);
	rc = 0;
out:
	free(link);
	return rc;
}

/* ---------------------------------------------------------------- PostgreSQL */

/* data/wf-dev.conf, included from postgresql.conf: a socket in pgdir, no TCP. */
static int write_pg_conf(struct dev *d)
{
	char *conf = xasprintf("%s/postgresql.conf", d->pgdata);
	char *mine = xasprintf("%s/wf-dev.conf", d->pgdata);
	char *sock = conf_quote(d->pgdir);
	char *text = xasprintf("# written by wfctl dev at each start\n"
	                       "listen_addresses = ''\n"
	                       "unix_socket_directories = %s\n"
	                       "port = %d\n"
	                       "synchronous_commit = off\n"
	                       "max_connections = 100\n",
	                       sock, PG_PORT);
	int rc = -1;
	char line[512];
	int included = 0;
	FILE *f = fopen(conf, "r");
	while (f && fgets(line, sizeof line, f))
		included |= strstr(line, "include_if_exists = 'wf-dev.conf'") != NULL;
	if (f)
		fclose(f);
	if (!included) {
		f = fopen(conf, "a");
		if (!f || fputs("\ninclude_if_exists = 'wf-dev.conf'\n", f) < 0) {
			fprintf(stderr, "wfctl dev: cannot update %s\n", conf);
			if (f)
				fclose(f);
			goto out;
		}
		fclose(f);
	}
	if (write_file(mine, text, 0600) != 0)
		goto out;
	if (d->as_user && chown(mine, d->uid, d->gid) != 0)
		goto out;
	rc = 0;
out:
	free(text);
	free(sock);
	free(mine);
	free(conf);
	return rc;
}

static pid_t read_postmaster_pid(const struct dev *d)
{
	char *path = xasprintf("%s/postmaster.pid", d->pgdata);
	FILE *f = fopen(path, "r");
	long pid = 0;
	if (f) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	free(path);
	return (pid_t)pid;
}

static int start_pg(struct dev *d)
{
	char *initdb = pg_prog(d, "initdb"), *pg_ctl = pg_prog(d, "pg_ctl");
	char *version = xasprintf("%s/PG_VERSION", d->pgdata);
	char *initlog = xasprintf("%s/initdb.log", d->logs);
	char *pglog = xasprintf("%s/postgres.log", d->logs);
	char *pidfile = xasprintf("%s/postmaster.pid", d->pgdata);
	char *enc = uri_encode(d->pgdir);
	int rc = -1;
	if (!exists(version)) {
		printf("initializing PostgreSQL in .wf/pg (first run) ...\n");
		char *argv[] = {initdb,  "-D", d->pgdata, "-A",        "trust", "-U",
		                PG_USER, "-E", "UTF8",    "--no-sync", NULL};
		int st = run(d, argv, initlog, d->as_user);
		if (st != 0) {
			if (st > 0) {
				fprintf(stderr, "wfctl dev: initdb failed; see %s:\n",
				        rel(d, initlog));
				print_tail(initlog, 8);
			}
			if (!d->pgbin)
				fprintf(stderr,
				        "hint: install PostgreSQL (make deps) or set PG_BIN\n");
			goto out;
		}
	} else {
		printf("reusing the data in .wf/ (wfctl dev --reset starts afresh)\n");
	}
	if (write_pg_conf(d) != 0)
		goto out;
	char *status[] = {pg_ctl, "-D", d->pgdata, "status", NULL};
	if (exists(pidfile) && run(d, status, "/dev/null", d->as_user) == 0) {
		printf("PostgreSQL was still running from an earlier start: using it\n");
	} else {
		printf("starting PostgreSQL ...\n");
		char *argv[] = {pg_ctl, "-D", d->pgdata, "-w", "-t", "60", "start", NULL};
		if (run(d, argv, pglog, d->as_user) != 0) {
			fprintf(stderr, "wfctl dev: PostgreSQL did not start; see %s:\n",
			        rel(d, pglog));
			print_tail(pglog, 8);
			goto out;
		}
	}
	d->pg_running = 1;
	d->postmaster = read_postmaster_pid(d);
	d->dburl =
	    xasprintf("postgresql:///postgres?host=%s&port=%d&user=%s", enc, PG_PORT, PG_USER);
	setenv("WF_DATABASE_URL", d->dburl, 1);
	rc = 0;
out:
	free(enc);
	free(pidfile);
	free(pglog);
	free(initlog);
	free(version);
	free(pg_ctl);
	free(initdb);
	return rc;
}

/* 1 while pid runs (a zombie waiting for init does not count). */
static int pid_alive(pid_t pid)
{
	char path[64], text[256];
	if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH))
		return 0;
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 1;
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	const char *paren = strrchr(text, ')');
	return !(paren && paren[1] == ' ' && paren[2] == 'Z');
}

static void stop_pg(struct dev *d)
{
	if (!d->pg_running)
		return;
	char *pg_ctl = pg_prog(d, "pg_ctl");
	char *pglog = xasprintf("%s/postgres.log", d->logs);
	char *argv[] = {pg_ctl, "-D", d->pgdata, "-m", "fast", "-w", "-t", "30", "stop", NULL};
	printf("stopping PostgreSQL ...\n");
	if (run(d, argv, pglog, d->as_user) != 0) {
		char *now[] = {pg_ctl, "-D", d->pgdata, "-m", "immediate", "stop", NULL};
		if (run(d, now, pglog, d->as_user) != 0 && pid_alive(d->postmaster))
			fprintf(stderr, "wfctl dev: PostgreSQL (pid %ld) did not stop\n",
			        (long)d->postmaster);
	}
	/* pg_ctl returns once postmaster.pid is gone, a moment before the
	 * process itself. */
	for (int i = 0; i < 100 && pid_alive(d->postmaster); i++)
		sleep_ms(50);
	d->pg_running = 0;
	free(pglog);
	free(pg_ctl);
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
		r = write_file(path, line, 0600);
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

/* ------------------------------------------------------- engine, executors */

/* The HTTP helper to start: when DIR's workflows call 127.0.0.1:8089 and a
 * helpers/flaky_server.py is found in DIR or in the repository's examples. */
static int plan_helper(struct dev *d, const struct cli_wf_files *fs)
{
	char port[32];
	int needed = 0;
	snprintf(port, sizeof port, ":%d/", HELPER_PORT);
	for (size_t i = 0; i < fs->n; i++)
		needed |= fs->v[i].source && strstr(fs->v[i].source, port) != NULL;
	if (!needed)
		return 0;
	char *cand[2] = {xasprintf("%s/helpers/flaky_server.py", d->dir),
	                 xasprintf("%s/../examples/helpers/flaky_server.py", d->bindir)};
	for (int i = 0; i < 2; i++) {
		if (!d->helper && exists(cand[i]))
			d->helper = realpath(cand[i], NULL);
		free(cand[i]);
	}
	if (!d->helper)
		printf("note: workflows in %s call 127.0.0.1:%d but no helpers/flaky_server.py "
		       "was found to serve it\n",
		       d->dir, HELPER_PORT);
	else if (port_in_use(HELPER_PORT)) {
		printf("note: port %d is in use already: the examples' HTTP helper is not "
		       "started (the examples call whatever listens there)\n",
		       HELPER_PORT);
		free(d->helper);
		d->helper = NULL;
	}
	return 0;
}

static char *child_log(const struct dev *d, const char *name)
{
	return d->fg_logs ? NULL : xasprintf("%s/%s.log", d->logs, name);
}

/* Waits for the engine's /healthz. */
static int wait_healthy(struct dev *d, const struct child *engine)
{
	int64_t deadline = mono_ms() + START_TIMEOUT_MS;
	for (;;) {
		struct cli_response r;
		int got = cli_request("GET", "/healthz", NULL, NULL, &r) == 0 && r.status == 200;
		cli_response_release(&r);
		if (got)
			return 0;
		int st;
		struct child *dead = reap(d, &st);
		if (dead) {
			report_death(d, dead, st);
			return -1;
		}
		if (mono_ms() > deadline) {
			fprintf(stderr,
			        "wfctl dev: the engine did not answer %s/healthz within %ds",
			        d->url, START_TIMEOUT_MS / 1000);
			if (engine->log) {
				fprintf(stderr, "; its log is %s:\n", rel(d, engine->log));
				print_tail(engine->log, 8);
			} else {
				fprintf(stderr, "\n");
			}
			return -1;
		}
		if (wait_signal(d, 100))
			return 1;
	}
}

/* Waits (a while) until every executor said hello. Returns 1 when asked to
 * stop, -1 when a child died, else 0. */
static int wait_executors(struct dev *d)
{
	int64_t deadline = mono_ms() + EXECUTORS_TIMEOUT_MS;
	while (d->nexec > 0) {
		json_t *resp = NULL;
		int online = 0;
		if (cli_call("GET", "/api/v1/executors?state=online&limit=500", NULL, NULL,
		             "executors", &resp) == EXIT_OK) {
			json_t *items = json_object_get(resp, "items"), *it;
			size_t i;
			json_array_foreach(items, i, it)
			{
				const char *id = json_string_value(json_object_get(it, "id"));
				online += id && strncmp(id, "dev-executor-", 13) == 0;
			}
		}
		json_decref(resp);
		if (online >= d->nexec)
			return 0;
		int st;
		struct child *dead = reap(d, &st);
		if (dead) {
			report_death(d, dead, st);
			return -1;
		}
		if (mono_ms() > deadline) {
			printf("note: only %d of %d executors are online so far; see .wf/logs/\n",
			       online, d->nexec);
			return 0;
		}
		if (wait_signal(d, 200))
			return 1;
	}
	return 0;
}

/* Starts the engine, the executors and the helper, and waits for them.
 * Returns 0, 1 when asked to stop meanwhile, -1 on failure. */
static int start_services(struct dev *d)
{
	char *engine = xasprintf("%s/wf-engine", d->bindir);
	char *executor = xasprintf("%s/wf-executor", d->bindir);
	char *http = xasprintf("127.0.0.1:%d", d->http_port);
	char *zmq = xasprintf("tcp://127.0.0.1:%d", d->zmq_port);
	int rc = -1;

	struct cli_dev_keys k;
	if (cli_dev_keys(d->wf, &k) != 0)
		goto out;
	char *eargv[] = {engine, "--http", http, "--zmq", zmq, "--web", d->web,
	                 "--curve-secret", k.engine_key, "--executor-keys", k.allow, NULL};
	struct child *e =
	    start_child(d, STAGE_ENGINE, xstrdup("engine"), child_log(d, "engine"), eargv);
	if (!e)
		goto out;
	rc = wait_healthy(d, e);
	if (rc != 0)
		goto out;
	rc = -1;
	int port = d->zmq_port;
	for (int i = 1; i <= d->nexec; i++) {
		do
			port++;
		while (port <= 65535 &&
		       (port == d->http_port || port == HELPER_PORT || port_in_use(port)));
		if (port > 65535) {
			fprintf(stderr,
			        "wfctl dev: no free port above --zmq %d for the executors\n",
			        d->zmq_port);
			goto out;
		}
		char id[32], listen[64], name[48], logname[32];
		snprintf(id, sizeof id, "dev-executor-%d", i);
		snprintf(listen, sizeof listen, "tcp://127.0.0.1:%d", port);
		snprintf(name, sizeof name, "executor %s", id);
		snprintf(logname, sizeof logname, "executor-%d", i);
		char *xargv[] = {executor, "--id", id, "--listen", listen, "--engine", zmq,
		                 "--slots", "4", "--curve-secret", k.executor_key,
		                 "--engine-key", k.engine_pub, NULL};
		if (!start_child(d, STAGE_EXECUTOR, xstrdup(name), child_log(d, logname), xargv))
			goto out;
	}
	if (d->helper) {
		char hport[16];
		snprintf(hport, sizeof hport, "%d", HELPER_PORT);
		char *hargv[] = {"python3", d->helper, hport, NULL};
		if (!start_child(d, STAGE_HELPER, xstrdup("HTTP helper (flaky_server.py)"),
		                 child_log(d, "flaky"), hargv))
			fprintf(stderr, "wfctl dev: going on without the examples' HTTP helper\n");
	}
	rc = wait_executors(d);
out:
	free(zmq);
	free(http);
	free(executor);
	free(engine);
	return rc;
}

static int write_env(struct dev *d)
{
	char *path = xasprintf("%s/env", d->wf);
	char *text = xasprintf("# written by wfctl dev; in another shell: . .wf/env\n"
	                       "export WF_URL='%s'\n"
	                       "export WF_TOKEN='%s'\n"
	                       "export WF_DATABASE_URL='%s'\n",
	                       d->url, d->token, d->dburl);
	int rc = write_file(path, text, 0600);
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
	rc = bad ? -1 : write_file(path, b.data, 0644);
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
	       d->url, d->token, rel(d, d->bindir), d->fg_logs ? "this terminal" : ".wf/logs/");
	fflush(stdout);
}

/* Until Ctrl-C (EXIT_OK) or a process died (EXIT_FAIL). */
static int supervise(struct dev *d)
{
	for (;;) {
		int sig = wait_signal(d, 1000), st;
		if (sig) {
			printf("\nstopping wf (%s) ...\n", strsignal(sig));
			return EXIT_OK;
		}
		struct child *dead = reap(d, &st);
		if (dead) {
			report_death(d, dead, st);
			return EXIT_FAIL;
		}
		if (d->postmaster > 0 && !pid_alive(d->postmaster)) {
			fprintf(stderr,
			        "wfctl dev: PostgreSQL (pid %ld) stopped unexpectedly; its log is "
			        "%s/postgres.log:\n",
			        (long)d->postmaster, rel(d, d->logs));
			char *pglog = xasprintf("%s/postgres.log", d->logs);
			print_tail(pglog, 8);
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
		stop_stage(d, STAGE_EXECUTOR, STOP_EXECUTORS_MS);
		printf("stopping the engine ...\n");
		fflush(stdout);
		stop_stage(d, STAGE_ENGINE, STOP_ENGINE_MS);
		stop_stage(d, STAGE_HELPER, STOP_HELPER_MS);
	}
	stop_pg(d);
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
	if (port_in_use(d->http_port)) {
		fprintf(stderr,
		        "wfctl dev: port %d (the engine's HTTP port) is in use; stop what uses "
		        "it or choose another with --http PORT\n",
		        d->http_port);
		return -1;
	}
	if (port_in_use(d->zmq_port)) {
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
	if (exists(d.wf) && take_lock(&d) != 0)
		goto out;
	if (check_ports(&d) != 0)
		goto out;
	d.logs = xasprintf("%s/logs", d.wf);
	d.bindir = find_bindir();
	d.pgbin = find_pgbin();
	char *web = xasprintf("%s/../web", d.bindir);
	d.web = realpath(web, NULL);
	free(web);
	if (!d.web)
		d.web = xstrdup(WF_DATADIR "/web");
	d.url = xasprintf("http://127.0.0.1:%d", d.http_port);
	if (d.dir && plan_helper(&d, &fs) != 0)
		goto out;
	if (geteuid() == 0 && find_pg_user(&d) != 0)
		goto out;
	if (d.reset && reset_data(&d) != 0)
		goto out;
	if (make_dirs(&d) != 0 || take_lock(&d) != 0)
		goto out;

	if (start_pg(&d) != 0 || prepare_db(&d) != 0)
		goto stop;
	cli_opts.url = d.url;
	cli_opts.token = d.token;
	printf("starting the engine on %s and %d executor%s ...\n", d.url, d.nexec,
	       d.nexec == 1 ? "" : "s");
	int started = start_services(&d);
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
