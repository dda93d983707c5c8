/* Cron expressions: parsing and next fire times. See cron.h; the English
 * descriptions are at the end of this file.
 *
 * Representation: one bit mask per field (second, minute, hour,
 * day-of-month, month, day-of-week) plus the day specials (L, L-n, nW, LW,
 * dL, d#k). A 5-field expression has the seconds mask {0}.
 *
 * Day matching: when both day-of-month and day-of-week are restricted
 * (neither is exactly "*" or "?"), a day matches if either matches (the
 * classic Vixie rule); otherwise only the restricted one counts. Unlike
 * Vixie cron, "*" followed by a step ("*" + "/2") counts as restricted.
 *
 * Next fire time, in a zone. The search walks UTC "spans" of constant
 * offset (between two transitions). Inside a span the wall clock is
 * monotonic, so the first matching wall-clock time after the lower bound,
 * converted with the span's offset, is the answer if it falls inside the
 * span; else the search moves to the next span. Wall-clock times are found
 * field by field (month, day, hour, minute, second jumps), never by
 * scanning minutes. The exact DST rules:
 *
 *  - Spring forward (a gap: local times [T+before, T+after) never occur,
 *    T the transition instant). A schedule time in the gap fires
 *      CRON_GAP_SHIFT: at local time + gap length, i.e. at the UTC instant
 *        local - before (02:30 in a 02:00-03:00 gap fires at 03:30 new
 *        time; what java.time's ZonedDateTime.of does);
 *      CRON_GAP_NEXT: at T (03:00 new time), once however many gap times
 *        matched;
 *      CRON_GAP_SKIP: not at all.
 *    A shifted time equal to a regular fire time fires once.
 *  - Fall back (a fold: local times [T+after, T+before) occur twice).
 *    CRON_REPEAT_ONCE fires at the first occurrence only (the earlier
 *    offset); CRON_REPEAT_TWICE at both.
 *  - Interval-style schedules, those whose hour field covers all 24 hours
 *    ("*" + "/15 * * * *", "0 * * * *"), keep their real interval: during a
 *    fold they fire in both passes whatever the repeat policy, and in a gap
 *    they fire nothing extra whatever the gap policy (the times in the gap
 *    simply do not exist; the next regular time follows).
 *
 * The search is bounded to CRON_SEARCH_YEARS years after `after` (every
 * valid expression fires at least once in any 28-year window of 1901-2099,
 * which the parser checks) and to a fixed number of loop iterations. */
#include "cron.h"
#include "tz.h"
#include "xalloc.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CRON_SEARCH_YEARS 30
#define CRON_MAX_EXPR     1024
#define CRON_MAX_ITEM     64
#define NONE              INT64_MIN
/* `after` must lie in years 1..9000 so that no arithmetic overflows. */
#define MIN_AFTER (-62135596800LL + 2 * 86400)
#define MAX_AFTER 221845392000LL

#include "cron_int.h"

static const struct {
	const char *name;
	int lo, hi;
	const char *expect;
} spec[NFIELDS] = {
    {"second", 0, 59, "0-59"},
    {"minute", 0, 59, "0-59"},
    {"hour", 0, 23, "0-23"},
    {"day-of-month", 1, 31, "1-31"},
    {"month", 1, 12, "1-12 or JAN-DEC"},
    {"day-of-week", 0, 7, "0-7 or SUN-SAT"},
};

static const char *const month_abbr[12] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                           "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const dow_abbr[7] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

uint32_t cron_hash(const char *key)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)(key ? key : ""); *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h;
}

