/* CURVE for the executor's sockets: its PULL socket is a CURVE server that
 * accepts only the engines' keys (a ZAP handler), and each PUSH socket is
 * a CURVE client of its engine's key. Process-wide state: one executor
 * per process. */
#include <string.h>
#include <zmq.h>

#include "curve.h"
#include "exec_int.h"
#include "log.h"
#include "zap.h"

static struct {
	int enabled;
	struct curve_keypair kp;
	struct zap *zap;
} S;

int exec_curve_server(void *zctx, void *pull, const struct exec_config *cfg)
{
	char err[512];
	struct curve_allow *allow = NULL;
	int rc = -1;

	if (cfg->insecure_plaintext) {
		log_warn(
		    "INSECURE: plaintext ZeroMQ (--insecure-plaintext). Anyone on this host can "
		    "send this executor commands to run. Never use this in production.",
		    "listen=%s", cfg->listen);
		return 0;
	}
	if (curve_keypair_load(cfg->curve_secret, &S.kp, err, sizeof err) != 0) {
		log_error("cannot load the CURVE key pair", "error=\"%s\"", err);
		goto out;
	}
	allow = curve_allow_new();
	for (size_t i = 0; i < cfg->nengine_keys; i++)
		if (curve_allow_add(allow, cfg->engine_keys[i]) != 0) {
			log_error("invalid engine key", "key=%.60s", cfg->engine_keys[i]);
			goto out;
		}
	if (curve_set_server(pull, &S.kp) != 0) {
		log_error("cannot make the PULL socket a CURVE server", "error=\"%s\"",
		          zmq_strerror(zmq_errno()));
		goto out;
	}
	S.zap = zap_start(zctx, allow, NULL, "engine", pull, err, sizeof err);
	if (!S.zap) {
		log_error("cannot start the ZAP handler", "error=\"%s\"", err);
		goto out;
	}
	allow = NULL;
	S.enabled = 1;
	log_info("executor channel encrypted with CURVE", "public_key=%s engine_keys=%zu", S.kp.pub,
	         cfg->nengine_keys);
	rc = 0;
out:
	curve_allow_free(allow);
	if (rc != 0)
		curve_keypair_wipe(&S.kp);
	return rc;
}

int exec_curve_client(void *push, const struct exec_config *cfg, const char *endpoint)
{
	if (!S.enabled)
		return 0;
	/* one key for every engine, or one per --engine in order */
	const char *key = NULL;
	if (cfg->nengine_keys == 1)
		key = cfg->engine_keys[0];
	for (size_t i = 0; !key && i < cfg->nengines && i < cfg->nengine_keys; i++)
		if (strcmp(cfg->engines[i], endpoint) == 0)
			key = cfg->engine_keys[i];
	if (!key || curve_set_client(push, &S.kp, key) != 0) {
		log_error("cannot make the engine socket a CURVE client", "endpoint=%s", endpoint);
		return -1;
	}
	return 0;
}

json_t *exec_curve_hello(json_t *hello)
{
	if (hello && S.enabled)
		json_object_set_new(hello, "public_key", json_string(S.kp.pub));
	return hello;
}

void exec_curve_stop(void)
{
	zap_free(S.zap);
	S.zap = NULL;
	curve_keypair_wipe(&S.kp);
	S.enabled = 0;
}
