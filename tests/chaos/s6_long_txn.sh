# Scenario 6: a transaction held open (BEGIN; SELECT txid_current();
# pg_sleep) during a steady load: dead tuples pile up in task_runs (VACUUM
# cannot remove them), throughput must degrade gracefully, not stop, and
# recover when the transaction ends.
scenario_6() {
	local S="6 long transaction"
	ch_setup s6 || return
	ch_engine e1 "$CH_HTTP" "$CH_ZMQ"
	wait_for 20 ch_healthy "$CH_HTTP" || { ok 1 "$S: engine started"; return; }
	cat >"$IT_DIR/s6.yaml" <<YAML
name: s6
tasks:
  work:
    sleep: 20ms
    retries: 30
    backoff: {initial: 100ms, max: 500ms, jitter: none}
YAML
	ch_submit "$IT_DIR/s6.yaml" || return
	local i
	for i in 1 2; do ch_executor "x$i" 16 "$CH_ZMQ"; done
	wait_for 15 ch_online 2 || { ok 1 "$S: executors online"; return; }
	# steady arrivals: 25 runs every ~0.4 s (about 60/s) for CH_S6_SECS; the
	# transaction from 1/4 of the time for CH_S6_TXN seconds
	local t0 txn_at txn_end end_load samples="$IT_DIR/s6.samples"
	t0=$(now_s)
	txn_at=$(awk -v t="$t0" -v s="$CH_S6_SECS" -v x="$CH_S6_TXN" 'BEGIN { printf "%.3f", t + (s - x) / 2 }')
	txn_end=$(awk -v t="$txn_at" -v x="$CH_S6_TXN" 'BEGIN { printf "%.3f", t + x }')
	end_load=$((SECONDS + CH_S6_SECS))
	local started=0 dead_during=0 n_during=0
	: >"$samples"
	while [ $SECONDS -lt $end_load ]; do
		ch_load s6 25 s6
		local now
		now=$(now_s)
		if [ $started = 0 ] && awk -v a="$now" -v b="$txn_at" 'BEGIN { exit !(a >= b) }'; then
			ch_fault long-txn-begin db
			ch_bg txn "$IT_DIR/txn.log" psql -X -q -d "$WF_DATABASE_URL" -c "BEGIN" -c "SELECT txid_current()" -c "SELECT pg_sleep($CH_S6_TXN)" -c "COMMIT"
			started=1
		fi
		printf '%s\t%s\t%s\n' "$now" "$(psql_q "SELECT count(*) FROM task_runs WHERE state NOT IN ('succeeded','failed','dead','cancelled')")" \
			"$(psql_q "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'task_runs'")" >>"$samples"
		if [ $started = 1 ] && kill -0 "$PID_txn" 2>/dev/null; then
			dead_during=$(psql_q "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'task_runs'")
		fi
		sleep 0.2
	done
	wait "$PID_txn" 2>/dev/null
	local t_end_real
	t_end_real=$(now_s)
	ch_wait_done s6 120
	local t_done
	t_done=$(now_s)
	sleep 1.5 # statistics are flushed about every second
	local dead_after vac_removed dead_vac
	dead_after=$(psql_q "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'task_runs'")
	psql_q "VACUUM task_runs" >/dev/null
	sleep 1.2
	dead_vac=$(psql_q "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'task_runs'")
	# completions per second: before / during / after the transaction
	local rates
	rates=$(psql_q "SELECT
		round(count(*) FILTER (WHERE f < $txn_at) / greatest($txn_at - $t0, 0.1), 1),
		round(count(*) FILTER (WHERE f >= $txn_at AND f < $txn_end) / $CH_S6_TXN::numeric, 1),
		round(count(*) FILTER (WHERE f >= $txn_end) / greatest(extract(epoch FROM max(to_timestamp(f))) - $txn_end, 0.1)::numeric, 1),
		min(f) FILTER (WHERE f >= $txn_at)
		FROM (SELECT extract(epoch FROM a.finished_at)::numeric AS f FROM attempts_all a WHERE NOT a.stale AND a.state = 'succeeded') x")
	local r_before r_during r_after first_during
	IFS='|' read -r r_before r_during r_after first_during <<<"$rates"
	# recovery: from the end of the transaction until the backlog is back to
	# the largest backlog seen before it began
	local base rec
	base=$(awk -F'\t' -v a="$txn_at" '$1 < a && $2 > m { m = $2 } END { print m + 0 }' "$samples")
	rec=$(awk -F'\t' -v e="$txn_end" -v b="$base" '$1 >= e && $2 <= b * 1.2 + 25 { printf "%.2f", $1 - e; f = 1; exit } END { if (!f) print "-" }' "$samples")
	local peak
	peak=$(awk -F'\t' '$2 > m { m = $2 } END { print m + 0 }' "$samples")
	echo "# $S: arrivals $(psql_q "SELECT round(count(*) / $CH_S6_SECS.0, 1) FROM task_runs")/s for ${CH_S6_SECS}s, transaction open ${CH_S6_TXN}s; completions/s before $r_before, during $r_during, after $r_after"
	echo "# $S: backlog before ≤ $base, peak $peak; back to the earlier level ${rec}s after the transaction ended; everything done $(fsub "$t_done" "$t_end_real")s after it"
	echo "# $S: task_runs n_dead_tup during the transaction $dead_during, after it $dead_after, after a VACUUM $dead_vac"
	check "$S: work went on during the transaction ($r_during completions/s)" awk -v r="$r_during" 'BEGIN { exit !(r > 0) }'
	check "$S: dead tuples piled up while the transaction was open ($dead_during)" test "${dead_during:-0}" -gt 0
	check "$S: VACUUM reclaims them once it ended ($dead_vac left)" test "${dead_vac:-0}" -lt "${dead_during:-0}"
	ch_verify "$S" s6
	ch_result "$S" "$V_TASKS" "$V_LOST" "$V_DUPS" "$V_STALE" "$rec" "tasks/s $r_before/$r_during/$r_after; dead tuples $dead_during→$dead_after→$dead_vac (vacuum)"
	ch_stop_all
}
