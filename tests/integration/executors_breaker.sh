#!/usr/bin/env bash
# Executors at scale — circuit breakers against tests/lib/flaky_http.py:
# 3 failures open the breaker; while open the downstream gets no call; a
# breaker_open refusal is retried after open_for without costing a retry;
# the state shows in GET /api/v1/executors, `wfctl executors` and events;
# a failed half-open probe reopens it; once the server is fixed the probe
# closes it and everything succeeds.
. "$(dirname "$0")/../lib/harness.sh"
it_setup executors_breaker
D=$IT_DIR
# eq WANT CMD...: CMD prints WANT (re-run on every poll by wait_for)
eq() { local want=$1; shift; [ "$("$@" 2>/dev/null)" = "$want" ]; }
ge() { local min=$1; shift; local v; v=$("$@" 2>/dev/null) && [ -n "$v" ] && [ "$v" -ge "$min" ]; }

python3 "$WF_ROOT/tests/lib/flaky_http.py" --port-file "$D/flaky.port" --mode fail >"$D/flaky.log" 2>&1 &
IT_PIDS+=("$!")
wait_for 10 test -s "$D/flaky.port" || { echo "# flaky_http.py did not start"; exit 1; }
FP=$(cat "$D/flaky.port")
FLAKY=http://127.0.0.1:$FP
calls() { curl -fsS "$FLAKY/stats" | jq -r ".calls[\"$1\"] // 0"; }
mode() { curl -fsS -X POST --data-binary "{\"mode\":\"$1\"}" "$FLAKY/control" >/dev/null; }

it_engine --insecure-local --lease 3s --heartbeat 1s --poll-ms 100 || exit 1
it_executor k1 --heartbeat-ms 500 --slots 4 --pool brk
check "executor k1 online" wait_for 10 eq online psql_q "SELECT state FROM executors WHERE id = 'k1'"

BREAKER='{name: flaky.test, failures: 3, open_for: 5s, half_open_probes: 1}'
cat >"$D/brk.yaml" <<YAML
name: brk
tasks:
  call:
    pool: brk
    http: {method: GET, url: "$FLAKY/call", timeout: 2s}
    retries: 6
    backoff: {initial: 300ms, max: 300ms, multiplier: 1, jitter: none}
    breaker: $BREAKER
YAML
{
	echo "name: brk2"
	echo "defaults: {pool: brk, retries: 0, breaker: $BREAKER}"
	echo "tasks:"
	for i in 1 2 3; do echo "  o$i: {http: {url: \"$FLAKY/other\", timeout: 2s}}"; done
} >"$D/brk2.yaml"
it_submit "$D/brk.yaml" >/dev/null
it_submit "$D/brk2.yaml" >/dev/null

att_states() { # att_states RUN TASK → "failed,failed,..." in attempt order
	psql_q "SELECT string_agg(a.state, ',' ORDER BY a.attempt) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $1 AND t.task = '$2' AND NOT a.stale"
}
n_state() { # n_state RUN TASK STATE → attempts in STATE
	psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $1 AND t.task = '$2' AND a.state = '$3' AND NOT a.stale"
}
breaker_state() { psql_q "SELECT coalesce(breakers->'flaky.test'->>'state', 'closed') FROM executors WHERE id = 'k1'"; }

# ------------------------------------------------ 3 failures → open
run=$(it_trigger brk)
check "failing endpoint: a breaker_open refusal follows 3 failures" wait_for 10 ge 1 n_state "$run" call breaker_open
t_open=$SECONDS
st=$(att_states "$run" call)
check "failing endpoint: attempts failed,failed,failed,breaker_open (got $st)" test "$st" = failed,failed,failed,breaker_open
check "open: the downstream got exactly 3 calls" test "$(calls /call)" = 3
check "open: the executor reports it open in its heartbeat" wait_for 3 eq open breaker_state
check "open: heartbeat carries failures and until_ms" test "$(psql_q "SELECT (breakers->'flaky.test'->>'failures')::int >= 3 AND (breakers->'flaky.test'->>'until_ms')::bigint > extract(epoch FROM now()) * 1000 FROM executors WHERE id = 'k1'")" = t
tr=$(psql_q "SELECT state || '/' || attempt || '/' || max_attempts || '/' || retries_used FROM task_runs WHERE run_id = $run AND task = 'call'")
check "open: the task waits retrying; the refusal costs no retry (state/attempt/max_attempts/retries_used = retrying/4/8/3, got $tr)" test "$tr" = retrying/4/8/3
check "open: retried after open_for (available_at about 5 s after the refusal)" \
	test "$(psql_q "SELECT t.available_at - a.finished_at BETWEEN interval '4.5 s' AND interval '5.5 s' FROM task_runs t JOIN attempts_all a ON a.task_run_id = t.id AND a.attempt = 4 WHERE t.run_id = $run AND t.task = 'call'")" = t
