/* TZif reader and POSIX TZ rules. See tz.h.
 *
 * A zone is a sorted list of transitions (from the version 2+ 64-bit block
 * when present, else the version 1 block) and an optional POSIX rule from
 * the footer that governs every instant at or after the last transition.
 * Leap-second records are read past and ignored (wf counts POSIX seconds). */
#include "tz.h"
#include "xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { DATE_J, DATE_N, DATE_M };

struct rule_date {
	int kind;
	int a, b, c;  /* J: a; N: a; M: month a, week b, weekday c */
	int32_t time; /* seconds after local midnight, may be negative or > 24 h */
};

struct posix_rule {
	int32_t std_off; /* seconds east of UTC */
	int32_t dst_off;
	int has_dst;
	struct rule_date start, end;
};

struct tz_zone {
	char *name;
	size_t ntrans;
	int64_t *trans;
	uint8_t *idx;
	size_t ntypes;
	int32_t *type_off;
	uint8_t *type_dst;
	int has_rule;
	struct posix_rule rule;
	struct tz_zone *next; /* cache list */
};

/* ------------------------------------------------------------ calendar */

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

int64_t tz_days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
	days += 719468;
	int64_t era = (days >= 0 ? days : days - 146096) / 146097;
	int64_t doe = days - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int tz_days_in_month(int64_t y, int m)
{
	static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2)
		return is_leap(y) ? 29 : 28;
	return dim[(m - 1) % 12];
}

int tz_weekday(int64_t days)
{
	int64_t w = (days + 4) % 7; /* 1970-01-01 was a Thursday */
	return (int)(w < 0 ? w + 7 : w);
}

/* ------------------------------------------------------------ POSIX TZ */

static const char *parse_abbr(const char *p)
{
	if (*p == '<') {
		const char *s = ++p;
		while (*p && *p != '>' && (isalnum((unsigned char)*p) || *p == '+' || *p == '-'))
			p++;
		if (*p != '>' || p == s)
			return NULL;
		return p + 1;
	}
	const char *s = p;
	while (isalpha((unsigned char)*p))
		p++;
	return p - s >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] with hours at most maxh. */
static const char *parse_hms(const char *p, int maxh, int32_t *out)
{
	int sign = 1, part[3] = {0, 0, 0};
	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	for (int i = 0; i < 3; i++) {
		if (i > 0) {
			if (*p != ':')
				break;
			p++;
		}
		if (!isdigit((unsigned char)*p))
			return NULL;
		int v = 0, n = 0;
		while (isdigit((unsigned char)*p) && n < 4) {
			v = v * 10 + (*p++ - '0');
			n++;
		}
		if (isdigit((unsigned char)*p) || (i > 0 && v > 59) || (i == 0 && v > maxh))
			return NULL;
		part[i] = v;
	}
	*out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
	return p;
}

static const char *parse_num(const char *p, int lo, int hi, int *out)
{
	int v = 0, n = 0;
	while (isdigit((unsigned char)*p) && n < 4) {
		v = v * 10 + (*p++ - '0');
		n++;
	}
	if (n == 0 || isdigit((unsigned char)*p) || v < lo || v > hi)
		return NULL;
	*out = v;
	return p;
}

static const char *parse_rule_date(const char *p, struct rule_date *d)
{
	memset(d, 0, sizeof(*d));
	if (*p == 'J') {
		d->kind = DATE_J;
		p = parse_num(p + 1, 1, 365, &d->a);
	} else if (*p == 'M') {
		d->kind = DATE_M;
		p = parse_num(p + 1, 1, 12, &d->a);
		if (p && *p == '.')
			p = parse_num(p + 1, 1, 5, &d->b);
		else
			p = NULL;
		if (p && *p == '.')
			p = parse_num(p + 1, 0, 6, &d->c);
		else
			p = NULL;
	} else {
		d->kind = DATE_N;
		p = parse_num(p, 0, 365, &d->a);
	}
	if (!p)
		return NULL;
	d->time = 7200;
	if (*p == '/')
		p = parse_hms(p + 1, 167, &d->time);
	return p;
}

