/* CURVE for the engine's executor channel (see zsec.h). */
#include "zsec.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "curve.h"
#include "log.h"
#include "wire.h"
#include "xalloc.h"
#include "zap.h"

struct known {
	char *id;
	char key[CURVE_Z85_LEN + 1];
};

static struct {
	int enabled;
	struct curve_keypair kp;
	char *keys_file;
	struct curve_allow *allow; /* until the ZAP handler takes it */
	struct zap *zap;
	struct known *known; /* executor id -> the key its hello proved */
	size_t nknown, capknown;
} S;

int zsec_configure(const char *secret_file, const char *keys_file, char *err, size_t errlen)
{
	if (!secret_file && !keys_file) {
		S.enabled = 0;
		return 0;
	}
	if (!secret_file || !keys_file) {
		snprintf(err, errlen,
		         "CURVE needs both --curve-secret FILE (this engine's key pair) and "
		         "--executor-keys FILE (the executors' public keys)");
		return -1;
	}
	if (!zmq_has("curve")) {
		snprintf(err, errlen, "this libzmq was built without CURVE");
		return -1;
	}
	if (curve_keypair_load(secret_file, &S.kp, err, errlen) != 0)
		return -1;
	S.allow = curve_allow_load(keys_file, err, errlen);
	if (!S.allow) {
		curve_keypair_wipe(&S.kp);
		return -1;
	}
	if (curve_allow_count(S.allow) == 0)
		log_warn("the executor key allowlist is empty: no executor can connect", "file=%s",
		         keys_file);
	S.keys_file = xstrdup(keys_file);
	S.enabled = 1;
	return 0;
}

int zsec_enabled(void)
{
	return S.enabled;
}

const char *zsec_public_key(void)
{
	return S.enabled ? S.kp.pub : "";
}

int zsec_server(void *ctx, void *pull)
{
	char err[256];
	int64_t maxmsg = WIRE_MAX_FRAME; /* a peer sending more is disconnected */
	zmq_setsockopt(pull, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
	if (!S.enabled)
		return 0;
	if (curve_set_server(pull, &S.kp) != 0) {
		log_error("cannot make the executor socket a CURVE server", "error=\"%s\"",
		          zmq_strerror(zmq_errno()));
		return -1;
	}
	S.zap = zap_start(ctx, S.allow, S.keys_file, "executor", pull, err, sizeof err);
	if (!S.zap) {
		log_error("cannot start the ZAP handler", "error=\"%s\"", err);
		return -1;
	}
	S.allow = NULL;
	return 0;
}

static struct known *find_known(const char *id)
{
	for (size_t i = 0; i < S.nknown; i++)
		if (strcmp(S.known[i].id, id) == 0)
			return &S.known[i];
	return NULL;
}

int zsec_frame(zmq_msg_t *m)
{
	if (!S.enabled)
		return 0;
	const char *data = zmq_msg_data(m);
	size_t len = zmq_msg_size(m);
	/* Only a hello (maybe spelled with \u escapes) names a key. */
	if (!memmem(data, len, "hello", 5) && !memmem(data, len, "\\u", 2))
		return 0;
	json_t *msg = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
	const char *type = json_string_value(json_object_get(msg, "type"));
	int rc = 0;
	if (!type || strcmp(type, "hello") != 0)
		goto out; /* not a hello: ingest validates it */
	const char *id = json_string_value(json_object_get(msg, "executor_id"));
	const char *key = json_string_value(json_object_get(msg, "public_key"));
	const char *user = zmq_msg_gets(m, "User-Id");
	char fp[17];
	curve_fingerprint(user, NULL, fp);
	rc = -1;
	if (!id || !key || !user || strcmp(key, user) != 0) {
		log_warn("hello refused: its public_key is not the key its connection proved",
		         "executor_id=%.100s key_fingerprint=%s", id ? id : "?", fp);
		goto out;
	}
	struct known *k = find_known(id);
	if (!k) {
		if (S.nknown == S.capknown) {
			S.capknown = S.capknown ? 2 * S.capknown : 16;
			S.known = xrealloc(S.known, S.capknown * sizeof *S.known);
		}
		k = &S.known[S.nknown++];
		k->id = xstrdup(id);
		k->key[0] = '\0';
	}
	if (k->key[0] && strcmp(k->key, key) != 0)
		log_info("executor key changed", "executor_id=%s key_fingerprint=%s", id, fp);
	memcpy(k->key, key, sizeof k->key);
	rc = 0;
out:
	json_decref(msg);
	return rc;
}

int zsec_client(void *push, const char *executor_id)
{
	if (!S.enabled)
		return 0;
	struct known *k = executor_id ? find_known(executor_id) : NULL;
	if (!k) {
		log_info("not connecting to executor: no authenticated hello yet", "executor_id=%s",
		         executor_id ? executor_id : "?");
		return -1;
	}
	if (curve_set_client(push, &S.kp, k->key) != 0) {
		log_error("cannot make an executor socket a CURVE client",
		          "executor_id=%s error=\"%s\"", executor_id, zmq_strerror(zmq_errno()));
		return -1;
	}
	return 0;
}

void zsec_reload(void)
{
	zap_reload(S.zap);
}

void zsec_shutdown(void)
{
	zap_free(S.zap);
	S.zap = NULL;
	curve_allow_free(S.allow);
	S.allow = NULL;
	for (size_t i = 0; i < S.nknown; i++)
		free(S.known[i].id);
	free(S.known);
	S.known = NULL;
	S.nknown = S.capknown = 0;
	free(S.keys_file);
	S.keys_file = NULL;
	curve_keypair_wipe(&S.kp);
	S.enabled = 0;
}
