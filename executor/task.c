/* Task lifecycle: admission (slots, draining, breakers), runner start,
 * stop (timeout, cancel, shutdown) and the finished report. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec_int.h"
#include "log.h"
#include "util.h"
#include "wire.h"
#include "xalloc.h"

void exec_task_free(struct exec *ex, struct task *t)
{
	if (t->easy)
		runner_http_abort(t, ex->multi);
	curl_slist_free_all(t->headers);
	if (t->out_fd >= 0)
		close(t->out_fd);
	if (t->output_path) {
		unlink(t->output_path);
		free(t->output_path);
	}
	tail_release(&t->out);
	buf_release(&t->resp);
	free(t->body);
	free(t->stop_error);
	free(t->breaker_name);
	secrets_release(&t->secrets);
	json_decref(t->msg);
	free(t);
}

static void unlink_task(struct exec *ex, struct task *t)
{
	for (struct task **p = &ex->tasks; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			ex->running--;
			return;
		}
	}
}

/* Masks used secrets in every string of a WF_OUTPUT object, in place. */
static void mask_json(const struct secrets *used, json_t *v)
{
	if (json_is_string(v)) {
		size_t n;
		char *m = secrets_mask(used, json_string_value(v), json_string_length(v), &n);
		json_string_setn(v, m, n);
		free(m);
	} else if (json_is_object(v)) {
		const char *k;
		json_t *e;
		json_object_foreach(v, k, e)
		{
			mask_json(used, e);
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			mask_json(used, e);
		}
	}
}

void exec_task_done(struct exec *ex, struct task *t, const char *status, int exit_code,
                    int http_status, const char *error, const char *output, json_t *outputs)
{
	int64_t now = mono_ms();
	char *err = NULL;
	if (error) {
		size_t n;
		char *masked = secrets_mask(&t->secrets, error, strlen(error), &n);
		err = wire_text(masked, n);
		free(masked);
	}
	if (outputs && t->secrets.n)
		mask_json(&t->secrets, outputs);
	struct wire_result r = {
	    .task_run_id = t->task_run_id,
	    .attempt = t->attempt,
	    .status = status,
	    .exit_code = exit_code,
	    .http_status = http_status,
	    .output = output,
	    .error = err,
	    .duration_ms = now - t->started_mono,
	    .outputs = outputs,
	    .started_ms = t->started_wall,
	    .finished_ms = t->started_wall + (now - t->started_mono),
	};
	exec_send_text(ex, wire_finished_text(ex->cfg->id, &r), "finished");
	if (t->breaker_name) {
		enum breaker_outcome o = BREAKER_IGNORE;
		if (strcmp(status, "succeeded") == 0)
			o = BREAKER_SUCCESS;
		else if (strcmp(status, "failed") == 0 || strcmp(status, "timeout") == 0)
			o = BREAKER_FAILURE;
		breaker_release(ex->breakers, t->breaker_name, o, t->breaker_probe, now);
	}
	log_write(strcmp(status, "succeeded") == 0 ? LOG_INFO : LOG_WARN, "task finished",
	          "task_run_id=%lld attempt=%d status=%s duration_ms=%lld error=%s",
	          (long long)t->task_run_id, t->attempt, status, (long long)r.duration_ms,
	          err ? err : "");
	free(err);
	json_decref(outputs);
	unlink_task(ex, t);
	exec_task_free(ex, t);
}

static struct task *find_task(struct exec *ex, int64_t id, int attempt)
{
	for (struct task *t = ex->tasks; t; t = t->next)
		if (t->task_run_id == id && t->attempt == attempt)
			return t;
	return NULL;
}

/* Stops a running task and reports status/error: at once for http, sleep
 * and noop; for a process once its group is gone (SIGTERM now, SIGKILL
 * after --kill-grace). */
void exec_task_stop(struct exec *ex, struct task *t, const char *status, const char *error)
{
	if (t->kind == TASK_SHELL) {
		if (t->stop_status)
			return;
		t->stop_status = status;
		t->stop_error = xstrdup(error);
		if (!t->exited) {
			runner_shell_signal(t, SIGTERM);
			t->kill_at = mono_ms() + ex->cfg->kill_grace_ms;
		}
		return;
	}
	if (t->kind == TASK_HTTP) {
		char *output = output_from_head(t->resp.data, t->resp.len, t->resp_dropped,
		                                ex->cfg->max_output, &t->secrets);
		runner_http_abort(t, ex->multi);
		exec_task_done(ex, t, status, -1, 0, error, output, NULL);
		free(output);
		return;
	}
	exec_task_done(ex, t, status, -1, 0, error, NULL, NULL);
}

/* The second SIGTERM: kill every process group and report everything now. */
void exec_kill_all_now(struct exec *ex)
{
	while (ex->tasks) {
		struct task *t = ex->tasks;
		if (t->kind == TASK_SHELL) {
			runner_shell_signal(t, SIGKILL);
			runner_shell_read(t);
			char *output = output_from_tail(&t->out, ex->cfg->max_output, &t->secrets);
			exec_task_done(ex, t, "cancelled", -1, 0, "executor shut down", output,
			               NULL);
			free(output);
		} else {
			exec_task_stop(ex, t, "cancelled", "executor shut down");
		}
	}
}

