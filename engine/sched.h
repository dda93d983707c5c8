/* The scheduler: claims due schedules in batches and creates their runs. */
#ifndef WF_SCHED_H
#define WF_SCHED_H
#include <stdint.h>

#include "store.h"

/* Fires up to batch due schedules (next_fire_at <= now). Returns the number
 * of runs created, or -1 on a database error. */
int sched_tick(struct store *s, int batch) __attribute__((warn_unused_result));

/* sched_tick as if the time were now_ms (epoch milliseconds). sched_tick
 * passes the database's clock; tests pass their own to cross DST changes
 * and simulate downtime or clock jumps. */
int sched_tick_at(struct store *s, int batch, int64_t now_ms) __attribute__((warn_unused_result));

#endif
