/* wfctl's HTTP client for the engine's REST API (libcurl).
 *
 * The base URL and token come from, in order: --url/--token, WF_URL and
 * WF_TOKEN, ./.wf/env (written by `wfctl dev`, read only when WF_URL is not
 * set and --url not given), $XDG_CONFIG_HOME/wf/config or ~/.config/wf/config
 * (`url=` and `token=` lines), and http://127.0.0.1:8080 with no token. */
#ifndef WF_CLI_CLIENT_H
#define WF_CLI_CLIENT_H
#include <jansson.h>

/* Default time allowed for one request, connection included. */
#define CLI_TIMEOUT_MS 30000
/* Responses larger than this are refused. */
#define CLI_MAX_BODY (64 * 1024 * 1024)

struct cli_response {
	long status;     /* HTTP status, 0 when no response arrived */
	json_t *json;    /* the parsed body (owned), NULL when not JSON */
	char *body;      /* the raw body (owned), never NULL after cli_request */
	char error[256]; /* why no response arrived (status 0) */
};

/* The resolved base URL without a trailing slash (borrowed, lives until
 * exit). */
const char *cli_base_url(void);

/* Sends method (GET, POST, ...) to path ("/api/v1/runs/7", joined to the
 * base URL) with body (borrowed, may be NULL) as JSON, the bearer token and
 * the extra headers (NULL-terminated "Name: value" strings, may be NULL).
 * Returns 0 when a response arrived (whatever its status), -1 when none did
 * (r->error says why). Always call cli_response_release afterwards. */
int cli_request(const char *method, const char *path, const json_t *body,
                const char *const *headers, struct cli_response *r)
    __attribute__((warn_unused_result));
void cli_response_release(struct cli_response *r);

/* Sends a request and reports failure to the user: returns EXIT_OK with the
 * response's JSON in *out (new reference; an empty object when the body was
 * empty), or prints "wfctl: <what>: <message>" (with a hint) on stderr and
 * returns the exit code for it: 3 unreachable or 5xx, 4 for 401/403, 5 for
 * 404, 1 otherwise. what names the object ("run 42"); out may be NULL. */
int cli_call(const char *method, const char *path, const json_t *body, const char *const *headers,
             const char *what, json_t **out) __attribute__((warn_unused_result));

/* Prints the error of a response that is not 2xx (see cli_call) and
 * returns its exit code. */
int cli_report_error(const struct cli_response *r, const char *what);

/* Fetches every page (at most 1000) of a list endpoint (path with its query,
 * or none) into *items (new array, also on error). Returns an exit code as
 * cli_call does. */
int cli_fetch_all(const char *path, const char *what, json_t **items)
    __attribute__((warn_unused_result));

/* Escapes s for one path segment or query value: a new string, free it. */
char *cli_escape(const char *s);

#endif
