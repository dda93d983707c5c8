/* Validation of "defaults" and "tasks": settings, steps, then the graph. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dsl_int.h"
#include "xalloc.h"

static const char *const task_keys[] = {
    "needs",   "shell",    "sh",     "http",    "noop",
    "sleep",   "env",      "dir",    "retries", "backoff",
    "timeout", "priority", "pool",   "route",   "broadcast_success",
    "breaker", "trigger",  "outputs"};
static const char *const default_keys[] = {"retries",           "backoff", "timeout",
                                           "priority",          "pool",    "route",
                                           "broadcast_success", "breaker", "trigger"};
static const char *const backoff_keys[] = {"initial", "max", "multiplier", "jitter"};
static const char *const breaker_keys[] = {"name",         "failures", "window",
                                           "failure_rate", "open_for", "half_open_probes"};
static const char *const http_keys[] = {"method", "url",           "headers",
                                        "body",   "expect_status", "timeout"};
static const char *const step_keys[] = {"shell", "sh", "http", "noop", "sleep"};
static const char *const jitter_vals[] = {"full", "none"};
static const char *const priority_vals[] = {"high", "medium", "low"};
static const char *const trigger_vals[] = {"all_success", "all_done", "one_failed", "always"};
static const char *const bsuccess_vals[] = {"all", "any"};
static const char *const method_vals[] = {"GET",   "HEAD",   "POST",   "PUT",
                                          "PATCH", "DELETE", "OPTIONS"};

#define MAX_RETRIES             100
#define DEFAULT_HTTP_TIMEOUT_MS 30000LL

struct breaker {
	int on;
	const char *name; /* NULL: the http host, else the task name */
	long long failures, window_ms, open_for_ms, probes;
	double rate;
};

struct settings {
	long long retries, initial_ms, max_ms, timeout_ms;
	double multiplier;
	const char *jitter, *priority, *pool, *route, *bsuccess, *trigger;
	struct breaker br;
};

static const struct settings builtin = {
    .retries = 0,
    .initial_ms = 1000,
    .max_ms = 300000,
    .timeout_ms = 3600000,
    .multiplier = 2.0,
    .jitter = "full",
    .priority = "medium",
    .pool = "default",
    .route = "round-robin",
    .bsuccess = "all",
    .trigger = "all_success",
    .br = {.on = 0,
           .name = NULL,
           .failures = 5,
           .window_ms = 60000,
           .open_for_ms = 30000,
           .probes = 1,
           .rate = 0.0},
};

static void sub_enum(struct dsl_ctx *c, const struct ynode *m, const char *field, const char *key,
                     const char *const *vals, size_t nvals, const char **out)
{
	const struct ynode *n = ymap_get(m, key);
	if (!n)
		return;
	char *f = path_key(field, key);
	const char *v;
	if (!get_enum(c, n, f, vals, nvals, &v))
		*out = v;
	free(f);
}

static void sub_int(struct dsl_ctx *c, const struct ynode *m, const char *field, const char *key,
                    long long min, long long max, long long *out)
{
	const struct ynode *n = ymap_get(m, key);
	if (!n)
		return;
	char *f = path_key(field, key);
	long long v;
	if (!get_int(c, n, f, min, max, &v))
		*out = v;
	free(f);
}

static void sub_duration(struct dsl_ctx *c, const struct ynode *m, const char *field,
                         const char *key, long long min, long long *out)
{
	const struct ynode *n = ymap_get(m, key);
	if (!n)
		return;
	char *f = path_key(field, key);
	long long v;
	if (!get_duration(c, n, f, &v)) {
		if (v < min)
			ctx_err(c, n, f, "expected a duration of at least %lldms", min);
		else
			*out = v;
	}
	free(f);
}

static void sub_number(struct dsl_ctx *c, const struct ynode *m, const char *field, const char *key,
                       double min, double max, double *out)
{
	const struct ynode *n = ymap_get(m, key);
	if (!n)
		return;
	char *f = path_key(field, key);
	double v;
	if (!get_number(c, n, f, min, max, &v))
		*out = v;
	free(f);
}

