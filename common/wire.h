/* Wire frames between engine and executor (docs/architecture.md, "Wire
 * protocol"): one JSON object per ZeroMQ frame. wire_decode parses and
 * validates any frame; the constructors build the frames an executor or an
 * engine sends.
 * Ownership (jansson style): every json_t * returned is a new reference the
 * caller must json_decref; json_t * arguments are borrowed unless a comment
 * says "stolen"; returned char * are malloc'd and the caller frees them. */
#ifndef WF_WIRE_H
#define WF_WIRE_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_MAX_FRAME (1024 * 1024) /* bytes of one frame */
#define WIRE_MAX_DEPTH 32            /* nesting of arrays and objects */

/* Parses len bytes (need not be NUL-terminated) and checks the frame: size,
 * depth, UTF-8, an object with a known "type" and, for that type, every
 * required field with the right JSON type and range. Returns 0 with a new
 * reference in *out, or -1 with a message in err (naming the field). */
int wire_decode(const char *data, size_t len, json_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Checks an already parsed frame the way wire_decode does. Returns 0 or -1. */
int wire_validate(const json_t *msg, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Compact JSON text of msg (keys in insertion order), or NULL if msg cannot
 * be encoded (e.g. a string that is not valid UTF-8). Caller frees. */
char *wire_encode(const json_t *msg);

/* The plain-JSON fast paths under wire_decode and wire_encode
 * (common/wire_json.c says what "plain" is). wire_load_plain returns the
 * object json_loadb would (a new reference), or NULL when the text is not
 * plain JSON or not valid: then ask jansson. wire_dump_plain returns what
 * json_dumps(v, JSON_COMPACT) would (caller frees), or NULL: then ask
 * jansson. */
json_t *wire_load_plain(const char *data, size_t len);
char *wire_dump_plain(const json_t *v);
/* Appends the n bytes at s as a JSON string, escaped as json_dumps does.
 * Returns 0, or -1 when they are not valid UTF-8. */
struct buf;
int wire_put_string(struct buf *b, const char *s, size_t n) __attribute__((warn_unused_result));

/* Returns the "type" of a frame, or "" (borrowed, never NULL). */
const char *wire_type(const json_t *msg);

/* Valid UTF-8 text from arbitrary bytes (process output, HTTP bodies):
 * invalid sequences and NUL bytes become U+FFFD. Caller frees. */
char *wire_text(const char *data, size_t len);

/* ---- executor → engine ---- */
json_t *wire_hello(const char *executor_id, const char *endpoint, const char *pool,
                   const char *const *labels, size_t nlabels, int slots);
/* running: array of {task_run_id, attempt}; breakers: object name → state
 * (both stolen, may be NULL for empty). */
json_t *wire_heartbeat(const char *executor_id, int free_slots, double load, json_t *running,
                       json_t *breakers, int draining);
json_t *wire_started(const char *executor_id, int64_t task_run_id, int attempt, int64_t at_ms);

struct wire_result {
	int64_t task_run_id;
	int attempt;
	const char *status; /* succeeded failed timeout cancelled breaker_open rejected */
	int exit_code;      /* -1 = null */
	int http_status;    /* 0 = null */
	const char *output; /* valid UTF-8, may be NULL for "" */
	const char *error;  /* NULL = null */
	int64_t duration_ms;
	json_t *outputs;     /* object or NULL; borrowed */
	int64_t started_ms;  /* epoch milliseconds */
	int64_t finished_ms; /* epoch milliseconds */
};
/* The `finished` frame as JSON text, written directly (one per task: no
 * jansson values built and dumped), or NULL if executor_id or status is
 * not valid UTF-8. An output that is not valid UTF-8 is replaced by a note
 * saying so; an error's invalid bytes become U+FFFD. Caller frees. */
char *wire_finished_text(const char *executor_id, const struct wire_result *r);
/* The same frame as a jansson object (parsed from that text). */
json_t *wire_finished(const char *executor_id, const struct wire_result *r);
json_t *wire_bye(const char *executor_id);

/* ---- engine → executor ---- */
struct wire_task {
	int64_t task_run_id;
	int attempt;
	int64_t run_id;
	const char *workflow;
	const char *task;
	json_t *step;       /* expanded step object; borrowed */
	int64_t timeout_ms; /* 0 = none */
	const char *idempotency_key;
	json_t *breaker; /* object or NULL; borrowed */
	json_t *env;     /* object of strings or NULL; borrowed */
	int64_t lease_ms;
	const char *engine_id; /* may be NULL */
};
json_t *wire_task(const struct wire_task *t);
json_t *wire_cancel(int64_t task_run_id, int attempt);

#endif
