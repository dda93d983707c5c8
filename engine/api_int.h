/* Internals shared by the HTTP server (http.c) and the API handlers
 * (api_workflows.c, api_runs.c, api_misc.c). A handler gets a request and
 * fills a response; http.c owns both and adds the security headers. */
#ifndef WF_API_INT_H
#define WF_API_INT_H
#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "runs.h"
#include "store.h"

struct MHD_Connection;
struct MHD_Daemon;
struct MHD_Response;
struct api_rate;

/* Request bodies larger than this are refused with 413. */
#define API_MAX_BODY (1024 * 1024)
/* Nesting depth allowed in JSON request bodies. */
#define API_MAX_DEPTH 32
/* List pagination. */
#define API_LIMIT_DEFAULT 50
#define API_LIMIT_MAX     500

/* Defaults of the rate limit and of the SSE streams (api.h). */
#define API_RATE_DEFAULT    50
#define API_BURST_DEFAULT   100
#define API_STREAMS_DEFAULT 32

/* Times in JSON are RFC 3339 UTC text: write wf_ts(expr) in the SQL, a
 * function of the schema (migrations/009_sql_helpers.sql). */

struct api {
	struct MHD_Daemon *mhd;
	struct store_pool *pool;
	struct auth *auth;
	char *web_dir; /* NULL = no static files */
	char *engine_id;
	char *conninfo; /* NULL = store_default_conninfo(): for SSE connections */
	int insecure_local;
	int tls; /* served over HTTPS: adds Strict-Transport-Security */
	int threads;
	int port;
	struct api_rate *rate; /* NULL = no limit */
	int max_streams;
	atomic_int streams;  /* SSE streams open now */
	atomic_int stopping; /* set by api_stop: streams end */
};

#define API_MAX_CAPS 3

struct api_req {
	struct api *api;
	struct MHD_Connection *conn;
	const char *method; /* "GET", "POST", ...; HEAD is matched as GET */
	const char *path;   /* decoded, without the query string */
	const char *body;   /* NUL-terminated, may be "" */
	size_t body_len;
	char *caps[API_MAX_CAPS]; /* the {} segments of the route, in order */
	int ncaps;
	struct auth_ident who; /* the caller (name "" for anonymous) */
	char actor[160];       /* "token:<name>" or "local": for events */
	struct store *store;   /* taken from the pool on first api_store() */
};

struct api_resp {
	int status;
	char *body; /* owned (malloc), may be NULL */
	size_t len;
	const char *content_type; /* static string */
	char allow[64];           /* Allow header for 405, "" when none */
	int www_authenticate;     /* add WWW-Authenticate: Bearer */
	int retry_after;          /* > 0: add Retry-After (seconds) */
	/* A response built by the handler (a stream): when set, http.c adds
	 * the common headers, queues and destroys it, and ignores body. */
	struct MHD_Response *raw;
};

typedef void (*api_handler)(struct api_req *rq, struct api_resp *rs);

struct api_route {
	const char *method;
	const char *pattern; /* "/api/v1/runs/{}" — {} matches one path segment */
	enum auth_role role; /* AUTH_NONE: no token needed */
	api_handler handler;
};

/* The route tables of each handler file, ended by { NULL }. */
extern const struct api_route api_workflow_routes[];
extern const struct api_route api_run_routes[];
extern const struct api_route api_misc_routes[];
extern const struct api_route api_event_routes[];
extern const struct api_route api_token_routes[];
extern const struct api_route api_dlq_routes[];
extern const struct api_route api_job_routes[];
extern const struct api_route api_task_routes[];
extern const struct api_route api_backfill_routes[]; /* api_backfill.c */

/* Every route table the server matches against, in order (http.c); *n
 * receives their count. For the tests, which walk every route. */
const struct api_route *const *api_route_tables(size_t *n);

/* ---- rate limit (api_rate.c): token buckets keyed by a string */

/* per_s > 0 tokens a second, burst >= 1. */
struct api_rate *api_rate_new(int per_s, int burst);
void api_rate_free(struct api_rate *r);
/* Takes one token from key's bucket. Returns 0 when allowed, else the
 * milliseconds until a token is available. Thread-safe. */
int64_t api_rate_take(struct api_rate *r, const char *key);
/* The configured rate and burst (for messages). */
int api_rate_per_s(const struct api_rate *r);
int api_rate_burst(const struct api_rate *r);

/* ---- response helpers (http.c) */