static int valid_route(const char *s)
{
	static const char *const fixed[] = {"round-robin", "random", "least-loaded", "broadcast"};
	for (size_t i = 0; i < NELEM(fixed); i++)
		if (!strcmp(s, fixed[i]))
			return 1;
	const char *rest = NULL;
	if (!strncmp(s, "executor:", 9))
		rest = s + 9;
	else if (!strncmp(s, "label:", 6))
		rest = s + 6;
	if (!rest || !*rest || strlen(rest) > 128)
		return 0;
	for (; *rest; rest++)
		if (!isalnum((unsigned char)*rest) && !strchr("_-.:@", *rest))
			return 0;
	return 1;
}

/* Applies the settings present in mapping m over s. */
static void parse_settings(struct dsl_ctx *c, const struct ynode *m, const char *field,
                           struct settings *s)
{
	const struct ynode *n;
	char *f;
	const char *v;

	sub_int(c, m, field, "retries", 0, MAX_RETRIES, &s->retries);
	if ((n = ymap_get(m, "backoff"))) {
		f = path_key(field, "backoff");
		if (!expect_map(c, n, f)) {
			check_keys(c, n, f, backoff_keys, NELEM(backoff_keys));
			long long initial = s->initial_ms, max = s->max_ms;
			sub_duration(c, n, f, "initial", 0, &initial);
			sub_duration(c, n, f, "max", 0, &max);
			sub_number(c, n, f, "multiplier", 1.0, 100.0, &s->multiplier);
			sub_enum(c, n, f, "jitter", jitter_vals, NELEM(jitter_vals), &s->jitter);
			if (initial > max)
				ctx_err(c, n, f, "initial (%lldms) is greater than max (%lldms)",
				        initial, max);
			s->initial_ms = initial;
			s->max_ms = max;
		}
		free(f);
	}
	sub_duration(c, m, field, "timeout", 1, &s->timeout_ms);
	sub_enum(c, m, field, "priority", priority_vals, NELEM(priority_vals), &s->priority);
	sub_enum(c, m, field, "trigger", trigger_vals, NELEM(trigger_vals), &s->trigger);
	sub_enum(c, m, field, "broadcast_success", bsuccess_vals, NELEM(bsuccess_vals),
	         &s->bsuccess);
	if ((n = ymap_get(m, "pool"))) {
		f = path_key(field, "pool");
		if (!get_name(c, n, f, "pool name", 64, &v))
			s->pool = v;
		free(f);
	}
	if ((n = ymap_get(m, "route"))) {
		f = path_key(field, "route");
		if (!get_string(c, n, f, &v)) {
			if (valid_route(v))
				s->route = v;
			else
				ctx_err(c, n, f,
				        "expected round-robin, random, least-loaded, broadcast, "
				        "executor:<id> or label:<label>, got '%s'",
				        v);
		}
		free(f);
	}
	if ((n = ymap_get(m, "breaker"))) {
		f = path_key(field, "breaker");
		int b = ynode_bool(n);
		if (b >= 0) {
			s->br.on = b;
		} else if (ynode_is_null(n)) {
			s->br.on = 0;
		} else if (!expect_map(c, n, f)) {
			check_keys(c, n, f, breaker_keys, NELEM(breaker_keys));
			s->br.on = 1;
			const struct ynode *nm = ymap_get(n, "name");
			if (nm) {
				char *ff = path_key(f, "name");
				if (!get_string(c, nm, ff, &v))
					s->br.name = v;
				free(ff);
			}
			sub_int(c, n, f, "failures", 1, 100000, &s->br.failures);
			sub_duration(c, n, f, "window", 1, &s->br.window_ms);
			sub_number(c, n, f, "failure_rate", 0.0, 1.0, &s->br.rate);
			sub_duration(c, n, f, "open_for", 1, &s->br.open_for_ms);
			sub_int(c, n, f, "half_open_probes", 1, 1000, &s->br.probes);
		}
		free(f);
	}
}

/* The authority of an http(s) URL without user info ("host:port"), or
 * NULL when it is templated or missing. A new string. */
