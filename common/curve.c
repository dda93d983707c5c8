/* CURVE key files, allowlists and socket options (see curve.h). */
#include "curve.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "util.h"
#include "xalloc.h"

struct curve_allow {
	unsigned char (*keys)[32];
	size_t n, cap;
};

int curve_key_valid(const char *s)
{
	uint8_t raw[32];
	if (!s || strlen(s) != CURVE_Z85_LEN)
		return 0;
	return zmq_z85_decode(raw, s) != NULL;
}

int curve_keypair_generate(struct curve_keypair *kp)
{
	memset(kp, 0, sizeof *kp);
	if (!zmq_has("curve") || zmq_curve_keypair(kp->pub, kp->sec) != 0)
		return -1;
	return 0;
}

void curve_keypair_wipe(struct curve_keypair *kp)
{
	sodium_memzero(kp->sec, sizeof kp->sec);
}

/* Trims s in place; returns the start of its content ("" for a comment).
 * Only a line starting with '#' is a comment: z85 keys may contain '#'. */
static char *trim_line(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '#')
		*s = '\0';
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

int curve_keypair_load(const char *path, struct curve_keypair *kp, char *err, size_t errlen)
{
	int rc = -1, fd = -1, lineno = 0;
	FILE *f = NULL;
	char *line = NULL;
	size_t cap = 0;
	char pub[CURVE_Z85_LEN + 1] = "";
	struct stat st;

	memset(kp, 0, sizeof *kp);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot read the key file %s: %s", path, strerror(errno));
		goto out;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen,
		         "%s: a secret key file must not be readable by group or others "
		         "(mode %03o); run chmod 600 %s",
		         path, (unsigned)(st.st_mode & 0777), path);
		goto out;
	}
	f = fdopen(fd, "r");
	if (!f) {
		snprintf(err, errlen, "cannot read the key file %s: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	while (getline(&line, &cap, f) > 0) {
		lineno++;
		char *s = trim_line(line);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%d: expected 'public = KEY' or 'secret = KEY'",
			         path, lineno);
			goto out;
		}
		*eq = '\0';
		char *key = trim_line(s), *val = eq + 1;
		while (isspace((unsigned char)*val))
			val++;
		if (!curve_key_valid(val)) {
			snprintf(err, errlen, "%s:%d: not a 40-character z85 CURVE key", path,
			         lineno);
			goto out;
		}
		if (strcmp(key, "secret") == 0)
			memcpy(kp->sec, val, CURVE_Z85_LEN + 1);
		else if (strcmp(key, "public") == 0)
			memcpy(pub, val, CURVE_Z85_LEN + 1);
		else {
			snprintf(err, errlen, "%s:%d: unknown key '%s' (expected public or secret)",
			         path, lineno, key);
			goto out;
		}
	}
	if (!kp->sec[0]) {
		snprintf(err, errlen,
		         "%s: no 'secret = KEY' line (write one with wfctl keys generate)", path);
		goto out;
	}
	if (zmq_curve_public(kp->pub, kp->sec) != 0) {
		snprintf(err, errlen, "%s: cannot derive the public key: %s", path,
		         zmq_strerror(zmq_errno()));
		goto out;
	}
	if (pub[0] && strcmp(pub, kp->pub) != 0) {
		snprintf(err, errlen, "%s: the public key does not belong to the secret key", path);
		goto out;
	}
	rc = 0;
out:
	if (rc != 0)
		curve_keypair_wipe(kp);
	if (line) {
		sodium_memzero(line, cap);
		free(line);
	}
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Calls fn on each key line of path. Returns 0, or -1 with err set. */
static int each_key_line(const char *path, int (*fn)(void *, const char *), void *arg, char *err,
                         size_t errlen)
{
	int rc = -1, lineno = 0;
	char *line = NULL;
	size_t cap = 0;
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, f) > 0) {
		lineno++;
		char *s = trim_line(line);
		if (!*s)
			continue;
		if (!curve_key_valid(s)) {
			snprintf(err, errlen,
			         "%s:%d: not a 40-character z85 CURVE public key "
			         "(wfctl keys generate prints one)",
			         path, lineno);
			goto out;
		}
		if (fn(arg, s) != 0)
			break;
	}
	rc = 0;
out:
	free(line);
	fclose(f);
	return rc;
}

static int first_key(void *arg, const char *key)
{
	memcpy(arg, key, CURVE_Z85_LEN + 1);
	return 1;
}

