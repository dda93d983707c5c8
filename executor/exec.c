/* The executor's sockets, event loop and task lifecycle.
 *
 * Delivery: a single PUSH socket connected to several engines would
 * round-robin between them, and a dead engine would swallow its share. So
 * there is one PUSH socket per engine and every message (hello, heartbeat,
 * started, finished, bye) goes to all of them; any engine may apply a result
 * and the fenced UPDATE (WHERE id AND attempt AND state='running') makes the
 * duplicates harmless. ZMQ_IMMEDIATE stays off, so messages queue (up to
 * SNDHWM) while an engine is away and flow when it comes back. PUSH has no
 * acknowledgement: a result lost anyway costs a retry when the engine's
 * lease expires, never the task. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "exec_int.h"
#include "log.h"
#include "util.h"
#include "wire.h"
#include "xalloc.h"

#define SNDHWM       100000 /* messages queued per engine while it is away */
#define LINGER_MS    2000   /* how long exit waits to flush queued messages */
#define RECV_BATCH   256    /* frames read per loop turn */
#define REAP_POLL_MS 10     /* loop period while a step's group is going away */
#define BREAKERS_MAX 1024

static volatile sig_atomic_t sig_term, sig_hup, sig_chld;
static int sig_wfd = -1;

static void on_signal(int sig)
{
	int saved = errno;
	if (sig == SIGTERM || sig == SIGINT)
		sig_term++;
	else if (sig == SIGHUP)
		sig_hup = 1;
	else if (sig == SIGCHLD)
		sig_chld = 1;
	if (sig_wfd >= 0)
		(void)!write(sig_wfd, "x", 1);
	errno = saved;
}

/* ---- sending ---- */

void exec_send_text(struct exec *ex, char *text, const char *type)
{
	if (!text) {
		log_error("cannot build a frame", "type=%s", type);
		return;
	}
	size_t len = strlen(text);
	for (size_t i = 0; i < ex->npush; i++) {
		if (zmq_send(ex->push[i], text, len, ZMQ_DONTWAIT) < 0)
			log_warn("frame dropped", "type=%s engine=%s error=%s", type,
			         ex->cfg->engines[i], zmq_strerror(zmq_errno()));
	}
	free(text);
}

/* Sends msg (stolen) to every engine. */
void exec_send(struct exec *ex, json_t *msg)
{
	if (!msg) {
		log_error("cannot build a frame", "%s", "");
		return;
	}
	char *text = wire_encode(msg);
	if (!text)
		log_error("cannot encode a frame", "type=%s", wire_type(msg));
	else
		exec_send_text(ex, text, wire_type(msg));
	json_decref(msg);
}

static void send_hello(struct exec *ex)
{
	struct exec_config *c = ex->cfg;
	exec_send(
	    ex, exec_curve_hello(wire_hello(c->id, c->advertise, c->pool,
	                                    (const char *const *)c->labels, c->nlabels, c->slots)));
}

void exec_send_heartbeat(struct exec *ex)
{
	json_t *running = json_array();
	for (struct task *t = ex->tasks; t; t = t->next)
		json_array_append_new(running,
		                      json_pack("{s:I, s:i}", "task_run_id",
		                                (json_int_t)t->task_run_id, "attempt", t->attempt));
	double load[1] = {0};
	if (getloadavg(load, 1) != 1)
		load[0] = 0;
	int64_t now = mono_ms();
	json_t *breakers = breaker_states_json(ex->breakers, now, wall_ms() - now);
	int free_slots = ex->draining ? 0 : ex->cfg->slots - ex->running;
	exec_send(ex, wire_heartbeat(ex->cfg->id, free_slots < 0 ? 0 : free_slots, load[0], running,
	                             breakers, ex->draining));
}

