/* Validation of the workflow level: name, schedule, params, notifications.
 * Tasks are in tasks.c. Every check reports its error and goes on, so one
 * pass lists all errors of a file. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"
#include "dsl_int.h"
#include "xalloc.h"

static const char *const top_keys[] = {"name",       "description",     "namespace", "schedule",
                                       "params",     "defaults",        "tasks",     "on_success",
                                       "on_failure", "max_active_runs", "deadline"};
static const char *const schedule_keys[] = {"cron",    "at",          "timezone", "jitter",
                                            "catchup", "catchup_max", "overlap",  "dst"};
static const char *const dst_keys[] = {"gap", "repeat"};
static const char *const catchup_vals[] = {"none", "latest", "all"};
static const char *const overlap_vals[] = {"allow", "skip", "queue", "replace"};
static const char *const gap_vals[] = {"shift", "next", "skip"};
static const char *const repeat_vals[] = {"once", "twice"};
static const char *const param_keys[] = {"default", "description", "required"};
static const char *const notify_keys[] = {"webhook", "email"};

#define MAX_CATCHUP     100000
#define MAX_ACTIVE_RUNS 100000

static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Parses an RFC 3339 timestamp with an offset into UTC "...Z" text. */
static int parse_rfc3339(const char *s, char *out, size_t outlen)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, ms = 0, off = 0;
	if (strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
	    s[7] != '-' || digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
	    digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
	    digits(s + 17, 2, &sec))
		return -1;
	const char *p = s + 19;
	if (*p == '.') {
		int nd = 0;
		p++;
		while (*p >= '0' && *p <= '9') {
			if (nd < 3)
				ms = ms * 10 + (*p - '0');
			nd++;
			p++;
		}
		if (nd == 0 || nd > 9)
			return -1;
		for (; nd < 3; nd++)
			ms *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;
		if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 ||
		    om > 59)
			return -1;
		off = (oh * 60 + om) * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -1;
	}
	if (*p || y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
		return -1;
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > mdays[mo - 1] + (mo == 2 && leap))
		return -1;
	time_t t = (time_t)(days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 +
	                    mi * 60 + sec - off * 60);
	struct tm tm;
	if (!gmtime_r(&t, &tm))
		return -1;
	size_t n = strftime(out, outlen, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n == 0)
		return -1;
	if (ms)
		snprintf(out + n, outlen - n, ".%03dZ", ms);
	else
		snprintf(out + n, outlen - n, "Z");
	return 0;
}

static void enum_field(struct dsl_ctx *c, json_t *obj, const struct ynode *m, const char *key,
                       const char *out_key, const char *field, const char *const *vals,
                       size_t nvals, const char *def)
{
	const struct ynode *n = ymap_get(m, key);
	const char *v = def;
	if (n) {
		char *f = path_key(field, key);
		if (get_enum(c, n, f, vals, nvals, &v))
			v = def;
		free(f);
	}
	json_object_set_new(obj, out_key, json_string(v));
}

