/* What executor/exec.c and executor/task.c share: the executor's state. */
#ifndef WF_EXEC_INT_H
#define WF_EXEC_INT_H
#include "exec.h"

struct csock {
	curl_socket_t fd;
	int what;
};

struct exec {
	struct exec_config *cfg;
	void *zctx, *pull;
	void **push;
	size_t npush;
	struct task *tasks;
	int running;
	CURLM *multi;
	struct csock *cs;
	size_t ncs, capcs;
	int64_t curl_at; /* mono ms of libcurl's timer, -1 = none */
	struct breaker_set *breakers;
	int draining, drain_killed;
	int64_t drain_deadline;
	int64_t next_heartbeat;
	int heartbeats;
	int sigpipe[2];
	int handled_terms;
};

/* Sends msg (stolen) to every engine. */
void exec_send(struct exec *ex, json_t *msg);
/* Sends a frame already written as text (taken; NULL: could not be built). */
void exec_send_text(struct exec *ex, char *text, const char *type);
void exec_send_heartbeat(struct exec *ex);
/* A task frame arrived (borrowed): admit, refuse or start it. */
void exec_task_start(struct exec *ex, json_t *msg);
/* A cancel frame arrived (borrowed). */
void exec_task_cancel(struct exec *ex, const json_t *msg);
/* Stops a running task and reports status/error: at once for http, sleep
 * and noop; for a process once its group is gone (SIGTERM now, SIGKILL
 * after --kill-grace). May free t. */
void exec_task_stop(struct exec *ex, struct task *t, const char *status, const char *error);
/* The second SIGTERM: kills every process group and reports everything now. */
void exec_kill_all_now(struct exec *ex);
/* Frees a task that is no longer listed. */
void exec_task_free(struct exec *ex, struct task *t);

/* ---- CURVE (executor/curve.c) */

/* Makes the PULL socket (created, not bound) a CURVE server accepting only
 * the configured engine keys, starting the ZAP handler; a no-op with
 * --insecure-plaintext. Returns 0 or -1 (logged). */
int exec_curve_server(void *zctx, void *pull, const struct exec_config *cfg)
    __attribute__((warn_unused_result));
/* Makes a PUSH socket to engine endpoint a CURVE client. Returns 0 or -1. */
int exec_curve_client(void *push, const struct exec_config *cfg, const char *endpoint)
    __attribute__((warn_unused_result));
/* Adds "public_key" to a hello (borrowed, may be NULL); returns it. */
json_t *exec_curve_hello(json_t *hello);
/* After zmq_ctx_term: stops the ZAP handler and wipes the key pair. */
void exec_curve_stop(void);

#endif
