#!/usr/bin/env bash
# Administration end to end: wfctl plan / submit --prune / dlq / token /
# schedules / events (--follow over SSE) against a real engine, executor
# and PostgreSQL.
. "$(dirname "$0")/../lib/harness.sh"
it_setup api_admin

ADMIN=$("$WF_BIN/wfctl" token create --role admin --name it-admin 2>/dev/null)
OPER=$("$WF_BIN/wfctl" token create --role operator --name it-oper 2>/dev/null)
VIEW=$("$WF_BIN/wfctl" token create --role viewer --name it-view 2>/dev/null)
it_engine || exit 1
it_executor ex1
WFCTL="$WF_BIN/wfctl"
quiet() { "$@" >/dev/null; }
export WF_TOKEN=$ADMIN

D=$IT_DIR/flows
mkdir -p "$D"
cat >"$D/ok.yaml" <<'YAML'
name: adm-ok
schedule:
  cron: "0 3 * * *"
  timezone: Europe/Berlin
tasks:
  a:
    noop: {}
YAML
cat >"$D/fail.yaml" <<'YAML'
name: adm-fail
tasks:
  boom:
    shell: ["false"]
    retries: 0
  after:
    needs: [boom]
    noop: {}
YAML
cat >"$D/extra.yaml" <<'YAML'
name: adm-extra
tasks:
  a:
    noop: {}
YAML

check "submit DIR" quiet "$WFCTL" submit "$D"
out=$("$WFCTL" plan "$D")
check "plan: all unchanged" grep -q "plan: 0 new, 0 changed, 3 unchanged, 0 removed" <<<"$out"
rm "$D/extra.yaml"
sed -i 's/noop: {}/sleep: 10ms/' "$D/ok.yaml"
cat >"$D/new.yaml" <<'YAML'
name: adm-new
tasks:
  a:
    noop: {}
YAML
out=$("$WFCTL" plan "$D")
check "plan: new, changed, removed" grep -q "plan: 1 new, 1 changed, 1 unchanged, 1 removed" <<<"$out"
check "plan names the removed workflow" grep -q "^- adm-extra: removed" <<<"$out"
check "plan --json" [ "$("$WFCTL" plan --json "$D" | jq -r '[.new, .changed, .unchanged, .removed] | join(",")')" = "1,1,1,1" ]
check "plan changed nothing" [ "$(psql_q "SELECT count(*) FROM workflows WHERE deleted_at IS NULL")" = 3 ]
out=$("$WFCTL" submit "$D" --prune)
check "submit --prune prints what it removed" grep -q "^adm-extra: removed" <<<"$out"
check "pruned workflow is gone from the API" [ "$(curl -s -H "Authorization: Bearer $VIEW" "$WF_URL/api/v1/workflows" | jq -r '[.items[].name] | sort | join(",")')" = "adm-fail,adm-new,adm-ok" ]
check "plan after prune: nothing to do" grep -q "0 new, 0 changed, 3 unchanged, 0 removed" <<<"$("$WFCTL" plan "$D")"
check "submit without --prune keeps others" quiet "$WFCTL" submit "$D/new.yaml"
check "... adm-ok still there" [ "$(psql_q "SELECT count(*) FROM workflows WHERE name = 'adm-ok' AND deleted_at IS NULL")" = 1 ]

out=$("$WFCTL" schedules)
check "schedules lists the cron workflow" grep -q "adm-ok.*0 3 \* \* \*.*Europe/Berlin" <<<"$out"

# Dead letters: a task that always fails, no retries.
RUN=$(WF_TOKEN=$OPER it_trigger adm-fail)
check "failing run triggered" [ -n "$RUN" ]
wait_run_final 30 "$RUN"
check "run failed" [ "$(run_state "$RUN")" = failed ]
out=$("$WFCTL" dlq list)
check "dlq list shows the dead task" grep -q "adm-fail.*$RUN.*boom" <<<"$out"
DL=$("$WFCTL" dlq list --json | jq -r '.items[0].id')
check "viewer may not retry" [ "$(WF_TOKEN=$VIEW "$WFCTL" dlq retry "$DL" >/dev/null 2>&1; echo $?)" = 4 ]
out=$(WF_TOKEN=$OPER "$WFCTL" dlq retry "$DL")
check "dlq retry" grep -q "task boom of run $RUN queued again" <<<"$out"
check "dead letter resolved as retried" [ "$(psql_q "SELECT resolution FROM dead_letters WHERE id = $DL")" = retried ]
wait_for 30 out_eq 2 psql_q "SELECT count(*) FROM dead_letters WHERE run_id = $RUN"
check "retried task ran again and died again" [ "$(psql_q "SELECT attempt FROM task_runs WHERE run_id = $RUN AND task = 'boom'")" = 2 ]
wait_run_final 30 "$RUN"
DL2=$(psql_q "SELECT max(id) FROM dead_letters WHERE run_id = $RUN")
check "dlq drop" quiet env WF_TOKEN="$OPER" "$WFCTL" dlq drop "$DL2"
check "dropped" [ "$(psql_q "SELECT resolution FROM dead_letters WHERE id = $DL2")" = dropped ]
check "dlq list empty" grep -q "no open dead letters" <<<"$("$WFCTL" dlq list)"
check "dlq retry of a resolved one fails" [ "$(WF_TOKEN=$OPER "$WFCTL" dlq retry "$DL2" >/dev/null 2>&1; echo $?)" = 1 ]

# Events.
out=$("$WFCTL" events --run "$RUN")
check "events of the run" grep -q "dead_letter.retried" <<<"$out"
check "events --json one object a line" [ "$("$WFCTL" events --json --run "$RUN" | jq -s 'length > 2')" = true ]
"$WFCTL" events --follow --json --workflow adm-new >"$IT_DIR/follow.out" 2>"$IT_DIR/follow.err" &
FOLLOW=$!
IT_PIDS+=("$FOLLOW")
sleep 1
WF_TOKEN=$OPER "$WFCTL" pause adm-new >/dev/null
wait_for 5 grep -q '"kind":"workflow.paused"' "$IT_DIR/follow.out"
check "events --follow receives a new event (SSE)" grep -q '"kind":"workflow.paused"' "$IT_DIR/follow.out"
kill "$FOLLOW" 2>/dev/null
check "SSE headers" [ "$(curl -s -m 2 -o /dev/null -w '%{content_type}' -H "Authorization: Bearer $VIEW" "$WF_URL/api/v1/events/stream")" = text/event-stream ]

# Tokens.
out=$("$WFCTL" token list)
check "token list" grep -q "it-view.*viewer.*active" <<<"$out"
check "token list never shows hashes" [ -z "$("$WFCTL" token list --json | jq -r '.items[] | select(has("hash")) | .name')" ]
check "token list needs admin" [ "$(WF_TOKEN=$OPER "$WFCTL" token list >/dev/null 2>&1; echo $?)" = 4 ]
check "viewer works before revoke" [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $VIEW" "$WF_URL/api/v1/whoami")" = 200 ]
check "token revoke" quiet "$WFCTL" token revoke it-view
check "revoked token refused at once" [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $VIEW" "$WF_URL/api/v1/whoami")" = 401 ]
check "token list shows revoked" grep -q "it-view.*revoked" <<<"$("$WFCTL" token list)"
check "token create still works" [ -n "$("$WFCTL" token create --role viewer --name it-view2 2>/dev/null)" ]
check "whoami" [ "$(curl -s -H "Authorization: Bearer $OPER" "$WF_URL/api/v1/whoami" | jq -r .name)" = it-oper ]
check "engine still alive" kill -0 "$ENGINE_PID"
