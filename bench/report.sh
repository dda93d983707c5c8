#!/usr/bin/env bash
# bench/report.sh RESULTS.json [CHART.svg]: prints the tables of one benchmark
# run (bench/run.sh writes RESULTS.json) and draws the chart with gnuplot.
set -u -o pipefail
J=$1
SVG=${2:-${1%.json}.svg}

jq -r '
def f0: if . == null then "-" else (. * 1 | round | tostring) end;
def f1: if . == null then "-" else ((. * 10 | round) / 10 | tostring) end;
def pad(n): tostring | if length >= n then . else . + (" " * (n - length)) end;
def lpad(n): tostring | if length >= n then . else (" " * (n - length)) + . end;
.machine as $m | .config as $c |
"wf benchmark \(.stamp)   commit \($m.git_commit[0:12])\(if $m.git_dirty then "+dirty" else "" end)",
"machine: \($m.nproc) CPUs (\($m.cpu_model)), \($m.mem_kb / 1048576 | f1) GiB, Linux \($m.kernel), PostgreSQL \($m.postgresql), node \($m.node)",
"load average at start \($m.loadavg_at_start), at end \($m.loadavg_at_end); wall \(.wall_seconds) s",
"PostgreSQL: \($c.pg_opts)",
( .results[] | select(.phase == "error") | "ERROR: \(.error)"),
"",
"THROUGHPUT  (completions committed to PostgreSQL, synchronous_commit=on; clock from the enqueue COMMIT, polled every 100 ms)",
("  " + ("system" | pad(22)) + ("round" | lpad(5)) + ("jobs" | lpad(9)) + ("done" | lpad(9)) + ("seconds" | lpad(9))
  + ("jobs/s" | lpad(9)) + ("runs/s" | lpad(9)) + ("wf/peer" | lpad(9)) + ("WAL B/job" | lpad(11)) + ("DB B/run" | lpad(10))),
( [.results[] | select(.phase == "throughput")] as $t
  | $t[] | . as $r
  | ([$t[] | select(.label == "wf-noop" and .round == $r.round)][0].per_s) as $wf
  | "  " + ($r.label | pad(22)) + ($r.round | tostring | lpad(5)) + ($r.tasks | tostring | lpad(9))
    + ($r.done | tostring | lpad(9)) + ($r.seconds | f1 | lpad(9)) + ($r.per_s | f0 | lpad(9))
    + ($r.runs_per_s | f0 | lpad(9))
    + (if ($r.system != "wf" and $r.system != "posix_spawn") and $wf != null and $r.per_s > 0
       then ($wf / $r.per_s * 100 | round / 100 | tostring) else "" end | lpad(9))
    + ($r.wal_bytes_per_task | f0 | lpad(11)) + ($r.db_bytes_per_run | f0 | lpad(10))
    + (if $r.complete then "" else "  INCOMPLETE (timeout)" end)),
( [.results[] | select(.phase == "throughput")] as $t
  | [$t[] | select(.label == "wf-noop")] as $w
  | ([$t[] | select(.system != "wf" and .system != "posix_spawn") | .system] | unique)[] as $p
  | [$t[] | select(.system == $p)] as $q
  | select(($q | length) > 0 and ($w | length) > 0)
  | (([$w[].done] | add) / ([$w[].seconds] | add)) as $wr
  | (([$q[].done] | add) / ([$q[].seconds] | add)) as $qr
  | [$q[] | . as $x | ([$w[] | select(.round == $x.round)][0].per_s) as $y | select($y != null and $x.per_s > 0) | $y / $x.per_s] as $ratios
  | "  all rounds, wf-noop vs \($p): \($wr | f0) vs \($qr | f0) jobs/s (jobs over seconds of every round), wf/peer \($wr / $qr * 100 | round / 100); by round \($ratios | min * 100 | round / 100) to \($ratios | max * 100 | round / 100)"),
