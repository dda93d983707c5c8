/* Advancing the DAG of runs and completing them: what happens after any
 * task run became final (a result, a lease expiry, a resume, a repair).
 *
 * Trigger rules, evaluated for a pending task run once per pass:
 *   all_success  every upstream succeeded or skipped → queued;
 *                any upstream failed/dead/upstream_failed/cancelled →
 *                upstream_failed (as soon as it is known, not waiting for
 *                the others).
 *   all_done     every upstream final → queued.
 *   always       every upstream final → queued (same as all_done: wf has
 *                no "run at any time" rule; a task always waits for its
 *                needs).
 *   one_failed   any upstream failed/dead/upstream_failed → queued; every
 *                upstream final and none failed → skipped.
 * Passes repeat until nothing changes, so upstream_failed and skipped
 * propagate through the whole DAG in the same transaction.
 *
 * Broadcast fan-out: the dispatcher may add rows with target_executor set
 * for a broadcast task. The row with target_executor NULL (created by
 * runs_trigger) stands for the task in the DAG: upstream checks and the run's
 * success look only at those rows; a run is final only when every row,
 * fan-out rows included, is final.
 *
 * Roll-up (first step of every settle): a broadcast parent that is
 * `running` (the dispatcher set it so when it fanned out) becomes final once
 * every one of its copies is final: broadcast_success "all" → succeeded
 * only when every copy succeeded, "any" → succeeded when at least one did;
 * else failed, with an error naming the copies that did not succeed. The
 * parent takes the outputs of its first succeeded copy (lowest id). */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runs_int.h"
#include "util.h"
#include "xalloc.h"

/* One pass of the trigger rules over the pending task runs of the runs.
 * Returns rows changed and how many became queued. */
static const char ADVANCE_SQL[] =
    /* Driven by the run ids (one probe of task_runs per run, one of runs
     * per pending task run) whatever the statistics say: joined the plain
     * way, the planner started from every running run (runs_active) and
     * paired the locked rows with the decided ones in a nested loop, 500
     * x 1000 rows (120 ms a call in the 3-task chain benchmark). */
    "WITH p AS ("
    " SELECT tr.id, tr.run_id, r.workflow_id,"
    "  coalesce(t.spec->>'trigger', 'all_success') AS trig,"
    "  count(n.name) AS n,"
    "  count(n.name) FILTER (WHERE u.state IN (" RUNS_FINAL ")) AS nfinal,"
    "  count(n.name) FILTER (WHERE u.state IN (" RUNS_OK ")) AS nok,"
    "  count(n.name) FILTER (WHERE u.state IN ('failed','dead','upstream_failed')) AS nfail,"
    "  count(n.name) FILTER (WHERE u.state = 'cancelled') AS ncancel"
    " FROM (SELECT DISTINCT unnest($1::bigint[]) AS id) q"
    " CROSS JOIN LATERAL (SELECT tr.id, tr.run_id, tr.task FROM task_runs tr"
    "  WHERE tr.run_id = q.id AND tr.state = 'pending' OFFSET 0) tr"
    " CROSS JOIN LATERAL (SELECT r.workflow_id, r.version FROM runs r WHERE r.id = tr.run_id"
    "  AND r.state || '' = 'running' OFFSET 0) r"
    " JOIN LATERAL (SELECT t.spec FROM tasks t WHERE t.workflow_id = r.workflow_id"
    "  AND t.version = r.version AND t.name = tr.task LIMIT 1) t ON true"
    " LEFT JOIN LATERAL jsonb_array_elements_text(CASE WHEN jsonb_typeof(t.spec->'needs')"
    "  = 'array' THEN t.spec->'needs' ELSE '[]'::jsonb END) AS n(name) ON true"
    " LEFT JOIN LATERAL (SELECT u.state FROM task_runs u WHERE u.run_id = tr.run_id"
    "  AND u.task = n.name AND u.target_executor IS NULL OFFSET 0) u ON true"
    " GROUP BY tr.id, tr.run_id, r.workflow_id, trig"
    "), d AS ("
    " SELECT id, run_id, workflow_id, CASE trig"
    "  WHEN 'all_done' THEN CASE WHEN nfinal = n THEN 'queued' END"
    "  WHEN 'always' THEN CASE WHEN nfinal = n THEN 'queued' END"
    "  WHEN 'one_failed' THEN CASE WHEN nfail > 0 THEN 'queued'"
    "   WHEN nfinal = n THEN 'skipped' END"
    "  ELSE CASE WHEN nok = n THEN 'queued'"
    "   WHEN nfail + ncancel > 0 THEN 'upstream_failed' END"
    "  END AS to_state"
    " FROM p"
    "), lk AS ("
    /* locked in id order, carrying what the update needs: the update
     * reads lk alone (a join of two CTEs is a nested loop) */
    " SELECT tr.id, d.to_state, d.workflow_id FROM d JOIN task_runs tr ON tr.id = d.id"
    " WHERE d.to_state IS NOT NULL ORDER BY tr.id FOR UPDATE OF tr"
    "), upd AS ("
    " UPDATE task_runs tr SET state = lk.to_state, available_at = now(), updated_at = now(),"
    "  finished_at = CASE WHEN lk.to_state = 'queued' THEN NULL ELSE now() END,"
    "  wait_reason = NULL,"
    "  error = CASE WHEN lk.to_state = 'upstream_failed' THEN 'an upstream task failed'"
    "   ELSE NULL END"
    " FROM lk WHERE tr.id = lk.id AND tr.state = 'pending'"
    " RETURNING tr.id, tr.run_id, lk.workflow_id, tr.state, tr.attempt"
    "), ev AS ("
    " INSERT INTO events (kind, workflow_id, run_id, task_run_id, data)"
    " SELECT 'task_run.state', workflow_id, run_id, id,"
    "  jsonb_build_object('from', 'pending', 'to', state, 'attempt', attempt) FROM upd"
    ")"
    " SELECT count(*), count(*) FILTER (WHERE state = 'queued') FROM upd";

