#!/usr/bin/env bash
# Executors at scale — credit-based dispatch: the engine sends a task to an
# executor only while it has a free slot, so a busy (slow) executor never
# hoards a backlog while the others idle.
#   pool "credit": slow (1 slot, busy with a 5 s task), f1..f3 (2 slots each)
#   a batch of 30 short round-robin tasks must run on f1..f3 only, all of it
#   before the slow task ends, never more tasks at once than slots anywhere.
. "$(dirname "$0")/../lib/harness.sh"
it_setup executors_credit
D=$IT_DIR
# eq WANT CMD...: CMD prints WANT (re-run on every poll by wait_for)
eq() { local want=$1; shift; [ "$("$@" 2>/dev/null)" = "$want" ]; }
it_engine --insecure-local --lease 3s --heartbeat 1s --poll-ms 100 || exit 1
it_executor slow --heartbeat-ms 500 --slots 1 --pool credit --label slow
for f in f1 f2 f3; do it_executor "$f" --heartbeat-ms 500 --slots 2 --pool credit; done
check "four executors online in pool credit" \
	wait_for 10 eq 4 psql_q "SELECT count(*) FROM executors WHERE pool = 'credit' AND state = 'online'"

attempts_of() { # attempts_of RUN → "task|executor|claimed|started|finished|state" lines
	psql_q "SELECT t.task, a.executor_id, extract(epoch FROM a.claimed_at), extract(epoch FROM a.started_at), extract(epoch FROM a.finished_at), a.state FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $1 ORDER BY a.claimed_at"
}

cat >"$D/slowjob.yaml" <<YAML
name: slowjob
defaults: {pool: credit}
tasks:
  s: {route: "label:slow", sleep: 5s}
YAML
{
	echo "name: batch"
	echo "defaults: {pool: credit, route: round-robin}"
	echo "tasks:"
	for i in $(seq -w 1 30); do echo "  b$i: {sleep: 300ms}"; done
} >"$D/batch.yaml"
it_submit "$D/slowjob.yaml" >/dev/null
it_submit "$D/batch.yaml" >/dev/null

slow_run=$(it_trigger slowjob)
wait_for 10 eq running tr_q "$slow_run" s state
check "the 5 s task runs on slow" test "$(tr_q "$slow_run" s executor_id)" = slow
wait_for 3 eq 0 psql_q "SELECT free_slots FROM executors WHERE id = 'slow'"
check "slow reports 0 free slots while busy" test "$(psql_q "SELECT free_slots FROM executors WHERE id = 'slow'")" = 0

t0=$(date +%s.%N)
batch_run=$(it_trigger batch)
wait_run_final 30 "$batch_run"
batch_secs=$(echo "$(date +%s.%N) - $t0" | bc)
echo "# batch of 30 x 300 ms on 3 x 2 free slots took ${batch_secs}s (ideal 1.5 s)"
check "batch: succeeded" test "$(run_state "$batch_run")" = succeeded
check "batch: no task went to the busy slow executor" \
	test "$(psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $batch_run AND a.executor_id = 'slow'")" = 0
check "batch: finished while the slow task still ran" test "$(tr_q "$slow_run" s state)" = running
check "batch: every fast executor took part" \
	test "$(psql_q "SELECT count(DISTINCT a.executor_id) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $batch_run")" = 3
per=$(psql_q "SELECT string_agg(executor_id || '=' || n, ',' ORDER BY executor_id) FROM (SELECT a.executor_id, count(*) n FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $batch_run GROUP BY 1) x")
echo "# batch tasks per executor: $per"
check "batch: one attempt per task (the engine never over-sent: no 'no free slot' refusals)" \
	test "$(psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $batch_run")" = 30
check "batch: finished in under 4.5 s (no task queued behind the slow one)" test "$(echo "$batch_secs < 4.5" | bc)" = 1
# Longest wait from run creation to claim: with 6 slots and 300 ms tasks the
# last of 30 tasks is claimed after about 5 rounds (1.5 s), not after 5 s.
maxwait=$(psql_q "SELECT round(extract(epoch FROM max(a.claimed_at) - min(r.created_at))::numeric, 2) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id JOIN runs r ON r.id = t.run_id WHERE t.run_id = $batch_run")
echo "# last batch task claimed ${maxwait}s after the run was created"
check "batch: the last task was claimed well before the slow task ended (< 4 s)" test "$(echo "$maxwait < 4" | bc)" = 1
# Never more tasks at once on an executor than its slots (executor clocks).
over=$(psql_q "SELECT count(*) FROM attempts_all a JOIN executors x ON x.id = a.executor_id WHERE a.started_at IS NOT NULL AND (SELECT count(*) FROM attempts_all b WHERE b.executor_id = a.executor_id AND b.started_at <= a.started_at AND b.finished_at > a.started_at AND b.id <> a.id) >= x.slots")
check "credit: no executor ever ran more tasks at once than its slots" test "$over" = 0
# While the batch ran, the three fast executors were kept full: in the
# middle of the batch at least 5 of their 6 slots were busy.
mid=$(psql_q "WITH b AS (SELECT a.started_at s, a.finished_at f FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $batch_run), m AS (SELECT min(s) + (max(f) - min(s)) / 2 AS at FROM b) SELECT count(*) FROM b, m WHERE b.s <= m.at AND b.f > m.at")
echo "# busy fast slots in the middle of the batch: $mid of 6"
check "credit: the idle executors' slots were used (>= 5 of 6 busy mid-batch)" test "$mid" -ge 5

wait_run_final 15 "$slow_run"
check "slow task succeeded on its first attempt" test "$(tr_q "$slow_run" s "state || '/' || attempt")" = succeeded/1
# Once free, the slow executor takes its share again.
run=$(it_trigger batch)
wait_run_final 30 "$run"
check "second batch: succeeded" test "$(run_state "$run")" = succeeded
n=$(psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run AND a.executor_id = 'slow'")
echo "# second batch: slow took $n of 30"
check "second batch: the slow executor, free again, takes work (got $n)" test "$n" -ge 2

# A backlog larger than all slots: nothing is sent beyond the credit; the
# rest waits queued in the database (not on a socket) and drains in order.
{
	echo "name: backlog"
	echo "defaults: {pool: credit}"
	echo "tasks:"
	for i in $(seq -w 1 40); do echo "  k$i: {sleep: 1s}"; done
} >"$D/backlog.yaml"
it_submit "$D/backlog.yaml" >/dev/null
run=$(it_trigger backlog)
sleep 0.6
running=$(psql_q "SELECT count(*) FROM task_runs WHERE run_id = $run AND state = 'running'")
queued=$(psql_q "SELECT count(*) FROM task_runs WHERE run_id = $run AND state = 'queued'")
check "backlog: at most 7 running (= total slots), got $running" test "$running" -le 7
check "backlog: the rest waits queued in the database (got $queued)" test "$queued" -ge 33
wr=$(it_api GET "/api/v1/runs/$run" | jq -r '[.task_runs[] | select(.state == "queued") | .wait_reason] | unique | join(";")')
check "backlog: queued tasks say 'waiting for a free slot' (got '$wr')" test "$wr" = "waiting for a free slot"
wait_run_final 30 "$run"
check "backlog: all 40 succeeded, one attempt each" test "$(psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run AND a.state = 'succeeded'")/$(run_state "$run")" = 40/succeeded
check "no engine errors" bash -c "! grep -h 'level=error' $D/engine-*.log"
