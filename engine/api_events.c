/* Events: GET /api/v1/whoami, the event list GET /api/v1/events and the
 * live stream GET /api/v1/events/stream (Server-Sent Events; also
 * GET /api/v1/events with "Accept: text/event-stream").
 *
 * A stream has its own PostgreSQL connection (not one of the pool's) that
 * LISTENs on wf_events; it reads new events when notified and at least
 * every POLL_MS (some writers do not notify, and results in a burst notify
 * at most every 200 ms: advance.c), and sends ": ping" every 15 s
 * of silence. The content reader blocks in its connection's own thread
 * (http.c runs a thread per connection) for at most TICK_MS at a time and
 * ends when the API stops. events.id is an identity: a transaction that
 * commits after a later one leaves a gap for a while, so ids skipped over
 * are remembered for GAP_MS and delivered when they appear (late, out of
 * order: clients dedupe by id; delivery is at least once). */
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "buf.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

#define TICK_MS      250
#define POLL_MS      250
#define HEARTBEAT_MS 15000
#define GAP_MS       10000
#define MAX_GAPS     256
#define FETCH_ROWS   200

/* ------------------------------------------------------------ whoami */

static void whoami(struct api_req *rq, struct api_resp *rs)
{
	api_json(rs, 200,
	         json_pack("{s:s,s:s,s:o}", "name", rq->who.name, "role",
	                   auth_role_name(rq->who.role), "namespace",
	                   rq->who.ns[0] ? json_string(rq->who.ns) : json_null()));
}

/* ------------------------------------------------------------ list */

// clang-format off
/* The JSON of an event row e (workflows w left-joined). */
#define EVENT_JSON                                                                 \
	"json_build_object('id', e.id, 'at', " "wf_ts(e.at)" ", 'kind', e.kind,"  \
	" 'workflow', w.name, 'run_id', e.run_id, 'task_run_id', e.task_run_id,"   \
	" 'actor', e.actor, 'data', e.data)"

static const char list_asc_sql[] =
    "SELECT " EVENT_JSON "::text, e.id FROM events e"
    " LEFT JOIN workflows w ON w.id = e.workflow_id"
    " WHERE e.id > COALESCE($1::bigint, 0)"
    "   AND ($2::bigint IS NULL OR e.run_id = $2::bigint)"
    "   AND ($3::text IS NULL OR w.name = $3)"
    "   AND ($4::text IS NULL OR e.kind = $4)"
    "   AND ($6::text IS NULL OR w.namespace = $6)"
    " ORDER BY e.id LIMIT $5::int";
static const char list_desc_sql[] =
    "SELECT " EVENT_JSON "::text, e.id FROM events e"
    " LEFT JOIN workflows w ON w.id = e.workflow_id"
    " WHERE ($1::bigint IS NULL OR e.id < $1::bigint)"
    "   AND ($2::bigint IS NULL OR e.run_id = $2::bigint)"
    "   AND ($3::text IS NULL OR w.name = $3)"
    "   AND ($4::text IS NULL OR e.kind = $4)"
    "   AND ($6::text IS NULL OR w.namespace = $6)"
    " ORDER BY e.id DESC LIMIT $5::int";
// clang-format on

/* Checks an optional numeric argument. Returns 0, or -1 with a 400. */
static int id_arg(struct api_req *rq, struct api_resp *rs, const char *name, int64_t min,
                  const char **out)
{
	int64_t v;
	*out = api_arg(rq, name);
	if (*out && parse_int64(*out, min, INT64_MAX, &v) != 0) {
		api_error(rs, 400, "invalid_param", name, "%s must be an integer >= %" PRId64, name,
		          min);
		return -1;
	}
	return 0;
}

static int wants_stream(struct api_req *rq)
{
	const char *accept = api_header(rq, MHD_HTTP_HEADER_ACCEPT);
	return accept && strstr(accept, "text/event-stream") != NULL;
}

static void stream(struct api_req *rq, struct api_resp *rs);

static void list_events(struct api_req *rq, struct api_resp *rs)
{
	int limit;
	char lim[16];
	const char *after, *cursor, *run;
	if (wants_stream(rq)) {
		stream(rq, rs);
		return;
	}
	if (api_arg_limit(rq, rs, &limit) != 0 || id_arg(rq, rs, "after", 0, &after) != 0 ||
	    id_arg(rq, rs, "cursor", 0, &cursor) != 0 || id_arg(rq, rs, "run", 1, &run) != 0)
		return;
	const char *order = api_arg(rq, "order");
	if (order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
		api_error(rs, 400, "invalid_param", "order", "order must be asc or desc");
		return;
	}
	int desc = order && strcmp(order, "desc") == 0;
	snprintf(lim, sizeof lim, "%d", limit + 1);
	const char *p[6] = {cursor ? cursor : after, run, api_arg(rq, "workflow"),
	                    api_arg(rq, "kind"),     lim, api_ns_scope(rq)};
	api_list(rq, rs, desc ? list_desc_sql : list_asc_sql, 6, p, limit, 1);
}