static json_t *build_schedule(struct dsl_ctx *c, const struct ynode *n, const char *name)
{
	if (!n || ynode_is_null(n))
		return json_null();
	if (expect_map(c, n, "schedule"))
		return json_null();
	check_keys(c, n, "schedule", schedule_keys, NELEM(schedule_keys));
	json_t *s = json_object();
	const struct ynode *cron = ymap_get(n, "cron"), *at = ymap_get(n, "at");
	const char *v;
	if (cron && at) {
		ctx_err(c, at, "schedule.at", "a schedule has either 'cron' or 'at', not both");
	} else if (!cron && !at) {
		ctx_err(c, n, "schedule",
		        "missing 'cron' (a cron expression) or 'at' (an RFC 3339 time)");
	} else if (cron && !get_string(c, cron, "schedule.cron", &v)) {
		struct cron_expr *e = NULL;
		char err[256] = "";
		if (cron_parse(v, name, &e, err, sizeof(err)) != 0)
			ctx_err(c, cron, "schedule.cron", "invalid cron expression '%s': %s", v,
			        err[0] ? err : "cannot parse");
		else
			json_object_set_new(s, "cron", jstr(c, cron, "schedule.cron", v));
		cron_free(e);
	} else if (at && !get_string(c, at, "schedule.at", &v)) {
		char utc[64];
		if (parse_rfc3339(v, utc, sizeof(utc)))
			ctx_err(c, at, "schedule.at",
			        "expected an RFC 3339 time with an offset such as "
			        "2026-12-01T09:00:00Z or 2026-12-01T10:00:00+01:00, got '%s'",
			        v);
		else
			json_object_set_new(s, "at", json_string(utc));
	}

	const char *tz = "UTC";
	const struct ynode *tzn = ymap_get(n, "timezone");
	if (tzn && !get_string(c, tzn, "schedule.timezone", &v)) {
		if (!cron_tz_valid(v))
			ctx_err(c, tzn, "schedule.timezone",
			        "unknown time zone '%s': expected an IANA name such as "
			        "Europe/Berlin or UTC",
			        v);
		else
			tz = v;
	}
	json_object_set_new(s, "timezone", json_string(tz));

	long long ms = 0;
	const struct ynode *j = ymap_get(n, "jitter");
	if (j && get_duration(c, j, "schedule.jitter", &ms))
		ms = 0;
	json_object_set_new(s, "jitter_ms", json_integer(ms));

	enum_field(c, s, n, "catchup", "catchup", "schedule", catchup_vals, NELEM(catchup_vals),
	           "latest");
	long long cmax = 100;
	const struct ynode *cm = ymap_get(n, "catchup_max");
	if (cm && get_int(c, cm, "schedule.catchup_max", 1, MAX_CATCHUP, &cmax))
		cmax = 100;
	json_object_set_new(s, "catchup_max", json_integer(cmax));
	enum_field(c, s, n, "overlap", "overlap", "schedule", overlap_vals, NELEM(overlap_vals),
	           "allow");

	const struct ynode *dst = ymap_get(n, "dst");
	if (dst && expect_map(c, dst, "schedule.dst"))
		dst = NULL;
	check_keys(c, dst, "schedule.dst", dst_keys, NELEM(dst_keys));
	enum_field(c, s, dst, "gap", "dst_gap", "schedule.dst", gap_vals, NELEM(gap_vals), "shift");
	enum_field(c, s, dst, "repeat", "dst_repeat", "schedule.dst", repeat_vals,
	           NELEM(repeat_vals), "once");
	/* the cron module owns the words: make sure both sides agree */
	enum cron_dst_gap g;
	enum cron_dst_repeat r;
	if (cron_dst_gap_parse(json_string_value(json_object_get(s, "dst_gap")), &g) ||
	    cron_dst_repeat_parse(json_string_value(json_object_get(s, "dst_repeat")), &r))
		ctx_err(c, dst ? dst : n, "schedule.dst", "DST policy not supported by cron");
	return s;
}

static int valid_param_name(const char *s)
{
	size_t len = strlen(s);
	return len >= 1 && len <= 64 && !(s[0] >= '0' && s[0] <= '9') &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == len;
}

static json_t *build_params(struct dsl_ctx *c, const struct ynode *n)
{
	json_t *params = json_object();
	if (!n || ynode_is_null(n) || expect_map(c, n, "params"))
		return params;
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *k = n->items[2 * i], *v = n->items[2 * i + 1];
		char *f = path_key("params", k->str);
		json_t *p = json_object();
		json_t *def = json_null();
		int required = 0;
		const char *s;
		if (!valid_param_name(k->str))
			ctx_err(
			    c, k, f,
			    "invalid parameter name '%s': use 1 to 64 characters from a-z, 0-9 "
			    "and '_', not starting with a digit (steps get it as $WF_PARAM_<NAME>)",
			    k->str);
		if (v->kind == YN_SCALAR) {
			if (!ynode_is_null(v))
				def = jstr(c, v, f, v->str);
		} else if (v->kind == YN_MAP) {
			check_keys(c, v, f, param_keys, NELEM(param_keys));
			const struct ynode *d = ymap_get(v, "default");
			const struct ynode *desc = ymap_get(v, "description");
			const struct ynode *req = ymap_get(v, "required");
			char *ff = path_key(f, "default");
			if (d && !ynode_is_null(d)) {
				if (d->kind != YN_SCALAR)
					ctx_err(c, d, ff, "expected a string, got a %s",
					        ynode_kind_name(d));
				else
					def = jstr(c, d, ff, d->str);
			}
			free(ff);
			ff = path_key(f, "description");
			if (desc && !get_string(c, desc, ff, &s))
				json_object_set_new(p, "description", jstr(c, desc, ff, s));
			free(ff);
			ff = path_key(f, "required");
			if (req) {
				required = ynode_bool(req);
				if (required < 0) {
					ctx_err(c, req, ff, "expected true or false, got '%s'",
					        req->kind == YN_SCALAR ? req->str
					                               : ynode_kind_name(req));
					required = 0;
				} else if (required && d && !ynode_is_null(d)) {
					ctx_err(c, req, ff,
					        "a required parameter has no default: remove "
					        "'default' or 'required'");
				}
			}
			free(ff);
		} else {
			ctx_err(c, v, f,
			        "expected a default value or a mapping with default, description "
			        "and required, got a %s",
			        ynode_kind_name(v));
		}
		json_object_set_new(p, "default", def ? def : json_null());
		json_object_set_new(p, "required", json_boolean(required));
		json_object_set_new(params, k->str, p);
		free(f);
	}
	return params;
}

