#!/usr/bin/env bash
# Secrets canary: a secret used in an argv element, an env value, an HTTP
# header and URL, and echoed to stdout by a step must appear nowhere wf
# keeps or shows: no table (pg_dump --data-only), no log, no API response,
# no event (list and SSE). Output is masked as ***. The HTTP receiver sees
# it (that is what a secret is for), but wf does not record it.
. "$(dirname "$0")/../lib/harness.sh"
it_setup security_secrets
D=$IT_DIR
CANARY="wfcanary-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
it_engine --insecure-local --lease 3s --heartbeat 1s --poll-ms 100 || exit 1
WF_SECRET_CANARY=$CANARY it_executor sec --heartbeat-ms 500
check "executor online" wait_for 15 test "$(psql_q "SELECT count(*) FROM executors WHERE state = 'online'")" = 1

# A receiver that logs what it gets and echoes the header back.
RPORT=$(free_port)
cat >"$D/receiver.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        with open(sys.argv[2], "a") as f:
            f.write("%s %s %s %s\n" % (self.command, self.path, self.headers.get("X-Api-Key"), body.decode()))
        out = ("got key " + str(self.headers.get("X-Api-Key"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$D/receiver.py" "$RPORT" "$D/received.txt" &
IT_PIDS+=($!)
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$RPORT" || true

cat >"$D/sec.yaml" <<YAML
name: sec
tasks:
  argv:
    shell: [sh, -c, 'echo "argv: \$1"; echo "stderr: \$1" >&2; printf "{\"leak\":\"%s\"}" "\$1" > "\$WF_OUTPUT"', x, "\${secrets.CANARY}"]
  envstep:
    shell: [sh, -c, 'echo "env: \$MY_SECRET"']
    env:
      MY_SECRET: "prefix-\${secrets.CANARY}-suffix"
  http:
    http:
      method: POST
      url: "http://127.0.0.1:$RPORT/hook?key=\${secrets.CANARY}"
      headers:
        X-Api-Key: "\${secrets.CANARY}"
      body: "body \${secrets.CANARY}"
  failing:
    shell: [sh, -c, 'echo "about to fail with \$1"; exit 3', x, "\${secrets.CANARY}"]
    retries: 0
YAML
out=$(it_submit "$D/sec.yaml")
check "submit the secrets workflow" grep -q '"workflow":"sec"' <<<"$out"
run=$(it_trigger sec)
wait_run_final 40 "$run"
check "the run finished (failed: one task fails on purpose)" test "$(run_state "$run")" = failed
check "the secret steps succeeded" test "$(psql_q "SELECT count(*) FROM task_runs WHERE run_id = $run AND state = 'succeeded'")" = 3
check "the receiver saw the secret (header, url and body)" \
	test "$(grep -c -F "$CANARY" "$D/received.txt")" -ge 1
check "  in the url" grep -q -F "/hook?key=$CANARY" "$D/received.txt"
check "  in the header" grep -q -F " $CANARY body " "$D/received.txt"
out=$(it_api GET "/api/v1/runs/$run")
check "output is masked as ***" grep -q 'argv: \*\*\*' <<<"$out"
check "  env output is masked" grep -q 'env: prefix-\*\*\*-suffix' <<<"$out"
check "  the echoed http response is masked" grep -q 'got key \*\*\*' <<<"$out"

# Everything wf keeps or shows.
pg_dump --data-only --no-owner "$WF_DATABASE_URL" >"$D/dump.sql" 2>"$D/dump.err"
check "pg_dump of the test database worked" test -s "$D/dump.sql"
check "the canary is in no table" bash -c "! grep -q -F '$CANARY' '$D/dump.sql'"
check "  (the dump holds the masked output and outputs instead)" grep -q -F '"leak": "***"' "$D/dump.sql"
{
	for p in /api/v1/workflows /api/v1/workflows/sec /api/v1/workflows/sec/versions /api/v1/workflows/sec/versions/1 \
		"/api/v1/runs?limit=500" "/api/v1/runs/$run" /api/v1/executors "/api/v1/events?limit=500" \
		"/api/v1/dead-letters?state=all" /api/v1/schedules /api/v1/backfills /api/v1/whoami /metrics /healthz; do
		echo "== $p"
		it_api GET "$p"
		echo
	done
	for t in argv envstep http failing; do
		echo "== task $t"
		it_api GET "/api/v1/runs/$run/tasks/$t"
		for a in 1 2; do it_api GET "/api/v1/runs/$run/tasks/$t/attempts/$a"; done
		echo "== logs $t"
		"$WF_BIN/wfctl" logs "$run" "$t" 2>&1
	done
	"$WF_BIN/wfctl" --json show "$run" 2>&1
} >"$D/api.txt"
check "the API responses were collected" test "$(grep -c '^== ' "$D/api.txt")" -ge 20
check "the canary is in no API response" bash -c "! grep -q -F '$CANARY' '$D/api.txt'"
curl -sN --max-time 3 "$WF_URL/api/v1/events/stream?after=0" >"$D/sse.txt" 2>/dev/null
check "the SSE stream replayed events" grep -q '^data:' "$D/sse.txt"
check "the canary is in no SSE event" bash -c "! grep -q -F '$CANARY' '$D/sse.txt'"
check "the canary is in no log (engine, executor)" bash -c "! grep -q -F '$CANARY' $D/engine-*.log $D/executor-*.log"
echo "1..$TAP_N"
