#!/usr/bin/env bash
# The engine with real executors over ZeroMQ: DAG order, outputs and params
# passed downstream, retries then dead letters, timeouts, priorities,
# cancel, pause.
. "$(dirname "$0")/../lib/harness.sh"
it_setup engine_basic
it_engine --insecure-local --lease 3s --heartbeat 1s --poll-ms 100 || exit 1
it_executor ex1 --heartbeat-ms 1000 --slots 4
it_executor ex2 --heartbeat-ms 1000 --slots 4
D=$IT_DIR

check "executors register (hello → executors rows online)" \
	wait_for 10 out_eq 2 psql_q "SELECT count(*) FROM executors WHERE state = 'online'"

# ---------------------------------------------------------------- diamond
cat >"$D/diamond.yaml" <<YAML
name: diamond
params:
  greeting: hello
tasks:
  a:
    sh: 'echo a >> $D/order; printf "{\"k\":\"v-42\"}" > "\$WF_OUTPUT"'
  b:
    needs: a
    shell: [sh, -c, 'sleep 0.2; echo b >> $D/order; echo "\$1 \$WF_PARAM_GREETING \$2" > $D/b.out', x, "\${tasks.a.output.k}", "\${run.workflow}"]
  c:
    needs: a
    shell: [sh, -c, 'echo c >> $D/order']
  d:
    needs: [b, c]
    shell: [sh, -c, 'echo d >> $D/order']
YAML
out=$(it_submit "$D/diamond.yaml")
check "submit diamond through the API" grep -q '"workflow":"diamond"' <<<"$out"
run=$(it_trigger diamond '{"greeting":"bonjour"}')
check "diamond: run created" test -n "$run"
wait_run_final 30 "$run"
check "diamond: run succeeded" test "$(run_state "$run")" = succeeded
check "diamond: a first, d last" test "$(head -n 1 "$D/order")$(tail -n 1 "$D/order")" = ad
check "diamond: every task ran once" test "$(sort "$D/order" | tr -d '\n')" = abcd
check "diamond: d claimed after b and c finished" test "$(psql_q "SELECT (SELECT min(claimed_at) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run AND t.task = 'd') >= (SELECT max(finished_at) FROM task_runs WHERE run_id = $run AND task IN ('b','c'))")" = t
check "diamond: output of a reached b's argv, param via WF_PARAM_*" test "$(cat "$D/b.out")" = "v-42 bonjour diamond"
check "diamond: outputs stored" test "$(tr_q "$run" a "outputs->>'k'")" = v-42
check "diamond: attempts rows, one per task, on known executors" \
	test "$(psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run AND a.state = 'succeeded' AND a.executor_id IN ('ex1','ex2') AND a.sent_at IS NOT NULL")" = 4

# ------------------------------------------------- retries, dead, timeout
cat >"$D/failing.yaml" <<YAML
name: failing
tasks:
  flaky:
    sh: 'exit 3'
    retries: 2
    backoff: {initial: 300ms, max: 1s, multiplier: 2, jitter: none}
  slow:
    shell: [sleep, "30"]
    timeout: 1s
  after:
    needs: flaky
    noop: {}
YAML
it_submit "$D/failing.yaml" >/dev/null
run=$(it_trigger failing)
wait_run_final 30 "$run"
check "retries: run failed" test "$(run_state "$run")" = failed
check "retries: flaky dead after 3 attempts" test "$(tr_q "$run" flaky "state || '/' || attempt")" = dead/3
check "retries: dead letter row" test "$(psql_q "SELECT count(*) FROM dead_letters d JOIN task_runs t ON t.id = d.task_run_id WHERE t.run_id = $run AND t.task = 'flaky'")" = 1
check "retries: backoff respected between attempts (>= 250 ms)" test "$(psql_q "SELECT bool_and(gap >= interval '250 ms') FROM (SELECT a.claimed_at - lag(a.finished_at) OVER (ORDER BY a.attempt) AS gap FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run AND t.task = 'flaky') x WHERE gap IS NOT NULL")" = t
check "retries: downstream upstream_failed" test "$(tr_q "$run" after state)" = upstream_failed
check "timeout: slow attempt recorded as timeout" test "$(psql_q "SELECT a.state FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run AND t.task = 'slow'")" = timeout
check "timeout: slow task final and not succeeded" bash -c "case '$(tr_q "$run" slow state)' in failed|dead) exit 0;; esac; exit 1"

# -------------------------------------------------------------- priorities
# Pool "solo" has no executor yet, so every task queues; then one executor
# with one slot arrives and must take high, then medium, then low.
cat >"$D/prio.yaml" <<YAML
name: prio
defaults:
  pool: solo
