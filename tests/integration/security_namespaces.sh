#!/usr/bin/env bash
# Namespace-scoped tokens: a token limited to namespace 'a' acts on and
# sees only namespace a's workflows, runs, task runs, dead letters and
# backfills; everything else is 403 with a message naming both namespaces,
# lists are filtered, token management and the global stream are closed to
# it, and every state change is recorded with its actor.
. "$(dirname "$0")/../lib/harness.sh"
it_setup security_namespaces
D=$IT_DIR
WFCTL=$WF_BIN/wfctl
ADMIN=$("$WFCTL" token create --role admin --name ns-admin 2>/dev/null)
OPA=$("$WFCTL" token create --role operator --name op-a --namespace a 2>/dev/null)
check "wfctl token create --namespace makes a token" test -n "$OPA"
"$WFCTL" token create --role viewer --name bad-ns --namespace 'A B' >/dev/null 2>&1
check "an invalid --namespace is refused" test $? = 2
it_engine --lease 3s --heartbeat 1s --poll-ms 100 || exit 1
it_executor nsx --heartbeat-ms 500
wait_for 15 test "$(psql_q "SELECT count(*) FROM executors WHERE state = 'online'")" = 1
call() { # call TOKEN METHOD PATH [BODY] → body in $D/r.json, prints the status
	local args=(-s -o "$D/r.json" -w '%{http_code}' -X "$2" -H "Authorization: Bearer $1" -H 'Content-Type: application/json')
	[ $# -ge 4 ] && args+=(--data-binary "$4")
	curl "${args[@]}" "$WF_URL$3"
}
submit() { # submit TOKEN FILE → status
	jq -Rs '{source: ., filename: "x.yaml"}' <"$2" >"$D/body.json"
	call "$1" POST /api/v1/workflows "$(cat "$D/body.json")"
}
for ns in a b; do
	cat >"$D/$ns.yaml" <<YAML
name: wf-$ns
namespace: $ns
tasks:
  t:
    shell: [sh, -c, 'sleep 30']
  f:
    shell: [sh, -c, 'exit 1']
    retries: 0
YAML
	check "admin submits wf-$ns into namespace $ns" test "$(submit "$ADMIN" "$D/$ns.yaml")" = 201
done
call "$ADMIN" POST /api/v1/workflows/wf-b/runs '{}' >/dev/null
RUNB=$(jq -r .run_id "$D/r.json")
check "admin starts a run of wf-b" test -n "$RUNB"
wait_for 15 test "$(psql_q "SELECT count(*) FROM dead_letters WHERE run_id = $RUNB")" = 1
DLB=$(psql_q "SELECT id FROM dead_letters WHERE run_id = $RUNB")

# ---------------------------------------------------------- acting on a
check "op-a triggers wf-a (201)" test "$(call "$OPA" POST /api/v1/workflows/wf-a/runs '{}')" = 201
RUNA=$(jq -r .run_id "$D/r.json")
check "op-a pauses wf-a" test "$(call "$OPA" POST /api/v1/workflows/wf-a/pause '{}')" = 200
check "op-a unpauses wf-a" test "$(call "$OPA" POST /api/v1/workflows/wf-a/unpause '{}')" = 200
check "op-a reads its run" test "$(call "$OPA" GET "/api/v1/runs/$RUNA")" = 200
check "op-a cancels its run" test "$(call "$OPA" POST "/api/v1/runs/$RUNA/cancel" '{}')" = 200

# ------------------------------------------------------ refused on b
code=$(call "$OPA" POST /api/v1/workflows/wf-b/runs '{}')
check "op-a cannot trigger wf-b (403)" test "$code" = 403
check "  the message names token and namespaces" \
	test "$(jq -r .error.message "$D/r.json")" = "token 'op-a' may only act on namespace 'a'; workflow 'wf-b' is in 'b'"
check "op-a cannot pause wf-b" test "$(call "$OPA" POST /api/v1/workflows/wf-b/pause '{}')" = 403
check "op-a cannot unpause wf-b" test "$(call "$OPA" POST /api/v1/workflows/wf-b/unpause '{}')" = 403
check "op-a cannot cancel a run of wf-b" test "$(call "$OPA" POST "/api/v1/runs/$RUNB/cancel" '{}')" = 403
check "op-a cannot resume a run of wf-b" test "$(call "$OPA" POST "/api/v1/runs/$RUNB/resume" '{}')" = 403
check "op-a cannot read a run of wf-b" test "$(call "$OPA" GET "/api/v1/runs/$RUNB")" = 403
check "op-a cannot read a task run of wf-b" test "$(call "$OPA" GET "/api/v1/runs/$RUNB/tasks/f")" = 403
check "op-a cannot read wf-b" test "$(call "$OPA" GET /api/v1/workflows/wf-b)" = 403
check "op-a cannot read wf-b's versions" test "$(call "$OPA" GET /api/v1/workflows/wf-b/versions)" = 403
check "op-a cannot retry wf-b's dead letter" test "$(call "$OPA" POST "/api/v1/dead-letters/$DLB/retry" '{}')" = 403
check "op-a cannot drop wf-b's dead letter" test "$(call "$OPA" POST "/api/v1/dead-letters/$DLB/drop" '{}')" = 403
check "op-a cannot backfill wf-b" test "$(call "$OPA" POST /api/v1/workflows/wf-b/backfill '{"from":"2026-01-01T00:00:00Z","to":"2026-01-02T00:00:00Z"}')" = 403
check "the run of wf-b is still running" test "$(run_state "$RUNB")" = running
check "wf-b is not paused" test "$(psql_q "SELECT paused FROM workflows WHERE name = 'wf-b'")" = f

# ----------------------------------------------------------- lists
call "$OPA" GET /api/v1/workflows >/dev/null
check "op-a lists only namespace a's workflows" test "$(jq -r '[.items[].name] | join(",")' "$D/r.json")" = wf-a
call "$OPA" GET "/api/v1/workflows?namespace=b" >/dev/null
check "  even when asking for namespace b" test "$(jq '.items | length' "$D/r.json")" = 0
call "$OPA" GET /api/v1/runs >/dev/null
check "op-a lists only runs of namespace a" test "$(jq -r '[.items[].workflow] | unique | join(",")' "$D/r.json")" = wf-a
call "$OPA" GET "/api/v1/dead-letters?state=all" >/dev/null
check "op-a does not see wf-b's dead letters" test "$(jq '[.items[] | select(.workflow == "wf-b")] | length' "$D/r.json")" = 0
call "$OPA" GET "/api/v1/events?limit=500" >/dev/null
check "op-a's events list shows nothing of wf-b" test "$(jq '[.items[] | select(.workflow == "wf-b")] | length' "$D/r.json")" = 0
check "op-a's events list does show wf-a" test "$(jq '[.items[] | select(.workflow == "wf-a")] | length' "$D/r.json")" -ge 1
call "$OPA" GET /api/v1/schedules >/dev/null
check "op-a's schedules list is filtered" test "$(jq '[.items[] | select(.workflow == "wf-b")] | length' "$D/r.json")" = 0
check "op-a cannot open the global event stream" test "$(call "$OPA" GET /api/v1/events/stream)" = 403
call "$ADMIN" GET /api/v1/workflows >/dev/null
check "an unscoped admin still sees both namespaces" test "$(jq '.items | length' "$D/r.json")" = 2

# -------------------------------------------- scoped admins and tokens
code=$(call "$ADMIN" POST /api/v1/tokens '{"name":"adm-a","role":"admin","namespace":"a"}')
check "POST /api/v1/tokens accepts a namespace" test "$code" = 201
check "  and returns it" test "$(jq -r .namespace "$D/r.json")" = a
ADMA=$(jq -r .token "$D/r.json")
check "POST /api/v1/tokens refuses an invalid namespace" test "$(call "$ADMIN" POST /api/v1/tokens '{"name":"x","role":"admin","namespace":"No Way"}')" = 400
call "$ADMA" GET /api/v1/whoami >/dev/null
check "whoami shows the scope" test "$(jq -r .namespace "$D/r.json")" = a
check "a scoped admin cannot create tokens (no escalation)" test "$(call "$ADMA" POST /api/v1/tokens '{"name":"esc","role":"admin"}')" = 403
check "a scoped admin cannot list tokens" test "$(call "$ADMA" GET /api/v1/tokens)" = 403
check "a scoped admin cannot delete wf-b" test "$(call "$ADMA" DELETE /api/v1/workflows/wf-b)" = 403
sed 's/namespace: b/namespace: a/' "$D/b.yaml" >"$D/b-into-a.yaml"
check "a scoped admin cannot take wf-b over by resubmitting it into a" test "$(submit "$ADMA" "$D/b-into-a.yaml")" = 403
check "a scoped admin cannot submit into namespace b" test "$(submit "$ADMA" "$D/b.yaml")" = 403
check "wf-b is still in namespace b" test "$(psql_q "SELECT namespace FROM workflows WHERE name = 'wf-b'")" = b
sed 's/wf-a/wf-a2/' "$D/a.yaml" >"$D/a2.yaml"
check "a scoped admin submits into its namespace" test "$(submit "$ADMA" "$D/a2.yaml")" = 201
check "a scoped token may not create a job outside its namespace" test "$(call "$ADMA" POST /api/v1/jobs '{"name":"j1","schedule":"@daily","callback_url":"http://127.0.0.1:9/x"}')" = 403

# --------------------------------------------------- who did what
check "state changes by op-a are recorded with its actor" \
	test "$(psql_q "SELECT count(DISTINCT kind) FROM events WHERE actor = 'token:op-a'")" -ge 3
check "no state-changing event lacks an actor" \
	test "$(psql_q "SELECT count(*) FROM events WHERE actor IS NULL AND kind IN ('run.created','run.finished','workflow.paused','workflow.unpaused','workflow.submitted','token.created')")" = 0
check "refused requests changed nothing (no event by op-a on wf-b)" \
	test "$(psql_q "SELECT count(*) FROM events e JOIN workflows w ON w.id = e.workflow_id WHERE e.actor = 'token:op-a' AND w.name = 'wf-b'")" = 0
psql_q "SELECT kind, coalesce(actor, 'NULL'), count(*) FROM events GROUP BY 1, 2 ORDER BY 1" | sed "s/^/# /"
echo "1..$TAP_N"
