/* wf-executor: configuration, the event loop and the task runners.
 * One thread: zmq_poll waits on the PULL socket, a self-pipe fed by the
 * signal handlers, every child's output pipe and libcurl's sockets. Signals
 * only set flags; the loop does the work. */
#ifndef WF_EXEC_H
#define WF_EXEC_H
#include <curl/curl.h>
#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "breaker.h"
#include "buf.h"

struct exec_config {
	char *id;
	char *listen;
	char *advertise; /* endpoint announced in hello (default: listen) */
	char **engines;
	size_t nengines;
	char *pool;
	char **labels;
	size_t nlabels;
	int slots;
	int64_t heartbeat_ms;
	int hello_every; /* hello again every N heartbeats */
	int64_t drain_timeout_ms;
	int64_t kill_grace_ms;
	size_t max_output;
	char *secrets_dir;
	char *config_file;
	/* CURVE (executor/curve.c): this executor's key pair file and the
	 * engines' public keys (z85); insecure_plaintext allows plaintext on
	 * loopback only. */
	char *curve_secret;
	char **engine_keys;
	size_t nengine_keys;
	int insecure_plaintext;
};

/* Parses argv over the environment (WF_EXECUTOR_ID, WF_EXECUTOR_LISTEN,
 * WF_ENGINES, WF_POOL, WF_SLOTS, WF_LABELS) over --config FILE over the
 * defaults. Returns 0, 1 when --help/--version was printed, or -1 with a
 * message in err. Always call exec_config_release. */
int exec_config_parse(struct exec_config *c, int argc, char **argv, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Re-reads c->config_file (SIGHUP): slots, labels, heartbeat-ms,
 * max-output, drain-timeout, kill-grace, secrets-dir. Returns 0 or -1. */
int exec_config_reload(struct exec_config *c, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void exec_config_release(struct exec_config *c);
void exec_usage(FILE *f);
/* "30s", "500ms", "2m", "1h"; a bare number is seconds. Returns 0 or -1. */
int exec_parse_duration(const char *s, int64_t *ms) __attribute__((warn_unused_result));

/* ---- bounded output ---- */

/* Keeps the last keep bytes written to it. */
struct tail {
	char *data;
	size_t len, cap, keep;
	uint64_t dropped; /* bytes discarded from the front */
};
void tail_init(struct tail *t, size_t keep);
void tail_append(struct tail *t, const char *data, size_t n);
void tail_release(struct tail *t);

/* Secret values a task used: masked as *** in its output and error. */
struct secrets {
	char **v;
	size_t n;
	size_t longest;
};
void secrets_release(struct secrets *s);
/* Expands ${secrets.NAME} in tmpl from $WF_SECRET_NAME or secrets_dir/NAME,
 * remembering each value in used; other ${...} stay as they are. Returns 0
 * and a new string in *out, or -1 with a message in err. */
int secrets_expand(const char *tmpl, const char *secrets_dir, const char *executor_id,
                   struct secrets *used, char **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* s with every used secret replaced by ***: a new string, length in *outlen. */
char *secrets_mask(const struct secrets *used, const char *s, size_t n, size_t *outlen);

/* Final output text (valid UTF-8, masked, at most max bytes of content):
 * the tail with a leading "[... N bytes truncated ...]\n" when cut. */
char *output_from_tail(const struct tail *t, size_t max, const struct secrets *used);
/* The head of an HTTP body: marked "\n[... N bytes truncated ...]" at the end. */
char *output_from_head(const char *data, size_t len, uint64_t dropped, size_t max,
                       const struct secrets *used);

/* ---- tasks ---- */

enum task_kind { TASK_SHELL, TASK_HTTP, TASK_NOOP, TASK_SLEEP };

struct exec;

struct task {
	struct task *next;
	struct exec *ex;
	const struct exec_config *cfg;
	json_t *msg; /* the task frame (owned) */
	int64_t task_run_id;
	int attempt;
	enum task_kind kind;
	int64_t started_wall, started_mono;
	int64_t deadline;        /* mono ms of the task timeout, 0 = none */
	int64_t kill_at;         /* mono ms to SIGKILL the group, 0 = not yet */
	const char *stop_status; /* "timeout" / "cancelled" once asked to stop */
	char *stop_error;
	struct secrets secrets;
	char *breaker_name; /* NULL when unguarded */
	int breaker_probe;
	/* shell / sh */
	pid_t pid;
	int out_fd;
	int exited, wstatus;
	int64_t exited_mono;
	struct tail out;
	char *output_path;
	/* http */
	CURL *easy;
	struct curl_slist *headers;
	char *body;
	struct buf resp;
	uint64_t resp_dropped;
	char curl_err[CURL_ERROR_SIZE];
	/* sleep */
	int64_t wake_at;
};

/* Reports the task finished (to every engine), releases its breaker and
 * slot and frees it. error (may be NULL) is masked here; output (may be
 * NULL) is final text from output_from_tail/head; outputs (stolen) may be NULL. */
void exec_task_done(struct exec *ex, struct task *t, const char *status, int exit_code,
                    int http_status, const char *error, const char *output, json_t *outputs);

/* The executor; exec_run returns the process exit code. */
struct exec *exec_new(struct exec_config *cfg /* borrowed, must outlive */);
int exec_run(struct exec *ex);
void exec_free(struct exec *ex);

/* ---- runners ---- */

/* Starts a shell or sh step. Returns 0, or -1 with a message in err (the
 * task did not start). */
int runner_shell_start(struct task *t, const json_t *step, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Reads what the child wrote (fd readable or hung up). */
void runner_shell_read(struct task *t);
/* The child has been reaped: finishes the task once its process group is
 * gone (or has been waited for long enough). Returns 1 when it finished. */
int runner_shell_poll(struct task *t, int64_t now);
/* Sends sig to the task's process group. */
void runner_shell_signal(struct task *t, int sig);

int runner_http_init(void) __attribute__((warn_unused_result));
void runner_http_cleanup(void);
/* Starts an http step on multi. Returns 0 or -1 with a message in err. */
int runner_http_start(struct task *t, CURLM *multi, const json_t *step, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* A transfer completed with result rc: reports the task. */
void runner_http_done(struct task *t, CURLM *multi, CURLcode rc);
/* Aborts the transfer (no report). */
void runner_http_abort(struct task *t, CURLM *multi);

#endif
