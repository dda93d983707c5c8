/* Small utilities shared by the programs: clocks and parsing helpers. */
#ifndef WF_UTIL_H
#define WF_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC: for timers and durations. */
int64_t mono_ms(void);
/* Milliseconds since the epoch (wall clock): for schedules and records. */
int64_t wall_ms(void);
/* Formats epoch milliseconds as RFC 3339 UTC (2026-01-02T03:04:05.678Z). */
void fmt_time_ms(int64_t ms, char *out, size_t outlen);
/* Parses a decimal integer in [min, max]. Returns 0 or -1. */
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
    __attribute__((warn_unused_result));
/* Lowercase hex of n bytes into out (2n+1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);
/* The time ms milliseconds from now on clock, as a timespec (for
 * pthread_cond_timedwait, whose condition variable uses that clock). */
struct timespec deadline_in(clockid_t clock, int64_t ms);
/* Sleeps for ms milliseconds (restarting after signals). */
void sleep_ms(int64_t ms);

#endif
