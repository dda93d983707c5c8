#!/usr/bin/env bash
# Faults: an executor killed mid-task, a frozen executor whose late result
# is stale, the engine killed -9 and restarted, PostgreSQL restarted under a
# running engine (and an executor killed after it), and SIGTERM draining.
. "$(dirname "$0")/../lib/harness.sh"
it_setup engine_faults
it_engine --insecure-local --lease 3s --heartbeat 1s --poll-ms 100 || exit 1
it_executor k1 --heartbeat-ms 1000 --slots 2
K1=$EXECUTOR_PID
it_executor k2 --heartbeat-ms 1000 --slots 2
K2=$EXECUTOR_PID
D=$IT_DIR
wait_for 10 out_eq 2 psql_q "SELECT count(*) FROM executors WHERE state = 'online'"

pid_of() { case $1 in k1) echo "$K1" ;; k2) echo "$K2" ;; k3) echo "$K3" ;; esac; }

# ------------------------------------------------------ executor killed -9
cat >"$D/killexec.yaml" <<YAML
name: killexec
tasks:
  work:
    shell: [sh, -c, 'sleep 2; echo "\$WF_ATTEMPT" >> $D/killexec.out']
    retries: 2
    backoff: {initial: 100ms, jitter: none}
YAML
it_submit "$D/killexec.yaml" >/dev/null
run=$(it_trigger killexec)
wait_for 10 out_eq running tr_q "$run" work state
victim=$(tr_q "$run" work executor_id)
kill -9 "$(pid_of "$victim")"
t0=$SECONDS
wait_run_final 30 "$run"
check "executor killed: run succeeded (after $((SECONDS - t0))s)" test "$(run_state "$run")" = succeeded
check "executor killed: attempt 2 ran on the other executor" test "$(tr_q "$run" work "attempt || executor_id")" = "2$([ "$victim" = k1 ] && echo k2 || echo k1)"
check "executor killed: attempt 1 recorded lost" test "$(psql_q "SELECT a.state FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run AND a.attempt = 1 AND NOT a.stale")" = lost
check "executor killed: marked lost in the executors table" wait_for 5 out_eq lost psql_q "SELECT state FROM executors WHERE id = '$victim'"

# ------------------------------------- frozen executor: its result is stale
it_executor k3 --heartbeat-ms 1000 --slots 2
K3=$EXECUTOR_PID
wait_for 10 out_eq 2 psql_q "SELECT count(*) FROM executors WHERE state = 'online'"
cat >"$D/stale.yaml" <<YAML
name: stale
tasks:
  work:
    shell: [sh, -c, 'sleep 1; echo "\$WF_ATTEMPT" >> $D/stale.out']
    retries: 2
    backoff: {initial: 100ms, jitter: none}
YAML
it_submit "$D/stale.yaml" >/dev/null
run=$(it_trigger stale)
wait_for 10 out_eq running tr_q "$run" work state
frozen=$(tr_q "$run" work executor_id)
kill -STOP "$(pid_of "$frozen")"
wait_for 15 out_eq 2 tr_q "$run" work attempt
kill -CONT "$(pid_of "$frozen")"
wait_run_final 20 "$run"
check "frozen executor: run succeeded with attempt 2" test "$(tr_q "$run" work "state || '/' || attempt")" = succeeded/2
check "frozen executor: its late result was recorded stale" wait_for 5 out_eq 1 psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run AND a.stale AND a.attempt = 1"
check "frozen executor: the stale result did not change the task run" test "$(tr_q "$run" work "state || '/' || attempt")" = succeeded/2
check "frozen executor: back online after it resumed" wait_for 5 out_eq online psql_q "SELECT state FROM executors WHERE id = '$frozen'"

# --------------------------------------------- engine killed -9, restarted
cat >"$D/crash.yaml" <<YAML
name: crash
defaults:
  retries: 3
  backoff: {initial: 100ms, jitter: none}
tasks:
YAML
for i in 1 2 3 4 5 6; do printf '  s%d: {sleep: 1500ms}\n' "$i" >>"$D/crash.yaml"; done
printf '  join: {needs: [s1, s2, s3, s4, s5, s6], noop: {}}\n' >>"$D/crash.yaml"
it_submit "$D/crash.yaml" >/dev/null
run=$(it_trigger crash)
wait_for 10 out_ge 2 psql_q "SELECT count(*) FROM task_runs WHERE run_id = $run AND state = 'running'"
kill -9 "$ENGINE_PID"
wait "$ENGINE_PID" 2>/dev/null
sleep 1
IT_HTTP_PORT=$IT_HTTP_PORT_USED IT_ZMQ_PORT=$IT_ZMQ_PORT_USED it_engine --insecure-local --lease 3s --heartbeat 1s --poll-ms 100
check "engine restarted on the same ports" test $? = 0
t0=$SECONDS
wait_run_final 40 "$run"
check "engine killed: run finished after restart ($((SECONDS - t0))s)" test "$(run_state "$run")" = succeeded
check "engine killed: every task run final, none running" test "$(psql_q "SELECT count(*) FROM task_runs WHERE run_id = $run AND state <> 'succeeded'")" = 0
check "engine killed: no attempt left running" test "$(psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run AND a.state = 'running'")" = 0

