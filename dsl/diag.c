/* Error collection and the typed getters that report what was expected. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dsl_int.h"
#include "xalloc.h"

static void add(struct dsl_ctx *c, int line, int col, const char *field, const char *fmt,
                va_list ap)
{
	if (c->too_many)
		return;
	if (c->nerrors >= DSL_MAX_ERRORS) {
		c->too_many = 1;
		line = col = 0;
		field = "";
		fmt = NULL;
	}
	if (c->nerrors == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->errors = xrealloc(c->errors, c->cap * sizeof(*c->errors));
	}
	struct dsl_error *e = &c->errors[c->nerrors++];
	e->file = xstrdup(c->file ? c->file : "<input>");
	e->line = line;
	e->col = col;
	e->field = xstrdup(field ? field : "");
	if (fmt)
		e->message = xvasprintf(fmt, ap);
	else
		e->message = xasprintf("too many errors; stopped after %d", DSL_MAX_ERRORS);
}

void ctx_err(struct dsl_ctx *c, const struct ynode *at, const char *field, const char *fmt, ...)
{
	va_list ap;
	if (at && at->bad)
		return;
	va_start(ap, fmt);
	add(c, at ? at->line : 0, at ? at->col : 0, field, fmt, ap);
	va_end(ap);
}

void ctx_err_at(struct dsl_ctx *c, int line, int col, const char *field, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add(c, line, col, field, fmt, ap);
	va_end(ap);
}

void ctx_sort_errors(struct dsl_ctx *c)
{
	/* insertion sort: stable, and error lists are short */
	for (size_t i = 1; i < c->nerrors; i++) {
		struct dsl_error e = c->errors[i];
		size_t j = i;
		while (j > 0 &&
		       (c->errors[j - 1].line > e.line ||
		        (c->errors[j - 1].line == e.line && c->errors[j - 1].col > e.col))) {
			c->errors[j] = c->errors[j - 1];
			j--;
		}
		c->errors[j] = e;
	}
}

int levenshtein(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return 99;
	int row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int prev = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int cur = row[j];
			int cost = a[i - 1] == b[j - 1] ? 0 : 1;
			int v = prev + cost;
			if (row[j] + 1 < v)
				v = row[j] + 1;
			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			row[j] = v;
			prev = cur;
		}
	}
	return row[lb];
}

const char *closest(const char *s, const char *const *cands, size_t n)
{
	const char *best = NULL;
	int bestd = 3;
	for (size_t i = 0; i < n; i++) {
		int d = levenshtein(s, cands[i]);
		if (d < bestd) {
			bestd = d;
			best = cands[i];
		}
	}
	return best;
}

char *path_key(const char *base, const char *key)
{
	if (!base || !*base)
		return xstrdup(key);
	return xasprintf("%s.%s", base, key);
}

char *path_idx(const char *base, size_t i)
{
	return xasprintf("%s[%zu]", base ? base : "", i);
}

int expect_map(struct dsl_ctx *c, const struct ynode *n, const char *field)
{
	if (n && n->kind == YN_MAP)
		return 0;
	ctx_err(c, n, field, "expected a mapping, got a %s", ynode_kind_name(n));
	return -1;
}

void check_keys(struct dsl_ctx *c, const struct ynode *m, const char *field,
                const char *const *allowed, size_t nallowed)
{
	if (!m || m->kind != YN_MAP)
		return;
	for (size_t i = 0; i < m->n; i++) {
		const struct ynode *k = m->items[2 * i];
		size_t j;
		for (j = 0; j < nallowed; j++)
			if (strcmp(k->str, allowed[j]) == 0)
				break;
		if (j < nallowed)
			continue;
		char *f = path_key(field, k->str);
		const char *hint = closest(k->str, allowed, nallowed);
		if (hint) {
			ctx_err(c, k, f, "unknown key '%s': did you mean '%s'?", k->str, hint);
		} else {
			struct buf b;
			buf_init(&b, 0);
			for (j = 0; j < nallowed; j++)
				if (buf_printf(&b, "%s%s", j ? ", " : "", allowed[j]))
					break;
			ctx_err(c, k, f, "unknown key '%s': expected one of %s", k->str,
			        b.data ? b.data : "");
			buf_release(&b);
		}
		free(f);
	}
}