/* A per-field value derived from the key hash (murmur3's finaliser). */
static uint32_t field_hash(uint32_t seed, int field)
{
	uint32_t h = seed ^ (0x9e3779b9u * (uint32_t)(field + 1));
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* ------------------------------------------------------------ parsing */

struct pctx {
	struct cron_expr *e;
	int f;
	uint32_t seed;
	const char *item; /* the list item, as written */
	char *err;
	size_t errlen;
};

static int __attribute__((format(printf, 2, 3))) fail(struct pctx *c, const char *fmt, ...)
{
	char msg[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->err && c->errlen)
		snprintf(c->err, c->errlen, "%s field '%s': %s", spec[c->f].name, c->item, msg);
	return -1;
}

static int expected(struct pctx *c)
{
	return fail(c, "expected %s", spec[c->f].expect);
}

/* A number or (month, day-of-week) a three-letter name. */
static int parse_value(struct pctx *c, const char *s, int *out)
{
	int f = c->f;
	if (isdigit((unsigned char)*s)) {
		int v = 0;
		size_t n = 0;
		for (; isdigit((unsigned char)s[n]); n++) {
			if (n >= 4)
				return expected(c);
			v = v * 10 + (s[n] - '0');
		}
		if (s[n] != '\0' || v < spec[f].lo || v > spec[f].hi)
			return expected(c);
		*out = v;
		return 0;
	}
	if (strlen(s) == 3 && (f == F_MON || f == F_DOW)) {
		const char *const *names = f == F_MON ? month_abbr : dow_abbr;
		int n = f == F_MON ? 12 : 7;
		for (int i = 0; i < n; i++) {
			if (strcasecmp(s, names[i]) == 0) {
				*out = f == F_MON ? i + 1 : i;
				return 0;
			}
		}
	}
	return expected(c);
}

static int parse_small(const char *s, int lo, int hi, int *out)
{
	int v = 0;
	size_t n = 0;
	for (; isdigit((unsigned char)s[n]); n++) {
		if (n >= 3)
			return -1;
		v = v * 10 + (s[n] - '0');
	}
	if (n == 0 || s[n] != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* L, L-n, LW, nW in day-of-month; dL, d#k in day-of-week. Returns 1 when
 * item was one of those, 0 when not, -1 on error. */
static int parse_special(struct pctx *c, char *item)
{
	struct cron_expr *e = c->e;
	size_t n = strlen(item);
	int v, k;
	if (c->f == F_DOM) {
		if (strcasecmp(item, "L") == 0) {
			e->dom_last |= 1;
			return 1;
		}
		if (strcasecmp(item, "LW") == 0) {
			e->dom_lw = 1;
			return 1;
		}
		if (toupper((unsigned char)item[0]) == 'L' && item[1] == '-') {
			if (parse_small(item + 2, 0, 30, &v) < 0)
				return fail(c, "expected L-0 to L-30");
			e->dom_last |= 1u << v;
			return 1;
		}
		if (n >= 2 && toupper((unsigned char)item[n - 1]) == 'W') {
			item[n - 1] = '\0';
			if (parse_small(item, 1, 31, &v) < 0)
				return fail(c, "expected 1W-31W or LW");
			e->dom_w |= 1u << v;
			return 1;
		}
	} else if (c->f == F_DOW) {
		char *hash = strchr(item, '#');
		if (hash) {
			*hash = '\0';
			if (parse_value(c, item, &v) < 0)
				return -1;
			if (parse_small(hash + 1, 1, 5, &k) < 0)
				return fail(c, "expected an occurrence 1-5 after '#'");
			e->dow_nth[v % 7] |= (uint8_t)(1u << (k - 1));
			return 1;
		}
		if (n >= 2 && toupper((unsigned char)item[n - 1]) == 'L') {
			item[n - 1] = '\0';
			if (parse_value(c, item, &v) < 0)
				return -1;
			e->dow_last |= (uint8_t)(1u << (v % 7));
			return 1;
		}
	}
	return 0;
}

/* H, H/step, H(a-b), H(a-b)/step: *a..*b from the hash, within lo..hi. */
static int parse_hash(struct pctx *c, const char *item, int step, int has_step, int *a, int *b)
{
	int f = c->f;
	int lo = spec[f].lo, hi = f == F_DOW ? 6 : f == F_DOM ? 28 : spec[f].hi;
	uint32_t h = field_hash(c->seed, f);
	if (item[1] == '(') {
		char tmp[CRON_MAX_ITEM];
		snprintf(tmp, sizeof(tmp), "%s", item + 2);
		size_t n = strlen(tmp);
		char *dash = strchr(tmp, '-');
		if (n < 4 || tmp[n - 1] != ')' || !dash)
			return fail(c, "expected H, H/step or H(a-b)");
		tmp[n - 1] = '\0';
		*dash = '\0';
		if (parse_value(c, tmp, &lo) < 0 || parse_value(c, dash + 1, &hi) < 0)
			return -1;
		if (f == F_DOW && hi == 7)
			hi = 6;
		if (lo > hi)
			return fail(c, "range start %d is after its end %d", lo, hi);
	} else if (item[1] != '\0') {
		return fail(c, "expected H, H/step or H(a-b)");
	}
	int width = hi - lo + 1;
	if (has_step) {
		*a = lo + (int)(h % (uint32_t)(step < width ? step : width));
		*b = hi;
	} else {
		*a = *b = lo + (int)(h % (uint32_t)width);
	}
	return 0;
}

static int parse_item(struct pctx *c, char *item)
{
	struct cron_expr *e = c->e;
	int f = c->f, a = 0, b = 0, step = 1, has_step = 0;
	int r = parse_special(c, item);
	if (r != 0)
		return r < 0 ? -1 : 0;
	char *slash = strchr(item, '/');
	if (slash) {
		*slash = '\0';
		int maxstep = spec[f].hi - spec[f].lo + (f == F_DOW ? 0 : 1);
		if (parse_small(slash + 1, 1, maxstep, &step) < 0)
			return fail(c, "expected a step of 1-%d", maxstep);
		has_step = 1;
	}
	if (strcmp(item, "*") == 0 || (strcmp(item, "?") == 0 && (f == F_DOM || f == F_DOW))) {
		a = spec[f].lo;
		b = f == F_DOW ? 6 : spec[f].hi;
	} else if (item[0] == 'H' || item[0] == 'h') {
		if (parse_hash(c, item, step, has_step, &a, &b) < 0)
			return -1;
	} else {
		char *dash = strchr(item, '-');
		if (dash) {
			*dash = '\0';
			if (parse_value(c, item, &a) < 0 || parse_value(c, dash + 1, &b) < 0)
				return -1;
			if (f == F_DOW && b == 0 && a > 0)
				b = 7; /* FRI-SUN */
			if (a > b)
				return fail(c, "range start %d is after its end %d", a, b);
		} else {
			if (parse_value(c, item, &a) < 0)
				return -1;
			b = has_step ? (f == F_DOW ? 6 : spec[f].hi) : a;
		}
	}
	for (int v = a; v <= b; v += step)
		e->mask[f] |= 1ull << v;
	return 0;
}

static int parse_field(struct pctx *c, const char *text)
{
	const char *p = text;
	char item[CRON_MAX_ITEM];
	c->item = text;
	while (1) {
		size_t n = strcspn(p, ",");
		if (n == 0)
			return fail(c, "empty list item");
		if (n >= sizeof(item))
			return fail(c, "list item too long");
		memcpy(item, p, n);
		item[n] = '\0';
		char orig[CRON_MAX_ITEM];
		memcpy(orig, item, n + 1);
		c->item = orig;
		if (parse_item(c, item) < 0)
			return -1;
		c->item = text;
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	return 0;
}

/* The days of month m of year y that match, as bits 1..31. */
static uint32_t day_mask(const struct cron_expr *e, int64_t y, int m)
{
	int mdays = tz_days_in_month(y, m);
	uint32_t all = ((1u << mdays) - 1) << 1;
	if (e->dom_star && e->dow_star)
		return all;
	uint32_t dom = (uint32_t)e->mask[F_DOM] & all;
	for (int n = 0; n < mdays && e->dom_last >> n; n++)
		if (e->dom_last >> n & 1)
			dom |= 1u << (mdays - n);
	int first = tz_weekday(tz_days_from_civil(y, m, 1));
	for (int n = 1; n <= 31 && e->dom_w >> n; n++) {
		if (!(e->dom_w >> n & 1) || n > mdays)
			continue;
		int wd = (first + n - 1) % 7, d = n;
		if (wd == 6)
			d = n == 1 ? 3 : n - 1;
		else if (wd == 0)
			d = n == mdays ? n - 2 : n + 1;
		dom |= 1u << d;
	}
	if (e->dom_lw) {
		int wd = (first + mdays - 1) % 7;
		dom |= 1u << (wd == 6 ? mdays - 1 : wd == 0 ? mdays - 2 : mdays);
	}
	uint32_t dow = 0;
	for (int d = 1; d <= mdays; d++) {
		int wd = (first + d - 1) % 7;
		if ((e->mask[F_DOW] >> wd & 1) || ((e->dow_last >> wd & 1) && d + 7 > mdays) ||
		    (e->dow_nth[wd] >> ((d - 1) / 7) & 1))
			dow |= 1u << d;
	}
	if (e->dom_star)
		return dow;
	if (e->dow_star)
		return dom;
	return dom | dow;
}

/* 1 when some date matches: every kind of year (weekday of 1 January, leap
 * or not) occurs in 2001-2028. */
static int ever_fires(const struct cron_expr *e)
{
	for (int64_t y = 2001; y <= 2028; y++)
		for (int m = 1; m <= 12; m++)
			if ((e->mask[F_MON] >> m & 1) && day_mask(e, y, m))
				return 1;
	return 0;
}

static int expand_macro(const char *s, const char **out)
{
	static const struct {
		const char *name, *expr;
	} macros[] = {
	    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
	    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
	    {"@hourly", "0 * * * *"},
	};
	for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
		if (strcasecmp(s, macros[i].name) == 0) {
			*out = macros[i].expr;
			return 0;
		}
	}
	return -1;
}

int cron_parse(const char *expr, const char *hash_key, struct cron_expr **out, char *err,
               size_t errlen)
{
	int rc = -1, nf = 0;
	char *copy = NULL, *fields[8];
	struct cron_expr *e = NULL;
	struct pctx c = {.err = err, .errlen = errlen, .seed = cron_hash(hash_key)};

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!expr || strlen(expr) > CRON_MAX_EXPR) {
		snprintf(err, errlen, "expression missing or longer than %d bytes", CRON_MAX_EXPR);
		goto out;
	}
	copy = xstrdup(expr);
	for (char *p = copy; *p;) {
		while (*p && isspace((unsigned char)*p))
			*p++ = '\0';
		if (!*p)
			break;
		if (nf < 8)
			fields[nf] = p;
		nf++;
		while (*p && !isspace((unsigned char)*p))
			p++;
	}
	if (nf == 1 && fields[0][0] == '@') {
		const char *m;
		if (expand_macro(fields[0], &m) < 0) {
			snprintf(err, errlen,
			         "unknown macro '%s': expected @yearly, @annually, @monthly, "
			         "@weekly, @daily, @midnight or @hourly",
			         fields[0]);
			goto out;
		}
		rc = cron_parse(m, hash_key, out, err, errlen);
		goto out;
	}
	if (nf != 5 && nf != 6) {
		snprintf(err, errlen, "expected 5 or 6 fields, got %d", nf);
		goto out;
	}
	e = xcalloc(1, sizeof(*e));
	c.e = e;
	e->has_seconds = nf == 6;
	for (int i = 0; i < nf; i++) {
		c.f = e->has_seconds ? i : i + 1;
		e->text[c.f] = xstrdup(fields[i]);
		if (parse_field(&c, fields[i]) < 0)
			goto out;
	}
	if (!e->has_seconds) {
		e->text[F_SEC] = xstrdup("0");
		e->mask[F_SEC] = 1;
	}
	if (e->mask[F_DOW] >> 7 & 1)
		e->mask[F_DOW] = (e->mask[F_DOW] | 1) & 0x7f;
	e->dom_star = strcmp(e->text[F_DOM], "*") == 0 || strcmp(e->text[F_DOM], "?") == 0;
	e->dow_star = strcmp(e->text[F_DOW], "*") == 0 || strcmp(e->text[F_DOW], "?") == 0;
	e->all_hours = e->mask[F_HOUR] == 0xffffffull;
	if (!ever_fires(e)) {
		if (e->dow_star)
			snprintf(err, errlen,
			         "day-of-month field '%s' never matches a day in month field '%s'",
			         e->text[F_DOM], e->text[F_MON]);
		else
			snprintf(err, errlen,
			         "day-of-month field '%s', month field '%s' and day-of-week field "
			         "'%s' never match a date",
			         e->text[F_DOM], e->text[F_MON], e->text[F_DOW]);
		goto out;
	}
	*out = e;
	e = NULL;
	rc = 0;
out:
	cron_free(e);
	free(copy);
	return rc;
}

void cron_free(struct cron_expr *e)
{
	if (!e)
		return;
	for (int i = 0; i < NFIELDS; i++)
		free(e->text[i]);
	free(e);
}

int cron_has_seconds(const struct cron_expr *e)
{
	return e->has_seconds;
}

int cron_dst_gap_parse(const char *s, enum cron_dst_gap *out)
{
	static const char *const names[] = {"shift", "next", "skip"};
	for (int i = 0; s && i < 3; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum cron_dst_gap)i;
			return 0;
		}
	}
	return -1;
}

