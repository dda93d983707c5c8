#!/usr/bin/env bash
# Broadcast fan-out (route: broadcast): one copy per online executor of the
# task's pool, each run only on its own executor; the parent task run is
# settled from its copies by broadcast_success (all / any); downstream tasks
# see only the parent; a copy whose executor is gone fails after the lease.
. "$(dirname "$0")/../lib/harness.sh"
it_setup engine_broadcast
it_engine --insecure-local --lease 3s --heartbeat 1s --poll-ms 100 || exit 1
it_executor bx1 --heartbeat-ms 1000 --slots 2 --pool bc
it_executor bx2 --heartbeat-ms 1000 --slots 2 --pool bc
it_executor bx3 --heartbeat-ms 1000 --slots 2 --pool bc
BX3_PID=$EXECUTOR_PID
it_executor ox1 --heartbeat-ms 1000 --slots 2 --pool other
D=$IT_DIR

check "four executors online (three in pool bc)" \
	wait_for 10 out_eq 4 psql_q "SELECT count(*) FROM executors WHERE state = 'online'"

copies_q() { # copies_q RUN TASK COLUMNS → one line per copy, by target
	psql_q "SELECT $3 FROM task_runs WHERE run_id = $1 AND task = '$2' AND target_executor IS NOT NULL ORDER BY target_executor"
}

# ------------------------------------------------------------- all succeed
cat >"$D/bcast.yaml" <<YAML
name: bcast
defaults:
  pool: bc
tasks:
  fan:
    route: broadcast
    sh: 'echo "\$WF_EXECUTOR_ID" >> $D/fan.out'
  after:
    needs: fan
    sh: 'echo after >> $D/after.out'
YAML
out=$(it_submit "$D/bcast.yaml")
check "submit a broadcast workflow" grep -q '"workflow":"bcast"' <<<"$out"
run=$(it_trigger bcast)
wait_run_final 20 "$run"
check "all: run succeeded" test "$(run_state "$run")" = succeeded
check "all: three copies, one per executor of the pool" \
	test "$(copies_q "$run" fan target_executor | tr '\n' ' ')" = "bx1 bx2 bx3 "
check "all: each copy ran on its own target" \
	test "$(psql_q "SELECT count(*) FROM task_runs WHERE run_id = $run AND task = 'fan' AND target_executor IS NOT NULL AND executor_id = target_executor AND state = 'succeeded'")" = 3
check "all: the step saw WF_EXECUTOR_ID of each executor once" \
	test "$(sort "$D/fan.out" | tr '\n' ' ')" = "bx1 bx2 bx3 "
check "all: no copy on the executor of another pool" \
	test "$(psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run AND a.executor_id = 'ox1'")" = 0
check "all: parent (target NULL) succeeded" \
	test "$(psql_q "SELECT state FROM task_runs WHERE run_id = $run AND task = 'fan' AND target_executor IS NULL")" = succeeded
check "all: downstream ran once, after every copy finished" \
	test "$(cat "$D/after.out")/$(psql_q "SELECT count(*) FROM task_runs WHERE run_id = $run AND task = 'after'")/$(psql_q "SELECT (SELECT min(claimed_at) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run AND t.task = 'after') >= (SELECT max(finished_at) FROM task_runs WHERE run_id = $run AND task = 'fan' AND target_executor IS NOT NULL)")" = "after/1/t"

# -------------------------------------------- one executor fails: all / any
for mode in all any; do
	cat >"$D/bc-$mode.yaml" <<YAML
name: bc-$mode
defaults:
  pool: bc
tasks:
  fan:
    route: broadcast
    broadcast_success: $mode
    sh: '[ "\$WF_EXECUTOR_ID" != bx2 ]'
  after:
    needs: fan
    noop: {}
YAML
	it_submit "$D/bc-$mode.yaml" >/dev/null
done
run_all=$(it_trigger bc-all)
run_any=$(it_trigger bc-any)
wait_run_final 20 "$run_all"
wait_run_final 20 "$run_any"
check "all + one failure: copies bx1 ok, bx2 failed, bx3 ok" \
	test "$(copies_q "$run_all" fan "target_executor || '=' || state" | tr '\n' ' ')" = "bx1=succeeded bx2=dead bx3=succeeded "
check "all + one failure: parent failed, naming bx2" \
	test "$(psql_q "SELECT state || ':' || (error LIKE '%1 of 3%bx2%')::text FROM task_runs WHERE run_id = $run_all AND task = 'fan' AND target_executor IS NULL")" = "failed:true"
check "all + one failure: downstream upstream_failed, run failed" \
	test "$(tr_q "$run_all" after state)/$(run_state "$run_all")" = upstream_failed/failed
check "any + one failure: parent succeeded" \
	test "$(psql_q "SELECT state FROM task_runs WHERE run_id = $run_any AND task = 'fan' AND target_executor IS NULL")" = succeeded
check "any + one failure: downstream ran, run succeeded" \
	test "$(tr_q "$run_any" after state)/$(run_state "$run_any")" = succeeded/succeeded

# ---------------------------------------------------- an executor is lost
cat >"$D/bc-lost.yaml" <<YAML
name: bc-lost
defaults:
  pool: bc
tasks:
  fan:
    route: broadcast
    broadcast_success: any
    sh: 'sleep 0.5'
YAML
it_submit "$D/bc-lost.yaml" >/dev/null
kill -9 "$BX3_PID"
run=$(it_trigger bc-lost)
wait_run_final 30 "$run"
check "lost executor: the run finishes" run_is_final "$run"
lost=$(psql_q "SELECT state || ': ' || error FROM task_runs WHERE run_id = $run AND task = 'fan' AND target_executor = 'bx3'")
echo "# bx3's copy: $lost"
lost_ok() { case "$lost" in failed:*bx3*| dead:*bx3*) return 0 ;; esac; return 1; }
check "lost executor: its copy failed with a clear error" lost_ok
check "lost executor: the other copies succeeded" \
	test "$(psql_q "SELECT count(*) FROM task_runs WHERE run_id = $run AND task = 'fan' AND target_executor IN ('bx1', 'bx2') AND state = 'succeeded'")" = 2
check "lost executor: any → parent succeeded" \
	test "$(psql_q "SELECT state FROM task_runs WHERE run_id = $run AND task = 'fan' AND target_executor IS NULL")" = succeeded

# A broadcast after bx3 is known lost fans out to the two left.
wait_for 10 out_eq lost psql_q "SELECT state FROM executors WHERE id = 'bx3'"
run=$(it_trigger bcast)
wait_run_final 20 "$run"
check "after the loss: two copies only, run succeeded" \
	test "$(copies_q "$run" fan target_executor | tr '\n' ' ')/$(run_state "$run")" = "bx1 bx2 /succeeded"

check "engine logged no errors" bash -c "! grep -q 'level=error' $D/engine-*.log"