/* Settles broadcast parents whose copies are all final (see above). */
static const char ROLLUP_SQL[] =
    "WITH p AS ("
    " SELECT tr.id, tr.run_id, r.workflow_id, tr.attempt,"
    "  coalesce(t.spec->>'broadcast_success', 'all') AS mode,"
    "  count(*) AS n, count(*) FILTER (WHERE c.state = 'succeeded') AS nok,"
    "  string_agg(CASE WHEN c.state <> 'succeeded' THEN c.target_executor || ': '"
    "   || coalesce(c.error, c.state) END, '; ' ORDER BY c.target_executor) AS errors,"
    "  (array_agg(c.outputs ORDER BY c.id) FILTER (WHERE c.state = 'succeeded'))[1] AS outputs"
    " FROM task_runs tr"
    " JOIN runs r ON r.id = tr.run_id"
    " JOIN tasks t ON t.workflow_id = r.workflow_id AND t.version = r.version"
    "  AND t.name = tr.task"
    " JOIN task_runs c ON c.run_id = tr.run_id AND c.task = tr.task"
    "  AND c.target_executor IS NOT NULL"
    /* `state || ''`: by run id; `state = 'running'` let a custom plan
     * read every running task run through task_runs_leased */
    " WHERE tr.run_id = ANY($1::bigint[]) AND tr.state || '' = 'running'"
    "  AND tr.target_executor IS NULL AND t.spec->>'route' = 'broadcast'"
    " GROUP BY tr.id, tr.run_id, r.workflow_id, tr.attempt, mode"
    " HAVING bool_and(c.state IN (" RUNS_FINAL "))"
    "), d AS ("
    " SELECT p.*, CASE WHEN (mode = 'any' AND nok > 0) OR nok = n THEN 'succeeded'"
    "  ELSE 'failed' END AS to_state FROM p"
    "), upd AS ("
    " UPDATE task_runs tr SET state = d.to_state, finished_at = now(), updated_at = now(),"
    "  lease_expires_at = NULL, wait_reason = NULL, outputs = d.outputs,"
    "  error = CASE WHEN d.to_state = 'failed' THEN 'broadcast: ' || (d.n - d.nok) || ' of '"
    "   || d.n || ' copies did not succeed (' || d.errors || ')' END"
    " FROM d WHERE tr.id = d.id AND tr.state = 'running'"
    " RETURNING tr.id, tr.run_id, d.workflow_id, tr.state, tr.attempt, d.n, d.nok"
    "), ev AS ("
    " INSERT INTO events (kind, workflow_id, run_id, task_run_id, data)"
    " SELECT 'task_run.state', workflow_id, run_id, id, jsonb_build_object('from', 'running',"
    "  'to', state, 'attempt', attempt, 'copies', n, 'succeeded', nok) FROM upd"
    ")"
    " SELECT count(*) FROM upd";

