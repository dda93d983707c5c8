#!/usr/bin/env bash
# wf benchmark harness (`make bench`). Prints figures; asserts nothing about
# time. See bench/README.md for what each phase measures and every knob.
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
WF_BIN=${WF_BIN:-$ROOT/bin}
. "$ROOT/tests/lib/pg.sh"
. "$BENCH/lib.sh"
# PostgreSQL's own psql: Debian's /usr/bin/psql is a Perl wrapper, and the
# harness runs psql ten times a second while the systems under test work
[ -x "$PG_BIN/psql" ] && export PATH="$PG_BIN:$PATH"

# ------------------------------------------------------------------ knobs
N=${BENCH_N:-100000}
ROUNDS=${BENCH_ROUNDS:-3}
CHAIN_N=${BENCH_CHAIN_N:-$((N / 10))}
SHELL_N=${BENCH_SHELL_N:-$((N / 10 < 10000 ? N / 10 : 10000))}
SPAWN_PAR=${BENCH_SPAWN_PAR:-}
LAT_SECONDS=${BENCH_LAT_SECONDS:-20}
LAT_RATES=${BENCH_LAT_RATES:-200 1000}
if [ "${BENCH_10M:-0}" = 1 ]; then SCHEDULES=10000000; else SCHEDULES=${BENCH_SCHEDULES:-1000000}; fi
DUE=${BENCH_DUE:-10000}
[ "$DUE" -gt "$SCHEDULES" ] && DUE=$SCHEDULES
SLOTS=${BENCH_WF_SLOTS:-500}
WF_BATCH=${BENCH_WF_BATCH:-500}
EXECUTORS=${BENCH_WF_EXECUTORS:-2}
ENGINES=${BENCH_WF_ENGINES:-1} # more than 1: active-active, every executor connected to each
PHASE_TIMEOUT=${BENCH_TIMEOUT:-900}
PHASES=${BENCH_PHASES:-throughput chain shell latency fire recovery}
PEERS=${BENCH_PEERS-graphile-worker graphile-worker-q1000 pg-boss} # set and empty: no peers
PEER_PROCS=${BENCH_PEER_PROCS:-2}
SOAK=${BENCH_SOAK:-0}
SOAK_MINUTES=${BENCH_SOAK_MINUTES:-30}
SOAK_RATE=${BENCH_SOAK_RATE:-200}
REC_LEASE=${BENCH_REC_LEASE:-10s}
REC_HEARTBEAT=${BENCH_REC_HEARTBEAT:-2s}
PGSS=${BENCH_PGSS:-1}
[ "$SOAK" = 1 ] && PHASES="$PHASES soak"
phase_on() { case " $PHASES " in *" $1 "*) return 0 ;; esac; return 1; }

for b in wf-engine wf-executor; do
	[ -x "$WF_BIN/$b" ] || { echo "bench: $WF_BIN/$b missing: run 'make' first" >&2; exit 1; }
done
if ! command -v jq >/dev/null && [ "$(id -u)" = 0 ]; then
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq) >/dev/null 2>&1
fi
for t in psql jq node npm cc python3; do
	command -v "$t" >/dev/null || { echo "bench: $t is required" >&2; exit 1; }
done
if ! command -v gnuplot >/dev/null; then
	log "installing gnuplot-nox for the chart"
	if [ "$(id -u)" = 0 ]; then
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox) >/dev/null 2>&1 ||
			log "gnuplot-nox could not be installed: no chart"
	fi
fi

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
BENCH_T0=$SECONDS
RESULTS_DIR=$BENCH/results
mkdir -p "$RESULTS_DIR"
WORK=${BENCH_WORK:-$(mktemp -d /tmp/wf-bench.XXXXXX)}
mkdir -p "$WORK"
chmod 755 "$WORK"
# a snapshot of the binaries: a rebuild during the run must not change them
mkdir -p "$WORK/bin"
cp "$WF_BIN/wf-engine" "$WF_BIN/wf-executor" "$WORK/bin/" || exit 1
WF_BIN=$WORK/bin
RESULTS_JSONL=$WORK/results.jsonl
: >"$RESULTS_JSONL"
PG_DIR=$WORK/pg
log "work dir $WORK (logs, database); results in $RESULTS_DIR/$STAMP.*"

