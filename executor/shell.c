/* shell and sh steps: posix_spawn in a process group of their own, argv
 * exactly as given (never through a shell, except sh's own /bin/sh -c),
 * stdout and stderr through one pipe into a bounded tail. When the step's
 * main process exits, whatever it left behind in its group is killed and the
 * task finishes once the group is gone (a real daemon must setsid). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

#define OUTPUTS_MAX   (1024 * 1024) /* bytes of the WF_OUTPUT file */
#define GROUP_WAIT_MS 2000          /* how long leftovers of an exited step may take to go */

extern char **environ;

struct vec {
	char **v;
	size_t n;
};

static void vec_push(struct vec *e, char *s)
{
	e->v = xrealloc(e->v, (e->n + 2) * sizeof *e->v);
	e->v[e->n++] = s;
	e->v[e->n] = NULL;
}

static void vec_free(struct vec *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	e->v = NULL;
	e->n = 0;
}

/* Sets KEY=val, replacing an earlier KEY. */
static void env_set(struct vec *e, const char *key, const char *val)
{
	size_t kl = strlen(key);
	char *kv = xasprintf("%s=%s", key, val);
	for (size_t i = 0; i < e->n; i++) {
		if (strncmp(e->v[i], key, kl) == 0 && e->v[i][kl] == '=') {
			free(e->v[i]);
			e->v[i] = kv;
			return;
		}
	}
	vec_push(e, kv);
}

static int valid_env_name(const char *k)
{
	if (!*k)
		return 0;
	for (const char *p = k; *p; p++)
		if (*p == '=')
			return 0;
	return 1;
}

/* Adds every KEY: value of obj, expanding secrets in the values. */
static int env_add_object(struct task *t, struct vec *e, const json_t *obj, const char *what,
                          char *err, size_t errlen)
{
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)obj, k, v)
	{
		if (!valid_env_name(k)) {
			snprintf(err, errlen, "%s: invalid environment variable name '%s'", what,
			         k);
			return -1;
		}
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
			snprintf(err, errlen, "%s.%s must be a string without NUL bytes", what, k);
			return -1;
		}
		char *val;
		if (secrets_expand(json_string_value(v), t->cfg->secrets_dir, t->cfg->id,
		                   &t->secrets, &val, err, errlen))
			return -1;
		env_set(e, k, val);
		free(val);
	}
	return 0;
}

static int build_env(struct task *t, const json_t *step, struct vec *e, char *err, size_t errlen)
{
	const char *path = getenv("PATH");
	env_set(e, "PATH", path ? path : "/usr/local/bin:/usr/bin:/bin");
	static const char *const keep[] = {"HOME", "LANG"};
	for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
		const char *v = getenv(keep[i]);
		if (v)
			env_set(e, keep[i], v);
	}
	const json_t *se = json_object_get(step, "env");
	if (json_is_object(se) && env_add_object(t, e, se, "step.env", err, errlen))
		return -1;
	const json_t *me = json_object_get(t->msg, "env");
	if (json_is_object(me) && env_add_object(t, e, me, "env", err, errlen))
		return -1;
	/* the WF_* variables come last: a step cannot fake them */
	char num[32];
	snprintf(num, sizeof num, "%lld",
	         (long long)json_integer_value(json_object_get(t->msg, "run_id")));
	env_set(e, "WF_RUN_ID", num);
	const char *task = json_string_value(json_object_get(t->msg, "task"));
	env_set(e, "WF_TASK", task ? task : "");
	snprintf(num, sizeof num, "%d", t->attempt);
	env_set(e, "WF_ATTEMPT", num);
	snprintf(num, sizeof num, "%lld", (long long)t->task_run_id);
	env_set(e, "WF_TASK_RUN_ID", num);
	const char *key = json_string_value(json_object_get(t->msg, "idempotency_key"));
	env_set(e, "WF_IDEMPOTENCY_KEY", key ? key : "");
	env_set(e, "WF_OUTPUT", t->output_path);
	env_set(e, "WF_EXECUTOR_ID", t->cfg && t->cfg->id ? t->cfg->id : "");
	return 0;
}

