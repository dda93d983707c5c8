/* Cron parsing, next fire times across DST, descriptions. The next-time
 * cases live in tests/data/cron/next.txt (one case a line). */
#include <criterion/criterion.h>

#include "cron.h"
#include "tz.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* "2026-03-08T07:30:00Z" → epoch seconds, with libc's timegm (not the code
 * under test). Returns -1 on a malformed string. */
static int64_t utc(const char *s)
{
	struct tm tm = {0};
	char z = 0;
	if (sscanf(s, "%d-%d-%dT%d:%d:%d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
	           &tm.tm_min, &tm.tm_sec, &z) != 7 ||
	    z != 'Z')
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

static void fmt(int64_t t, char *out, size_t n)
{
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static struct cron_expr *must_parse(const char *expr, const char *key)
{
	struct cron_expr *e = NULL;
	char err[256] = "";
	int rc = cron_parse(expr, key, &e, err, sizeof(err));
	cr_assert_eq(rc, 0, "parse '%s': %s", expr, err);
	return e;
}

static int64_t next_utc(const struct cron_expr *e, int64_t after)
{
	int64_t n = 0;
	cr_assert_eq(cron_next(e, "UTC", CRON_GAP_SHIFT, CRON_REPEAT_ONCE, after, &n), 0);
	return n;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

static FILE *open_data(const char *rel)
{
	char path[512];
	const char *roots[] = {getenv("WF_SRCDIR"), ".", "..", "../..", "../../..", "../../../.."};
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		if (!roots[i])
			continue;
		snprintf(path, sizeof(path), "%s/%s", roots[i], rel);
		FILE *f = fopen(path, "r");
		if (f)
			return f;
	}
	return NULL;
}

Test(cron, data_driven_next_times)
{
	FILE *f = open_data("tests/data/cron/next.txt");
	cr_assert_not_null(f, "tests/data/cron/next.txt not found (set WF_SRCDIR)");
	char line[1024];
	int lineno = 0, cases = 0, failures = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char *p = trim(line), *col[6];
		if (*p == '#' || *p == '\0')
			continue;
		int n = 0;
		for (char *s = p; n < 6; n++) {
			col[n] = s;
			char *bar = strchr(s, '|');
			if (!bar) {
				n++;
				break;
			}
			*bar = '\0';
			s = bar + 1;
		}
		cr_assert_eq(n, 6, "next.txt:%d: expected 6 columns", lineno);
		for (int i = 0; i < 6; i++)
			col[i] = trim(col[i]);
		enum cron_dst_gap gap;
		enum cron_dst_repeat rep;
		cr_assert_eq(cron_dst_gap_parse(col[2], &gap), 0, "next.txt:%d: gap", lineno);
		cr_assert_eq(cron_dst_repeat_parse(col[3], &rep), 0, "next.txt:%d: repeat", lineno);
		int64_t after = utc(col[4]);
		cr_assert_neq(after, -1, "next.txt:%d: bad time '%s'", lineno, col[4]);
		struct cron_expr *e = NULL;
		char err[256];
		if (cron_parse(col[0], "key", &e, err, sizeof(err)) != 0) {
			cr_log_error("next.txt:%d: parse '%s': %s", lineno, col[0], err);
			failures++;
			continue;
		}
		cases++;
		char *save = NULL;
		for (char *tok = strtok_r(col[5], " ", &save); tok;
		     tok = strtok_r(NULL, " ", &save)) {
			int64_t got = 0;
			int rc = cron_next(e, col[1], gap, rep, after, &got);
			char gs[32] = "none";
			if (rc == 0)
				fmt(got, gs, sizeof(gs));
			if (strcmp(tok, "none") == 0 ? rc != -1 : (rc != 0 || got != utc(tok))) {
				cr_log_error("next.txt:%d: '%s' %s after %s: want %s, got %s",
				             lineno, col[0], col[1], col[4], tok, gs);
				failures++;
				break;
			}
			after = got;
		}
		cron_free(e);
	}
	fclose(f);
	cr_expect_gt(cases, 50);
	cr_expect_eq(failures, 0, "%d of %d cases failed (see the log)", failures, cases);
}

struct err_case {
	const char *expr, *msg;
};

Test(cron, parse_errors_name_the_field)
{
	static const struct err_case cases[] = {
	    {"61 * * * *", "minute field '61': expected 0-59"},
	    {"0 0 0 * *", "day-of-month field '0': expected 1-31"},
	    {"0 0 32 * *", "day-of-month field '32': expected 1-31"},
	    {"0 24 * * *", "hour field '24': expected 0-23"},
	    {"0 0 * 13 *", "month field '13': expected 1-12 or JAN-DEC"},
	    {"0 0 * * 8", "day-of-week field '8': expected 0-7 or SUN-SAT"},
	    {"0 0 * FOO *", "month field 'FOO': expected 1-12 or JAN-DEC"},
	    {"60 0 0 * * *", "second field '60': expected 0-59"},
	    {"* * * *", "expected 5 or 6 fields, got 4"},
	    {"* * * * * * *", "expected 5 or 6 fields, got 7"},
	    {"", "expected 5 or 6 fields, got 0"},
	    {"1,,2 * * * *", "minute field '1,,2': empty list item"},
	    {"*/0 * * * *", "minute field '*/0': expected a step of 1-60"},
	    {"5-61 * * * *", "minute field '5-61': expected 0-59"},
	    {"30-5 * * * *", "minute field '30-5': range start 30 is after its end 5"},
	    {"? * * * *", "minute field '?': expected 0-59"},
	    {"0 0 L-31 * *", "day-of-month field 'L-31': expected L-0 to L-30"},
	    {"0 0 32W * *", "day-of-month field '32W': expected 1W-31W or LW"},
	    {"0 0 * * MON#6", "day-of-week field 'MON#6': expected an occurrence 1-5 after '#'"},
	    {"0 0 * * L", "day-of-week field 'L': expected 0-7 or SUN-SAT"},
	    {"H(5 * * * *", "minute field 'H(5': expected H, H/step or H(a-b)"},
	    {"0 0 30 2 *", "day-of-month field '30' never matches a day in month field '2'"},
	    {"0 0 31 4 *", "day-of-month field '31' never matches a day in month field '4'"},
	    {"0 0 31 2,4,6 *",
	     "day-of-month field '31' never matches a day in month field '2,4,6'"},
	    {"@fortnightly", "unknown macro '@fortnightly'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cron_expr *e = (struct cron_expr *)1;
		char err[256] = "";
		cr_expect_eq(cron_parse(cases[i].expr, NULL, &e, err, sizeof(err)), -1, "'%s'",
		             cases[i].expr);
		cr_expect_null(e);
		cr_expect(strncmp(err, cases[i].msg, strlen(cases[i].msg)) == 0,
		          "'%s': got \"%s\", want \"%s\"", cases[i].expr, err, cases[i].msg);
	}
}

Test(cron, parse_accepts)
{
	static const char *ok[] = {
	    "0 0 29 2 *",     "0 0 31 1-12 *", "0 0 30 2 MON",        "0 0 ? * ?",
	    "0 0 L 2 *",      "0 0 L-30 * *",  "0 0 LW,15W * *",      "0 0 ? * 5L,MON#1",
	    "H H(0-5) * * *", "H/15 * * * *",  "  0  9 * * mon-FRI ", "0 0 1 jan *",
	    "@ANNUALLY",      "@midnight",     "0 0 * * 0-7",         "0 0 * * SAT-SUN",
	    "*/7 * * * * *",  "0 0 1/5 * *",   "0\t0\t1\t*\t*",       "H(0-29)/10 * * * *",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct cron_expr *e = NULL;
		char err[256] = "";
		cr_expect_eq(cron_parse(ok[i], "k", &e, err, sizeof(err)), 0, "'%s': %s", ok[i],
		             err);
		cron_free(e);
	}
}

Test(cron, has_seconds)
{
	struct cron_expr *e = must_parse("* * * * *", NULL);
	cr_expect_eq(cron_has_seconds(e), 0);
	cron_free(e);
	e = must_parse("0 * * * * *", NULL);
	cr_expect_eq(cron_has_seconds(e), 1);
	cron_free(e);
}

Test(cron, fnv1a_vectors)
{
	cr_expect_eq(cron_hash(""), 0x811c9dc5u);
	cr_expect_eq(cron_hash(NULL), 0x811c9dc5u);
	cr_expect_eq(cron_hash("a"), 0xe40c292cu);
	cr_expect_eq(cron_hash("foobar"), 0xbf9cf968u);
}

/* The minute and hour an expression fires at on 2026-01-01 (UTC). */
static void first_fire(const char *expr, const char *key, int *hour, int *minute)
{
	struct cron_expr *e = must_parse(expr, key);
	int64_t t = next_utc(e, utc("2025-12-31T23:59:59Z"));
	*hour = (int)(t % 86400 / 3600);
	*minute = (int)(t % 3600 / 60);
	cron_free(e);
}

Test(cron, hash_spread_is_stable_and_in_range)
{
	int h1, m1, h2, m2, differs = 0;
	first_fire("H H * * *", "nightly-billing", &h1, &m1);
	first_fire("H H * * *", "nightly-billing", &h2, &m2);
	cr_expect(h1 == h2 && m1 == m2, "same key, same time");
	for (int i = 0; i < 20; i++) {
		char key[32];
		snprintf(key, sizeof(key), "job-%d", i);
		first_fire("H H * * *", key, &h2, &m2);
		cr_expect(h2 >= 0 && h2 < 24 && m2 >= 0 && m2 < 60);
		differs += h2 != h1 || m2 != m1;
		/* the hour and minute come from different mixes of the seed */
	}
	cr_expect_geq(differs, 15, "other keys spread out");
	int same_field = 0;
	for (int i = 0; i < 20; i++) {
		char key[32];
		snprintf(key, sizeof(key), "w%d", i);
		first_fire("H(0-23) H(0-23) * * *", key, &h2, &m2);
		same_field += h2 == m2;
	}
	cr_expect_lt(same_field, 6, "fields are seeded differently");
	for (int i = 0; i < 50; i++) {
		char key[32];
		snprintf(key, sizeof(key), "r%d", i);
		first_fire("H(0-29) 3 * * *", key, &h2, &m2);
		cr_expect(h2 == 3 && m2 >= 0 && m2 <= 29, "H(0-29) gave %d", m2);
	}
}

Test(cron, hash_step_keeps_the_interval)
{
	struct cron_expr *e = must_parse("H/15 * * * *", "some-workflow");
	int64_t t = next_utc(e, utc("2026-01-01T00:00:00Z") - 1);
	int first = (int)(t % 3600 / 60);
	cr_expect_lt(first, 15);
	for (int i = 1; i < 8; i++) {
		int64_t n = next_utc(e, t);
		cr_expect_eq(n - t, 900, "every 15 minutes");
		t = n;
	}
	cron_free(e);
	/* H in day-of-month stays within 1-28, so it fires every month */
	e = must_parse("0 0 H * *", "x");
	t = utc("2026-01-01T00:00:00Z");
	for (int i = 0; i < 12; i++) {
		int64_t n = next_utc(e, t);
		cr_expect_lt(n - t, 32 * 86400);
		t = n;
	}
	cron_free(e);
}

Test(cron, bounded_search)
{
	struct cron_expr *e = must_parse("* * * * *", NULL);
	int64_t n = 0;
	cr_expect_eq(
	    cron_next(e, "UTC", CRON_GAP_SHIFT, CRON_REPEAT_ONCE, utc("9999-12-31T00:00:00Z"), &n),
	    -1);
	cr_expect_eq(cron_next(e, "No/Such_Zone", CRON_GAP_SHIFT, CRON_REPEAT_ONCE, 0, &n), -1);
	cr_expect_eq(cron_next(e, "../etc/passwd", CRON_GAP_SHIFT, CRON_REPEAT_ONCE, 0, &n), -1);
	cr_expect_eq(cron_next(e, NULL, CRON_GAP_SHIFT, CRON_REPEAT_ONCE, 0, &n), 0);
	cr_expect_eq(n, 60);
	cron_free(e);
	/* valid (it fires in 2016) but not within 30 years of 2073 */
	e = must_parse("0 0 ? 2 MON#5", NULL);
	cr_expect_eq(cron_next(e, "Europe/Berlin", CRON_GAP_SHIFT, CRON_REPEAT_ONCE,
	                       utc("2073-01-01T00:00:00Z"), &n),
	             -1);
	cron_free(e);
}

Test(cron, dst_policy_names)
{
	enum cron_dst_gap g;
	enum cron_dst_repeat r;
	cr_expect(cron_dst_gap_parse("shift", &g) == 0 && g == CRON_GAP_SHIFT);
	cr_expect(cron_dst_gap_parse("next", &g) == 0 && g == CRON_GAP_NEXT);
	cr_expect(cron_dst_gap_parse("skip", &g) == 0 && g == CRON_GAP_SKIP);
	cr_expect_eq(cron_dst_gap_parse("later", &g), -1);
	cr_expect_eq(cron_dst_gap_parse(NULL, &g), -1);
	cr_expect(cron_dst_repeat_parse("once", &r) == 0 && r == CRON_REPEAT_ONCE);
	cr_expect(cron_dst_repeat_parse("twice", &r) == 0 && r == CRON_REPEAT_TWICE);
	cr_expect_eq(cron_dst_repeat_parse("Once", &r), -1);
}

Test(cron, tz_valid)
{
	cr_expect(cron_tz_valid("Europe/Berlin"));
	cr_expect(cron_tz_valid("UTC"));
	cr_expect(cron_tz_valid("Asia/Kathmandu"));
	cr_expect(cron_tz_valid("America/Argentina/Buenos_Aires"));
	cr_expect(cron_tz_valid("Etc/GMT+5"));
	cr_expect_not(cron_tz_valid("Europe/Berlim"));
	cr_expect_not(cron_tz_valid("Europe"));
	cr_expect_not(cron_tz_valid("../../etc/passwd"));
	cr_expect_not(cron_tz_valid("/usr/share/zoneinfo/UTC"));
	cr_expect_not(cron_tz_valid("zone.tab"));
	cr_expect_not(cron_tz_valid(""));
	cr_expect_not(cron_tz_valid(NULL));
}

struct desc_case {
	const char *expr, *want;
};

Test(cron, describe)
{
	static const struct desc_case cases[] = {
	    {"*/15 * * * *", "every 15 minutes"},
	    {"0 2 * * 1-5", "at 02:00 on Monday through Friday"},
	    {"30 9 1 * *", "at 09:30 on day 1 of the month"},
	    {"0 0 L * *", "at 00:00 on the last day of the month"},
	    {"* * * * * *", "every second"},
	    {"* * * * *", "every minute"},
	    {"*/10 * * * * *", "every 10 seconds"},
	    {"@hourly", "every hour"},
	    {"5 * * * *", "at 5 minutes past every hour"},
	    {"0 */2 * * *", "every 2 hours"},
	    {"0 9,17 * * *", "at 09:00 and 17:00"},
	    {"30 15 10 * * *", "at 10:15:30"},
	    {"*/5 9-17 * * *", "every 5 minutes between 09:00 and 17:59"},
	    {"0 0 1,15 * *", "at 00:00 on days 1 and 15 of the month"},
	    {"0 0 * * 5L", "at 00:00 on the last Friday of the month"},
	    {"0 0 * * MON#2", "at 00:00 on the second Monday of the month"},
	    {"0 0 15W * *", "at 00:00 on the weekday nearest day 15 of the month"},
	    {"0 0 LW * *", "at 00:00 on the last weekday of the month"},
	    {"0 0 1 * MON", "at 00:00 on day 1 of the month or on Monday"},
	    {"@yearly", "at 00:00 on day 1 of the month in January"},
	    {"0 12 * 6-8 *", "at 12:00 in June through August"},
	    {"0 0 * * 0,6", "at 00:00 on Sunday and Saturday"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cron_expr *e = must_parse(cases[i].expr, NULL);
		char *d = cron_describe(e);
		cr_expect_str_eq(d, cases[i].want, "'%s'", cases[i].expr);
		free(d);
		cron_free(e);
	}
	/* exotic forms: something sensible, never a crash */
	static const char *odd[] = {"1,7,9 2-4,8 */3 1-5 *", "5,10 1-3 * * *",
	                            "H(0-29)/7 H/5 L-2,LW,3W * MON#1,FRIL,2", "59 59 23 31 12 *"};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		struct cron_expr *e = must_parse(odd[i], "k");
		char *d = cron_describe(e);
		cr_expect(strlen(d) > 5);
		cr_log_info("%s -> %s", odd[i], d);
		free(d);
		cron_free(e);
	}
}

static void *worker(void *arg)
{
	const char *zone = arg;
	struct cron_expr *e = NULL;
	char err[128];
	long ok = 0;
	if (cron_parse("*/7 * * * *", NULL, &e, err, sizeof(err)) != 0)
		return NULL;
	int64_t t = 1770000000;
	for (int i = 0; i < 20000; i++) {
		int64_t n;
		if (cron_next(e, zone, CRON_GAP_SHIFT, CRON_REPEAT_ONCE, t, &n) == 0 && n > t) {
			ok++;
			t = n;
		}
	}
	cron_free(e);
	return (void *)ok;
}

Test(cron, threads_share_the_zone_cache)
{
	static const char *zones[] = {"Europe/Berlin", "America/New_York", "Australia/Sydney",
	                              "Asia/Kathmandu"};
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, worker, (void *)zones[i]);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(th[i], &r);
		cr_expect_eq((long)r, 20000L, "%s", zones[i]);
	}
	tz_cache_clear();
}

Test(cron, speed_is_reported_not_asserted)
{
	struct cron_expr *e = must_parse("*/15 * * * *", NULL);
	struct timespec a, b;
	int64_t t = 1770000000;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 200000; i++)
		t = next_utc(e, t);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	cr_log_info("cron_next: %.0f per second (UTC, */15)", 200000 / s);
	cron_free(e);
}
