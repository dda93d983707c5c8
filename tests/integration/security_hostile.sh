#!/usr/bin/env bash
# Hostile input is answered in under a second, with memory bounded and
# nothing written: YAML bombs (aliases, deep nesting, 2 MB), a 100 MB body,
# deep JSON, invalid UTF-8, a cron that never fires, and malformed frames
# on the engine's ZeroMQ socket (after which work still runs).
. "$(dirname "$0")/../lib/harness.sh"
it_setup security_hostile
D=$IT_DIR
cc -o "$D/zsend" "$WF_ROOT/tests/lib/zsend.c" -lzmq || { ok 1 "build zsend"; exit 1; }
it_engine --insecure-local --lease 3s --heartbeat 1s --poll-ms 100 || exit 1
ELOG=$D/engine-$IT_HTTP_PORT_USED.log
rss() { awk '/^VmRSS/ {print $2}' "/proc/$ENGINE_PID/status"; }
workflows() { psql_q "SELECT count(*) FROM workflows"; }
RSS0=$(rss)

# fast NAME CODE_WANTED curl-args...: the status and the time (< 1 s)
fast() {
	local name=$1 want=$2 t0 t1 code ms
	shift 2
	t0=$(date +%s%N)
	code=$(curl -s -o "$D/last.json" -w '%{http_code}' "$@")
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	check "$name: HTTP $want (got $code)" test "$code" = "$want"
	check "$name: answered in ${ms} ms (< 1000)" test "$ms" -lt 1000
}
post_yaml() { # post_yaml NAME CODE FILE
	jq -Rs '{source: ., filename: "x.yaml"}' <"$3" >"$D/body.json"
	fast "$1" "$2" -X POST -H 'Content-Type: application/json' --data-binary @"$D/body.json" "$WF_URL/api/v1/workflows"
}
validate_fast() { # validate_fast NAME FILE: wfctl validate refuses it in < 1 s
	local t0 t1 rc ms
	t0=$(date +%s%N)
	timeout 10 "$WF_BIN/wfctl" validate "$2" >"$D/validate.out" 2>&1
	rc=$?
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	check "$1: wfctl validate refuses it (exit $rc)" test "$rc" = 1
	check "$1: wfctl validate answers in ${ms} ms (< 1000)" test "$ms" -lt 1000
}
N0=$(workflows)

# ------------------------------------------------------------ YAML bombs
{
	echo 'name: bomb'
	echo 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
	for i in 1 2 3 4 5 6 7 8 9; do
		p=$((i - 1))
		echo "a$i: &a$i [*a$p,*a$p,*a$p,*a$p,*a$p,*a$p,*a$p,*a$p,*a$p,*a$p]"
	done
	echo 'tasks: { t: { shell: [echo, hi] } }'
} >"$D/aliases.yaml"
post_yaml "YAML alias bomb" 400 "$D/aliases.yaml"
validate_fast "YAML alias bomb" "$D/aliases.yaml"
{
	echo 'name: deep'
	printf 'description: '
	head -c 10000 /dev/zero | tr '\0' '['
	head -c 10000 /dev/zero | tr '\0' ']'
	echo
	echo 'tasks: { t: { shell: [echo, hi] } }'
} >"$D/deep.yaml"
post_yaml "YAML nested 10000 deep" 400 "$D/deep.yaml"
validate_fast "YAML nested 10000 deep" "$D/deep.yaml"
{
	echo 'name: big'
	echo 'tasks:'
	echo '  t: { shell: [echo, hi] }'
	for i in $(seq 1 40000); do echo "# padding line $i ......................................"; done
} >"$D/big.yaml"
check "the big file is over 2 MB" test "$(stat -c %s "$D/big.yaml")" -gt 2000000
post_yaml "YAML of 2 MB" 413 "$D/big.yaml"
validate_fast "YAML of 2 MB" "$D/big.yaml"
printf 'name: utf\ndescription: "bad \xff\xfe bytes"\ntasks: { t: { shell: [echo, hi] } }\n' >"$D/utf8.yaml"
validate_fast "YAML with invalid UTF-8" "$D/utf8.yaml"
printf '{"source":"name: utf\\ntasks: { t: { shell: [echo, \xff\xfe] } }\\n"}' >"$D/utf8.json"
fast "JSON with invalid UTF-8" 400 -X POST -H 'Content-Type: application/json' --data-binary @"$D/utf8.json" "$WF_URL/api/v1/workflows"
cat >"$D/cron.yaml" <<'YAML'
name: never
schedule: { cron: "0 0 30 2 *" }
tasks: { t: { shell: [echo, hi] } }
YAML
post_yaml "a cron that never fires (0 0 30 2 *)" 400 "$D/cron.yaml"
check "  the error says it never matches" grep -q 'never' "$D/last.json"
validate_fast "a cron that never fires" "$D/cron.yaml"

