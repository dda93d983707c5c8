#!/usr/bin/env bash
# Executors at scale — drain and reload: SIGTERM on an executor running a
# 3 s task (it takes no new work, finishes and reports the step, exits 0;
# the engine routes around it meanwhile); SIGHUP re-reads --config (slots
# 1 → 3, labels) and the heartbeats report it.
. "$(dirname "$0")/../lib/harness.sh"
it_setup executors_drain
D=$IT_DIR
# eq WANT CMD...: CMD prints WANT (re-run on every poll by wait_for)
eq() { local want=$1; shift; [ "$("$@" 2>/dev/null)" = "$want" ]; }
ex_q() { psql_q "SELECT $2 FROM executors WHERE id = '$1'"; }
it_engine --insecure-local --lease 3s --heartbeat 1s --poll-ms 100 || exit 1
it_executor dA --heartbeat-ms 500 --slots 2 --pool dr
DA=$EXECUTOR_PID
it_executor dB --heartbeat-ms 500 --slots 2 --pool dr
check "dA and dB online" wait_for 10 eq 2 psql_q "SELECT count(*) FROM executors WHERE pool = 'dr' AND state = 'online'"

# ---------------------------------------------------------------- drain
cat >"$D/long.yaml" <<YAML
name: long
tasks:
  long:
    pool: dr
    route: "executor:dA"
    sh: 'sleep 3; echo "done by attempt \$WF_ATTEMPT" > $D/long.out'
YAML
{
	echo "name: more"
	echo "defaults: {pool: dr, route: round-robin}"
	echo "tasks:"
	for i in $(seq -w 1 8); do echo "  m$i: {sleep: 200ms}"; done
} >"$D/more.yaml"
it_submit "$D/long.yaml" >/dev/null
it_submit "$D/more.yaml" >/dev/null
run=$(it_trigger long)
wait_for 10 eq running tr_q "$run" long state
sleep 0.3
kill -TERM "$DA"
check "SIGTERM: dA reports draining" wait_for 3 eq draining ex_q dA state
check "SIGTERM: dA reports 0 free slots while draining (it has 1 idle slot)" wait_for 3 eq 0 ex_q dA free_slots
more=$(it_trigger more)
wait_run_final 20 "$more"
check "drain: new work succeeded meanwhile" test "$(run_state "$more")" = succeeded
check "drain: all new tasks went to dB (the engine routed around dA)" \
	test "$(psql_q "SELECT string_agg(DISTINCT a.executor_id, ',') FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $more")" = dB
check "drain: nothing was sent to dA and refused" \
	test "$(psql_q "SELECT count(*) FROM attempts_all WHERE executor_id = 'dA' AND error LIKE '%draining%'")" = 0
check "drain: dA still draining while its step runs" test "$(ex_q dA state)" = draining
wait_run_final 10 "$run"
check "drain: the running step finished and was reported: succeeded, attempt 1" test "$(tr_q "$run" long "state || '/' || attempt || '/' || executor_id")" = succeeded/1/dA
check "drain: the step ran to its end" test "$(cat "$D/long.out" 2>/dev/null)" = "done by attempt 1"
check "drain: one attempt only (no lease loss, no retry)" test "$(psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run")" = 1
wait_for 10 bash -c "! kill -0 $DA 2>/dev/null"
wait "$DA"
rc=$?
check "drain: dA exited 0 (got $rc)" test "$rc" = 0
check "drain: dA offline after its bye" wait_for 3 eq offline ex_q dA state
check "drain: dA logged draining, then stopped" bash -c "grep -q 'draining' $D/executor-dA.log && grep -q 'executor stopped' $D/executor-dA.log"