static char *url_host(const char *url)
{
	const char *p = strstr(url, "://");
	if (!p)
		return NULL;
	p += 3;
	size_t n = strcspn(p, "/?#");
	const char *at = memchr(p, '@', n);
	if (at) {
		n -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	if (n == 0 || memchr(p, '$', n))
		return NULL;
	char *h = xstrndup(p, n);
	for (char *q = h; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	return h;
}

/* A YAML value as JSON for an http body: plain scalars are typed. */
static json_t *to_json(const struct ynode *n)
{
	long long i;
	if (n->kind == YN_SEQ) {
		json_t *a = json_array();
		for (size_t k = 0; k < n->n; k++)
			json_array_append_new(a, to_json(n->items[k]));
		return a;
	}
	if (n->kind == YN_MAP) {
		json_t *o = json_object();
		for (size_t k = 0; k < n->n; k++)
			json_object_set_new(o, n->items[2 * k]->str, to_json(n->items[2 * k + 1]));
		return o;
	}
	if (n->quoted)
		return json_string(n->str);
	if (ynode_is_null(n))
		return json_null();
	int b = ynode_bool(n);
	if (b >= 0)
		return json_boolean(b);
	if (ynode_int(n, &i) == 0)
		return json_integer(i);
	if (n->len > 0 && n->len < 32 && strspn(n->str, "0123456789.-+eE") == n->len &&
	    strchr("0123456789-+.", n->str[0])) {
		char *end;
		double d = strtod(n->str, &end);
		if (*end == '\0')
			return json_real(d);
	}
	return json_string(n->str);
}

/* Registers every scalar of a body mapping as a template site. */
static void body_sites(struct dsl_graph *g, const struct ynode *n, const char *field, size_t ti)
{
	if (n->kind == YN_SCALAR) {
		graph_add_site(g, n->str, n, field, ti, 0);
		return;
	}
	for (size_t k = 0; k < n->n; k++) {
		char *f =
		    n->kind == YN_SEQ ? path_idx(field, k) : path_key(field, n->items[2 * k]->str);
		body_sites(g, n->kind == YN_SEQ ? n->items[k] : n->items[2 * k + 1], f, ti);
		free(f);
	}
}

static json_t *build_env(struct dsl_graph *g, const struct ynode *n, const char *field, size_t ti)
{
	struct dsl_ctx *c = g->c;
	json_t *env = json_object();
	if (!n || ynode_is_null(n) || expect_map(c, n, field))
		return env;
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *k = n->items[2 * i], *v = n->items[2 * i + 1];
		char *f = path_key(field, k->str);
		size_t len = strlen(k->str);
		if (len == 0 || len > 128 || isdigit((unsigned char)k->str[0]) ||
		    strspn(k->str,
		           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
		        len)
			ctx_err(c, k, f,
			        "invalid environment variable name '%s': use letters, digits and "
			        "'_', not starting with a digit",
			        k->str);
		else if (!strncmp(k->str, "WF_", 3))
			ctx_err(c, k, f, "'%s': names starting with WF_ are reserved for wf",
			        k->str);
		const char *s;
		if (v->kind == YN_SCALAR && ynode_is_null(v))
			s = "";
		else if (get_string(c, v, f, &s))
			s = NULL;
		if (s) {
			graph_add_site(g, s, v, f, ti, 0);
			json_object_set_new(env, k->str, jstr(c, v, f, s));
		}
		free(f);
	}
	return env;
}

static int status_cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

static json_t *build_expect(struct dsl_ctx *c, const struct ynode *n, const char *field)
{
	static const long long def[] = {200, 201, 202, 203, 204, 205, 206, 207, 208, 226};
	json_t *a = json_array();
	if (!n) {
		for (size_t i = 0; i < NELEM(def); i++)
			json_array_append_new(a, json_integer(def[i]));
		return a;
	}
	size_t cnt = n->kind == YN_SEQ ? n->n : 1;
	long long *v = xcalloc(cnt ? cnt : 1, sizeof(*v));
	size_t nv = 0;
	if (n->kind == YN_SEQ && n->n == 0)
		ctx_err(c, n, field, "expected at least one HTTP status code");
	for (size_t i = 0; i < cnt; i++) {
		const struct ynode *e = n->kind == YN_SEQ ? n->items[i] : n;
		char *f = n->kind == YN_SEQ ? path_idx(field, i) : xstrdup(field);
		if (!get_int(c, e, f, 100, 599, &v[nv]))
			nv++;
		free(f);
	}
	qsort(v, nv, sizeof(*v), status_cmp);
	for (size_t i = 0; i < nv; i++)
		if (i == 0 || v[i] != v[i - 1])
			json_array_append_new(a, json_integer(v[i]));
	free(v);
	return a;
}

static int has_header(const json_t *h, const char *name)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)h, k, v) if (!strcasecmp(k, name)) return 1;
	return 0;
}

