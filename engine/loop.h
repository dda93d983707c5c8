/* The engine's main loop: one thread that waits (zmq_poll) on the ZeroMQ
 * PULL socket and the PostgreSQL LISTEN connection, then ingests frames,
 * applies results in batches, renews leases, dispatches ready work, and
 * once a second fires schedules, reaps expired leases and marks lost
 * executors. While the database is away it keeps receiving, buffers
 * results (bounded) and retries with backoff. */
#ifndef WF_LOOP_H
#define WF_LOOP_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct loop_opts {
	const char *zmq_endpoint; /* PULL bind, "tcp://127.0.0.1:5555" */
	const char *conninfo;     /* for the LISTEN connection; NULL = default */
	const char *engine_id;
	int64_t lease_ms;
	int64_t heartbeat_ms; /* expected executor heartbeat interval */
	int batch;            /* results per transaction, task runs per claim */
	int appliers;         /* applier threads (applier.h); 0 = 1 */
	int poll_ms;          /* longest wait without a wake-up */
	size_t max_buffer;    /* results buffered while the database is away */
	int64_t retention_ms; /* finished runs and events older than this are
	                         deleted in small batches; 0 = kept forever */
};

/* Test-only fault injection (after SQLite's sqlite3FaultSim): when the
 * environment names this point in WF_FAULT, the process exits at once
 * (_exit(137)) with probability WF_FAULT_P (default 1). The points are
 * "after-claim" (a claim committed, nothing sent), "after-send" (sent, no
 * result applied) and "in-sched-batch" (a scheduler batch written, not
 * committed). Unset, it returns at once. NULL only logs when armed. */
void loop_fault(const char *point);

/* Runs on s (borrowed: the loop's only store) until *stop is set, then
 * drains: stops claiming, applies the results it holds, returns. *reload
 * (SIGHUP) is logged and cleared. Returns 0, or 1 when the PULL socket
 * cannot be bound. */
int loop_run(const struct loop_opts *o, struct store *s, volatile sig_atomic_t *stop,
             volatile sig_atomic_t *reload) __attribute__((warn_unused_result));

#endif
