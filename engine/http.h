/* HTTP plumbing of the API server that does not depend on a request:
 * security headers, static file names and types. The server itself is
 * api_start/api_stop (api.h); handlers see engine/api_int.h. */
#ifndef WF_HTTP_H
#define WF_HTTP_H

/* The Content-Security-Policy sent with every response. */
#define HTTP_CSP                                                                          \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

/* The Content-Type for a static file name, by extension (borrowed);
 * "application/octet-stream" when unknown. */
const char *http_content_type(const char *path);

/* 1 when a decoded URL path may name a static file: absolute, no "..",
 * no NUL (kept as "%00" by the unescaper), no backslash or control
 * characters; else 0. */
int http_safe_path(const char *path);

#endif