# -------------------------------------------- PostgreSQL restarted under us
cat >"$D/dbdown.yaml" <<YAML
name: dbdown
defaults:
  retries: 3
  backoff: {initial: 100ms, jitter: none}
tasks:
YAML
for i in 1 2 3 4 5 6 7 8; do printf '  t%d: {sleep: %dms}\n' "$i" $((i * 300)) >>"$D/dbdown.yaml"; done
it_submit "$D/dbdown.yaml" >/dev/null
run=$(it_trigger dbdown)
wait_for 10 out_ge 2 psql_q "SELECT count(*) FROM task_runs WHERE run_id = $run AND state = 'running'"
pg_stop "$PGHOST"
sleep 2
url=$WF_DATABASE_URL
pg_start "$PGHOST" >/dev/null
export WF_DATABASE_URL=$url # pg_start points it at the postgres database
check "database restart: engine still running" kill -0 "$ENGINE_PID"
wait_run_final 40 "$run"
check "database restart: run succeeded" test "$(run_state "$run")" = succeeded
check "database restart: results buffered, not lost (no task ran twice)" test "$(psql_q "SELECT max(attempt) FROM task_runs WHERE run_id = $run")" = 1
check "database restart: engine reported the outage and the recovery" grep -q "database work resumed" "$D"/engine-*.log
# the appliers failed during the outage: the reaper (held back meanwhile)
# must work again once they recover. (The API's pooled connections died
# with the server: the first request on each answers 503, hence the retry.)
run=""
for _ in 1 2 3 4 5 6; do
	run=$(it_trigger killexec)
	[ -n "$run" ] && break
	sleep 0.5
done
wait_for 10 out_eq running tr_q "$run" work state
victim=$(tr_q "$run" work executor_id)
kill -9 "$(pid_of "$victim")"
wait_run_final 30 "$run"
check "database restart: expired leases are reaped again afterwards" test "$(tr_q "$run" work "state || '/' || attempt")" = succeeded/2

# ------------------------------------------------------------ SIGTERM drain
kill -TERM "$ENGINE_PID"
wait_for 15 bash -c "! kill -0 $ENGINE_PID 2>/dev/null"
wait "$ENGINE_PID"
check "SIGTERM: engine drained and exited 0" test $? = 0
check "SIGTERM: logged the drain" grep -q "draining" "$D"/engine-*.log

# ------------------------- a lost executor's tasks come back before the lease
# A long lease (60 s): the task comes back when the executor is found lost
# (3 heartbeats, 6 s), not when the lease would run out.
kill -TERM "$K1" "$K2" "$K3" 2>/dev/null # only k5 and k6 below
IT_HTTP_PORT=$IT_HTTP_PORT_USED IT_ZMQ_PORT=$IT_ZMQ_PORT_USED it_engine --insecure-local --lease 60s --heartbeat 2s --poll-ms 100
check "long lease: engine started again" test $? = 0
it_executor k5 --heartbeat-ms 1000 --slots 1
K5=$EXECUTOR_PID
it_executor k6 --heartbeat-ms 1000 --slots 1
K6=$EXECUTOR_PID
pid_of() { case $1 in k5) echo "$K5" ;; k6) echo "$K6" ;; esac; }
wait_for 10 out_ge 2 psql_q "SELECT count(*) FROM executors WHERE id IN ('k5', 'k6') AND state = 'online'"
run=$(it_trigger killexec)
wait_for 20 out_eq running tr_q "$run" work state
victim=$(tr_q "$run" work executor_id)
if [ "$victim" = k5 ] || [ "$victim" = k6 ]; then
	kill -9 "$(pid_of "$victim")"
	t0=$SECONDS
	wait_run_final 30 "$run"
	check "long lease: a killed executor's task ran again before its 60 s lease ($((SECONDS - t0))s)" test "$(tr_q "$run" work "state || '/' || attempt")" = succeeded/2
else
	kill -9 "$(pid_of "$victim")" 2>/dev/null
	check "long lease: the task went to k5 or k6 (it went to $victim)" false
fi
