/* Internals of the cron module shared by cron.c and cron_describe.c. */
#ifndef WF_CRON_INT_H
#define WF_CRON_INT_H
#include <stdint.h>

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, NFIELDS };

struct cron_expr {
	uint64_t mask[NFIELDS];
	uint32_t dom_last;  /* bit n: n days before the last day (L, L-n) */
	uint32_t dom_w;     /* bit n: the weekday nearest day n (nW) */
	int dom_lw;         /* LW: the last weekday of the month */
	uint8_t dow_last;   /* bit d: the last weekday d of the month (dL) */
	uint8_t dow_nth[7]; /* bit k-1: the k-th weekday d of the month (d#k) */
	int dom_star;       /* day-of-month is exactly * or ? */
	int dow_star;       /* day-of-week is exactly * or ? */
	int has_seconds;
	int all_hours;       /* interval-style, see the top of this file */
	char *text[NFIELDS]; /* the source of each field, for messages */
};

/* The lowest set bit of m at or above from, or -1. */
int cron__next_bit(uint64_t m, int from);

#endif