static int build_argv(struct task *t, const json_t *step, struct vec *a, char *err, size_t errlen)
{
	const char *type = json_string_value(json_object_get(step, "type"));
	if (strcmp(type, "sh") == 0) {
		const json_t *s = json_object_get(step, "script");
		if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s)) {
			snprintf(err, errlen, "step.script must be a string without NUL bytes");
			return -1;
		}
		/* the script is never expanded: values reach it through the environment */
		vec_push(a, xstrdup("/bin/sh"));
		vec_push(a, xstrdup("-c"));
		vec_push(a, xstrdup(json_string_value(s)));
		return 0;
	}
	const json_t *argv = json_object_get(step, "argv");
	if (!json_is_array(argv) || json_array_size(argv) == 0) {
		snprintf(err, errlen, "step.argv must be a non-empty array of strings");
		return -1;
	}
	size_t i;
	const json_t *v;
	json_array_foreach(argv, i, v)
	{
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
			snprintf(err, errlen, "step.argv[%zu] must be a string without NUL bytes",
			         i);
			return -1;
		}
		char *s;
		if (secrets_expand(json_string_value(v), t->cfg->secrets_dir, t->cfg->id,
		                   &t->secrets, &s, err, errlen))
			return -1;
		vec_push(a, s);
	}
	if (!*a->v[0]) {
		snprintf(err, errlen, "step.argv[0] must not be empty");
		return -1;
	}
	return 0;
}

/* Finds a command without '/' in the executor's PATH (as posix_spawnp would)
 * so "not found" is reported the same way everywhere. New string or NULL. */
static char *search_path(const char *cmd)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *colon = strchr(path, ':');
		size_t len = colon ? (size_t)(colon - path) : strlen(path);
		char *full = xasprintf("%.*s%s%s", (int)len, path, len ? "/" : "", cmd);
		struct stat st;
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
			return full;
		free(full);
		path += len + (colon ? 1 : 0);
	}
	return NULL;
}

static int make_output_file(struct task *t, char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	char *path = xasprintf("%s/wf-output-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create the WF_OUTPUT file %s: %s", path,
		         strerror(errno));
		free(path);
		return -1;
	}
	close(fd);
	t->output_path = path;
	return 0;
}

int runner_shell_start(struct task *t, const json_t *step, char *err, size_t errlen)
{
	int rc = -1;
	struct vec argv = {0}, env = {0};
	int pfd[2] = {-1, -1};
	int fa_init = 0, attr_init = 0;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;

	if (build_argv(t, step, &argv, err, errlen) || make_output_file(t, err, errlen) ||
	    build_env(t, step, &env, err, errlen))
		goto out;
	const json_t *dirv = json_object_get(step, "dir");
	const char *dir = json_is_string(dirv) ? json_string_value(dirv) : NULL;
	if (dir && *dir) {
		struct stat st;
		if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "cannot change to directory '%s': %s", dir,
			         errno && stat(dir, &st) != 0 ? strerror(errno)
			                                      : "Not a directory");
			goto out;
		}
	}
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
		goto out;
	}
	if (fcntl(pfd[0], F_SETFL, O_NONBLOCK) != 0) {
		snprintf(err, errlen, "cannot set up the pipe: %s", strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	fa_init = 1;
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	if (dir && *dir)
		posix_spawn_file_actions_addchdir_np(&fa, dir);
	posix_spawnattr_init(&attr);
	attr_init = 1;
	sigset_t none, def;
	sigemptyset(&none);
	sigemptyset(&def);
	static const int sigs[] = {SIGPIPE, SIGTERM, SIGINT,  SIGHUP, SIGCHLD,
	                           SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaddset(&def, sigs[i]);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &def);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                                    POSIX_SPAWN_SETSIGDEF);
	pid_t pid;
	int e;
	if (strchr(argv.v[0], '/')) {
		e = posix_spawn(&pid, argv.v[0], &fa, &attr, argv.v, env.v);
	} else {
		char *full = search_path(argv.v[0]);
		e = full ? posix_spawn(&pid, full, &fa, &attr, argv.v, env.v) : ENOENT;
		free(full);
	}
	if (e != 0) {
		snprintf(err, errlen, "cannot execute '%s': %s", argv.v[0], strerror(e));
		goto out;
	}
	t->pid = pid;
	t->out_fd = pfd[0];
	pfd[0] = -1;
	tail_init(&t->out, t->cfg->max_output + t->secrets.longest + 64);
	log_debug("step spawned", "task_run_id=%lld attempt=%d pid=%ld", (long long)t->task_run_id,
	          t->attempt, (long)pid);
	rc = 0;
out:
	if (fa_init)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_init)
		posix_spawnattr_destroy(&attr);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	vec_free(&argv);
	vec_free(&env);
	return rc;
}