/* Completes the runs whose task runs are all final: state, event, outbox. */
static const char COMPLETE_SQL[] =
    /* Driven by the ids whatever the statistics say: each id is one
     * primary key probe and one read of the run's task runs (open = not
     * final yet; bad = a DAG task that did not succeed or get skipped).
     * With few running runs in the statistics the planner started from
     * every running run instead (the partial index runs_active: a nested
     * loop of 500 x 500 rows): OFFSET 0 keeps the probe a probe, and
     * `state || ''` keeps runs_active out of it. */
    "WITH u AS MATERIALIZED (SELECT DISTINCT unnest($1::bigint[]) AS id"
    /* $2..$4: the sole runs, their task runs and attempts (the caller saw
     * no other task run): read only by the update that finishes them */
    "), so AS MATERIALIZED ("
    " SELECT DISTINCT ON (s.id) s.id, s.tr, s.att"
    " FROM unnest($2::bigint[], $3::bigint[], $4::int[]) AS s(id, tr, att)"
    " ORDER BY s.id"
    "), c AS ("
    " SELECT r.id, t.bad = 0 AS ok FROM u"
    " CROSS JOIN LATERAL (SELECT r.id FROM runs r WHERE r.id = u.id"
    "  AND r.state || '' = 'running' OFFSET 0) r"
    " CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE tr.state NOT IN (" RUNS_FINAL "))"
    "  AS open, count(*) FILTER (WHERE tr.target_executor IS NULL"
    "  AND tr.state NOT IN (" RUNS_OK ")) AS bad"
    "  FROM task_runs tr WHERE tr.run_id = r.id) t"
    " WHERE t.open = 0"
    /* the sole runs: final and successful without reading their task
     * runs, if they are still running (the update checks) */
    " UNION ALL"
    " SELECT so.id, true FROM so"
    "), upd AS ("
    " UPDATE runs r SET state = CASE WHEN c.ok THEN 'succeeded' ELSE 'failed' END,"
    "  finished_at = now()"
    " FROM c WHERE r.id = c.id AND r.state || '' = 'running'"
    " RETURNING r.id, r.workflow_id, r.version, r.state, r.finished_at, r.started_at"
    "), sev AS ("
    /* a sole run that is not running (paused, say) does not finish here:
     * its task run's change is said by an event of its own (the run read
     * only for those) */
    " INSERT INTO events (kind, workflow_id, run_id, task_run_id, data)"
    " SELECT 'task_run.state', r.workflow_id, s.id, s.tr,"
    "  jsonb_build_object('from', 'running', 'to', 'succeeded', 'attempt', s.att)"
    " FROM (SELECT so.* FROM so WHERE NOT EXISTS (SELECT 1 FROM upd WHERE upd.id = so.id)"
    "  OFFSET 0) s"
    " CROSS JOIN LATERAL (SELECT r.workflow_id FROM runs r WHERE r.id = s.id OFFSET 0) r"
    "), ev AS ("
    " INSERT INTO events (kind, workflow_id, run_id, data)"
    /* date_part is float8 (extract() is numeric, a fifth of the event's
     * cost): whole microseconds, exact, then milliseconds with halves
     * rounded up, as the numeric cast did */
    " SELECT 'run.finished', workflow_id, id, jsonb_build_object('state', state,"
    "  'duration_ms', (round(date_part('epoch', finished_at - started_at) * 1000000)::bigint"
    "  + 500) / 1000)"
    " FROM upd"
    /* the hooks of each version once (a large DAG is TOASTed: reading it
     * once per version and batch, not several times per finished run) */
    "), hk AS MATERIALIZED ("
    " SELECT v.workflow_id, v.version, x.d->'on_success' AS ok, x.d->'on_failure' AS fail"
    " FROM (SELECT DISTINCT workflow_id, version FROM upd) u"
    " JOIN workflow_versions v ON v.workflow_id = u.workflow_id AND v.version = u.version"
    " CROSS JOIN LATERAL (SELECT v.dag || '{}'::jsonb AS d) x"
    "), ob AS ("
    " INSERT INTO outbox (kind, target, payload)"
    " SELECT CASE WHEN e ? 'webhook' THEN 'webhook' ELSE 'email' END,"
    "  coalesce(e->>'webhook', e->>'email'),"
    "  jsonb_build_object('event', 'run.' || upd.state, 'workflow', w.name,"
    "   'run_id', upd.id, 'state', upd.state, 'finished_at',"
    "   to_char(upd.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))"
    " FROM upd JOIN workflows w ON w.id = upd.workflow_id"
    " JOIN hk ON hk.workflow_id = upd.workflow_id AND hk.version = upd.version"
    " CROSS JOIN LATERAL (SELECT CASE WHEN upd.state = 'succeeded' THEN hk.ok"
    "  ELSE hk.fail END AS h) x"
    " CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(x.h) = 'array' THEN x.h"
    "  WHEN jsonb_typeof(x.h) = 'object' THEN jsonb_build_array(x.h)"
    "  ELSE '[]'::jsonb END) AS e"
    " WHERE jsonb_typeof(e) = 'object' AND (e ? 'webhook' OR e ? 'email')"
    /* checked once: most batches have no version with hooks */
    "  AND EXISTS (SELECT 1 FROM hk WHERE hk.ok NOT IN ('null', '[]', '{}')"
    "   OR hk.fail NOT IN ('null', '[]', '{}'))"
    ")"
    " SELECT count(*) FROM upd";

