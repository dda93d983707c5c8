#!/bin/sh
# Builds every tests/fuzz/fuzz_*.c with libFuzzer + ASan/UBSan into build/fuzz/
# and runs each for SECONDS seconds (default 30) on a copy of its seed corpus
# tests/fuzz/corpus/<name>/ (fuzz_dsl.c → corpus/dsl). Prints one line per
# target; exits non-zero when a target fails to build or finds a crash.
# Crashes are kept as build/fuzz/<name>/crash-*: turn each into a regression
# case (for the DSL: tests/data/dsl/invalid/).
#   tests/fuzz/run.sh [SECONDS]
set -u
cd "$(dirname "$0")/../.." || exit 2
SECONDS_PER_TARGET=${1:-30}
CC=${FUZZ_CC:-clang}
OUT=build/fuzz
mkdir -p "$OUT"

LIBS=$(pkg-config --libs yaml-0.1 jansson libsodium libzmq 2>/dev/null || echo -lyaml -ljansson -lsodium -lzmq)
CFLAGS_PKG=$(pkg-config --cflags yaml-0.1 jansson libsodium libzmq 2>/dev/null)
status=0
found=0
for src in tests/fuzz/fuzz_*.c; do
	[ -e "$src" ] || continue
	found=1
	name=$(basename "$src" .c)
	short=${name#fuzz_}
	bin="$OUT/$name"
	work="$OUT/$short"
	log="$OUT/$name.log"
	# shellcheck disable=SC2086
	if ! $CC -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -g -O1 \
		-D_GNU_SOURCE -DWF_VERSION='"fuzz"' -I. -Icommon -Idsl $CFLAGS_PKG \
		"$src" dsl/*.c common/*.c -o "$bin" $LIBS -lpthread -lm >"$log" 2>&1; then
		echo "$name: BUILD FAILED (see $log)"
		status=1
		continue
	fi
	rm -rf "$work"
	mkdir -p "$work/corpus"
	if [ -d "tests/fuzz/corpus/$short" ]; then
		cp -R "tests/fuzz/corpus/$short/." "$work/corpus/"
	fi
	if (cd "$work" && "../$name" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
		-rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 corpus >"../$name.run.log" 2>&1); then
		execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$OUT/$name.run.log" | grep -o '[0-9]*$')
		echo "$name: ok (${SECONDS_PER_TARGET}s, ${execs:-?} runs)"
	else
		crash=$(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null | head -n 1)
		echo "$name: FAILED ${crash:+($crash)} (see $OUT/$name.run.log)"
		status=1
	fi
done
if [ "$found" = 0 ]; then
	echo "no tests/fuzz/fuzz_*.c targets"
	exit 1
fi
exit $status
