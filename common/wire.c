#include "wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "wire_int.h"
#include "xalloc.h"

static const char *const statuses[] = {"succeeded",    "failed",   "timeout", "cancelled",
                                       "breaker_open", "rejected", NULL};
static const char *const step_types[] = {"shell", "sh", "http", "noop", "sleep", NULL};
static const char *const breaker_states[] = {"closed", "open", "half_open", NULL};

/* Validation context: the frame type names every message. */
struct vctx {
	const char *type;
	const char *prefix; /* "step." inside a task's step, else "" */
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct vctx *v, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (v->errlen)
		snprintf(v->err, v->errlen, "%s frame: %s", v->type, msg);
	return -1;
}

static int in_set(const char *s, const char *const *set)
{
	for (size_t i = 0; set[i]; i++)
		if (strcmp(s, set[i]) == 0)
			return 1;
	return 0;
}

/* Optional fields may be absent; a present field must have the right type. */
enum req { REQUIRED, OPTIONAL, NULLABLE /* present or absent, may be null */ };

static int missing(struct vctx *v, const json_t *o, const char *key, enum req req,
                   const json_t **val)
{
	*val = json_object_get(o, key);
	if (!*val)
		return req == REQUIRED ? fail(v, "missing field '%s%s'", v->prefix, key) : 1;
	if (json_is_null(*val) && req == NULLABLE)
		return 1;
	return 0;
}

static int check_int(struct vctx *v, const json_t *o, const char *key, enum req req, json_int_t min)
{
	const json_t *val;
	int m = missing(v, o, key, req, &val);
	if (m)
		return m < 0 ? -1 : 0;
	if (!json_is_integer(val) || json_integer_value(val) < min)
		return fail(v, "field '%s%s' must be an integer >= %lld", v->prefix, key,
		            (long long)min);
	return 0;
}

static int check_string(struct vctx *v, const json_t *o, const char *key, enum req req,
                        int nonempty)
{
	const json_t *val;
	int m = missing(v, o, key, req, &val);
	if (m)
		return m < 0 ? -1 : 0;
	if (!json_is_string(val))
		return fail(v, "field '%s%s' must be a string", v->prefix, key);
	if (nonempty && json_string_length(val) == 0)
		return fail(v, "field '%s%s' must not be empty", v->prefix, key);
	return 0;
}

static int check_type(struct vctx *v, const json_t *o, const char *key, enum req req,
                      json_type type, const char *what)
{
	const json_t *val;
	int m = missing(v, o, key, req, &val);
	if (m)
		return m < 0 ? -1 : 0;
	if (json_typeof(val) != type)
		return fail(v, "field '%s%s' must be %s", v->prefix, key, what);
	return 0;
}

static int check_enum(struct vctx *v, const json_t *o, const char *key, const char *const *set)
{
	const json_t *val;
	if (missing(v, o, key, REQUIRED, &val))
		return -1;
	if (!json_is_string(val) || !in_set(json_string_value(val), set)) {
		char list[256] = "";
		size_t n = 0;
		for (size_t i = 0; set[i] && n < sizeof list; i++)
			n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "",
			                      set[i]);
		return fail(v, "field '%s%s' must be one of %s", v->prefix, key, list);
	}
	return 0;
}

static int check_string_array(struct vctx *v, const json_t *o, const char *key, enum req req,
                              int nonempty)
{
	const json_t *val;
	int m = missing(v, o, key, req, &val);
	if (m)
		return m < 0 ? -1 : 0;
	if (!json_is_array(val))
		return fail(v, "field '%s%s' must be an array of strings", v->prefix, key);
	if (nonempty && json_array_size(val) == 0)
		return fail(v, "field '%s%s' must not be empty", v->prefix, key);
	size_t i;
	const json_t *e;
	json_array_foreach(val, i, e)
	{
		if (!json_is_string(e))
			return fail(v, "field '%s%s[%zu]' must be a string", v->prefix, key, i);
	}
	return 0;
}

