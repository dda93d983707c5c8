#!/usr/bin/env bash
# Browser end-to-end tests of the dashboard (web/) against a real engine and
# real executors: headless Debian chromium driven by playwright-core
# (tests/e2e/, node's built-in test runner). Prints one TAP line per node
# test. Installs chromium (apt) and the npm packages (npm ci) when missing.
# Screenshots land in tests/artifacts/ (gitignored).
. "$(dirname "$0")/../lib/harness.sh"
E2E="$WF_ROOT/tests/e2e"

need_apt() { # need_apt PACKAGE...: install what is missing, quietly
	apt-get install -y -q "$@" >"$IT_DIR/apt.log" 2>&1 ||
		{ apt-get update -q >>"$IT_DIR/apt.log" 2>&1 && apt-get install -y -q "$@" >>"$IT_DIR/apt.log" 2>&1; }
}

it_setup e2e_dashboard
if [ ! -x /usr/bin/chromium ]; then
	echo "# installing chromium"
	need_apt chromium || { tail -n 5 "$IT_DIR/apt.log" | sed 's/^/# /'; }
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "# installing nodejs and npm"
	need_apt nodejs npm || { tail -n 5 "$IT_DIR/apt.log" | sed 's/^/# /'; }
fi
ok "$([ -x /usr/bin/chromium ] && command -v node >/dev/null && echo 0 || echo 1)" "e2e: chromium and node are present"
[ -x /usr/bin/chromium ] && command -v node >/dev/null || exit 1

# npm ci when node_modules is missing or older than the lock file.
if [ ! -d "$E2E/node_modules/playwright-core" ] || [ "$E2E/package-lock.json" -nt "$E2E/node_modules/.package-lock.json" ]; then
	(cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error) >"$IT_DIR/npm.log" 2>&1
	rc=$?
	ok "$rc" "e2e: npm ci in tests/e2e"
	[ "$rc" = 0 ] || { tail -n 10 "$IT_DIR/npm.log" | sed 's/^/# /'; exit 1; }
fi

# Tokens first: an engine that needs them refuses to start without one.
admin=$("$WF_BIN/wfctl" token create --role admin --name e2e-admin 2>>"$IT_DIR/token.log")
viewer=$("$WF_BIN/wfctl" token create --role viewer --name e2e-viewer 2>>"$IT_DIR/token.log")
[ -n "$admin" ] && [ -n "$viewer" ] || { ok 1 "e2e: tokens created"; cat "$IT_DIR/token.log"; exit 1; }
it_engine --web "$WF_ROOT/web" || { ok 1 "e2e: engine starts"; exit 1; }
it_executor e2e-1
it_executor e2e-2
wait_for 20 bash -c "curl -fsS -H 'Authorization: Bearer $admin' '$WF_URL/api/v1/executors' | grep -q e2e-2" ||
	echo "# executors did not register within 20 s"
flags="$IT_DIR/flags"
mkdir -p "$flags"
chmod 777 "$flags"

# node_tap FILE PREFIX [ENV=VAL...]: runs one node test file and forwards its
# top-level results as our own TAP lines; a failure's diagnostics (indented
# YAML in node's output) follow as comments. Returns node's exit status.
node_tap() {
	local file=$1 prefix=$2 log n=0 in_fail=0 skip=0 rc line name
	shift 2
	log="$IT_DIR/${file%.mjs}.tap"
	(cd "$E2E" && env "$@" node --test --test-reporter=tap "$file") >"$log" 2>&1
	rc=$?
	while IFS= read -r line; do
		if [[ $line =~ ^(not\ )?ok\ [0-9]+\ -\ (.*)$ ]]; then
			name=${BASH_REMATCH[2]}
			name=${name%% # *}
			n=$((n + 1))
			if [ -z "${BASH_REMATCH[1]}" ]; then ok 0 "$prefix: $name"; in_fail=0; else ok 1 "$prefix: $name"; in_fail=1; fi
		elif [ $in_fail -ge 1 ] && [[ $line =~ ^\ \  ]]; then
			# The YAML block: keys at two spaces; skip the stack, cap the length.
			[[ $line =~ ^\ \ [a-zA-Z]+: ]] && { [[ $line =~ ^\ \ stack: ]] && skip=1 || skip=0; }
			if [ "$skip" = 0 ] && [ $in_fail -lt 25 ]; then echo "#$line"; in_fail=$((in_fail + 1)); fi
		elif [[ $line =~ ^[^\ ] ]]; then
			in_fail=0
		fi
	done <"$log"
	if [ "$n" = 0 ]; then
		ok 1 "$prefix: node --test $file produced results"
		tail -n 30 "$log" | sed 's/^/# /'
	fi
	echo "# node --test $file: exit $rc, full output in $log"
	return $rc
}

node_tap unit.test.mjs "dashboard unit"
rc_unit=$?
node_tap dashboard.test.mjs e2e WF_URL="$WF_URL" WF_ADMIN_TOKEN="$admin" WF_VIEWER_TOKEN="$viewer" \
	WF_E2E_FLAGS="$flags" WF_E2E_ARTIFACTS="$WF_ROOT/tests/artifacts"
rc_e2e=$?
echo "# screenshots in tests/artifacts/"
[ "$rc_unit" = 0 ] && [ "$rc_e2e" = 0 ]