/* Live views (GET /api/v1/events/stream) read new events when woken by a
 * NOTIFY on wf_events and every quarter second anyway (api_events.c). A
 * NOTIFY is not free: PostgreSQL makes every transaction that notifies
 * wait, from its commit until the end of the previous notifier's commit, on
 * one lock (async.c), so the appliers committed one after the other, each
 * waiting out the other's WAL flush (bench/README.md, round 5: its effect
 * on throughput was within this machine's noise). So the result path
 * wakes the streams at most every NOTIFY_EVERY_MS per engine:
 * a lone result still wakes them at once, and in a burst the streams'
 * own reads bound the delay. The payload is empty: a wake-up, not a list. */
#define NOTIFY_EVERY_MS 200

static _Atomic int64_t last_events_notify_ms;

static int events_notify_due(void)
{
	int64_t now = mono_ms();
	int64_t last = atomic_load(&last_events_notify_ms);
	return now - last >= NOTIFY_EVERY_MS &&
	       atomic_compare_exchange_strong(&last_events_notify_ms, &last, now);
}

int runs__settle(struct store *s, const char *run_ids, int flags)
{
	return runs__settle_sole(s, run_ids, "{}", "{}", "{}", flags);
}

int runs__settle_sole(struct store *s, const char *run_ids, const char *sole_ids,
                      const char *sole_trs, const char *sole_atts, int flags)
{
	const char *p[1] = {run_ids};
	const char *p4[4] = {run_ids, sole_ids, sole_trs, sole_atts};
	int queued = 0;
	if (strcmp(run_ids, "{}") == 0)
		flags |= RUNS_SETTLE_NO_COPIES | RUNS_SETTLE_NO_DAG;
	if (!(flags & RUNS_SETTLE_NO_COPIES)) {
		PGresult *rr = store_execp(s, "runs_rollup", ROLLUP_SQL, 1, p);
		if (!rr)
			return -1;
		PQclear(rr);
	}
	/* Each pass moves the frontier one level; a DAG cannot be deeper than
	 * its task count, the bound only guards against a bug looping. */
	for (int pass = 0; pass < 10000 && !(flags & RUNS_SETTLE_NO_DAG); pass++) {
		PGresult *r = store_execp(s, "runs_advance", ADVANCE_SQL, 1, p);
		if (!r)
			return -1;
		long changed = strtol(PQgetvalue(r, 0, 0), NULL, 10);
		queued += (int)strtol(PQgetvalue(r, 0, 1), NULL, 10);
		PQclear(r);
		if (changed == 0)
			break;
	}
	PGresult *r = store_execp(s, "runs_complete", COMPLETE_SQL, 4, p4);
	if (!r)
		return -1;
	PQclear(r);
	if (queued > 0 || (flags & RUNS_SETTLE_WORK_READY)) {
		r = store_execp(s, "runs_notify_work", "SELECT pg_notify('wf_work', '')", 0, NULL);
		if (!r)
			return -1;
		PQclear(r);
	}
	if (events_notify_due()) {
		r = store_execp(s, "runs_notify_events", "SELECT pg_notify('wf_events', '')", 0,
		                NULL);
		if (!r)
			return -1;
		PQclear(r);
	}
	return 0;
}