static int check_string_object(struct vctx *v, const json_t *o, const char *key)
{
	const json_t *val;
	int m = missing(v, o, key, NULLABLE, &val);
	if (m)
		return m < 0 ? -1 : 0;
	if (!json_is_object(val))
		return fail(v, "field '%s%s' must be an object of strings", v->prefix, key);
	const char *k;
	const json_t *e;
	json_object_foreach((json_t *)val, k, e)
	{
		if (!json_is_string(e))
			return fail(v, "field '%s%s.%s' must be a string", v->prefix, key, k);
	}
	return 0;
}

static int check_ids(struct vctx *v, const json_t *o)
{
	if (check_int(v, o, "task_run_id", REQUIRED, 1) || check_int(v, o, "attempt", REQUIRED, 1))
		return -1;
	return 0;
}

static int validate_step(struct vctx *v, const json_t *step)
{
	if (check_enum(v, step, "type", step_types))
		return -1;
	const char *t = json_string_value(json_object_get(step, "type"));
	if (strcmp(t, "shell") == 0)
		return check_string_array(v, step, "argv", REQUIRED, 1) ||
		               check_string_object(v, step, "env") ||
		               check_string(v, step, "dir", NULLABLE, 1)
		           ? -1
		           : 0;
	if (strcmp(t, "sh") == 0)
		return check_string(v, step, "script", REQUIRED, 1) ||
		               check_string_object(v, step, "env") ||
		               check_string(v, step, "dir", NULLABLE, 1)
		           ? -1
		           : 0;
	if (strcmp(t, "http") == 0) {
		if (check_string(v, step, "url", REQUIRED, 1) ||
		    check_string(v, step, "method", NULLABLE, 1) ||
		    check_string_object(v, step, "headers") ||
		    check_int(v, step, "timeout_ms", NULLABLE, 0))
			return -1;
		const json_t *es = json_object_get(step, "expect_status");
		if (es && !json_is_null(es)) {
			if (!json_is_array(es))
				return fail(
				    v, "field 'step.expect_status' must be an array of integers");
			size_t i;
			const json_t *e;
			json_array_foreach(es, i, e)
			{
				if (!json_is_integer(e) || json_integer_value(e) < 100 ||
				    json_integer_value(e) > 999)
					return fail(
					    v,
					    "field 'step.expect_status[%zu]' must be an HTTP "
					    "status (100-999)",
					    i);
			}
		}
		return 0;
	}
	if (strcmp(t, "sleep") == 0)
		return check_int(v, step, "duration_ms", REQUIRED, 0);
	return 0;
}

static int validate_breaker(struct vctx *v, const json_t *b)
{
	if (check_string(v, b, "name", REQUIRED, 1) || check_int(v, b, "failures", OPTIONAL, 0) ||
	    check_int(v, b, "window_ms", OPTIONAL, 0) ||
	    check_int(v, b, "open_for_ms", OPTIONAL, 0) ||
	    check_int(v, b, "half_open_probes", OPTIONAL, 1))
		return -1;
	const json_t *r = json_object_get(b, "failure_rate");
	if (r && (!json_is_number(r) || json_number_value(r) < 0 || json_number_value(r) > 1))
		return fail(v, "field 'breaker.failure_rate' must be a number between 0 and 1");
	return 0;
}

static int validate_task(struct vctx *v, const json_t *o)
{
	if (check_ids(v, o) || check_int(v, o, "run_id", REQUIRED, 1) ||
	    check_string(v, o, "workflow", REQUIRED, 1) ||
	    check_string(v, o, "task", REQUIRED, 1) ||
	    check_type(v, o, "step", REQUIRED, JSON_OBJECT, "an object") ||
	    check_int(v, o, "timeout_ms", NULLABLE, 0) ||
	    check_string(v, o, "idempotency_key", REQUIRED, 1) ||
	    check_type(v, o, "breaker", NULLABLE, JSON_OBJECT, "an object or null") ||
	    check_string_object(v, o, "env") || check_int(v, o, "lease_ms", NULLABLE, 0) ||
	    check_string(v, o, "engine_id", NULLABLE, 0))
		return -1;
	struct vctx sv = *v;
	sv.prefix = "step.";
	if (validate_step(&sv, json_object_get(o, "step")))
		return -1;
	const json_t *b = json_object_get(o, "breaker");
	sv.prefix = "breaker.";
	if (json_is_object(b) && validate_breaker(&sv, b))
		return -1;
	return 0;
}

