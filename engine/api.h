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
	int threads;        /* HTTP worker threads and DB connections */
};

struct api;
/* Starts serving in background threads. Returns NULL with err. */
struct api *api_start(const struct api_opts *o, char *err, size_t errlen);
/* The TCP port actually bound (useful with port 0). */
int api_port(const struct api *a);
void api_stop(struct api *a);

#endif
