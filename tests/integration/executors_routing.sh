#!/usr/bin/env bash
# Executors at scale — routing: round-robin, random, least-loaded,
# executor:<id> (and waiting while that executor is away), label:<l>, and
# pools that isolate work. Broadcast has its own file
# (executors_broadcast.sh).
. "$(dirname "$0")/../lib/harness.sh"
it_setup executors_routing
D=$IT_DIR
# eq WANT CMD...: CMD prints WANT (re-run on every poll by wait_for)
eq() { local want=$1; shift; [ "$("$@" 2>/dev/null)" = "$want" ]; }
it_engine --insecure-local --lease 3s --heartbeat 1s --poll-ms 100 || exit 1

# pool rt: e1, e2 (label alpha), e3 (label beta), 4 slots each
it_executor e1 --heartbeat-ms 500 --slots 4 --pool rt --label alpha
it_executor e2 --heartbeat-ms 500 --slots 4 --pool rt --label alpha
it_executor e3 --heartbeat-ms 500 --slots 4 --pool rt --label beta
# pool ll: big (8 slots) and small (2 slots)
it_executor big --heartbeat-ms 500 --slots 8 --pool ll
it_executor small --heartbeat-ms 500 --slots 2 --pool ll
# default pool: d1
it_executor d1 --heartbeat-ms 500 --slots 4
check "six executors online" wait_for 10 eq 6 psql_q "SELECT count(*) FROM executors WHERE state = 'online'"

# A workflow of N sleep tasks with one route in one pool.
gen() { # gen NAME POOL ROUTE N STEP
	{
		echo "name: $1"
		echo "defaults: {pool: $2, route: \"$3\"}"
		echo "tasks:"
		for i in $(seq -w 1 "$4"); do echo "  t$i: {$5}"; done
	} >"$D/$1.yaml"
	it_submit "$D/$1.yaml" >/dev/null
}
# executor=count,... of the run's attempts (ordered by executor id)
spread() {
	psql_q "SELECT string_agg(executor_id || '=' || n, ',' ORDER BY executor_id) FROM (SELECT a.executor_id, count(*) n FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $1 GROUP BY 1) x"
}
count_on() { # count_on RUN SQL_CONDITION_ON_a
	psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $1 AND ($2)"
}
wait_reasons() { # the distinct wait_reason of the run's task runs in STATE
	it_api GET "/api/v1/runs/$1" | jq -r "[.task_runs[] | select(.state == \"$2\") | .wait_reason] | unique | join(\";\")"
}

# ---------------------------------------------------------- round-robin
gen rr rt round-robin 30 "sleep: 100ms"
run=$(it_trigger rr)
wait_run_final 30 "$run"
s=$(spread "$run")
echo "# round-robin over 30 tasks: $s"
check "round-robin: run succeeded" test "$(run_state "$run")" = succeeded
check "round-robin: all three executors used" test "$(count_on "$run" "true")/$(psql_q "SELECT count(DISTINCT a.executor_id) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run")" = 30/3
minmax=$(psql_q "SELECT min(n) || ' ' || max(n) FROM (SELECT count(*) n FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run GROUP BY a.executor_id) x")
# 30 tasks on 12 slots is already more than fits: see the backlog note below.
check "round-robin: counts within 8..12 of 10 (got $s)" bash -c "set -- $minmax; [ \$1 -ge 8 ] && [ \$2 -le 12 ]"
# A backlog bigger than the slots: still spread over all three. Credit
# comes first (a task never waits for the executor whose turn it is while
# another has a free slot), so the rotation skips executors that are full
# at that instant and the counts drift a little: within 8..12 of 10.
gen rr2 rt round-robin 30 "sleep: 400ms"
run=$(it_trigger rr2)
wait_run_final 30 "$run"
s=$(spread "$run")
minmax=$(psql_q "SELECT min(n) || ' ' || max(n) FROM (SELECT count(*) n FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run GROUP BY a.executor_id) x")
echo "# round-robin, 30 x 400 ms over 12 slots: $s"
check "round-robin with a backlog: counts within 8..12 of 10 (got $s)" bash -c "set -- $minmax; [ \$1 -ge 8 ] && [ \$2 -le 12 ]"

# --------------------------------------------------------------- random
# P(an executor gets fewer than 3 of 60 uniform picks among 3) < 1e-7.
gen rnd rt random 60 "sleep: 50ms"
run=$(it_trigger rnd)
wait_run_final 30 "$run"
s=$(spread "$run")
echo "# random over 60 tasks: $s"
check "random: run succeeded" test "$(run_state "$run")" = succeeded
check "random: every executor got at least 3 of 60 (got $s)" \
	test "$(psql_q "SELECT count(*) FROM (SELECT a.executor_id, count(*) n FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run GROUP BY 1) x WHERE n >= 3")" = 3

# --------------------------------------------------------- least-loaded
gen ll ll least-loaded 20 "sleep: 500ms"
run=$(it_trigger ll)
wait_run_final 30 "$run"
s=$(spread "$run")
echo "# least-loaded, big (8 slots) vs small (2 slots), 20 tasks: $s"
nb=$(count_on "$run" "a.executor_id = 'big'")
ns=$(count_on "$run" "a.executor_id = 'small'")
check "least-loaded: run succeeded" test "$(run_state "$run")" = succeeded
check "least-loaded: the executor with more free slots gets more (big $nb >= 2 x small $ns)" test "$nb" -ge $((2 * ns))
# Same slots, one executor busy: new work goes to the idle one.
gen busy ll "executor:small" 2 "sleep: 3s"
gen ll2 ll least-loaded 4 "sleep: 200ms"
it_api POST /api/v1/workflows/busy/runs '{}' >/dev/null
wait_for 5 eq 0 psql_q "SELECT free_slots FROM executors WHERE id = 'small'"
run=$(it_trigger ll2)
wait_run_final 20 "$run"
check "least-loaded: nothing goes to the executor with no free slot" test "$(count_on "$run" "a.executor_id = 'small'")" = 0

