/* A fresh, migrated PostgreSQL database per test (header only).
 *
 *   struct testdb db;
 *   struct store *s = testdb_open(&db);   // aborts the test on failure
 *   ... use s, or db.conninfo for more connections ...
 *   testdb_close(&db);                     // closes s and drops the database
 *
 * Uses the PostgreSQL that tests/run.sh started (PGHOST, PGPORT, PGUSER are
 * exported; by hand: `. tests/lib/pg.sh; pg_start /tmp/mypg`). Databases are
 * named wf_t_<pid>_<counter>, so tests can run in parallel processes.
 * testdb_value runs one statement on the test database and returns the first
 * column of the first row (a new string, "" when no row, NULL on error). */
#ifndef WF_TESTDB_H
#define WF_TESTDB_H
#include <criterion/criterion.h>
#include <stdarg.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/migrate.h"
#include "engine/store.h"
#include "xalloc.h"

struct testdb {
	char name[64];
	char conninfo[512];
	struct store *s;
};

/* A connection to the maintenance database, or NULL (with a message). */
static inline PGconn *testdb__admin(void)
{
	PGconn *c = PQconnectdb("dbname=postgres");
	if (PQstatus(c) != CONNECTION_OK) {
		cr_log_error("testdb: cannot connect to PostgreSQL (PGHOST=%s): %s",
		             getenv("PGHOST") ? getenv("PGHOST") : "(unset)", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	return c;
}

static inline int testdb__exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		cr_log_error("testdb: %s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	return ok ? 0 : -1;
}

/* Creates and migrates a database and opens a store on it. */
static inline struct store *testdb_open(struct testdb *t)
{
	static int counter;
	char sql[160], err[512];
	memset(t, 0, sizeof *t);
	if (!getenv("PGHOST"))
		cr_assert_fail("testdb: PGHOST is not set; run the tests with tests/run.sh or "
		               "start PostgreSQL with `. tests/lib/pg.sh; pg_start DIR`");
	snprintf(t->name, sizeof t->name, "wf_t_%ld_%d", (long)getpid(), ++counter);
	PGconn *admin = testdb__admin();
	cr_assert(admin != NULL, "testdb: no PostgreSQL");
	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", t->name);
	int rc = testdb__exec(admin, sql);
	snprintf(sql, sizeof sql, "CREATE DATABASE %s", t->name);
	if (rc == 0)
		rc = testdb__exec(admin, sql);
	PQfinish(admin);
	cr_assert(rc == 0, "testdb: cannot create database %s", t->name);

	snprintf(t->conninfo, sizeof t->conninfo, "dbname=%s", t->name);
	PGconn *c = PQconnectdb(t->conninfo);
	cr_assert(PQstatus(c) == CONNECTION_OK, "testdb: cannot connect to %s: %s", t->name,
	          PQerrorMessage(c));
	rc = migrate_up(c, err, sizeof err);
	PQfinish(c);
	cr_assert(rc >= 0, "testdb: migrate_up failed: %s", err);

	t->s = store_open(t->conninfo, err, sizeof err);
	cr_assert(t->s != NULL, "testdb: %s", err);
	return t->s;
}

/* Closes the store and drops the database (forcing other connections). */
static inline void testdb_close(struct testdb *t)
{
	char sql[160];
	if (t->s)
		store_close(t->s);
	t->s = NULL;
	if (!t->name[0])
		return;
	PGconn *admin = testdb__admin();
	if (admin) {
		snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", t->name);
		(void)testdb__exec(admin, sql);
		PQfinish(admin);
	}
	t->name[0] = '\0';
}

/* The first column of the first row of sql on the test database (through
 * its store, so inside the store's transaction if one is open). A new
 * string ("" when there is no row), or NULL when the statement failed. */
static inline char *testdb_value(struct testdb *t, const char *sql)
{
	PGresult *r = store_exec(t->s, sql, 0, NULL);
	if (!r)
		return NULL;
	const char *v = PQntuples(r) > 0 && PQnfields(r) > 0 && !PQgetisnull(r, 0, 0)
	                    ? PQgetvalue(r, 0, 0)
	                    : "";
	char *out = strdup(v);
	PQclear(r);
	return out;
}

/* The first value of a printf-formatted query on the test database as a
 * string, from a ring of static buffers (good for a few comparisons in a
 * row); the test fails when the query does. */
__attribute__((format(printf, 2, 3))) static inline const char *testdb_q(struct testdb *t,
                                                                         const char *fmt, ...)
{
	static char ring[8][4096];
	static int next;
	va_list ap;
	va_start(ap, fmt);
	char *sql = xvasprintf(fmt, ap);
	va_end(ap);
	char *v = testdb_value(t, sql);
	cr_assert(v != NULL, "query failed: %s: %s", sql, store_error(t->s));
	char *out = ring[next++ % 8];
	snprintf(out, 4096, "%s", v);
	free(v);
	free(sql);
	return out;
}

/* testdb_q as a number. */
#define testdb_qi(t, ...) strtoll(testdb_q((t), __VA_ARGS__), NULL, 10)

/* Runs a printf-formatted statement; the test fails when it does. */
__attribute__((format(printf, 2, 3))) static inline void testdb_exec(struct testdb *t,
                                                                     const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *sql = xvasprintf(fmt, ap);
	va_end(ap);
	cr_assert(store_cmd(t->s, sql, 0, NULL) == 0, "%s: %s", sql, store_error(t->s));
	free(sql);
}

#endif
