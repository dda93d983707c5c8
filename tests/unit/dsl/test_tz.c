/* The TZif reader and POSIX TZ rules. Expected offsets and transition
 * instants come from the published rules (checked with `zdump -v`). */
#include <criterion/criterion.h>

#include "tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static const struct tz_zone *zone(const char *name)
{
	const struct tz_zone *z = tz_get(name);
	cr_assert_not_null(z, "zone %s", name);
	return z;
}

Test(tz, calendar)
{
	cr_expect_eq(tz_days_from_civil(1970, 1, 1), 0);
	cr_expect_eq(tz_days_from_civil(2000, 3, 1), 11017);
	cr_expect_eq(tz_days_from_civil(1969, 12, 31), -1);
	int64_t y;
	int m, d;
	tz_civil_from_days(11017, &y, &m, &d);
	cr_expect(y == 2000 && m == 3 && d == 1);
	tz_civil_from_days(-1, &y, &m, &d);
	cr_expect(y == 1969 && m == 12 && d == 31);
	cr_expect_eq(tz_weekday(0), 4); /* Thursday */
	cr_expect_eq(tz_weekday(tz_days_from_civil(2026, 3, 8)), 0);
	cr_expect_eq(tz_days_in_month(2028, 2), 29);
	cr_expect_eq(tz_days_in_month(2100, 2), 28);
	cr_expect_eq(tz_days_in_month(2000, 2), 29);
}

Test(tz, names)
{
	cr_expect(tz_name_valid("Europe/Berlin"));
	cr_expect(tz_name_valid("Etc/GMT-14"));
	cr_expect(tz_name_valid("America/Argentina/Buenos_Aires"));
	cr_expect_not(tz_name_valid("../etc/passwd"));
	cr_expect_not(tz_name_valid("Europe/../../etc/passwd"));
	cr_expect_not(tz_name_valid("/etc/passwd"));
	cr_expect_not(tz_name_valid("Europe/Berlin\n"));
	cr_expect_not(tz_name_valid("Europe/ Berlin"));
	cr_expect_not(tz_name_valid("a.b"));
	cr_expect_not(tz_name_valid(""));
	cr_expect_not(tz_name_valid(NULL));
	cr_expect_null(tz_get("Europe"));              /* a directory */
	cr_expect_null(tz_get("Nowhere/Land"));        /* missing */
	cr_expect_null(tz_get("right/Europe/Berlin")); /* leap seconds: refused */
	cr_expect_not_null(tz_get(NULL));
	cr_expect_str_eq(tz_zone_name(tz_get("UTC")), "UTC");
	cr_expect_eq(tz_get("Europe/Berlin"), tz_get("Europe/Berlin"), "cached");
}

Test(tz, offsets_from_the_transitions)
{
	int dst = -1;
	const struct tz_zone *ny = zone("America/New_York");
	cr_expect_eq(tz_offset(ny, utc("2026-03-08T06:59:59Z"), &dst), -18000);
	cr_expect_eq(dst, 0);
	cr_expect_eq(tz_offset(ny, utc("2026-03-08T07:00:00Z"), &dst), -14400);
	cr_expect_eq(dst, 1);
	cr_expect_eq(tz_offset(ny, utc("2026-11-01T05:59:59Z"), NULL), -14400);
	cr_expect_eq(tz_offset(ny, utc("2026-11-01T06:00:00Z"), NULL), -18000);
	const struct tz_zone *syd = zone("Australia/Sydney");
	cr_expect_eq(tz_offset(syd, utc("2026-04-04T15:59:59Z"), NULL), 39600);
	cr_expect_eq(tz_offset(syd, utc("2026-04-04T16:00:00Z"), NULL), 36000);
	cr_expect_eq(tz_offset(syd, utc("2026-10-03T16:00:00Z"), NULL), 39600);
	cr_expect_eq(tz_offset(zone("Asia/Kathmandu"), utc("2026-06-01T00:00:00Z"), NULL), 20700);
	cr_expect_eq(tz_offset(zone("Europe/London"), utc("2026-07-01T00:00:00Z"), NULL), 3600);
	cr_expect_eq(tz_offset(zone("UTC"), utc("2026-07-01T00:00:00Z"), NULL), 0);
}