"",
( [.results[] | select(.phase == "latency")] | if length == 0 then empty else
  "LATENCY  (open-loop arrivals; ms; from runs.created_at; first attempts of succeeded task runs)",
  ("  " + ("rate/s" | pad(8)) + ("stage" | pad(24)) + ("p50" | lpad(9)) + ("p99" | lpad(9)) + ("p99.9" | lpad(9)) + ("max" | lpad(9)) + ("count" | lpad(8))),
  (.[] | . as $l | ["schedule_to_start", "end_to_end", "queued_to_claimed", "claimed_to_sent", "sent_to_started", "started_to_finished", "finished_to_committed"][]
   | . as $k | $l[$k] | select(. != null)
   | "  " + ($l.rate | tostring | pad(8)) + ($k | pad(24)) + (.p50 | f1 | lpad(9)) + (.p99 | f1 | lpad(9))
     + (.p999 | f1 | lpad(9)) + (.max | f1 | lpad(9)) + ($l.count | tostring | lpad(8))),
  (.[] | "  generator \(.rate)/s: inserted \(.generator.inserted) in \(.generator.seconds) s, \(.generator.late_ticks) ticks over 10 ms, worst tick \(.generator.max_tick_ms) ms; succeeded \(.count) (\(.drain_s) s after the last arrival)\(if (.not_succeeded // {}) != {} then "; NOT succeeded: \(.not_succeeded | tostring)" else "" end)"),
  "" end),
( .results[] | select(.phase == "fire") |
  "FIRE ACCURACY  (\(.schedules) cron schedules, \(.due) due in one second; created in \(.create_s | f1) s)",
  "  fired \(.fired)/\(.due) (\(.early) early); lateness vs next_fire_at (nominal + jitter), runs.fired_at: p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, max \(.max_ms) ms",
  "  by runs.created_at (insert transaction): p50 \(.created_p50_ms) ms, p99 \(.created_p99_ms) ms, max \(.created_max_ms) ms",
  "  database bytes per schedule: \(.db_bytes_per_schedule | f0) (workflow + version + task + schedule rows and indexes); schedules table alone \(.schedules_table_bytes_per_schedule | f0)",
  ""),
( .results[] | select(.phase == "recovery") |
  "RECOVERY  (kill -9 of one executor running sleep tasks; lease \(.lease), heartbeat \(.heartbeat))",
  "  tasks on the killed executor \(.victim_tasks), back in the queue (attempt recorded lost) at most \(.requeued_max_ms // "-") ms after the kill, running elsewhere again \(.restarted): p50 \(.recovery_p50_ms) ms, max \(.recovery_max_ms) ms (behind the queued work: the surviving executor has no free slot)",
  "  runs \(.runs), succeeded \(.runs_succeeded), jobs lost \(.jobs_lost); extra attempts \(.extra_attempts) (of which on tasks not on the killed executor: \(.extra_attempts_not_on_victim)); stale results \(.stale_results)",
  ""),
( [.results[] | select(.phase == "throughput" and .cpu_s != null)] | if length == 0 then empty else
  "CPU SECONDS during the throughput phases (user+system; machine = all CPUs busy, other = PostgreSQL, the poller, other tenants)",
  (.[] | "  \(.label) r\(.round): " + (.cpu_s | to_entries | map("\(.key) \(.value)") | join(", "))), "" end),
( .results[] | select(.phase == "resources") |
  "RESOURCES  wf-engine peak RSS \(.engine_peak_rss_kb / 1024 | f1) MiB, wf-executor peak RSS \(.executor_peak_rss_kb / 1024 | f1) MiB"),
( .results[] | select(.phase == "throughput" and .worker_peak_rss_kb != null) |
  "           \(.label) worker peak RSS \(.worker_peak_rss_kb / 1024 | f1) MiB (\(.worker_processes) processes, round \(.round))"),
