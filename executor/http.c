/* http steps on one curl multi handle: many transfers in the executor's one
 * thread, connections reused between tasks. Only http and https, also for
 * redirects. The output is the HEAD of the response body (the start of an
 * error document says the most), at most max-output bytes. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "exec.h"
#include "log.h"
#include "xalloc.h"

int runner_http_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void runner_http_cleanup(void)
{
	curl_global_cleanup();
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	struct task *t = ud;
	size_t len = size * n;
	size_t room = t->resp.max > t->resp.len ? t->resp.max - t->resp.len : 0;
	size_t take = len < room ? len : room;
	if (take)
		(void)!buf_append(&t->resp, data, take);
	t->resp_dropped += len - take;
	return len; /* keep reading: the status is what matters */
}

static int expand(struct task *t, const char *s, char **out, char *err, size_t errlen)
{
	return secrets_expand(s, t->cfg->secrets_dir, t->cfg->id, &t->secrets, out, err, errlen);
}

static int has_crlf(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

static int add_headers(struct task *t, const json_t *step, char *err, size_t errlen)
{
	const json_t *h = json_object_get(step, "headers");
	const char *k;
	const json_t *v;
	int has_ct = 0;
	json_object_foreach((json_t *)h, k, v)
	{
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
			snprintf(err, errlen, "step.headers.%s must be a string without NUL bytes",
			         k);
			return -1;
		}
		if (!*k || strpbrk(k, ": \t\r\n")) {
			snprintf(err, errlen, "step.headers: invalid header name '%s'", k);
			return -1;
		}
		char *val;
		if (expand(t, json_string_value(v), &val, err, errlen))
			return -1;
		if (has_crlf(val)) {
			free(val);
			snprintf(err, errlen, "step.headers.%s must not contain line breaks", k);
			return -1;
		}
		if (strcasecmp(k, "Content-Type") == 0)
			has_ct = 1;
		char *line = xasprintf("%s: %s", k, val);
		free(val);
		t->headers = curl_slist_append(t->headers, line);
		free(line);
	}
	const char *key = json_string_value(json_object_get(t->msg, "idempotency_key"));
	if (key && *key && !has_crlf(key)) {
		char *line = xasprintf("Idempotency-Key: %s", key);
		t->headers = curl_slist_append(t->headers, line);
		free(line);
	}
	const json_t *body = json_object_get(step, "body");
	if (!has_ct && body && (json_is_object(body) || json_is_array(body)))
		t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
	t->headers = curl_slist_append(t->headers, "Expect:"); /* no 100-continue round trip */
	return 0;
}

/* The body: a string (secrets expanded), or a JSON object/array sent as JSON. */
static int make_body(struct task *t, const json_t *step, char *err, size_t errlen)
{
	const json_t *body = json_object_get(step, "body");
	if (!body || json_is_null(body))
		return 0;
	char *text;
	if (json_is_string(body)) {
		text = xstrdup(json_string_value(body));
	} else {
		text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!text) {
			snprintf(err, errlen, "step.body cannot be encoded");
			return -1;
		}
	}
	int rc = expand(t, text, &t->body, err, errlen);
	free(text);
	return rc;
}

int runner_http_start(struct task *t, CURLM *multi, const json_t *step, char *err, size_t errlen)
{
	int rc = -1;
	char *url = NULL;
	const char *u = json_string_value(json_object_get(step, "url"));
	const char *method = json_string_value(json_object_get(step, "method"));
	if (!u || !*u) {
		snprintf(err, errlen, "step.url is required");
		goto out;
	}
	if (!method || !*method)
		method = "GET";
	if (strpbrk(method, " \t\r\n")) {
		snprintf(err, errlen, "step.method '%s' is not an HTTP method", method);
		goto out;
	}
	if (expand(t, u, &url, err, errlen) || add_headers(t, step, err, errlen) ||
	    make_body(t, step, err, errlen))
		goto out;
	buf_init(&t->resp, t->cfg->max_output + t->secrets.longest + 64);
	CURL *e = curl_easy_init();
	if (!e) {
		snprintf(err, errlen, "cannot create an HTTP transfer");
		goto out;
	}
	t->easy = e;
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(e, CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->curl_err);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "wf-executor/" WF_VERSION);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 30000L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	const json_t *tmo = json_object_get(step, "timeout_ms");
	if (json_is_integer(tmo) && json_integer_value(tmo) > 0)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)json_integer_value(tmo));
	if (strcasecmp(method, "HEAD") == 0)
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	else if (strcasecmp(method, "GET") != 0 || t->body)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (t->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(t->body));
	}
	CURLMcode mc = curl_multi_add_handle(multi, e);
	if (mc != CURLM_OK) {
		snprintf(err, errlen, "cannot start the HTTP transfer: %s",
		         curl_multi_strerror(mc));
		goto out;
	}
	rc = 0;
out:
	free(url);
	return rc;
}

static int expected(const json_t *list, long status)
{
	if (!json_is_array(list) || json_array_size(list) == 0)
		return status >= 200 && status < 300;
	size_t i;
	const json_t *v;
	json_array_foreach(list, i, v)
	{
		if (json_integer_value(v) == status)
			return 1;
	}
	return 0;
}

void runner_http_done(struct task *t, CURLM *multi, CURLcode rc)
{
	const json_t *step = json_object_get(t->msg, "step");
	const json_t *list = json_object_get(step, "expect_status");
	long status = 0;
	const char *st;
	struct buf error;
	buf_init(&error, 0);
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK) {
		st = rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "failed";
		(void)!buf_puts(&error, t->curl_err[0] ? t->curl_err : curl_easy_strerror(rc));
	} else if (expected(list, status)) {
		st = "succeeded";
	} else {
		st = "failed";
		(void)!buf_printf(&error, "HTTP %ld, expected ", status);
		if (!json_is_array(list) || json_array_size(list) == 0) {
			(void)!buf_puts(&error, "2xx");
		} else {
			(void)!buf_puts(&error, "one of ");
			size_t i;
			const json_t *v;
			json_array_foreach(list, i, v)
			{
				(void)!buf_printf(&error, "%s%lld", i ? ", " : "",
				                  (long long)json_integer_value(v));
			}
		}
	}
	char *output = output_from_head(t->resp.data, t->resp.len, t->resp_dropped,
	                                t->cfg->max_output, &t->secrets);
	runner_http_abort(t, multi);
	exec_task_done(t->ex, t, st, -1, (int)status, error.len ? error.data : NULL, output, NULL);
	free(output);
	buf_release(&error);
}

void runner_http_abort(struct task *t, CURLM *multi)
{
	if (t->easy) {
		curl_multi_remove_handle(multi, t->easy);
		curl_easy_cleanup(t->easy);
		t->easy = NULL;
	}
	curl_slist_free_all(t->headers);
	t->headers = NULL;
}
