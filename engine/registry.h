/* The executor registry of one engine: who is connected, in which pool,
 * with which labels, and how many tasks each can take right now (credit).
 * Keeps one ZeroMQ PUSH socket per live executor and mirrors what it
 * learns into the executors table.
 *
 * Credit rule (documented once, here): every task this engine sends is
 * remembered per executor as "in flight" until that executor reports it
 * `started` or `finished`. On each heartbeat,
 *   credit = reported free_slots - (tasks sent but not yet reported started)
 * (never negative, never above slots). Between heartbeats a send takes one
 * credit and a `finished` for a task this engine sent gives one back. Frames
 * from one executor arrive in order on one pipe, so a heartbeat already
 * reflects every task whose `started` arrived before it. Tasks sent by other
 * engines are not credited back here; the next heartbeat corrects that. */
#ifndef WF_REGISTRY_H
#define WF_REGISTRY_H
#include <jansson.h>
#include <stdint.h>

#include "store.h"

enum reg_state { REG_ONLINE, REG_DRAINING, REG_LOST, REG_OFFLINE };

/* One task sent to an executor and not yet finished. */
struct reg_sent {
	long long task_run_id;
	int attempt;
	int started;
	int64_t sent_ms; /* monotonic */
	long long run_id;
	int sole; /* the only task run of its run (dispatch.c) */
};

struct reg_exec {
	char *id;
	char *endpoint;
	char *pool;
	char *version;
	char **labels;
	int nlabels;
	int slots;
	int free_slots;              /* as last reported */
	int credit;                  /* tasks this engine may still send */
	unsigned long long rr_given; /* tasks given by round-robin (dispatch.c) */
	double load;
	enum reg_state state;
	int connected;         /* the PUSH socket has a live TCP connection */
	int64_t blocked_until; /* monotonic: a send failed, wait before the next */
	int64_t last_seen_ms;  /* monotonic: last hello or heartbeat */
	void *push;            /* ZMQ PUSH to endpoint, NULL when closed */
	void *mon;             /* ZMQ PAIR receiving the PUSH socket's events */
	struct reg_sent *sent;
	int nsent, capsent;
	json_t *running;    /* last heartbeat's running list (owned), or NULL */
	json_t *breakers;   /* last heartbeat's breakers (owned), or NULL */
	int upsert_pending; /* hello not yet written to the executors row */
	int row_dirty;      /* heartbeat fields not yet written */
	int state_dirty;    /* lost / offline / draining not yet written */
	int renew_pending;  /* leases to renew and orphans to look for */
};

struct reg {
	void *zctx;
	int64_t heartbeat_ms;
	struct reg_exec **ex;
	int n, cap;
	unsigned rr; /* round-robin cursor */
	int mon_seq;
};

/* A registry sending through zctx (borrowed). heartbeat_ms: the expected
 * executor heartbeat interval (lost after 3 missed). */
struct reg *reg_new(void *zctx, int64_t heartbeat_ms);
/* Closes every socket and frees the registry. */
void reg_free(struct reg *r);

/* Frames from executors (msg borrowed, already validated by wire_decode). */
void reg_hello(struct reg *r, const json_t *msg);
/* A heartbeat from an unknown executor registers it from the frame when it
 * carries endpoint and pool, else from its executors row (s may be NULL),
 * else it is ignored until the next hello. */
void reg_heartbeat(struct reg *r, struct store *s, const json_t *msg);
void reg_bye(struct reg *r, const json_t *msg);
void reg_started(struct reg *r, const char *executor_id, long long task_run_id, int attempt);
/* Forgets a task in flight and gives its credit back. Returns 1 with what
 * the engine knew of it when it sent it in *sent (may be NULL), or 0 when
 * this engine did not send that attempt to that executor. */
int reg_finished(struct reg *r, const char *executor_id, long long task_run_id, int attempt,
                 struct reg_sent *sent);
/* A `finished` with status rejected (no free slot): forgets the task like
 * reg_finished but gives no credit back; the executor's credit stays 0
 * until its next heartbeat says how many slots are free. */
void reg_rejected(struct reg *r, const char *executor_id, long long task_run_id, int attempt);

/* The executor with this id, or NULL (borrowed). */
struct reg_exec *reg_find(struct reg *r, const char *id);
/* 1 when e may receive new work now (online, connected, credit left). */
int reg_can_take(const struct reg_exec *e);
/* Sends a task frame (JSON text, len bytes) to e without blocking and
 * remembers the task as in flight (task: its id, attempt, run id and
 * whether it is the only task run of its run; the rest is filled in). The
 * caller took e's credit when it chose e (credit--) and gives it back with
 * reg_unclaim when it does not send. Returns 0 or -1 (nothing sent: the
 * peer is gone or its queue is full; e takes no work for a moment). */
int reg_send_task(struct reg *r, struct reg_exec *e, const char *text, size_t len,
                  const struct reg_sent *task) __attribute__((warn_unused_result));
/* Sends {"type":"cancel"} for an attempt. Returns 0 or -1. */
int reg_send_cancel(struct reg *r, struct reg_exec *e, long long task_run_id, int attempt);
/* Gives back the credit of a task that was claimed for e but not sent. */
void reg_unclaim(struct reg_exec *e);

/* Reads connection events of every PUSH socket (non-blocking). */
void reg_poll_monitors(struct reg *r);
/* Marks executors not heard from for 3 heartbeat intervals as lost and
 * closes their sockets (their task runs come back through lease expiry). */
void reg_check_lost(struct reg *r);
/* Writes pending hellos, state changes and (when heartbeats too) heartbeat
 * fields to the executors table. Returns 0, or -1 (kept for later). */
int reg_flush(struct reg *r, struct store *s, int heartbeats) __attribute__((warn_unused_result));
/* For executors whose heartbeat listed running attempts since the last
 * call: extends those leases and sends `cancel` for every listed attempt
 * the database no longer has running (one query). Returns 0 or -1 (kept). */
int reg_renew(struct reg *r, struct store *s, int64_t lease_ms) __attribute__((warn_unused_result));
/* 1 when some hello or state change waits to be written. */
int reg_needs_flush(const struct reg *r);
/* 1 when some heartbeat's running list waits for reg_renew. */
int reg_needs_renew(const struct reg *r);

#endif
