/* The notifier's alerts: runs past their deadline and thresholds (open
 * dead letters, online executor slots), written to the outbox once,
 * whichever engine sees them first. */
#include "notify_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "store.h"
#include "util.h"
#include "xalloc.h"

/* Runs past their deadline: mark them alerted and write the alert to the
 * workflow's on_failure targets and the alert targets, in one statement.
 * $1 alert webhook, $2 alert e-mail (NULL = none), $3 public URL. */
// clang-format off
static const char DEADLINE_SQL[] =
    "WITH due AS ("
    " SELECT r.id, r.workflow_id, r.version, r.state, r.deadline_at FROM runs r"
    " WHERE r.state IN ('queued', 'running') AND r.deadline_at IS NOT NULL"
    "  AND r.deadline_at <= now() AND NOT r.deadline_alerted"
    " ORDER BY r.deadline_at LIMIT 100 FOR UPDATE SKIP LOCKED"
    "), upd AS ("
    " UPDATE runs r SET deadline_alerted = true FROM due WHERE r.id = due.id RETURNING r.id"
    "), p AS ("
    " SELECT due.id, due.workflow_id, w.name, v.dag->'on_failure' AS onf,"
    "  jsonb_build_object('event', 'run.deadline_missed', 'workflow', w.name,"
    "   'run_id', due.id, 'state', due.state, 'deadline_at', wf_ts(due.deadline_at),"
    "   'url', CASE WHEN $3::text IS NOT NULL THEN $3::text || '/#/runs/' || due.id END)"
    "   AS payload"
    " FROM due JOIN workflows w ON w.id = due.workflow_id"
    " JOIN workflow_versions v ON v.workflow_id = due.workflow_id AND v.version = due.version"
    "), t AS ("
    " SELECT p.id, p.payload, e FROM p CROSS JOIN LATERAL jsonb_array_elements(CASE"
    "   jsonb_typeof(p.onf) WHEN 'array' THEN p.onf"
    "   WHEN 'object' THEN jsonb_build_array(p.onf) ELSE '[]'::jsonb END) e"
    " WHERE jsonb_typeof(e) = 'object' AND (e ? 'webhook' OR e ? 'email')"
    " UNION ALL SELECT p.id, p.payload, jsonb_build_object('webhook', $1::text) FROM p"
    "  WHERE $1::text IS NOT NULL"
    " UNION ALL SELECT p.id, p.payload, jsonb_build_object('email', $2::text) FROM p"
    "  WHERE $2::text IS NOT NULL"
    "), ob AS ("
    " INSERT INTO outbox (kind, target, payload, dedup_key)"
    " SELECT CASE WHEN e ? 'webhook' THEN 'webhook' ELSE 'email' END,"
    "  coalesce(e->>'webhook', e->>'email'), payload, 'run.deadline_missed:' || id FROM t"
    " ON CONFLICT (kind, target, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING"
    "), ev AS ("
    " INSERT INTO events (kind, workflow_id, run_id, data)"
    " SELECT 'run.deadline_missed', workflow_id, id, payload FROM p"
    ")"
    " SELECT p.id, p.name FROM p JOIN upd ON upd.id = p.id";
// clang-format on

static int check_deadlines(struct notifier *n)
{
	const char *p[3] = {n->alert_webhook, n->alert_email, n->public_url};
	PGresult *r = store_execp(n->s, "notify_deadlines", DEADLINE_SQL, 3, p);
	if (!r)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		log_warn("run missed its deadline", "run_id=%s workflow=%s", PQgetvalue(r, i, 0),
		         PQgetvalue(r, i, 1));
		metrics_count_alert("deadline");
	}
	PQclear(r);
	return 0;
}

struct threshold {
	const char *name;  /* notify_alerts.name and metrics label */
	const char *event; /* payload event when it fires */
	const char *value_sql;
	long long threshold;
	int below; /* 1: bad when value < threshold, 0: bad when value > threshold */
	const char *what, *page;
};

static char *alert_payload(struct notifier *n, const struct threshold *t, long long value)
{
	char at[40];
	fmt_time_ms(wall_ms(), at, sizeof at);
	json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:s,s:s}", "event", t->event, "alert", t->name,
	                      "value", (json_int_t)value, "threshold", (json_int_t)t->threshold,
	                      "engine", n->engine_id, "at", at);
	if (n->public_url)
		json_object_set_new(j, "url", json_sprintf("%s/#/%s", n->public_url, t->page));
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return s;
}

/* One threshold alert in one transaction: whoever locks its notify_alerts
 * row first evaluates it (others skip this round); it fires once when the
 * value crosses to the bad side and re-arms when it is back. */
