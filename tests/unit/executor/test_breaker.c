/* Circuit breaker state machine with an injected clock. */
#include <criterion/criterion.h>

#include "executor/breaker.h"

static struct breaker_config cfg(int64_t failures, int64_t window, double rate, int64_t open_for,
                                 int64_t probes)
{
	return (struct breaker_config){failures, window, rate, open_for, probes};
}

/* One call: acquire and, when allowed, release with outcome. */
static enum breaker_verdict call(struct breaker_set *s, const struct breaker_config *c, int64_t now,
                                 enum breaker_outcome o)
{
	int64_t until;
	enum breaker_verdict v = breaker_acquire(s, "svc", c, now, &until);
	if (v != BREAKER_REJECT)
		breaker_release(s, "svc", o, v == BREAKER_PROBE, now);
	return v;
}

Test(breaker, consecutive_failures_open)
{
	struct breaker_set *s = breaker_set_new(8);
	struct breaker_config c = cfg(3, 0, 0, 1000, 1);
	cr_assert_eq(call(s, &c, 0, BREAKER_FAILURE), BREAKER_ALLOW);
	cr_assert_eq(call(s, &c, 1, BREAKER_FAILURE), BREAKER_ALLOW);
	cr_assert_eq(breaker_state(s, "svc", 2), BREAKER_CLOSED);
	cr_assert_eq(call(s, &c, 2, BREAKER_FAILURE), BREAKER_ALLOW);
	cr_assert_eq(breaker_state(s, "svc", 3), BREAKER_OPEN);
	int64_t until;
	cr_assert_eq(breaker_acquire(s, "svc", &c, 500, &until), BREAKER_REJECT);
	cr_assert_eq(until, 1002);
	breaker_set_free(s);
}

Test(breaker, success_resets_consecutive)
{
	struct breaker_set *s = breaker_set_new(8);
	struct breaker_config c = cfg(3, 0, 0, 1000, 1);
	call(s, &c, 0, BREAKER_FAILURE);
	call(s, &c, 1, BREAKER_FAILURE);
	call(s, &c, 2, BREAKER_SUCCESS);
	call(s, &c, 3, BREAKER_FAILURE);
	call(s, &c, 4, BREAKER_FAILURE);
	cr_assert_eq(breaker_state(s, "svc", 5), BREAKER_CLOSED);
	call(s, &c, 5, BREAKER_IGNORE); /* cancelled calls count for nothing */
	call(s, &c, 6, BREAKER_FAILURE);
	cr_assert_eq(breaker_state(s, "svc", 7), BREAKER_OPEN);
	breaker_set_free(s);
}

Test(breaker, failure_rate_over_window)
{
	struct breaker_set *s = breaker_set_new(8);
	/* 4 calls at least, 50% failures in 10 s; consecutive needs 4 as well */
	struct breaker_config c = cfg(4, 10000, 0.5, 1000, 1);
	call(s, &c, 0, BREAKER_FAILURE);
	call(s, &c, 100, BREAKER_SUCCESS);
	call(s, &c, 200, BREAKER_FAILURE);
	cr_assert_eq(breaker_state(s, "svc", 300), BREAKER_CLOSED, "only 3 calls in the window");
	call(s, &c, 300, BREAKER_SUCCESS);
	cr_assert_eq(breaker_state(s, "svc", 400), BREAKER_CLOSED, "a success never opens");
	call(s, &c, 400, BREAKER_FAILURE); /* 3 of 5 failed */
	cr_assert_eq(breaker_state(s, "svc", 500), BREAKER_OPEN);
	breaker_set_free(s);
}

Test(breaker, old_calls_leave_the_window)
{
	struct breaker_set *s = breaker_set_new(8);
	struct breaker_config c = cfg(4, 1000, 0.5, 1000, 1);
	call(s, &c, 0, BREAKER_FAILURE);
	call(s, &c, 10, BREAKER_FAILURE);
	call(s, &c, 20, BREAKER_SUCCESS);
	/* the two failures are out of the window by now */
	call(s, &c, 2000, BREAKER_SUCCESS);
	call(s, &c, 2010, BREAKER_SUCCESS);
	call(s, &c, 2020, BREAKER_FAILURE);
	call(s, &c, 2030, BREAKER_SUCCESS);
	cr_assert_eq(breaker_state(s, "svc", 2040), BREAKER_CLOSED);
	breaker_set_free(s);
}

Test(breaker, half_open_probes_then_close)
{
	struct breaker_set *s = breaker_set_new(8);
	struct breaker_config c = cfg(1, 0, 0, 1000, 2);
	int64_t until;
	call(s, &c, 0, BREAKER_FAILURE);
	cr_assert_eq(breaker_state(s, "svc", 999), BREAKER_OPEN);
	cr_assert_eq(breaker_state(s, "svc", 1000), BREAKER_HALF_OPEN);
	/* two probes at once, the third fails fast */
	cr_assert_eq(breaker_acquire(s, "svc", &c, 1000, &until), BREAKER_PROBE);
	cr_assert_eq(breaker_acquire(s, "svc", &c, 1001, &until), BREAKER_PROBE);
	cr_assert_eq(breaker_acquire(s, "svc", &c, 1002, &until), BREAKER_REJECT);
	breaker_release(s, "svc", BREAKER_SUCCESS, 1, 1100);
	cr_assert_eq(breaker_state(s, "svc", 1100), BREAKER_HALF_OPEN, "1 of 2 successes");
	breaker_release(s, "svc", BREAKER_SUCCESS, 1, 1200);
	cr_assert_eq(breaker_state(s, "svc", 1200), BREAKER_CLOSED);
	cr_assert_eq(call(s, &c, 1300, BREAKER_SUCCESS), BREAKER_ALLOW);
	breaker_set_free(s);
}