( [.results[] | select(.phase == "soak")] | if length == 0 then empty else
  "", "SOAK  (per minute)",
  "  minute  completed  claim p50  claim p99  backlog  dead tuples (task_runs)  task_runs table+index MiB",
  (.[] | "  " + (.minute | tostring | lpad(6)) + (.completed | tostring | lpad(11)) + (.claim_p50_ms | f1 | lpad(11))
     + (.claim_p99_ms | f1 | lpad(11)) + (.backlog | tostring | lpad(9)) + ((.dead_tuples.task_runs // 0) | tostring | lpad(25))
     + (((.table_bytes.task_runs // 0) + (.index_bytes.task_runs // 0)) / 1048576 | f1 | lpad(28))) end)
' "$J"

# where wf spends its database time (pg_stat_statements, if enabled)
jq -r '.results[] | select(.phase == "statements" and ((.label | startswith("wf-noop")) or .label == "fire" or .label == "recovery" or (.label | startswith("lat-"))) and .top != null) |
  "", "TOP STATEMENTS during \(.label) (pg_stat_statements: calls, total ms, mean ms, planning ms (with pg_stat_statements.track_planning=on, else 0), rows)",
  (.top[:8][] | "  \(.calls | tostring | .[0:9])\t\(.total_ms)\t\(.mean_ms)\t\(.plan_ms // "-")\t\(.rows)\t\(.query[0:110])")' "$J"

command -v gnuplot >/dev/null || { echo "(gnuplot missing: no chart)"; exit 0; }
D=$(mktemp -d)
jq -r '.results[] | select(.phase == "throughput") | "\"\(.label | sub("posix_spawn-par"; "spawn x") | sub("graphile-worker"; "graphile-\\nworker"))\\nround \(.round)\" \(.per_s)"' "$J" >"$D/tp.dat"
jq -r '.results[] | select(.phase == "latency") | . as $l |
  (["schedule_to_start", "end_to_end"][] | . as $k | $l[$k] |
   "\"\($l.rate)/s\\n\($k | sub("_"; " "; "g"))\" \(.p50) \(.p99) \(.p999) \(.max)")' "$J" >"$D/lat.dat"
{
	echo "set terminal svg size 1900,560 dynamic enhanced font 'sans,11' background '#ffffff'"
	echo "set output '$SVG'"
	echo "set multiplot layout 1,2 title 'wf benchmark $(jq -r .stamp "$J") ($(jq -r '.machine.nproc' "$J") CPUs, commit $(jq -r '.machine.git_commit[0:12]' "$J"))'"
	echo "set style fill solid 0.8 border -1; set boxwidth 0.7; set grid ytics"
	echo "set xtics norotate noenhanced font ',9'; set bmargin 5; set ylabel 'jobs (task runs) per second'; set title 'Throughput'"
	echo "set yrange [0:*]"
	if [ -s "$D/tp.dat" ]; then
		echo "plot '$D/tp.dat' using 0:2:xtic(1) with boxes lc rgb '#4a7ab5' notitle, '' using 0:2:(sprintf('%.0f',\$2)) with labels offset 0,0.7 notitle"
	else
		echo "set label 'no throughput data' at graph 0.3,0.5; set xrange [0:1]; set yrange [0:1]; plot -1 notitle; set xrange [*:*]"
	fi
	echo "unset label; set title 'Latency (ms, log scale)'; set ylabel 'ms'; set logscale y; set yrange [*:*]"
	echo "set style data histogram; set style histogram clustered gap 1; set boxwidth 0.9; set key top left"
	if [ -s "$D/lat.dat" ]; then
		echo "plot '$D/lat.dat' using 2:xtic(1) title 'p50', '' using 3 title 'p99', '' using 4 title 'p99.9', '' using 5 title 'max'"
	else
		echo "set label 'no latency data' at graph 0.3,0.5; unset logscale y; set xrange [0:1]; set yrange [0:1]; plot -1 notitle"
	fi
	echo "unset multiplot"
} >"$D/plot.gp"
gnuplot "$D/plot.gp" 2>"$D/gp.err" || { echo "(gnuplot failed: $(head -n 3 "$D/gp.err"))"; }
rm -rf "$D"