int cron_dst_repeat_parse(const char *s, enum cron_dst_repeat *out)
{
	if (s && strcmp(s, "once") == 0)
		*out = CRON_REPEAT_ONCE;
	else if (s && strcmp(s, "twice") == 0)
		*out = CRON_REPEAT_TWICE;
	else
		return -1;
	return 0;
}

int cron_tz_valid(const char *tz)
{
	return tz && tz_get(tz) != NULL;
}

/* ------------------------------------------------------------ searching */

struct search {
	const struct cron_expr *e;
	int64_t ylimit;
	int64_t memo_q, memo_c; /* no match in (memo_q, memo_c) */
	int64_t dm_y;
	int dm_m;
	uint32_t dm;
};

int cron__next_bit(uint64_t m, int from)
{
	if (from > 63)
		return -1;
	m >>= from;
	return m ? from + __builtin_ctzll(m) : -1;
}

/* The first matching wall-clock time strictly after q, or NONE when there is
 * none up to the end of year s->ylimit. */
static int64_t next_local_raw(struct search *s, int64_t q)
{
	const struct cron_expr *e = s->e;
	int64_t t = q + 1, days = t / 86400, y;
	if (t % 86400 < 0)
		days--;
	int64_t sod = t - days * 86400;
	int mo, d, h = (int)(sod / 3600), mi = (int)(sod / 60 % 60), sec = (int)(sod % 60);
	tz_civil_from_days(days, &y, &mo, &d);
	for (int iter = 0; iter < 100000; iter++) {
		if (sec > 59) {
			sec = 0;
			mi++;
		}
		if (mi > 59) {
			mi = 0;
			h++;
		}
		if (h > 23) {
			h = 0;
			d++;
		}
		if (d > tz_days_in_month(y, mo)) {
			d = 1;
			mo++;
		}
		if (mo > 12) {
			mo = 1;
			y++;
		}
		if (y > s->ylimit)
			return NONE;
		if (!(e->mask[F_MON] >> mo & 1)) {
			int nm = cron__next_bit(e->mask[F_MON], mo);
			if (nm < 0) {
				y++;
				nm = cron__next_bit(e->mask[F_MON], 1);
			}
			mo = nm;
			d = 1;
			h = mi = sec = 0;
			continue;
		}
		if (s->dm_y != y || s->dm_m != mo) {
			s->dm = day_mask(e, y, mo);
			s->dm_y = y;
			s->dm_m = mo;
		}
		int nd = cron__next_bit(s->dm, d);
		if (nd < 0) {
			d = 32; /* next month */
			h = mi = sec = 0;
			continue;
		}
		if (nd != d) {
			d = nd;
			h = mi = sec = 0;
		}
		int nh = cron__next_bit(e->mask[F_HOUR], h);
		if (nh < 0) {
			h = 24;
			mi = sec = 0;
			continue;
		}
		if (nh != h) {
			h = nh;
			mi = sec = 0;
		}
		int nmi = cron__next_bit(e->mask[F_MIN], mi);
		if (nmi < 0) {
			mi = 60;
			sec = 0;
			continue;
		}
		if (nmi != mi) {
			mi = nmi;
			sec = 0;
		}
		int ns = cron__next_bit(e->mask[F_SEC], sec);
		if (ns < 0) {
			sec = 60;
			continue;
		}
		return tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + ns;
	}
	return NONE;
}

