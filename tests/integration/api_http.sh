#!/usr/bin/env bash
# The REST API end to end: real engine binary, real PostgreSQL, curl.
# Tokens and roles, errors and limits, submit / trigger / show / cancel,
# static files, security headers, metrics, and a restart of PostgreSQL.
. "$(dirname "$0")/../lib/harness.sh"
it_setup api_http

ADMIN=$("$WF_BIN/wfctl" token create --role admin --name it-admin 2>/dev/null)
OPER=$("$WF_BIN/wfctl" token create --role operator --name it-oper 2>/dev/null)
VIEW=$("$WF_BIN/wfctl" token create --role viewer --name it-view 2>/dev/null)
it_engine --web "$WF_ROOT/web" || exit 1

# code METHOD PATH TOKEN [BODY] → prints the HTTP status; body in $IT_DIR/body
code() {
	local args=(-s -o "$IT_DIR/body" -D "$IT_DIR/headers" -w '%{http_code}' -X "$1")
	[ -n "$3" ] && args+=(-H "Authorization: Bearer $3")
	[ $# -ge 4 ] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
	curl "${args[@]}" "$WF_URL$2"
}
body() { jq -r "$1" "$IT_DIR/body"; }
hdr() { grep -i "^$1:" "$IT_DIR/headers" | head -n 1 | cut -d' ' -f2- | tr -d '\r'; }

check "healthz without a token" [ "$(code GET /healthz '')" = 200 ] 
check "healthz names the engine" [ -n "$(body .engine)" ]
check "readyz" [ "$(code GET /readyz '')" = 200 ]
check "401 without a token" [ "$(code GET /api/v1/workflows '')" = 401 ]
check "401 carries WWW-Authenticate" [ -n "$(hdr WWW-Authenticate)" ]
check "401 error code" [ "$(body .error.code)" = unauthorized ]
check "401 with a bad token" [ "$(code GET /api/v1/runs wf_nope)" = 401 ]
check "viewer may list" [ "$(code GET /api/v1/workflows "$VIEW")" = 200 ]
check "viewer may not submit (403)" [ "$(code POST /api/v1/workflows "$VIEW" '{}')" = 403 ]
check "403 message names the roles" grep -q "needs the admin role; your token 'it-view' is viewer" "$IT_DIR/body"

cat >"$IT_DIR/hello.yaml" <<'YAML'
name: it-hello
description: integration hello
tasks:
  a:
    shell: ["true"]
  b:
    needs: [a]
    shell: ["true"]
YAML
SUB=$(jq -Rs '{source: ., filename: "hello.yaml"}' <"$IT_DIR/hello.yaml")
check "admin submit → 201" [ "$(code POST /api/v1/workflows "$ADMIN" "$SUB")" = 201 ]
check "submit says changed" [ "$(body .changed)" = true ]
check "resubmit → 200 unchanged" [ "$(code POST /api/v1/workflows "$ADMIN" "$SUB")" = 200 ]
check "resubmit changed=false" [ "$(body .changed)" = false ]
BAD=$(jq -n '{source: "name: x\ntasks:\n  a:\n    needs: [zz]\n    shell: [\"true\"]\n", filename: "x.yaml"}')
check "invalid workflow → 400" [ "$(code POST /api/v1/workflows "$ADMIN" "$BAD")" = 400 ]
check "invalid workflow details name file:line:col" [ -n "$(body '.error.details[0]' | grep -E '^x\.yaml:[0-9]+:[0-9]+:')" ]
check "malformed JSON → 400 invalid_json" [ "$(code POST /api/v1/workflows "$ADMIN" '{"source":')" = 400 ] 
check "unknown field → 400 with field" [ "$(code POST /api/v1/workflows "$ADMIN" '{"source":"x","nope":1}')" = 400 ] 
check "unknown field named" [ "$(body .error.field)" = nope ]
head -c 2097152 /dev/zero | tr '\0' ' ' >"$IT_DIR/big"
check "2 MiB body → 413" [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN" --data-binary @"$IT_DIR/big" "$WF_URL/api/v1/workflows")" = 413 ]

check "operator triggers → 201" [ "$(curl -s -o "$IT_DIR/body" -w '%{http_code}' -H "Authorization: Bearer $OPER" -H 'Idempotency-Key: it-1' -d '{"params":{}}' "$WF_URL/api/v1/workflows/it-hello/runs")" = 201 ]
RUN=$(body .run_id)
check "same Idempotency-Key → 200 same run" [ "$(curl -s -o "$IT_DIR/body" -w '%{http_code}' -H "Authorization: Bearer $OPER" -H 'Idempotency-Key: it-1' -d '{"params":{}}' "$WF_URL/api/v1/workflows/it-hello/runs")" = 200 ]
check "same run id" [ "$(body .run_id)" = "$RUN" ]
check "run detail" [ "$(code GET "/api/v1/runs/$RUN" "$VIEW")" = 200 ]
check "run detail has task runs with needs" [ "$(body '[.task_runs[] | select(.task == "b") | .needs[0]][0]')" = a ]
check "no executor: wait reason" [ "$(body '[.task_runs[] | select(.task == "a") | .wait_reason][0]')" = "no online executor in pool 'default'" ]
check "runs list" [ "$(code GET "/api/v1/runs?workflow=it-hello&limit=1" "$VIEW")" = 200 ]
check "runs list item" [ "$(body '.items[0].id')" = "$RUN" ]
check "workflow list has last_run" [ "$(code GET /api/v1/workflows "$VIEW")" = 200 ] 
check "last_run id" [ "$(body '.items[0].last_run.id')" = "$RUN" ]
check "versions" [ "$(code GET /api/v1/workflows/it-hello/versions/1 "$VIEW")" = 200 ]
check "pause" [ "$(code POST /api/v1/workflows/it-hello/pause "$OPER" '{}')" = 200 ]
check "unpause" [ "$(code POST /api/v1/workflows/it-hello/unpause "$OPER")" = 200 ]
check "cancel" [ "$(code POST "/api/v1/runs/$RUN/cancel" "$OPER")" = 200 ]
check "cancel state" [ "$(body .state)" = cancelled ]
check "cancel recorded with the actor" [ "$(psql_q "SELECT count(*) FROM events WHERE run_id = $RUN AND actor = 'token:it-oper'")" -ge 1 ]
check "unknown run → 404" [ "$(code GET /api/v1/runs/987654 "$VIEW")" = 404 ]
check "unknown route → 404" [ "$(code GET /api/v1/bogus "$VIEW")" = 404 ]
check "wrong method → 405" [ "$(code DELETE /api/v1/workflows "$ADMIN")" = 405 ]
check "405 has Allow" [ -n "$(hdr Allow)" ]
check "executors" [ "$(code GET /api/v1/executors "$VIEW")" = 200 ]

check "static index" [ "$(code GET / '')" = 200 ]
check "index is html" [ "$(hdr Content-Type)" = "text/html; charset=utf-8" ]
check "CSP header" [ "$(hdr Content-Security-Policy | cut -c1-20)" = "default-src 'self'; " ]
check "nosniff" [ "$(hdr X-Content-Type-Options)" = nosniff ]
check "X-Frame-Options" [ "$(hdr X-Frame-Options)" = DENY ]
check "dot-dot refused" [ "$(curl -s --path-as-is -o /dev/null -w '%{http_code}' "$WF_URL/../Makefile")" = 400 ]
check "metrics" [ "$(code GET /metrics '')" = 200 ]
check "metrics has wf_runs" grep -q '^wf_runs{state="cancelled"} 1$' "$IT_DIR/body"

# PostgreSQL goes away: 503, no crash; comes back: 200.
if [ -n "$IT_OWN_PG" ] || [ -n "${WF_TEST_WORK:-}" ]; then
	pgdir=${IT_OWN_PG:-$WF_TEST_WORK/pg}
	pg_stop "$pgdir"
	check "db down: healthz 503" [ "$(code GET /healthz '')" = 503 ]
	check "db down: API 503 unavailable" [ "$(code GET /api/v1/runs "$VIEW")" = 503 ]
	pg_start "$pgdir" >/dev/null
	wait_for 15 curl -fsS "$WF_URL/healthz"
	check "db back: healthz 200" [ "$(code GET /healthz '')" = 200 ]
	check "db back: API answers" [ "$(code GET /api/v1/runs "$VIEW")" = 200 ]
fi
check "engine still alive" kill -0 "$ENGINE_PID"
