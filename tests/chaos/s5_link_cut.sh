# Scenario 5: the ZeroMQ link between the engine and one executor cut in
# both directions (tests/chaos/proxy.py blackholes it: no FIN, no RST, the
# bytes just stop), longer than twice the lease, then healed (connections
# reset, in-flight frames lost). Work must move to the other executors, the
# lease protects the cut executor's tasks, nothing is lost.
scenario_5() {
	local S="5 ZeroMQ link cut"
	ch_setup s5 || return
	ch_engine e1 "$CH_HTTP" "$CH_ZMQ"
	wait_for 20 ch_healthy "$CH_HTTP" || { ok 1 "$S: engine started"; return; }
	cat >"$IT_DIR/s5.yaml" <<YAML
name: s5
tasks:
  work:
    sleep: 300ms
    retries: 30
    backoff: {initial: 100ms, max: 500ms, jitter: none}
YAML
	ch_submit "$IT_DIR/s5.yaml" || return
	# xp: executor → proxy:p1 → engine PULL; engine → proxy:p2 → executor PULL
	local p1 p2 real
	p1=$(free_port) p2=$(free_port) real=$(free_port)
	ch_bg proxy "$IT_DIR/proxy.log" python3 -u "$CH_DIR/proxy.py" "$p1" "$CH_ZMQ" "$p2" "$real"
	wait_for 5 grep -q ready "$IT_DIR/proxy.log" || { ok 1 "$S: proxy started"; return; }
	ch_exec_flags
	ch_bg xp "$IT_DIR/executor-xp.log" "$WF_BIN/wf-executor" "${CH_EXEC_FLAGS[@]}" --id xp --listen "tcp://127.0.0.1:$real" \
		--advertise "tcp://127.0.0.1:$p2" --engine "tcp://127.0.0.1:$p1" --slots 8 --heartbeat-ms 500
	ch_executor x1 8 "$CH_ZMQ"
	ch_executor x2 8 "$CH_ZMQ"
	wait_for 15 ch_online 3 || { ok 1 "$S: executors online"; return; }
	ch_load s5 "$CH_S5_N" s5
	local c cut_s=$((2 * 3 + 2)) rerouted=1 worst_back=0
	for c in $(seq 1 "$CH_S5_CUTS"); do
		sleep 2
		[ "$(ch_remaining s5)" -lt 300 ] && ch_load s5 $((CH_S5_N / 2)) s5
		local on_xp
		on_xp=$(psql_q "SELECT count(*) FROM task_runs WHERE state = 'running' AND executor_id = 'xp'")
		ch_fault cut xp
		kill -USR1 "$PID_proxy"
		local t_cut
		t_cut=$(now_s)
		sleep "$cut_s"
		# from 3 missed heartbeats (+1 s) on, nothing more is sent to xp
		local late
		late=$(psql_q "SELECT count(*) FROM attempts_all WHERE executor_id = 'xp' AND NOT stale
			AND claimed_at > to_timestamp($t_cut + 4.5) AND claimed_at < now()")
		echo "# $S $c: $on_xp task runs running on xp at the cut; $late claimed for xp from cut+4.5 s to the heal (xp state: $(psql_q "SELECT state FROM executors WHERE id = 'xp'"))"
		[ "$late" = 0 ] || rerouted=0
		kill -USR2 "$PID_proxy"
		local t_heal back
		t_heal=$(now_s)
		if ch_wait_q 20 online "SELECT state FROM executors WHERE id = 'xp'"; then back=$(fsub "$(now_s)" "$t_heal"); else back=99; fi
		echo "# $S $c: xp online again ${back}s after the heal"
		worst_back=$(awk -v a="$worst_back" -v b="$back" 'BEGIN { print (b > a) ? b : a }')
	done
	ch_wait_done s5 90
	check "$S: work re-routed: nothing claimed for the cut executor once it was lost" test "$rerouted" = 1
	check "$S: the cut executor came back after the heal (${worst_back}s)" test "$worst_back" != 99
	ch_verify "$S" s5
	read -r rmax rmed rn < <(ch_recovery s5)
	echo "# $S: recovery (cut → first successful re-execution elsewhere): max ${rmax}s"
	ch_result "$S" "$V_TASKS" "$V_LOST" "$V_DUPS" "$V_STALE" "$rmax" "$CH_S5_CUTS cut(s) of ${cut_s}s; back ${worst_back}s after heal"
	ch_stop_all
}