static int validate_heartbeat(struct vctx *v, const json_t *o)
{
	if (check_int(v, o, "free_slots", REQUIRED, 0) ||
	    check_type(v, o, "running", REQUIRED, JSON_ARRAY, "an array") ||
	    check_type(v, o, "breakers", REQUIRED, JSON_OBJECT, "an object"))
		return -1;
	const json_t *load = json_object_get(o, "load");
	if (!load)
		return fail(v, "missing field 'load'");
	if (!json_is_number(load) || json_number_value(load) < 0)
		return fail(v, "field 'load' must be a number >= 0");
	const json_t *d = json_object_get(o, "draining");
	if (!d)
		return fail(v, "missing field 'draining'");
	if (!json_is_boolean(d))
		return fail(v, "field 'draining' must be a boolean");
	size_t i;
	const json_t *e;
	json_array_foreach(json_object_get(o, "running"), i, e)
	{
		if (!json_is_object(e))
			return fail(v, "field 'running[%zu]' must be an object", i);
		const json_t *id = json_object_get(e, "task_run_id");
		const json_t *at = json_object_get(e, "attempt");
		if (!json_is_integer(id) || json_integer_value(id) < 1 || !json_is_integer(at) ||
		    json_integer_value(at) < 1)
			return fail(v,
			            "field 'running[%zu]' must have an integer task_run_id >= 1 "
			            "and attempt >= 1",
			            i);
	}
	const char *k;
	const json_t *b;
	json_object_foreach(json_object_get(o, "breakers"), k, b)
	{
		const json_t *st = json_object_get(b, "state");
		if (!json_is_object(b) || !json_is_string(st) ||
		    !in_set(json_string_value(st), breaker_states))
			return fail(v,
			            "field 'breakers.%s' must be an object with a state "
			            "closed, open or half_open",
			            k);
		const json_t *u = json_object_get(b, "until_ms");
		if (u && !json_is_null(u) && !json_is_integer(u))
			return fail(v, "field 'breakers.%s.until_ms' must be an integer or null",
			            k);
	}
	return 0;
}

static int validate_finished(struct vctx *v, const json_t *o)
{
	if (check_ids(v, o) || check_enum(v, o, "status", statuses) ||
	    check_int(v, o, "exit_code", NULLABLE, 0) ||
	    check_int(v, o, "http_status", NULLABLE, 0) ||
	    check_string(v, o, "output", NULLABLE, 0) || check_string(v, o, "error", NULLABLE, 0) ||
	    check_int(v, o, "duration_ms", NULLABLE, 0) ||
	    check_type(v, o, "outputs", NULLABLE, JSON_OBJECT, "an object or null") ||
	    check_int(v, o, "started_ms", NULLABLE, 0) ||
	    check_int(v, o, "finished_ms", NULLABLE, 0))
		return -1;
	return 0;
}

int wire_validate(const json_t *msg, char *err, size_t errlen)
{
	struct vctx v = {"unknown", "", err, errlen};
	if (!json_is_object(msg))
		return fail(&v, "a frame must be a JSON object");
	const json_t *t = json_object_get(msg, "type");
	if (!t)
		return fail(&v, "missing field 'type'");
	if (!json_is_string(t))
		return fail(&v, "field 'type' must be a string");
	const char *type = json_string_value(t);
	static const char *const types[] = {"hello", "heartbeat", "started", "finished",
	                                    "bye",   "task",      "cancel",  NULL};
	if (!in_set(type, types))
		return fail(&v,
		            "unknown type '%.40s' (expected hello, heartbeat, started, finished, "
		            "bye, task or cancel)",
		            type);
	v.type = type;
	if (strcmp(type, "task") == 0)
		return validate_task(&v, msg);
	if (strcmp(type, "cancel") == 0)
		return check_ids(&v, msg);
	/* executor → engine: all carry executor_id */
	if (check_string(&v, msg, "executor_id", REQUIRED, 1))
		return -1;
	if (strcmp(type, "hello") == 0)
		return check_string(&v, msg, "endpoint", REQUIRED, 1) ||
		               check_string(&v, msg, "pool", REQUIRED, 1) ||
		               check_string_array(&v, msg, "labels", REQUIRED, 0) ||
		               check_int(&v, msg, "slots", REQUIRED, 0) ||
		               check_string(&v, msg, "version", OPTIONAL, 0) ||
		               check_string(&v, msg, "public_key", OPTIONAL, 1)
		           ? -1
		           : 0;
	if (strcmp(type, "heartbeat") == 0)
		return validate_heartbeat(&v, msg);
	if (strcmp(type, "started") == 0)
		return check_ids(&v, msg) || check_int(&v, msg, "at_ms", REQUIRED, 0) ? -1 : 0;
	if (strcmp(type, "finished") == 0)
		return validate_finished(&v, msg);
	return 0; /* bye */
}