static int64_t next_local(struct search *s, int64_t q)
{
	if (q >= s->memo_q && (q < s->memo_c || s->memo_c == NONE))
		return s->memo_c;
	s->memo_q = q;
	s->memo_c = next_local_raw(s, q);
	return s->memo_c;
}

int cron_next(const struct cron_expr *e, const char *tz, enum cron_dst_gap gap,
              enum cron_dst_repeat repeat, int64_t after, int64_t *next)
{
	const struct tz_zone *z = tz_get(tz);
	if (!e || !next || !z || after < MIN_AFTER || after > MAX_AFTER)
		return -1;
	int64_t limit = after + (int64_t)CRON_SEARCH_YEARS * 366 * 86400, y;
	int m, d;
	tz_civil_from_days(after / 86400, &y, &m, &d);
	struct search s = {.e = e, .ylimit = y + CRON_SEARCH_YEARS + 1, .memo_q = INT64_MAX};
	int twice = repeat == CRON_REPEAT_TWICE || e->all_hours;
	int64_t lo = after + 1; /* the earliest acceptable instant */

	for (int iter = 0; iter < 1000 && lo <= limit; iter++) {
		struct tz_span sp;
		tz_span_at(z, lo, &sp);
		int64_t best = INT64_MAX, c;
		int64_t q = lo + sp.off - 1;
		if (!twice && sp.start != INT64_MIN && sp.prev_off > sp.off) {
			/* a fold: local times before start + prev_off are repeats */
			int64_t fold_end = sp.start + sp.prev_off;
			if (q < fold_end - 1)
				q = fold_end - 1;
		}
		c = next_local(&s, q);
		if (c != NONE && c - sp.off < sp.end)
			best = c - sp.off;
		if (!e->all_hours && gap != CRON_GAP_SKIP && sp.start != INT64_MIN &&
		    sp.prev_off < sp.off) {
			/* a gap: local times [g0, g1) never occurred */
			int64_t g0 = sp.start + sp.prev_off, g1 = sp.start + sp.off;
			if (gap == CRON_GAP_NEXT) {
				c = next_local(&s, g0 - 1);
				if (sp.start >= lo && c != NONE && c < g1 && sp.start < best)
					best = sp.start;
			} else {
				int64_t from = lo + sp.prev_off > g0 ? lo + sp.prev_off : g0;
				c = next_local(&s, from - 1);
				if (c != NONE && c < g1 && c - sp.prev_off < best)
					best = c - sp.prev_off;
			}
		}
		if (best != INT64_MAX) {
			if (best > limit)
				return -1;
			*next = best;
			return 0;
		}
		if (sp.end == INT64_MAX)
			return -1;
		lo = sp.end;
	}
	return -1;
}
