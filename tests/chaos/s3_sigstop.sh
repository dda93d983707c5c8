# Scenario 3: an executor frozen (SIGSTOP) past its lease, then SIGCONT. Its
# late results must be refused (stale rows that change nothing), and the
# step it still runs for a superseded attempt must be gone within about one
# heartbeat (the engine sends cancel for attempts it no longer has running).
scenario_3() {
	local S="3 executor SIGSTOP past lease"
	ch_setup s3 || return
	ch_engine e1 "$CH_HTTP" "$CH_ZMQ"
	wait_for 20 ch_healthy "$CH_HTTP" || { ok 1 "$S: engine started"; return; }
	local round tasks=0 lost=0 dups=0 stale=0 worst_kill=0 worst_rec=0 marker
	for round in $(seq 1 "$CH_S3_ROUNDS"); do
		marker="chaos-orphan-$$-$round-$RANDOM"
		# long: sleeps 30 s on attempt 1 only (the orphan); late: ends while frozen
		cat >"$IT_DIR/s3long$round.yaml" <<YAML
name: s3long$round
tasks:
  work:
    shell: [sh, -c, 'if [ "\$WF_ATTEMPT" = 1 ]; then sleep 30; fi; exit 0', "$marker"]
    retries: 5
    backoff: {initial: 100ms, jitter: none}
YAML
		cat >"$IT_DIR/s3late$round.yaml" <<YAML
name: s3late$round
tasks:
  work:
    shell: [sh, -c, 'sleep 1.5; exit 0']
    retries: 5
    backoff: {initial: 100ms, jitter: none}
YAML
		ch_submit "$IT_DIR/s3long$round.yaml" && ch_submit "$IT_DIR/s3late$round.yaml" || return
		ch_executor "a$round" 8 "$CH_ZMQ"
		local frozen=$LAST_PID
		ch_wait_q 10 online "SELECT state FROM executors WHERE id = 'a$round'"
		ch_load "s3long$round" 2 "s3-$round"
		ch_load "s3late$round" 4 "s3-$round"
		ch_wait_q 10 6 "SELECT count(*) FROM task_runs t JOIN runs r ON r.id = t.run_id WHERE r.created_by = 's3-$round' AND t.state = 'running' AND t.executor_id = 'a$round'" ||
			echo "# round $round: not all 6 task runs running on a$round"
		local pat="[c]${marker#c}" # a pattern that does not match itself
		wait_for 5 pgrep -f "$pat"
		check "$S: orphan-to-be steps running ($(pgrep -f -c "$pat") processes)" wait_for 1 pgrep -f "$pat"
		ch_executor "b$round" 8 "$CH_ZMQ"
		kill -STOP "$frozen"
		ch_fault sigstop "a$round"
		local t_stop
		t_stop=$(now_s)
		# the lease (3 s) expires; the reaper requeues; b runs attempt 2
		ch_wait_q 20 6 "SELECT count(*) FROM task_runs t JOIN runs r ON r.id = t.run_id WHERE r.created_by = 's3-$round' AND t.state = 'succeeded' AND t.attempt = 2"
		local rec
		rec=$(fsub "$(now_s)" "$t_stop")
		sleep 1 # the late steps (1.5 s) have finished under the frozen executor
		kill -CONT "$frozen"
		local t_cont t_gone
		t_cont=$(now_s)
		if wait_for 10 bash -c "! pgrep -f '$pat' >/dev/null"; then
			t_gone=$(fsub "$(now_s)" "$t_cont")
		else
			t_gone=99
		fi
		echo "# $S round $round: frozen ${rec}s until all 6 re-executed elsewhere; orphan steps gone ${t_gone}s after SIGCONT (heartbeat 0.5 s)"
		check "$S: orphaned steps killed within 1 heartbeat + 1 s of SIGCONT (${t_gone}s)" awk -v t="$t_gone" 'BEGIN { exit !(t <= 1.5) }'
		check "$S: orphaned steps killed at all (within 10 s)" test "$t_gone" != 99
		# the late results arrive (succeeded for the short tasks, cancelled for
		# the orphans) and are stored stale
		ch_wait_q 10 6 "SELECT count(DISTINCT t.id) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id JOIN runs r ON r.id = t.run_id WHERE r.created_by = 's3-$round' AND a.stale AND a.attempt = 1"
		local late_ok late_cancel
		late_ok=$(psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id JOIN runs r ON r.id = t.run_id WHERE r.created_by = 's3-$round' AND a.stale AND a.attempt = 1 AND a.state = 'succeeded'")
		late_cancel=$(psql_q "SELECT count(*) FROM attempts_all a JOIN task_runs t ON t.id = a.task_run_id JOIN runs r ON r.id = t.run_id WHERE r.created_by = 's3-$round' AND a.stale AND a.attempt = 1 AND a.state <> 'succeeded'")
		echo "# $S round $round: late results stored stale: $late_ok succeeded, $late_cancel cancelled/other"
		check "$S: the 4 late successes were refused (stale rows: $late_ok)" test "$late_ok" = 4
		check "$S: the orphans' cancelled reports were refused too (stale rows: $late_cancel)" test "$late_cancel" = 2
		check "$S: the frozen executor is back online" ch_wait_q 10 online "SELECT state FROM executors WHERE id = 'a$round'"
		grep -h "orphan attempt on executor\|cancel sent" "$IT_DIR"/engine-*.log | tail -n 2 | sed 's/^/#   /'
		ch_verify "$S" "s3-$round"
		tasks=$((tasks + V_TASKS)) lost=$((lost + V_LOST)) dups=$((dups + V_DUPS)) stale=$((stale + V_STALE))
		worst_kill=$(awk -v a="$worst_kill" -v b="$t_gone" 'BEGIN { print (b > a) ? b : a }')
		worst_rec=$(awk -v a="$worst_rec" -v b="$rec" 'BEGIN { print (b > a) ? b : a }')
		kill -9 "$frozen" 2>/dev/null
		wait "$frozen" 2>/dev/null
	done
	ch_result "$S" "$tasks" "$lost" "$dups" "$stale" "$worst_rec" "orphans killed ${worst_kill}s after SIGCONT"
	ch_stop_all
}