int get_string(struct dsl_ctx *c, const struct ynode *n, const char *field, const char **out)
{
	if (!n || n->bad)
		return -1;
	if (n->kind != YN_SCALAR || ynode_is_null(n)) {
		ctx_err(c, n, field, "expected a string, got a %s", ynode_kind_name(n));
		return -1;
	}
	*out = n->str;
	return 0;
}

int get_int(struct dsl_ctx *c, const struct ynode *n, const char *field, long long min,
            long long max, long long *out)
{
	long long v;
	if (!n || n->bad)
		return -1;
	if (n->kind != YN_SCALAR || ynode_int(n, &v) || v < min || v > max) {
		if (n->kind == YN_SCALAR)
			ctx_err(c, n, field, "expected an integer from %lld to %lld, got '%s'", min,
			        max, n->str);
		else
			ctx_err(c, n, field, "expected an integer from %lld to %lld, got a %s", min,
			        max, ynode_kind_name(n));
		return -1;
	}
	*out = v;
	return 0;
}

int get_number(struct dsl_ctx *c, const struct ynode *n, const char *field, double min, double max,
               double *out)
{
	if (!n || n->bad)
		return -1;
	if (n->kind == YN_SCALAR && n->len > 0 && n->len < 32) {
		char *end;
		errno = 0;
		double v = strtod(n->str, &end);
		if (!errno && *end == '\0' && isfinite(v) && v >= min && v <= max &&
		    strspn(n->str, "0123456789.+-eE") == n->len) {
			*out = v;
			return 0;
		}
	}
	if (n->kind == YN_SCALAR)
		ctx_err(c, n, field, "expected a number from %g to %g, got '%s'", min, max, n->str);
	else
		ctx_err(c, n, field, "expected a number from %g to %g, got a %s", min, max,
		        ynode_kind_name(n));
	return -1;
}

int get_duration(struct dsl_ctx *c, const struct ynode *n, const char *field, long long *ms)
{
	if (!n || n->bad)
		return -1;
	if (n->kind == YN_SCALAR && dsl_parse_duration(n->str, ms) == 0)
		return 0;
	if (n->kind == YN_SCALAR)
		ctx_err(c, n, field,
		        "expected a duration such as 250ms, 30s, 5m, 2h, 1d, 1h30m or a number of "
		        "seconds, got '%s'",
		        n->str);
	else
		ctx_err(c, n, field,
		        "expected a duration such as 250ms, 30s, 5m, 2h, 1d, 1h30m or a number of "
		        "seconds, got a %s",
		        ynode_kind_name(n));
	return -1;
}

int get_enum(struct dsl_ctx *c, const struct ynode *n, const char *field, const char *const *vals,
             size_t nvals, const char **out)
{
	if (!n || n->bad)
		return -1;
	if (n->kind == YN_SCALAR)
		for (size_t i = 0; i < nvals; i++)
			if (strcmp(n->str, vals[i]) == 0) {
				*out = vals[i];
				return 0;
			}
	struct buf b;
	buf_init(&b, 0);
	for (size_t i = 0; i < nvals; i++)
		if (buf_printf(&b, "%s%s", i == 0 ? "" : i + 1 == nvals ? " or " : ", ", vals[i]))
			break;
	if (n->kind == YN_SCALAR)
		ctx_err(c, n, field, "expected %s, got '%s'", b.data, n->str);
	else
		ctx_err(c, n, field, "expected %s, got a %s", b.data, ynode_kind_name(n));
	buf_release(&b);
	return -1;
}

int valid_name(const char *s, size_t maxlen)
{
	size_t len = strlen(s);
	if (len == 0 || len > maxlen)
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == len;
}

int get_name(struct dsl_ctx *c, const struct ynode *n, const char *field, const char *what,
             size_t maxlen, const char **out)
{
	if (get_string(c, n, field, out))
		return -1;
	if (valid_name(*out, maxlen))
		return 0;
	ctx_err(c, n, field, "invalid %s '%s': use 1 to %zu characters from a-z, 0-9, '_' and '-'",
	        what, *out, maxlen);
	return -1;
}

json_t *jstr(struct dsl_ctx *c, const struct ynode *n, const char *field, const char *s)
{
	json_t *j = json_string(s);
	if (!j)
		ctx_err(c, n, field, "the string is not valid UTF-8");
	return j;
}
