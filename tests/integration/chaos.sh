#!/usr/bin/env bash
# Fault injection against real processes (tests/chaos/*): executors and
# engines killed -9, an executor frozen past its lease, PostgreSQL restarted,
# a ZeroMQ link cut, a long transaction, a clock jump, crash leftovers.
# Every scenario checks: 0 task runs lost, every re-execution fenced by a
# higher attempt, no superseded result accepted; and reports its figures.
# Ends with the table: scenario, tasks, lost, duplicates, recovery seconds.
#   WF_CHAOS=long (make chaos): bigger loads, more kills (up to ~30 min).
#   CHAOS_ONLY="1 3" runs those scenarios only.
. "$(dirname "$0")/../lib/harness.sh"
CH_MODE=${WF_CHAOS:-short}
[ "$CH_MODE" = long ] || CH_MODE=short
# A copy of the binaries: a rebuild during the run changes nothing.
CH_BIN=$(mktemp -d /tmp/wf-chaos-bin.XXXXXX)
cp "$WF_BIN/wf-engine" "$WF_BIN/wf-executor" "$WF_BIN/wfctl" "$CH_BIN/" || exit 1
chmod 755 "$CH_BIN"
WF_BIN=$CH_BIN
. "$WF_ROOT/tests/chaos/lib.sh"
for f in "$WF_ROOT"/tests/chaos/s[0-9]_*.sh; do . "$f"; done

if [ "$CH_MODE" = long ]; then
	CH_S1_N=10000 CH_S1_SLEEP=300ms CH_S1_MAX_S=400
	CH_S2_N=6000 CH_S2_KILLS=50 CH_S2_SCHEDULES=30 CH_S2_HOOK_EXITS=15
	CH_S3_ROUNDS=5
	CH_S4_N=3000 CH_S4_RESTARTS=6
	CH_S5_N=3000 CH_S5_CUTS=4
	CH_S6_SECS=60 CH_S6_TXN=40
	# 24 executor slots and 1 s of steps per run: 1,200 runs take ~50 s of the
	# 120 s that scenario 8 waits (3,000 could not finish in time).
	CH_S8_N=1200 CH_S8_ROUNDS=3
else
	CH_S1_N=1000 CH_S1_SLEEP=300ms CH_S1_MAX_S=60
	CH_S2_N=1200 CH_S2_KILLS=5 CH_S2_SCHEDULES=10 CH_S2_HOOK_EXITS=2
	CH_S3_ROUNDS=1
	CH_S4_N=600 CH_S4_RESTARTS=2
	CH_S5_N=600 CH_S5_CUTS=1
	CH_S6_SECS=20 CH_S6_TXN=10
	CH_S8_N=300 CH_S8_ROUNDS=1
fi
CH_RESULTS=$(mktemp /tmp/wf-chaos-results.XXXXXX)
echo "# chaos mode: $CH_MODE"

# ch_setup NAME → fresh database, work directory and ports for a scenario
ch_setup() {
	it_setup "chaos_$1" || return 1
	: >"$IT_DIR/faults.tsv"
	CH_PIDS=()
	CH_HTTP=$(free_port)
	CH_ZMQ=$(free_port)
	ch_log "scenario $1 in $IT_DIR"
}

t_all=$SECONDS
for s in ${CHAOS_ONLY:-1 2 3 4 5 6 7 8}; do
	t_s=$SECONDS
	"scenario_$s"
	ch_stop_all
	echo "# scenario $s took $((SECONDS - t_s)) s"
done
echo "# chaos results ($CH_MODE, $((SECONDS - t_all)) s):"
"$WF_ROOT/tests/chaos/table.sh" "$CH_RESULTS"
cp "$CH_RESULTS" "$WF_TEST_WORK/chaos-results.tsv" 2>/dev/null
rm -rf "$CH_BIN" "$CH_RESULTS"
