/* Circuit breakers keyed by name (the task's "breaker" object).
 *
 * closed ──N consecutive failures, or failure rate ≥ R over window_ms with at
 *          least N calls in the window──▶ open
 * open ──open_for_ms elapsed──▶ half_open: K probes may run concurrently,
 *          every other call fails fast
 * half_open ──K probe successes──▶ closed;  ──a probe failure──▶ open
 *
 * The clock is injected: every call takes now_ms (any monotonic clock in
 * milliseconds; the executor passes mono_ms()). A breaker_set owns its
 * breakers; names are copied. */
#ifndef WF_BREAKER_H
#define WF_BREAKER_H
#include <jansson.h>
#include <stdint.h>

struct breaker_config {
	int64_t failures;         /* consecutive failures that open it (and minimum calls) */
	int64_t window_ms;        /* failure-rate window, 0 = rate check off */
	double failure_rate;      /* 0 < rate <= 1, 0 = rate check off */
	int64_t open_for_ms;      /* how long it stays open */
	int64_t half_open_probes; /* concurrent probes, and successes needed to close */
};

enum breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };
enum breaker_verdict { BREAKER_ALLOW, BREAKER_PROBE, BREAKER_REJECT };
enum breaker_outcome { BREAKER_SUCCESS, BREAKER_FAILURE, BREAKER_IGNORE };

struct breaker_set;

/* max = how many named breakers to track at most (idle closed ones are evicted). */
struct breaker_set *breaker_set_new(size_t max);
void breaker_set_free(struct breaker_set *s);

/* Reads a task's "breaker" object (defaults for absent fields). Returns the
 * name (borrowed from obj) or NULL when obj has no usable name. */
const char *breaker_config_from_json(const json_t *obj, struct breaker_config *cfg);

/* Asks to make a call. cfg (copied) updates the breaker's settings.
 * BREAKER_ALLOW: a normal call; BREAKER_PROBE: a half-open probe (pass
 * probe=1 to breaker_release); BREAKER_REJECT: fail fast, *until_ms is when
 * the breaker stops being open (now_ms while half-open probes are busy). */
enum breaker_verdict breaker_acquire(struct breaker_set *s, const char *name,
                                     const struct breaker_config *cfg, int64_t now_ms,
                                     int64_t *until_ms);
/* Reports the outcome of a call that breaker_acquire allowed. */
void breaker_release(struct breaker_set *s, const char *name, enum breaker_outcome outcome,
                     int probe, int64_t now_ms);

/* State of one breaker (BREAKER_CLOSED when unknown). */
enum breaker_state breaker_state(struct breaker_set *s, const char *name, int64_t now_ms);
const char *breaker_state_name(enum breaker_state st);

/* {"name": {"state": "open", "until_ms": until + offset_ms | null, "failures": n}}
 * for the heartbeat; offset_ms converts now_ms's clock to epoch ms. New ref. */
json_t *breaker_states_json(struct breaker_set *s, int64_t now_ms, int64_t offset_ms);

#endif
