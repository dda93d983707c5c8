# Chaos suite helpers (sourced by tests/integration/chaos.sh after
# tests/lib/harness.sh). Every process is started through ch_bg, recorded in
# CH_PIDS (this scenario) and IT_PIDS (the harness kills them on exit), and
# stopped only by its pid.
#
# Figures: every scenario appends one line to $CH_RESULTS (tab separated):
#   scenario  tasks  lost  duplicates  stale  recovery_s  notes
# and tests/chaos/table.sh prints them as the final table.

CH_PIDS=()
CH_DIR=${CH_DIR:-$WF_ROOT/tests/chaos}

ch_log() { echo "# [$(date +%H:%M:%S)] $*"; }
now_s() { date +%s.%N; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }

# ch_bg NAME LOGFILE CMD... → background process; its pid in LAST_PID and PID_<NAME>
ch_bg() {
	local name=$1 logf=$2
	shift 2
	"$@" >>"$logf" 2>&1 &
	LAST_PID=$!
	CH_PIDS+=("$LAST_PID")
	IT_PIDS+=("$LAST_PID")
	printf -v "PID_$name" '%s' "$LAST_PID"
}

# ch_stop_all → SIGKILL every process this scenario started (by pid)
ch_stop_all() {
	local p
	for p in "${CH_PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done
	for p in "${CH_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	CH_PIDS=()
	return 0
}

# ch_engine NAME HTTP_PORT ZMQ_PORT [ARGS] → starts (or restarts) an engine
# on fixed ports with the chaos lease settings; PID_<NAME>. Extra
# environment (WF_FAULT...) comes from the caller's environment.
ch_engine() {
	local name=$1 http=$2 zmq=$3
	shift 3
	ch_bg "$name" "$IT_DIR/engine-$name.log" "$WF_BIN/wf-engine" --id "$name" \
		--http "127.0.0.1:$http" --zmq "tcp://127.0.0.1:$zmq" --insecure-local \
		--lease 3s --heartbeat 1s --poll-ms 100 "$@"
}

ch_healthy() { curl -fsS -m 2 "http://127.0.0.1:$1/healthz" >/dev/null 2>&1; }

# Executors that know CURVE refuse plaintext unless told (loopback tests).
ch_exec_flags() {
	CH_EXEC_FLAGS=()
	"$WF_BIN/wf-executor" --help 2>&1 | grep -q -- '--insecure-plaintext' && CH_EXEC_FLAGS+=(--insecure-plaintext)
	return 0
}

# ch_executor ID SLOTS ENGINE_ZMQ_PORT... → PID_<ID with - as _>
ch_executor() {
	local id=$1 slots=$2 port args=() p
	shift 2
	port=$(free_port)
	[ -n "${CH_EXEC_FLAGS+x}" ] || ch_exec_flags
	args+=("${CH_EXEC_FLAGS[@]}")
	for p in "$@"; do args+=(--engine "tcp://127.0.0.1:$p"); done
	ch_bg "${id//-/_}" "$IT_DIR/executor-$id.log" "$WF_BIN/wf-executor" --id "$id" \
		--listen "tcp://127.0.0.1:$port" "${args[@]}" --slots "$slots" --heartbeat-ms 500 \
		--kill-grace 1s --drain-timeout 2s
}

ch_online() { test "$(psql_q "SELECT count(*) FROM executors WHERE state = 'online'")" -ge "$1"; }

# ch_submit FILE → uploads a workflow file to the engine on port $CH_HTTP
ch_submit() {
	local body out
	body=$(jq -Rs '{source: ., filename: "'"$(basename "$1")"'"}' <"$1") || return 1
	out=$(curl -sS -m 10 -X POST -H 'Content-Type: application/json' --data-binary "$body" \
		"http://127.0.0.1:$CH_HTTP/api/v1/workflows")
	grep -q '"workflow"' <<<"$out" || { echo "# submit failed: $out"; return 1; }
}

# ch_load WF N TAG → N runs of workflow WF in one transaction (as
# bench/sql/wf_enqueue.sql does: runs + one task run per task, roots queued,
# NOTIFY wf_work); runs.created_by = TAG.
ch_load() {
	psql -X -q -v ON_ERROR_STOP=1 -d "$WF_DATABASE_URL" -v wf="$1" -v n="$2" -v tag="$3" >/dev/null <<'SQL'
BEGIN;
WITH r AS (
    INSERT INTO runs (workflow_id, version, state, params, trigger, created_by, started_at)
    SELECT w.id, w.current_version, 'running', '{}', 'api', :'tag', now()
    FROM workflows w, generate_series(1, :n) g
    WHERE w.name = :'wf'
    RETURNING id, workflow_id, version)
INSERT INTO task_runs (run_id, task, state, max_attempts, priority, pool)
SELECT r.id, t.name,
       CASE WHEN jsonb_array_length(coalesce(t.spec->'needs', '[]')) = 0 THEN 'queued' ELSE 'pending' END,
       coalesce((t.spec->>'retries')::int, 0) + 1,
       CASE t.spec->>'priority' WHEN 'high' THEN 0 WHEN 'low' THEN 2 ELSE 1 END,
       coalesce(t.spec->>'pool', 'default')
FROM r JOIN tasks t ON t.workflow_id = r.workflow_id AND t.version = r.version;
NOTIFY wf_work;
COMMIT;
SQL
}