/* ------------------------------------------------------------ stream */

struct gap {
	long long id;
	int64_t since_ms;
};

struct sse {
	struct api *api;
	PGconn *db;
	long long after; /* the highest id looked at */
	char *run, *workflow;
	struct gap gaps[MAX_GAPS];
	int ngaps;
	struct buf out; /* text not yet handed to MHD */
	size_t off;
	int64_t last_send_ms, next_poll_ms;
	int wake;
};

// clang-format off
/* Everything after $1 or in the gaps $2; only rows matching the filters
 * carry their JSON, the others only move the high-water mark. */
static const char stream_sql[] =
    "SELECT e.id, CASE WHEN ($3::bigint IS NULL OR e.run_id = $3::bigint)"
    "   AND ($4::text IS NULL OR w.name = $4) THEN " EVENT_JSON "::text END, e.kind"
    " FROM events e LEFT JOIN workflows w ON w.id = e.workflow_id"
    " WHERE e.id > $1::bigint OR e.id = ANY ($2::bigint[])"
    " ORDER BY e.id LIMIT 200"; /* FETCH_ROWS */
// clang-format on

static void put(struct buf *b, const char *s)
{
	/* Unbounded buffers: only allocation can fail, and that aborts. */
	if (buf_puts(b, s) != 0)
		log_error("SSE buffer append failed", "%s", "");
}

static void sse_put(struct sse *st, const char *s)
{
	put(&st->out, s);
}

static void gap_add(struct sse *st, long long id, int64_t now)
{
	if (st->ngaps == MAX_GAPS) {
		memmove(st->gaps, st->gaps + 1, (MAX_GAPS - 1) * sizeof st->gaps[0]);
		st->ngaps--;
	}
	st->gaps[st->ngaps++] = (struct gap){id, now};
}

/* Removes id from the gaps; 1 when it was one. */
static int gap_fill(struct sse *st, long long id)
{
	for (int i = 0; i < st->ngaps; i++)
		if (st->gaps[i].id == id) {
			st->gaps[i] = st->gaps[--st->ngaps];
			return 1;
		}
	return 0;
}

/* Reads new events into st->out. Returns 0, or -1 when the database
 * failed (the stream then ends; the client reconnects with Last-Event-ID). */
static int sse_fetch(struct sse *st)
{
	struct buf gl;
	char after[24];
	int64_t now = mono_ms();
	int rc = -1;

	/* Forget gaps old enough to be rolled-back transactions. */
	for (int i = 0; i < st->ngaps;)
		if (now - st->gaps[i].since_ms > GAP_MS)
			st->gaps[i] = st->gaps[--st->ngaps];
		else
			i++;
	buf_init(&gl, 0);
	put(&gl, "{");
	for (int i = 0; i < st->ngaps; i++) {
		char n[32];
		snprintf(n, sizeof n, "%s%lld", i ? "," : "", st->gaps[i].id);
		put(&gl, n);
	}
	put(&gl, "}");
	snprintf(after, sizeof after, "%lld", st->after);
	const char *p[4] = {after, gl.data, st->run, st->workflow};
	PGresult *r = PQexecParams(st->db, stream_sql, 4, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		log_warn("SSE stream query failed", "error=\"%s\"", PQerrorMessage(st->db));
		goto out;
	}
	int n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		long long id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		if (id > st->after) {
			/* Ids skipped over may belong to transactions still open. */
			for (long long g = st->after + 1; g < id && id - g <= MAX_GAPS; g++)
				if (st->after > 0)
					gap_add(st, g, now);
			st->after = id;
		} else if (!gap_fill(st, id)) {
			continue;
		}
		if (PQgetisnull(r, i, 1))
			continue;
		char head[160];
		snprintf(head, sizeof head, "id: %lld\nevent: %s\ndata: ", id, PQgetvalue(r, i, 2));
		/* One line of compact JSON (json_build_object spaces it out). */
		json_t *ev = json_loads(PQgetvalue(r, i, 1), 0, NULL);
		char *line = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
		json_decref(ev);
		sse_put(st, head);
		sse_put(st, line ? line : "{}");
		sse_put(st, "\n\n");
		free(line);
	}
	if (n == FETCH_ROWS)
		st->wake = 1;
	rc = 0;
out:
	PQclear(r);
	buf_release(&gl);
	return rc;
}

