/* API request bodies (see api_body.h). */
#include "api_body.h"

#include <ctype.h>
#include <stdarg.h>
#include <string.h>

static int fail(struct api_body_err *e, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct api_body_err *e, const char *code, const char *field, const char *fmt, ...)
{
	va_list ap;
	e->status = 400;
	snprintf(e->code, sizeof e->code, "%s", code);
	snprintf(e->field, sizeof e->field, "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
	return -1;
}

/* Appends key to the path in out ("a.b"); keys are printed safely. */
static void path_join(char *out, size_t outlen, const char *base, const char *key)
{
	char safe[64];
	size_t i = 0;
	for (; key[i] && i < sizeof safe - 1; i++)
		safe[i] = (unsigned char)key[i] < 0x20 ? '?' : key[i];
	safe[i] = '\0';
	snprintf(out, outlen, "%s%s%s", base, *base ? "." : "", safe);
}

/* Depth and NUL checks over v. Returns 0 or -1 with e. */
static int walk(const json_t *v, int depth, int max_depth, const char *path, struct api_body_err *e)
{
	char sub[160];
	if ((json_is_array(v) || json_is_object(v)) && depth > max_depth)
		return fail(e, "invalid_json", NULL, "JSON nested deeper than %d levels",
		            max_depth);
	if (json_is_string(v)) {
		if (memchr(json_string_value(v), '\0', json_string_length(v)))
			return fail(e, "invalid_field", path,
			            "'%s' contains a NUL byte (\\u0000): arguments and environment "
			            "variables cannot carry one",
			            *path ? path : "the value");
		return 0;
	}
	if (json_is_array(v)) {
		size_t i;
		const json_t *x;
		json_array_foreach(v, i, x)
		{
			snprintf(sub, sizeof sub, "%s[%zu]", path, i);
			if (walk(x, depth + 1, max_depth, sub, e) != 0)
				return -1;
		}
		return 0;
	}
	if (json_is_object(v)) {
		void *it = json_object_iter((json_t *)v);
		for (; it; it = json_object_iter_next((json_t *)v, it)) {
			const char *k = json_object_iter_key(it);
			size_t klen = json_object_iter_key_len(it);
			path_join(sub, sizeof sub, path, k);
			if (strlen(k) != klen)
				return fail(
				    e, "invalid_field", sub,
				    "a key contains a NUL byte (\\u0000), which is not allowed");
			if (walk(json_object_iter_value(it), depth + 1, max_depth, sub, e) != 0)
				return -1;
		}
	}
	return 0;
}

int api_body_parse(const char *body, size_t len, const char *const *allowed, int max_depth,
                   json_t **out, struct api_body_err *e)
{
	int rc = -1;
	json_t *v = NULL;
	json_error_t err;
	size_t n = len;

	*out = NULL;
	memset(e, 0, sizeof *e);
	while (n && isspace((unsigned char)body[n - 1]))
		n--;
	if (n == 0) {
		*out = json_object();
		return 0;
	}
	/* NUL is let through the parser so the error can name the field. */
	v = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
	if (!v) {
		fail(e, "invalid_json", NULL, "invalid JSON at line %d, column %d: %s", err.line,
		     err.column, err.text);
		goto out;
	}
	if (!json_is_object(v)) {
		fail(e, "invalid_json", NULL, "the body must be a JSON object");
		goto out;
	}
	if (walk(v, 1, max_depth, "", e) != 0)
		goto out;
	const char *k;
	json_t *x;
	json_object_foreach(v, k, x)
	{
		int known = 0;
		for (int i = 0; allowed && allowed[i]; i++)
			if (strcmp(allowed[i], k) == 0)
				known = 1;
		if (!known) {
			fail(e, "unknown_field", k, "unknown field '%s' in the body", k);
			goto out;
		}
	}
	*out = v;
	v = NULL;
	rc = 0;
out:
	json_decref(v);
	return rc;
}
