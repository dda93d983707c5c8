/* Submitting workflows: compiled DAG → immutable version, tasks, edges,
 * schedule.
 *
 * Decisions:
 * - The hash of the current version equals the submitted one → changed = 0
 *   and nothing is written.
 * - The hash equals an older version's → that version becomes current again
 *   (no new row; versions are immutable and unique per hash), changed = 1.
 * - Otherwise a new version (max + 1) with its tasks and task_edges.
 * - Schedule: the DAG's "schedule" is upserted into schedules (kind cron or
 *   at), or the row is deleted when the DAG has none. When the definition
 *   (kind, expr, timezone, at, jitter, DST rules) is unchanged the row keeps
 *   its next_fire_at; otherwise next_fire_at is reset: for `at` schedules to
 *   the at time (jitter is not applied to one-time schedules), for cron to
 *   NULL. The scheduler (engine/sched.c) owns cron arithmetic and computes
 *   next_fire_at for rows where it is NULL; the run code never links cron.
 * - A deleted workflow (deleted_at set) submitted again is revived. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runs_int.h"
#include "xalloc.h"

static const char INSERT_VERSION_SQL[] =
    "WITH v AS ("
    " INSERT INTO workflow_versions (workflow_id, version, hash, source, filename, dag,"
    "  created_by)"
    " SELECT $1::bigint, coalesce(max(version), 0) + 1, $2, $3, $4, $5::jsonb, $6"
    " FROM workflow_versions WHERE workflow_id = $1::bigint"
    " RETURNING workflow_id, version, dag"
    "), t AS ("
    " INSERT INTO tasks (workflow_id, version, name, spec)"
    " SELECT v.workflow_id, v.version, e->>'name', e"
    " FROM v CROSS JOIN LATERAL jsonb_array_elements(v.dag->'tasks') AS e"
    "), ed AS ("
    " INSERT INTO task_edges (workflow_id, version, upstream, downstream)"
    " SELECT DISTINCT v.workflow_id, v.version, n, e->>'name'"
    " FROM v CROSS JOIN LATERAL jsonb_array_elements(v.dag->'tasks') AS e"
    " CROSS JOIN LATERAL jsonb_array_elements_text(CASE WHEN jsonb_typeof(e->'needs') ="
    "  'array' THEN e->'needs' ELSE '[]'::jsonb END) AS n"
    ")"
    " SELECT version FROM v";

static const char UPSERT_SCHEDULE_SQL[] =
    "INSERT INTO schedules (workflow_id, kind, expr, timezone, at_time, jitter_ms, catchup,"
    " overlap, dst_gap, dst_repeat, next_fire_at, next_nominal_at)"
    " VALUES ($1::bigint, $2, $3, coalesce($4, 'UTC'), $5::timestamptz,"
    " coalesce($6::bigint, 0), coalesce($7, 'latest'), coalesce($8, 'allow'),"
    " coalesce($9, 'shift'), coalesce($10, 'once'), $5::timestamptz, $5::timestamptz)"
    " ON CONFLICT (workflow_id) DO UPDATE SET"
    " next_fire_at = CASE WHEN (schedules.kind, schedules.expr, schedules.timezone,"
    "  schedules.at_time, schedules.jitter_ms, schedules.dst_gap, schedules.dst_repeat)"
    "  IS NOT DISTINCT FROM (EXCLUDED.kind, EXCLUDED.expr, EXCLUDED.timezone,"
    "  EXCLUDED.at_time, EXCLUDED.jitter_ms, EXCLUDED.dst_gap, EXCLUDED.dst_repeat)"
    "  THEN schedules.next_fire_at ELSE EXCLUDED.next_fire_at END,"
    " next_nominal_at = CASE WHEN (schedules.kind, schedules.expr, schedules.timezone,"
    "  schedules.at_time, schedules.jitter_ms, schedules.dst_gap, schedules.dst_repeat)"
    "  IS NOT DISTINCT FROM (EXCLUDED.kind, EXCLUDED.expr, EXCLUDED.timezone,"
    "  EXCLUDED.at_time, EXCLUDED.jitter_ms, EXCLUDED.dst_gap, EXCLUDED.dst_repeat)"
    "  THEN schedules.next_nominal_at ELSE EXCLUDED.next_nominal_at END,"
    " kind = EXCLUDED.kind, expr = EXCLUDED.expr, timezone = EXCLUDED.timezone,"
    " at_time = EXCLUDED.at_time, jitter_ms = EXCLUDED.jitter_ms,"
    " catchup = EXCLUDED.catchup, overlap = EXCLUDED.overlap, dst_gap = EXCLUDED.dst_gap,"
    " dst_repeat = EXCLUDED.dst_repeat, enabled = true, updated_at = now()";

/* A string member of o, or NULL. */
static const char *str_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Checks the parts of the DAG this module relies on, so a malformed DAG
 * gets a 400 and not a failed statement. */