cleanup() {
	local p
	for p in "${BENCH_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	pg_stop "$PG_DIR"
	if [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$PG_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------- PostgreSQL, peers
PG_OPTS='-c fsync=on -c synchronous_commit=on -c max_connections=200 -c shared_buffers=512MB'
[ "$PGSS" = 1 ] && PG_OPTS+=" -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.max=2000"
PG_OPTS+=" ${BENCH_PG_EXTRA:-}"
WF_PG_OPTS=$PG_OPTS pg_start "$PG_DIR" || exit 1
log "PostgreSQL up ($PG_OPTS)"
WF_DB=wf_bench
WF_URL_DB=$(pg_createdb $WF_DB 2>/dev/null) || exit 1
GW_URL_DB=$(pg_createdb gw_bench 2>/dev/null) || exit 1
BOSS_URL_DB=$(pg_createdb boss_bench 2>/dev/null) || exit 1
for d in $WF_DB gw_bench boss_bench; do
	[ "$PGSS" = 1 ] && q $d "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
done
# the schema: wf-engine --migrate at every start (below) applies what its build embeds

if [ -n "$PEERS" ]; then
	log "npm ci (bench/peers)"
	if ! (cd "$BENCH/peers" && npm ci --no-audit --no-fund --loglevel=error >"$WORK/npm.log" 2>&1); then
		cat "$WORK/npm.log" >&2
		log "npm ci failed: peers skipped"
		PEERS=""
	fi
fi
GW_VERSION=$(node -p "require('$BENCH/peers/node_modules/graphile-worker/package.json').version" 2>/dev/null || echo none)
BOSS_VERSION=$(node -p "require('$BENCH/peers/node_modules/pg-boss/package.json').version" 2>/dev/null || echo none)
if [ -n "$PEERS" ]; then
	(DATABASE_URL=$GW_URL_DB node "$BENCH/peers/gw.mjs" setup >"$WORK/gw-setup.log" 2>&1) || { cat "$WORK/gw-setup.log"; exit 1; }
	(DATABASE_URL=$BOSS_URL_DB node "$BENCH/peers/boss.mjs" setup >"$WORK/boss-setup.log" 2>&1) || { cat "$WORK/boss-setup.log"; exit 1; }
fi

# ------------------------------------------------------------ machine
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_KB=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
PG_VERSION=$(q postgres "SHOW server_version")
GIT_COMMIT=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
GIT_DIRTY=$([ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -v '^??' | head -n 1)" ] && echo true || echo false)
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
MACHINE=$(jq -n --arg cpu "$CPU_MODEL" --argjson nproc "$(nproc)" --argjson mem "$MEM_KB" \
	--arg kernel "$(uname -r)" --arg pg "$PG_VERSION" --arg commit "$GIT_COMMIT" --argjson dirty "$GIT_DIRTY" \
	--arg load "$LOADAVG" --arg node "$(node --version)" --arg gw "$GW_VERSION" --arg boss "$BOSS_VERSION" \
	'{nproc:$nproc, mem_kb:$mem, cpu_model:$cpu, kernel:$kernel, postgresql:$pg, git_commit:$commit,
	  git_dirty:$dirty, loadavg_at_start:$load, node:$node, graphile_worker:$gw, pg_boss:$boss}')
CONFIG=$(jq -n --argjson n "$N" --argjson rounds "$ROUNDS" --argjson chain "$CHAIN_N" --argjson shell "$SHELL_N" \
	--argjson lat_s "$LAT_SECONDS" --arg rates "$LAT_RATES" --argjson schedules "$SCHEDULES" --argjson due "$DUE" \
	--argjson slots "$SLOTS" --argjson batch "$WF_BATCH" --argjson executors "$EXECUTORS" --argjson engines "$ENGINES" --arg phases "$PHASES" \
	--arg peers "$PEERS" --argjson peer_procs "$PEER_PROCS" --arg pg_opts "$PG_OPTS" \
	'{n:$n, rounds:$rounds, chain_runs:$chain, shell_runs:$shell, latency_seconds:$lat_s, latency_rates:$rates,
	  schedules:$schedules, due_same_second:$due, wf_slots_per_executor:$slots, wf_batch:$batch,
	  wf_executors:$executors, wf_engines:$engines, phases:$phases, peers:$peers, peer_processes:$peer_procs, pg_opts:$pg_opts}')

# ------------------------------------------------------------ wf stack
ENGINE_PID="" ENGINE_PIDS=() EXEC_PIDS=() STACK_NO=0 ENGINE_HWM=0 EXEC_HWM=0
wf_start() { # wf_start [engine options...]: engine + $EXECUTORS executors, waits for them
	STACK_NO=$((STACK_NO + 1))
	local http zmq i port
	http=$(free_port)
	zmq=$(free_port)
	WF_URL=http://127.0.0.1:$http
	WF_ZMQ=tcp://127.0.0.1:$zmq
	WF_DATABASE_URL=$WF_URL_DB bg "$WORK/engine-$STACK_NO.log" "$WF_BIN/wf-engine" --http "127.0.0.1:$http" \
		--zmq "$WF_ZMQ" --insecure-local --migrate --batch "$WF_BATCH" --id "bench-engine-$STACK_NO" "$@"
	ENGINE_PID=$LAST_PID
	wait_for 30 curl -fsS "$WF_URL/healthz" || { log "engine did not start"; tail -n 20 "$WORK/engine-$STACK_NO.log" >&2; return 1; }
	# more engines on the same database (the first one migrated it); the
	# CPU figures add them up with the first
	local engine_args=(--engine "$WF_ZMQ") e
	ENGINE_PIDS=()
	for e in $(seq 2 "$ENGINES"); do
		http=$(free_port)
		zmq=$(free_port)
		WF_DATABASE_URL=$WF_URL_DB bg "$WORK/engine-$STACK_NO-$e.log" "$WF_BIN/wf-engine" --http "127.0.0.1:$http" \
			--zmq "tcp://127.0.0.1:$zmq" --insecure-local --batch "$WF_BATCH" --id "bench-engine-$STACK_NO-$e" "$@"
		ENGINE_PIDS+=("$LAST_PID")
		engine_args+=(--engine "tcp://127.0.0.1:$zmq")
		wait_for 30 curl -fsS "http://127.0.0.1:$http/healthz" || { log "engine $e did not start"; return 1; }
	done
	EXEC_PIDS=()
	EXEC_IDS=()
	for i in $(seq 1 "$EXECUTORS"); do
		port=$(free_port)
		# executors log warnings and errors only (a line per finished task
		# is info), as the peers' workers log errors only
		WF_LOG_LEVEL=${BENCH_WF_EXEC_LOG:-warn} \
			bg "$WORK/executor-$STACK_NO-$i.log" "$WF_BIN/wf-executor" --id "bench-$STACK_NO-x$i" \
			--listen "tcp://127.0.0.1:$port" "${engine_args[@]}" --slots "${WF_SLOTS_NOW:-$SLOTS}" --insecure-plaintext
		EXEC_PIDS+=("$LAST_PID")
		EXEC_IDS+=("bench-$STACK_NO-x$i")
	done
	execs_online() { [ "$(q $WF_DB "SELECT count(*) FROM executors WHERE id LIKE 'bench-$STACK_NO-x%' AND state = 'online'")" = "$EXECUTORS" ]; }
	wait_for 30 execs_online ||
		{ log "executors did not register"; return 1; }
}
wf_stop() {
	local p h
	[ -n "$ENGINE_PID" ] || return 0
	h=$(vmhwm "$ENGINE_PID")
	[ "$h" -gt "$ENGINE_HWM" ] && ENGINE_HWM=$h
	for p in "${EXEC_PIDS[@]}"; do
		h=$(vmhwm "$p")
		[ "$h" -gt "$EXEC_HWM" ] && EXEC_HWM=$h
	done
	stop_pids "${EXEC_PIDS[@]}"
	stop_pids "$ENGINE_PID" "${ENGINE_PIDS[@]}"
	ENGINE_PID=""
	ENGINE_PIDS=()
	EXEC_PIDS=()
}
wf_submit() { # wf_submit FILE: POST /api/v1/workflows (the engine runs with --insecure-local)
	local body code
	body=$(jq -Rs --arg f "$(basename "$1")" '{source: ., filename: $f}' <"$1") || return 1
	code=$(curl -sS -o "$WORK/submit.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		--data-binary "$body" "$WF_URL/api/v1/workflows")
	cat "$WORK/submit.out" >>"$WORK/submit.log"
	case $code in 200 | 201) return 0 ;; esac
	log "submit $1 failed (HTTP $code): $(cat "$WORK/submit.out")"
	return 1
}
wf_reset() { # empty the run tables between phases (schedules and workflows stay)
	# no RESTART IDENTITY: executors' heartbeats may still name earlier task run ids
	# no ANALYZE of the empty tables: planner statistics stay those of a used system
	q $WF_DB "TRUNCATE runs, task_runs, attempts, events, dead_letters, outbox CASCADE" >/dev/null
	q $WF_DB "CHECKPOINT" >/dev/null
}
# Where every attempt shows: the view attempts_all since migration 013 (the
# running attempt lives on its task run; since 014 a succeeded one stays
# there too); before, the table attempts
wf_attempts_rel() {
	q $WF_DB "SELECT CASE WHEN to_regclass('attempts_all') IS NULL THEN 'attempts' ELSE 'attempts_all' END"
}
# pg_total_relation_size of a table counts its indexes and TOAST too
WF_RUN_TABLES=(runs task_runs attempts events)

# wf_throughput LABEL WORKFLOW_FILE WORKFLOW RUNS TASKS_PER_RUN
wf_throughput() {
	local label=$1 file=$2 wfname=$3 runs=$4 per=$5 total t0 t1 w0 w1 w2 b0 b1 out el c
	total=$((runs * per))
	wf_reset
	wf_submit "$file" || return 1
	[ "$PGSS" = 1 ] && q $WF_DB "SELECT pg_stat_statements_reset()" >/dev/null
	b0=$(db_bytes $WF_DB "${WF_RUN_TABLES[@]}")
	w0=$(wal_bytes $WF_DB)
	log "$label: enqueue $runs runs ($total task runs)"
	local ce0 cx0 cm0 ce1 cx1 cm1
	t0=$(now_s)
	psql -X -q -v ON_ERROR_STOP=1 -d $WF_DB -v n="$runs" -v wf="$wfname" -v tag="$label" \
		-f "$BENCH/sql/wf_enqueue.sql" || { log "enqueue failed"; return 1; }
	t1=$(now_s)
	ce0=$(cpu_s "$ENGINE_PID" "${ENGINE_PIDS[@]}") cx0=$(cpu_s "${EXEC_PIDS[@]}") cm0=$(machine_busy_s)
	w1=$(wal_bytes $WF_DB)
	# the poll only asks whether any run is left (the first live entry of the
	# partial index runs_active): counting 100,000 open runs ten times a second
	# cost PostgreSQL ~18 ms a poll, CPU the systems under test need; the
	# exact count of succeeded task runs is taken once at the end
	out=$(poll_until $WF_DB "SELECT CASE WHEN EXISTS (SELECT 1 FROM runs WHERE state IN ('queued', 'running')) THEN 0 ELSE $runs END" "$runs" "$PHASE_TIMEOUT" "$t1")
	read -r el c <<<"$out"
	ce1=$(cpu_s "$ENGINE_PID" "${ENGINE_PIDS[@]}") cx1=$(cpu_s "${EXEC_PIDS[@]}") cm1=$(machine_busy_s)
	c=$(q $WF_DB "SELECT count(*) FROM task_runs WHERE state = 'succeeded'")
	w2=$(wal_bytes $WF_DB)
	b1=$(db_bytes $WF_DB "${WF_RUN_TABLES[@]}")
	local failed
	failed=$(q $WF_DB "SELECT count(*) FROM task_runs WHERE state NOT IN ('succeeded', 'queued', 'pending', 'running')")
	log "$label: $c/$total task runs in ${el}s ($(fdiv "$c" "$el")/s)"
	result "$(jq -n --arg phase throughput --arg system wf --arg lbl "$label" --argjson runs "$runs" \
		--argjson tasks "$total" --argjson done "$c" --argjson secs "$el" --argjson failed "$failed" \
		--argjson enq "$(fsub "$t1" "$t0")" --argjson wal_enq "$((w1 - w0))" --argjson wal_work "$((w2 - w1))" \
		--argjson bytes "$((b1 - b0))" --argjson round "${ROUND:-1}" \
		--argjson ce "$(fsub "$ce1" "$ce0")" --argjson cx "$(fsub "$cx1" "$cx0")" --argjson cm "$(fsub "$cm1" "$cm0")" \
		'{phase:$phase, system:$system, "label":$lbl, round:$round, runs:$runs, tasks:$tasks, done:$done,
		  complete:($done >= $tasks), seconds:$secs, per_s:(if $secs > 0 then ($done / $secs) else 0 end),
		  runs_per_s:(if $secs > 0 then ($done / ($tasks / $runs) / $secs) else 0 end),
		  enqueue_s:$enq, failed:$failed, wal_bytes_per_task:(($wal_enq + $wal_work) / ([$tasks,1]|max)),
		  wal_enqueue_bytes:$wal_enq, wal_work_bytes:$wal_work,
		  db_bytes_per_run:($bytes / ([$runs,1]|max)),
		  cpu_s:{engine:$ce, executors:$cx, machine:$cm, other:(($cm - $ce - $cx) * 100 | round / 100)}}')"
	pgss_top "$label-r${ROUND:-1}"
}
pgss_top() { # pgss_top LABEL: the top statements (of $PGSS_DB, default wf's) since the last reset, into the results; then reset
	local label=$1 db=${PGSS_DB:-$WF_DB}
	if [ "$PGSS" = 1 ]; then
		q $db "SELECT json_agg(x) FROM (SELECT calls, round(total_exec_time::numeric, 1) AS total_ms,
		            round(mean_exec_time::numeric, 3) AS mean_ms, round(total_plan_time::numeric, 1) AS plan_ms, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 160) AS query
		          FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		          ORDER BY total_exec_time DESC LIMIT 12) x" >"$WORK/pgss-$label.json" 2>/dev/null
		result "$(jq -c --arg lbl "$label" '{phase:"statements", "label":$lbl, top:.}' "$WORK/pgss-$label.json" 2>/dev/null || echo '{}')"
		q $db "SELECT pg_stat_statements_reset()" >/dev/null
	fi
}

