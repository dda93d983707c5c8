/* The HTTP server: REST API under /api/v1/, /metrics, /healthz, /readyz,
 * the SSE event stream and the static dashboard (libmicrohttpd). */
#ifndef WF_API_H
#define WF_API_H
#include <stddef.h>

struct api_opts {
	const char *listen;   /* "127.0.0.1:8080" */
	const char *conninfo; /* PostgreSQL; NULL = store_default_conninfo() */
	const char *web_dir;  /* static files, NULL = none */
	const char *engine_id;
	int insecure_local; /* no tokens needed; loopback only */
	int allow_remote;   /* listen beyond loopback */
	int threads;        /* DB connections of the HTTP handlers (default 4) */
	/* Rate limit per token, or per client IP for requests without one:
	 * a token bucket refilled at rate_per_s with room for rate_burst.
	 * 0 = the defaults (50/s, burst 100); rate_per_s < 0 = no limit. */
	int rate_per_s;
	int rate_burst;
	int max_streams; /* concurrent SSE streams, 0 = 32; more get 503 */
	/* HTTPS (both or neither; PEM text, borrowed until api_start returns):
	 * with TLS a non-loopback address needs no allow_remote. */
	const char *tls_cert_pem;
	const char *tls_key_pem;
};

struct api;
/* Starts serving in background threads. Returns NULL with err. */
struct api *api_start(const struct api_opts *o, char *err, size_t errlen);
/* The TCP port actually bound (useful with port 0). */
int api_port(const struct api *a);
void api_stop(struct api *a);

#endif