/* Waits up to ms for a NOTIFY on the stream's connection. */
static void sse_wait(struct sse *st, int ms)
{
	struct pollfd pfd = {.fd = PQsocket(st->db), .events = POLLIN};
	if (pfd.fd < 0 || poll(&pfd, 1, ms) <= 0)
		return;
	if (!PQconsumeInput(st->db))
		return;
	PGnotify *n;
	while ((n = PQnotifies(st->db)) != NULL) {
		st->wake = 1;
		PQfreemem(n);
	}
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct sse *st = cls;
	for (;;) {
		if (st->off < st->out.len) {
			size_t n = st->out.len - st->off;
			if (n > max)
				n = max;
			memcpy(out, st->out.data + st->off, n);
			st->off += n;
			st->last_send_ms = mono_ms();
			return (ssize_t)n;
		}
		buf_reset(&st->out);
		st->off = 0;
		if (atomic_load(&st->api->stopping))
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (PQstatus(st->db) != CONNECTION_OK)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		int64_t now = mono_ms();
		if (st->wake || now >= st->next_poll_ms) {
			st->wake = 0;
			st->next_poll_ms = now + POLL_MS;
			if (sse_fetch(st) != 0)
				return MHD_CONTENT_READER_END_WITH_ERROR;
			if (st->out.len)
				continue;
		}
		if (now - st->last_send_ms >= HEARTBEAT_MS) {
			sse_put(st, ": ping\n\n");
			continue;
		}
		sse_wait(st, TICK_MS);
	}
}

static void sse_free(void *cls)
{
	struct sse *st = cls;
	if (!st)
		return;
	atomic_fetch_sub(&st->api->streams, 1);
	PQfinish(st->db);
	buf_release(&st->out);
	free(st->run);
	free(st->workflow);
	free(st);
}

static void stream(struct api_req *rq, struct api_resp *rs)
{
	struct sse *st = NULL;
	const char *run, *after;
	int64_t last = -1;
	PGresult *r = NULL;

	if (id_arg(rq, rs, "after", 0, &after) != 0 || id_arg(rq, rs, "run", 1, &run) != 0)
		return;
	const char *lei = api_header(rq, "Last-Event-ID");
	if (lei && *lei && parse_int64(lei, 0, INT64_MAX, &last) != 0) {
		api_error(rs, 400, "invalid_header", "Last-Event-ID",
		          "Last-Event-ID must be an event id (an integer)");
		return;
	}
	if (atomic_fetch_add(&rq->api->streams, 1) >= rq->api->max_streams) {
		atomic_fetch_sub(&rq->api->streams, 1);
		api_error(rs, 503, "too_many_streams", NULL,
		          "%d event streams are open already (the limit); retry later",
		          rq->api->max_streams);
		rs->retry_after = 5;
		return;
	}
	st = xcalloc(1, sizeof *st);
	st->api = rq->api;
	buf_init(&st->out, 0);
	st->run = run ? xstrdup(run) : NULL;
	const char *wf = api_arg(rq, "workflow");
	st->workflow = wf ? xstrdup(wf) : NULL;
	st->db = PQconnectdb(rq->api->conninfo ? rq->api->conninfo : store_default_conninfo());
	if (PQstatus(st->db) != CONNECTION_OK) {
		log_warn("SSE stream cannot connect", "error=\"%s\"", PQerrorMessage(st->db));
		api_error(rs, 503, "unavailable", NULL, "database unavailable, retry later");
		goto fail;
	}
	r = PQexec(st->db, "LISTEN wf_events");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		api_error(rs, 503, "unavailable", NULL, "database unavailable, retry later");
		goto fail;
	}
	PQclear(r);
	r = NULL;
	if (last >= 0) {
		st->after = last;
	} else if (after) {
		st->after = strtoll(after, NULL, 10);
	} else {
		/* Live only: from the newest event on. */
		r = PQexec(st->db, "SELECT COALESCE(max(id), 0) FROM events");
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			api_error(rs, 503, "unavailable", NULL,
			          "database unavailable, retry later");
			goto fail;
		}
		st->after = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
		r = NULL;
	}
	st->wake = 1;
	st->last_send_ms = mono_ms();
	sse_put(st, "retry: 2000\n: connected\n\n");
	struct MHD_Response *resp =
	    MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, st, sse_free);
	if (!resp) {
		api_error(rs, 500, "internal", NULL, "cannot create the stream");
		goto fail;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	log_debug("SSE stream opened", "actor=%s after=%lld streams=%d", rq->actor, st->after,
	          atomic_load(&rq->api->streams));
	rs->raw = resp;
	rs->status = 200;
	return;
fail:
	PQclear(r);
	sse_free(st);
}

const struct api_route api_event_routes[] = {
    {"GET", "/api/v1/whoami", AUTH_VIEWER, whoami},
    {"GET", "/api/v1/events", AUTH_VIEWER, list_events},
    {"GET", "/api/v1/events/stream", AUTH_VIEWER, stream},
    {NULL, NULL, AUTH_NONE, NULL},
};