int curve_pubkey_arg(const char *arg, char out[CURVE_Z85_LEN + 1], char *err, size_t errlen)
{
	out[0] = '\0';
	if (curve_key_valid(arg)) {
		memcpy(out, arg, CURVE_Z85_LEN + 1);
		return 0;
	}
	if (each_key_line(arg, first_key, out, err, errlen) != 0)
		return -1;
	if (!out[0]) {
		snprintf(err, errlen, "'%s' is neither a z85 public key nor a file holding one",
		         arg);
		return -1;
	}
	return 0;
}

void curve_fingerprint(const char *z85, const unsigned char *raw32, char out[17])
{
	unsigned char raw[32], digest[crypto_hash_sha256_BYTES];
	if (raw32)
		memcpy(raw, raw32, 32);
	else if (!z85 || strlen(z85) != CURVE_Z85_LEN || !zmq_z85_decode(raw, z85)) {
		snprintf(out, 17, "%s", "invalid");
		return;
	}
	crypto_hash_sha256(digest, raw, sizeof raw);
	hex_encode(digest, 8, out);
}

struct curve_allow *curve_allow_new(void)
{
	return xcalloc(1, sizeof(struct curve_allow));
}

void curve_allow_free(struct curve_allow *a)
{
	if (!a)
		return;
	free(a->keys);
	free(a);
}

int curve_allow_add(struct curve_allow *a, const char *z85)
{
	unsigned char raw[32];
	if (!z85 || strlen(z85) != CURVE_Z85_LEN || !zmq_z85_decode(raw, z85))
		return -1;
	if (curve_allow_has_raw(a, raw))
		return 0;
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 8;
		a->keys = xrealloc(a->keys, a->cap * sizeof *a->keys);
	}
	memcpy(a->keys[a->n++], raw, 32);
	return 0;
}

static int add_line(void *arg, const char *key)
{
	return curve_allow_add(arg, key) != 0 ? -1 : 0;
}

struct curve_allow *curve_allow_load(const char *path, char *err, size_t errlen)
{
	struct curve_allow *a = curve_allow_new();
	if (each_key_line(path, add_line, a, err, errlen) != 0) {
		curve_allow_free(a);
		return NULL;
	}
	return a;
}

int curve_allow_has_raw(const struct curve_allow *a, const unsigned char key[32])
{
	for (size_t i = 0; a && i < a->n; i++)
		if (sodium_memcmp(a->keys[i], key, 32) == 0)
			return 1;
	return 0;
}

int curve_allow_has(const struct curve_allow *a, const char *z85)
{
	unsigned char raw[32];
	if (!z85 || strlen(z85) != CURVE_Z85_LEN || !zmq_z85_decode(raw, z85))
		return 0;
	return curve_allow_has_raw(a, raw);
}

size_t curve_allow_count(const struct curve_allow *a)
{
	return a ? a->n : 0;
}

int curve_set_server(void *sock, const struct curve_keypair *kp)
{
	int one = 1;
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, kp->sec, CURVE_Z85_LEN) != 0 ||
	    zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, "wf", 2) != 0)
		return -1;
	return 0;
}

int curve_set_client(void *sock, const struct curve_keypair *kp, const char *server_pub)
{
	if (!curve_key_valid(server_pub) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_pub, CURVE_Z85_LEN) != 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, kp->pub, CURVE_Z85_LEN) != 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, kp->sec, CURVE_Z85_LEN) != 0)
		return -1;
	return 0;
}

int curve_endpoint_is_local(const char *ep)
{
	if (!ep)
		return 0;
	if (strncmp(ep, "ipc://", 6) == 0 || strncmp(ep, "inproc://", 9) == 0)
		return 1;
	if (strncmp(ep, "tcp://", 6) != 0)
		return 0;
	const char *h = ep + 6;
	/* a connect endpoint may name a source: "tcp://src;dst" — judge dst */
	const char *semi = strchr(h, ';');
	if (semi)
		h = semi + 1;
	if (strncmp(h, "localhost:", 10) == 0 || strncmp(h, "[::1]:", 6) == 0)
		return 1;
	if (strncmp(h, "127.", 4) != 0)
		return 0;
	/* 127.a.b.c:port with digits only */
	int dots = 0;
	const char *p = h + 4;
	for (; *p && *p != ':'; p++) {
		if (*p == '.')
			dots++;
		else if (!isdigit((unsigned char)*p))
			return 0;
	}
	return *p == ':' && dots == 2;
}