static json_t *build_http(struct dsl_graph *g, const struct ynode *n, const char *field, size_t ti,
                          long long task_timeout, char **host)
{
	struct dsl_ctx *c = g->c;
	json_t *st = json_pack("{s:s}", "type", "http");
	const char *s;
	char *f;
	if (expect_map(c, n, field))
		return st;
	check_keys(c, n, field, http_keys, NELEM(http_keys));

	const char *method = "GET";
	const struct ynode *m = ymap_get(n, "method");
	f = path_key(field, "method");
	if (m && !get_string(c, m, f, &s)) {
		size_t i;
		for (i = 0; i < NELEM(method_vals); i++)
			if (!strcasecmp(s, method_vals[i]))
				break;
		if (i < NELEM(method_vals))
			method = method_vals[i];
		else
			ctx_err(c, m, f,
			        "expected GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS, got '%s'",
			        s);
	}
	free(f);
	json_object_set_new(st, "method", json_string(method));

	const struct ynode *u = ymap_get(n, "url");
	f = path_key(field, "url");
	if (!u) {
		ctx_err(c, n, f, "missing required key 'url'");
	} else if (!get_string(c, u, f, &s)) {
		if (strncmp(s, "http://", 7) && strncmp(s, "https://", 8) && strncmp(s, "${", 2))
			ctx_err(c, u, f, "expected an http:// or https:// URL, got '%s'", s);
		else if (strpbrk(s, " \t\r\n"))
			ctx_err(c, u, f, "a URL must not contain white space");
		else {
			graph_add_site(g, s, u, f, ti, 0);
			json_object_set_new(st, "url", jstr(c, u, f, s));
			*host = url_host(s);
		}
	}
	free(f);

	json_t *headers = json_object();
	const struct ynode *h = ymap_get(n, "headers");
	f = path_key(field, "headers");
	if (h && !ynode_is_null(h) && !expect_map(c, h, f)) {
		for (size_t i = 0; i < h->n; i++) {
			const struct ynode *k = h->items[2 * i], *v = h->items[2 * i + 1];
			char *ff = path_key(f, k->str);
			size_t kl = strlen(k->str);
			if (kl == 0 ||
			    strspn(k->str, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			                   "0123456789!#$%&'*+-.^_`|~") != kl)
				ctx_err(c, k, ff, "invalid HTTP header name '%s'", k->str);
			else if (!get_string(c, v, ff, &s)) {
				if (strpbrk(s, "\r\n"))
					ctx_err(c, v, ff,
					        "a header value must not contain line breaks");
				else {
					graph_add_site(g, s, v, ff, ti, 0);
					json_object_set_new(headers, k->str, jstr(c, v, ff, s));
				}
			}
			free(ff);
		}
	}
	free(f);

	const struct ynode *b = ymap_get(n, "body");
	f = path_key(field, "body");
	if (!b || ynode_is_null(b)) {
		json_object_set_new(st, "body", json_null());
	} else if (b->kind == YN_SCALAR) {
		graph_add_site(g, b->str, b, f, ti, 0);
		json_object_set_new(st, "body", jstr(c, b, f, b->str));
	} else {
		json_t *j = to_json(b);
		char *text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
		json_decref(j);
		if (!text) {
			ctx_err(c, b, f, "the body is not valid UTF-8");
		} else {
			body_sites(g, b, f, ti);
			json_object_set_new(st, "body", json_string(text));
			if (!has_header(headers, "Content-Type"))
				json_object_set_new(headers, "Content-Type",
				                    json_string("application/json"));
		}
		free(text);
	}
	free(f);
	json_object_set_new(st, "headers", headers);

	f = path_key(field, "expect_status");
	json_object_set_new(st, "expect_status", build_expect(c, ymap_get(n, "expect_status"), f));
	free(f);

	long long t =
	    task_timeout < DEFAULT_HTTP_TIMEOUT_MS ? task_timeout : DEFAULT_HTTP_TIMEOUT_MS;
	sub_duration(c, n, field, "timeout", 1, &t);
	json_object_set_new(st, "timeout_ms", json_integer(t));
	return st;
}