wr=$(it_api GET "/api/v1/runs/$run" | jq -r '.task_runs[] | select(.task == "call") | .wait_reason')
echo "# wait_reason while open: $wr"
check "open: the run's API tells why it waits (mentions the breaker, got \"$wr\")" bash -c '[[ $1 == *"flaky.test"* ]]' _ "$wr"
api=$(it_api GET /api/v1/executors | jq -c '.items[] | select(.id == "k1") | .breakers["flaky.test"]')
check "open: GET /api/v1/executors shows the breaker open (got $api)" test "$(jq -r .state <<<"$api")" = open
out=$("$WF_BIN/wfctl" executors)
echo "$out" | sed 's/^/# /'
check "open: wfctl executors shows flaky.test:open(Ns) with 1 <= N <= 5" bash -c '[[ $1 =~ flaky\.test:open\(([0-9])s\) ]] && [ "${BASH_REMATCH[1]}" -ge 1 ] && [ "${BASH_REMATCH[1]}" -le 5 ]' _ "$out"

# Other tasks behind the same breaker while it is open: refused at once,
# the downstream sees nothing, and even with retries: 0 they are not dead.
run2=$(it_trigger brk2)
check "open: brk2's three tasks are refused (breaker_open)" wait_for 5 eq 3 psql_q "SELECT count(DISTINCT t.id) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id WHERE t.run_id = $run2 AND a.state = 'breaker_open'"
check "open: /other received no call" test "$(calls /other)" = 0
check "open: brk2's tasks (retries: 0) wait retrying, not dead" test "$(psql_q "SELECT string_agg(DISTINCT state, ',') FROM task_runs WHERE run_id = $run2")" = retrying
sleep $((t_open + 4 - SECONDS > 0 ? t_open + 4 - SECONDS : 0))
check "open: 4 s after opening still exactly 3 calls in total" test "$(curl -fsS "$FLAKY/stats" | jq .total)" = 3

# ---------------------------------- half-open probe fails → open again
check "half-open: the probe is let through and fails" wait_for 8 eq 4 n_state "$run" call failed
check "half-open: the downstream got the probe (4 calls on /call)" test "$(calls /call)" = 4
check "half-open: a failed probe opens it again" wait_for 3 eq open breaker_state
check "half-open: the failed probe counted as a retry (retries_used 4)" test "$(tr_q "$run" call retries_used)" = 4

# ------------------------------------------------ fixed → probe closes it
mode ok
wait_run_final 20 "$run"
check "recovered: brk succeeded" test "$(run_state "$run")" = succeeded
st=$(att_states "$run" call)
echo "# call attempts: $st"
check "recovered: the last attempt (the probe) succeeded" bash -c '[[ $1 == *,breaker_open,succeeded ]]' _ "$st"
tr=$(psql_q "SELECT attempt || '/' || max_attempts || '/' || retries_used FROM task_runs WHERE run_id = $run AND task = 'call'")
nbo=$(n_state "$run" call breaker_open)
check "recovered: max_attempts grew by one per refusal (7 + $nbo), retries_used counts failures only (got $tr)" \
	test "$tr" = "$(($(n_state "$run" call failed) + nbo + 1))/$((7 + nbo))/4"
check "recovered: the executor reports the breaker closed" wait_for 3 eq closed breaker_state
wait_run_final 20 "$run2"
check "recovered: brk2's three tasks succeeded (retries: 0, refusals did not count)" test "$(psql_q "SELECT string_agg(DISTINCT state, ',') FROM task_runs WHERE run_id = $run2")/$(run_state "$run2")" = succeeded/succeeded
check "recovered: /other received exactly 3 calls, all after the fix" test "$(calls /other)/$(curl -fsS "$FLAKY/stats" | jq '.by_mode.ok')" = 3/4
check "recovered: wfctl executors shows no open breaker" bash -c '! "$1/wfctl" executors | grep -q "flaky.test:"' _ "$WF_BIN"

# ------------------------------------------------------------- events
kinds=$(psql_q "SELECT string_agg(DISTINCT kind, ',') FROM events")
echo "# event kinds recorded: $kinds"
check "events: breaker state changes are recorded as events (kind like 'breaker.%')" \
	test "$(psql_q "SELECT count(*) FROM events WHERE kind LIKE '%breaker%'")" -ge 2
check "events: GET /api/v1/events lists breaker events" \
	test "$(it_api GET '/api/v1/events?limit=500' | jq '[.items[] | select(.kind | test("breaker"))] | length')" -ge 2

# ------------------------------------------- hang → timeouts open it too
mode hang
cat >"$D/hang.yaml" <<YAML
name: hang
tasks:
  slow:
    pool: brk
    http: {url: "$FLAKY/hang", timeout: 500ms}
    retries: 5
    backoff: {initial: 100ms, max: 100ms, multiplier: 1, jitter: none}
    breaker: {name: hang.test, failures: 2, open_for: 3s}
YAML
it_submit "$D/hang.yaml" >/dev/null
run=$(it_trigger hang)
check "hang: two timeouts open the breaker (timeout,timeout,breaker_open)" wait_for 10 eq timeout,timeout,breaker_open att_states "$run" slow
check "hang: the hanging server saw 2 calls" test "$(calls /hang)" = 2
mode ok
wait_run_final 15 "$run"
check "hang: after recovery the probe succeeds" test "$(run_state "$run")/$(calls /hang)" = succeeded/3
check "no engine errors" bash -c "! grep -h 'level=error' $D/engine-*.log"