# ------------------------------------------------------------ peers
PEER_PIDS=()
# graphile-worker-qN: graphile-worker with a local queue of N jobs per
# worker process instead of GW_LOCAL_QUEUE (500, the issue's setting)
peer_throughput() { # peer_throughput graphile-worker|graphile-worker-qN|pg-boss
	local sys=$1 kind db url lq=${GW_LOCAL_QUEUE:-500} t0 t1 el c out w0 w1 w2 i enq_ms
	case $sys in
	graphile-worker) kind=gw db=gw_bench url=$GW_URL_DB ;;
	graphile-worker-q*) kind=gw db=gw_bench url=$GW_URL_DB lq=${sys#graphile-worker-q} ;;
	pg-boss) kind=boss db=boss_bench url=$BOSS_URL_DB ;;
	esac
	if [ -z "${kind:-}" ] || ! [[ $lq =~ ^[1-9][0-9]*$ ]]; then
		log "unknown peer $sys (graphile-worker, graphile-worker-qN with N > 0, pg-boss): skipped"
		return 1
	fi
	# empty queue, same starting point as wf
	if [ $kind = gw ]; then
		q $db "DELETE FROM graphile_worker._private_jobs" >/dev/null
	else
		q $db "DELETE FROM pgboss.job" >/dev/null
	fi
	q $db "VACUUM" >/dev/null 2>&1
	q $db "CHECKPOINT" >/dev/null
	[ "$PGSS" = 1 ] && q $db "SELECT pg_stat_statements_reset()" >/dev/null
	PEER_PIDS=()
	for i in $(seq 1 "$PEER_PROCS"); do
		DATABASE_URL=$url GW_LOCAL_QUEUE=$lq bg "$WORK/$sys-$ROUND-$i.log" node "$BENCH/peers/$kind.mjs" work
		PEER_PIDS+=("$LAST_PID")
	done
	for i in $(seq 1 "$PEER_PROCS"); do
		wait_for 60 grep -q ready "$WORK/$sys-$ROUND-$i.log" || { log "$sys worker $i did not start"; cat "$WORK/$sys-$ROUND-$i.log" >&2; stop_pids "${PEER_PIDS[@]}"; return 1; }
	done
	w0=$(wal_bytes $db)
	log "$sys: enqueue $N jobs"
	t0=$(now_s)
	if [ $kind = gw ]; then
		q $db "SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(SELECT ROW('noop', '{}'::json, NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec FROM generate_series(1, $N)))" >/dev/null ||
			{ log "graphile-worker enqueue failed"; stop_pids "${PEER_PIDS[@]}"; return 1; }
	else
		enq_ms=$(DATABASE_URL=$url node "$BENCH/peers/boss.mjs" enqueue "$N") ||
			{ log "pg-boss enqueue failed"; stop_pids "${PEER_PIDS[@]}"; return 1; }
	fi
	t1=$(now_s)
	local cw0 cm0 cw1 cm1
	cw0=$(cpu_s "${PEER_PIDS[@]}") cm0=$(machine_busy_s)
	w1=$(wal_bytes $db)
	# The poll only asks whether any job is left, through an index, as wf's
	# does (runs_active): counting what is left cost graphile-worker's
	# database about 15 ms and pg-boss's about 26 ms a poll, ten polls a
	# second, CPU taken from the peer under test (round 6). The exact count
	# of completions is read once at the end.
	if [ $kind = gw ]; then
		# completed jobs are deleted; the newest job (primary key, backwards)
		# is among the last to go
		out=$(poll_until $db "SELECT CASE WHEN (SELECT id FROM graphile_worker._private_jobs ORDER BY id DESC LIMIT 1) IS NULL THEN $N ELSE 0 END" "$N" "$PHASE_TIMEOUT" "$t1")
	else
		# created and retry through the partial index job_i5 (state < 'active'),
		# then active ones (few: a scan only once nothing else is left)
		out=$(poll_until $db "SELECT CASE WHEN EXISTS (SELECT 1 FROM pgboss.job WHERE state < 'active') OR EXISTS (SELECT 1 FROM pgboss.job WHERE state = 'active') THEN 0 ELSE $N END" "$N" "$PHASE_TIMEOUT" "$t1")
	fi
	read -r el c <<<"$out"
	cw1=$(cpu_s "${PEER_PIDS[@]}") cm1=$(machine_busy_s)
	if [ $kind = gw ]; then
		c=$((N - $(q $db "SELECT count(*) FROM graphile_worker._private_jobs")))
	else
		c=$(q $db "SELECT count(*) FROM pgboss.job WHERE state = 'completed'")
	fi
	w2=$(wal_bytes $db)
	local hwm=0 h p
	for p in "${PEER_PIDS[@]}"; do
		h=$(vmhwm "$p")
		[ "$h" -gt "$hwm" ] && hwm=$h
	done
	stop_pids "${PEER_PIDS[@]}"
	log "$sys: $c/$N jobs in ${el}s ($(fdiv "$c" "$el")/s)"
	result "$(jq -n --arg system "$sys" --argjson n "$N" --argjson done "$c" --argjson secs "$el" \
		--argjson enq "$(fsub "$t1" "$t0")" --argjson wal_enq "$((w1 - w0))" --argjson wal_work "$((w2 - w1))" \
		--argjson round "$ROUND" --argjson hwm "$hwm" --argjson procs "$PEER_PROCS" \
		--argjson cw "$(fsub "$cw1" "$cw0")" --argjson cm "$(fsub "$cm1" "$cm0")" \
		'{phase:"throughput", system:$system, "label":$system, round:$round, runs:$n, tasks:$n, done:$done,
		  complete:($done >= $n), seconds:$secs, per_s:(if $secs > 0 then ($done / $secs) else 0 end),
		  runs_per_s:(if $secs > 0 then ($done / $secs) else 0 end), enqueue_s:$enq,
		  wal_bytes_per_task:(($wal_enq + $wal_work) / ([$n,1]|max)), wal_enqueue_bytes:$wal_enq,
		  wal_work_bytes:$wal_work, worker_processes:$procs, worker_peak_rss_kb:$hwm,
		  cpu_s:{workers:$cw, machine:$cm, other:(($cm - $cw) * 100 | round / 100)}}')"
	[ "$PGSS" = 1 ] && PGSS_DB=$db pgss_top "$sys-r$ROUND"
}