/* Builds the step; *kind is its type name or NULL. */
static json_t *build_step(struct dsl_graph *g, size_t ti, const struct settings *s,
                          const char **kind, char **host)
{
	struct dsl_task *t = &g->tasks[ti];
	struct dsl_ctx *c = g->c;
	const struct ynode *m = t->node, *n = NULL;
	const char *found[NELEM(step_keys)];
	size_t nfound = 0;
	for (size_t i = 0; i < NELEM(step_keys); i++)
		if (ymap_get(m, step_keys[i]))
			found[nfound++] = step_keys[i];
	*kind = NULL;
	if (nfound == 0) {
		ctx_err(c, m, t->field,
		        "task '%s' has no step: expected one of shell, sh, http, noop or sleep",
		        t->name);
		return json_null();
	}
	if (nfound > 1) {
		ctx_err(c, ymap_get(m, found[1]), t->field,
		        "task '%s' has more than one step (%s and %s): expected exactly one",
		        t->name, found[0], found[1]);
		return json_null();
	}
	*kind = found[0];
	n = ymap_get(m, found[0]);
	char *f = path_key(t->field, found[0]);
	json_t *st = NULL;
	const char *v;

	if (!strcmp(*kind, "shell")) {
		st = json_pack("{s:s}", "type", "shell");
		json_t *argv = json_array();
		if (n->kind == YN_SCALAR && !ynode_is_null(n)) {
			ctx_err(c, n, f,
			        "expected a list of arguments such as [\"ls\", \"-l\"] (argv, no "
			        "shell); to run a shell script write sh: \"...\" instead");
		} else if (n->kind != YN_SEQ || n->n == 0) {
			ctx_err(c, n, f, "expected a non-empty list of arguments, got a %s",
			        n->kind == YN_SEQ ? "empty list" : ynode_kind_name(n));
		} else {
			for (size_t i = 0; i < n->n; i++) {
				char *ff = path_idx(f, i);
				if (!get_string(c, n->items[i], ff, &v)) {
					if (i == 0 && !*v)
						ctx_err(c, n->items[i], ff,
						        "the program name must not be empty");
					graph_add_site(g, v, n->items[i], ff, ti, 0);
					json_array_append_new(argv, jstr(c, n->items[i], ff, v));
				}
				free(ff);
			}
		}
		json_object_set_new(st, "argv", argv);
	} else if (!strcmp(*kind, "sh")) {
		st = json_pack("{s:s}", "type", "sh");
		if (!get_string(c, n, f, &v)) {
			if (!*v)
				ctx_err(c, n, f, "the script is empty");
			graph_add_site(g, v, n, f, ti, 1);
			json_object_set_new(st, "script", jstr(c, n, f, v));
		}
	} else if (!strcmp(*kind, "http")) {
		st = build_http(g, n, f, ti, s->timeout_ms, host);
	} else if (!strcmp(*kind, "noop")) {
		st = json_pack("{s:s}", "type", "noop");
		if (!(n->kind == YN_MAP && n->n == 0) && !ynode_is_null(n) && ynode_bool(n) != 1)
			ctx_err(c, n, f, "expected {} or true");
	} else {
		long long ms = 0;
		st = json_pack("{s:s}", "type", "sleep");
		if (get_duration(c, n, f, &ms))
			ms = 0;
		json_object_set_new(st, "duration_ms", json_integer(ms));
	}
	free(f);

	int runs_cmd = !strcmp(*kind, "shell") || !strcmp(*kind, "sh");
	const struct ynode *env = ymap_get(m, "env"), *dir = ymap_get(m, "dir");
	f = path_key(t->field, "env");
	if (runs_cmd)
		json_object_set_new(st, "env", build_env(g, env, f, ti));
	else if (env)
		ctx_err(c, env, f, "env applies to shell and sh steps only");
	free(f);
	f = path_key(t->field, "dir");
	if (runs_cmd) {
		if (dir && !ynode_is_null(dir) && !get_string(c, dir, f, &v))
			json_object_set_new(st, "dir", jstr(c, dir, f, v));
		else
			json_object_set_new(st, "dir", json_null());
	} else if (dir) {
		ctx_err(c, dir, f, "dir applies to shell and sh steps only");
	}
	free(f);
	return st;
}

