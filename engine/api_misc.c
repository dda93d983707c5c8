/* Endpoints about the engine itself: /healthz, /readyz, /metrics and
 * GET /api/v1/executors. /healthz, /readyz and /metrics need no token
 * (probes and Prometheus scrape them); like everything they listen on
 * loopback unless allow_remote. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "buf.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "xalloc.h"

static void healthz(struct api_req *rq, struct api_resp *rs)
{
	PGresult *r = store_execp(api_store(rq), "api_healthz", "SELECT 1", 0, NULL);
	if (!r) {
		api_json(rs, 503,
		         json_pack("{s:s,s:s}", "status", "db_unavailable", "engine",
		                   rq->api->engine_id));
		return;
	}
	PQclear(r);
	api_json(rs, 200, json_pack("{s:s,s:s}", "status", "ok", "engine", rq->api->engine_id));
}

static void readyz(struct api_req *rq, struct api_resp *rs)
{
	char err[256] = "";
	PGconn *db = store_conn(api_store(rq));
	if (!db) {
		api_json(rs, 503,
		         json_pack("{s:s,s:s,s:s}", "status", "not_ready", "reason",
		                   "database unavailable", "engine", rq->api->engine_id));
		return;
	}
	if (migrate_check(db, err, sizeof err) != 0) {
		api_json(rs, 503,
		         json_pack("{s:s,s:s,s:s}", "status", "not_ready", "reason", err, "engine",
		                   rq->api->engine_id));
		return;
	}
	api_json(rs, 200, json_pack("{s:s,s:s}", "status", "ready", "engine", rq->api->engine_id));
}

/* ------------------------------------------------------------ metrics */

/* Every aggregate of a scrape in one round trip; all use small tables or
 * partial indexes except the two state counts (a sequential scan of runs
 * and task_runs: cheap at the sizes retention keeps). wf_attempts_total is
 * the last id drawn from the attempts identity, which every ended attempt
 * takes, also one its task run keeps (migration 014): monotonic, so a
 * counter, and no table read. */
static const char metrics_sql[] =
    "SELECT 'runs', state, '', count(*)::bigint FROM runs GROUP BY state"
    " UNION ALL SELECT 'task_runs', state, '', count(*) FROM task_runs GROUP BY state"
    " UNION ALL SELECT 'queue', CASE priority WHEN 0 THEN 'high' WHEN 1 THEN 'medium'"
    "   ELSE 'low' END, pool, count(*) FROM task_runs"
    "   WHERE state IN ('queued', 'retrying') AND available_at <= now() GROUP BY priority, pool"
    " UNION ALL SELECT 'executors', state, '', count(*) FROM executors GROUP BY state"
    " UNION ALL SELECT 'free_slots', '', pool, sum(free_slots)::bigint FROM executors"
    "   WHERE state = 'online' GROUP BY pool"
    " UNION ALL SELECT 'dead_letters', '', '', count(*) FROM dead_letters"
    "   WHERE resolved_at IS NULL"
    " UNION ALL SELECT 'outbox', '', '', count(*) FROM outbox WHERE delivered_at IS NULL"
    "   AND gave_up_at IS NULL"
    " UNION ALL SELECT 'attempts', '', '', CASE WHEN is_called THEN last_value ELSE 0 END"
    "   FROM attempts_id_seq";

static const char *const run_states[] = {"queued",    "running", "succeeded", "failed",
                                         "cancelled", "paused",  NULL};
static const char *const task_states[] = {"pending",   "queued", "running",   "retrying",
                                          "succeeded", "failed", "cancelled", "upstream_failed",
                                          "skipped",   "dead",   NULL};
static const char *const executor_states[] = {"online", "draining", "lost", "offline", NULL};

static long long sum_rows(PGresult *r, const char *kind, const char *state)
{
	long long n = 0;
	for (int i = 0; i < PQntuples(r); i++)
		if (strcmp(PQgetvalue(r, i, 0), kind) == 0 &&
		    (!state || strcmp(PQgetvalue(r, i, 1), state) == 0))
			n += strtoll(PQgetvalue(r, i, 3), NULL, 10);
	return n;
}