Test(tz, offsets_from_the_footer_rule)
{
	const struct tz_zone *be = zone("Europe/Berlin");
	cr_expect_eq(tz_offset(be, utc("2040-03-25T00:59:59Z"), NULL), 3600);
	cr_expect_eq(tz_offset(be, utc("2040-03-25T01:00:00Z"), NULL), 7200);
	cr_expect_eq(tz_offset(be, utc("2040-10-28T00:59:59Z"), NULL), 7200);
	cr_expect_eq(tz_offset(be, utc("2040-10-28T01:00:00Z"), NULL), 3600);
	cr_expect_eq(tz_offset(be, utc("2100-01-15T00:00:00Z"), NULL), 3600);
	struct tz_span s;
	tz_span_at(be, utc("2040-06-01T00:00:00Z"), &s);
	cr_expect_eq(s.start, utc("2040-03-25T01:00:00Z"));
	cr_expect_eq(s.end, utc("2040-10-28T01:00:00Z"));
	cr_expect(s.off == 7200 && s.prev_off == 3600 && s.isdst == 1);
	tz_span_at(be, utc("2026-06-01T00:00:00Z"), &s);
	cr_expect_eq(s.start, utc("2026-03-29T01:00:00Z"));
	cr_expect_eq(s.end, utc("2026-10-25T01:00:00Z"));
	tz_span_at(zone("Asia/Kathmandu"), utc("2026-06-01T00:00:00Z"), &s);
	/* the file may hold no-change entries (2038); none before then */
	cr_expect_geq(s.end, utc("2038-01-19T03:14:07Z"));
	cr_expect_eq(s.off, 20700);
}

