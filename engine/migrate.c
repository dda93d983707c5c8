#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Any constant will do, as long as every wf binary uses the same one. */
#define MIGRATE_LOCK_KEY 0x77660001

int migrate_latest(void)
{
	int v = 0;
	for (const struct migration *m = wf_migrations; m->name; m++)
		v = m->version;
	return v;
}

static int exec_ok(PGconn *db, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(db, sql);
	ExecStatusType st = PQresultStatus(r);
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	if (!ok) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
		size_t n = strlen(err);
		while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
	}
	PQclear(r);
	return ok ? 0 : -1;
}

static int current_version(PGconn *db, char *err, size_t errlen)
{
	PGresult *r = PQexec(db, "SELECT coalesce(max(version), 0) FROM schema_migrations");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "cannot read schema_migrations: %s", PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	int v = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

static int ensure_table(PGconn *db, char *err, size_t errlen)
{
	return exec_ok(db,
	               "SET client_min_messages = warning;"
	               "CREATE TABLE IF NOT EXISTS schema_migrations ("
	               " version integer PRIMARY KEY,"
	               " name text NOT NULL,"
	               " applied_at timestamptz NOT NULL DEFAULT now())",
	               err, errlen);
}

int migrate_current(PGconn *db, char *err, size_t errlen)
{
	PGresult *r = PQexec(db, "SELECT to_regclass('schema_migrations') IS NOT NULL");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	int exists = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return exists ? current_version(db, err, errlen) : 0;
}

int migrate_up(PGconn *db, char *err, size_t errlen)
{
	int applied = -1;
	char lock_sql[96];
	snprintf(lock_sql, sizeof lock_sql, "SELECT pg_advisory_lock(%d)", MIGRATE_LOCK_KEY);
	/* The table must exist before we can read it; CREATE IF NOT EXISTS can
	 * still race, so take the lock first. */
	if (exec_ok(db, lock_sql, err, errlen) != 0)
		return -1;
	if (ensure_table(db, err, errlen) != 0)
		goto out;
	int have = current_version(db, err, errlen);
	if (have < 0)
		goto out;
	int latest = migrate_latest();
	if (have > latest) {
		snprintf(err, errlen,
		         "the database schema is version %d but this binary knows only up to %d; "
		         "upgrade wf before running it against this database",
		         have, latest);
		goto out;
	}
	applied = 0;
	for (const struct migration *m = wf_migrations; m->name; m++) {
		if (m->version <= have)
			continue;
		if (exec_ok(db, "BEGIN", err, errlen) != 0) {
			applied = -1;
			goto out;
		}
		if (exec_ok(db, m->sql, err, errlen) != 0) {
			char inner[512];
			snprintf(inner, sizeof inner, "%s", err);
			snprintf(err, errlen, "migration %s failed: %s", m->name, inner);
			PQclear(PQexec(db, "ROLLBACK"));
			applied = -1;
			goto out;
		}
		char vbuf[16];
		snprintf(vbuf, sizeof vbuf, "%d", m->version);
		const char *params[2] = {vbuf, m->name};
		PGresult *r = PQexecParams(
		    db, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, NULL,
		    params, NULL, NULL, 0);
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			snprintf(err, errlen, "recording migration %s: %s", m->name,
			         PQresultErrorMessage(r));
		PQclear(r);
		if (!ok || exec_ok(db, "COMMIT", err, errlen) != 0) {
			PQclear(PQexec(db, "ROLLBACK"));
			applied = -1;
			goto out;
		}
		log_info("migration applied", "version=%d name=%s", m->version, m->name);
		applied++;
	}
out:;
	char unlock_sql[96];
	char ignore[256];
	snprintf(unlock_sql, sizeof unlock_sql, "SELECT pg_advisory_unlock(%d)", MIGRATE_LOCK_KEY);
	(void)exec_ok(db, unlock_sql, ignore, sizeof ignore);
	return applied;
}

int migrate_check(PGconn *db, char *err, size_t errlen)
{
	int have = migrate_current(db, err, errlen);
	if (have < 0)
		return -1;
	int latest = migrate_latest();
	if (have == latest)
		return 0;
	if (have > latest)
		snprintf(err, errlen,
		         "the database schema is version %d but this binary knows only up to %d; "
		         "upgrade wf",
		         have, latest);
	else
		snprintf(
		    err, errlen,
		    "the database schema is version %d, this binary needs %d: run 'wfctl migrate'",
		    have, latest);
	return -1;
}
