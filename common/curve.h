/* CURVE keys of the executor channel: z85 key files, allowlists of public
 * keys and the ZeroMQ socket options of a CURVE server or client.
 *
 * A key pair file (wfctl keys generate) holds "public = Z85" and
 * "secret = Z85" lines; a line starting with '#' is a comment (z85 itself
 * may contain '#'). It must not be readable by
 * group or others. A public key file or an allowlist holds one z85 key per
 * line (comment lines and blank lines allowed). */
#ifndef WF_CURVE_H
#define WF_CURVE_H
#include <stddef.h>

#define CURVE_Z85_LEN 40

struct curve_keypair {
	char pub[CURVE_Z85_LEN + 1];
	char sec[CURVE_Z85_LEN + 1];
};

/* 1 when s is exactly a 40-character z85 text of a 32-byte key, else 0. */
int curve_key_valid(const char *s);

/* Fills kp with a fresh key pair. Returns 0 or -1 (no CURVE in libzmq). */
int curve_keypair_generate(struct curve_keypair *kp) __attribute__((warn_unused_result));
/* Reads a key pair file; the public key is derived from the secret one and
 * must match a "public" line when there is one. Refuses a file that group
 * or others may read. Returns 0, or -1 with a message in err. */
int curve_keypair_load(const char *path, struct curve_keypair *kp, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Wipes the secret key. */
void curve_keypair_wipe(struct curve_keypair *kp);

/* A public key given as the 40-character z85 text itself or as the path of
 * a file whose first key line is one (a .pub file). Returns 0 or -1. */
int curve_pubkey_arg(const char *arg, char out[CURVE_Z85_LEN + 1], char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* A short, log-friendly fingerprint of a z85 public key: the first 16 hex
 * digits of the SHA-256 of its 32 bytes (or of the raw 32 bytes when
 * raw32 is not NULL). out needs 17 bytes. */
void curve_fingerprint(const char *z85, const unsigned char *raw32, char out[17]);

/* ---- allowlists */

struct curve_allow;
struct curve_allow *curve_allow_new(void);
void curve_allow_free(struct curve_allow *a);
/* Adds a z85 key. Returns 0, or -1 when it is not a valid key. */
int curve_allow_add(struct curve_allow *a, const char *z85) __attribute__((warn_unused_result));
/* Reads a file of z85 keys, one a line; '#' comments. Returns a new list,
 * or NULL with a message in err (a bad line names file and line). */
struct curve_allow *curve_allow_load(const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* 1 when the 32-byte key is listed. */
int curve_allow_has_raw(const struct curve_allow *a, const unsigned char key[32]);
/* 1 when the z85 key is listed. */
int curve_allow_has(const struct curve_allow *a, const char *z85);
size_t curve_allow_count(const struct curve_allow *a);

/* ---- sockets */

/* Makes sock a CURVE server with kp (before bind). Returns 0 or -1. */
int curve_set_server(void *sock, const struct curve_keypair *kp)
    __attribute__((warn_unused_result));
/* Makes sock a CURVE client of the server whose public key is server_pub
 * (before connect). Returns 0 or -1. */
int curve_set_client(void *sock, const struct curve_keypair *kp, const char *server_pub)
    __attribute__((warn_unused_result));

/* 1 when a ZeroMQ endpoint stays on this host: tcp:// to 127.0.0.0/8,
 * localhost or [::1], ipc:// or inproc://. */
int curve_endpoint_is_local(const char *endpoint);

#endif
