#!/usr/bin/env bash
# A/B of two builds of wf, wf-only throughput, one round per invocation of
# bench/run.sh, the order swapped every pair (the machine's speed drifts
# within a minute: rounds of one build in a row are not comparable with the
# next build's). Not part of `make bench`.
#
#   bench/experiments/ab.sh PAIRS A_BIN_DIR B_BIN_DIR
#
# A_BIN_DIR and B_BIN_DIR hold wf-engine and wf-executor (a copy of bin/
# after `make` at each commit). Prints one line per round: the build, jobs/s
# and CPU seconds (engine, executors, other = PostgreSQL and the rest,
# machine). BENCH_N and the other bench knobs pass through.
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -eq 3 ] || { echo "usage: $0 PAIRS A_BIN_DIR B_BIN_DIR" >&2; exit 2; }
PAIRS=$1 A=$2 B=$3
one() {
	local work
	work=$(mktemp -d /tmp/wf-ab.XXXXXX)
	WF_BIN=$1 BENCH_WORK=$work BENCH_PHASES=throughput BENCH_PEERS= BENCH_ROUNDS=1 \
		"$ROOT/bench/run.sh" >"$work.log" 2>&1
	local f
	f=$(ls -t "$ROOT"/bench/results/*.json | head -1)
	echo "$2 $(jq -r '.results[] | select(.phase=="throughput" and .system=="wf") |
		"\(.per_s|floor) jobs/s engine=\(.cpu_s.engine) executors=\(.cpu_s.executors) other=\(.cpu_s.other) machine=\(.cpu_s.machine)"' "$f")"
	rm -rf "$work" "$work.log"
}
for p in $(seq 1 "$PAIRS"); do
	if [ $((p % 2)) = 1 ]; then one "$A" A; one "$B" B; else one "$B" B; one "$A" A; fi
done
