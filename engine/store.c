#include "store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"
#include "xalloc.h"

#define MAX_PREPARED 128

struct store {
	char *conninfo;
	char *session; /* run after every connect (store_session), or NULL */
	PGconn *conn;
	int down;
	int64_t next_try_ms;  /* reconnect backoff */
	int64_t last_used_ms; /* when a statement last took the connection */
	int64_t backoff_ms;
	char error[512];
	char sqlstate[6];
	const char *prepared[MAX_PREPARED]; /* names prepared on this connection */
	int nprepared;
};

const char *store_default_conninfo(void)
{
	const char *url = getenv("WF_DATABASE_URL");
	return url ? url : "";
}

static void set_error(struct store *s, const char *msg, const char *state)
{
	snprintf(s->error, sizeof s->error, "%s", msg ? msg : "");
	size_t n = strlen(s->error);
	while (n && (s->error[n - 1] == '\n' || s->error[n - 1] == ' '))
		s->error[--n] = '\0';
	snprintf(s->sqlstate, sizeof s->sqlstate, "%s", state ? state : "");
}

/* Runs the store_session settings, if any, on the live connection. */
static void run_session(struct store *s)
{
	if (!s->session)
		return;
	PGresult *r = PQexec(s->conn, s->session);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		log_warn("session settings refused", "sql=\"%s\" error=\"%s\"", s->session,
		         PQresultErrorMessage(r));
	PQclear(r);
}

static int connect_now(struct store *s)
{
	if (s->conn)
		PQfinish(s->conn);
	s->nprepared = 0;
	s->conn = PQconnectdb(s->conninfo);
	if (PQstatus(s->conn) != CONNECTION_OK) {
		set_error(s, PQerrorMessage(s->conn), "08006");
		PQfinish(s->conn);
		s->conn = NULL;
		s->down = 1;
		return -1;
	}
	/* jit off: wf's statements are short; JIT compiling one costs tens of
	 * milliseconds (70 ms for a 2-row UPDATE planned with a disabled
	 * sequential scan, whose cost passes jit_above_cost) */
	PGresult *r = PQexec(s->conn, "SET application_name = 'wf'; SET synchronous_commit = on;"
	                              " SET jit = off");
	PQclear(r);
	run_session(s);
	s->down = 0;
	s->backoff_ms = 0;
	return 0;
}

struct store *store_open(const char *conninfo, char *err, size_t errlen)
{
	struct store *s = xcalloc(1, sizeof *s);
	s->conninfo = xstrdup(conninfo ? conninfo : store_default_conninfo());
	if (connect_now(s) != 0) {
		snprintf(err, errlen, "cannot connect to PostgreSQL: %s", s->error);
		store_close(s);
		return NULL;
	}
	return s;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->conn)
		PQfinish(s->conn);
	free(s->conninfo);
	free(s->session);
	free(s);
}

void store_session(struct store *s, const char *sql)
{
	free(s->session);
	s->session = sql ? xstrdup(sql) : NULL;
	if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
		run_session(s);
}

/* Whether an idle connection's server is gone. A restarted PostgreSQL
 * closes its connections while they idle, and libpq learns of it only when
 * it next reads: the first statement on each pooled connection used to
 * fail after the database was back (an API request answered 503). Checked
 * only outside a transaction and after a second unused, so busy
 * connections pay nothing; the check is a read that finds nothing, or the
 * server's goodbye and the end of the stream (two reads: the message and
 * the close may come apart). */
static int idle_conn_lost(struct store *s, int64_t now)
{
	if (now - s->last_used_ms < 1000 || PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		return 0;
	for (int i = 0; i < 2; i++)
		if (!PQconsumeInput(s->conn) || PQstatus(s->conn) != CONNECTION_OK) {
			log_warn("database connection lost while idle, reconnecting", "error=%s",
			         PQerrorMessage(s->conn));
			return 1;
		}
	return 0;
}

PGconn *store_conn(struct store *s)
{
	int64_t now = mono_ms();
	if (s->conn && PQstatus(s->conn) == CONNECTION_OK && !idle_conn_lost(s, now)) {
		s->last_used_ms = now;
		return s->conn;
	}
	if (now < s->next_try_ms)
		return NULL;
	if (connect_now(s) == 0) {
		log_info("reconnected to PostgreSQL", "%s", "");
		s->last_used_ms = now;
		return s->conn;
	}
	s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : 100;
	if (s->backoff_ms > 5000)
		s->backoff_ms = 5000;
	s->next_try_ms = now + s->backoff_ms;
	return NULL;
}

int store_down(const struct store *s)
{
	return s->down;
}

static PGresult *check(struct store *s, PGresult *r, const char *what)
{
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		s->error[0] = '\0';
		s->sqlstate[0] = '\0';
		return r;
	}
	set_error(s, r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn),
	          r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL);
	if (!r || PQstatus(s->conn) != CONNECTION_OK) {
		s->down = 1;
		log_warn("database connection lost", "error=%s", s->error);
	} else if (strcmp(s->sqlstate, "23505") != 0 && strcmp(s->sqlstate, "40001") != 0) {
		log_debug("statement failed", "what=%.60s sqlstate=%s error=%s", what, s->sqlstate,
		          s->error);
	}
	PQclear(r);
	return NULL;
}

