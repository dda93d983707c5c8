/* PostgreSQL access: a connection that reconnects by itself, and a small
 * pool for threads. PostgreSQL is wf's only source of truth.
 * Results returned by store_* are new PGresults: always PQclear them. */
#ifndef WF_STORE_H
#define WF_STORE_H
#include <libpq-fe.h>
#include <stddef.h>

/* The session settings of the appliers' connections (applier.h), and
 * what the dispatcher sets after its claim: every statement there is
 * driven by an index. On empty or freshly truncated tables the planner's
 * estimates make a sequential scan look cheaper, and the generic plan a
 * prepared statement keeps then reads the whole table on every call as it
 * grows, until autovacuum's next ANALYZE (a minute or more): 4 ms per
 * results batch at 6,000 runs in the benchmark, where an index probe takes
 * 0.2 ms. Not for the whole loop connection: the scheduler's statements
 * over millions of schedules need their sequential and bitmap scans (with
 * them priced out, 10,000 schedules due in one second fired with a p99
 * lateness of 3.1 s instead of 0.24 s). */
#define STORE_ENGINE_SESSION "SET enable_seqscan = off"

struct store;

/* The connection string: WF_DATABASE_URL when set, else "" (libpq's PG*
 * variables and defaults). Borrowed. */
const char *store_default_conninfo(void);

/* Connects (conninfo NULL → store_default_conninfo()). Returns a store, or
 * NULL with a message in err. */
struct store *store_open(const char *conninfo, char *err, size_t errlen);
void store_close(struct store *s);
/* Settings for this connection (e.g. "SET enable_seqscan = off"): run now
 * and again after every reconnect. NULL clears them. */
void store_session(struct store *s, const char *sql);
/* The live connection (borrowed), reconnecting first when it was lost.
 * Returns NULL when the database cannot be reached right now. */
PGconn *store_conn(struct store *s);
/* 1 when the last call found the database away. */
int store_down(const struct store *s);

/* Runs sql with text parameters (NULL = SQL NULL). Returns the result when
 * its status is COMMAND_OK or TUPLES_OK, else logs, clears it and returns
 * NULL (and marks the connection for a reconnect when it broke). */
PGresult *store_exec(struct store *s, const char *sql, int nparams, const char *const *params)
    __attribute__((warn_unused_result));
/* Like store_exec for a statement prepared once per connection under name. */
PGresult *store_execp(struct store *s, const char *name, const char *sql, int nparams,
                      const char *const *params) __attribute__((warn_unused_result));
/* Runs a statement whose result is not needed. Returns 0 or -1. */
int store_cmd(struct store *s, const char *sql, int nparams, const char *const *params)
    __attribute__((warn_unused_result));
int store_begin(struct store *s) __attribute__((warn_unused_result));
int store_commit(struct store *s) __attribute__((warn_unused_result));
void store_rollback(struct store *s);
/* The last error text of this store (borrowed, "" when none). */
const char *store_error(const struct store *s);
/* The SQLSTATE of the last error ("" when none), e.g. "23505". */
const char *store_sqlstate(const struct store *s);

/* A fixed-size pool of stores for the HTTP threads. */
struct store_pool;
struct store_pool *store_pool_new(const char *conninfo, int size);
void store_pool_free(struct store_pool *p);
/* Takes a store, waiting when all are busy. Give it back with _put. */
struct store *store_pool_get(struct store_pool *p);
void store_pool_put(struct store_pool *p, struct store *s);

#endif