/* ------------------------------------------------------------ helpers */

void runs__ids_literal(struct buf *b, const long long *ids, int n)
{
	if (buf_puts(b, "{") != 0)
		goto oom;
	for (int i = 0; i < n; i++)
		if ((i && buf_puts(b, ",") != 0) || buf_put_ll(b, ids[i]) != 0)
			goto oom;
	if (buf_puts(b, "}") != 0)
		goto oom;
	return;
oom:
	/* Only a bounded buf can refuse; callers pass unbounded ones. */
	log_error("id list too long", "n=%d", n);
	abort();
}

void runs__array_text(struct buf *b, const char *s)
{
	if (b->len > 1 && buf_puts(b, ",") != 0)
		goto oom;
	if (!s) {
		if (buf_puts(b, "NULL") != 0)
			goto oom;
		return;
	}
	if (buf_puts(b, "\"") != 0)
		goto oom;
	for (const char *p = s; *p;) {
		size_t n = strcspn(p, "\"\\");
		if (n && buf_append(b, p, n) != 0)
			goto oom;
		p += n;
		if (!*p)
			break;
		char esc[2] = {'\\', *p++};
		if (buf_append(b, esc, 2) != 0)
			goto oom;
	}
	if (buf_puts(b, "\"") != 0)
		goto oom;
	return;
oom:
	log_error("array literal too long", "%s", "");
	abort();
}

int runs__cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

void runs__db_error(struct wf_err *e, struct store *s, const char *what)
{
	wf_err_set(e, 503, "unavailable", "", "database error while %s: %s", what,
	           store_error(s)[0] ? store_error(s) : "unknown error");
}

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	size_t len;
	unsigned int cp;
	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xE0) == 0xC0) {
		len = 2;
		cp = p[0] & 0x1F;
	} else if ((p[0] & 0xF0) == 0xE0) {
		len = 3;
		cp = p[0] & 0x0F;
	} else if ((p[0] & 0xF8) == 0xF0) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

char *runs__clean_text(const char *s, size_t max)
{
	if (!s)
		return NULL;
	size_t n = strlen(s);
	char *out = xmalloc((n < max ? n : max) + 1);
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t len = utf8_seq(p + i, n - i);
		if (len == 0) {
			if (o + 1 > max)
				break;
			out[o++] = '?';
			i++;
			continue;
		}
		if (o + len > max)
			break;
		memcpy(out + o, p + i, len);
		o += len;
		i += len;
	}
	out[o] = '\0';
	return out;
}