# ------------------------------------------------------ executor:<id>
gen pin rt "executor:e2" 10 "sleep: 100ms"
run=$(it_trigger pin)
wait_run_final 30 "$run"
check "executor:e2: all 10 ran on e2 only (got $(spread "$run"))" test "$(spread "$run")" = e2=10
# The pinned executor is away: the task waits, says why, and runs when it
# comes back.
it_executor x9 --heartbeat-ms 500 --slots 1 --pool rt
X9=$EXECUTOR_PID
wait_for 10 eq online psql_q "SELECT state FROM executors WHERE id = 'x9'"
kill -TERM "$X9"
wait_for 5 eq offline psql_q "SELECT state FROM executors WHERE id = 'x9'"
gen pinx rt "executor:x9" 1 "sh: 'true'"
run=$(it_trigger pinx)
sleep 2
check "executor:x9 away: the task waits queued" test "$(tr_q "$run" t1 state)" = queued
check "executor:x9 away: no other executor took it" test "$(count_on "$run" "true")" = 0
wr=$(wait_reasons "$run" queued)
check "executor:x9 away: wait_reason \"executor 'x9' is not online\" (got \"$wr\")" test "$wr" = "executor 'x9' is not online"
it_executor x9 --heartbeat-ms 500 --slots 1 --pool rt
wait_run_final 15 "$run"
check "executor:x9 back: the task ran on x9" test "$(tr_q "$run" t1 "state || '/' || executor_id")" = succeeded/x9
# A task for an executor that never comes back waits no longer than the
# task's timeout, then fails with a reason; a long timeout keeps it waiting.
cat >"$D/pinz.yaml" <<YAML
name: pinz
tasks:
  t1: {pool: rt, route: "executor:nobody", sh: "true", timeout: 3s}
YAML
it_submit "$D/pinz.yaml" >/dev/null
cat >"$D/pinlong.yaml" <<YAML
name: pinlong
tasks:
  t1: {pool: rt, route: "executor:nobody", sh: "true", timeout: 1h}
YAML
it_submit "$D/pinlong.yaml" >/dev/null
run=$(it_trigger pinz)
runlong=$(it_trigger pinlong)
sleep 1
check "executor:nobody: queued while within its timeout" test "$(tr_q "$run" t1 state)" = queued
check "executor:nobody: fails once its timeout (3 s) has passed" wait_for 10 eq failed tr_q "$run" t1 state
check "executor:nobody: the error says why" bash -c "[[ \"\$1\" == *'pinned to was not online within'* ]]" _ "$(tr_q "$run" t1 error)"
check "executor:nobody: the run fails" wait_for 5 eq failed run_state "$run"
check "executor:nobody with timeout 1h: still queued" test "$(tr_q "$runlong" t1 state)" = queued
it_api POST "/api/v1/runs/$runlong/cancel" '{}' >/dev/null
check "executor:nobody: cancel ends the wait" wait_for 5 eq cancelled run_state "$runlong"

# ----------------------------------------------------------- label:<l>
gen lab rt "label:alpha" 20 "sleep: 100ms"
run=$(it_trigger lab)
wait_run_final 30 "$run"
s=$(spread "$run")
echo "# label:alpha over 20 tasks: $s"
check "label:alpha: run succeeded" test "$(run_state "$run")" = succeeded
check "label:alpha: only e1/e2 (alpha), never e3 (beta)" test "$(count_on "$run" "a.executor_id NOT IN ('e1','e2')")" = 0
check "label:alpha: both alpha executors used" test "$(psql_q "SELECT count(DISTINCT a.executor_id) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run")" = 2
gen labx rt "label:gpu" 1 "sh: 'true'"
run=$(it_trigger labx)
sleep 1.5
check "label:gpu (nobody has it): waits queued" test "$(tr_q "$run" t1 state)" = queued
wr=$(wait_reasons "$run" queued)
check "label:gpu: wait_reason names the label and pool (got \"$wr\")" test "$wr" = "no online executor with label 'gpu' in pool 'rt'"
it_executor g1 --heartbeat-ms 500 --slots 1 --pool rt --label gpu
wait_run_final 15 "$run"
check "label:gpu: runs once an executor with the label arrives" test "$(tr_q "$run" t1 "state || '/' || executor_id")" = succeeded/g1

# --------------------------------------------------------------- pools
gen etl etl round-robin 3 "sh: 'true'"
run=$(it_trigger etl)
sleep 2
check "pool etl without executors: nothing runs" test "$(count_on "$run" "true")" = 0
check "pool etl: all three queued" test "$(psql_q "SELECT count(*) FROM task_runs WHERE run_id = $run AND state = 'queued'")" = 3
wr=$(wait_reasons "$run" queued)
check "pool etl: wait_reason \"no online executor in pool 'etl'\" (got \"$wr\")" test "$wr" = "no online executor in pool 'etl'"
it_executor etl1 --heartbeat-ms 500 --slots 2 --pool etl
wait_run_final 15 "$run"
check "pool etl: runs on the etl executor once it is there" test "$(spread "$run")" = etl1=3
gen dflt default round-robin 12 "sleep: 100ms"
run=$(it_trigger dflt)
wait_run_final 20 "$run"
check "pool default: never on etl or rt executors (got $(spread "$run"))" test "$(spread "$run")" = d1=12
check "no engine errors" bash -c "! grep -h 'level=error' $D/engine-*.log"