# ------------------------------------------------------------ phases
if phase_on throughput; then
	for ROUND in $(seq 1 "$ROUNDS"); do
		log "round $ROUND/$ROUNDS"
		wf_start || { result '{"phase":"error","system":"wf","error":"wf-engine/executors did not start: throughput skipped"}'; wf_stop; }
		[ -n "$ENGINE_PID" ] && wf_throughput wf-noop "$BENCH/workflows/bench-noop.yaml" bench-noop "$N" 1
		wf_stop
		for p in $PEERS; do peer_throughput "$p"; done
	done
fi
ROUND=1

STACK_OK=1
if phase_on chain || phase_on shell || phase_on latency || phase_on fire || phase_on soak; then
	wf_start || { STACK_OK=0; result '{"phase":"error","system":"wf","error":"wf-engine/executors did not start: chain, shell, latency, fire, soak skipped"}'; }
fi
[ $STACK_OK = 1 ] || PHASES=$(echo " $PHASES " | sed 's/ chain / /; s/ shell / /; s/ latency / /; s/ fire / /; s/ soak / /')
if phase_on chain && [ "$CHAIN_N" -gt 0 ]; then
	wf_throughput wf-chain3 "$BENCH/workflows/bench-chain.yaml" bench-chain "$CHAIN_N" 3
