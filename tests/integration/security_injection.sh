#!/usr/bin/env bash
# Hostile parameter values reach a step only as single argv elements and
# environment values, byte for byte, and nothing in them is executed. A NUL
# byte is refused with a 400 naming the parameter; sh: scripts never get
# ${params.*} spliced in.
. "$(dirname "$0")/../lib/harness.sh"
it_setup security_injection
D=$IT_DIR
it_engine --insecure-local --lease 3s --heartbeat 1s --poll-ms 100 || exit 1
it_executor inj --heartbeat-ms 500
check "executor online" wait_for 15 test "$(psql_q "SELECT count(*) FROM executors WHERE state = 'online'")" = 1
CANARY=$D/canary-executed
rm -f "$CANARY"

# dump.sh writes each argv element (length, then the bytes, hex) and the
# WF_PARAM_* environment, so the comparison is byte-exact.
cat >"$D/dump.sh" <<'SH'
#!/bin/sh
out=$1
shift
{
	echo "argc=$#"
	for a in "$@"; do
		printf 'arg len=%s hex=' "$(printf %s "$a" | wc -c)"
		printf %s "$a" | od -An -tx1 -v | tr -d ' \n'
		echo
	done
	for v in A B C D E F G; do
		eval "val=\${WF_PARAM_$v-}"
		printf 'env %s hex=' "$v"
		printf %s "$val" | od -An -tx1 -v | tr -d ' \n'
		echo
	done
} >"$out"
SH
chmod +x "$D/dump.sh"
cat >"$D/inj.yaml" <<YAML
name: inj
params:
  a: x
  b: x
  c: x
  d: x
  e: x
  f: x
  g: x
tasks:
  dump:
    shell: ["$D/dump.sh", "$D/out.txt", "\${params.a}", "\${params.b}", "\${params.c}", "\${params.d}", "\${params.e}", "\${params.f}", "\${params.g}"]
YAML
out=$(it_submit "$D/inj.yaml")
check "submit the dump workflow" grep -q '"workflow":"inj"' <<<"$out"

# The hostile values, as JSON strings and as the bytes they must arrive as.
A='$(touch '"$CANARY"')'
B='`touch '"$CANARY"'`'
C='; touch '"$CANARY"'; echo'
Dv=$'line1\nline2\n$(touch '"$CANARY"')'
E=$'quotes \' " \\ and ${HOME} $HOME %s'
F='--output=/etc/passwd'
G='-rf /'
params=$(jq -n --arg a "$A" --arg b "$B" --arg c "$C" --arg d "$Dv" --arg e "$E" --arg f "$F" --arg g "$G" \
	'{a:$a,b:$b,c:$c,d:$d,e:$e,f:$f,g:$g}')
run=$(it_trigger inj "$params")
check "run created with hostile params" test -n "$run"
wait_run_final 30 "$run"
check "the run succeeded" test "$(run_state "$run")" = succeeded
hex() { printf %s "$1" | od -An -tx1 -v | tr -d ' \n'; }
check "argc is exactly 7: each param is ONE argv element" grep -qx 'argc=7' "$D/out.txt"
i=0
for name in A B C Dv E F G; do
	val=${!name}
	i=$((i + 1))
	line=$(grep '^arg ' "$D/out.txt" | sed -n "${i}p")
	check "param $name arrives byte-exact as argv[$i] (len ${#val})" \
		test "$line" = "arg len=$(printf %s "$val" | wc -c) hex=$(hex "$val")"
	envname=$(printf '%s' "${name:0:1}")
	check "param $name arrives byte-exact as WF_PARAM_$envname" \
		grep -qx "env $envname hex=$(hex "$val")" "$D/out.txt"
done
check "nothing in the params was executed (no canary file)" test ! -e "$CANARY"

# A NUL byte cannot be an argv element or an env value: refused, naming it.
code=$(curl -s -o "$D/nul.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
	--data-binary '{"params":{"a":"x\u0000y"}}' "$WF_URL/api/v1/workflows/inj/runs")
check "a NUL byte in a param is refused with 400" test "$code" = 400
check "  the error names the param" test "$(jq -r .error.field "$D/nul.json")" = params.a
check "  and says why" grep -q 'NUL byte' "$D/nul.json"
code=$(curl -s -o "$D/nulk.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
	--data-binary '{"params":{"a\u0000b":"x"}}' "$WF_URL/api/v1/workflows/inj/runs")
check "a NUL byte in a param name is refused with 400" test "$code" = 400
check "no run was created by the refused requests" \
	test "$(psql_q "SELECT count(*) FROM runs r JOIN workflows w ON w.id = r.workflow_id WHERE w.name = 'inj'")" = 1
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
	--data-binary '{"params":{"zz":"x"}}' "$WF_URL/api/v1/workflows/inj/runs")
check "an undeclared param is refused (no arbitrary WF_PARAM_ names)" test "$code" = 400

# sh: scripts take params only from the environment.
cat >"$D/shp.yaml" <<'YAML'
name: shp
params:
  x: a
tasks:
  a:
    sh: 'echo ${params.x}'
YAML
out=$("$WF_BIN/wfctl" validate "$D/shp.yaml" 2>&1)
check "\${params.x} in an sh: script is a compile error" test $? != 0
check "  which points to \$WF_PARAM_X" grep -q 'WF_PARAM_X' <<<"$out"
out=$(it_submit "$D/shp.yaml")
check "  and the API refuses it too" grep -q 'invalid_workflow' <<<"$out"

cat >"$D/shenv.yaml" <<YAML
name: shenv
params:
  x: a
tasks:
  a:
    sh: 'printf %s "\$WF_PARAM_X" > $D/shenv.out'
YAML
it_submit "$D/shenv.yaml" >/dev/null
run=$(it_trigger shenv "$(jq -n --arg x "$A; $B" '{x:$x}')")
wait_run_final 30 "$run"
check "an sh: step reads a hostile param from the environment" test "$(cat "$D/shenv.out")" = "$A; $B"
check "  and nothing was executed" test ! -e "$CANARY"
echo "1..$TAP_N"
