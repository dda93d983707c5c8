/* What the notifier sends: run payloads enriched from the database, and
 * e-mail messages (subject, headers, text body) built from a payload. */
#include "notify_int.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "store.h"
#include "xalloc.h"

#define MAX_FAILED_S "50" /* failed tasks listed in a run notification */

/* ------------------------------------------------------------ payloads */

/* s with control characters (CR, LF, ...) replaced by spaces and cut at
 * max bytes: safe in a header or a line of a message. A new string. */
char *notify__one_line(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n > max)
		n = max;
	char *r = xstrndup(s, n);
	for (char *p = r; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			*p = ' ';
	return r;
}

// clang-format off
static const char ENRICH_SQL[] =
    "SELECT jsonb_build_object('workflow', w.name, 'run_id', r.id, 'version', r.version,"
    " 'state', r.state, 'trigger', r.trigger,"
    " 'created_at', wf_ts(r.created_at),"
    " 'started_at', wf_ts(r.started_at),"
    " 'finished_at', wf_ts(r.finished_at),"
    " 'scheduled_for', wf_ts(r.scheduled_for),"
    " 'deadline_at', wf_ts(r.deadline_at),"
    " 'failed_tasks', coalesce((SELECT jsonb_agg(x.o ORDER BY x.rank, x.task) FROM ("
    "   SELECT jsonb_build_object('task', tr.task, 'state', tr.state, 'attempt', tr.attempt,"
    "    'error', left(tr.error, 1000)) AS o, tr.task,"
    "    CASE WHEN tr.state = 'upstream_failed' THEN 1 ELSE 0 END AS rank"
    "   FROM task_runs tr WHERE tr.run_id = r.id"
    "    AND tr.state IN ('failed', 'dead', 'upstream_failed')"
    "   ORDER BY rank, tr.task LIMIT " MAX_FAILED_S ") x), '[]'::jsonb),"
    " 'failed_tasks_total', (SELECT count(*) FROM task_runs tr WHERE tr.run_id = r.id"
    "   AND tr.state IN ('failed', 'dead', 'upstream_failed')))::text"
    " FROM runs r JOIN workflows w ON w.id = r.workflow_id WHERE r.id = $1";
// clang-format on

/* Adds what a receiver needs about the run that the writer of the row
 * left out (the writer's keys win). Once per row: the result is stored. */
void notify__enrich(struct job *j)
{
	json_t *rid = json_object_get(j->payload, "run_id");
	if (!json_is_integer(rid) || json_object_get(j->payload, "failed_tasks"))
		return;
	char id[24];
	snprintf(id, sizeof id, "%lld", (long long)json_integer_value(rid));
	const char *p[1] = {id};
	PGresult *r = store_execp(j->n->s, "notify_enrich", ENRICH_SQL, 1, p);
	if (r && PQntuples(r) == 1) {
		json_t *x = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
		if (json_is_object(x)) {
			json_object_update_missing(j->payload, x);
			j->enriched = 1;
		}
		json_decref(x);
	}
	PQclear(r);
	if (j->n->public_url && !json_object_get(j->payload, "url")) {
		json_object_set_new(j->payload, "url",
		                    json_sprintf("%s/#/runs/%s", j->n->public_url, id));
		j->enriched = 1;
	}
}

const char *notify__pstr(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : dflt;
}

static long long pint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

/* ------------------------------------------------------------ e-mail */

static char *subject_of(json_t *p)
{
	const char *ev = notify__pstr(p, "event", "notification"),
	           *wf = notify__pstr(p, "workflow", "?");
	long long run = pint(p, "run_id");
	if (strcmp(ev, "run.deadline_missed") == 0)
		return xasprintf("[wf] run %lld of %s missed its deadline", run, wf);
	if (strcmp(ev, "alert.dlq_over_threshold") == 0)
		return xasprintf("[wf] alert: %lld open dead letters (threshold %lld)",
		                 pint(p, "value"), pint(p, "threshold"));
	if (strcmp(ev, "alert.executor_slots_low") == 0)
		return xasprintf("[wf] alert: %lld executor slots online (minimum %lld)",
		                 pint(p, "value"), pint(p, "threshold"));
	if (strncmp(ev, "run.", 4) == 0)
		return xasprintf("[wf] run %lld of %s %s", run, wf,
		                 notify__pstr(p, "state", ev + 4));
	return xasprintf("[wf] %s", ev);
}

/* A header value: one line, and RFC 2047 base64 when it is not ASCII. */
static char *header_value(const char *s)
{
	char *line = notify__one_line(s, 400);
	int ascii = 1;
	for (const unsigned char *q = (const unsigned char *)line; *q; q++)
		if (*q >= 0x80)
			ascii = 0;
	if (ascii)
		return line;
	size_t n = strlen(line), cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = xmalloc(cap);
	sodium_bin2base64(b64, cap, (const unsigned char *)line, n, sodium_base64_VARIANT_ORIGINAL);
	char *r = xasprintf("=?UTF-8?B?%s?=", b64);
	free(b64);
	free(line);
	return r;
}