static void notify_one(struct dsl_ctx *c, const struct ynode *n, const char *field, json_t *list)
{
	if (expect_map(c, n, field))
		return;
	check_keys(c, n, field, notify_keys, NELEM(notify_keys));
	const struct ynode *w = ymap_get(n, "webhook"), *e = ymap_get(n, "email");
	const char *s;
	if ((w && e) || (!w && !e)) {
		ctx_err(c, n, field, "expected exactly one of 'webhook: URL' or 'email: ADDRESS'");
		return;
	}
	if (w) {
		char *f = path_key(field, "webhook");
		if (!get_string(c, w, f, &s)) {
			if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
				ctx_err(c, w, f, "expected an http:// or https:// URL, got '%s'",
				        s);
			else
				json_array_append_new(
				    list, json_pack("{s:o}", "webhook", jstr(c, w, f, s)));
		}
		free(f);
	} else {
		char *f = path_key(field, "email");
		if (!get_string(c, e, f, &s)) {
			const char *at = strchr(s, '@');
			if (!at || at == s || !at[1] || strchr(at + 1, '@') ||
			    strpbrk(s, " \t\r\n,;<>"))
				ctx_err(c, e, f,
				        "expected an e-mail address such as ops@example.com, got "
				        "'%s'",
				        s);
			else
				json_array_append_new(
				    list, json_pack("{s:o}", "email", jstr(c, e, f, s)));
		}
		free(f);
	}
}

static json_t *build_notify(struct dsl_ctx *c, const struct ynode *n, const char *field)
{
	json_t *list = json_array();
	if (!n || ynode_is_null(n))
		return list;
	if (n->kind == YN_SEQ) {
		for (size_t i = 0; i < n->n; i++) {
			char *f = path_idx(field, i);
			notify_one(c, n->items[i], f, list);
			free(f);
		}
	} else if (n->kind == YN_MAP) {
		notify_one(c, n, field, list);
	} else {
		ctx_err(c, n, field,
		        "expected {webhook: URL}, {email: ADDRESS} or a list of these, got a %s",
		        ynode_kind_name(n));
	}
	return list;
}

json_t *dsl_build(struct dsl_ctx *c, const struct ynode *root)
{
	if (root->kind != YN_MAP) {
		ctx_err(c, root, "",
		        "expected a mapping with 'name' and 'tasks' at the top level, got a %s",
		        ynode_kind_name(root));
		return NULL;
	}
	check_keys(c, root, "", top_keys, NELEM(top_keys));
	json_t *dag = json_object();
	const struct ynode *n;
	const char *name = "", *s;

	n = ymap_get(root, "name");
	if (!n)
		ctx_err(c, root, "name", "missing required key 'name' (the workflow's name)");
	else if (get_name(c, n, "name", "workflow name", 128, &s) == 0)
		name = s;
	json_object_set_new(dag, "name", json_string(name));

	s = "";
	n = ymap_get(root, "description");
	if (n && !ynode_is_null(n) && get_string(c, n, "description", &s))
		s = "";
	json_t *desc = jstr(c, n, "description", s);
	json_object_set_new(dag, "description", desc ? desc : json_string(""));

	s = "default";
	n = ymap_get(root, "namespace");
	if (n && get_name(c, n, "namespace", "namespace", 64, &s))
		s = "default";
	json_object_set_new(dag, "namespace", json_string(s));

	json_object_set_new(dag, "schedule", build_schedule(c, ymap_get(root, "schedule"), name));
	json_t *params = build_params(c, ymap_get(root, "params"));
	json_object_set_new(dag, "params", params);

	long long v = 0;
	n = ymap_get(root, "max_active_runs");
	if (n && get_int(c, n, "max_active_runs", 0, MAX_ACTIVE_RUNS, &v))
		v = 0;
	json_object_set_new(dag, "max_active_runs", json_integer(v));

	n = ymap_get(root, "deadline");
	if (n && !ynode_is_null(n) && !get_duration(c, n, "deadline", &v)) {
		if (v <= 0)
			ctx_err(c, n, "deadline", "expected a duration greater than zero");
		json_object_set_new(dag, "deadline_ms", json_integer(v));
	} else {
		json_object_set_new(dag, "deadline_ms", json_null());
	}
	json_object_set_new(dag, "on_success",
	                    build_notify(c, ymap_get(root, "on_success"), "on_success"));
	json_object_set_new(dag, "on_failure",
	                    build_notify(c, ymap_get(root, "on_failure"), "on_failure"));

	json_object_set_new(dag, "tasks", dsl_build_tasks(c, root, params));
	return dag;
}
