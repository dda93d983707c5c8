/* libFuzzer target: any bytes → the API's JSON body decoding
 * (api_body_parse: duplicates, depth, allowed keys, NUL bytes). A body it
 * accepts must be an object of allowed keys with no NUL anywhere; a
 * refusal always says why. Built from engine/api_body.c alone. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/api_body.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int has_nul(const json_t *v)
{
	if (json_is_string(v))
		return memchr(json_string_value(v), '\0', json_string_length(v)) != NULL;
	if (json_is_array(v)) {
		size_t i;
		const json_t *x;
		json_array_foreach(v, i, x) if (has_nul(x)) return 1;
	}
	if (json_is_object(v)) {
		const char *k;
		const json_t *x;
		json_object_foreach((json_t *)v, k, x) if (has_nul(x)) return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const allowed[] = {"source", "filename", "params",    "from",
	                                      "name",   "role",     "namespace", NULL};
	struct api_body_err e;
	json_t *out = NULL;
	if (api_body_parse((const char *)data, size, allowed, 32, &out, &e) != 0) {
		if (out || e.status != 400 || !e.message[0] || !e.code[0])
			abort();
		return 0;
	}
	if (!json_is_object(out) || has_nul(out))
		abort();
	const char *k;
	json_t *x;
	json_object_foreach(out, k, x)
	{
		int known = 0;
		for (int i = 0; allowed[i]; i++)
			known |= strcmp(allowed[i], k) == 0;
		if (!known)
			abort();
	}
	json_decref(out);
	return 0;
}