/* Sets a JSON response; takes ownership of v (json_decref'd). */
void api_json(struct api_resp *rs, int status, json_t *v);
/* Sets a JSON response from JSON text built elsewhere (copied). */
void api_json_text(struct api_resp *rs, int status, const char *text, size_t len);
/* Sets {"error":{"code","message","field"}}; field may be NULL. */
void api_error(struct api_resp *rs, int status, const char *code, const char *field,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The error a runs_* function returned. */
void api_error_wf(struct api_resp *rs, const struct wf_err *e);
/* After a failed store_* call: 503 unavailable when the database is away,
 * else 500 internal (and the details go to the log). */
void api_error_db(struct api_req *rq, struct api_resp *rs);

/* ---- request helpers (http.c) */

/* The store of this request (taken from the pool once, returned by http.c
 * after the handler). Never NULL; queries fail while the database is away. */
struct store *api_store(struct api_req *rq);
/* A query-string argument (decoded, borrowed) or NULL. */
const char *api_arg(struct api_req *rq, const char *name);
/* A request header (borrowed) or NULL. */
const char *api_header(struct api_req *rq, const char *name);
/* Parses the body as a JSON object (an empty body is {}), with duplicate
 * keys, too deep nesting and keys not in allowed (NULL-terminated) refused.
 * Returns 0 and a new reference in *out, or -1 with the error response set. */
int api_body_object(struct api_req *rq, struct api_resp *rs, const char *const *allowed,
                    json_t **out) __attribute__((warn_unused_result));
/* ?limit= in [1, API_LIMIT_MAX], default API_LIMIT_DEFAULT. Returns 0, or
 * -1 with a 400 set. */
int api_arg_limit(struct api_req *rq, struct api_resp *rs, int *limit)
    __attribute__((warn_unused_result));
/* Runs sql; each row's first column is one JSON item. Sets the response to
 * {"items":[...],"next_cursor":...}: when the query returned more than limit
 * rows (ask for limit + 1), next_cursor is the second column of the last
 * item kept, as a string or number (cursor_is_number), else null. */
void api_list(struct api_req *rq, struct api_resp *rs, const char *sql, int nparams,
              const char *const *params, int limit, int cursor_is_number);
/* Runs sql returning one row whose first column is JSON text: sends it with
 * status, or 404 not_found with the message when no row came back. */
void api_one(struct api_req *rq, struct api_resp *rs, const char *sql, int nparams,
             const char *const *params, int status, const char *notfound_msg);

/* The client's IP address as text into out ("?" when unknown). */
void api_client_ip(struct api_req *rq, char *out, size_t outlen);

/* Appends an event row (kind, optional workflow by name, run, task run,
 * data object borrowed, may be NULL) with the request's actor and sends
 * NOTIFY wf_events. Returns 0 or -1 (logged; the action itself is done). */
int api_event(struct api_req *rq, const char *kind, const char *workflow, long long run_id,
              long long task_run_id, json_t *data);

/* Soft-deletes a workflow (deleted_at, schedule disabled, an event); runs
 * in flight go on. Returns 1, 0 when there is none (404 set), -1 on a
 * database error (set) (api_workflows.c). */
int api_workflow_delete(struct api_req *rq, struct api_resp *rs, const char *name);

/* The state of run id into out ("" when the run is gone). Returns 0, or -1
 * when the database failed (api_runs.c). */
int api_run_state(struct api_req *rq, long long id, char *out, size_t outlen)
    __attribute__((warn_unused_result));

/* ---- namespace scopes (api_ns.c) */

/* 1 when s is a namespace name (1 to 64 of a-z, 0-9, '_', '-'). */
int api_ns_valid(const char *s);
/* The namespace the caller's token is limited to, or NULL (every one):
 * list handlers pass it as a filter parameter. */
const char *api_ns_scope(const struct api_req *rq);
/* 0 when the caller may act on a workflow in namespace ns, else -1 with a
 * 403 set naming the token, its namespace and the workflow's. */
int api_ns_check(struct api_req *rq, struct api_resp *rs, const char *ns, const char *workflow)
    __attribute__((warn_unused_result));
/* For every authorised request (http.c): resolves the namespace of the
 * workflow, run, backfill, dead letter or job the route names and checks
 * it; refuses token management and the live stream to scoped tokens.
 * Returns 0, or -1 with the response set. */
int api_ns_guard(struct api_req *rq, struct api_resp *rs, const struct api_route *route)
    __attribute__((warn_unused_result));

/* ---- route matching (http.c; exposed for the tests) */

/* 1 when path matches pattern, filling rq caps (new strings), else 0. */
int api_route_match(const char *pattern, const char *path, struct api_req *rq);
/* Parses "host:port" / "[::1]:port". Returns 0 and fills the address
 * (struct sockaddr_storage *) and *loopback, or -1 with err. */
int api_parse_listen(const char *listen, void *addr, int *loopback, int *port, char *err,
                     size_t errlen) __attribute__((warn_unused_result));
/* 1 when an RFC 3339 / ISO date-time text looks valid, else 0. */
int api_valid_time(const char *s);

#endif
