#!/usr/bin/env bash
# A 1,000-task fan-out (noop and sleep 0) through two executors: every
# task run succeeds once; prints the time taken (a figure, not an assertion).
. "$(dirname "$0")/../lib/harness.sh"
it_setup engine_scale
it_engine --insecure-local --lease 10s --heartbeat 1s || exit 1
it_executor s1 --heartbeat-ms 1000 --slots 64
it_executor s2 --heartbeat-ms 1000 --slots 64
D=$IT_DIR
wait_for 10 out_eq 2 psql_q "SELECT count(*) FROM executors WHERE state = 'online'"

{
	echo "name: fanout"
	echo "tasks:"
	echo "  root: {noop: {}}"
	for i in $(seq 1 1000); do
		if [ $((i % 2)) = 0 ]; then echo "  t$i: {needs: root, noop: {}}"; else echo "  t$i: {needs: root, sleep: 0ms}"; fi
	done
	echo "  join: {needs: [$(seq -s, -f 't%g' 1 1000)], noop: {}}"
} >"$D/fanout.yaml"
out=$(it_submit "$D/fanout.yaml")
check "1,002-task workflow accepted" grep -q '"workflow":"fanout"' <<<"$out"

for round in 1 2; do
	start=$(date +%s.%N)
	run=$(it_trigger fanout)
	wait_run_final 120 "$run"
	end=$(date +%s.%N)
	secs=$(echo "$end - $start" | bc -l)
	echo "# round $round: 1,002 task runs in $(printf '%.2f' "$secs") s ($(printf '%.0f' "$(echo "1002 / $secs" | bc -l)") tasks/s, trigger to run final)"
	check "round $round: run succeeded" test "$(run_state "$run")" = succeeded
	check "round $round: all 1,002 task runs succeeded on the first attempt" test "$(psql_q "SELECT count(*) FROM task_runs WHERE run_id = $run AND state = 'succeeded' AND attempt = 1")" = 1002
	check "round $round: one attempt row per task run" test "$(psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run")" = 1002
	check "round $round: both executors took work" test "$(psql_q "SELECT count(DISTINCT executor_id) FROM task_runs WHERE run_id = $run")" = 2
	psql_q "SELECT 'first claim to last finish: ' || round(extract(epoch FROM max(t.finished_at) - min(a.claimed_at)) * 1000) || ' ms, run created to run finished: ' || round(extract(epoch FROM r.finished_at - r.created_at) * 1000) || ' ms' FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id JOIN runs r ON r.id = t.run_id WHERE t.run_id = $run GROUP BY r.id" | sed 's/^/# /'
	psql_q "SELECT 'schedule-to-start ms: p50 ' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)) || ', p99 ' || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)) FROM (SELECT extract(epoch FROM a.claimed_at - t.available_at) * 1000 AS ms FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run) x" | sed 's/^/# /'
done
check "engine logged no errors" bash -c "! grep -q 'level=error' $D/engine-*.log"
