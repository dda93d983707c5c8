#!/usr/bin/env bash
# The first five minutes: `bin/wfctl dev examples/` run exactly as the README
# says, in a clean copy of the repository (tracked files plus new ones not yet
# ignored; the suite's binaries copied into bin/). Every example is submitted;
# each one run by hand ends as examples/README.md says; always-fails
# dead-letters its task and resume gives it new attempts; the one-time
# example shows its fire time. Ctrl-C stops everything (exit 0, nothing left
# behind); a second start reuses the data and the token; --reset removes it.
. "$(dirname "$0")/../lib/harness.sh"

WORK=$(mktemp -d "${WF_TEST_WORK:-/tmp}/dev-demo.XXXXXX")
REPO=$WORK/repo
DEV_PID=""
PGREAL=""

dev_cleanup() {
	if [ -n "$DEV_PID" ] && kill -0 "$DEV_PID" 2>/dev/null; then
		kill -TERM "$DEV_PID" 2>/dev/null
		wait_for 40 dev_gone
		kill -9 "$DEV_PID" 2>/dev/null
	fi
	# Whatever a failed test left behind: PostgreSQL, then the files.
	[ -d "$REPO/.wf/pg/data" ] && pg_stop "$REPO/.wf/pg"
	case $PGREAL in /var/lib/wf-dev/?*) rm -rf "$PGREAL" ;; esac
	[ -z "${KEEP:-}" ] && rm -rf "$WORK"
	it__cleanup
}
trap dev_cleanup EXIT

dev_gone() { ! kill -0 "$DEV_PID" 2>/dev/null; }

# dev_start LOG [ARGS]: starts `bin/wfctl dev examples/` in the copy and waits
# for the dashboard line.
dev_start() {
	local log=$1
	shift
	(cd "$REPO" && exec bin/wfctl dev examples/ --http "$HTTP" --zmq "$ZMQ" "$@") >"$log" 2>&1 &
	DEV_PID=$!
	local end=$((SECONDS + 120))
	while ! grep -q 'dashboard:' "$log"; do
		if dev_gone || [ $SECONDS -ge $end ]; then
			echo "# wfctl dev did not come up:"
			sed 's/^/#   /' "$log"
			return 1
		fi
		sleep 0.2
	done
	PGREAL=$(realpath "$REPO/.wf/pg")
}

# dev_stop SIGNAL LOG: sends it and checks exit 0 within 30 s.
dev_stop() {
	local start=$SECONDS rc
	kill "-$1" "$DEV_PID"
	if ! wait_for 30 dev_gone; then
		ok 1 "wfctl dev stops within 30 s of SIG$1"
		return 1
	fi
	wait "$DEV_PID"
	rc=$?
	ok "$rc" "wfctl dev exits 0 on SIG$1 (in $((SECONDS - start)) s)"
	[ "$rc" = 0 ] || sed 's/^/#   /' "$2"
}

wf() { (cd "$REPO" && bin/wfctl "$@"); }

# The copy: what git knows or would add, never build products or .wf.
mkdir -p "$REPO/bin"
if git -C "$WF_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$WF_ROOT" && git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
		xargs -0 cp --parents -t "$REPO")
else
	tar -C "$WF_ROOT" --exclude=./.git --exclude=./build --exclude=./bin --exclude=./.wf -cf - . |
		tar -C "$REPO" -xf -
fi
cp "$WF_BIN/wfctl" "$WF_BIN/wf-engine" "$WF_BIN/wf-executor" "$REPO/bin/"
HTTP=$(free_port)
ZMQ=$(free_port)
unset WF_URL WF_TOKEN WF_DATABASE_URL

check "wfctl dev --help describes the command" \
	bash -c "'$REPO/bin/wfctl' dev --help | grep -q -- '--reset'"
grep -q 'wfctl dev examples/' "$REPO/README.md" && grep -q 'scripts/demo.sh' "$REPO/Makefile" &&
	grep -q 'wfctl dev' "$REPO/scripts/demo.sh"
ok $? "the README, make demo and scripts/demo.sh all say bin/wfctl dev examples/"

# ---------------------------------------------------------------- first start
t0=$SECONDS
dev_start "$WORK/dev1.log" || exit 1
ok 0 "wfctl dev examples/ is up in $((SECONDS - t0)) s"
check ".wf/env and .wf/token are mode 600" \
	test "$(stat -c %a "$REPO/.wf/env") $(stat -c %a "$REPO/.wf/token")" = "600 600"
. "$REPO/.wf/env"
check ".wf/env names this engine and the printed token" \
	bash -c "[ '$WF_URL' = 'http://127.0.0.1:$HTTP' ] && grep -q 'admin token:  $WF_TOKEN' '$WORK/dev1.log'"
TOKEN1=$WF_TOKEN

# A second wfctl dev elsewhere on the same port is refused, naming the port.
mkdir -p "$WORK/other"
(cd "$WORK/other" && "$REPO/bin/wfctl" dev --http "$HTTP" --zmq "$(free_port)") >"$WORK/port.log" 2>&1
rc=$?
check "a busy port is refused: exit 1, the port and --http named, nothing created" \
	bash -c "[ $rc = 1 ] && grep -q 'port $HTTP' '$WORK/port.log' && grep -q -- '--http' '$WORK/port.log' && [ ! -e '$WORK/other/.wf' ]"
(cd "$REPO" && bin/wfctl dev --http "$(free_port)" --zmq "$(free_port)") >"$WORK/twice.log" 2>&1
rc=$?
check "a second wfctl dev in the same directory is refused" \
	bash -c "[ $rc = 1 ] && grep -q 'another wfctl dev' '$WORK/twice.log'"

