#!/usr/bin/env bash
# Runs every suite and ends with "N passed, N failed".
#   B=build/rel tests/run.sh            all suites
#   SUITES="unit integration" ONLY=regex tests/run.sh
#   WRAP="valgrind ..." SUITES=unit tests/run.sh   (make valgrind)
# Unit tests are Criterion binaries under $B/tests/*/; integration tests are
# tests/integration/*.sh printing TAP lines ("ok - name" / "not ok - name").
# One throwaway PostgreSQL serves all suites; each test makes its own database.
set -u
cd "$(dirname "$0")/.."
B=${B:-build/rel}
SUITES=${SUITES:-unit integration}
ONLY=${ONLY:-}
TEST_TIMEOUT=${TEST_TIMEOUT:-600}
export WF_BIN=${WF_BIN:-$PWD/bin} WF_TEST_DATA=$PWD/tests/data WF_ROOT=$PWD

passed=0
failed=0
failures=()
work=$(mktemp -d /tmp/wf-test.XXXXXX)
chmod 755 "$work"
export WF_TEST_WORK=$work
. tests/lib/pg.sh

cleanup() {
	pg_stop "$work/pg"
	if [ "$failed" -eq 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "test files kept in $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! pg_start "$work/pg"; then
	echo "cannot start PostgreSQL for the tests"
	echo "0 passed, 1 failed"
	exit 1
fi

count_criterion() { # file name
	local line p f
	line=$(grep -a 'Synthesis: Tested:' "$1" | tail -n 1)
	if [ -z "$line" ]; then
		failed=$((failed + 1))
		failures+=("$2 (no Criterion summary: crashed or timed out)")
		return
	fi
	p=$(echo "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
	f=$(echo "$line" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p')
	c=$(echo "$line" | sed -n 's/.*Crashing: \([0-9]*\).*/\1/p')
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" != 0 ]; then
		failures+=("$2: $f failing$( [ "${c:-0}" != 0 ] && echo ", $c crashing")")
		grep -a -E '\[----\]|\[FAIL\]' "$1" | head -n 40
	fi
}

count_tap() { # file name rc
	local p f
	p=$(grep -a -c '^ok ' "$1")
	f=$(grep -a -c '^not ok ' "$1")
	passed=$((passed + p))
	failed=$((failed + f))
	grep -a '^not ok ' "$1" | while read -r l; do echo "  $2: $l"; done
	[ "$f" != 0 ] && failures+=("$2: $f failing")
	if [ "$3" != 0 ] && [ "$f" = 0 ]; then
		failed=$((failed + 1))
		failures+=("$2: exited $3 (see $1)")
		tail -n 30 "$1"
	fi
}

# Run on its own, this script does not build: say so when the binaries it
# is about to test are older than the sources (make unit-test / make test
# build first).
stale=$(find common dsl engine executor cli tests/unit migrations -newer "$B/libwfengine.a" \
	\( -name '*.c' -o -name '*.h' -o -name '*.sql' \) 2>/dev/null | head -n 3 | tr '\n' ' ')
case " $SUITES " in *" unit "*)
	old=$(find "$B/tests/engine" -name 'test_*' -type f ! -newer "$B/libwfengine.a" 2>/dev/null | head -n 1)
	[ -n "$old" ] && stale+="$old (older than $B/libwfengine.a)" ;;
esac
[ -n "$stale" ] && echo "warning: testing old binaries: newer sources or libraries than the binaries: $stale; make unit-test or make test build first" >&2

for suite in $SUITES; do
	case $suite in
	unit)
		for t in $(ls "$B"/tests/*/test_* 2>/dev/null | grep -v '\.d$' | sort); do
			[ -x "$t" ] || continue
			name=${t#"$B"/tests/}
			[ -n "$ONLY" ] && ! [[ $name =~ $ONLY ]] && continue
			log="$work/unit-${name//\//-}.log"
			start=$(date +%s)
			# shellcheck disable=SC2086 # WRAP is a command line (make valgrind)
			timeout -k 10 "$TEST_TIMEOUT" ${WRAP:-} "$t" --jobs 2 --timeout 300 >"$log" 2>&1
			count_criterion "$log" "$name"
			echo "unit $name: $(grep -a 'Synthesis' "$log" | tail -n 1 | sed 's/.*Synthesis: //') ($(($(date +%s) - start))s)"
		done
		;;
	integration)
		for t in $(ls tests/integration/*.sh 2>/dev/null | sort); do
			name=$(basename "$t" .sh)
			[ -n "$ONLY" ] && ! [[ $name =~ $ONLY ]] && continue
			log="$work/it-$name.log"
			start=$(date +%s)
			timeout -k 10 "$TEST_TIMEOUT" bash "$t" >"$log" 2>&1
			rc=$?
			count_tap "$log" "$name" "$rc"
			echo "integration $name: $(grep -a -c '^ok ' "$log") ok, $(grep -a -c '^not ok ' "$log") not ok, exit $rc ($(($(date +%s) - start))s)"
		done
		;;
	esac
done

if [ ${#failures[@]} -gt 0 ]; then
	echo "failures:"
	for f in "${failures[@]}"; do echo "  $f"; done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
