/* wfctl dev: the child processes. Every program is started with fork + exec
 * of an argv array (no shell), in its own process group, its output in
 * .wf/logs/ or on this terminal; the engine, the executors and the
 * examples' HTTP helper are started, watched and stopped by stage. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/dev_int.h"
#include "cli/files.h"
#include "util.h"
#include "xalloc.h"

#define HELPER_PORT          8089
#define START_TIMEOUT_MS     30000
#define EXECUTORS_TIMEOUT_MS 15000

/* ------------------------------------------------------------------- logs */

/* Prints the last lines of a log file on stderr, indented. */
void dev_print_tail(const char *path, int lines)
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

static char *child_log(const struct dev *d, const char *name)
{
	return d->fg_logs ? NULL : xasprintf("%s/%s.log", d->logs, name);
}

/* ----------------------------------------------------------------- signals */

/* Waits up to ms for SIGINT, SIGTERM, SIGHUP or SIGCHLD. Returns the stop
 * signal taken, or 0 (timeout or SIGCHLD). */
int dev_wait_signal(struct dev *d, long ms)
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
int dev_run(const struct dev *d, char *const argv[], const char *log, int as_user)
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
struct child *dev_reap(struct dev *d, int *st)
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

void dev_report_death(const struct dev *d, const struct child *c, int st)
{
	char how[96];
	describe_status(st, how, sizeof how);
	fprintf(stderr, "wfctl dev: the %s %s unexpectedly", c->what, how);
	if (c->log) {
		fprintf(stderr, "; its log is %s:\n", dev_rel(d, c->log));
		dev_print_tail(c->log, 8);
	} else {
		fprintf(stderr, "\n");
	}
}

/* Stops the children of one stage: SIGTERM, then SIGKILL after grace_ms or
 * at a second Ctrl-C. */
void dev_stop_stage(struct dev *d, enum stage stage, int64_t grace_ms)
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
		dev_reap(d, &st);
		for (int i = 0; i < d->nch; i++)
			any |= d->ch[i].stage == stage && d->ch[i].pid > 0;
		if (!any)
			break;
		int sig = dev_wait_signal(d, 100);
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

/* 1 while pid runs (a zombie waiting for init does not count). */
int dev_pid_alive(pid_t pid)
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

/* ------------------------------------------------------- engine, executors */

/* 1 when something listens on (or holds) 127.0.0.1:port. */
int dev_port_in_use(int port)
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

/* The HTTP helper to start: when DIR's workflows call 127.0.0.1:8089 and a
 * helpers/flaky_server.py is found in DIR or in the repository's examples. */
int dev_plan_helper(struct dev *d, const struct cli_wf_files *fs)
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
		if (!d->helper && dev_exists(cand[i]))
			d->helper = realpath(cand[i], NULL);
		free(cand[i]);
	}
	if (!d->helper)
		printf("note: workflows in %s call 127.0.0.1:%d but no helpers/flaky_server.py "
		       "was found to serve it\n",
		       d->dir, HELPER_PORT);
	else if (dev_port_in_use(HELPER_PORT)) {
		printf("note: port %d is in use already: the examples' HTTP helper is not "
		       "started (the examples call whatever listens there)\n",
		       HELPER_PORT);
		free(d->helper);
		d->helper = NULL;
	}
	return 0;
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
		struct child *dead = dev_reap(d, &st);
		if (dead) {
			dev_report_death(d, dead, st);
			return -1;
		}
		if (mono_ms() > deadline) {
			fprintf(stderr,
			        "wfctl dev: the engine did not answer %s/healthz within %ds",
			        d->url, START_TIMEOUT_MS / 1000);
			if (engine->log) {
				fprintf(stderr, "; its log is %s:\n", dev_rel(d, engine->log));
				dev_print_tail(engine->log, 8);
			} else {
				fprintf(stderr, "\n");
			}
			return -1;
		}
		if (dev_wait_signal(d, 100))
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
		struct child *dead = dev_reap(d, &st);
		if (dead) {
			dev_report_death(d, dead, st);
			return -1;
		}
		if (mono_ms() > deadline) {
			printf("note: only %d of %d executors are online so far; see .wf/logs/\n",
			       online, d->nexec);
			return 0;
		}
		if (dev_wait_signal(d, 200))
			return 1;
	}
	return 0;
}

/* Starts the engine, the executors and the helper, and waits for them.
 * Returns 0, 1 when asked to stop meanwhile, -1 on failure. */
int dev_start_services(struct dev *d)
{
	char *engine = xasprintf("%s/wf-engine", d->bindir);
	char *executor = xasprintf("%s/wf-executor", d->bindir);
	char *http = xasprintf("127.0.0.1:%d", d->http_port);
	char *zmq = xasprintf("tcp://127.0.0.1:%d", d->zmq_port);
	int rc = -1;

	struct cli_dev_keys k;
	if (cli_dev_keys(d->wf, &k) != 0)
		goto out;
	char *eargv[] = {engine,       "--http",          http,    "--zmq",
	                 zmq,          "--web",           d->web,  "--curve-secret",
	                 k.engine_key, "--executor-keys", k.allow, NULL};
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
		       (port == d->http_port || port == HELPER_PORT || dev_port_in_use(port)));
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
		char *xargv[] = {
		    executor,     "--id",    id,  "--listen",       listen,         "--engine",
		    zmq,          "--slots", "4", "--curve-secret", k.executor_key, "--engine-key",
		    k.engine_pub, NULL};
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