fi
if phase_on shell && [ "$SHELL_N" -gt 0 ]; then
	wf_throughput wf-shell "$BENCH/workflows/bench-shell.yaml" bench-shell "$SHELL_N" 1
	cc -O2 -o "$WORK/spawn" "$BENCH/spawn.c" || exit 1
	par=${SPAWN_PAR:-$((SLOTS * EXECUTORS))}
	for P in 1 "$par"; do
		read -r sn ss sr <<<"$("$WORK/spawn" "$SHELL_N" "$P" /bin/true)"
		log "posix_spawn /bin/true x$sn, $P at once: ${ss}s (${sr}/s)"
		result "$(jq -n --argjson n "$sn" --argjson s "$ss" --argjson r "$sr" --argjson p "$P" \
			'{phase:"throughput", system:"posix_spawn", "label":("posix_spawn-par" + ($p|tostring)), round:1, runs:$n, tasks:$n,
			  done:$n, complete:true, seconds:$s, per_s:$r, runs_per_s:$r, parallel:$p}')"
	done
fi
if phase_on latency; then
	wf_reset
	wf_submit "$BENCH/workflows/bench-noop.yaml"
	for rate in $LAT_RATES; do
		log "latency: $rate/s for ${LAT_SECONDS}s"
		gen=$(DATABASE_URL=$WF_URL_DB node "$BENCH/peers/arrivals.mjs" "$rate" "$LAT_SECONDS" bench-noop "lat-$rate") ||
			{ log "arrival generator failed"; continue; }
		total=$(echo "$gen" | jq .inserted)
		out=$(poll_until $WF_DB "SELECT count(*) FROM task_runs t JOIN runs r ON r.id = t.run_id WHERE r.created_by = 'lat-$rate' AND t.state = 'succeeded'" "$total" "${BENCH_LAT_DRAIN:-120}" "$(now_s)")
		lat=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d $WF_DB -v tag="lat-$rate" -v att="$(wf_attempts_rel)" -f "$BENCH/sql/latency.sql")
		stuck=$(q $WF_DB "SELECT coalesce(json_object_agg(state, n), '{}') FROM (SELECT t.state, count(*) AS n FROM task_runs t JOIN runs r ON r.id = t.run_id
		                  WHERE r.created_by = 'lat-$rate' AND t.state <> 'succeeded' GROUP BY 1) x")
		lat=$(echo "$lat" | jq -c --argjson s "$stuck" '. + {not_succeeded: $s}')
		result "$(jq -n --argjson rate "$rate" --argjson gen "$gen" --argjson lat "$lat" --arg drain "${out% *}" \
			'{phase:"latency", system:"wf", rate:$rate, generator:$gen, drain_s:($drain|tonumber)} + $lat')"
		log "latency $rate/s: $(echo "$lat" | jq -c '{count, s2s: .schedule_to_start, e2e: .end_to_end}')"
		pgss_top "lat-$rate"
	done
