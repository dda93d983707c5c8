/* A ZAP handler (ZeroMQ RFC 27) for the CURVE servers of one process: a
 * thread with a REP socket on inproc://zeromq.zap.01 in the process's
 * ZeroMQ context. It answers 200 only to CURVE clients whose public key is
 * in its allowlist (and sets the User-Id to the client's z85 key, so a
 * frame's "User-Id" property names its sender), 400 to everyone else, and
 * logs every refusal with the peer's address and key fingerprint. It also
 * watches the server socket for failed handshakes (a plaintext peer, a
 * client with the wrong server key) and logs them. */
#ifndef WF_ZAP_H
#define WF_ZAP_H
#include <stddef.h>

#include "curve.h"

struct zap;

/* Starts the handler on ctx with allow (taken on success). peer names the clients in
 * logs ("executor", "engine"); allow_path (may be NULL) is re-read by
 * zap_reload. watch (may be NULL) is the server socket, not yet bound.
 * Call before binding any CURVE server socket. Returns NULL with err. */
struct zap *zap_start(void *ctx, struct curve_allow *allow, const char *allow_path,
                      const char *peer, void *watch, char *err, size_t errlen);
/* Asks the handler to re-read allow_path (async-signal-safe: sets a flag;
 * the handler reloads within a second). */
void zap_reload(struct zap *z);
/* Joins the handler thread and frees it. Call after zmq_ctx_term (or
 * zmq_ctx_shutdown) of its context, which makes the thread exit. */
void zap_free(struct zap *z);

#endif