static int check_dag(json_t *dag, struct wf_err *e)
{
	if (!json_is_object(dag) || !str_of(dag, "name") || !*str_of(dag, "name")) {
		wf_err_set(e, 400, "invalid_workflow", "name", "the workflow has no name");
		return -1;
	}
	json_t *tasks = json_object_get(dag, "tasks");
	if (!json_is_array(tasks) || json_array_size(tasks) == 0) {
		wf_err_set(e, 400, "invalid_workflow", "tasks", "the workflow has no tasks");
		return -1;
	}
	size_t i;
	json_t *t;
	json_array_foreach(tasks, i, t)
	{
		if (!json_is_object(t) || !str_of(t, "name")) {
			wf_err_set(e, 400, "invalid_workflow", "tasks",
			           "task %zu is not an object with a name", i);
			return -1;
		}
	}
	json_t *sc = json_object_get(dag, "schedule");
	if (sc && !json_is_null(sc) &&
	    (!json_is_object(sc) || (!str_of(sc, "cron") && !str_of(sc, "at")))) {
		wf_err_set(e, 400, "invalid_workflow", "schedule",
		           "schedule needs a cron expression or an at time");
		return -1;
	}
	return 0;
}

/* Upserts or deletes the schedule row for the DAG. Returns 0 or -1. */
static int write_schedule(struct store *s, const char *wid, json_t *dag)
{
	json_t *sc = json_object_get(dag, "schedule");
	if (!json_is_object(sc)) {
		const char *p[1] = {wid};
		return store_cmd(s, "DELETE FROM schedules WHERE workflow_id = $1::bigint", 1, p);
	}
	const char *cron = str_of(sc, "cron");
	char jitter[32] = "0";
	json_t *j = json_object_get(sc, "jitter_ms");
	if (json_is_integer(j))
		snprintf(jitter, sizeof jitter, "%lld", (long long)json_integer_value(j));
	const char *p[10] = {wid,
	                     cron ? "cron" : "at",
	                     cron,
	                     str_of(sc, "timezone"),
	                     cron ? NULL : str_of(sc, "at"),
	                     jitter,
	                     str_of(sc, "catchup"),
	                     str_of(sc, "overlap"),
	                     str_of(sc, "dst_gap"),
	                     str_of(sc, "dst_repeat")};
	return store_cmd(s, UPSERT_SCHEDULE_SQL, 10, p);
}

int runs_submit(struct store *s, const struct dsl_result *r, const char *source,
                const char *filename, const char *actor, int *version, int *changed,
                struct wf_err *e)
{
	int rc = -1, in_tx = 0;
	char *dag_text = NULL;
	PGresult *q = NULL;
	*changed = 0;
	*version = 0;
	if (!r || check_dag(r->dag, e) != 0)
		goto out;
	const char *name = str_of(r->dag, "name");
	const char *ns = str_of(r->dag, "namespace") ? str_of(r->dag, "namespace") : "default";
	dag_text = r->canonical ? xstrdup(r->canonical)
	                        : json_dumps(r->dag, JSON_SORT_KEYS | JSON_COMPACT);
	if (!dag_text) {
		wf_err_set(e, 400, "invalid_workflow", "", "the DAG cannot be encoded as JSON");
		goto out;
	}