static json_t *build_outputs(struct dsl_ctx *c, struct dsl_task *t)
{
	const struct ynode *n = ymap_get(t->node, "outputs");
	json_t *a = json_array();
	if (!n || ynode_is_null(n))
		return a;
	char *f = path_key(t->field, "outputs");
	if (n->kind != YN_SEQ) {
		ctx_err(c, n, f, "expected a list of output keys, got a %s", ynode_kind_name(n));
		free(f);
		return a;
	}
	for (size_t i = 0; i < n->n; i++) {
		char *ff = path_idx(f, i);
		const char *v;
		if (!get_string(c, n->items[i], ff, &v)) {
			size_t len = strlen(v);
			size_t j;
			if (len == 0 || len > 64 ||
			    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567"
			              "89_-") != len) {
				ctx_err(c, n->items[i], ff,
				        "invalid output key '%s': use 1 to 64 letters, digits, '_' "
				        "and '-'",
				        v);
			} else {
				for (j = 0; j < json_array_size(a); j++)
					if (!strcmp(json_string_value(json_array_get(a, j)), v))
						break;
				if (j < json_array_size(a))
					ctx_err(c, n->items[i], ff, "output '%s' is listed twice",
					        v);
				else
					json_array_append_new(a, json_string(v));
			}
		}
		free(ff);
	}
	free(f);
	/* sorted: order carries no meaning */
	size_t cnt = json_array_size(a);
	for (size_t i = 1; i < cnt; i++)
		for (size_t j = i; j > 0; j--) {
			json_t *x = json_array_get(a, j - 1), *y = json_array_get(a, j);
			if (strcmp(json_string_value(x), json_string_value(y)) <= 0)
				break;
			json_incref(x);
			json_array_set(a, j - 1, y);
			json_array_set_new(a, j, x);
		}
	return a;
}

