# Integration test helpers (source this file from tests/integration/*.sh).
# Expects tests/run.sh to have started PostgreSQL (PGHOST etc. exported);
# run by hand, it starts its own.
#   it_setup NAME      fresh database + migrations; sets WF_DATABASE_URL, IT_DIR
#   it_engine [ARGS]   starts bin/wf-engine; sets WF_URL, ENGINE_PID, IT_ZMQ
#   it_executor ID [ARGS]  starts bin/wf-executor connected to the engine
#                      (CURVE keys from it_keys when the engine has them,
#                      else --insecure-plaintext)
#   it_keys            CURVE key pairs in $IT_KEYS (engine, executor)
#                      (IT_HTTP_PORT / IT_ZMQ_PORT pin it_engine's ports, e.g.
#                      to restart an engine where its executors expect it)
#   it_api METHOD PATH [JSON]   REST call (Bearer $WF_TOKEN when set)
#   it_submit FILE     uploads a workflow file; it_trigger WF [PARAMS_JSON]
#                      starts a run and prints its id
#   run_state RUN, wait_run_final SECONDS RUN, tr_q RUN TASK COLUMN
#   ok COND_EXIT_STATUS "name"   TAP line; check "name" cmd...
#   wait_for SECONDS cmd...      polls until cmd succeeds
# Every process started here is killed on exit, even when a test fails.
set -u
WF_ROOT=${WF_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
WF_BIN=${WF_BIN:-$WF_ROOT/bin}
. "$WF_ROOT/tests/lib/pg.sh"
IT_PIDS=()
IT_OWN_PG=""

it__cleanup() {
	for p in "${IT_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -n "$IT_OWN_PG" ] && pg_stop "$IT_OWN_PG"
	return 0
}
trap it__cleanup EXIT

# A free TCP port on loopback.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

it_setup() {
	IT_NAME=$1
	if [ -z "${WF_TEST_WORK:-}" ]; then WF_TEST_WORK=$(mktemp -d /tmp/wf-it.XXXXXX); chmod 755 "$WF_TEST_WORK"; export WF_TEST_WORK; fi
	IT_DIR=$WF_TEST_WORK/$IT_NAME
	rm -rf "$IT_DIR"
	mkdir -p "$IT_DIR"
	chmod 755 "$IT_DIR"
	if [ -z "${PGHOST:-}" ]; then
		IT_OWN_PG="$IT_DIR/pg"
		pg_start "$IT_OWN_PG" || exit 1
	fi
	WF_DATABASE_URL=$(pg_createdb "wf_$IT_NAME") || exit 1
	export WF_DATABASE_URL
	"$WF_BIN/wfctl" migrate >"$IT_DIR/migrate.log" 2>&1 || { cat "$IT_DIR/migrate.log"; exit 1; }
}

psql_q() { # psql_q "SQL" → unaligned, tuples only
	psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$WF_DATABASE_URL" -c "$1"
}

it_engine() {
	local http zmq
	http=${IT_HTTP_PORT:-$(free_port)}
	zmq=${IT_ZMQ_PORT:-$(free_port)}
	IT_HTTP_PORT_USED=$http
	IT_ZMQ_PORT_USED=$zmq
	IT_ZMQ="tcp://127.0.0.1:$zmq"
	WF_URL="http://127.0.0.1:$http"
	export WF_URL
	# Secure by default: an engine without --insecure-local gets CURVE keys
	# (made once per test directory), and it_executor follows suit.
	local sec=()
	IT_CURVE=0
	case " $* " in
	*" --insecure-local "*) ;;
	*" --curve-secret "*) IT_CURVE=1 ;;
	*)
		it_keys || return 1
		sec=(--curve-secret "$IT_KEYS/engine.key" --executor-keys "$IT_KEYS/executors.allow")
		IT_CURVE=1
		;;
	esac
	"$WF_BIN/wf-engine" --http "127.0.0.1:$http" --zmq "$IT_ZMQ" "${sec[@]}" "$@" >>"$IT_DIR/engine-$http.log" 2>&1 &
	ENGINE_PID=$!
	IT_PIDS+=("$ENGINE_PID")
	wait_for 20 curl -fsS "$WF_URL/healthz" >/dev/null || { echo "# engine did not start"; tail -n 20 "$IT_DIR/engine-$http.log"; return 1; }
}