tasks:
  low1: {priority: low, sleep: 50ms}
  low2: {priority: low, sleep: 50ms}
  med1: {priority: medium, sleep: 50ms}
  high1: {priority: high, sleep: 50ms}
  high2: {priority: high, sleep: 50ms}
YAML
it_submit "$D/prio.yaml" >/dev/null
run=$(it_trigger prio)
sleep 0.5
check "priorities: nothing runs without an executor in the pool" test "$(psql_q "SELECT count(*) FROM task_runs WHERE run_id = $run AND state = 'queued'")" = 5
it_executor solo1 --heartbeat-ms 1000 --slots 1 --pool solo
wait_run_final 20 "$run"
# the attempts that ran: a task the engine could not send (the executor's
# connection not up yet: "cannot send to executor") ends as a lost attempt
# that never started, and runs again in its turn
order=$(psql_q "SELECT string_agg(t.task, ',' ORDER BY a.claimed_at, a.id) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run AND a.started_at IS NOT NULL")
check "priorities: high, high, medium, low, low (got $order)" bash -c "[[ '$order' =~ ^high[12],high[12],med1,low[12],low[12]$ ]]"
check "priorities: one slot never ran two at once" test "$(psql_q "SELECT count(*) FROM attempts_all a JOIN attempts_all b ON a.id < b.id AND a.task_run_id IN (SELECT id FROM task_runs WHERE run_id = $run) AND b.task_run_id IN (SELECT id FROM task_runs WHERE run_id = $run) AND a.started_at < b.finished_at AND b.started_at < a.finished_at")" = 0

# ------------------------------------------------------------------ cancel
cat >"$D/cancel.yaml" <<YAML
name: cancelme
tasks:
  long:
    shell: [sleep, "47.25"]
  next:
    needs: long
    noop: {}
YAML
it_submit "$D/cancel.yaml" >/dev/null
run=$(it_trigger cancelme)
wait_for 10 pgrep -f "slee[p] 47.25"
check "cancel: the step is running" pgrep -f "slee[p] 47.25"
it_api POST "/api/v1/runs/$run/cancel" '{}' >/dev/null
check "cancel: run cancelled" wait_for 5 out_eq cancelled run_state "$run"
check "cancel: the executor killed the running sleep" wait_for 8 bash -c '! pgrep -f "slee[p] 47.25"'
check "cancel: nothing left running" test "$(psql_q "SELECT count(*) FROM task_runs WHERE run_id = $run AND state = 'running'")" = 0

# ------------------------------------------------------------------- pause
cat >"$D/pause.yaml" <<YAML
name: pauseme
tasks:
  one: {sh: 'echo one > $D/pause.out'}
YAML
it_submit "$D/pause.yaml" >/dev/null
it_api POST /api/v1/workflows/pauseme/pause '{}' >/dev/null
check "pause: workflow paused" test "$(psql_q "SELECT paused FROM workflows WHERE name = 'pauseme'")" = t
run=$(it_trigger pauseme)
sleep 1.5
check "pause: run created while paused" test -n "$run"
check "pause: its task is not dispatched" test "$(tr_q "$run" one state)" = queued
check "pause: step did not run" test ! -e "$D/pause.out"
it_api POST /api/v1/workflows/pauseme/unpause '{}' >/dev/null
wait_run_final 10 "$run"
check "unpause: the run continues and succeeds" test "$(run_state "$run")" = succeeded

# -------------------------------------------------------- executors table
check "heartbeats reach the executors table" test "$(psql_q "SELECT count(*) FROM executors WHERE last_heartbeat > now() - interval '5 s' AND state = 'online'")" = 3
check "engine logged no errors" bash -c "! grep -q 'level=error' $D/engine-*.log"

# -------------------------------------------------------- metrics move
metric() { # metric NAME_WITH_LABELS: its value from /metrics (0 when absent)
	curl -fsS "$WF_URL/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
check "metrics: task durations were observed" test "$(metric 'wf_task_duration_seconds_count{status="succeeded"}')" -gt 0
check "metrics: dispatch latency was observed" test "$(metric wf_dispatch_latency_seconds_count)" -gt 0
before=$(metric 'wf_task_duration_seconds_count{status="succeeded"}')
run=$(it_trigger diamond)
wait_run_final 30 "$run"
check "metrics: a new run moves the task counters" test "$(metric 'wf_task_duration_seconds_count{status="succeeded"}')" -gt "$before"