Test(breaker, probe_failure_reopens)
{
	struct breaker_set *s = breaker_set_new(8);
	struct breaker_config c = cfg(2, 0, 0, 500, 2);
	int64_t until;
	call(s, &c, 0, BREAKER_FAILURE);
	call(s, &c, 1, BREAKER_FAILURE);
	cr_assert_eq(breaker_acquire(s, "svc", &c, 501, &until), BREAKER_PROBE);
	cr_assert_eq(breaker_acquire(s, "svc", &c, 502, &until), BREAKER_PROBE);
	breaker_release(s, "svc", BREAKER_SUCCESS, 1, 510);
	breaker_release(s, "svc", BREAKER_FAILURE, 1, 520);
	cr_assert_eq(breaker_state(s, "svc", 521), BREAKER_OPEN);
	cr_assert_eq(breaker_acquire(s, "svc", &c, 600, &until), BREAKER_REJECT);
	cr_assert_eq(until, 1020);
	/* a cancelled probe frees its place without deciding */
	cr_assert_eq(breaker_acquire(s, "svc", &c, 1020, &until), BREAKER_PROBE);
	breaker_release(s, "svc", BREAKER_IGNORE, 1, 1030);
	cr_assert_eq(breaker_state(s, "svc", 1031), BREAKER_HALF_OPEN);
	cr_assert_eq(breaker_acquire(s, "svc", &c, 1040, &until), BREAKER_PROBE);
	breaker_set_free(s);
}

Test(breaker, late_result_of_old_call_ignored_while_open)
{
	struct breaker_set *s = breaker_set_new(8);
	struct breaker_config c = cfg(1, 0, 0, 1000, 1);
	int64_t until;
	/* a slow call admitted while closed ... */
	cr_assert_eq(breaker_acquire(s, "svc", &c, 0, &until), BREAKER_ALLOW);
	call(s, &c, 10, BREAKER_FAILURE);
	cr_assert_eq(breaker_state(s, "svc", 20), BREAKER_OPEN);
	/* ... reports success while open: it does not close the breaker */
	breaker_release(s, "svc", BREAKER_SUCCESS, 0, 30);
	cr_assert_eq(breaker_state(s, "svc", 40), BREAKER_OPEN);
	breaker_set_free(s);
}

Test(breaker, names_are_independent_and_json)
{
	struct breaker_set *s = breaker_set_new(8);
	struct breaker_config c = cfg(1, 0, 0, 1000, 1);
	int64_t until;
	cr_assert_eq(breaker_acquire(s, "a", &c, 0, &until), BREAKER_ALLOW);
	breaker_release(s, "a", BREAKER_FAILURE, 0, 0);
	cr_assert_eq(breaker_acquire(s, "b", &c, 0, &until), BREAKER_ALLOW);
	breaker_release(s, "b", BREAKER_SUCCESS, 0, 0);
	json_t *j = breaker_states_json(s, 10, 1000000);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "a"), "state")),
	                 "open");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "a"), "until_ms")),
	             1001000);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "b"), "state")),
	                 "closed");
	cr_assert(json_is_null(json_object_get(json_object_get(j, "b"), "until_ms")));
	json_decref(j);
	breaker_set_free(s);
}

Test(breaker, config_from_json_defaults)
{
	json_t *o = json_pack("{s:s, s:i}", "name", "x", "failures", 7);
	struct breaker_config c;
	const char *name = breaker_config_from_json(o, &c);
	cr_assert_str_eq(name, "x");
	cr_assert_eq(c.failures, 7);
	cr_assert_eq(c.open_for_ms, 30000);
	cr_assert_eq(c.half_open_probes, 1);
	json_decref(o);
	o = json_pack("{s:i}", "failures", 1);
	cr_assert_null(breaker_config_from_json(o, &c));
	json_decref(o);
}

Test(breaker, eviction_keeps_busy_breakers)
{
	struct breaker_set *s = breaker_set_new(2);
	struct breaker_config c = cfg(1, 0, 0, 1000, 1);
	int64_t until;
	breaker_acquire(s, "busy", &c, 0, &until); /* in flight */
	breaker_acquire(s, "idle", &c, 1, &until);
	breaker_release(s, "idle", BREAKER_SUCCESS, 0, 2);
	cr_assert_eq(breaker_acquire(s, "new", &c, 3, &until), BREAKER_ALLOW); /* evicts idle */
	breaker_release(s, "busy", BREAKER_FAILURE, 0, 4);
	cr_assert_eq(breaker_state(s, "busy", 5), BREAKER_OPEN);
	breaker_set_free(s);
}
