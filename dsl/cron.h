/* Cron expressions and their next fire times in IANA time zones.
 *
 * Syntax: 5 fields (min hour dom mon dow) or 6 with seconds first; ranges,
 * lists, steps, names (JAN, MON), @yearly @annually @monthly @weekly @daily
 * @midnight @hourly, L, W, #, ?, and H (a stable spread per hash key, as
 * Jenkins does). Day-of-month and day-of-week combine with the classic OR
 * rule when both are restricted. */
#ifndef WF_CRON_H
#define WF_CRON_H
#include <stddef.h>
#include <stdint.h>

struct cron_expr;

enum cron_dst_gap {
	CRON_GAP_SHIFT, /* fire the same wall-clock distance after the gap (default) */
	CRON_GAP_NEXT,  /* fire at the end of the gap */
	CRON_GAP_SKIP   /* do not fire */
};
enum cron_dst_repeat {
	CRON_REPEAT_ONCE, /* fire at the first occurrence (default) */
	CRON_REPEAT_TWICE /* fire at both occurrences */
};

/* Parses expr. hash_key seeds H fields (the workflow name; may be NULL).
 * Returns 0 and a new expression in *out (free with cron_free), or -1 with a
 * message in err naming the field ("day-of-month field '32': expected 1-31").
 * Schedules that can never fire ("0 0 30 2 *") are errors here. */
int cron_parse(const char *expr, const char *hash_key, struct cron_expr **out, char *err,
               size_t errlen) __attribute__((warn_unused_result));
void cron_free(struct cron_expr *e);
/* 1 when the expression has a seconds field. */
int cron_has_seconds(const struct cron_expr *e);

/* The first fire time strictly after `after` (epoch seconds) in zone tz
 * ("Europe/Berlin", NULL or "UTC" for UTC), with the DST policies.
 * Returns 0 and *next, or -1 when no time exists within the search bound
 * (the search is bounded: never an endless loop). */
int cron_next(const struct cron_expr *e, const char *tz, enum cron_dst_gap gap,
              enum cron_dst_repeat repeat, int64_t after, int64_t *next)
    __attribute__((warn_unused_result));

/* A plain-English description ("at 02:00 on Monday through Friday").
 * Returns a new string; the caller frees it. */
char *cron_describe(const struct cron_expr *e);

/* Parses "shift|next|skip" and "once|twice". Return 0 or -1. */
int cron_dst_gap_parse(const char *s, enum cron_dst_gap *out) __attribute__((warn_unused_result));
int cron_dst_repeat_parse(const char *s, enum cron_dst_repeat *out)
    __attribute__((warn_unused_result));

/* 1 when tz names a zone present in the system's IANA database. */
int cron_tz_valid(const char *tz);

/* A stable 32-bit hash of key (FNV-1a), the seed of H and of jitter. */
uint32_t cron_hash(const char *key);

#endif