static int parse_posix(const char *s, struct posix_rule *r)
{
	int32_t off;
	const char *p = parse_abbr(s);
	memset(r, 0, sizeof(*r));
	if (!p || !(p = parse_hms(p, 24, &off)))
		return -1;
	r->std_off = -off;
	r->dst_off = r->std_off;
	if (*p == '\0')
		return 0;
	if (!(p = parse_abbr(p)))
		return -1;
	r->has_dst = 1;
	r->dst_off = r->std_off + 3600;
	if (*p && *p != ',') {
		if (!(p = parse_hms(p, 24, &off)))
			return -1;
		r->dst_off = -off;
	}
	if (*p == '\0') { /* no rule: the historical US default */
		r->start = (struct rule_date){DATE_M, 3, 2, 0, 7200};
		r->end = (struct rule_date){DATE_M, 11, 1, 0, 7200};
		return 0;
	}
	if (*p != ',' || !(p = parse_rule_date(p + 1, &r->start)))
		return -1;
	if (*p != ',' || !(p = parse_rule_date(p + 1, &r->end)))
		return -1;
	return *p == '\0' ? 0 : -1;
}

static int64_t rule_day(int64_t y, const struct rule_date *d)
{
	int64_t jan1 = tz_days_from_civil(y, 1, 1);
	switch (d->kind) {
	case DATE_J:
		return jan1 + d->a - 1 + (is_leap(y) && d->a >= 60);
	case DATE_N:
		return jan1 + d->a;
	default: {
		int64_t first = tz_days_from_civil(y, d->a, 1);
		int64_t day = first + (d->c - tz_weekday(first) + 7) % 7 + (int64_t)(d->b - 1) * 7;
		while (day >= first + tz_days_in_month(y, d->a))
			day -= 7;
		return day;
	}
	}
}

/* UTC instants at which DST starts and ends in year y. */
static void rule_year(const struct posix_rule *r, int64_t y, int64_t *start, int64_t *end)
{
	*start = rule_day(y, &r->start) * 86400 + r->start.time - r->std_off;
	*end = rule_day(y, &r->end) * 86400 + r->end.time - r->dst_off;
}

static int64_t year_of(int64_t t)
{
	int64_t y;
	int m, d;
	tz_civil_from_days(floor_div(t, 86400), &y, &m, &d);
	return y;
}

static int rule_is_dst(const struct posix_rule *r, int64_t t)
{
	int64_t s, e;
	if (!r->has_dst)
		return 0;
	rule_year(r, year_of(t + r->std_off), &s, &e);
	if (s < e)
		return t >= s && t < e;
	if (s == e)
		return 0;
	return !(t >= e && t < s);
}

/* The nearest transition after t (dir > 0) or at or before t (dir < 0)
 * where the DST state really changes; INT64_MAX / INT64_MIN when none. */
static int64_t rule_transition(const struct posix_rule *r, int64_t t, int dir)
{
	int64_t best = dir > 0 ? INT64_MAX : INT64_MIN;
	if (!r->has_dst)
		return best;
	int64_t y0 = year_of(t + r->std_off);
	for (int64_t y = y0 - 1; y <= y0 + 2; y++) {
		int64_t c[2];
		rule_year(r, y, &c[0], &c[1]);
		for (int i = 0; i < 2; i++) {
			if (rule_is_dst(r, c[i]) == rule_is_dst(r, c[i] - 1))
				continue;
			if (dir > 0 && c[i] > t && c[i] < best)
				best = c[i];
			if (dir < 0 && c[i] <= t && c[i] > best)
				best = c[i];
		}
	}
	return best;
}

/* ------------------------------------------------------------ lookups */

/* Instants beyond about +-2 billion years are clamped so that no arithmetic
 * below can overflow. */
#define T_LIMIT ((int64_t)1 << 56)

static int64_t clamp(int64_t t)
{
	return t < -T_LIMIT ? -T_LIMIT : t > T_LIMIT ? T_LIMIT : t;
}

static int uses_rule(const struct tz_zone *z, int64_t t)
{
	return z->has_rule && (z->ntrans == 0 || t >= z->trans[z->ntrans - 1]);
}