void exec_task_start(struct exec *ex, json_t *msg)
{
	char err[512] = "";
	struct task *t = xcalloc(1, sizeof *t);
	t->ex = ex;
	t->cfg = ex->cfg;
	t->msg = json_incref(msg);
	t->task_run_id = json_integer_value(json_object_get(msg, "task_run_id"));
	t->attempt = (int)json_integer_value(json_object_get(msg, "attempt"));
	t->pid = -1;
	t->out_fd = -1;
	t->started_wall = wall_ms();
	t->started_mono = mono_ms();
	if (find_task(ex, t->task_run_id, t->attempt)) {
		log_warn("duplicate task ignored", "task_run_id=%lld attempt=%d",
		         (long long)t->task_run_id, t->attempt);
		exec_task_free(ex, t);
		return;
	}
	/* counted from here on; exec_task_done uncounts it */
	t->next = ex->tasks;
	ex->tasks = t;
	ex->running++;
	if (ex->draining) {
		snprintf(err, sizeof err, "executor %s is draining", ex->cfg->id);
		exec_task_done(ex, t, "rejected", -1, 0, err, NULL, NULL);
		return;
	}
	if (ex->running > ex->cfg->slots) {
		exec_task_done(ex, t, "rejected", -1, 0, "no free slot", NULL, NULL);
		return;
	}
	const json_t *step = json_object_get(msg, "step");
	const char *type = json_string_value(json_object_get(step, "type"));
	if (strcmp(type, "shell") == 0 || strcmp(type, "sh") == 0)
		t->kind = TASK_SHELL;
	else if (strcmp(type, "http") == 0)
		t->kind = TASK_HTTP;
	else if (strcmp(type, "sleep") == 0)
		t->kind = TASK_SLEEP;
	else
		t->kind = TASK_NOOP;

	const json_t *b = json_object_get(msg, "breaker");
	struct breaker_config bc;
	const char *bname = json_is_object(b) ? breaker_config_from_json(b, &bc) : NULL;
	if (bname) {
		int64_t until;
		enum breaker_verdict v =
		    breaker_acquire(ex->breakers, bname, &bc, t->started_mono, &until);
		if (v == BREAKER_REJECT) {
			if (until > t->started_mono) {
				char ts[40];
				fmt_time_ms(t->started_wall + (until - t->started_mono), ts,
				            sizeof ts);
				snprintf(err, sizeof err, "circuit breaker '%s' open until %s",
				         bname, ts);
			} else {
				snprintf(err, sizeof err,
				         "circuit breaker '%s' half-open: its %lld probes are "
				         "running",
				         bname, (long long)bc.half_open_probes);
			}
			exec_task_done(ex, t, "breaker_open", -1, 0, err, NULL, NULL);
			return;
		}
		t->breaker_name = xstrdup(bname);
		t->breaker_probe = v == BREAKER_PROBE;
	}
	const json_t *tmo = json_object_get(msg, "timeout_ms");
	if (json_is_integer(tmo) && json_integer_value(tmo) > 0)
		t->deadline = t->started_mono + json_integer_value(tmo);

	int rc = 0;
	switch (t->kind) {
	case TASK_SHELL:
		rc = runner_shell_start(t, step, err, sizeof err);
		break;
	case TASK_HTTP:
		rc = runner_http_start(t, ex->multi, step, err, sizeof err);
		break;
	case TASK_SLEEP:
		t->wake_at =
		    t->started_mono + json_integer_value(json_object_get(step, "duration_ms"));
		break;
	case TASK_NOOP:
		break;
	}
	if (rc) {
		exec_task_done(ex, t, "failed", -1, 0, err, NULL, NULL);
		return;
	}
	log_debug("task started", "task_run_id=%lld attempt=%d type=%s", (long long)t->task_run_id,
	          t->attempt, type);
	/* A noop finishes right here: its `finished` (with started_ms) says
	 * all a `started` would, so none is sent (one frame per task less on
	 * both sides; docs/architecture.md, wire protocol). */
	if (t->kind == TASK_NOOP) {
		exec_task_done(ex, t, "succeeded", -1, 0, NULL, NULL, NULL);
		return;
	}
	exec_send(ex, wire_started(ex->cfg->id, t->task_run_id, t->attempt, t->started_wall));
}

void exec_task_cancel(struct exec *ex, const json_t *msg)
{
	int64_t id = json_integer_value(json_object_get(msg, "task_run_id"));
	int attempt = (int)json_integer_value(json_object_get(msg, "attempt"));
	struct task *t = find_task(ex, id, attempt);
	if (!t) {
		log_debug("cancel for a task not running here", "task_run_id=%lld attempt=%d",
		          (long long)id, attempt);
		return;
	}
	log_info("cancelling task", "task_run_id=%lld attempt=%d", (long long)id, attempt);
	exec_task_stop(ex, t, "cancelled", "cancelled by the engine");
}