static int check_threshold(struct notifier *n, const struct threshold *t)
{
	int rc = -1;
	char *payload = NULL;
	PGresult *r = NULL;
	const char *pn[1] = {t->name};

	if (store_begin(n->s) != 0)
		return -1;
	if (store_cmd(n->s, "INSERT INTO notify_alerts (name) VALUES ($1) ON CONFLICT DO NOTHING",
	              1, pn) != 0)
		goto out;
	r = store_exec(
	    n->s, "SELECT firing FROM notify_alerts WHERE name = $1 FOR UPDATE SKIP LOCKED", 1, pn);
	if (!r)
		goto out;
	if (PQntuples(r) == 0) { /* another engine is looking right now */
		rc = 0;
		goto out;
	}
	int firing = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	r = store_exec(n->s, t->value_sql, 0, NULL);
	if (!r)
		goto out;
	long long value = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	r = NULL;
	int bad = t->below ? value < t->threshold : value > t->threshold;
	char v[24], th[24];
	snprintf(v, sizeof v, "%lld", value);
	snprintf(th, sizeof th, "%lld", t->threshold);
	if (bad && !firing) {
		const char *pu[3] = {t->name, v, th};
		r = store_exec(n->s,
		               "UPDATE notify_alerts SET firing = true, crossings = crossings + 1,"
		               " value = $2::bigint, threshold = $3::bigint, changed_at = now()"
		               " WHERE name = $1 RETURNING crossings",
		               3, pu);
		if (!r)
			goto out;
		char *key = xasprintf("%s:%s", t->event, PQgetvalue(r, 0, 0));
		PQclear(r);
		r = NULL;
		payload = alert_payload(n, t, value);
		const char *po[4] = {n->alert_webhook, n->alert_email, payload, key};
		int ok =
		    store_cmd(n->s,
		              "INSERT INTO outbox (kind, target, payload, dedup_key)"
		              " SELECT k, t, $3::jsonb, $4 FROM (VALUES ('webhook', $1::text),"
		              "  ('email', $2::text)) v(k, t) WHERE t IS NOT NULL"
		              " ON CONFLICT (kind, target, dedup_key) WHERE dedup_key IS NOT NULL"
		              " DO NOTHING",
		              4, po) == 0 &&
		    store_cmd(n->s,
		              "INSERT INTO events (kind, actor, data) VALUES ($1, 'notifier', $2)",
		              2, (const char *[]){t->event, payload}) == 0;
		free(key);
		if (!ok)
			goto out;
		log_warn("alert", "alert=%s %s=%lld threshold=%lld", t->name, t->what, value,
		         t->threshold);
		metrics_count_alert(t->name);
	} else if (!bad && firing) {
		const char *pu[3] = {t->name, v, th};
		if (store_cmd(n->s,
		              "UPDATE notify_alerts SET firing = false, value = $2::bigint,"
		              " threshold = $3::bigint, changed_at = now() WHERE name = $1",
		              3, pu) != 0)
			goto out;
		log_info("alert resolved", "alert=%s %s=%lld threshold=%lld", t->name, t->what,
		         value, t->threshold);
	}
	rc = 0;
out:
	PQclear(r);
	free(payload);
	if (rc == 0 && store_commit(n->s) == 0)
		return 0;
	store_rollback(n->s);
	return -1;
}

int notify__check_alerts(struct notifier *n)
{
	int rc = 0;
	if (check_deadlines(n) != 0)
		rc = -1;
	if (n->o.alert_dlq >= 0) {
		struct threshold t = {"dlq",
		                      "alert.dlq_over_threshold",
		                      "SELECT count(*) FROM dead_letters WHERE resolved_at IS NULL",
		                      n->o.alert_dlq,
		                      0,
		                      "open_dead_letters",
		                      "dead-letters"};
		if (check_threshold(n, &t) != 0)
			rc = -1;
	}
	if (n->o.alert_min_slots > 0 && mono_ms() - n->started_ms >= n->o.slots_grace_ms) {
		struct threshold t = {
		    "slots",
		    "alert.executor_slots_low",
		    "SELECT coalesce(sum(slots), 0) FROM executors WHERE state = 'online'",
		    n->o.alert_min_slots,
		    1,
		    "online_slots",
		    "executors"};
		if (check_threshold(n, &t) != 0)
			rc = -1;
	}
	if (!n->smtp_url && !n->warned_no_smtp) {
		PGresult *r = store_exec(n->s,
		                         "SELECT count(*) FROM outbox WHERE kind = 'email'"
		                         " AND delivered_at IS NULL AND gave_up_at IS NULL",
		                         0, NULL);
		if (r && strcmp(PQgetvalue(r, 0, 0), "0") != 0) {
			log_warn(
			    "e-mail notifications are waiting but this engine has no --smtp-url",
			    "pending=%s", PQgetvalue(r, 0, 0));
			n->warned_no_smtp = 1;
		}
		PQclear(r);
	}
	return rc;
}