/* Rejects nesting deeper than WIRE_MAX_DEPTH before jansson sees the text
 * (jansson's own limit is 2048 levels of recursion). */
static int depth_ok(const char *s, size_t n)
{
	int depth = 0, in_str = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > WIRE_MAX_DEPTH)
				return 0;
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	return 1;
}

int wire_decode(const char *data, size_t len, json_t **out, char *err, size_t errlen)
{
	int rc = -1;
	json_t *msg = NULL;
	*out = NULL;
	if (len > WIRE_MAX_FRAME) {
		snprintf(err, errlen, "frame of %zu bytes exceeds the limit of %d bytes", len,
		         WIRE_MAX_FRAME);
		goto out;
	}
	if (!depth_ok(data, len)) {
		snprintf(err, errlen, "frame nests deeper than %d levels", WIRE_MAX_DEPTH);
		goto out;
	}
	json_error_t jerr;
	msg = wire_load_plain(data, len);
	if (!msg)
		msg = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!msg) {
		snprintf(err, errlen, "invalid JSON at line %d column %d: %s", jerr.line,
		         jerr.column, jerr.text);
		goto out;
	}
	if (wire_validate(msg, err, errlen))
		goto out;
	*out = msg;
	msg = NULL;
	rc = 0;
out:
	json_decref(msg);
	return rc;
}

char *wire_encode(const json_t *msg)
{
	char *text = wire_dump_plain(msg);
	return text ? text : json_dumps(msg, JSON_COMPACT);
}

const char *wire_type(const json_t *msg)
{
	const char *t = json_string_value(json_object_get(msg, "type"));
	return t ? t : "";
}

size_t wire__utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned int cp;
	if (c >= 0x01 && c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

char *wire_text(const char *data, size_t len)
{
	struct buf b;
	buf_init(&b, 0);
	const unsigned char *s = (const unsigned char *)data;
	size_t i = 0;
	while (i < len) {
		size_t k = wire__utf8_seq(s + i, len - i);
		if (k) {
			(void)!buf_append(&b, s + i, k);
			i += k;
		} else {
			(void)!buf_puts(&b, "\xef\xbf\xbd");
			i++;
		}
	}
	return buf_detach(&b);
}

/* ---- constructors ---- */

json_t *wire_hello(const char *executor_id, const char *endpoint, const char *pool,
                   const char *const *labels, size_t nlabels, int slots)
{
	json_t *l = json_array();
	for (size_t i = 0; i < nlabels; i++)
		json_array_append_new(l, json_string(labels[i]));
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:i, s:s}", "type", "hello", "executor_id",
	                 executor_id, "endpoint", endpoint, "pool", pool, "labels", l, "slots",
	                 slots, "version", WF_VERSION);
}

json_t *wire_heartbeat(const char *executor_id, int free_slots, double load, json_t *running,
                       json_t *breakers, int draining)
{
	return json_pack("{s:s, s:s, s:i, s:f, s:o, s:o, s:b}", "type", "heartbeat", "executor_id",
	                 executor_id, "free_slots", free_slots, "load", load, "running",
	                 running ? running : json_array(), "breakers",
	                 breakers ? breakers : json_object(), "draining", draining);
}

json_t *wire_started(const char *executor_id, int64_t task_run_id, int attempt, int64_t at_ms)
{
	return json_pack("{s:s, s:s, s:I, s:i, s:I}", "type", "started", "executor_id", executor_id,
	                 "task_run_id", (json_int_t)task_run_id, "attempt", attempt, "at_ms",
	                 (json_int_t)at_ms);
}