static void handle_frame(struct exec *ex, const char *data, size_t len)
{
	char err[300];
	json_t *msg;
	if (wire_decode(data, len, &msg, err, sizeof err)) {
		log_warn("invalid frame", "error=%s", err);
		/* a task we cannot run must not come back forever: report it failed */
		json_t *raw = json_loadb(data, len < WIRE_MAX_FRAME ? len : 0, 0, NULL);
		const json_t *id = json_object_get(raw, "task_run_id");
		const json_t *at = json_object_get(raw, "attempt");
		if (strcmp(wire_type(raw), "task") == 0 && json_is_integer(id) &&
		    json_integer_value(id) > 0 && json_is_integer(at) &&
		    json_integer_value(at) > 0) {
			int64_t now = wall_ms();
			struct wire_result r = {
			    .task_run_id = json_integer_value(id),
			    .attempt = (int)json_integer_value(at),
			    .status = "failed",
			    .exit_code = -1,
			    .error = err,
			    .started_ms = now,
			    .finished_ms = now,
			};
			exec_send_text(ex, wire_finished_text(ex->cfg->id, &r), "finished");
		}
		json_decref(raw);
		return;
	}
	const char *type = wire_type(msg);
	if (strcmp(type, "task") == 0)
		exec_task_start(ex, msg);
	else if (strcmp(type, "cancel") == 0)
		exec_task_cancel(ex, msg);
	else
		log_warn("unexpected frame for an executor", "type=%s", type);
	json_decref(msg);
}

static void read_frames(struct exec *ex)
{
	for (int i = 0; i < RECV_BATCH; i++) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, ex->pull, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return;
		}
		int more = zmq_msg_more(&m);
		if (!more)
			handle_frame(ex, zmq_msg_data(&m), zmq_msg_size(&m));
		zmq_msg_close(&m);
		while (more) {
			/* one JSON object per frame: drop multi-part messages whole */
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, ex->pull, 0) < 0) {
				zmq_msg_close(&m);
				break;
			}
			more = zmq_msg_more(&m);
			zmq_msg_close(&m);
			if (!more)
				log_warn("multi-part frame dropped", "%s", "");
		}
	}
}

/* ---- signals ---- */

static void reap_children(struct exec *ex)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (struct task *t = ex->tasks; t; t = t->next) {
			if (t->kind == TASK_SHELL && t->pid == pid && !t->exited) {
				t->exited = 1;
				t->wstatus = st;
				t->exited_mono = mono_ms();
				t->kill_at = 0;
				break;
			}
		}
	}
}

static void begin_drain(struct exec *ex)
{
	ex->draining = 1;
	ex->drain_deadline = mono_ms() + ex->cfg->drain_timeout_ms;
	log_info("draining", "running=%d drain_timeout_ms=%lld", ex->running,
	         (long long)ex->cfg->drain_timeout_ms);
	exec_send_heartbeat(ex);
}

static void reload(struct exec *ex)
{
	char err[300];
	if (exec_config_reload(ex->cfg, err, sizeof err)) {
		log_error("reload failed, settings unchanged", "error=%s", err);
		return;
	}
	log_info("configuration reloaded", "slots=%d heartbeat_ms=%lld labels=%zu", ex->cfg->slots,
	         (long long)ex->cfg->heartbeat_ms, ex->cfg->nlabels);
	send_hello(ex);
	ex->next_heartbeat = mono_ms();
}

static int handle_signals(struct exec *ex)
{
	char drain[64];
	while (read(ex->sigpipe[0], drain, sizeof drain) > 0)
		;
	if (sig_chld) {
		sig_chld = 0;
		reap_children(ex);
	}
	if (sig_hup) {
		sig_hup = 0;
		reload(ex);
	}
	int terms = sig_term;
	if (terms > ex->handled_terms) {
		if (ex->handled_terms == 0 && terms == 1) {
			begin_drain(ex);
		} else {
			log_warn("second stop signal: killing every step", "running=%d",
			         ex->running);
			exec_kill_all_now(ex);
			return 1;
		}
		ex->handled_terms = terms;
	}
	return 0;
}

/* ---- libcurl in the loop ---- */

