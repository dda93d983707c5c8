#!/usr/bin/env bash
# The notifier inside a real engine: a failed run's on_failure webhook is
# signed, survives the engine being killed -9 before and during delivery,
# and every delivery of one notification carries the same X-WF-Delivery id
# (at-least-once; receivers dedup on it). Needs notify_start wired into
# engine/main.c (--webhook-secret-file etc.).
# (works from tests/integration/ and, until main.c is wired, from pending/)
H="$(dirname "$0")/../lib/harness.sh"
[ -f "$H" ] || H="$(dirname "$0")/../../lib/harness.sh"
. "$H"
it_setup notify_engine
D=$IT_DIR
SECRET=integration-secret-42
printf '%s\n' "$SECRET" >"$D/secret"
chmod 600 "$D/secret"
RPORT=$(free_port)
ENGINE_ARGS=(--insecure-local --lease 3s --heartbeat 1s --poll-ms 100 --webhook-secret-file "$D/secret" --notify-poll-ms 100 --notify-lease 10)

# A webhook receiver: one JSON line per request (written when it arrives),
# then it answers 200, after $D/slow seconds when that file exists.
cat >"$D/receiver.py" <<'PY'
import http.server, json, os, sys, time
port, out, slow = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        rec = {"path": self.path, "delivery": self.headers.get("X-WF-Delivery"),
               "event": self.headers.get("X-WF-Event"), "sig": self.headers.get("X-WF-Signature"),
               "ts": self.headers.get("X-WF-Timestamp"), "body": body}
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        if os.path.exists(slow):
            time.sleep(float(open(slow).read().strip() or "0"))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
start_receiver() {
	python3 "$D/receiver.py" "$RPORT" "$D/received.jsonl" "$D/slow" >>"$D/receiver.log" 2>&1 &
	RECEIVER_PID=$!
	IT_PIDS+=("$RECEIVER_PID")
	wait_for 10 python3 -c "import socket; socket.create_connection(('127.0.0.1', $RPORT), 1)"
}
received() { # received RUN → requests about that run
	[ -f "$D/received.jsonl" ] || { echo 0; return; }
	python3 - "$D/received.jsonl" "$1" <<'PY'
import json, sys
n = 0
for l in open(sys.argv[1]):
    r = json.loads(l)
    if json.loads(r["body"]).get("run_id") == int(sys.argv[2]):
        n += 1
print(n)
PY
}
received_ge() { test "$(received "$1")" -ge "$2"; } # received_ge RUN N
q_is() { test "$(psql_q "$1")" = "$2"; }            # q_is SQL VALUE
# Every request about RUN has a valid signature and one shared delivery id.
check_run_requests() {
	python3 - "$D/received.jsonl" "$1" "$SECRET" <<'PY'
import hashlib, hmac, json, sys
ids = set()
for l in open(sys.argv[1]):
    r = json.loads(l)
    b = json.loads(r["body"])
    if b.get("run_id") != int(sys.argv[2]):
        continue
    want = "sha256=" + hmac.new(sys.argv[3].encode(), r["body"].encode(), hashlib.sha256).hexdigest()
    if r["sig"] != want or r["event"] != "run.failed" or r["path"] != "/hook":
        sys.exit("bad request: %r" % r)
    if b.get("workflow") != "failing" or not b.get("failed_tasks"):
        sys.exit("payload lacks what a receiver needs: %r" % b)
    ids.add(r["delivery"])
if len(ids) != 1:
    sys.exit("delivery ids: %r" % ids)
PY
}

cat >"$D/failing.yaml" <<YAML
name: failing
tasks:
  boom:
    sh: 'echo broken >&2; exit 3'
on_failure:
  webhook: http://127.0.0.1:$RPORT/hook
YAML

it_engine "${ENGINE_ARGS[@]}" || exit 1
it_executor ex1 --heartbeat-ms 1000 --slots 2
wait_for 10 q_is "SELECT count(*) FROM executors WHERE state = 'online'" 1
it_submit "$D/failing.yaml" >/dev/null

# ------------------------------------ receiver down, engine killed, restarted
run=$(it_trigger failing)
wait_run_final 30 "$run"
check "run failed" test "$(run_state "$run")" = failed
check "the failure wrote an outbox row" \
	test "$(psql_q "SELECT count(*) FROM outbox WHERE payload->>'run_id' = '$run' AND kind = 'webhook'")" = 1
# the receiver is not up yet: the first try fails and is scheduled again
check "a failed try is recorded with a backoff" \
	wait_for 15 q_is "SELECT attempts > 0 AND last_error IS NOT NULL AND available_at > now() FROM outbox WHERE payload->>'run_id' = '$run'" t
kill -9 "$ENGINE_PID"
wait "$ENGINE_PID" 2>/dev/null
start_receiver
IT_HTTP_PORT=$IT_HTTP_PORT_USED IT_ZMQ_PORT=$IT_ZMQ_PORT_USED it_engine "${ENGINE_ARGS[@]}"
check "engine restarted" test $? = 0
check "after the restart the webhook arrives" wait_for 30 received_ge "$run" 1
check "signed, with one delivery id and the run's details" check_run_requests "$run"
check "marked delivered" \
	wait_for 5 q_is "SELECT count(*) FROM outbox WHERE payload->>'run_id' = '$run' AND delivered_at IS NOT NULL" 1
sleep 2
check "delivered once" test "$(received "$run")" = 1

# -------------------------------------- engine killed while delivering
echo 5 >"$D/slow"
run=$(it_trigger failing)
wait_run_final 30 "$run"
check "second run failed" test "$(run_state "$run")" = failed
check "the webhook reached the receiver" wait_for 15 received_ge "$run" 1
kill -9 "$ENGINE_PID" # mid-request: delivered_at is never written
wait "$ENGINE_PID" 2>/dev/null
rm -f "$D/slow"
check "the row is still pending after the crash" \
	test "$(psql_q "SELECT count(*) FROM outbox WHERE payload->>'run_id' = '$run' AND delivered_at IS NULL")" = 1
IT_HTTP_PORT=$IT_HTTP_PORT_USED IT_ZMQ_PORT=$IT_ZMQ_PORT_USED it_engine "${ENGINE_ARGS[@]}"
# the claim's lease (--notify-lease 10) must run out before anyone sends it again
check "sent again after the lease ran out" wait_for 40 received_ge "$run" 2
check "every send carries the same X-WF-Delivery id" check_run_requests "$run"
check "marked delivered after the crash" \
	wait_for 10 q_is "SELECT count(*) FROM outbox WHERE payload->>'run_id' = '$run' AND delivered_at IS NOT NULL" 1

# ---------------------------------------------------------------- metrics
m=$(curl -fsS "$WF_URL/metrics")
check "/metrics: notifier counters" grep -q '^wf_notify_deliveries_total{kind="webhook",result="delivered"} [1-9]' <<<"$m"
check "/metrics: task duration histogram" grep -q '^wf_task_duration_seconds_bucket{status="failed",le="+Inf"}' <<<"$m"
check "/metrics: outbox given up gauge" grep -q '^wf_outbox_given_up 0' <<<"$m"
check "/metrics: schedule lag gauge" grep -q '^wf_schedule_lag_seconds ' <<<"$m"