PGresult *store_exec(struct store *s, const char *sql, int nparams, const char *const *params)
{
	PGconn *c = store_conn(s);
	if (!c) {
		set_error(s, "database unavailable", "08006");
		return NULL;
	}
	PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	return check(s, r, sql);
}

PGresult *store_execp(struct store *s, const char *name, const char *sql, int nparams,
                      const char *const *params)
{
	PGconn *c = store_conn(s);
	if (!c) {
		set_error(s, "database unavailable", "08006");
		return NULL;
	}
	int known = 0;
	for (int i = 0; i < s->nprepared; i++)
		if (s->prepared[i] == name || strcmp(s->prepared[i], name) == 0)
			known = 1;
	if (!known) {
		if (s->nprepared == MAX_PREPARED)
			return store_exec(s, sql, nparams, params);
		PGresult *p = check(s, PQprepare(c, name, sql, nparams, NULL), sql);
		if (!p)
			return NULL;
		PQclear(p);
		s->prepared[s->nprepared++] = name;
	}
	PGresult *r = PQexecPrepared(c, name, nparams, params, NULL, NULL, 0);
	return check(s, r, sql);
}

int store_cmd(struct store *s, const char *sql, int nparams, const char *const *params)
{
	PGresult *r = store_exec(s, sql, nparams, params);
	if (!r)
		return -1;
	PQclear(r);
	return 0;
}

int store_begin(struct store *s)
{
	return store_cmd(s, "BEGIN", 0, NULL);
}

int store_commit(struct store *s)
{
	return store_cmd(s, "COMMIT", 0, NULL);
}

void store_rollback(struct store *s)
{
	if (s->conn && PQstatus(s->conn) == CONNECTION_OK) {
		PGresult *r = PQexec(s->conn, "ROLLBACK");
		PQclear(r);
	}
}

const char *store_error(const struct store *s)
{
	return s->error;
}

const char *store_sqlstate(const struct store *s)
{
	return s->sqlstate;
}

/* ------------------------------------------------------------------ pool */

struct store_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char *conninfo;
	struct store **free_list;
	int nfree;
	int size;
};

struct store_pool *store_pool_new(const char *conninfo, int size)
{
	struct store_pool *p = xcalloc(1, sizeof *p);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->conninfo = xstrdup(conninfo ? conninfo : store_default_conninfo());
	p->size = size;
	p->free_list = xcalloc((size_t)size, sizeof *p->free_list);
	/* Connections open lazily through store_conn's reconnect path. */
	for (int i = 0; i < size; i++) {
		struct store *s = xcalloc(1, sizeof *s);
		s->conninfo = xstrdup(p->conninfo);
		s->down = 1;
		p->free_list[p->nfree++] = s;
	}
	return p;
}

void store_pool_free(struct store_pool *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nfree; i++)
		store_close(p->free_list[i]);
	free(p->free_list);
	free(p->conninfo);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

struct store *store_pool_get(struct store_pool *p)
{
	pthread_mutex_lock(&p->lock);
	while (p->nfree == 0)
		pthread_cond_wait(&p->cond, &p->lock);
	struct store *s = p->free_list[--p->nfree];
	pthread_mutex_unlock(&p->lock);
	return s;
}

void store_pool_put(struct store_pool *p, struct store *s)
{
	/* Never hand back a connection in the middle of a transaction. */
	if (s->conn && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		store_rollback(s);
	pthread_mutex_lock(&p->lock);
	p->free_list[p->nfree++] = s;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}