# ch_fault KIND TARGET → records a fault (epoch seconds) in $IT_DIR/faults.tsv
ch_fault() { printf '%s\t%s\t%s\n' "$(now_s)" "$1" "$2" >>"$IT_DIR/faults.tsv"; }

# ch_done TAG → 0 when every task run of the runs created_by TAG is final
ch_remaining() {
	psql_q "SELECT count(*) FROM task_runs t JOIN runs r ON r.id = t.run_id WHERE r.created_by = '$1'
	        AND t.state NOT IN ('succeeded','failed','cancelled','upstream_failed','skipped','dead')"
}
ch_done() { test "$(ch_remaining "$1")" = 0; }

# ch_wait_done TAG SECONDS → waits until every task run of TAG is final
ch_wait_done() {
	local end=$((SECONDS + $2))
	while [ "$(ch_remaining "$1" 2>/dev/null || echo 1)" != 0 ]; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.5
	done
}

# ch_verify LABEL TAG → the invariants over the task runs of runs created_by
# TAG (every one expected to succeed). Prints TAP lines and figures; sets
# V_TASKS V_LOST V_DUPS V_STALE V_REEXEC V_RUNNING.
ch_verify() {
	local label=$1 tag=$2 row
	local sel="FROM task_runs t JOIN runs r ON r.id = t.run_id WHERE r.created_by = '$tag'"
	row=$(psql_q "SELECT count(*),
		count(*) FILTER (WHERE t.state <> 'succeeded'),
		(SELECT count(*) FROM attempts_all a JOIN task_runs t2 ON t2.id = a.task_run_id JOIN runs r2 ON r2.id = t2.run_id
		 WHERE r2.created_by = '$tag' AND t2.state = 'succeeded' AND NOT a.stale AND a.attempt < t2.attempt
		 AND a.state NOT IN ('rejected', 'breaker_open')),
		count(*) FILTER (WHERE t.state = 'succeeded' AND t.attempt > 1),
		count(*) FILTER (WHERE t.state = 'running'),
		count(*) FILTER (WHERE r.state <> 'succeeded')
		$sel")
	IFS='|' read -r V_TASKS V_LOST V_DUPS V_REEXEC V_RUNNING V_RUNS_NOT_OK <<<"$row"
	V_STALE=$(psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id
		JOIN runs r ON r.id = t.run_id WHERE r.created_by = '$tag' AND a.stale")
	# The final attempt number is the (only) attempt row that succeeded.
	local bad_final bad_seq unexplained stale_won
	bad_final=$(psql_q "SELECT count(*) $sel AND t.state = 'succeeded' AND (
		(SELECT count(*) FROM attempts_all a WHERE a.task_run_id = t.id AND NOT a.stale AND a.state = 'succeeded') <> 1
		OR NOT EXISTS (SELECT 1 FROM attempts_all a WHERE a.task_run_id = t.id AND NOT a.stale
		               AND a.state = 'succeeded' AND a.attempt = t.attempt))")
	# Attempt numbers: one row per attempt, 1..attempt, claimed in order.
	bad_seq=$(psql_q "SELECT count(*) $sel AND (
		(SELECT count(DISTINCT a.attempt) FROM attempts_all a WHERE a.task_run_id = t.id AND NOT a.stale) <> t.attempt
		OR (SELECT count(*) FROM attempts_all a WHERE a.task_run_id = t.id AND NOT a.stale) <> t.attempt
		OR EXISTS (SELECT 1 FROM attempts_all a, attempts b WHERE a.task_run_id = t.id AND b.task_run_id = t.id
		           AND NOT a.stale AND NOT b.stale AND a.attempt < b.attempt AND a.claimed_at > b.claimed_at))")
	# Every earlier attempt of a re-executed task run was fenced off (lost,
	# timed out, cancelled, failed) — none succeeded.
	unexplained=$(psql_q "SELECT count(*) $sel AND t.attempt > 1 AND EXISTS (
		SELECT 1 FROM attempts_all a WHERE a.task_run_id = t.id AND NOT a.stale AND a.attempt < t.attempt
		AND a.state NOT IN ('lost', 'timeout', 'cancelled', 'failed', 'rejected', 'breaker_open'))")
	V_REJECTED=$(psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id
		JOIN runs r ON r.id = t.run_id WHERE r.created_by = '$tag' AND NOT a.stale AND a.state = 'rejected'")
	# No result of a superseded attempt was accepted: no attempt row other
	# than the final one succeeded (a late result is a stale row instead).
	stale_won=$(psql_q "SELECT count(*) $sel AND EXISTS (SELECT 1 FROM attempts_all a WHERE a.task_run_id = t.id
		AND NOT a.stale AND a.state = 'succeeded' AND a.attempt <> t.attempt)")
	# duplicates = attempts beyond the first that ran (a rejected dispatch —
	# no free slot — never started the step and does not count)
	echo "# $label: tasks=$V_TASKS not_succeeded=$V_LOST re-executed=$V_REEXEC extra_attempts=$V_DUPS stale_rows=$V_STALE rejected_by_executor=$V_REJECTED running=$V_RUNNING runs_not_succeeded=$V_RUNS_NOT_OK"
	check "$label: $V_TASKS task runs, 0 lost (all succeeded)" test "$V_LOST" = 0 -a "$V_TASKS" -gt 0
	check "$label: every run succeeded" test "$V_RUNS_NOT_OK" = 0
	check "$label: 0 left running" test "$V_RUNNING" = 0
	check "$label: final attempt = the attempt row that succeeded (bad: $bad_final)" test "$bad_final" = 0
	check "$label: attempt numbers increase, one row each (bad: $bad_seq)" test "$bad_seq" = 0
	check "$label: $V_DUPS re-executions all fenced (earlier attempt lost/cancelled; unexplained: $unexplained)" test "$unexplained" = 0
	check "$label: $V_STALE stale rows, none accepted (accepted: $stale_won)" test "$stale_won" = 0
	if [ "$bad_final$bad_seq$unexplained" != 000 ]; then
		psql_q "SELECT t.id, t.state, t.attempt, (SELECT string_agg(a.attempt || ':' || a.state || ':' || coalesce(a.executor_id,'') || CASE WHEN a.stale THEN ':stale' ELSE '' END, ' ' ORDER BY a.id)
			FROM attempts_all a WHERE a.task_run_id = t.id) $sel AND t.attempt > 1 ORDER BY t.id LIMIT 15" | sed 's/^/#   /'
	fi
	if [ "$V_LOST" != 0 ]; then
		psql_q "SELECT t.state, count(*), min(t.id), max(t.attempt), left(max(t.error), 200) $sel AND t.state <> 'succeeded' GROUP BY 1" | sed 's/^/#   not succeeded: /'
	fi
}

# ch_recovery TAG → from the faults in $IT_DIR/faults.tsv, for each fault at
# T: the time to the first successful re-execution that started after T of a
# task run whose previous attempt began before T. Prints "max median n";
# "-" when no fault needed a re-execution.
ch_recovery() {
	local tag=$1
	[ -s "$IT_DIR/faults.tsv" ] || { echo "- - 0"; return; }
	psql -X -q -v ON_ERROR_STOP=1 -d "$WF_DATABASE_URL" >/dev/null <<SQL
CREATE TABLE IF NOT EXISTS chaos_faults (at double precision, kind text, target text);
TRUNCATE chaos_faults;
\copy chaos_faults FROM '$IT_DIR/faults.tsv'
SQL
	psql_q "WITH f AS (SELECT at, (SELECT min(extract(epoch FROM a.finished_at)) - f.at
		FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id JOIN runs r ON r.id = t.run_id
		JOIN attempts_all p ON p.task_run_id = a.task_run_id AND p.attempt = a.attempt - 1 AND NOT p.stale
		WHERE r.created_by = '$tag' AND NOT a.stale AND a.state = 'succeeded' AND a.attempt > 1
		AND extract(epoch FROM a.claimed_at) >= f.at AND extract(epoch FROM p.claimed_at) < f.at) AS rec
		FROM chaos_faults f)
		SELECT coalesce(round(max(rec)::numeric, 2)::text, '-'), coalesce(round((percentile_cont(0.5) WITHIN GROUP (ORDER BY rec))::numeric, 2)::text, '-'), count(rec) FROM f" | tr '|' ' '
}

# ch_result SCENARIO TASKS LOST DUPS STALE RECOVERY NOTES
ch_result() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$CH_RESULTS"; }

# Engine log errors other than the expected database/connection ones.
ch_log_errors() { grep -h 'level=error' "$@" 2>/dev/null | grep -v -i 'database\|connection\|server closed\|terminat\|could not connect\|no connection' | head -n 5; }

# ch_wait_q SECONDS EXPECTED SQL → polls until the query returns EXPECTED
# (re-evaluated every time: `wait_for 10 test "$(psql_q ...)" = x` would
# evaluate the query once only).
ch_wait_q() {
	local end=$((SECONDS + $1))
	while [ "$(psql_q "$3" 2>/dev/null)" != "$2" ]; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.1
	done
}
