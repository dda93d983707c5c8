#!/usr/bin/env bash
# wfctl against a real engine and executor over HTTP: submit, run --wait,
# show, runs, workflows, pause/unpause, cancel, resume, logs, executors,
# --json and the exit codes.
. "$(dirname "$0")/../lib/harness.sh"
it_setup cli_engine
it_engine --insecure-local || exit 1
it_executor cli-ex-1 --slots 4 --heartbeat-ms 500
WFCTL="$WF_BIN/wfctl"
cd "$IT_DIR" || exit 1
unset WF_TOKEN

is_json() { python3 -c 'import json,sys; json.load(sys.stdin)'; }
jget() { # jget FILE PYTHON-EXPR(d) → prints the value
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

mkdir -p wfs/more
cat >wfs/ok.yaml <<'EOF'
name: cli-ok
params:
  who: {default: world}
tasks:
  first:
    shell: [echo, "hello ${params.who}"]
  second:
    needs: first
    sh: 'echo "from second: $WF_PARAM_WHO"'
  third:
    needs: [first, second]
    noop: {}
EOF
cat >wfs/more/fails.yaml <<'EOF'
name: cli-fails
defaults:
  retries: 1
  backoff: {initial: 100ms, max: 100ms, multiplier: 1, jitter: none}
tasks:
  before:
    shell: [echo, starting]
  doomed:
    needs: before
    sh: 'echo "about to fail" ; exit 3'
  after:
    needs: doomed
    shell: [echo, never]
EOF
cat >wfs/more/slow.yml <<'EOF'
name: cli-slow
tasks:
  nap:
    shell: [sleep, "30"]
EOF

# ---------------------------------------------------------------- submit
"$WFCTL" submit wfs >out 2>&1
rc=$?
check "submit DIR: exit 0" test $rc = 0
check "submit: new workflow printed" grep -qx 'cli-ok: version 1 (new)' out
check "submit: recursive, *.yml too" grep -qx 'cli-slow: version 1 (new)' out
check "submit: three workflows" test "$(grep -c ': version ' out)" = 3
"$WFCTL" submit wfs >out 2>&1
check "resubmit unchanged: exit 0" test $? = 0
check "resubmit: unchanged" grep -qx 'cli-ok: version 1 (unchanged)' out
sed -i 's/hello /hello, /' wfs/ok.yaml
"$WFCTL" submit wfs/ok.yaml >out 2>&1
check "submit a changed file: version 2 (changed)" grep -qx 'cli-ok: version 2 (changed)' out
"$WFCTL" --json submit wfs/ok.yaml >out.json 2>&1
check "submit --json: parsable" is_json <out.json
check "submit --json: unchanged" test "$(jget out.json 'd["results"][0]["changed"]')" = False
printf 'name: broken\ntasks:\n  a: {needs: [zz], noop: {}}\n' >broken.yaml
"$WFCTL" submit broken.yaml wfs >out 2>&1
check "submit with an invalid file: exit 1" test $? = 1
check "submit: local errors as file:line:col" grep -q '^broken.yaml:3:[0-9]*: tasks.a.needs' out
check "submit: nothing submitted" bash -c "! grep -q ': version ' out"

# ------------------------------------------------------------- workflows
"$WFCTL" workflows >out 2>&1
check "workflows: exit 0" test $? = 0
check "workflows: header" grep -qE '^NAME +VERSION +STATE' out
check "workflows: lists cli-ok at version 2" grep -qE '^cli-ok +2 +active' out
"$WFCTL" --json workflows | is_json
check "workflows --json: parsable" test "${PIPESTATUS[0]}${PIPESTATUS[1]}" = 00

# ------------------------------------------------------------- executors
wait_for 20 bash -c "'$WFCTL' executors | grep -q cli-ex-1"
"$WFCTL" executors >out 2>&1
check "executors: lists the executor" grep -qE '^cli-ex-1 +default' out
"$WFCTL" executors --json | is_json
check "executors --json: parsable" test "${PIPESTATUS[0]}${PIPESTATUS[1]}" = 00

# ------------------------------------------------------------ run --wait
timeout 60 "$WFCTL" run cli-ok -p who=tester --wait --timeout 50s >out 2>&1
rc=$?
check "run --wait on a succeeding workflow: exit 0" test $rc = 0
check "run --wait: one line per state change (not a TTY)" grep -qE ' third succeeded' out
check "run --wait: summary" grep -qE '^run [0-9]+ succeeded in .*3 tasks: 3 succeeded' out
ok_run=$(sed -n 's/^run \([0-9]*\) succeeded.*/\1/p' out)
[ -n "$ok_run" ] || ok_run=0

timeout 60 "$WFCTL" run cli-fails --wait --timeout 50s >out 2>&1
rc=$?
check "run --wait on a failing workflow: exit 1" test $rc = 1
check "run --wait: failed summary names the task" grep -qE '^  doomed (failed|dead): ' out
fail_run=$(sed -n 's/^run \([0-9]*\) failed.*/\1/p' out)
[ -n "$fail_run" ] || fail_run=0

id=$("$WFCTL" run cli-ok 2>/dev/null)
check "run without --wait prints the run id" grep -qE '^[0-9]+$' <<<"$id"
"$WFCTL" --json run cli-ok --idempotency-key cli-k1 >a.json 2>&1
"$WFCTL" --json run cli-ok --idempotency-key cli-k1 >b.json 2>&1
check "run --idempotency-key: the same run twice" test "$(jget a.json 'd["run_id"]')" = "$(jget b.json 'd["run_id"]')"
"$WFCTL" run cli-ok -p nosuch=1 >out 2>&1
check "run with an unknown param: exit 1" test $? = 1
check "run: the API's message is printed" grep -q 'nosuch' out
"$WFCTL" run no-such-workflow >out 2>&1
check "run of an unknown workflow: exit 5" test $? = 5

# ------------------------------------------------------------------ show
"$WFCTL" show "$ok_run" >out 2>&1
check "show: exit 0" test $? = 0
check "show: header names the run and workflow" grep -qE "^run $ok_run +cli-ok v2 +succeeded" out
check "show: task table header" grep -qE '^TASK +STATE +ATTEMPT +EXECUTOR +DURATION +WAITING/ERROR' out
check "show: tasks in order with executor" bash -c "grep -E '^(first|second|third) ' out | awk '{print \$1}' | tr '\n' ' ' | grep -qx 'first second third '"
check "show: executor shown" grep -qE '^first +succeeded +1/1 +cli-ex-1' out
"$WFCTL" show "$fail_run" >out 2>&1
check "show: a failed task shows its error" grep -qE '^doomed +(failed|dead) +2/2 .*[a-z]' out
check "show: downstream is upstream_failed" grep -qE '^after +upstream_failed' out
"$WFCTL" --json show "$ok_run" | is_json
check "show --json: parsable" test "${PIPESTATUS[0]}${PIPESTATUS[1]}" = 00
"$WFCTL" show 987654 >out 2>&1
check "show of an unknown run: exit 5" test $? = 5
check "show of an unknown run: prints the API's message" grep -q '^wfctl: .*987654' out
"$WFCTL" show abc >out 2>&1
check "show with a bad run id: exit 2" test $? = 2

# ------------------------------------------------------------------ logs
"$WFCTL" logs "$ok_run" first >out 2>err
check "logs: exit 0" test $? = 0
check "logs: the step's output on stdout" grep -qx 'hello, tester' out
check "logs: a header on stderr" grep -q 'first attempt 1' err
"$WFCTL" logs "$ok_run" second >out 2>/dev/null
check "logs: params reach sh steps as env" grep -qx 'from second: tester' out
"$WFCTL" logs "$fail_run" doomed --attempt 1 >out 2>err
check "logs --attempt 1 of a failed task" grep -qx 'about to fail' out
check "logs: the attempt's state on stderr" grep -q 'doomed attempt 1: failed' err
"$WFCTL" logs "$fail_run" nosuchtask >out 2>&1
check "logs of an unknown task: exit 5" test $? = 5
"$WFCTL" logs "$fail_run" doomed --attempt 9 >out 2>&1
check "logs of an unknown attempt: exit 5" test $? = 5
"$WFCTL" --json logs "$ok_run" first | is_json
check "logs --json: parsable" test "${PIPESTATUS[0]}${PIPESTATUS[1]}" = 00

# ------------------------------------------------------------------ runs
"$WFCTL" runs >out 2>&1
check "runs: exit 0" test $? = 0
check "runs: header" grep -qE '^ID +WORKFLOW +VERSION +STATE +TRIGGER +CREATED +DURATION' out
check "runs: lists the failed run" grep -qE "^$fail_run +cli-fails +1 +failed" out
"$WFCTL" runs --workflow cli-fails >out 2>&1
check "runs --workflow filters" bash -c "! grep -q cli-ok out && grep -q cli-fails out"
"$WFCTL" runs --state succeeded --limit 1 >out 2>&1
check "runs --state --limit" test "$(grep -cE '^[0-9]+ ' out)" = 1
check "runs --state filters" bash -c "grep -E '^[0-9]+ ' out | grep -q succeeded"
"$WFCTL" --json runs | is_json
check "runs --json: parsable" test "${PIPESTATUS[0]}${PIPESTATUS[1]}" = 00

# ---------------------------------------------------------------- resume
"$WFCTL" resume "$fail_run" --from doomed >out 2>&1
check "resume --from: exit 0" test $? = 0
check "resume: says what was reset" grep -q 'doomed' out
wait_for 30 bash -c "'$WFCTL' --json show $fail_run | python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)[\"state\"] != \"failed\")'"
check "resume: the run ran again and failed again" test "$("$WFCTL" --json show "$fail_run" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["state"], max(t["attempt"] for t in d["task_runs"] if t["task"]=="doomed"))')" = "failed 4"
"$WFCTL" resume 987654 >out 2>&1
check "resume of an unknown run: exit 5" test $? = 5

# ---------------------------------------------------------------- cancel
slow=$("$WFCTL" run cli-slow)
wait_for 20 bash -c "'$WFCTL' show $slow | grep -qE '^nap +running'"
"$WFCTL" cancel "$slow" >out 2>&1
check "cancel: exit 0" test $? = 0
check "cancel: says cancelled" grep -qx "run $slow cancelled" out
check "cancel: the run is cancelled" bash -c "'$WFCTL' show $slow | grep -qE '^run $slow +cli-slow v1 +cancelled'"
timeout 20 "$WFCTL" run cli-slow --wait --timeout 1s >out 2>&1
check "run --wait --timeout: exit 1 when it is not done" test $? = 1
check "run --wait --timeout: says it goes on" grep -q 'not finished after' out
"$WFCTL" cancel "$(sed -n 's/.*wfctl show \([0-9]*\).*/\1/p' out | head -n 1)" >/dev/null 2>&1

# --------------------------------------------------------- pause/unpause
"$WFCTL" pause cli-ok >out 2>&1
check "pause: exit 0" test $? = 0
check "pause: workflows shows paused" bash -c "'$WFCTL' workflows | grep -qE '^cli-ok +2 +paused'"
"$WFCTL" unpause cli-ok >out 2>&1
check "unpause: exit 0" test $? = 0
check "unpause: workflows shows active" bash -c "'$WFCTL' workflows | grep -qE '^cli-ok +2 +active'"
"$WFCTL" pause no-such-workflow >out 2>&1
check "pause of an unknown workflow: exit 5" test $? = 5

# ------------------------------------------------------ URLs and configs
port=$(free_port)
WF_URL="http://127.0.0.1:$port" "$WFCTL" runs >out 2>&1
check "a dead engine URL: exit 3" test $? = 3
check "a dead engine URL: a hint" grep -q "is wf-engine running at http://127.0.0.1:$port" out
WF_URL="http://127.0.0.1:$port" "$WFCTL" run cli-ok --wait >out 2>&1
check "run --wait against a dead engine: exit 3" test $? = 3
"$WFCTL" --url "http://127.0.0.1:$port" show 1 >out 2>&1
check "--url overrides WF_URL" test $? = 3
mkdir -p proj/.wf
echo "export WF_URL=$WF_URL" >proj/.wf/env
(cd proj && env -u WF_URL "$WFCTL" workflows) >out 2>&1
check "./.wf/env supplies the URL when WF_URL is unset" grep -q '^cli-ok ' out
mkdir -p home/.config/wf
echo "url=$WF_URL" >home/.config/wf/config
env -u WF_URL -u XDG_CONFIG_HOME HOME="$IT_DIR/home" "$WFCTL" workflows >out 2>&1
check "~/.config/wf/config supplies the URL" grep -q '^cli-ok ' out

# --------------------------------------------------------- a terminal
if command -v script >/dev/null; then
	TERM=xterm timeout 60 script -qec "'$WFCTL' run cli-ok --wait" /dev/null >tty.out 2>&1
	check "run --wait on a terminal: exit 0" test $? = 0
	check "run --wait on a terminal: redraws the table in place" grep -q $'\033\\[[0-9]*A' tty.out
	check "run --wait on a terminal: a task table" grep -qE 'TASK +STATE +ATTEMPT' tty.out
	check "run --wait on a terminal: summary" grep -qE '^run [0-9]+ succeeded' <(tr -d '\r' <tty.out)
fi

# ---------------------------------------------------- tokens and roles
open_url=$WF_URL
# An engine that needs tokens refuses to start until one exists.
viewer=$("$WFCTL" token create --role viewer --name cli-viewer 2>/dev/null)
it_engine || exit 1 # a second engine on the same database, tokens required
"$WFCTL" workflows >out 2>&1
check "no token: exit 4" test $? = 4
check "no token: a hint" grep -q 'WF_TOKEN' out
WF_TOKEN=$viewer "$WFCTL" workflows >out 2>&1
check "a viewer token lists workflows" grep -q '^cli-ok ' out
WF_TOKEN=$viewer "$WFCTL" run cli-ok >out 2>&1
check "a viewer may not start runs: exit 4" test $? = 4
"$WFCTL" --token wf_0000 workflows >out 2>&1
check "a wrong token: exit 4" test $? = 4
echo "token=$viewer" >>home/.config/wf/config
env -u WF_TOKEN -u XDG_CONFIG_HOME HOME="$IT_DIR/home" "$WFCTL" --url "$WF_URL" workflows >out 2>&1
check "~/.config/wf/config supplies the token" grep -q '^cli-ok ' out
echo "export WF_TOKEN=$viewer" >>proj/.wf/env
sed -i "s|^export WF_URL=.*|export WF_URL=$WF_URL|" proj/.wf/env
(cd proj && env -u WF_URL -u WF_TOKEN HOME=/nonexistent "$WFCTL" workflows) >out 2>&1
check "./.wf/env supplies the token" grep -q '^cli-ok ' out
WF_URL=$open_url