	if (store_begin(s) != 0)
		goto dberr;
	in_tx = 1;
	const char *p2[2] = {name, ns};
	if (store_cmd(s,
	              "INSERT INTO workflows (name, namespace) VALUES ($1, $2)"
	              " ON CONFLICT (name) DO NOTHING",
	              2, p2) != 0)
		goto dberr;
	/* The row lock serializes submits of the same workflow. */
	q = store_exec(s,
	               "SELECT id, current_version, deleted_at IS NOT NULL, namespace = $2"
	               " FROM workflows WHERE name = $1 FOR UPDATE",
	               2, p2);
	if (!q || PQntuples(q) != 1)
		goto dberr;
	char wid[32];
	snprintf(wid, sizeof wid, "%s", PQgetvalue(q, 0, 0));
	int cur = PQgetisnull(q, 0, 1) ? 0 : atoi(PQgetvalue(q, 0, 1));
	int deleted = PQgetvalue(q, 0, 2)[0] == 't';
	int same_ns = PQgetvalue(q, 0, 3)[0] == 't';
	PQclear(q);

	const char *ph[2] = {wid, r->hash};
	q = store_exec(s,
	               "SELECT version FROM workflow_versions"
	               " WHERE workflow_id = $1::bigint AND hash = $2",
	               2, ph);
	if (!q)
		goto dberr;
	int found = PQntuples(q) == 1 ? atoi(PQgetvalue(q, 0, 0)) : 0;
	PQclear(q);
	q = NULL;

	if (found && found == cur && !deleted && same_ns) {
		*version = cur;
		if (store_commit(s) != 0)
			goto dberr;
		in_tx = 0;
		rc = 0;
		goto out;
	}
	int v = found;
	if (!v) {
		const char *pv[6] = {wid, r->hash, source ? source : "", filename, dag_text, actor};
		q = store_exec(s, INSERT_VERSION_SQL, 6, pv);
		if (!q || PQntuples(q) != 1)
			goto dberr;
		v = atoi(PQgetvalue(q, 0, 0));
		PQclear(q);
		q = NULL;
	}
	char vs[16];
	snprintf(vs, sizeof vs, "%d", v);
	const char *pu[3] = {wid, vs, ns};
	if (store_cmd(s,
	              "UPDATE workflows SET current_version = $2::int, namespace = $3,"
	              " deleted_at = NULL, updated_at = now() WHERE id = $1::bigint",
	              3, pu) != 0)
		goto dberr;
	if (write_schedule(s, wid, r->dag) != 0)
		goto dberr;
	const char *pe[6] = {wid, actor, vs, r->hash, filename, found ? "true" : "false"};
	if (store_cmd(s,
	              "INSERT INTO events (kind, workflow_id, actor, data)"
	              " VALUES ('workflow.submitted', $1::bigint, $2, jsonb_build_object("
	              "'version', $3::int, 'hash', $4::text, 'filename', $5::text,"
	              " 'reused', $6::boolean))",
	              6, pe) != 0)
		goto dberr;
	if (store_commit(s) != 0)
		goto dberr;
	in_tx = 0;
	*version = v;
	*changed = 1;
	log_info("workflow submitted", "workflow=%s version=%d reused=%d", name, v, found != 0);
	rc = 0;
	goto out;
dberr:
	/* A value the schema refuses (a CHECK, a bad timestamp) is the
	 * submitter's fault; anything else is the database's. */
	if (strncmp(store_sqlstate(s), "22", 2) == 0 || strcmp(store_sqlstate(s), "23514") == 0)
		wf_err_set(e, 400, "invalid_workflow", "", "the workflow was refused: %s",
		           store_error(s));
	else
		runs__db_error(e, s, "submitting the workflow");
out:
	PQclear(q);
	if (in_tx)
		store_rollback(s);
	free(dag_text);
	return rc;
}
