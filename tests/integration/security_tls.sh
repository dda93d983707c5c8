#!/usr/bin/env bash
# HTTPS served by the engine itself (--tls-cert/--tls-key, libmicrohttpd):
# the API answers over TLS with the security headers and HSTS, plaintext
# HTTP to it fails, and half or broken TLS configurations are refused.
# (Listening beyond loopback is not exercised here: tests stay on 127.0.0.1.)
. "$(dirname "$0")/../lib/harness.sh"
it_setup security_tls
D=$IT_DIR
command -v openssl >/dev/null || { echo "ok 1 - # SKIP openssl missing"; echo "1..1"; exit 0; }
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$D/tls.key" -out "$D/tls.crt" >/dev/null 2>&1
chmod 600 "$D/tls.key"
ADMIN=$("$WF_BIN/wfctl" token create --role admin --name tls-admin 2>/dev/null)
it_keys
port=$(free_port)
"$WF_BIN/wf-engine" --http "127.0.0.1:$port" --zmq "tcp://127.0.0.1:$(free_port)" \
	--curve-secret "$D/keys/engine.key" --executor-keys "$D/keys/executors.allow" \
	--tls-cert "$D/tls.crt" --tls-key "$D/tls.key" >"$D/engine-tls.log" 2>&1 &
IT_PIDS+=($!)
check "the engine serves HTTPS" wait_for 20 curl -fsS --cacert "$D/tls.crt" "https://127.0.0.1:$port/healthz"
hdr=$(curl -sS -D - -o /dev/null --cacert "$D/tls.crt" -H "Authorization: Bearer $ADMIN" "https://127.0.0.1:$port/api/v1/workflows")
check "an API call over TLS works" grep -q '^HTTP/[0-9.]* 200' <<<"$hdr"
check "  with Strict-Transport-Security" grep -qi '^Strict-Transport-Security: max-age=' <<<"$hdr"
check "  and the other security headers" bash -c "grep -qi '^X-Content-Type-Options: nosniff' <<<'$hdr' && grep -qi '^X-Frame-Options: DENY' <<<'$hdr' && grep -qi '^Content-Security-Policy:' <<<'$hdr'"
check "plaintext HTTP to the TLS port gets no answer" bash -c "! curl -fsS -m 3 http://127.0.0.1:$port/healthz"
check "the log says tls=on" grep -q 'tls=on' "$D/engine-tls.log"
out=$(timeout 20 "$WF_BIN/wf-engine" --http "127.0.0.1:$(free_port)" --zmq "tcp://127.0.0.1:$(free_port)" \
	--curve-secret "$D/keys/engine.key" --executor-keys "$D/keys/executors.allow" --tls-cert "$D/tls.crt" 2>&1)
check "--tls-cert without --tls-key is refused" grep -q 'needs both --tls-cert' <<<"$out"
echo "not a pem" >"$D/bad.pem"
out=$(timeout 20 "$WF_BIN/wf-engine" --http "127.0.0.1:$(free_port)" --zmq "tcp://127.0.0.1:$(free_port)" \
	--curve-secret "$D/keys/engine.key" --executor-keys "$D/keys/executors.allow" --tls-cert "$D/bad.pem" --tls-key "$D/tls.key" 2>&1)
check "a file that is not PEM is refused" grep -q 'is not a PEM file' <<<"$out"
out=$(timeout 20 "$WF_BIN/wf-engine" --http "0.0.0.0:$(free_port)" --zmq "tcp://127.0.0.1:$(free_port)" \
	--curve-secret "$D/keys/engine.key" --executor-keys "$D/keys/executors.allow" 2>&1)
check "a non-loopback address without TLS is refused, naming --tls-cert" grep -q -- '--tls-cert' <<<"$out"
check "no built-in credential: 'admin' is not a token" test "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$D/tls.crt" -H 'Authorization: Bearer admin' "https://127.0.0.1:$port/api/v1/workflows")" = 401
echo "1..$TAP_N"
