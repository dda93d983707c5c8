/* IANA time zones read from TZif files (tzfile(5), versions 1 to 3), without
 * setenv("TZ")/tzset/localtime: UTC → local offsets, local → UTC candidates
 * (gaps and folds), and the POSIX TZ footer rule for times after the last
 * transition.
 *
 * Zones returned by tz_get are cached for the life of the process (until
 * tz_cache_clear) and are immutable, so any thread may use them. Times are
 * epoch seconds; a "local" time is wall-clock seconds counted as if the zone
 * were UTC (local = utc + offset). */
#ifndef WF_TZ_H
#define WF_TZ_H
#include <stddef.h>
#include <stdint.h>

#define TZ_DIR      "/usr/share/zoneinfo"
#define TZ_MAX_FILE (1024 * 1024)

struct tz_zone;

/* A stretch of time with one UTC offset: [start, end). start is INT64_MIN
 * before the first transition, end INT64_MAX after the last one. prev_off is
 * the offset in effect just before start (== off when start is INT64_MIN). */
struct tz_span {
	int64_t start;
	int64_t end;
	int32_t off;
	int32_t prev_off;
	int isdst;
};

/* 1 when name is a syntactically acceptable zone name: [A-Za-z0-9_+-/] only,
 * no "..", not absolute, at most 255 bytes. Does not look at the disk. */
int tz_name_valid(const char *name);

/* The zone called name, loaded from TZ_DIR on first use and cached
 * (thread-safe). NULL or "UTC" give the built-in UTC zone. Returns NULL when
 * the name is invalid or the file is missing or malformed. The zone is
 * borrowed: do not free it. */
const struct tz_zone *tz_get(const char *name);

/* Frees every cached zone. Only for tests and exit paths: no other thread
 * may be using a zone. */
void tz_cache_clear(void);

/* Parses a TZif image. Returns a new zone (free with tz_zone_free) or NULL
 * with a message in err. */
struct tz_zone *tz_parse(const char *name, const unsigned char *data, size_t len, char *err,
                         size_t errlen) __attribute__((warn_unused_result));

/* A zone made of a POSIX TZ rule only ("CET-1CEST,M3.5.0,M10.5.0/3",
 * "<+0545>-5:45"). Returns a new zone or NULL when spec is malformed. */
struct tz_zone *tz_from_posix(const char *spec) __attribute__((warn_unused_result));

void tz_zone_free(struct tz_zone *z);

/* The zone's name as given to tz_get/tz_parse ("UTC" for the built-in). */
const char *tz_zone_name(const struct tz_zone *z);

/* UTC offset (seconds east) and DST flag in effect at utc. isdst may be NULL. */
int32_t tz_offset(const struct tz_zone *z, int64_t utc, int *isdst);

/* The span of constant offset that contains utc. */
void tz_span_at(const struct tz_zone *z, int64_t utc, struct tz_span *s);

/* The UTC instants at which the wall clock reads local: returns 0 (local
 * falls in a gap), 1, or 2 (a fold; out[0] < out[1]). For a gap, *gap_at is
 * set to the transition instant (the end of the gap) and *gap_before to the
 * offset before it; both may be NULL. */
int tz_local_to_utc(const struct tz_zone *z, int64_t local, int64_t out[2], int64_t *gap_at,
                    int32_t *gap_before);

/* Calendar helpers (proleptic Gregorian, Howard Hinnant's algorithms). */
int64_t tz_days_from_civil(int64_t y, int m, int d);
void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
int tz_days_in_month(int64_t y, int m);
/* 0 = Sunday. */
int tz_weekday(int64_t days);

#endif
