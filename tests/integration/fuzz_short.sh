#!/usr/bin/env bash
# Every parser under libFuzzer + ASan/UBSan for a few seconds each (part of
# make test): YAML DSL, cron, wire frames, API JSON bodies. One TAP line per
# target. Needs clang with libFuzzer (scripts/deps.sh installs clang and
# libclang-rt-14-dev); skipped when it is missing. A crash is kept under
# build/fuzz/<name>/: add it to tests/fuzz/corpus/<name>/ as a regression.
#   FUZZ_SECONDS=10 (per target)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${FUZZ_SECONDS:-5}
n=0
if ! command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1 ||
	! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { (void)d; (void)n; return 0; }' |
	"${FUZZ_CC:-clang}" -fsanitize=fuzzer -x c - -o /tmp/wf-fuzz-probe.$$ >/dev/null 2>&1; then
	rm -f /tmp/wf-fuzz-probe.$$
	echo "ok 1 - # SKIP clang with libFuzzer is not installed (scripts/deps.sh)"
	echo "1..1"
	exit 0
fi
rm -f /tmp/wf-fuzz-probe.$$
targets=$(cd "$ROOT/tests/fuzz" && ls fuzz_*.c | sed 's/\.c$//')
out=$("$ROOT/tests/fuzz/run.sh" "$SECS" 2>&1)
for t in $targets; do
	n=$((n + 1))
	line=$(grep "^$t: " <<<"$out")
	case $line in
	*": ok "*) echo "ok $n - $line" ;;
	*) echo "not ok $n - ${line:-$t: no result}" ;;
	esac
done
for t in $targets; do
	n=$((n + 1))
	short=${t#fuzz_}
	if [ -d "$ROOT/tests/fuzz/corpus/$short" ] && [ -n "$(ls -A "$ROOT/tests/fuzz/corpus/$short")" ]; then
		echo "ok $n - $t has a seed and regression corpus"
	else
		echo "not ok $n - $t has no corpus in tests/fuzz/corpus/$short"
	fi
done
echo "1..$n"
