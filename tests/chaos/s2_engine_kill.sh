# Scenario 2: kill -9 an engine at random moments under heavy load, (a) with
# a second engine on the same database (executors connected to both), (b) a
# single engine restarted; (c) when the engine was built with the fault
# hooks of tests/chaos/fault-hooks.patch, exits at the exact points
# (WF_FAULT=after-claim|after-send|in-sched-batch). Meanwhile cron schedules
# fire every second (catchup: all): 0 duplicated, 0 missed nominal times.

s2_restart() { # s2_restart NAME HTTP ZMQ → restarts an engine, waits healthy; S2_HEAL = seconds
	local t
	t=$(now_s)
	ch_engine "$1" "$2" "$3"
	if wait_for 20 ch_healthy "$2"; then S2_HEAL=$(fsub "$(now_s)" "$t"); else S2_HEAL=99; fi
}

s2_kill() { # s2_kill NAME
	local var="PID_$1"
	ch_fault kill9 "$1"
	kill -9 "${!var}" 2>/dev/null
	wait "${!var}" 2>/dev/null
}

# s2_phase LABEL TAG KILLS ENGINES... → load TAG, kill -9 a random engine of
# the list KILLS times at random moments (topping the load up so every kill
# hits a busy engine), restart it, then verify.
s2_phase() {
	local label=$1 tag=$2 kills=$3
	shift 3
	local engines=("$@") k=0 e heal worst=0 i
	: >"$IT_DIR/faults.tsv"
	ch_load s2 "$CH_S2_N" "$tag"
	local end=$((SECONDS + 60 + 4 * kills))
	while [ $k -lt "$kills" ] && [ $SECONDS -lt $end ]; do
		sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.5 + 1.5 * r / 32767 }')"
		[ "$(ch_remaining "$tag")" -lt 300 ] && ch_load s2 $((CH_S2_N / 3)) "$tag"
		i=$((RANDOM % ${#engines[@]}))
		e=${engines[$i]}
		s2_kill "$e"
		k=$((k + 1))
		sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.2 + r / 32767 }')"
		case $e in e1) s2_restart e1 "$CH_HTTP" "$CH_ZMQ" ;; e2) s2_restart e2 "$S2_HTTP2" "$S2_ZMQ2" ;; esac
		worst=$(awk -v a="$worst" -v b="$S2_HEAL" 'BEGIN { print (b > a) ? b : a }')
	done
	ch_wait_done "$tag" 90
	check "$label: $k engines killed -9 under load" test "$k" = "$kills"
	ch_verify "$label" "$tag"
	read -r rmax rmed rn < <(ch_recovery "$tag")
	echo "# $label: restart to healthy: max ${worst}s; kill → first successful re-execution: max ${rmax}s, median ${rmed}s ($rn kills needed one)"
	[ "$rmax" = - ] && rmax="$worst"
	ch_result "$label" "$V_TASKS" "$V_LOST" "$V_DUPS" "$V_STALE" "$rmax" "$k kills; restart ${worst}s; $V_REJECTED rejected (no slot)"
}