static json_t *build_task(struct dsl_graph *g, size_t ti, const struct settings *defs)
{
	struct dsl_task *t = &g->tasks[ti];
	struct dsl_ctx *c = g->c;
	struct settings s = *defs;
	const char *kind = NULL;
	char *host = NULL;
	json_t *o = json_object();

	parse_settings(c, t->node, t->field, &s);
	json_object_set_new(o, "name", json_string(t->name));
	json_object_set_new(o, "step", build_step(g, ti, &s, &kind, &host));
	json_object_set_new(o, "retries", json_integer(s.retries));
	json_object_set_new(o, "backoff",
	                    json_pack("{s:I,s:I,s:f,s:s}", "initial_ms", (json_int_t)s.initial_ms,
	                              "max_ms", (json_int_t)s.max_ms, "multiplier", s.multiplier,
	                              "jitter", s.jitter));
	json_object_set_new(o, "timeout_ms", json_integer(s.timeout_ms));
	json_object_set_new(o, "priority", json_string(s.priority));
	json_object_set_new(o, "pool", json_string(s.pool));
	json_object_set_new(o, "route", json_string(s.route));
	json_object_set_new(o, "broadcast_success", json_string(s.bsuccess));
	json_object_set_new(o, "trigger", json_string(s.trigger));
	const struct ynode *bs = ymap_get(t->node, "broadcast_success");
	if (bs && strcmp(s.route, "broadcast") != 0) {
		char *f = path_key(t->field, "broadcast_success");
		ctx_err(c, bs, f, "broadcast_success applies only to route: broadcast");
		free(f);
	}
	if (s.br.on) {
		const char *name = s.br.name ? s.br.name : host ? host : t->name;
		json_object_set_new(o, "breaker",
		                    json_pack("{s:s,s:I,s:I,s:f,s:I,s:I}", "name", name, "failures",
		                              (json_int_t)s.br.failures, "window_ms",
		                              (json_int_t)s.br.window_ms, "failure_rate", s.br.rate,
		                              "open_for_ms", (json_int_t)s.br.open_for_ms,
		                              "half_open_probes", (json_int_t)s.br.probes));
	} else {
		json_object_set_new(o, "breaker", json_null());
	}
	json_t *outs = build_outputs(c, t);
	t->outputs = outs;
	json_object_set_new(o, "outputs", outs);
	free(host);
	return o;
}

static int task_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dsl_task *)a)->name, ((const struct dsl_task *)b)->name);
}

json_t *dsl_build_tasks(struct dsl_ctx *c, const struct ynode *root, json_t *params)
{
	struct dsl_graph g = {.c = c, .params = params};
	struct settings defs = builtin;
	json_t *arr = json_array();
	const struct ynode *d = ymap_get(root, "defaults");
	const struct ynode *tn = ymap_get(root, "tasks");

	if (d && !ynode_is_null(d) && !expect_map(c, d, "defaults")) {
		check_keys(c, d, "defaults", default_keys, NELEM(default_keys));
		parse_settings(c, d, "defaults", &defs);
	}
	if (!tn) {
		ctx_err(c, root, "tasks",
		        "missing required key 'tasks' (a mapping of task names "
		        "to tasks)");
		goto out;
	}
	if (expect_map(c, tn, "tasks"))
		goto out;
	if (tn->n == 0) {
		ctx_err(c, tn, "tasks", "a workflow needs at least one task");
		goto out;
	}
	if (tn->n > DSL_MAX_TASKS) {
		ctx_err(c, tn, "tasks", "%zu tasks: the limit is %d", tn->n, DSL_MAX_TASKS);
		goto out;
	}
	g.tasks = xcalloc(tn->n, sizeof(*g.tasks));
	for (size_t i = 0; i < tn->n; i++) {
		const struct ynode *k = tn->items[2 * i], *v = tn->items[2 * i + 1];
		char *f = path_key("tasks", k->str);
		if (!valid_name(k->str, 64)) {
			ctx_err(c, k, f,
			        "invalid task name '%s': use 1 to 64 characters from a-z, 0-9, '_' "
			        "and '-'",
			        k->str);
			free(f);
			continue;
		}
		if (expect_map(c, v, f)) {
			free(f);
			continue;
		}
		g.tasks[g.ntasks++] =
		    (struct dsl_task){.name = k->str, .key = k, .node = v, .field = f};
	}
	qsort(g.tasks, g.ntasks, sizeof(*g.tasks), task_cmp);
	for (size_t i = 0; i < g.ntasks; i++)
		check_keys(c, g.tasks[i].node, g.tasks[i].field, task_keys, NELEM(task_keys));
	graph_needs(&g);
	graph_cycles(&g);
	for (size_t i = 0; i < g.ntasks; i++) {
		json_t *o = build_task(&g, i, &defs);
		json_t *needs = json_array();
		for (size_t j = 0; j < g.tasks[i].nneeds; j++)
			json_array_append_new(needs,
			                      json_string(g.tasks[g.tasks[i].needs[j]].name));
		json_object_set_new(o, "needs", needs);
		json_array_append_new(arr, o);
	}
	graph_check_refs(&g);
out:
	graph_release(&g);
	return arr;
}
