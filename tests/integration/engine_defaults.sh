#!/usr/bin/env bash
# Secure by default: no tokens means no engine (unless --insecure-local,
# which is loopback only); no listening beyond loopback without asking.
. "$(dirname "$0")/../lib/harness.sh"
it_setup engine_defaults

http=$(free_port)
out=$(timeout 20 "$WF_BIN/wf-engine" --http "127.0.0.1:$http" --zmq "tcp://127.0.0.1:$(free_port)" 2>&1)
rc=$?
check "no tokens: the engine refuses to start" test "$rc" = 1
check "no tokens: the message says how to make one" grep -q "wfctl token create --role admin" <<<"$out"
check "no tokens: nothing listens" bash -c "! curl -fsS http://127.0.0.1:$http/healthz"

out=$(timeout 20 "$WF_BIN/wf-engine" --insecure-local --http "0.0.0.0:$http" --zmq "tcp://127.0.0.1:$(free_port)" 2>&1)
rc=$?
check "insecure-local beyond loopback is refused" test "$rc" != 0
check "insecure-local refusal names the address" grep -q "refusing to listen on 0.0.0.0" <<<"$out"

"$WF_BIN/wfctl" token create --role viewer --name only-viewer >/dev/null 2>&1
out=$(timeout 20 "$WF_BIN/wf-engine" --http "0.0.0.0:$http" --zmq "tcp://127.0.0.1:$(free_port)" 2>&1)
rc=$?
check "a non-loopback address needs --allow-remote" test "$rc" != 0
check "the refusal says why" grep -qi "allow-remote" <<<"$out"

it_engine || exit 1
code=$(curl -s -o /dev/null -w '%{http_code}' "$WF_URL/api/v1/workflows")
check "with a token in the database, requests without one get 401" test "$code" = 401
check "there is no built-in credential" test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer admin' "$WF_URL/api/v1/workflows")" = 401
