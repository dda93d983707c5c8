#!/usr/bin/env bash
# wfctl's offline commands (validate, next, graph, help, completion): no
# engine, no database.
. "$(dirname "$0")/../lib/harness.sh"
WFCTL="$WF_BIN/wfctl"
DATA=${WF_TEST_DATA:-$WF_ROOT/tests/data}
T=${WF_TEST_WORK:-$(mktemp -d /tmp/wf-it.XXXXXX)}/cli_offline
rm -rf "$T"
mkdir -p "$T"
cd "$T" || exit 1

is_json() { python3 -c 'import json,sys; json.load(sys.stdin)'; }

# ------------------------------------------------------------- validate
"$WFCTL" validate "$DATA/dsl/valid" >out 2>&1
check "validate: tests/data/dsl/valid is all valid" test $? = 0
check "validate: summary says 0 invalid" grep -qE '^[0-9]+ files?, 0 invalid$' out

"$WFCTL" validate "$WF_ROOT/examples" >out 2>&1
check "validate: examples/ is all valid" test $? = 0

cat >bad.yaml <<'EOF'
name: bad
tasks:
  a:
    shell: [echo, hi]
    needs: [nope]
  b:
    retries: lots
    noop: {}
EOF
"$WFCTL" validate bad.yaml >out 2>&1
check "validate: an invalid file exits 1" test $? = 1
check "validate: errors name file:line:col" grep -q '^bad\.yaml:5:[0-9]*: tasks\.a\.needs' out
check "validate: every error is reported" grep -q '^bad\.yaml:7:[0-9]*: tasks\.b\.retries' out
check "validate: summary for one invalid file" grep -qx '1 file, 1 invalid' out

"$WFCTL" validate "$WF_ROOT/examples/fan-out-fan-in.yaml" bad.yaml >out 2>&1
check "validate: a mix exits 1" test $? = 1
check "validate: a mix sums up" grep -qx '2 files, 1 invalid' out
check "validate: valid files are quiet" bash -c "! grep -q fan-out-fan-in out"

"$WFCTL" validate -v "$WF_ROOT/examples/fan-out-fan-in.yaml" >out 2>&1
check "validate -v lists valid files" grep -q 'fan-out-fan-in.yaml: ok (workflow fan-out-fan-in' out

# a folder: recursive, *.yaml and *.yml only, hidden folders skipped
mkdir -p tree/sub/deeper tree/.git tree/docs
cp "$WF_ROOT/examples/fan-out-fan-in.yaml" tree/a.yaml
cp "$WF_ROOT/examples/fan-out-fan-in.yaml" tree/sub/deeper/b.yml
cp bad.yaml tree/.git/ignored.yaml
echo 'not: [a workflow' >tree/docs/readme.txt
"$WFCTL" validate tree >out 2>&1
check "validate: folders are searched recursively" test $? = 0
check "validate: found both files, skipped the rest" grep -qx '2 files, 0 invalid' out
cp bad.yaml tree/sub/c.yaml
"$WFCTL" validate tree >out 2>&1
check "validate: an invalid file deep in a folder exits 1" test $? = 1
check "validate: it is named with its path" grep -q '^tree/sub/c\.yaml:5:' out