# Every example is there.
names=$(sed -n 's/^name: *//p' "$REPO"/examples/*.yaml | sort)
listed=$(wf workflows --json | jq -r '.items[].name' | sort)
check "wfctl workflows lists every example ($(echo $names | wc -w))" test "$names" = "$listed"

# examples/README.md's table: | file | workflow | trigger | run by hand ends |
rows=$(grep -E '^\| `[a-z-]+\.yaml`' "$REPO/examples/README.md" |
	awk -F'|' '{gsub(/[ `]/, "", $3); gsub(/[ `]/, "", $5); print $3, $5}')
check "examples/README.md documents every example" \
	test "$(echo "$rows" | awk '{print $1}' | sort)" = "$names"

wait_for 20 bash -c "cd '$REPO' && bin/wfctl executors --json | jq -e '[.items[] | select(.state == \"online\")] | length >= 2'"
ok $? "two executors are online"

while read -r name expect; do
	[ -n "$name" ] || continue
	start=$SECONDS
	wf run "$name" --wait --timeout 2m >"$WORK/run-$name.log" 2>&1
	rc=$?
	case $expect in succeeded) want=0 ;; failed) want=1 ;; *) want=x ;; esac
	ok "$([ "$rc" = "$want" ] && echo 0 || echo 1)" \
		"wfctl run $name --wait: exit $rc, $expect as documented ($((SECONDS - start)) s)"
	[ "$rc" = "$want" ] || sed 's/^/#   /' "$WORK/run-$name.log" | tail -n 15
done <<<"$rows"

# always-fails: its task is dead, shown as such, and resume tries again.
RUN=$(wf runs --workflow always-fails --json | jq -r '.items[0].id')
doomed() { wf show "$RUN" --json | jq -r ".task_runs[] | select(.task == \"doomed\") | .$1"; }
check "always-fails: doomed is dead after 3 attempts" test "$(doomed state) $(doomed attempt)" = "dead 3"
check "wfctl show names the dead task" bash -c "cd '$REPO' && bin/wfctl show $RUN | grep -E '^doomed +dead'"
wf resume "$RUN" >"$WORK/resume.log" 2>&1
ok $? "wfctl resume $RUN"
run_done() { case $(wf show "$RUN" --json | jq -r .state) in failed | succeeded | cancelled) return 0 ;; esac; return 1; }
wait_for 60 run_done
check "the resumed run fails again, doomed dead with new attempts (4-6)" \
	test "$(wf show "$RUN" --json | jq -r .state) $(doomed state) $(doomed attempt)" = "failed dead 6"

# The one-time example is due in 2030: its fire time is shown.
check "one-time-migration shows its next fire time (2030-01-15T05:00:00Z)" bash -c \
	"cd '$REPO' && bin/wfctl workflows --json | jq -e '.items[] | select(.name == \"one-time-migration\") | .next_fire_at | startswith(\"2030-01-15T05:00:00\")'"

NRUNS=$(wf runs --json --limit 100 | jq '.items | length')
PIDS=$(awk '{print $NF}' "$REPO/.wf/pids")
# The helper is not started when something else holds its port already.
want=5
grep -q 'port 8089 is in use' "$WORK/dev1.log" && want=4
check ".wf/pids names PostgreSQL, the engine, two executors and the helper" \
	test "$(wc -l <"$REPO/.wf/pids")" = "$want"

# ------------------------------------------------------------------- Ctrl-C
dev_stop INT "$WORK/dev1.log"
alive() { [ -e "/proc/$1" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" != Z ]; }
left=""
for p in $PIDS; do alive "$p" && left="$left $p"; done
check "nothing is left running (pids: $(echo $PIDS))" test -z "$left"
no_leftovers() { ! pgrep -f "$REPO" >/dev/null && ! pgrep -f "$PGREAL/" >/dev/null; }
check "no process mentions the copy or its data" no_leftovers
check "the log says what was stopped" grep -q 'stopping PostgreSQL' "$WORK/dev1.log"

# ------------------------------------------------------------- second start
dev_start "$WORK/dev2.log" || exit 1
. "$REPO/.wf/env"
check "the second start reuses the data (no initdb)" \
	bash -c "grep -q 'reusing the data' '$WORK/dev2.log' && ! grep -q 'initializing' '$WORK/dev2.log'"
check "the second start keeps the token" test "$WF_TOKEN" = "$TOKEN1"
check "the runs are still there ($NRUNS)" test "$(wf runs --json --limit 100 | jq '.items | length')" = "$NRUNS"
dev_stop TERM "$WORK/dev2.log"

# -------------------------------------------------------------------- reset
dev_start "$WORK/dev3.log" --reset || exit 1
. "$REPO/.wf/env"
check "--reset starts afresh: no runs, a new token, the examples submitted again" \
	test "$(wf runs --json | jq '.items | length') $([ "$WF_TOKEN" != "$TOKEN1" ] && echo new) $(wf workflows --json | jq '.items | length')" = "0 new $(echo $names | wc -w)"

# ------------------------------------------------- a process dies unexpectedly
PIDS=$(awk '{print $NF}' "$REPO/.wf/pids")
kill -9 "$(awk '/^executor dev-executor-1 /{print $NF}' "$REPO/.wf/pids")"
wait_for 30 dev_gone
wait "$DEV_PID"
rc=$?
check "a killed executor stops wfctl dev: exit 1, naming it and its log" bash -c \
	"[ $rc = 1 ] && grep -q 'executor dev-executor-1 was killed by signal 9' '$WORK/dev3.log' && grep -q '.wf/logs/executor-1.log' '$WORK/dev3.log'"
left=""
for p in $PIDS; do alive "$p" && left="$left $p"; done
check "then nothing is left running either" test -z "$left"
