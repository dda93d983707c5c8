/* History retention (see retention.h). */
#include "retention.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* Oldest first, skipping rows locked by a transaction in flight (a run
 * being resumed, say): they are simply taken by a later sweep. Runs are
 * picked through the runs_finished partial index. */
static const char runs_sql[] =
    "WITH d AS (DELETE FROM runs WHERE id IN (SELECT id FROM runs"
    " WHERE finished_at IS NOT NULL AND finished_at < now() - $1::bigint * interval '1 ms'"
    "  AND state IN ('succeeded', 'failed', 'cancelled')"
    " ORDER BY finished_at LIMIT $2::int FOR UPDATE SKIP LOCKED) RETURNING id),"
    /* task runs and attempts have no foreign key to cascade by
     * (migrations 011 and 012: their checks cost more than the inserts);
     * dead letters go with their task runs by ON DELETE CASCADE */
    " t AS (DELETE FROM task_runs WHERE run_id IN (SELECT id FROM d) RETURNING id),"
    " a AS (DELETE FROM attempts WHERE task_run_id IN (SELECT id FROM t))"
    " SELECT count(*) FROM d";

/* The oldest events by id (the primary key; ids are handed out in
 * insertion order, so these are the oldest by time too) that are past the
 * age: no index on `at` to maintain on every insert. */
static const char events_sql[] = "DELETE FROM events WHERE id IN (SELECT id FROM"
                                 " (SELECT id, at FROM events ORDER BY id LIMIT $2::int) o"
                                 " WHERE o.at < now() - $1::bigint * interval '1 ms')";

/* Runs sql in batches. Returns the rows deleted, or -1. */
static long sweep(struct store *s, const char *name, const char *sql, const char *keep,
                  const char *lim, int batch)
{
	long total = 0;
	const char *p[2] = {keep, lim};
	for (int i = 0; i < RETENTION_MAX_BATCHES; i++) {
		PGresult *r = store_execp(s, name, sql, 2, p);
		if (!r)
			return -1;
		/* a DELETE's count, or the count a statement selects */
		long n = PQntuples(r) == 1 ? strtol(PQgetvalue(r, 0, 0), NULL, 10)
		                           : strtol(PQcmdTuples(r), NULL, 10);
		PQclear(r);
		total += n;
		if (n < batch)
			break;
	}
	return total;
}

int retention_sweep(struct store *s, int64_t keep_ms, int batch)
{
	char keep[24], lim[16];
	if (keep_ms <= 0)
		return 0;
	if (batch <= 0)
		batch = RETENTION_BATCH;
	snprintf(keep, sizeof keep, "%lld", (long long)keep_ms);
	snprintf(lim, sizeof lim, "%d", batch);
	int64_t t0 = mono_ms();
	long runs = sweep(s, "retention_runs", runs_sql, keep, lim, batch);
	if (runs < 0)
		return -1;
	long events = sweep(s, "retention_events", events_sql, keep, lim, batch);
	if (events < 0)
		return -1;
	if (runs + events > 0)
		log_info("retention sweep", "runs=%ld events=%ld keep_ms=%lld ms=%lld", runs,
		         events, (long long)keep_ms, (long long)(mono_ms() - t0));
	return (int)(runs + events);
}

int retention_parse(const char *s, int64_t *ms)
{
	static const struct {
		char unit;
		int64_t ms;
	} units[] = {{'m', 60000}, {'h', 3600000}, {'d', 86400000}, {'w', 7 * 86400000LL}};
	int64_t n;
	char num[24];
	if (!s || !*s)
		return -1;
	if (strcmp(s, "0") == 0 || strcmp(s, "off") == 0) {
		*ms = 0;
		return 0;
	}
	size_t len = strlen(s);
	if (len < 2 || len >= sizeof num)
		return -1;
	memcpy(num, s, len - 1);
	num[len - 1] = '\0';
	if (parse_int64(num, 1, 100000, &n) != 0)
		return -1;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (s[len - 1] == units[i].unit) {
			*ms = n * units[i].ms;
			return 0;
		}
	return -1;
}