static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct exec *ex = userp;
	size_t i;
	for (i = 0; i < ex->ncs; i++)
		if (ex->cs[i].fd == s)
			break;
	if (what == CURL_POLL_REMOVE) {
		if (i < ex->ncs)
			ex->cs[i] = ex->cs[--ex->ncs];
		return 0;
	}
	if (i == ex->ncs) {
		if (ex->ncs == ex->capcs) {
			ex->capcs = ex->capcs ? 2 * ex->capcs : 16;
			ex->cs = xrealloc(ex->cs, ex->capcs * sizeof *ex->cs);
		}
		ex->ncs++;
	}
	ex->cs[i].fd = s;
	ex->cs[i].what = what;
	return 0;
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct exec *ex = userp;
	ex->curl_at = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	return 0;
}

static void curl_completed(struct exec *ex)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(ex->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *e = m->easy_handle;
		CURLcode rc = m->data.result;
		struct task *t = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&t);
		if (t)
			runner_http_done(t, ex->multi, rc);
	}
}

/* ---- the loop ---- */

static int64_t earliest(int64_t a, int64_t b)
{
	return a == 0 ? b : (b == 0 || a < b ? a : b);
}

/* Fires due timers; returns the next deadline (mono ms). */
static int64_t run_timers(struct exec *ex, int64_t now)
{
	if (now >= ex->next_heartbeat) {
		if (++ex->heartbeats % ex->cfg->hello_every == 0)
			send_hello(ex);
		exec_send_heartbeat(ex);
		ex->next_heartbeat = now + ex->cfg->heartbeat_ms;
	}
	if (ex->draining && !ex->drain_killed && now >= ex->drain_deadline && ex->tasks) {
		ex->drain_killed = 1;
		log_warn("drain timeout: stopping what is left", "running=%d", ex->running);
		struct task *t = ex->tasks;
		while (t) {
			struct task *next = t->next; /* exec_task_stop may free t */
			exec_task_stop(ex, t, "cancelled", "executor shut down");
			t = next;
		}
	}
	int64_t next = ex->next_heartbeat;
	if (ex->draining && !ex->drain_killed)
		next = earliest(next, ex->drain_deadline);
	struct task *t = ex->tasks;
	while (t) {
		struct task *nt = t->next;
		if (t->deadline && now >= t->deadline && !t->stop_status) {
			char msg[80];
			snprintf(msg, sizeof msg, "timed out after %lld ms",
			         (long long)(t->deadline - t->started_mono));
			t->deadline = 0;
			int freed = t->kind != TASK_SHELL;
			exec_task_stop(ex, t, "timeout", msg);
			if (freed) {
				t = nt;
				continue;
			}
		}
		if (t->kind == TASK_SLEEP && now >= t->wake_at) {
			exec_task_done(ex, t, "succeeded", -1, 0, NULL, NULL, NULL);
			t = nt;
			continue;
		}
		if (t->kind == TASK_SHELL && t->kill_at && now >= t->kill_at && !t->exited) {
			log_warn("step ignored SIGTERM: killing its group",
			         "task_run_id=%lld pgid=%ld", (long long)t->task_run_id,
			         (long)t->pid);
			runner_shell_signal(t, SIGKILL);
			t->kill_at = 0;
		}
		if (t->kind == TASK_SHELL && t->exited && runner_shell_poll(t, now)) {
			t = nt;
			continue;
		}
		if (t->deadline && !t->stop_status)
			next = earliest(next, t->deadline);
		if (t->kind == TASK_SLEEP)
			next = earliest(next, t->wake_at);
		if (t->kill_at)
			next = earliest(next, t->kill_at);
		if (t->kind == TASK_SHELL && t->exited)
			next = earliest(next, now + REAP_POLL_MS);
		t = nt;
	}
	if (ex->curl_at >= 0)
		next = earliest(next, ex->curl_at);
	return next;
}

enum owner_kind { OWN_PULL, OWN_SIGNAL, OWN_CHILD, OWN_CURL };
struct owner {
	enum owner_kind kind;
	struct task *task;
	curl_socket_t fd;
};

