/* The engine's side of CURVE on the executor channel: its key pair, the
 * allowlist of executor public keys, the ZAP handler of its PULL socket
 * and the executor keys its PUSH sockets connect with. Process-wide: one
 * engine per process. Without keys (insecure local mode) every call is a
 * no-op that lets plaintext through. */
#ifndef WF_ZSEC_H
#define WF_ZSEC_H
#include <stddef.h>
#include <zmq.h>

/* Loads the engine's key pair file and the allowlist file (main.c), or
 * selects plaintext when both are NULL. Returns 0 or -1 with err. */
int zsec_configure(const char *secret_file, const char *keys_file, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* 1 when the executor channel is CURVE-encrypted. */
int zsec_enabled(void);
/* The engine's z85 public key ("" in plaintext mode). */
const char *zsec_public_key(void);

/* Hardens the PULL socket pull (created, not bound) of ctx: frames over
 * WIRE_MAX_FRAME disconnect their peer; with keys it becomes a CURVE
 * server and the ZAP handler starts. Returns 0 or -1 (logged). */
int zsec_server(void *ctx, void *pull) __attribute__((warn_unused_result));
/* Looks at a received frame before it is ingested: a hello must carry the
 * public key its connection authenticated with; the key is remembered for
 * its executor id. Returns 0 to ingest the frame, -1 to drop it (logged). */
int zsec_frame(zmq_msg_t *m) __attribute__((warn_unused_result));
/* Makes a PUSH socket to executor id a CURVE client of the key its hello
 * carried. Returns 0, or -1 (logged) when no allowed key is known yet. */
int zsec_client(void *push, const char *executor_id) __attribute__((warn_unused_result));
/* Re-reads the allowlist (from a signal handler: sets a flag). */
void zsec_reload(void);
/* After the loop's zmq_ctx_term: stops the ZAP handler, wipes the keys. */
void zsec_shutdown(void);

#endif