"$WFCTL" validate "$DATA/dsl/invalid" >out 2>&1
rc=$?
n=$(ls "$DATA"/dsl/invalid/*.yaml | wc -l)
check "validate: every file of tests/data/dsl/invalid is invalid" grep -qx "$n files, $n invalid" out
check "validate: ... and exits 1" test $rc = 1

"$WFCTL" validate does-not-exist.yaml >out 2>&1
check "validate: a missing file exits 1" test $? = 1
check "validate: a missing file is named" grep -q 'does-not-exist.yaml' out

"$WFCTL" validate >out 2>&1
check "validate: no arguments is a usage error (2)" test $? = 2
"$WFCTL" validate --frobnicate x.yaml >out 2>&1
check "validate: an unknown option is a usage error (2)" test $? = 2

# --json, as a global option and after the command
"$WFCTL" --json validate "$WF_ROOT/examples/fan-out-fan-in.yaml" bad.yaml >out.json 2>err
check "validate --json: exit 1 for a mix" test $? = 1
check "validate --json: parsable" is_json <out.json
check "validate --json: shape" python3 - out.json <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
f = d["files"]
assert len(f) == 2, f
ok, bad = f
assert set(ok) >= {"file", "valid", "workflow", "hash", "errors"}, ok
assert ok["valid"] is True and ok["workflow"] == "fan-out-fan-in" and len(ok["hash"]) == 64
assert ok["errors"] == []
assert bad["valid"] is False and bad["workflow"] is None and bad["hash"] is None
e = bad["errors"][0]
assert set(e) == {"file", "line", "col", "field", "message"}, e
assert e["file"] == "bad.yaml" and e["line"] == 5 and e["col"] > 0
assert e["field"] == "tasks.a.needs[0]" and "nope" in e["message"]
EOF
"$WFCTL" validate --json bad.yaml 2>/dev/null | is_json
check "validate: --json after the command" test "${PIPESTATUS[0]}${PIPESTATUS[1]}" = 10

# ----------------------------------------------------------------- next
"$WFCTL" next "0 9 * * 1-5" --tz Europe/Berlin -n 3 --after 2026-03-27T00:00:00Z >out 2>&1
check "next: exit 0" test $? = 0
check "next: three times" test "$(grep -c 'Z$' out)" = 3
check "next: Friday before the DST change is +01:00 = 08:00Z" \
	grep -qE '2026-03-27 09:00(:00)? \+01:00 +2026-03-27T08:00:00Z' out
check "next: Monday after it is +02:00 = 07:00Z" \
	grep -qE '2026-03-30 09:00(:00)? \+02:00 +2026-03-30T07:00:00Z' out
check "next: Tuesday 07:00Z" grep -qE '2026-03-31 09:00(:00)? \+02:00 +2026-03-31T07:00:00Z' out
check "next: in order, nothing at the weekend" \
	test "$(grep -oE '2026-03-[0-9]+T' out | tr '\n' ' ')" = "2026-03-27T 2026-03-30T 2026-03-31T "
check "next: describes the expression" grep -qi 'monday' out

"$WFCTL" --json next "0 9 * * 1-5" --tz Europe/Berlin -n 3 --after 2026-03-27T00:00:00Z >out.json
check "next --json: shape and times" python3 - out.json <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["expression"] == "0 9 * * 1-5" and d["timezone"] == "Europe/Berlin"
assert d["description"]
assert [t["utc"] for t in d["times"]] == ["2026-03-27T08:00:00Z", "2026-03-30T07:00:00Z", "2026-03-31T07:00:00Z"], d
assert [t["local"] for t in d["times"]] == ["2026-03-27T09:00:00+01:00", "2026-03-30T09:00:00+02:00", "2026-03-31T09:00:00+02:00"], d
EOF

"$WFCTL" next "30 2 * * *" --tz Europe/Berlin -n 2 --after 2026-03-28T12:00:00Z >out 2>&1
check "next: a time skipped by DST fires after the gap" grep -q '2026-03-29T01:30:00Z' out

"$WFCTL" next "0 12 * * *" -n 1 --after 2026-01-01T00:00:00Z >out 2>&1
check "next: UTC by default" grep -qE '2026-01-01 12:00(:00)? \+00:00 +2026-01-01T12:00:00Z' out

"$WFCTL" next "0 9 * * 9" >out 2>&1
check "next: a bad expression exits 1" test $? = 1
check "next: ... names the field" grep -q 'day-of-week' out
check "next: ... quotes the expression" grep -qF "'0 9 * * 9'" out
"$WFCTL" next "61 * * * *" >out 2>&1
check "next: a bad minute names the minute field" grep -q 'minute' out
"$WFCTL" next "0 9 * * *" --tz Mars/Olympus >out 2>&1
check "next: an unknown zone exits 1" test $? = 1
check "next: ... names the zone" grep -q 'Mars/Olympus' out
"$WFCTL" next "0 9 * * *" -n zero >out 2>&1
check "next: a bad -n is a usage error" test $? = 2
"$WFCTL" next "0 9 * * *" --after yesterday >out 2>&1
check "next: a bad --after is a usage error" test $? = 2
"$WFCTL" next >out 2>&1
check "next: no expression is a usage error" test $? = 2

# ---------------------------------------------------------------- graph
"$WFCTL" graph "$WF_ROOT/examples/fan-out-fan-in.yaml" >out 2>&1
check "graph: exit 0" test $? = 0
check "graph: edges as a -> b lines" grep -qx 'split -> part-a' out
check "graph: every edge" test "$(grep -c ' -> ' out)" = 7
pos() { grep -n -E "^ *[0-9]+ +$1 " out | head -n 1 | cut -d: -f1; }
check "graph: tasks in topological order" \
	test "$(pos split)" -lt "$(pos part-b)" -a "$(pos part-b)" -lt "$(pos merge)" -a "$(pos merge)" -lt "$(pos cleanup)"
check "graph: shows needs and step types" grep -qE 'merge +shell +part-a, part-b, part-c' out
check "graph: shows a trigger rule that is not the default" grep -qE 'cleanup +shell +merge +always' out

"$WFCTL" graph --dot "$WF_ROOT/examples/fan-out-fan-in.yaml" >out.dot 2>&1
check "graph --dot: exit 0" test $? = 0
check "graph --dot: a digraph" grep -q '^digraph "fan-out-fan-in" {' out.dot
check "graph --dot: rankdir=LR" grep -q 'rankdir=LR' out.dot
check "graph --dot: node labels carry the step type" grep -qF '"part-b" [label="part-b\nsleep"]' out.dot
check "graph --dot: edges" grep -qF '"part-a" -> "merge"' out.dot
check "graph --dot: closed" test "$(tail -n 1 out.dot)" = "}"
if command -v dot >/dev/null; then
	check "graph --dot: Graphviz accepts it" dot -Tsvg -o out.svg out.dot
fi
"$WFCTL" graph "$DATA/dsl/invalid/cycle.yaml" >out 2>&1
check "graph: an invalid file exits 1" test $? = 1
check "graph: ... with the compiler's error" grep -q 'cycle.yaml:[0-9]*:[0-9]*: .*cycle' out
"$WFCTL" --json graph "$WF_ROOT/examples/fan-out-fan-in.yaml" | is_json
check "graph --json: the DAG" test "${PIPESTATUS[0]}${PIPESTATUS[1]}" = 00

# ----------------------------------------------------------------- help
"$WFCTL" --help >out 2>&1
check "--help exits 0" test $? = 0
check "--help lists every command" bash -c "for c in validate graph next submit workflows pause unpause run runs show logs resume cancel executors migrate token; do grep -q \"^  \$c \" out || exit 1; done"
allhelp=0
for c in validate graph next submit workflows pause unpause run runs show logs resume cancel executors migrate token; do
	o=$("$WFCTL" "$c" --help 2>&1) && grep -q "^usage: wfctl $c" <<<"$o" || { allhelp=1; echo "# $c --help: $o"; }
done
ok $allhelp "COMMAND --help prints the command's usage and exits 0"
"$WFCTL" help run 2>&1 | grep -q '^usage: wfctl run'
check "help COMMAND works too" test "${PIPESTATUS[0]}${PIPESTATUS[1]}" = 00
"$WFCTL" frobnicate >out 2>&1
check "an unknown command exits 2" test $? = 2
"$WFCTL" >out 2>&1
check "no command exits 2" test $? = 2

# ----------------------------------------------------------- completion
comp() { # comp WORDS... → the completions for the last word
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _wfctl; printf "%s\n" "${COMPREPLY[@]}"' \
		_ "$WF_ROOT/contrib/wfctl.bash-completion" "$@"
}
check "completion: commands" test "$(comp wfctl va)" = validate
out=$(comp wfctl run wf --id)
check "completion: options of run" test "$out" = "--idempotency-key"
out=$(comp wfctl next "0 9 * * *" --tz Europe/Ber)
check "completion: time zones" grep -qx 'Europe/Berlin' <<<"$out"