# ----------------------------------------------------------- big bodies
truncate -s 100M "$D/100m.bin"
fast "a 100 MB body" 413 -X POST -H 'Content-Type: application/json' -T "$D/100m.bin" "$WF_URL/api/v1/workflows"
rm -f "$D/100m.bin"
{ head -c 10000 /dev/zero | tr '\0' '['; head -c 10000 /dev/zero | tr '\0' ']'; } >"$D/deep.json"
fast "JSON nested 10000 deep" 400 -X POST -H 'Content-Type: application/json' --data-binary @"$D/deep.json" "$WF_URL/api/v1/workflows"
printf '{"source":%s' "$(head -c 10000 /dev/zero | tr '\0' '[')" >"$D/deep2.json"
fast "JSON object nested 10000 deep, unterminated" 400 -X POST -H 'Content-Type: application/json' --data-binary @"$D/deep2.json" "$WF_URL/api/v1/workflows"
check "nothing was written by the refused requests" test "$(workflows)" = "$N0"

# ------------------------------------------------- malformed wire frames
head -c 4096 /dev/urandom >"$D/f-random"
head -c $((2 * 1024 * 1024)) /dev/zero >"$D/f-huge"
printf 'this is not json' >"$D/f-text"
printf '{"type":"finished","executor_id":42,"task_run_id":"x","attempt":[],"status":{}}' >"$D/f-types"
printf '{"type":"hello","executor_id":"h","endpoint":7,"pool":null,"labels":"x","slots":"many"}' >"$D/f-hello"
printf '{"type":"heartbeat","executor_id":"ghost","free_slots":-5,"running":[{"task_run_id":1e300}]}' >"$D/f-hb"
printf '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[' >"$D/f-deep"
printf '' >"$D/f-empty"
"$D/zsend" --linger-ms 1000 "$IT_ZMQ" "$D/f-random" "$D/f-text" "$D/f-types" "$D/f-hello" "$D/f-hb" "$D/f-deep" "$D/f-empty"
"$D/zsend" --linger-ms 1000 "$IT_ZMQ" "$D/f-huge"
sleep 1
check "the engine is alive after malformed frames" kill -0 "$ENGINE_PID"
check "the engine logged refused frames" grep -qiE 'invalid|malformed|refused|dropped' "$ELOG"
check "no executor was registered by the bad hello" test "$(psql_q "SELECT count(*) FROM executors WHERE id IN ('h', 'ghost')")" = 0
it_executor ok1 --heartbeat-ms 500
check "a real executor registers afterwards" wait_for 30 test "$(psql_q "SELECT count(*) FROM executors WHERE id = 'ok1' AND state = 'online'")" = 1
cat >"$D/ok.yaml" <<'YAML'
name: still-ok
tasks: { t: { shell: [echo, fine] } }
YAML
it_submit "$D/ok.yaml" >/dev/null
run=$(it_trigger still-ok)
wait_run_final 30 "$run"
check "a workflow still runs afterwards" test "$(run_state "$run")" = succeeded

RSS1=$(rss)
check "engine RSS stays bounded (${RSS0} kB -> ${RSS1} kB, < +50 MB)" test $((RSS1 - RSS0)) -lt 51200
echo "1..$TAP_N"
