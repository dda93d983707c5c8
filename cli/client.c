/* wfctl's HTTP client (see client.h). */
#include "cli/client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli/cli.h"
#include "xalloc.h"

#define DEFAULT_URL "http://127.0.0.1:8080"

static char *base_url; /* resolved once */
static char *token;
static int resolved;

/* Strips blanks around v and one pair of matching quotes. In place. */
static char *unquote(char *v)
{
	while (*v == ' ' || *v == '\t')
		v++;
	size_t n = strlen(v);
	while (n > 0 &&
	       (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\n' || v[n - 1] == '\r'))
		v[--n] = '\0';
	if (n >= 2 && (v[0] == '\'' || v[0] == '"') && v[n - 1] == v[0]) {
		v[n - 1] = '\0';
		v++;
	}
	return v;
}

/* Reads KEY=value lines ("export " allowed, '#' comments). For each line
 * whose key is url_key or token_key, sets *url / *tok when still NULL. */
static void read_kv_file(const char *path, const char *url_key, const char *token_key, char **url,
                         char **tok)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char line[4096];
	while (fgets(line, sizeof line, f)) {
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#')
			continue;
		if (strncmp(p, "export ", 7) == 0)
			p += 7;
		char *eq = strchr(p, '=');
		if (!eq)
			continue;
		*eq = '\0';
		char *key = unquote(p), *val = unquote(eq + 1);
		if (strcmp(key, url_key) == 0 && !*url && *val)
			*url = xstrdup(val);
		else if (strcmp(key, token_key) == 0 && !*tok && *val)
			*tok = xstrdup(val);
	}
	fclose(f);
}

static void resolve(void)
{
	if (resolved)
		return;
	resolved = 1;
	char *url = cli_opts.url ? xstrdup(cli_opts.url) : NULL;
	char *tok = cli_opts.token ? xstrdup(cli_opts.token) : NULL;
	const char *env_url = getenv("WF_URL"), *env_tok = getenv("WF_TOKEN");
	if (!url && env_url && *env_url)
		url = xstrdup(env_url);
	if (!tok && env_tok && *env_tok)
		tok = xstrdup(env_tok);
	/* The project's dev environment, unless a URL was chosen explicitly. */
	if (!url)
		read_kv_file(".wf/env", "WF_URL", "WF_TOKEN", &url, &tok);
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	char *conf = NULL;
	if (xdg && *xdg)
		conf = xasprintf("%s/wf/config", xdg);
	else if (home && *home)
		conf = xasprintf("%s/.config/wf/config", home);
	if (conf && (!url || !tok))
		read_kv_file(conf, "url", "token", &url, &tok);
	free(conf);
	if (!url)
		url = xstrdup(DEFAULT_URL);
	size_t n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		url[--n] = '\0';
	base_url = url;
	token = tok;
}

const char *cli_base_url(void)
{
	resolve();
	return base_url;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;
	if (buf_append(b, data, size * nmemb) != 0)
		return 0; /* too big: curl fails with CURLE_WRITE_ERROR */
	return size * nmemb;
}

int cli_request(const char *method, const char *path, const json_t *body,
                const char *const *headers, struct cli_response *r)
{
	static int curl_ready;
	int rc = -1;
	char *url = NULL, *auth = NULL, *payload = NULL;
	struct curl_slist *hdrs = NULL;
	struct buf resp;
	CURL *h = NULL;

	memset(r, 0, sizeof *r);
	buf_init(&resp, CLI_MAX_BODY);
	resolve();
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
			snprintf(r->error, sizeof r->error, "cannot initialise libcurl");
			goto out;
		}
		curl_ready = 1;
	}
	h = curl_easy_init();
	if (!h) {
		snprintf(r->error, sizeof r->error, "cannot initialise libcurl");
		goto out;
	}
	url = xasprintf("%s%s", base_url, path);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	hdrs = curl_slist_append(hdrs, "User-Agent: wfctl/" WF_VERSION);
	if (token) {
		auth = xasprintf("Authorization: Bearer %s", token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	for (const char *const *p = headers; p && *p; p++)
		hdrs = curl_slist_append(hdrs, *p);
	if (body) {
		payload = json_dumps(body, JSON_COMPACT);
		if (!payload) {
			snprintf(r->error, sizeof r->error, "cannot encode the request body");
			goto out;
		}
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)CLI_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	CURLcode cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		if (cc == CURLE_WRITE_ERROR)
			snprintf(r->error, sizeof r->error, "response larger than %d bytes",
			         CLI_MAX_BODY);
		else
			snprintf(r->error, sizeof r->error, "%s", curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	if (resp.len > 0)
		r->json = json_loadb(resp.data, resp.len, 0, NULL);
	rc = 0;
out:
	r->body = resp.data ? buf_detach(&resp) : xstrdup("");
	buf_release(&resp);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	free(payload);
	free(auth);
	free(url);
	return rc;
}

void cli_response_release(struct cli_response *r)
{
	json_decref(r->json);
	free(r->body);
	r->json = NULL;
	r->body = NULL;
}

int cli_report_error(const struct cli_response *r, const char *what)
{
	if (r->status == 0) {
		fprintf(stderr, "wfctl: %s: cannot reach the engine: %s\n", what, r->error);
		fprintf(stderr, "hint: is wf-engine running at %s? set WF_URL or --url\n",
		        cli_base_url());
		return EXIT_UNAVAIL;
	}
	json_t *err = json_object_get(r->json, "error");
	const char *msg = json_string_value(json_object_get(err, "message"));
	if (!msg && json_is_string(err))
		msg = json_string_value(err);
	char fallback[64];
	if (!msg) {
		snprintf(fallback, sizeof fallback, "HTTP %ld", r->status);
		msg = fallback;
	}
	/* The API's message often names the object already. */
	if (strstr(msg, what))
		fprintf(stderr, "wfctl: %s\n", msg);
	else
		fprintf(stderr, "wfctl: %s: %s\n", what, msg);
	json_t *details = json_object_get(err, "details");
	for (size_t i = 0; i < json_array_size(details); i++) {
		const char *d = json_string_value(json_array_get(details, i));
		if (d)
			fprintf(stderr, "  %s\n", d);
	}
	if (r->status == 401 || r->status == 403) {
		fprintf(stderr, "hint: %s\n",
		        r->status == 401 ? "set WF_TOKEN or --token (wfctl token create)"
		                         : "this token's role does not allow that");
		return EXIT_DENIED;
	}
	if (r->status == 404)
		return EXIT_NOTFOUND;
	if (r->status >= 500) {
		fprintf(stderr, "hint: is wf-engine at %s healthy? set WF_URL or --url\n",
		        cli_base_url());
		return EXIT_UNAVAIL;
	}
	return EXIT_FAIL;
}

int cli_call(const char *method, const char *path, const json_t *body, const char *const *headers,
             const char *what, json_t **out)
{
	struct cli_response r;
	int rc;
	if (out)
		*out = NULL;
	if (cli_request(method, path, body, headers, &r) != 0 || r.status < 200 ||
	    r.status >= 300) {
		rc = cli_report_error(&r, what);
		goto out;
	}
	if (out) {
		if (r.json)
			*out = json_incref(r.json);
		else if (!r.body[0])
			*out = json_object();
		else {
			fprintf(stderr, "wfctl: %s: the engine's answer is not JSON\n", what);
			rc = EXIT_FAIL;
			goto out;
		}
	}
	rc = EXIT_OK;
out:
	cli_response_release(&r);
	return rc;
}

char *cli_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *copy = xstrdup(e ? e : "");
	curl_free(e);
	return copy;
}

int cli_fetch_all(const char *path, const char *what, json_t **items)
{
	int rc = EXIT_OK;
	char *cursor = NULL;
	*items = json_array();
	for (int page = 0; page < 1000; page++) {
		char *p =
		    cursor ? xasprintf("%s%scursor=%s", path, strchr(path, '?') ? "&" : "?", cursor)
		           : xstrdup(path);
		json_t *resp = NULL;
		rc = cli_call("GET", p, NULL, NULL, what, &resp);
		free(p);
		free(cursor);
		cursor = NULL;
		if (rc != EXIT_OK)
			break;
		json_array_extend(*items, json_object_get(resp, "items"));
		json_t *next = json_object_get(resp, "next_cursor");
		if (json_is_string(next) && *json_string_value(next))
			cursor = cli_escape(json_string_value(next));
		else if (json_is_integer(next))
			cursor = xasprintf("%lld", (long long)json_integer_value(next));
		json_decref(resp);
		if (!cursor)
			break;
	}
	free(cursor);
	return rc;
}