static void line(struct buf *b, const char *label, const char *v)
{
	if (!v || !*v)
		return;
	char *s = notify__one_line(v, 900);
	if (buf_printf(b, "%-10s %s\r\n", label, s) != 0)
		abort();
	free(s);
}

static void text_body(struct buf *b, struct job *j)
{
	json_t *p = j->payload;
	const char *ev = notify__pstr(p, "event", "notification");
	char num[64];
	int rc = 0;
	if (strncmp(ev, "run.", 4) == 0) {
		const char *wf = notify__pstr(p, "workflow", "?");
		char *head = notify__one_line(wf, 200);
		if (strcmp(ev, "run.deadline_missed") == 0)
			rc |= buf_printf(
			    b, "Run %lld of workflow %s has not finished by its deadline.\r\n\r\n",
			    pint(p, "run_id"), head);
		else
			rc |=
			    buf_printf(b, "Run %lld of workflow %s %s.\r\n\r\n", pint(p, "run_id"),
			               head, notify__pstr(p, "state", "finished"));
		free(head);
		line(b, "Workflow:", wf);
		snprintf(num, sizeof num, "%lld", pint(p, "version"));
		line(b, "Version:", pint(p, "version") ? num : NULL);
		snprintf(num, sizeof num, "%lld", pint(p, "run_id"));
		line(b, "Run:", num);
		line(b, "Trigger:", notify__pstr(p, "trigger", NULL));
		line(b, "State:", notify__pstr(p, "state", NULL));
		line(b, "Started:", notify__pstr(p, "started_at", NULL));
		line(b, "Finished:", notify__pstr(p, "finished_at", NULL));
		line(b, "Deadline:", notify__pstr(p, "deadline_at", NULL));
		json_t *ft = json_object_get(p, "failed_tasks");
		if (json_array_size(ft) > 0) {
			rc |= buf_printf(b, "\r\nFailed tasks (%lld):\r\n",
			                 pint(p, "failed_tasks_total"));
			size_t i;
			json_t *t;
			json_array_foreach(ft, i, t)
			{
				char *name = notify__one_line(notify__pstr(t, "task", "?"), 200);
				char *err = notify__one_line(notify__pstr(t, "error", ""), 300);
				char after[48] = "";
				if (pint(t, "attempt") > 0)
					snprintf(after, sizeof after, " after attempt %lld",
					         pint(t, "attempt"));
				rc |= buf_printf(b, "  - %s: %s%s%s%s\r\n", name,
				                 notify__pstr(t, "state", "?"), after,
				                 *err ? ": " : "", err);
				free(name);
				free(err);
			}
		}
	} else if (strncmp(ev, "alert.", 6) == 0) {
		char *subj = subject_of(p);
		rc |= buf_printf(b, "%s\r\n\r\n", subj + 5);
		free(subj);
		line(b, "Engine:", notify__pstr(p, "engine", NULL));
		line(b, "At:", notify__pstr(p, "at", NULL));
	} else {
		char *js = json_dumps(p, JSON_INDENT(2) | JSON_SORT_KEYS);
		rc |= buf_puts(b, "A wf notification:\r\n\r\n");
		for (char *q = js; q && *q;) {
			size_t n = strcspn(q, "\n");
			rc |= buf_printf(b, "%.*s\r\n", (int)(n > 900 ? 900 : n), q);
			q += n + (q[n] == '\n');
		}
		free(js);
	}
	if (notify__pstr(p, "url", NULL)) {
		rc |= buf_puts(b, "\r\n");
		line(b, "Dashboard:", notify__pstr(p, "url", NULL));
	}
	rc |= buf_printf(b, "\r\n-- \r\nwf notifier, engine %s, delivery %s\r\n", j->n->engine_id,
	                 j->idtxt);
	if (rc)
		abort(); /* unbounded buffer: cannot fail */
}

char *notify__build_message(struct job *j, const char *from)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct buf b;
	struct tm tm;
	time_t now = time(NULL);
	gmtime_r(&now, &tm);
	const char *at = strchr(from, '@');
	char *subj_raw = subject_of(j->payload), *subj = header_value(subj_raw);
	char *ev = notify__one_line(notify__pstr(j->payload, "event", "notification"), 100);
	buf_init(&b, 0);
	int rc = buf_printf(&b,
	                    "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n"
	                    "From: <%s>\r\nTo: <%s>\r\n"
	                    "Message-ID: <wf.outbox.%s@%s>\r\n"
	                    "Subject: %s\r\n"
	                    "MIME-Version: 1.0\r\n"
	                    "Content-Type: text/plain; charset=utf-8\r\n"
	                    "Content-Transfer-Encoding: 8bit\r\n"
	                    "Auto-Submitted: auto-generated\r\n"
	                    "X-WF-Event: %s\r\nX-WF-Delivery: %s\r\n\r\n",
	                    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
	                    tm.tm_hour, tm.tm_min, tm.tm_sec, from, j->target, j->idtxt,
	                    at ? at + 1 : "wf.invalid", subj, ev, j->idtxt);
	if (rc)
		abort();
	text_body(&b, j);
	free(subj_raw);
	free(subj);
	free(ev);
	return buf_detach(&b);
}
