# Scenario 4: PostgreSQL restarted (pg_ctl stop -m fast, start) several
# times under load, on a PostgreSQL of its own (the suite's server is shared
# with other tests). Engines reconnect with backoff, executors' results wait
# in ZeroMQ/the engine's buffer, nothing is lost; the API answers 503 while
# the database is away and the engine never exits.
scenario_4() {
	local S="4 PostgreSQL restart"
	ch_setup s4 || return
	local saved_host=$PGHOST saved_port=$PGPORT saved_user=$PGUSER saved_db=$PGDATABASE
	local pgdir="$IT_DIR/pg" url
	if ! pg_start "$pgdir"; then
		ok 1 "$S: own PostgreSQL started"
		export PGHOST=$saved_host PGPORT=$saved_port PGUSER=$saved_user PGDATABASE=$saved_db
		return
	fi
	S4_PG=$pgdir
	url=$(pg_createdb wf_chaos_s4)
	export WF_DATABASE_URL=$url
	"$WF_BIN/wfctl" migrate >"$IT_DIR/migrate4.log" 2>&1 || { ok 1 "$S: migrate"; s4_cleanup; return; }
	ch_engine e1 "$CH_HTTP" "$CH_ZMQ"
	wait_for 20 ch_healthy "$CH_HTTP" || { ok 1 "$S: engine started"; s4_cleanup; return; }
	cat >"$IT_DIR/s4.yaml" <<YAML
name: s4
tasks:
  work:
    sleep: 200ms
    retries: 30
    backoff: {initial: 100ms, max: 500ms, jitter: none}
YAML
	ch_submit "$IT_DIR/s4.yaml" || { s4_cleanup; return; }
	local i
	for i in 1 2 3; do ch_executor "x$i" 8 "$CH_ZMQ"; done
	wait_for 15 ch_online 3 || { ok 1 "$S: executors online"; s4_cleanup; return; }
	ch_load s4 "$CH_S4_N" s4
	local r h503=0 a503=0 probes=0 alive=1 worst=0 codes=""
	for r in $(seq 1 "$CH_S4_RESTARTS"); do
		sleep 1.5
		[ "$(ch_remaining s4)" -lt 150 ] && ch_load s4 $((CH_S4_N / 3)) s4
		local inflight
		inflight=$(psql_q "SELECT count(*) FROM task_runs WHERE state = 'running'")
		ch_fault pg-stop postgres
		pg_stop "$pgdir"
		local t_down end_down hc ac
		t_down=$(now_s)
		end_down=$((SECONDS + 3))
		while [ $SECONDS -lt $end_down ]; do
			hc=$(curl -s -o /dev/null -m 3 -w '%{http_code}' "http://127.0.0.1:$CH_HTTP/healthz")
			ac=$(curl -s -o /dev/null -m 3 -w '%{http_code}' "http://127.0.0.1:$CH_HTTP/api/v1/runs?limit=5")
			probes=$((probes + 1))
			[ "$hc" = 503 ] && h503=$((h503 + 1))
			[ "$ac" = 503 ] && a503=$((a503 + 1))
			codes="$codes $hc/$ac"
			kill -0 "$PID_e1" 2>/dev/null || alive=0
			sleep 0.3
		done
		pg_start "$pgdir" >/dev/null
		export WF_DATABASE_URL=$url # pg_start points it at the postgres database
		local t_up heal
		t_up=$(now_s)
		if wait_for 30 ch_healthy "$CH_HTTP"; then heal=$(fsub "$(now_s)" "$t_up"); else heal=99; fi
		kill -0 "$PID_e1" 2>/dev/null || alive=0
		echo "# $S $r: $inflight task runs running at the stop; down $(fsub "$t_up" "$t_down")s; API healthy again ${heal}s after PostgreSQL was back"
		worst=$(awk -v a="$worst" -v b="$heal" 'BEGIN { print (b > a) ? b : a }')
	done
	echo "# $S: probes during outages (healthz/runs):$codes"
	check "$S: engine process alive throughout" test "$alive" = 1
	check "$S: /healthz answered 503 while the database was away ($h503 of $probes probes)" test "$h503" = "$probes"
	check "$S: /api/v1/runs answered 503 while the database was away ($a503 of $probes probes)" test "$a503" = "$probes"
	ch_wait_done s4 90
	ch_verify "$S" s4
	check "$S: the engine logged the outage and the recovery" grep -q "database work resumed" "$IT_DIR"/engine-e1.log
	read -r rmax rmed rn < <(ch_recovery s4)
	echo "# $S: recovery: API healthy max ${worst}s after PostgreSQL start; first successful re-execution max ${rmax}s after a stop ($rn stops needed one)"
	ch_result "$S" "$V_TASKS" "$V_LOST" "$V_DUPS" "$V_STALE" "$worst" "$CH_S4_RESTARTS restarts; first re-execution ${rmax} s"
	ch_stop_all
	s4_cleanup
}

s4_cleanup() {
	ch_stop_all
	pg_stop "$S4_PG"
	export PGHOST=$saved_host PGPORT=$saved_port PGUSER=$saved_user PGDATABASE=$saved_db
}