Test(tz, posix_strings)
{
	struct tz_zone *z = tz_from_posix("CET-1CEST,M3.5.0,M10.5.0/3");
	cr_assert_not_null(z);
	cr_expect_eq(tz_offset(z, utc("2030-03-31T00:59:59Z"), NULL), 3600);
	cr_expect_eq(tz_offset(z, utc("2030-03-31T01:00:00Z"), NULL), 7200);
	cr_expect_eq(tz_offset(z, utc("2030-10-27T00:59:59Z"), NULL), 7200);
	cr_expect_eq(tz_offset(z, utc("2030-10-27T01:00:00Z"), NULL), 3600);
	tz_zone_free(z);

	z = tz_from_posix("AEST-10AEDT,M10.1.0,M4.1.0/3");
	cr_assert_not_null(z);
	cr_expect_eq(tz_offset(z, utc("2030-01-15T00:00:00Z"), NULL), 39600);
	cr_expect_eq(tz_offset(z, utc("2030-07-15T00:00:00Z"), NULL), 36000);
	/* 2026: DST ends 2026-04-04T16:00Z, starts 2026-10-03T16:00Z */
	cr_expect_eq(tz_offset(z, utc("2026-04-04T15:59:59Z"), NULL), 39600);
	cr_expect_eq(tz_offset(z, utc("2026-04-04T16:00:00Z"), NULL), 36000);
	cr_expect_eq(tz_offset(z, utc("2026-10-03T15:59:59Z"), NULL), 36000);
	cr_expect_eq(tz_offset(z, utc("2026-10-03T16:00:00Z"), NULL), 39600);
	struct tz_span s;
	tz_span_at(z, utc("2026-12-25T00:00:00Z"), &s);
	cr_expect_eq(s.start, utc("2026-10-03T16:00:00Z"));
	cr_expect_eq(s.end, utc("2027-04-03T16:00:00Z"));
	tz_zone_free(z);

	z = tz_from_posix("<+0545>-5:45");
	cr_assert_not_null(z);
	cr_expect_eq(tz_offset(z, 0, NULL), 20700);
	tz_zone_free(z);

	z = tz_from_posix("EST5EDT"); /* no rule: the US default */
	cr_assert_not_null(z);
	cr_expect_eq(tz_offset(z, utc("2026-03-08T06:59:59Z"), NULL), -18000);
	cr_expect_eq(tz_offset(z, utc("2026-03-08T07:00:00Z"), NULL), -14400);
	tz_zone_free(z);

	z = tz_from_posix("<-03>3");
	cr_assert_not_null(z);
	cr_expect_eq(tz_offset(z, 0, NULL), -10800);
	tz_zone_free(z);

	z = tz_from_posix("EST5EDT,0/0,J365/25"); /* permanent DST (tzfile v3) */
	cr_assert_not_null(z);
	cr_expect_eq(tz_offset(z, utc("2030-01-01T12:00:00Z"), NULL), -14400);
	cr_expect_eq(tz_offset(z, utc("2030-07-01T12:00:00Z"), NULL), -14400);
	tz_zone_free(z);

	static const char *bad[] = {"",
	                            "X1",
	                            "CET",
	                            "CET-1CEST,M13.1.0,M10.5.0",
	                            "CET-1CEST,M3.5.0",
	                            "CET-1CEST,M3.5.0,M10.5.0/3x",
	                            "<+05",
	                            "CET-25",
	                            "CET-1CEST,J0,J10"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_null(tz_from_posix(bad[i]), "'%s'", bad[i]);
}

Test(tz, local_to_utc_gaps_and_folds)
{
	const struct tz_zone *ny = zone("America/New_York");
	int64_t out[2], gap_at = 0;
	int32_t before = 0;
	int64_t day = tz_days_from_civil(2026, 3, 8) * 86400;
	cr_expect_eq(tz_local_to_utc(ny, day + 2 * 3600 + 1800, out, &gap_at, &before), 0);
	cr_expect_eq(gap_at, utc("2026-03-08T07:00:00Z"));
	cr_expect_eq(before, -18000);
	cr_expect_eq(tz_local_to_utc(ny, day + 3 * 3600, out, NULL, NULL), 1);
	cr_expect_eq(out[0], utc("2026-03-08T07:00:00Z"));
	cr_expect_eq(tz_local_to_utc(ny, day + 1 * 3600 + 3599, out, NULL, NULL), 1);
	cr_expect_eq(out[0], utc("2026-03-08T06:59:59Z"));

	day = tz_days_from_civil(2026, 11, 1) * 86400;
	cr_expect_eq(tz_local_to_utc(ny, day + 3600 + 1800, out, NULL, NULL), 2);
	cr_expect_eq(out[0], utc("2026-11-01T05:30:00Z"));
	cr_expect_eq(out[1], utc("2026-11-01T06:30:00Z"));
	cr_expect_eq(tz_local_to_utc(ny, day + 2 * 3600, out, NULL, NULL), 1);
	cr_expect_eq(out[0], utc("2026-11-01T07:00:00Z"));

	const struct tz_zone *syd = zone("Australia/Sydney");
	day = tz_days_from_civil(2026, 4, 5) * 86400;
	cr_expect_eq(tz_local_to_utc(syd, day + 2 * 3600 + 1800, out, NULL, NULL), 2);
	cr_expect_eq(out[0], utc("2026-04-04T15:30:00Z"));
	cr_expect_eq(out[1], utc("2026-04-04T16:30:00Z"));
	day = tz_days_from_civil(2026, 10, 4) * 86400;
	cr_expect_eq(tz_local_to_utc(syd, day + 2 * 3600 + 1800, out, &gap_at, NULL), 0);
	cr_expect_eq(gap_at, utc("2026-10-03T16:00:00Z"));

	day = tz_days_from_civil(2026, 6, 1) * 86400;
	cr_expect_eq(tz_local_to_utc(zone("Asia/Kathmandu"), day + 9 * 3600, out, NULL, NULL), 1);
	cr_expect_eq(out[0], utc("2026-06-01T03:15:00Z"));
	/* after the file's last transition */
	day = tz_days_from_civil(2045, 10, 29) * 86400;
	cr_expect_eq(tz_local_to_utc(zone("Europe/Berlin"), day + 2 * 3600 + 1800, out, NULL, NULL),
	             2);
	cr_expect_eq(out[0], utc("2045-10-29T00:30:00Z"));
	cr_expect_eq(out[1], utc("2045-10-29T01:30:00Z"));
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	unsigned char *buf = malloc(1 << 20);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

Test(tz, malformed_files_are_refused_not_crashed_on)
{
	size_t len;
	char err[128];
	unsigned char *data = slurp(TZ_DIR "/Europe/Berlin", &len);
	struct tz_zone *z = tz_parse("Europe/Berlin", data, len, err, sizeof(err));
	cr_assert_not_null(z, "%s", err);
	tz_zone_free(z);
	/* every truncation */
	for (size_t n = 0; n < len; n++) {
		z = tz_parse("t", data, n, err, sizeof(err));
		if (z) {
			(void)tz_offset(z, 2000000000, NULL);
			tz_zone_free(z);
		}
	}
	cr_expect_null(tz_parse("t", data, 100, err, sizeof(err)));
	cr_expect(strstr(err, "truncated") != NULL, "%s", err);
	/* flipped bytes in the header and body */
	for (size_t i = 0; i < len; i += 7) {
		unsigned char *copy = malloc(len);
		memcpy(copy, data, len);
		copy[i] ^= 0xa5;
		z = tz_parse("t", copy, len, err, sizeof(err));
		if (z) {
			struct tz_span s;
			tz_span_at(z, 1800000000, &s);
			tz_zone_free(z);
		}
		free(copy);
	}
	memcpy(data, "TZXX", 4);
	cr_expect_null(tz_parse("t", data, len, err, sizeof(err)));
	cr_expect(strstr(err, "not a TZif file") != NULL, "%s", err);
	free(data);
	tz_cache_clear();
}
