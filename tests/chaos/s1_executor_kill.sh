# Scenario 1: kill -9 a random executor mid-task every ~2 s (restarting it
# under a new id) during a load of N single-task runs with a short sleep step.
scenario_1() {
	local S="1 executor kill -9"
	ch_setup s1 || return
	local n=$CH_S1_N
	ch_engine e1 "$CH_HTTP" "$CH_ZMQ" || return
	wait_for 20 ch_healthy "$CH_HTTP" || { ok 1 "$S: engine started"; return; }
	cat >"$IT_DIR/s1.yaml" <<YAML
name: s1
tasks:
  work:
    sleep: ${CH_S1_SLEEP}
    retries: 30
    backoff: {initial: 100ms, max: 500ms, jitter: none}
YAML
	ch_submit "$IT_DIR/s1.yaml" || return
	local ids=(x1 x2 x3) gen=(0 0 0) i
	for i in 0 1 2; do ch_executor "${ids[$i]}-0" 8 "$CH_ZMQ"; done
	wait_for 15 ch_online 3 || { ok 1 "$S: executors online"; return; }
	ch_load s1 "$n" s1
	local t0 kills=0 end=$((SECONDS + CH_S1_MAX_S))
	t0=$(now_s)
	sleep 1
	while ! ch_done s1 && [ $SECONDS -lt $end ]; do
		i=$((RANDOM % 3))
		local id="${ids[$i]}-${gen[$i]}" var
		var="PID_${id//-/_}"
		# only kill it while it runs something (mid-task)
		if [ "$(psql_q "SELECT count(*) FROM task_runs WHERE state = 'running' AND executor_id = '$id'")" -gt 0 ]; then
			ch_fault kill9 "$id"
			kill -9 "${!var}" 2>/dev/null
			wait "${!var}" 2>/dev/null
			kills=$((kills + 1))
			gen[$i]=$((gen[$i] + 1))
			ch_executor "${ids[$i]}-${gen[$i]}" 8 "$CH_ZMQ"
		fi
		sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 1.5 + r / 32767 }')"
	done
	local load_s
	ch_wait_done s1 60
	load_s=$(fsub "$(now_s)" "$t0")
	echo "# $S: $n tasks, $kills kills, load finished in ${load_s}s ($(awk -v n="$n" -v s="$load_s" 'BEGIN { printf "%.0f", n / s }') tasks/s)"
	check "$S: $kills executors killed mid-task" test "$kills" -ge 2
	# 0 left running after twice the lease
	sleep 0.5
	ch_verify "$S" s1
	read -r rmax rmed rn < <(ch_recovery s1)
	echo "# $S: recovery (kill → first successful re-execution): max ${rmax}s, median ${rmed}s over $rn kills"
	check "$S: engine alive" kill -0 "$PID_e1"
	local errs
	errs=$(ch_log_errors "$IT_DIR"/engine-*.log)
	[ -n "$errs" ] && echo "$errs" | sed 's/^/#   engine error: /'
	ch_result "$S" "$V_TASKS" "$V_LOST" "$V_DUPS" "$V_STALE" "$rmax" "$kills kills, ${load_s}s"
	ch_stop_all
}