fi
if phase_on fire && [ "$SCHEDULES" -gt 0 ]; then
	wf_reset
	wf_submit "$BENCH/workflows/bench-noop.yaml"
	spec=$(q $WF_DB "SELECT t.spec FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.name = 'bench-noop' LIMIT 1")
	sb0=$(db_bytes $WF_DB workflows workflow_versions tasks schedules)
	s0=$(db_bytes $WF_DB schedules)
	log "fire: creating $SCHEDULES cron workflows (workflows + versions + tasks + schedules)"
	t0=$(now_s)
	# in chunks of 1,000,000 so 10M does not need one giant transaction
	left=$SCHEDULES
	while [ "$left" -gt 0 ]; do
		chunk=$((left > 1000000 ? 1000000 : left))
		off=$((SCHEDULES - left))
		psql -X -q -v ON_ERROR_STOP=1 -d $WF_DB -v s="$chunk" -v off="$off" -v spec="$spec" \
			-f "$BENCH/sql/fire_setup.sql" ||
			{ log "fire setup failed"; break; }
		left=$((left - chunk))
	done
	t1=$(now_s)
	q $WF_DB "VACUUM ANALYZE workflows, workflow_versions, tasks, schedules" >/dev/null
	# tables only: pg_total_relation_size counts their indexes and TOAST
	sb1=$(db_bytes $WF_DB workflows workflow_versions tasks schedules)
	s1=$(db_bytes $WF_DB schedules)
	log "fire: created in $(fsub "$t1" "$t0")s; arming $DUE to fire in one second"
	lead=${BENCH_FIRE_LEAD:-10}
	[ "$PGSS" = 1 ] && q $WF_DB "SELECT pg_stat_statements_reset()" >/dev/null
	tnom=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d $WF_DB -v due="$DUE" -v lead="$lead" -f "$BENCH/sql/fire_arm.sql" | tail -n 1)
	# wait until every due schedule fired (or 120 s past the nominal second)
	wait_s=$(awk -v t="$tnom" -v n="$(now_s)" 'BEGIN { printf "%d", t - n + 120 }')
	out=$(poll_until $WF_DB "SELECT count(*) FROM runs WHERE trigger = 'schedule' AND scheduled_for = to_timestamp($tnom)" "$DUE" "$wait_s" "$(now_s)")
	late=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d $WF_DB -f "$BENCH/sql/fire_lateness.sql")
	result "$(jq -n --argjson s "$SCHEDULES" --argjson due "$DUE" --argjson late "$late" \
		--argjson create "$(fsub "$t1" "$t0")" --argjson all "$((sb1 - sb0))" --argjson sch "$((s1 - s0))" \
		'{phase:"fire", system:"wf", schedules:$s, create_s:$create,
		  db_bytes_per_schedule:($all / $s), schedules_table_bytes_per_schedule:($sch / $s)} + $late')"
	log "fire: $(echo "$late" | jq -c .)"
	pgss_top fire