# it_keys: CURVE key pairs for the engine and the executors in $IT_KEYS
# (engine.key/.pub, executor.key/.pub, executors.allow = executor.pub).
it_keys() {
	IT_KEYS=$IT_DIR/keys
	[ -f "$IT_KEYS/executors.allow" ] && return 0
	mkdir -p "$IT_KEYS" &&
		"$WF_BIN/wfctl" keys generate --out "$IT_KEYS/engine" >/dev/null &&
		"$WF_BIN/wfctl" keys generate --out "$IT_KEYS/executor" >/dev/null &&
		cp "$IT_KEYS/executor.pub" "$IT_KEYS/executors.allow"
}

it_executor() {
	local id=$1 port sec=()
	shift
	port=$(free_port)
	case " $* " in
	*" --insecure-plaintext "* | *" --curve-secret "*) ;;
	*) if [ "${IT_CURVE:-0}" = 1 ]; then
		sec=(--curve-secret "$IT_KEYS/executor.key" --engine-key "$IT_KEYS/engine.pub")
	else
		sec=(--insecure-plaintext)
	fi ;;
	esac
	"$WF_BIN/wf-executor" --id "$id" --listen "tcp://127.0.0.1:$port" --engine "$IT_ZMQ" "${sec[@]}" "$@" >>"$IT_DIR/executor-$id.log" 2>&1 &
	EXECUTOR_PID=$!
	IT_PIDS+=("$EXECUTOR_PID")
}

wait_for() {
	local secs=$1
	shift
	local end=$((SECONDS + secs))
	while ! "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.1
	done
	return 0
}

# For wait_for: compare a command's output each time it is polled
# (wait_for N test "$(cmd)" = x would run cmd only once).
#   wait_for 10 out_eq online psql_q "SELECT state FROM executors"
out_eq() { # out_eq WANT cmd args...
	local want=$1
	shift
	[ "$("$@")" = "$want" ]
}
out_ge() { # out_ge N cmd args...: numeric output >= N
	local want=$1 got
	shift
	got=$("$@")
	[ -n "$got" ] && [ "$got" -ge "$want" ]
}

TAP_N=0
ok() { # ok STATUS "name"
	TAP_N=$((TAP_N + 1))
	if [ "$1" = 0 ]; then echo "ok $TAP_N - $2"; else echo "not ok $TAP_N - $2"; fi
}
check() { # check "name" cmd args...
	local name=$1
	shift
	if "$@"; then ok 0 "$name"; else ok 1 "$name"; fi
}

it_api() { # it_api METHOD PATH [JSON_BODY] → response body
	local args=(-sS -X "$1" -H 'Content-Type: application/json')
	[ -n "${WF_TOKEN:-}" ] && args+=(-H "Authorization: Bearer $WF_TOKEN")
	[ $# -ge 3 ] && args+=(--data-binary "$3")
	curl "${args[@]}" "$WF_URL$2"
}

it_submit() { # it_submit FILE
	local body
	body=$(jq -Rs '{source: ., filename: "'"$(basename "$1")"'"}' <"$1") || return 1
	it_api POST /api/v1/workflows "$body"
}

it_trigger() { # it_trigger WORKFLOW [PARAMS_JSON] → prints the run id
	local params=${2:-}
	[ -n "$params" ] || params='{}'
	it_api POST "/api/v1/workflows/$1/runs" "{\"params\":$params}" | jq -r '.run_id // empty'
}

run_state() { psql_q "SELECT state FROM runs WHERE id = $1"; }
run_is_final() { case $(run_state "$1") in succeeded | failed | cancelled) return 0 ;; esac; return 1; }
wait_run_final() { wait_for "$1" run_is_final "$2"; }
tr_q() { psql_q "SELECT $3 FROM task_runs WHERE run_id = $1 AND task = '$2'"; }
