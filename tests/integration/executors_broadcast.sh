#!/usr/bin/env bash
# Executors at scale — route: broadcast: one task run per online executor
# of the pool, each with its own result; broadcast_success all (every copy
# must succeed) vs any (one is enough); offline executors are left out;
# downstream tasks wait for the whole broadcast.
# Each executor gets its own HOME (steps keep HOME from the executor), so a
# step can tell where it runs; b3's HOME holds a "fail" marker.
. "$(dirname "$0")/../lib/harness.sh"
it_setup executors_broadcast
D=$IT_DIR
# eq WANT CMD...: CMD prints WANT (re-run on every poll by wait_for)
eq() { local want=$1; shift; [ "$("$@" 2>/dev/null)" = "$want" ]; }
it_engine --insecure-local --lease 3s --heartbeat 1s --poll-ms 100 || exit 1
home_exec() { # home_exec ID POOL [fail]
	mkdir -p "$D/home-$1"
	[ "${3:-}" = fail ] && touch "$D/home-$1/fail"
	HOME=$D/home-$1 it_executor "$1" --heartbeat-ms 500 --slots 2 --pool "$2"
}
home_exec c1 bcok
home_exec c2 bcok
home_exec c3 bcok
C3=$EXECUTOR_PID
home_exec b1 bc
home_exec b2 bc
home_exec b3 bc fail
check "six executors online" wait_for 10 eq 6 psql_q "SELECT count(*) FROM executors WHERE state = 'online'"
kill -TERM "$C3"
check "c3 said bye (offline)" wait_for 5 eq offline psql_q "SELECT state FROM executors WHERE id = 'c3'"

STEP='sh: '"'"'printf "{\"home\":\"%s\"}" "$(basename "$HOME")" > "$WF_OUTPUT"; test ! -e "$HOME/fail"'"'"
gen() { # gen NAME POOL SUCCESS
	cat >"$D/$1.yaml" <<YAML
name: $1
tasks:
  hello:
    pool: $2
    route: broadcast
    broadcast_success: $3
    $STEP
  after:
    needs: hello
    pool: $2
    sh: "true"
YAML
	it_submit "$D/$1.yaml" >/dev/null
}
# "executor=state" of every final attempt of TASK in RUN, by executor
per_exec() {
	psql_q "SELECT string_agg(a.executor_id || '=' || a.state, ',' ORDER BY a.executor_id) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $1 AND t.task = '$2' AND NOT a.stale"
}
# distinct outputs.home over the task's rows
homes() {
	psql_q "SELECT string_agg(DISTINCT outputs->>'home', ',') FROM task_runs WHERE run_id = $1 AND task = '$2' AND outputs IS NOT NULL"
}
# the row that stands for the task in the DAG (target_executor NULL)
main_state() { psql_q "SELECT state FROM task_runs WHERE run_id = $1 AND task = '$2' AND target_executor IS NULL"; }

# ------------------------------------------------------- all, all succeed
gen bok bcok all
run=$(it_trigger bok)
wait_run_final 20 "$run"
got=$(per_exec "$run" hello)
echo "# broadcast over c1, c2 (c3 offline): $got"
check "broadcast: one run per online executor (c1, c2), none on offline c3 (got $got)" test "$got" = c1=succeeded,c2=succeeded
check "broadcast: each copy has its own result (outputs home-c1, home-c2; got $(homes "$run" hello))" test "$(homes "$run" hello)" = home-c1,home-c2
check "broadcast: each copy is a task run of its own, targeted at its executor" \
	test "$(psql_q "SELECT string_agg(DISTINCT coalesce(target_executor, executor_id), ',') FROM task_runs WHERE run_id = $run AND task = 'hello'")" = c1,c2
check "broadcast all: the task succeeded, downstream ran once, run succeeded" \
	test "$(main_state "$run" hello)/$(psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run AND t.task = 'after'")/$(run_state "$run")" = succeeded/1/succeeded
check "broadcast: downstream started after every copy finished" \
	test "$(psql_q "SELECT (SELECT min(a.claimed_at) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run AND t.task = 'after') >= (SELECT max(a.finished_at) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run AND t.task = 'hello')")" = t
# The API shows the copies.
copies=$(it_api GET "/api/v1/runs/$run" | jq '[.task_runs[] | select(.task == "hello")] | length')
check "broadcast: GET /api/v1/runs/{id} shows the copies (>= 2 rows for hello, got $copies)" test "$copies" -ge 2

# ---------------------------------------------- all, one executor fails
gen ball bc all
run=$(it_trigger ball)
wait_run_final 20 "$run"
got=$(per_exec "$run" hello)
echo "# broadcast all over b1, b2, b3(fail): $got"
check "broadcast all: b1, b2 succeeded and b3 failed, each its own result (got $got)" test "$got" = b1=succeeded,b2=succeeded,b3=failed
check "broadcast all: one failure fails the task" bash -c "case '$(main_state "$run" hello)' in failed|dead) exit 0;; esac; exit 1"
check "broadcast all: downstream upstream_failed, run failed" test "$(tr_q "$run" after state 2>/dev/null | head -n 1)/$(run_state "$run")" = upstream_failed/failed

# ---------------------------------------------- any, one executor fails
gen bany bc any
run=$(it_trigger bany)
wait_run_final 20 "$run"
got=$(per_exec "$run" hello)
echo "# broadcast any over b1, b2, b3(fail): $got"
check "broadcast any: every executor ran it once (got $got)" test "$got" = b1=succeeded,b2=succeeded,b3=failed
check "broadcast any: one success is enough: task succeeded, downstream ran, run succeeded" \
	test "$(main_state "$run" hello)/$(tr_q "$run" after state 2>/dev/null | head -n 1)/$(run_state "$run")" = succeeded/succeeded/succeeded
check "no engine errors" bash -c "! grep -h 'level=error' $D/engine-*.log"