static int put_str(struct buf *b, const char *s)
{
	return wire_put_string(b, s, strlen(s));
}

static int put_field_ll(struct buf *b, const char *key, long long v)
{
	return buf_puts(b, key) != 0 || buf_put_ll(b, v) != 0 ? -1 : 0;
}

char *wire_finished_text(const char *executor_id, const struct wire_result *r)
{
	struct buf b;
	char *err = NULL, *outs = NULL;
	int rc = 0;
	buf_init(&b, 0);
	rc |= buf_puts(&b, "{\"type\":\"finished\",\"executor_id\":") | put_str(&b, executor_id);
	rc |= put_field_ll(&b, ",\"task_run_id\":", r->task_run_id);
	rc |= put_field_ll(&b, ",\"attempt\":", r->attempt);
	rc |= buf_puts(&b, ",\"status\":") | put_str(&b, r->status);
	/* A field that would be null (or an empty output) is left out: the
	 * engine reads an absent one as null (""), and every frame is parsed
	 * once per task, so its bytes count (docs/architecture.md) */
	if (r->exit_code >= 0)
		rc |= put_field_ll(&b, ",\"exit_code\":", r->exit_code);
	if (r->http_status > 0)
		rc |= put_field_ll(&b, ",\"http_status\":", r->http_status);
	if (r->output && r->output[0]) {
		size_t mark = b.len;
		rc |= buf_puts(&b, ",\"output\":");
		if (put_str(&b, r->output) != 0) {
			b.len = mark;
			b.data[mark] = '\0';
			rc |= buf_puts(&b, ",\"output\":\"[output is not valid UTF-8]\"");
		}
	}
	if (r->error) {
		err = wire_text(r->error, strlen(r->error));
		rc |= buf_puts(&b, ",\"error\":") | put_str(&b, err);
	}
	rc |= put_field_ll(&b, ",\"duration_ms\":", r->duration_ms);
	if (json_is_object(r->outputs)) {
		outs = wire_encode(r->outputs);
		if (outs)
			rc |= buf_puts(&b, ",\"outputs\":") | buf_puts(&b, outs);
	}
	rc |= put_field_ll(&b, ",\"started_ms\":", r->started_ms);
	rc |= put_field_ll(&b, ",\"finished_ms\":", r->finished_ms);
	rc |= buf_puts(&b, "}");
	free(err);
	free(outs);
	if (rc) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b);
}

json_t *wire_finished(const char *executor_id, const struct wire_result *r)
{
	char *text = wire_finished_text(executor_id, r);
	json_t *m = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
	free(text);
	return m;
}

json_t *wire_bye(const char *executor_id)
{
	return json_pack("{s:s, s:s}", "type", "bye", "executor_id", executor_id);
}

json_t *wire_task(const struct wire_task *t)
{
	json_t *m = json_pack("{s:s, s:I, s:i, s:I, s:s, s:s, s:O, s:s}", "type", "task",
	                      "task_run_id", (json_int_t)t->task_run_id, "attempt", t->attempt,
	                      "run_id", (json_int_t)t->run_id, "workflow", t->workflow, "task",
	                      t->task, "step", t->step, "idempotency_key", t->idempotency_key);
	if (!m)
		return NULL;
	/* no timeout, no breaker, no parameters: left out (absent = null) */
	if (t->timeout_ms > 0)
		json_object_set_new(m, "timeout_ms", json_integer(t->timeout_ms));
	if (t->breaker)
		json_object_set(m, "breaker", t->breaker);
	if (json_object_size(t->env) > 0)
		json_object_set(m, "env", t->env);
	json_object_set_new(m, "lease_ms", json_integer(t->lease_ms));
	if (t->engine_id)
		json_object_set_new(m, "engine_id", json_string(t->engine_id));
	return m;
}

json_t *wire_cancel(int64_t task_run_id, int attempt)
{
	return json_pack("{s:s, s:I, s:i}", "type", "cancel", "task_run_id",
	                 (json_int_t)task_run_id, "attempt", attempt);
}