scenario_2() {
	local S="2 engine kill -9"
	ch_setup s2 || return
	S2_HTTP2=$(free_port)
	S2_ZMQ2=$(free_port)
	ch_engine e1 "$CH_HTTP" "$CH_ZMQ"
	ch_engine e2 "$S2_HTTP2" "$S2_ZMQ2"
	wait_for 20 ch_healthy "$CH_HTTP" && wait_for 20 ch_healthy "$S2_HTTP2" || { ok 1 "$S: engines started"; return; }
	cat >"$IT_DIR/s2.yaml" <<YAML
name: s2
tasks:
  work:
    sleep: 50ms
    retries: 30
    backoff: {initial: 100ms, max: 500ms, jitter: none}
YAML
	ch_submit "$IT_DIR/s2.yaml" || return
	local i
	for i in $(seq 1 "$CH_S2_SCHEDULES"); do
		cat >"$IT_DIR/cron$i.yaml" <<YAML
name: cron$i
schedule:
  cron: "* * * * * *"
  catchup: all
  catchup_max: 100
  overlap: allow
tasks:
  work:
    noop: {}
    retries: 30
    backoff: {initial: 100ms, max: 500ms, jitter: none}
YAML
		ch_submit "$IT_DIR/cron$i.yaml" || return
	done
	for i in 1 2 3; do ch_executor "x$i" 16 "$CH_ZMQ" "$S2_ZMQ2"; done
	wait_for 15 ch_online 3 || { ok 1 "$S: executors online"; return; }

	s2_phase "2a engine kill -9 (2 engines)" s2a "$CH_S2_KILLS" e1 e2
	s2_kill e2 # from here on a single engine
	: >"$IT_DIR/faults.tsv"
	s2_phase "2b engine kill -9 (1 engine)" s2b "$CH_S2_KILLS" e1

	if grep -q -a 'WF_FAULT' "$WF_BIN/wf-engine"; then
		local point deaths
		for point in after-claim after-send in-sched-batch; do
			: >"$IT_DIR/faults.tsv"
			s2_kill e1
			local tag="s2c-$point" t_end
			ch_load s2 "$CH_S2_N" "$tag"
			deaths=0
			t_end=$((SECONDS + 40))
			local p=0.05
			[ "$point" = in-sched-batch ] && p=0.3
			WF_FAULT=$point WF_FAULT_P=$p ch_engine e1 "$CH_HTTP" "$CH_ZMQ"
			# until the load is done and the hook fired at least twice (bounded)
			while [ $SECONDS -lt $t_end ]; do
				if ! kill -0 "$PID_e1" 2>/dev/null; then
					wait "$PID_e1" 2>/dev/null
					ch_fault "$point" e1
					deaths=$((deaths + 1))
					WF_FAULT=$point WF_FAULT_P=$p ch_engine e1 "$CH_HTTP" "$CH_ZMQ"
				fi
				if ch_done "$tag"; then
					[ $deaths -ge "$CH_S2_HOOK_EXITS" ] && break
					# the scheduler hook fires with the cron schedules alone
					[ "$point" = in-sched-batch ] || ch_load s2 $((CH_S2_N / 3)) "$tag"
				fi
				sleep 0.2
			done
			s2_kill e1
			ch_engine e1 "$CH_HTTP" "$CH_ZMQ"
			wait_for 20 ch_healthy "$CH_HTTP"
			ch_wait_done "$tag" 60
			check "2c WF_FAULT=$point: the engine exited at the hook ($deaths times)" test "$deaths" -gt 0
			ch_verify "2c WF_FAULT=$point" "$tag"
			read -r rmax rmed rn < <(ch_recovery "$tag")
			ch_result "2c WF_FAULT=$point" "$V_TASKS" "$V_LOST" "$V_DUPS" "$V_STALE" "$rmax" "$deaths exits at the hook (p=$p)"
		done
	else
		echo "# 2c: the engine has no fault hooks (tests/chaos/fault-hooks.patch not applied): random kills only"
		ch_result "2c fault hooks" - - - - - "not run: fault-hooks.patch not applied"
	fi

	# Schedules: stop them (not by pausing: a paused workflow's queued task
	# runs are not dispatched), let their runs finish, then count.
	psql_q "UPDATE schedules SET enabled = false" >/dev/null
	ch_wait_done scheduler 60
	local fired dups missed
	read -r fired dups missed < <(psql_q "SELECT sum(n), sum(n - d), sum(span - d) FROM (
		SELECT workflow_id, count(*) AS n, count(DISTINCT scheduled_for) AS d,
		round(extract(epoch FROM max(scheduled_for) - min(scheduled_for)))::int + 1 AS span
		FROM runs WHERE trigger = 'schedule' GROUP BY workflow_id) x" | tr '|' ' ')
	echo "# 2 schedules: $CH_S2_SCHEDULES cron schedules every second: $fired runs fired, $dups duplicates, $missed missed nominal times"
	check "2 schedules: fired during the kills ($fired runs)" test "${fired:-0}" -gt $((CH_S2_SCHEDULES * 10))
	check "2 schedules: 0 duplicated firings per (workflow, scheduled_for)" test "$dups" = 0
	check "2 schedules: 0 missed nominal times between the first and last (catchup: all)" test "$missed" = 0
	if [ "${missed:-0}" != 0 ]; then
		psql_q "SELECT w.name, s FROM workflows w, LATERAL (SELECT generate_series(min(scheduled_for), max(scheduled_for), interval '1 second') s FROM runs WHERE workflow_id = w.id AND trigger = 'schedule') g
			WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.workflow_id = w.id AND r.scheduled_for = g.s) ORDER BY 2 LIMIT 10" | sed 's/^/#   missed: /'
	fi
	ch_verify "2 scheduled runs" scheduler
	ch_result "2 schedules (every second)" "$fired" "$missed" "$dups" "$V_STALE" - "lost = missed nominal times; duplicates = double firings"
	local errs
	errs=$(ch_log_errors "$IT_DIR"/engine-*.log)
	[ -n "$errs" ] && echo "$errs" | sed 's/^/#   engine error: /'
	ch_stop_all
}