fi
if phase_on soak; then
	wf_reset
	wf_submit "$BENCH/workflows/bench-noop.yaml"
	log "soak: $SOAK_RATE/s for $SOAK_MINUTES min"
	att_rel=$(wf_attempts_rel)
	DATABASE_URL=$WF_URL_DB bg "$WORK/soak-gen.log" node "$BENCH/peers/arrivals.mjs" "$SOAK_RATE" "$((SOAK_MINUTES * 60))" bench-noop soak
	GEN_PID=$LAST_PID
	for m in $(seq 1 "$SOAK_MINUTES"); do
		sleep 60
		row=$(q $WF_DB "SELECT json_build_object('minute', $m,
		  'completed', (SELECT count(*) FROM task_runs WHERE state = 'succeeded' AND updated_at > now() - interval '60 s'),
		  'claim_p50_ms', (SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.claimed_at - r.created_at) * 1000))::numeric, 1)
		      FROM $att_rel a JOIN task_runs t ON t.id = a.task_run_id JOIN runs r ON r.id = t.run_id WHERE a.claimed_at > now() - interval '60 s'),
		  'claim_p99_ms', (SELECT round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM a.claimed_at - r.created_at) * 1000))::numeric, 1)
		      FROM $att_rel a JOIN task_runs t ON t.id = a.task_run_id JOIN runs r ON r.id = t.run_id WHERE a.claimed_at > now() - interval '60 s'),
		  'backlog', (SELECT count(*) FROM task_runs WHERE state IN ('queued', 'retrying')),
		  'dead_tuples', (SELECT json_object_agg(relname, n_dead_tup) FROM pg_stat_user_tables WHERE relname IN ('runs', 'task_runs', 'attempts', 'events', 'executors')),
		  'table_bytes', (SELECT json_object_agg(relname, pg_table_size(relid)) FROM pg_stat_user_tables WHERE relname IN ('runs', 'task_runs', 'attempts', 'events')),
		  'index_bytes', (SELECT json_object_agg(relname, pg_indexes_size(relid)) FROM pg_stat_user_tables WHERE relname IN ('runs', 'task_runs', 'attempts', 'events')),
		  'engine_rss_kb', $(awk '/^VmRSS:/ { print $2 }' /proc/$ENGINE_PID/status 2>/dev/null || echo 0))")
		result "$(echo "$row" | jq -c '{phase:"soak", system:"wf"} + .')"
		log "soak: $(echo "$row" | jq -c '{minute, completed, claim_p99_ms, backlog}')"
	done
	stop_pids "$GEN_PID"
fi
wf_stop

