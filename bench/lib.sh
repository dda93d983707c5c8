# Helpers for bench/run.sh (sourced). Every process started here is recorded
# in BENCH_PIDS and only those are stopped on exit.
BENCH_PIDS=()

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# q DB SQL → unaligned, tuples only, errors fatal for the statement
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

# now_s → seconds since the epoch with nanoseconds
now_s() { date +%s.%N; }
# fsub A B → A - B with 3 decimals
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
# fdiv A B → A / B with 1 decimal (0 when B is 0)
fdiv() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print 0; else printf "%.1f", a / b }'; }

# bg LOG CMD... → starts CMD in the background, records its pid in BENCH_PIDS and LAST_PID
bg() {
	local logf=$1
	shift
	"$@" >>"$logf" 2>&1 &
	LAST_PID=$!
	BENCH_PIDS+=("$LAST_PID")
}

# stop_pids PID... → SIGTERM, wait up to 15 s, then SIGKILL (only the given pids)
stop_pids() {
	local p i
	for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
	for i in $(seq 1 150); do
		local alive=0
		for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for p in "$@"; do kill -KILL "$p" 2>/dev/null; done
	for p in "$@"; do wait "$p" 2>/dev/null; done
	return 0
}

# wait_for SECONDS CMD... → polls every 100 ms until CMD succeeds
wait_for() {
	local secs=$1
	shift
	local end=$((SECONDS + secs))
	while ! "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.1
	done
}

# peak RSS in kB of a live process (VmHWM), 0 when gone
vmhwm() { awk '/^VmHWM:/ { print $2; f=1 } END { if (!f) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# poll_until DB COUNT_SQL TARGET TIMEOUT_S START → prints "ELAPSED COUNT" once
# COUNT_SQL returns >= TARGET (polled every 100 ms), or at the timeout.
poll_until() {
	local db=$1 sql=$2 target=$3 timeout=$4 start=$5 c=0 t
	local deadline
	deadline=$(awk -v s="$start" -v t="$timeout" 'BEGIN { printf "%.3f", s + t }')
	while :; do
		c=$(q "$db" "$sql" 2>/dev/null || echo 0)
		t=$(now_s)
		[ "${c:-0}" -ge "$target" ] && break
		if awk -v a="$t" -v b="$deadline" 'BEGIN { exit !(a > b) }'; then break; fi
		sleep 0.1
	done
	echo "$(fsub "$t" "$start") ${c:-0}"
}

# result JSON → appends one JSON object (a measurement) to the run's results
result() { echo "$1" | jq -c . >>"$RESULTS_JSONL"; }

# wal_lsn DB → current WAL position as a number of bytes
wal_bytes() { q "$1" "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"; }

# db_bytes DB TABLE... → sum of pg_total_relation_size of the tables
db_bytes() {
	local db=$1 list=""
	shift
	local t
	for t in "$@"; do list+="${list:+,}'$t'"; done
	q "$db" "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
	         JOIN pg_namespace n ON n.oid = c.relnamespace
	         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND c.relname IN ($list)"
}

# cpu_s PID... → user+system CPU seconds used so far by the given live processes
cpu_s() {
	local p tot=0 t
	for p in "$@"; do
		t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
		tot=$((tot + ${t:-0}))
	done
	awk -v t="$tot" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}
# machine_busy_s → CPU seconds (all CPUs) the machine spent not idle since boot
machine_busy_s() {
	awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}