# A pinned task while its executor drains waits for it (it is not sent).
it_executor dA --heartbeat-ms 500 --slots 2 --pool dr
DA=$EXECUTOR_PID
wait_for 10 eq online ex_q dA state
run=$(it_trigger long)
wait_for 10 eq running tr_q "$run" long state
kill -TERM "$DA"
wait_for 3 eq draining ex_q dA state
run2=$(it_trigger long)
sleep 1.5
check "drain: a new task pinned to the draining dA waits queued" test "$(tr_q "$run2" long state)" = queued
wait_run_final 10 "$run"
check "drain: the first one finished" test "$(run_state "$run")" = succeeded
wait "$DA"
it_executor dA --heartbeat-ms 500 --slots 2 --pool dr
DA=$EXECUTOR_PID
wait_run_final 15 "$run2"
check "drain: the waiting one runs when dA is back" test "$(tr_q "$run2" long "state || '/' || executor_id")" = succeeded/dA

# --------------------------------------------------------------- reload
cat >"$D/dC.conf" <<CONF
pool=rl
slots=1
label=small
CONF
it_executor dC --heartbeat-ms 500 --config "$D/dC.conf"
DC=$EXECUTOR_PID
check "reload: dC online with 1 slot from its config file" wait_for 10 eq "online/1/1/small" ex_q dC "state || '/' || slots || '/' || free_slots || '/' || array_to_string(labels, ',')"
cat >"$D/dC.conf" <<CONF
pool=rl
slots=3
label=big
label=fast
CONF
kill -HUP "$DC"
check "reload: after SIGHUP the heartbeats report 3 slots (3 free)" wait_for 5 eq "3/3" ex_q dC "slots || '/' || free_slots"
check "reload: the new labels are registered" wait_for 5 eq "big,fast" ex_q dC "array_to_string(labels, ',')"
check "reload: the API shows 3 slots" test "$(it_api GET /api/v1/executors | jq -r '.items[] | select(.id == "dC") | "\(.free_slots)/\(.slots)"')" = 3/3
check "reload: dC still online, same process" bash -c "kill -0 $DC && [ \"\$(psql -X -A -t -d '$WF_DATABASE_URL' -c \"SELECT state FROM executors WHERE id = 'dC'\")\" = online ]"
# The engine uses the new credit: three 1.5 s tasks run at the same time.
{
	echo "name: three"
	echo "defaults: {pool: rl}"
	echo "tasks:"
	for i in 1 2 3; do echo "  c$i: {sleep: 1500ms}"; done
} >"$D/three.yaml"
it_submit "$D/three.yaml" >/dev/null
run=$(it_trigger three)
wait_run_final 15 "$run"
span=$(psql_q "SELECT round(extract(epoch FROM max(a.finished_at) - min(a.started_at))::numeric, 2) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run")
check "reload: 3 x 1.5 s tasks ran concurrently on dC (span ${span}s < 2.5 s)" test "$(echo "$span < 2.5" | bc)" = 1
# Back down to 1 slot: the engine must not send more than 1 at a time.
printf 'pool=rl\nslots=1\n' >"$D/dC.conf"
kill -HUP "$DC"
check "reload: slots 3 → 1 reported" wait_for 5 eq "1/1" ex_q dC "slots || '/' || free_slots"
run=$(it_trigger three)
wait_run_final 15 "$run"
over=$(psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id JOIN attempts_all b ON b.task_run_id IN (SELECT id FROM task_runs WHERE run_id = $run) AND b.id > a.id AND b.started_at < a.finished_at AND a.started_at < b.finished_at WHERE t.run_id = $run")
check "reload: with 1 slot the three tasks ran one after another" test "$over" = 0
check "reload: and none was refused" test "$(psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run")" = 3
# An invalid config file: the reload is refused, the executor keeps going.
printf 'slots=banana\n' >"$D/dC.conf"
kill -HUP "$DC"
sleep 1
check "reload: an invalid file is refused and logged, settings unchanged" bash -c "grep -q 'reload failed' $D/executor-dC.log && kill -0 $DC"
check "reload: still 1 slot, online" test "$(ex_q dC "state || '/' || slots")" = online/1
check "no engine errors" bash -c "! grep -h 'level=error' $D/engine-*.log"