static void state_family(struct buf *b, PGresult *r, const char *name, const char *help,
                         const char *kind, const char *const *states)
{
	metrics_out(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
	for (int i = 0; states[i]; i++)
		metrics_out(b, "%s{state=\"%s\"} %lld\n", name, states[i],
		            sum_rows(r, kind, states[i]));
}

static void metrics(struct api_req *rq, struct api_resp *rs)
{
	struct buf b;
	PGresult *r = store_execp(api_store(rq), "api_metrics", metrics_sql, 0, NULL);

	buf_init(&b, 0);
	metrics_out(&b,
	            "# HELP wf_db_up 1 when the engine could query PostgreSQL for this scrape.\n"
	            "# TYPE wf_db_up gauge\nwf_db_up %d\n",
	            r ? 1 : 0);
	if (!r)
		goto done;
	state_family(&b, r, "wf_runs", "Runs by state.", "runs", run_states);
	state_family(&b, r, "wf_task_runs", "Task runs by state.", "task_runs", task_states);
	metrics_out(
	    &b, "# HELP wf_queue_depth Task runs ready to dispatch (queued, or retrying with the "
	        "backoff over).\n# TYPE wf_queue_depth gauge\n");
	for (int i = 0; i < PQntuples(r); i++) {
		if (strcmp(PQgetvalue(r, i, 0), "queue") != 0)
			continue;
		char *pool = metrics_label(PQgetvalue(r, i, 2));
		metrics_out(&b, "wf_queue_depth{priority=\"%s\",pool=\"%s\"} %s\n",
		            PQgetvalue(r, i, 1), pool, PQgetvalue(r, i, 3));
		free(pool);
	}
	state_family(&b, r, "wf_executors", "Executors by state.", "executors", executor_states);
	metrics_out(&b, "# HELP wf_executor_free_slots Free slots of online executors, by pool.\n"
	                "# TYPE wf_executor_free_slots gauge\n");
	for (int i = 0; i < PQntuples(r); i++) {
		if (strcmp(PQgetvalue(r, i, 0), "free_slots") != 0)
			continue;
		char *pool = metrics_label(PQgetvalue(r, i, 2));
		metrics_out(&b, "wf_executor_free_slots{pool=\"%s\"} %s\n", pool,
		            PQgetvalue(r, i, 3));
		free(pool);
	}
	metrics_out(&b,
	            "# HELP wf_dead_letters_open Dead letters not yet retried or dropped.\n"
	            "# TYPE wf_dead_letters_open gauge\nwf_dead_letters_open %lld\n",
	            sum_rows(r, "dead_letters", NULL));
	metrics_out(&b,
	            "# HELP wf_outbox_pending Notifications not yet delivered (nor given up).\n"
	            "# TYPE wf_outbox_pending gauge\nwf_outbox_pending %lld\n",
	            sum_rows(r, "outbox", NULL));
	metrics_out(&b,
	            "# HELP wf_attempts_total Attempts ever ended.\n"
	            "# TYPE wf_attempts_total counter\nwf_attempts_total %lld\n",
	            sum_rows(r, "attempts", NULL));
	if (metrics_render_db(api_store(rq), &b) != 0)
		log_warn("metrics: database gauges failed", "error=%s", store_error(api_store(rq)));
done:
	PQclear(r);
	metrics_render(&b);
	free(rs->body);
	rs->status = 200;
	rs->len = b.len;
	rs->body = b.data ? buf_detach(&b) : xstrdup("");
	rs->content_type = "text/plain; version=0.0.4; charset=utf-8";
	buf_release(&b);
}

/* ------------------------------------------------------------ executors */

static void list_executors(struct api_req *rq, struct api_resp *rs)
{
	int limit;
	char lim[16];
	if (api_arg_limit(rq, rs, &limit) != 0)
		return;
	snprintf(lim, sizeof lim, "%d", limit + 1);
	const char *p[4] = {api_arg(rq, "pool"), api_arg(rq, "state"), api_arg(rq, "cursor"), lim};
	api_list(rq, rs,
	         "SELECT json_build_object('id', id, 'endpoint', endpoint, 'pool', pool,"
	         " 'labels', labels, 'slots', slots, 'free_slots', free_slots, 'load', load,"
	         " 'version', version, 'state', state, 'breakers', breakers, 'running', running,"
	         " 'started_at', wf_ts(started_at), 'last_heartbeat', wf_ts(last_heartbeat),"
	         " 'heartbeat_age_s', round(extract(epoch FROM now() - last_heartbeat)::numeric, 1)"
	         ")::text, id FROM executors"
	         " WHERE ($1::text IS NULL OR pool = $1) AND ($2::text IS NULL OR state = $2)"
	         "   AND ($3::text IS NULL OR id > $3)"
	         " ORDER BY id LIMIT $4::int",
	         4, p, limit, 0);
}

const struct api_route api_misc_routes[] = {
    {"GET", "/healthz", AUTH_NONE, healthz},
    {"GET", "/readyz", AUTH_NONE, readyz},
    {"GET", "/metrics", AUTH_NONE, metrics},
    {"GET", "/api/v1/executors", AUTH_VIEWER, list_executors},
    {NULL, NULL, AUTH_NONE, NULL},
};
