/* The ZAP handler thread (see zap.h). */
#include "zap.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "xalloc.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define MAX_FRAMES   8

struct zap {
	void *ctx, *rep, *mon;
	struct curve_allow *allow;
	char *allow_path;
	char *peer;
	pthread_t thread;
	int started;
	atomic_int reload;
};

static int mon_seq;

/* Receives one multipart message into frames (at most MAX_FRAMES kept).
 * Returns the number of frames, or -1 on error (errno set). */
static int recv_multi(void *s, zmq_msg_t *frames, int *nframes)
{
	int n = 0, more = 1;
	while (more) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, s, 0) < 0) {
			int e = zmq_errno();
			zmq_msg_close(&m);
			for (int i = 0; i < n; i++)
				zmq_msg_close(&frames[i]);
			errno = e;
			return -1;
		}
		more = zmq_msg_more(&m);
		if (n < MAX_FRAMES)
			frames[n++] = m;
		else
			zmq_msg_close(&m);
	}
	*nframes = n;
	return n;
}

static void send_str(void *s, const char *v, size_t len, int more)
{
	(void)zmq_send(s, v, len, more ? ZMQ_SNDMORE : 0);
}

static void frame_text(zmq_msg_t *m, char *out, size_t outlen)
{
	size_t n = zmq_msg_size(m);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, zmq_msg_data(m), n);
	out[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
			out[i] = '?';
}