int exec_run(struct exec *ex)
{
	zmq_pollitem_t *items = NULL;
	struct owner *owners = NULL;
	size_t cap = 0;
	int hard_stop = 0;

	log_info("executor started",
	         "id=%s listen=%s engines=%zu pool=%s slots=%d heartbeat_ms=%lld", ex->cfg->id,
	         ex->cfg->listen, ex->cfg->nengines, ex->cfg->pool, ex->cfg->slots,
	         (long long)ex->cfg->heartbeat_ms);
	send_hello(ex);
	ex->next_heartbeat = mono_ms();
	for (;;) {
		if (handle_signals(ex)) {
			hard_stop = 1;
			break;
		}
		if (ex->draining && !ex->tasks)
			break;
		int64_t now = mono_ms();
		int64_t next = run_timers(ex, now);
		if (ex->draining && !ex->tasks)
			break;
		size_t need = 2 + (size_t)ex->running + ex->ncs;
		if (need > cap) {
			cap = need * 2;
			items = xrealloc(items, cap * sizeof *items);
			owners = xrealloc(owners, cap * sizeof *owners);
		}
		size_t n = 0;
		items[n] = (zmq_pollitem_t){.socket = ex->pull, .events = ZMQ_POLLIN};
		owners[n++] = (struct owner){.kind = OWN_PULL};
		items[n] = (zmq_pollitem_t){.fd = ex->sigpipe[0], .events = ZMQ_POLLIN};
		owners[n++] = (struct owner){.kind = OWN_SIGNAL};
		for (struct task *t = ex->tasks; t; t = t->next) {
			if (t->out_fd < 0)
				continue;
			items[n] = (zmq_pollitem_t){.fd = t->out_fd, .events = ZMQ_POLLIN};
			owners[n++] = (struct owner){.kind = OWN_CHILD, .task = t};
		}
		for (size_t i = 0; i < ex->ncs; i++) {
			short ev = 0;
			if (ex->cs[i].what & CURL_POLL_IN)
				ev |= ZMQ_POLLIN;
			if (ex->cs[i].what & CURL_POLL_OUT)
				ev |= ZMQ_POLLOUT;
			items[n] = (zmq_pollitem_t){.fd = ex->cs[i].fd, .events = ev};
			owners[n++] = (struct owner){.kind = OWN_CURL, .fd = ex->cs[i].fd};
		}
		long timeout = next > now ? (long)(next - now) : 0;
		int rc = zmq_poll(items, (int)n, timeout);
		if (rc < 0 && zmq_errno() != EINTR) {
			log_error("zmq_poll failed", "error=%s", zmq_strerror(zmq_errno()));
			break;
		}
		for (size_t i = 0; rc > 0 && i < n; i++) {
			if (!items[i].revents)
				continue;
			switch (owners[i].kind) {
			case OWN_PULL:
				read_frames(ex);
				break;
			case OWN_SIGNAL:
				break; /* handled at the top of the loop */
			case OWN_CHILD: {
				/* the task may have been freed by a frame handled above */
				for (struct task *t = ex->tasks; t; t = t->next)
					if (t == owners[i].task && t->out_fd >= 0)
						runner_shell_read(t);
				break;
			}
			case OWN_CURL: {
				int flags = 0, still;
				if (items[i].revents & ZMQ_POLLIN)
					flags |= CURL_CSELECT_IN;
				if (items[i].revents & ZMQ_POLLOUT)
					flags |= CURL_CSELECT_OUT;
				if (items[i].revents & ZMQ_POLLERR)
					flags |= CURL_CSELECT_ERR;
				curl_multi_socket_action(ex->multi, owners[i].fd, flags, &still);
				break;
			}
			}
		}
		if (ex->curl_at >= 0 && mono_ms() >= ex->curl_at) {
			int still;
			ex->curl_at = -1;
			curl_multi_socket_action(ex->multi, CURL_SOCKET_TIMEOUT, 0, &still);
		}
		curl_completed(ex);
	}
	free(items);
	free(owners);
	if (!ex->draining)
		exec_kill_all_now(ex);
	exec_send(ex, wire_bye(ex->cfg->id));
	log_info("executor stopped", "hard_stop=%d", hard_stop);
	return 0;
}

