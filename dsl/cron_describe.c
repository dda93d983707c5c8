/* Cron expressions in plain English ("at 02:00 on Monday through Friday"). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "cron_int.h"
#include "xalloc.h"

/* ------------------------------------------------------------ describing */

struct sb {
	char *p;
	size_t len, cap;
};

static void __attribute__((format(printf, 2, 3))) put(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= b->cap - b->len) {
		b->cap = b->len + (size_t)n + 64;
		b->p = xrealloc(b->p, b->cap);
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

static const char *const month_name[12] = {"January",   "February", "March",    "April",
                                           "May",       "June",     "July",     "August",
                                           "September", "October",  "November", "December"};
static const char *const dow_name[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};
static const char *const ordinal[5] = {"first", "second", "third", "fourth", "fifth"};

static void put_value(struct sb *b, int f, int v)
{
	if (f == F_MON)
		put(b, "%s", month_name[(v - 1) % 12]);
	else if (f == F_DOW)
		put(b, "%s", dow_name[v % 7]);
	else
		put(b, "%d", v);
}

/* "1", "1 and 5", "1, 3 and 5", "Monday through Friday". */
static void put_list(struct sb *b, int f, uint64_t m, int lo, int hi)
{
	int runs[64][2], n = 0;
	for (int v = lo; v <= hi; v++) {
		if (!(m >> v & 1))
			continue;
		int w = v;
		while (w + 1 <= hi && (m >> (w + 1) & 1))
			w++;
		if (w - v >= 2) {
			runs[n][0] = v;
			runs[n++][1] = w;
		} else {
			for (int x = v; x <= w; x++) {
				runs[n][0] = x;
				runs[n++][1] = x;
			}
		}
		v = w;
	}
	for (int i = 0; i < n; i++) {
		if (i > 0)
			put(b, i == n - 1 ? " and " : ", ");
		put_value(b, f, runs[i][0]);
		if (runs[i][1] != runs[i][0]) {
			put(b, " through ");
			put_value(b, f, runs[i][1]);
		}
	}
}

static int single(uint64_t m)
{
	return m && !(m & (m - 1)) ? __builtin_ctzll(m) : -1;
}

/* 1 when m is lo+start, +step, ... to the end of the range, step >= 2. */
static int full_step(uint64_t m, int lo, int hi, int *step, int *start)
{
	int first = cron__next_bit(m, lo), second = first < 0 ? -1 : cron__next_bit(m, first + 1);
	if (second < 0 || second - first < 2 || first - lo >= second - first)
		return 0;
	int k = second - first;
	uint64_t want = 0;
	for (int v = first; v <= hi; v += k)
		want |= 1ull << v;
	if (want != m)
		return 0;
	*step = k;
	*start = first;
	return 1;
}

static void put_count(struct sb *b, int k, const char *unit, int start, int lo)
{
	put(b, "every %d %ss", k, unit);
	if (start != lo)
		put(b, " starting at %s %d", unit, start);
}

static void describe_time(struct sb *b, const struct cron_expr *e)
{
	const uint64_t all60 = (1ull << 60) - 1, all24 = 0xffffff;
	uint64_t S = e->mask[F_SEC], M = e->mask[F_MIN], H = e->mask[F_HOUR];
	int k, st, szero = S == 1, ms = single(M), ss = single(S);
	int mall = M == all60, hall = H == all24;

	if (S == all60 && mall && hall) {
		put(b, "every second");
	} else if (mall && hall && full_step(S, 0, 59, &k, &st)) {
		put_count(b, k, "second", st, 0);
	} else if (szero && mall && hall) {
		put(b, "every minute");
	} else if (szero && hall && full_step(M, 0, 59, &k, &st)) {
		put_count(b, k, "minute", st, 0);
	} else if (szero && hall && ms >= 0) {
		if (ms == 0)
			put(b, "every hour");
		else
			put(b, "at %d minutes past every hour", ms);
	} else if (szero && ms >= 0 && full_step(H, 0, 23, &k, &st)) {
		put_count(b, k, "hour", st, 0);
		if (ms != 0)
			put(b, " at minute %d", ms);
	} else if (ms >= 0 && ss >= 0 && __builtin_popcountll(H) <= 6) {
		put(b, "at ");
		for (int h = 0, i = 0, n = __builtin_popcountll(H); h < 24; h++) {
			if (!(H >> h & 1))
				continue;
			if (i > 0)
				put(b, ++i == n ? " and " : ", ");
			else
				i++;
			put(b, "%02d:%02d", h, ms);
			if (ss != 0)
				put(b, ":%02d", ss);
		}
	} else if (szero && (mall || full_step(M, 0, 59, &k, &st)) && !hall) {
		if (mall)
			put(b, "every minute");
		else
			put_count(b, k, "minute", st, 0);
		int h0 = cron__next_bit(H, 0), h1 = 63 - __builtin_clzll(H);
		if (H == (((1ull << (h1 + 1)) - 1) & ~((1ull << h0) - 1)))
			put(b, " between %02d:00 and %02d:59", h0, h1);
		else {
			put(b, " during hours ");
			put_list(b, F_HOUR, H, 0, 23);
		}
	} else {
		put(b, "at ");
		if (!szero) {
			put(b, "second%s ", single(S) >= 0 ? "" : "s");
			put_list(b, F_SEC, S, 0, 59);
			put(b, ", ");
		}
		if (mall)
			put(b, "every minute");
		else {
			put(b, "minute%s ", ms >= 0 ? "" : "s");
			put_list(b, F_MIN, M, 0, 59);
		}
		if (hall)
			put(b, " of every hour");
		else {
			put(b, " past hour%s ", single(H) >= 0 ? "" : "s");
			put_list(b, F_HOUR, H, 0, 23);
		}
	}
}

static void describe_dom(struct sb *b, const struct cron_expr *e)
{
	int n = 0, k, st;
	uint32_t days = (uint32_t)e->mask[F_DOM];
	put(b, "on ");
	if (days && full_step(days, 1, 31, &k, &st)) {
		put(b, "every %d days", k);
		if (st != 1)
			put(b, " starting on day %d", st);
		n++;
	} else if (days) {
		put(b, "day%s ", single(days) >= 0 ? "" : "s");
		put_list(b, F_DOM, days, 1, 31);
		n++;
	}
	for (int i = 0; i <= 30; i++) {
		if (!(e->dom_last >> i & 1))
			continue;
		put(b, "%s", n++ ? ", " : "");
		if (i == 0)
			put(b, "the last day");
		else
			put(b, "%d day%s before the last day", i, i > 1 ? "s" : "");
	}
	for (int i = 1; i <= 31; i++)
		if (e->dom_w >> i & 1)
			put(b, "%sthe weekday nearest day %d", n++ ? ", " : "", i);
	if (e->dom_lw)
		put(b, "%sthe last weekday", n++ ? ", " : "");
	put(b, " of the month");
}

static void describe_dow(struct sb *b, const struct cron_expr *e)
{
	int n = 0;
	put(b, "on ");
	if (e->mask[F_DOW]) {
		put_list(b, F_DOW, e->mask[F_DOW], 0, 6);
		n++;
	}
	for (int d = 0; d < 7; d++) {
		if (e->dow_last >> d & 1)
			put(b, "%sthe last %s of the month", n++ ? ", " : "", dow_name[d]);
		for (int k = 0; k < 5; k++)
			if (e->dow_nth[d] >> k & 1)
				put(b, "%sthe %s %s of the month", n++ ? ", " : "", ordinal[k],
				    dow_name[d]);
	}
}

char *cron_describe(const struct cron_expr *e)
{
	struct sb b = {.p = xmalloc(64), .cap = 64};
	b.p[0] = '\0';
	if (!e) {
		put(&b, "never");
		return b.p;
	}
	describe_time(&b, e);
	if (!e->dom_star) {
		put(&b, " ");
		describe_dom(&b, e);
	}
	if (!e->dow_star) {
		put(&b, e->dom_star ? " " : " or ");
		describe_dow(&b, e);
	}
	if (e->mask[F_MON] != 0x1ffe) {
		put(&b, " in ");
		put_list(&b, F_MON, e->mask[F_MON], 1, 12);
	}
	return b.p;
}