void runner_shell_read(struct task *t)
{
	char chunk[65536];
	/* bounded per call so one chatty step cannot starve the loop */
	for (int i = 0; i < 16 && t->out_fd >= 0; i++) {
		ssize_t r = read(t->out_fd, chunk, sizeof chunk);
		if (r > 0) {
			tail_append(&t->out, chunk, (size_t)r);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		close(t->out_fd); /* EOF or a read error */
		t->out_fd = -1;
	}
}

void runner_shell_signal(struct task *t, int sig)
{
	if (t->pid > 0 && kill(-t->pid, sig) != 0 && errno != ESRCH)
		log_warn("cannot signal a step", "task_run_id=%lld pgid=%ld error=%s",
		         (long long)t->task_run_id, (long)t->pid, strerror(errno));
}

/* Reads the WF_OUTPUT file: 0 with *outputs (object or NULL when empty), or
 * -1 with a message. */
static int read_outputs(const char *path, json_t **outputs, char *err, size_t errlen)
{
	*outputs = NULL;
	struct stat st;
	if (stat(path, &st) != 0 || st.st_size == 0)
		return 0;
	if (st.st_size > OUTPUTS_MAX) {
		snprintf(err, errlen, "WF_OUTPUT file is %lld bytes, more than the %d allowed",
		         (long long)st.st_size, OUTPUTS_MAX);
		return -1;
	}
	json_error_t je;
	json_t *v = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!v) {
		/* a file of only whitespace counts as empty */
		FILE *f = fopen(path, "re");
		int c, blank = 1;
		while (f && (c = fgetc(f)) != EOF)
			if (c != ' ' && c != '\n' && c != '\t' && c != '\r')
				blank = 0;
		if (f)
			fclose(f);
		if (blank)
			return 0;
		snprintf(err, errlen, "WF_OUTPUT is not valid JSON: %s (line %d, column %d)",
		         je.text, je.line, je.column);
		return -1;
	}
	if (!json_is_object(v)) {
		snprintf(err, errlen, "WF_OUTPUT must hold a JSON object, not %s",
		         json_is_array(v) ? "an array" : "a scalar");
		json_decref(v);
		return -1;
	}
	*outputs = v;
	return 0;
}

int runner_shell_poll(struct task *t, int64_t now)
{
	if (!t->exited)
		return 0;
	runner_shell_read(t);
	/* the step is over: what it left running in its group goes too */
	if (kill(-t->pid, 0) == 0) {
		if (now - t->exited_mono < GROUP_WAIT_MS) {
			kill(-t->pid, SIGKILL);
			return 0;
		}
		log_warn("step left processes that do not go away", "task_run_id=%lld pgid=%ld",
		         (long long)t->task_run_id, (long)t->pid);
	}
	runner_shell_read(t);
	if (t->out_fd >= 0) {
		close(t->out_fd);
		t->out_fd = -1;
	}

	const char *status;
	int exit_code = -1;
	char error[512] = "";
	json_t *outputs = NULL;
	char oerr[300];
	int out_rc = read_outputs(t->output_path, &outputs, oerr, sizeof oerr);
	if (WIFEXITED(t->wstatus))
		exit_code = WEXITSTATUS(t->wstatus);
	if (t->stop_status) {
		status = t->stop_status;
		snprintf(error, sizeof error, "%s", t->stop_error ? t->stop_error : status);
	} else if (exit_code == 0) {
		status = "succeeded";
		if (out_rc) {
			status = "failed";
			snprintf(error, sizeof error, "%s", oerr);
		}
	} else if (exit_code > 0) {
		status = "failed";
		snprintf(error, sizeof error, "exit status %d", exit_code);
	} else {
		status = "failed";
		int sig = WIFSIGNALED(t->wstatus) ? WTERMSIG(t->wstatus) : 0;
		snprintf(error, sizeof error, "killed by signal %d (%s)", sig, strsignal(sig));
	}
	char *output = output_from_tail(&t->out, t->cfg->max_output, &t->secrets);
	exec_task_done(t->ex, t, status, exit_code, 0, error[0] ? error : NULL, output, outputs);
	free(output);
	return 1;
}
