# Scenario 7: a clock jump forward of hours, simulated at the process level:
# the engine stops, every schedule's next time is set 3 h in the past, the
# engine starts. No burst beyond the catch-up policy (latest: 1 run per
# schedule; all: at most catchup_max), and the schedules keep firing. (The
# scheduler's injectable clock covers jumps both ways in
# tests/unit/engine/test_sched.c: far_future_and_clock_jumps_are_bounded.)
scenario_7() {
	local S="7 clock jump (+3 h)"
	ch_setup s7 || return
	ch_engine e1 "$CH_HTTP" "$CH_ZMQ"
	wait_for 20 ch_healthy "$CH_HTTP" || { ok 1 "$S: engine started"; return; }
	local i nl=4 na=4 cmax=3
	for i in $(seq 1 $nl); do
		printf 'name: latest%d\nschedule:\n  cron: "* * * * * *"\n  catchup: latest\ntasks:\n  work: {noop: {}}\n' "$i" >"$IT_DIR/l$i.yaml"
		ch_submit "$IT_DIR/l$i.yaml" || return
	done
	for i in $(seq 1 $na); do
		printf 'name: all%d\nschedule:\n  cron: "* * * * * *"\n  catchup: all\n  catchup_max: %d\ntasks:\n  work: {noop: {}}\n' "$i" "$cmax" >"$IT_DIR/a$i.yaml"
		ch_submit "$IT_DIR/a$i.yaml" || return
	done
	ch_executor x1 16 "$CH_ZMQ"
	ch_wait_q 20 $((nl + na)) "SELECT count(DISTINCT workflow_id) FROM runs WHERE trigger = 'schedule'" ||
		{ ok 1 "$S: schedules fire"; return; }
	sleep 1
	kill -TERM "$PID_e1"
	wait "$PID_e1" 2>/dev/null
	local last
	last=$(psql_q "SELECT extract(epoch FROM max(scheduled_for)) FROM runs")
	psql_q "UPDATE schedules SET next_nominal_at = date_trunc('second', now()) - interval '3 hours',
		next_fire_at = date_trunc('second', now()) - interval '3 hours'" >/dev/null
	ch_fault clock-jump schedules
	sleep $((cmax + 1)) # down long enough that catchup_max recent times were missed
	local t_start
	t_start=$(now_s)
	ch_engine e1 "$CH_HTTP" "$CH_ZMQ"
	wait_for 20 ch_healthy "$CH_HTTP"
	sleep 4
	# runs created per (workflow, scheduler tick): a tick stamps fired_at
	local lmax amax amin old after
	lmax=$(psql_q "SELECT coalesce(max(n), 0) FROM (SELECT count(*) n FROM runs r JOIN workflows w ON w.id = r.workflow_id WHERE w.name LIKE 'latest%' AND r.fired_at > to_timestamp($t_start) GROUP BY r.workflow_id, r.fired_at) x")
	read -r amax amin < <(psql_q "SELECT coalesce(max(n), 0), coalesce(min(n), 0) FROM (SELECT r.workflow_id, max(n) n FROM (SELECT workflow_id, fired_at, count(*) n FROM runs WHERE fired_at > to_timestamp($t_start) GROUP BY 1, 2) r JOIN workflows w ON w.id = r.workflow_id WHERE w.name LIKE 'all%' GROUP BY 1) x" | tr '|' ' ')
	old=$(psql_q "SELECT count(*) FROM runs WHERE fired_at > to_timestamp($t_start) AND scheduled_for <= to_timestamp($last)")
	local total_catchup
	total_catchup=$(psql_q "SELECT count(*) FROM runs WHERE fired_at > to_timestamp($t_start) AND scheduled_for < to_timestamp($t_start)")
	after=$(psql_q "SELECT count(*) FROM (SELECT workflow_id FROM runs WHERE scheduled_for > to_timestamp($t_start) + interval '1 second' GROUP BY 1 HAVING count(*) >= 2) x")
	echo "# $S: after the jump: largest catch-up per tick: latest $lmax (policy 1), all $amax (policy catchup_max $cmax, smallest $amin); $total_catchup catch-up runs in all; $old runs for times that had already fired; $after of $((nl + na)) schedules fired ≥ 2 times afterwards"
	check "$S: catchup latest: at most 1 run per schedule per tick ($lmax)" test "$lmax" -le 1
	check "$S: catchup all: at most catchup_max=$cmax runs per schedule per tick ($amax)" test "$amax" -le "$cmax"
	check "$S: catchup all: the $cmax most recent missed times caught up ($amin..$amax)" test "$amin" = "$cmax"
	check "$S: no firing twice of a time already fired ($old)" test "$old" = 0
	check "$S: duplicates per (workflow, scheduled_for): 0" test "$(psql_q "SELECT count(*) - count(DISTINCT (workflow_id, scheduled_for)) FROM runs")" = 0
	check "$S: every schedule kept firing after the jump ($after)" test "$after" = $((nl + na))
	grep -h "catch-up bounded" "$IT_DIR"/engine-e1.log | head -n 2 | sed 's/^/#   /'
	local rec
	rec=$(psql_q "SELECT round((extract(epoch FROM min(fired_at)) - $t_start)::numeric, 2) FROM runs WHERE fired_at > to_timestamp($t_start) AND scheduled_for > to_timestamp($t_start)")
	psql_q "UPDATE schedules SET enabled = false" >/dev/null
	ch_wait_done scheduler 30
	ch_verify "$S" scheduler
	ch_result "$S" "$V_TASKS" "$V_LOST" "$V_DUPS" "$V_STALE" "$rec" "catch-up per tick: latest $lmax, all $amax (max $cmax)"
	ch_stop_all
}