/* ---- setup ---- */

static void *push_socket(struct exec *ex, const char *endpoint)
{
	void *s = zmq_socket(ex->zctx, ZMQ_PUSH);
	int hwm = SNDHWM, linger = LINGER_MS, immediate = 0;
	if (!s)
		return NULL;
	zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
	zmq_setsockopt(s, ZMQ_IMMEDIATE, &immediate, sizeof immediate);
	if (exec_curve_client(s, ex->cfg, endpoint) != 0) {
		zmq_close(s);
		return NULL;
	}
	if (zmq_connect(s, endpoint) != 0) {
		log_error("cannot connect to an engine", "endpoint=%s error=%s", endpoint,
		          zmq_strerror(zmq_errno()));
		zmq_close(s);
		return NULL;
	}
	return s;
}

struct exec *exec_new(struct exec_config *cfg)
{
	struct exec *ex = xcalloc(1, sizeof *ex);
	ex->cfg = cfg;
	ex->curl_at = -1;
	ex->sigpipe[0] = ex->sigpipe[1] = -1;
	ex->breakers = breaker_set_new(BREAKERS_MAX);
	if (pipe2(ex->sigpipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		log_error("cannot create the signal pipe", "error=%s", strerror(errno));
		goto fail;
	}
	sig_wfd = ex->sigpipe[1];
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* orphans of a step are re-parented to us, so we reap them and a
	 * process group really disappears when its step is over */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		log_warn("cannot become a child subreaper", "error=%s", strerror(errno));

	if (runner_http_init()) {
		log_error("cannot initialise libcurl", "%s", "");
		goto fail;
	}
	ex->multi = curl_multi_init();
	curl_multi_setopt(ex->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(ex->multi, CURLMOPT_SOCKETDATA, ex);
	curl_multi_setopt(ex->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(ex->multi, CURLMOPT_TIMERDATA, ex);

	ex->zctx = zmq_ctx_new();
	ex->pull = zmq_socket(ex->zctx, ZMQ_PULL);
	int zero = 0;
	int64_t maxmsg = WIRE_MAX_FRAME; /* a peer sending more is disconnected */
	zmq_setsockopt(ex->pull, ZMQ_LINGER, &zero, sizeof zero);
	zmq_setsockopt(ex->pull, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
	if (exec_curve_server(ex->zctx, ex->pull, cfg) != 0)
		goto fail;
	if (zmq_bind(ex->pull, cfg->listen) != 0) {
		log_error("cannot listen", "endpoint=%s error=%s", cfg->listen,
		          zmq_strerror(zmq_errno()));
		goto fail;
	}
	ex->push = xcalloc(cfg->nengines, sizeof *ex->push);
	for (size_t i = 0; i < cfg->nengines; i++) {
		ex->push[i] = push_socket(ex, cfg->engines[i]);
		if (!ex->push[i])
			goto fail;
		ex->npush++;
	}
	return ex;
fail:
	exec_free(ex);
	return NULL;
}

void exec_free(struct exec *ex)
{
	if (!ex)
		return;
	while (ex->tasks) {
		struct task *t = ex->tasks;
		ex->tasks = t->next;
		exec_task_free(ex, t);
	}
	for (size_t i = 0; i < ex->npush; i++)
		zmq_close(ex->push[i]);
	free(ex->push);
	if (ex->pull)
		zmq_close(ex->pull);
	if (ex->zctx)
		zmq_ctx_term(ex->zctx);
	exec_curve_stop();
	if (ex->multi) {
		curl_multi_cleanup(ex->multi);
		runner_http_cleanup();
	}
	free(ex->cs);
	breaker_set_free(ex->breakers);
	sig_wfd = -1;
	if (ex->sigpipe[0] >= 0)
		close(ex->sigpipe[0]);
	if (ex->sigpipe[1] >= 0)
		close(ex->sigpipe[1]);
	free(ex);
}
