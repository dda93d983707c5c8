#!/usr/bin/env bash
# CURVE on the executor channel: keys make work run; an unknown executor
# key, a plaintext executor and an unknown engine key are refused and
# logged; the engine's allowlist is re-read on SIGHUP; plaintext is only
# for loopback and only when asked for.
. "$(dirname "$0")/../lib/harness.sh"
it_setup security_curve
D=$IT_DIR
cc -o "$D/zsend" "$WF_ROOT/tests/lib/zsend.c" -lzmq || { ok 1 "build zsend"; exit 1; }
WFCTL=$WF_BIN/wfctl
online() { test "$(psql_q "SELECT count(*) FROM executors WHERE id = '$1' AND state = 'online'")" = 1; }
registered() { test "$(psql_q "SELECT count(*) FROM executors WHERE id = '$1'")" != 0; }
unregistered() { ! registered "$1"; }
keyof() { sed -n "s/^$2 = //p" "$1"; }

# ---------------------------------------------------------------- keys
out=$("$WFCTL" keys generate --out "$D/k1")
check "keys generate prints the public key" test "$out" = "$(cat "$D/k1.pub")"
check "keys generate: the key file is mode 600" test "$(stat -c %a "$D/k1.key")" = 600
check "keys generate: a 40-character z85 public key" test "$(head -c 40 "$D/k1.pub" | wc -c)" = 40
"$WFCTL" keys generate --out "$D/k1" >/dev/null 2>&1
check "keys generate refuses to overwrite without --force" test $? != 0

ADMIN=$("$WFCTL" token create --role admin --name curve-admin 2>/dev/null)
export WF_TOKEN=$ADMIN

# ------------------------------------------------------- start-up refusals
zp=$(free_port)
out=$(timeout 20 "$WF_BIN/wf-engine" --http "127.0.0.1:$(free_port)" --zmq "tcp://127.0.0.1:$zp" 2>&1)
check "engine without CURVE keys refuses to start" test $? != 0
check "  and says how to make keys" grep -q 'wfctl keys generate' <<<"$out"
out=$(timeout 20 "$WF_BIN/wf-engine" --insecure-local --http "127.0.0.1:$(free_port)" --zmq "tcp://0.0.0.0:$zp" 2>&1)
check "engine --insecure-local with a non-loopback --zmq refuses" test $? != 0
check "  and names the endpoint" grep -q 'tcp://0.0.0.0' <<<"$out"
it_keys
chmod 644 "$D/keys/engine.key"
out=$(timeout 20 "$WF_BIN/wf-engine" --http "127.0.0.1:$(free_port)" --zmq "tcp://127.0.0.1:$zp" \
	--curve-secret "$D/keys/engine.key" --executor-keys "$D/keys/executors.allow" 2>&1)
check "a key file readable by others is refused" grep -q 'must not be readable by group or others' <<<"$out"
chmod 600 "$D/keys/engine.key"
out=$(timeout 5 "$WF_BIN/wf-executor" --listen "tcp://127.0.0.1:$(free_port)" --engine "tcp://127.0.0.1:$zp" 2>&1)
check "executor without keys refuses to start" test $? = 2
check "  and names --insecure-plaintext" grep -q 'insecure-plaintext' <<<"$out"
out=$(timeout 5 "$WF_BIN/wf-executor" --insecure-plaintext --listen "tcp://127.0.0.1:$(free_port)" --engine "tcp://10.1.2.3:$zp" 2>&1)
check "executor --insecure-plaintext with a remote engine is refused" grep -q 'not loopback' <<<"$out"
out=$(timeout 5 "$WF_BIN/wf-executor" --insecure-plaintext --listen "tcp://0.0.0.0:$(free_port)" --engine "tcp://127.0.0.1:$zp" 2>&1)
check "executor --insecure-plaintext listening beyond loopback is refused" grep -q 'not loopback' <<<"$out"