/* Index of the last transition <= t, or -1. */
static ptrdiff_t find_trans(const struct tz_zone *z, int64_t t)
{
	size_t lo = 0, hi = z->ntrans;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (z->trans[mid] <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (ptrdiff_t)lo - 1;
}

int32_t tz_offset(const struct tz_zone *z, int64_t utc, int *isdst)
{
	int dst;
	int32_t off;
	utc = clamp(utc);
	if (uses_rule(z, utc)) {
		dst = rule_is_dst(&z->rule, utc);
		off = dst ? z->rule.dst_off : z->rule.std_off;
	} else if (z->ntypes == 0) {
		dst = 0;
		off = 0;
	} else {
		ptrdiff_t i = find_trans(z, utc);
		size_t ty = i < 0 ? 0 : z->idx[i];
		dst = z->type_dst[ty];
		off = z->type_off[ty];
	}
	if (isdst)
		*isdst = dst;
	return off;
}

static int64_t prev_trans(const struct tz_zone *z, int64_t t)
{
	if (uses_rule(z, t)) {
		int64_t r = rule_transition(&z->rule, t, -1);
		if (z->ntrans == 0 || r > z->trans[z->ntrans - 1])
			return r;
		return z->trans[z->ntrans - 1];
	}
	ptrdiff_t i = find_trans(z, t);
	return i < 0 ? INT64_MIN : z->trans[i];
}

static int64_t next_trans(const struct tz_zone *z, int64_t t)
{
	ptrdiff_t i = find_trans(z, t);
	if ((size_t)(i + 1) < z->ntrans)
		return z->trans[i + 1];
	if (!z->has_rule)
		return INT64_MAX;
	return rule_transition(&z->rule, t, 1);
}

void tz_span_at(const struct tz_zone *z, int64_t utc, struct tz_span *s)
{
	utc = clamp(utc);
	s->start = prev_trans(z, utc);
	s->end = next_trans(z, utc);
	s->off = tz_offset(z, utc, &s->isdst);
	s->prev_off = s->start == INT64_MIN ? s->off : tz_offset(z, s->start - 1, NULL);
}

int tz_local_to_utc(const struct tz_zone *z, int64_t local, int64_t out[2], int64_t *gap_at,
                    int32_t *gap_before)
{
	/* Offsets stay within +-26 h: look at every span that overlaps two
	 * days either side of local read as UTC. */
	int n = 0;
	local = clamp(local);
	int64_t t = local - 2 * 86400;
	for (int iter = 0; iter < 32 && t <= local + 2 * 86400; iter++) {
		struct tz_span s;
		tz_span_at(z, t, &s);
		int64_t u = local - s.off;
		if (u >= s.start && u < s.end && n < 2 && (n == 0 || out[n - 1] != u))
			out[n++] = u;
		if (s.start != INT64_MIN && s.prev_off < s.off && local >= s.start + s.prev_off &&
		    local < s.start + s.off) {
			if (gap_at)
				*gap_at = s.start;
			if (gap_before)
				*gap_before = s.prev_off;
		}
		if (s.end == INT64_MAX)
			break;
		t = s.end;
	}
	return n;
}

/* ------------------------------------------------------------ TZif */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_hdr {
	int version;
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static int read_hdr(const unsigned char *p, size_t len, struct tzif_hdr *h)
{
	if (len < 44 || memcmp(p, "TZif", 4) != 0)
		return -1;
	h->version = p[4] == 0 ? 1 : p[4] - '0';
	if (h->version < 1 || h->version > 9)
		return -1;
	h->isutcnt = be32(p + 20);
	h->isstdcnt = be32(p + 24);
	h->leapcnt = be32(p + 28);
	h->timecnt = be32(p + 32);
	h->typecnt = be32(p + 36);
	h->charcnt = be32(p + 40);
	if (h->typecnt == 0 || h->typecnt > 256 || h->timecnt > 100000 || h->leapcnt > 10000 ||
	    h->charcnt > 100000 || (h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
	    (h->isstdcnt != 0 && h->isstdcnt != h->typecnt))
		return -1;
	return 0;
}

static size_t block_len(const struct tzif_hdr *h, size_t tsize)
{
	return (size_t)h->timecnt * tsize + h->timecnt + (size_t)h->typecnt * 6 + h->charcnt +
	       (size_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

struct tz_zone *tz_parse(const char *name, const unsigned char *data, size_t len, char *err,
                         size_t errlen)
{
	struct tz_zone *z = NULL;
	struct tzif_hdr h;
	const unsigned char *p = data;
	size_t tsize = 4;
	const char *why = "not a TZif file";

	if (read_hdr(p, len, &h) < 0)
		goto fail;
	why = "truncated TZif file";
	if (len - 44 < block_len(&h, 4))
		goto fail;
	if (h.version >= 2) {
		size_t skip = 44 + block_len(&h, 4);
		p += skip;
		len -= skip;
		why = "bad version 2 header";
		if (read_hdr(p, len, &h) < 0)
			goto fail;
		tsize = 8;
		why = "truncated TZif file";
		if (len - 44 < block_len(&h, 8))
			goto fail;
	}
	why = "leap-second zones (right/...) are not supported";
	if (h.leapcnt > 0)
		goto fail;
	z = xcalloc(1, sizeof(*z));
	z->name = xstrdup(name ? name : "");
	z->ntrans = h.timecnt;
	z->ntypes = h.typecnt;
	z->trans = xcalloc(h.timecnt ? h.timecnt : 1, sizeof(*z->trans));
	z->idx = xcalloc(h.timecnt ? h.timecnt : 1, 1);
	z->type_off = xcalloc(h.typecnt, sizeof(*z->type_off));
	z->type_dst = xcalloc(h.typecnt, 1);
	const unsigned char *q = p + 44;
	why = "transitions out of order";
	for (size_t i = 0; i < h.timecnt; i++, q += tsize) {
		z->trans[i] = tsize == 8 ? be64(q) : (int32_t)be32(q);
		if (i > 0 && z->trans[i] <= z->trans[i - 1])
			goto fail;
	}
	why = "bad transition type";
	for (size_t i = 0; i < h.timecnt; i++, q++) {
		z->idx[i] = *q;
		if (*q >= h.typecnt)
			goto fail;
	}
	why = "bad local time type";
	for (size_t i = 0; i < h.typecnt; i++, q += 6) {
		z->type_off[i] = (int32_t)be32(q);
		z->type_dst[i] = q[4];
		if (z->type_off[i] < -25 * 3600 || z->type_off[i] > 26 * 3600 || q[4] > 1 ||
		    q[5] >= h.charcnt)
			goto fail;
	}
	if (h.version >= 2) {
		const unsigned char *foot = p + 44 + block_len(&h, 8);
		size_t flen = len - 44 - block_len(&h, 8);
		why = "bad footer";
		if (flen < 2 || foot[0] != '\n')
			goto fail;
		const unsigned char *nl = memchr(foot + 1, '\n', flen - 1);
		if (!nl || nl - foot - 1 > 255)
			goto fail;
		if (nl > foot + 1) {
			char spec[256];
			memcpy(spec, foot + 1, (size_t)(nl - foot - 1));
			spec[nl - foot - 1] = '\0';
			why = "bad POSIX TZ string in footer";
			if (parse_posix(spec, &z->rule) < 0)
				goto fail;
			z->has_rule = 1;
		}
	}
	return z;
fail:
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", name ? name : "zone", why);
	tz_zone_free(z);
	return NULL;
}

struct tz_zone *tz_from_posix(const char *spec)
{
	struct posix_rule r;
	if (!spec || strlen(spec) > 255 || parse_posix(spec, &r) < 0)
		return NULL;
	struct tz_zone *z = xcalloc(1, sizeof(*z));
	z->name = xstrdup(spec);
	z->has_rule = 1;
	z->rule = r;
	return z;
}

void tz_zone_free(struct tz_zone *z)
{
	if (!z)
		return;
	free(z->name);
	free(z->trans);
	free(z->idx);
	free(z->type_off);
	free(z->type_dst);
	free(z);
}

const char *tz_zone_name(const struct tz_zone *z)
{
	return z->name;
}

/* ------------------------------------------------------------ cache */

static struct tz_zone utc_zone = {.name = "UTC"};
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tz_zone *cache;

int tz_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > 255 || name[0] == '/' || name[0] == '-' || strstr(name, "..") ||
	    strstr(name, "//"))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '_' && c != '+' && c != '-' && c != '/')
			return 0;
	}
	return 1;
}

static struct tz_zone *load(const char *name)
{
	char path[512];
	struct stat st;
	struct tz_zone *z = NULL;
	unsigned char *data = NULL;
	int fd = -1;

	snprintf(path, sizeof(path), "%s/%s", TZ_DIR, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 44 ||
	    st.st_size > TZ_MAX_FILE)
		goto out;
	data = xmalloc((size_t)st.st_size);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			goto out;
		got += (size_t)r;
	}
	z = tz_parse(name, data, got, NULL, 0);
out:
	if (fd >= 0)
		close(fd);
	free(data);
	return z;
}

const struct tz_zone *tz_get(const char *name)
{
	struct tz_zone *z;
	if (!name || strcmp(name, "UTC") == 0)
		return &utc_zone;
	if (!tz_name_valid(name))
		return NULL;
	pthread_mutex_lock(&cache_lock);
	for (z = cache; z; z = z->next)
		if (strcmp(z->name, name) == 0)
			goto out;
	z = load(name);
	if (z) {
		z->next = cache;
		cache = z;
	}
out:
	pthread_mutex_unlock(&cache_lock);
	return z;
}

void tz_cache_clear(void)
{
	pthread_mutex_lock(&cache_lock);
	while (cache) {
		struct tz_zone *n = cache->next;
		tz_zone_free(cache);
		cache = n;
	}
	pthread_mutex_unlock(&cache_lock);
}
