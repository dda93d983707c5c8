/* Request body decoding for the API, without a connection (so the fuzzer
 * can call it): one JSON object, no duplicate keys, bounded nesting, only
 * allowed keys, valid UTF-8 and no NUL byte in any key or string (argv and
 * environment variables cannot carry one). */
#ifndef WF_API_BODY_H
#define WF_API_BODY_H
#include <jansson.h>
#include <stddef.h>

struct api_body_err {
	int status;      /* 400 */
	char code[32];   /* "invalid_json", "unknown_field", "invalid_field" */
	char field[160]; /* the offending key path ("params.x"), "" when none */
	char message[320];
};

/* Parses body (len bytes, need not be NUL-terminated; only trailing white
 * space = {}) against allowed (NULL-terminated, NULL = no keys) and
 * max_depth. Returns 0 and a new reference in *out, or -1 with e filled. */
int api_body_parse(const char *body, size_t len, const char *const *allowed, int max_depth,
                   json_t **out, struct api_body_err *e) __attribute__((warn_unused_result));

#endif