if phase_on recovery; then
	wf_reset
	if ! WF_SLOTS_NOW=8 wf_start --lease "$REC_LEASE" --heartbeat "$REC_HEARTBEAT"; then
		result '{"phase":"error","system":"wf","error":"wf-engine/executors did not start: recovery skipped"}'
		wf_stop
	else
	wf_submit "$BENCH/workflows/bench-sleep.yaml"
	[ "$PGSS" = 1 ] && q $WF_DB "SELECT pg_stat_statements_reset()" >/dev/null
	runs=$((8 * EXECUTORS * 2))
	log "recovery: $runs sleep(5s) runs, kill -9 of ${EXEC_IDS[0]} while it runs them (lease $REC_LEASE, heartbeat $REC_HEARTBEAT)"
	psql -X -q -v ON_ERROR_STOP=1 -d $WF_DB -v n="$runs" -v wf=bench-sleep -v tag=recovery -f "$BENCH/sql/wf_enqueue.sql"
	victim=${EXEC_IDS[0]}
	att_rel=$(wf_attempts_rel)
	victim_busy() { [ "$(q $WF_DB "SELECT count(*) FROM $att_rel WHERE executor_id = '$victim' AND started_at IS NOT NULL AND finished_at IS NULL")" -ge 4 ]; }
	wait_for 60 victim_busy || log "recovery: ${victim} did not start 4 tasks within 60 s; killing it anyway"
	sleep 0.5
	kill -KILL "${EXEC_PIDS[0]}"
	wait "${EXEC_PIDS[0]}" 2>/dev/null
	tkill=$(q $WF_DB "SELECT extract(epoch FROM clock_timestamp())")
	q $WF_DB "CREATE TABLE IF NOT EXISTS bench_victims AS SELECT task_run_id, attempt FROM $att_rel WHERE executor_id = '$victim' AND finished_at IS NULL" >/dev/null
	out=$(poll_until $WF_DB "SELECT count(*) FROM runs WHERE created_by = 'recovery' AND state IN ('succeeded', 'failed', 'cancelled')" "$runs" 180 "$(now_s)")
	rec=$(q $WF_DB "WITH v AS (SELECT task_run_id, attempt FROM bench_victims),
	    nxt AS (SELECT v.task_run_id, min(a.started_at) AS restarted FROM v LEFT JOIN $att_rel a
	            ON a.task_run_id = v.task_run_id AND a.attempt > v.attempt AND a.started_at IS NOT NULL GROUP BY v.task_run_id),
	    d AS (SELECT extract(epoch FROM restarted - to_timestamp($tkill)) * 1000 AS ms FROM nxt),
	    rq AS (SELECT extract(epoch FROM a.finished_at - to_timestamp($tkill)) * 1000 AS ms FROM v
	           JOIN $att_rel a ON a.task_run_id = v.task_run_id AND a.attempt = v.attempt AND NOT a.stale)
	  SELECT json_build_object(
	    'victim_tasks', (SELECT count(*) FROM v),
	    'requeued_max_ms', (SELECT round(max(ms)::numeric, 1) FROM rq),
	    'restarted', (SELECT count(ms) FROM d),
	    'recovery_p50_ms', (SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms))::numeric, 1) FROM d),
	    'recovery_max_ms', (SELECT round(max(ms)::numeric, 1) FROM d),
	    'runs', $runs,
	    'runs_succeeded', (SELECT count(*) FROM runs WHERE created_by = 'recovery' AND state = 'succeeded'),
	    'jobs_lost', (SELECT count(*) FROM runs WHERE created_by = 'recovery' AND state <> 'succeeded'),
	    'extra_attempts', (SELECT count(*) - count(DISTINCT a.task_run_id) FROM $att_rel a JOIN task_runs t ON t.id = a.task_run_id
	                       JOIN runs r ON r.id = t.run_id WHERE r.created_by = 'recovery' AND t.state = 'succeeded' AND NOT a.stale),
	    'extra_attempts_not_on_victim', (SELECT count(*) - count(DISTINCT a.task_run_id) FROM $att_rel a JOIN task_runs t ON t.id = a.task_run_id
	                       JOIN runs r ON r.id = t.run_id WHERE r.created_by = 'recovery' AND t.state = 'succeeded' AND NOT a.stale
	                       AND t.id NOT IN (SELECT task_run_id FROM bench_victims)),
	    'stale_results', (SELECT count(*) FROM $att_rel WHERE stale))")
	q $WF_DB "DROP TABLE IF EXISTS bench_victims" >/dev/null
	result "$(jq -n --argjson rec "$rec" --arg lease "$REC_LEASE" --arg hb "$REC_HEARTBEAT" \
		'{phase:"recovery", system:"wf", lease:$lease, heartbeat:$hb} + $rec')"
	log "recovery: $(echo "$rec" | jq -c .)"
	pgss_top recovery
	wf_stop
	fi
fi

result "$(jq -n --argjson e "$ENGINE_HWM" --argjson x "$EXEC_HWM" '{phase:"resources", system:"wf", engine_peak_rss_kb:$e, executor_peak_rss_kb:$x}')"

# ------------------------------------------------------------ report
OUT_JSON=$RESULTS_DIR/$STAMP.json
OUT_SVG=$RESULTS_DIR/$STAMP.svg
jq -s --argjson machine "$MACHINE" --argjson config "$CONFIG" --arg stamp "$STAMP" \
	--argjson secs "$((SECONDS - BENCH_T0))" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
	'{stamp:$stamp, machine:($machine + {loadavg_at_end:$load}), config:$config, wall_seconds:$secs, results:.}' \
	"$RESULTS_JSONL" >"$OUT_JSON"
"$BENCH/report.sh" "$OUT_JSON" "$OUT_SVG"
echo
echo "results: $OUT_JSON"
[ -f "$OUT_SVG" ] && echo "chart:   $OUT_SVG"
exit 0