/* Answers one ZAP request. */
static void answer(struct zap *z)
{
	zmq_msg_t f[MAX_FRAMES];
	int n = 0;
	if (recv_multi(z->rep, f, &n) < 0)
		return;
	char version[16] = "", mech[16] = "", addr[80] = "", user[CURVE_Z85_LEN + 1] = "";
	const char *status = "400", *text = "unknown key";
	if (n >= 6) {
		frame_text(&f[0], version, sizeof version);
		frame_text(&f[3], addr, sizeof addr);
		frame_text(&f[5], mech, sizeof mech);
	}
	if (n < 6 || strcmp(version, "1.0") != 0) {
		log_warn("malformed ZAP request ignored", "frames=%d", n);
		goto reply;
	}
	if (strcmp(mech, "CURVE") != 0 || n < 7 || zmq_msg_size(&f[6]) != 32) {
		text = "CURVE required";
		log_warn("peer refused: not CURVE", "peer=%s address=%s mechanism=%s", z->peer,
		         addr, mech);
		goto reply;
	}
	const unsigned char *key = zmq_msg_data(&f[6]);
	char fp[17];
	curve_fingerprint(NULL, key, fp);
	if (!curve_allow_has_raw(z->allow, key)) {
		log_warn("peer refused: unknown CURVE key", "peer=%s address=%s key_fingerprint=%s",
		         z->peer, addr, fp);
		goto reply;
	}
	zmq_z85_encode(user, key, 32);
	status = "200";
	text = "OK";
	log_debug("peer accepted", "peer=%s address=%s key_fingerprint=%s", z->peer, addr, fp);
reply:
	send_str(z->rep, "1.0", 3, 1);
	if (n >= 2)
		(void)zmq_send(z->rep, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE);
	else
		send_str(z->rep, "", 0, 1);
	send_str(z->rep, status, 3, 1);
	send_str(z->rep, text, strlen(text), 1);
	send_str(z->rep, user, strlen(user), 1);
	send_str(z->rep, "", 0, 0);
	for (int i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
}

/* Logs one monitor event of the watched server socket. */
static void monitor_event(struct zap *z)
{
	zmq_msg_t f[MAX_FRAMES];
	int n = 0;
	if (recv_multi(z->mon, f, &n) < 0)
		return;
	if (n >= 2 && zmq_msg_size(&f[0]) >= 6) {
		uint16_t ev;
		uint32_t value;
		char addr[128];
		memcpy(&ev, zmq_msg_data(&f[0]), 2);
		memcpy(&value, (char *)zmq_msg_data(&f[0]) + 2, 4);
		frame_text(&f[1], addr, sizeof addr);
		if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
			log_warn(
			    "peer refused: handshake failed (a plaintext peer, or not ZMTP/CURVE)",
			    "peer=%s endpoint=%s protocol_error=0x%x", z->peer, addr,
			    (unsigned)value);
		else if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
			log_warn("peer refused: handshake failed (a plaintext peer or a wrong "
			         "server key)",
			         "peer=%s endpoint=%s", z->peer, addr);
		else if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
			log_info("handshake refused by the allowlist",
			         "peer=%s endpoint=%s status=%u", z->peer, addr, (unsigned)value);
	}
	for (int i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
}

static void do_reload(struct zap *z)
{
	char err[512];
	if (!z->allow_path)
		return;
	struct curve_allow *a = curve_allow_load(z->allow_path, err, sizeof err);
	if (!a) {
		log_error("key allowlist not reloaded; the old one stays", "error=\"%s\"", err);
		return;
	}
	curve_allow_free(z->allow);
	z->allow = a;
	log_info("key allowlist reloaded", "file=%s keys=%zu", z->allow_path, curve_allow_count(a));
}

static void *run(void *arg)
{
	struct zap *z = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		zmq_pollitem_t items[2] = {{z->rep, 0, ZMQ_POLLIN, 0}, {z->mon, 0, ZMQ_POLLIN, 0}};
		int rc = zmq_poll(items, z->mon ? 2 : 1, 1000);
		if (rc < 0) {
			if (zmq_errno() == EINTR)
				continue;
			break; /* ETERM: the context is ending */
		}
		if (atomic_exchange(&z->reload, 0))
			do_reload(z);
		if (items[0].revents & ZMQ_POLLIN)
			answer(z);
		if (z->mon && (items[1].revents & ZMQ_POLLIN))
			monitor_event(z);
	}
	zmq_close(z->rep);
	z->rep = NULL;
	if (z->mon) {
		zmq_close(z->mon);
		z->mon = NULL;
	}
	return NULL;
}

struct zap *zap_start(void *ctx, struct curve_allow *allow, const char *allow_path,
                      const char *peer, void *watch, char *err, size_t errlen)
{
	struct zap *z = xcalloc(1, sizeof *z);
	int zero = 0;
	z->ctx = ctx;
	z->allow = allow;
	z->allow_path = allow_path ? xstrdup(allow_path) : NULL;
	z->peer = xstrdup(peer);
	z->rep = zmq_socket(ctx, ZMQ_REP);
	if (!z->rep || zmq_bind(z->rep, ZAP_ENDPOINT) != 0) {
		snprintf(err, errlen, "cannot start the ZAP handler: %s",
		         zmq_strerror(zmq_errno()));
		goto fail;
	}
	zmq_setsockopt(z->rep, ZMQ_LINGER, &zero, sizeof zero);
	if (watch) {
		char addr[64];
		snprintf(addr, sizeof addr, "inproc://wf-zap-mon-%d", ++mon_seq);
		int events = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
		             ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
		if (zmq_socket_monitor(watch, addr, events) == 0) {
			z->mon = zmq_socket(ctx, ZMQ_PAIR);
			if (z->mon && zmq_connect(z->mon, addr) != 0) {
				zmq_close(z->mon);
				z->mon = NULL;
			}
			if (z->mon)
				zmq_setsockopt(z->mon, ZMQ_LINGER, &zero, sizeof zero);
		}
	}
	if (pthread_create(&z->thread, NULL, run, z) != 0) {
		snprintf(err, errlen, "cannot start the ZAP handler thread");
		goto fail;
	}
	z->started = 1;
	return z;
fail:
	if (z->mon)
		zmq_close(z->mon);
	if (z->rep)
		zmq_close(z->rep);
	z->allow = NULL; /* the caller keeps it on failure */
	free(z->allow_path);
	free(z->peer);
	free(z);
	return NULL;
}

void zap_reload(struct zap *z)
{
	if (z)
		atomic_store(&z->reload, 1);
}

void zap_free(struct zap *z)
{
	if (!z)
		return;
	if (z->started)
		pthread_join(z->thread, NULL);
	curve_allow_free(z->allow);
	free(z->allow_path);
	free(z->peer);
	free(z);
}