# ------------------------------------------------------------- work runs
it_engine --lease 3s --heartbeat 1s --poll-ms 100 || exit 1
ELOG=$D/engine-$IT_HTTP_PORT_USED.log
check "engine logs that the channel is CURVE" grep -q 'executor channel encrypted with CURVE' "$ELOG"
XPORT=$(free_port)
"$WF_BIN/wf-executor" --id good --listen "tcp://127.0.0.1:$XPORT" --engine "$IT_ZMQ" \
	--curve-secret "$D/keys/executor.key" --engine-key "$D/keys/engine.pub" --heartbeat-ms 500 \
	>>"$D/executor-good.log" 2>&1 &
IT_PIDS+=($!)
check "an executor with an allowed key registers" wait_for 15 online good
cat >"$D/hello.yaml" <<YAML
name: curve-hello
tasks:
  a:
    shell: [sh, -c, 'echo ran > $D/ran.txt']
YAML
it_submit "$D/hello.yaml" >/dev/null
run=$(it_trigger curve-hello)
wait_run_final 30 "$run"
check "work runs over CURVE" test "$(run_state "$run")" = succeeded
check "  the step ran" test "$(cat "$D/ran.txt" 2>/dev/null)" = ran

# ------------------------------------------------- unknown executor key
"$WFCTL" keys generate --out "$D/rogue" >/dev/null
it_executor rogue --curve-secret "$D/rogue.key" --engine-key "$D/keys/engine.pub" --heartbeat-ms 500
ROGUE_PID=$EXECUTOR_PID
sleep 3
check "an executor with an unknown key never registers" unregistered rogue
check "the engine logs the refusal with the key fingerprint" \
	grep -qE 'peer refused: unknown CURVE key.*peer=executor address=127\.0\.0\.1 key_fingerprint=[0-9a-f]{16}' "$ELOG"

# ---------------------------------------------- plaintext against CURVE
it_executor plain --insecure-plaintext --heartbeat-ms 500
sleep 3
check "a plaintext executor never registers with a CURVE engine" unregistered plain
check "the engine logs the plaintext handshake failure" grep -q 'handshake failed' "$ELOG"

# ------------------------------------------------ rotation: SIGHUP reload
cat "$D/rogue.pub" >>"$D/keys/executors.allow"
kill -HUP "$ENGINE_PID"
check "after SIGHUP the allowlist is reloaded" wait_for 5 grep -q 'key allowlist reloaded' "$ELOG"
# libzmq does not retry a handshake the server refused: restart the executor
kill "$ROGUE_PID"
it_executor rogue --curve-secret "$D/rogue.key" --engine-key "$D/keys/engine.pub" --heartbeat-ms 500
check "  and the newly allowed executor registers" wait_for 20 online rogue

# ------------------------------------------------- unknown engine key
"$WFCTL" keys generate --out "$D/evil" >/dev/null
cat >"$D/task.json" <<JSON
{"type":"task","task_run_id":999,"attempt":1,"run_id":999,"workflow":"x","task":"evil","step":{"type":"shell","argv":["touch","$D/pwned"]},"timeout_ms":10000,"idempotency_key":"999-evil","breaker":null,"env":{},"lease_ms":30000,"engine_id":"evil"}
JSON
"$D/zsend" --public "$(keyof "$D/evil.key" public)" --secret "$(keyof "$D/evil.key" secret)" \
	--server-key "$(cat "$D/keys/executor.pub")" --linger-ms 1500 "tcp://127.0.0.1:$XPORT" "$D/task.json"
sleep 1
check "an engine with an unknown key cannot push work (nothing ran)" test ! -e "$D/pwned"
check "the executor logs the refused engine key" \
	grep -qE 'peer refused: unknown CURVE key.*peer=engine.*key_fingerprint=[0-9a-f]{16}' "$D/executor-good.log"
"$D/zsend" --linger-ms 1500 "tcp://127.0.0.1:$XPORT" "$D/task.json"
sleep 1
check "a plaintext engine cannot push work either" test ! -e "$D/pwned"

# ----------------------------------------------- the channel still works
run=$(it_trigger curve-hello)
wait_run_final 30 "$run"
check "work still runs afterwards" test "$(run_state "$run")" = succeeded
check "no secret key in any log" bash -c "! grep -h -F -e '$(keyof "$D/keys/engine.key" secret)' -e '$(keyof "$D/keys/executor.key" secret)' $D/*.log"
echo "1..$TAP_N"
