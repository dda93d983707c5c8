#!/usr/bin/env bash
# table.sh RESULTS.tsv → the chaos results table (scenario, tasks, lost,
# duplicates (fenced), stale rows, recovery seconds, notes).
f=${1:?results file}
awk -F'\t' '
BEGIN {
	printf "# %-34s %7s %5s %11s %6s %9s  %s\n", "scenario", "tasks", "lost", "duplicates", "stale", "recovery", "notes"
	printf "# %-34s %7s %5s %11s %6s %9s  %s\n", "", "", "", "(fenced)", "rows", "seconds", ""
	printf "# %s\n", "----------------------------------------------------------------------------------------------"
}
{ printf "# %-34s %7s %5s %11s %6s %9s  %s\n", $1, $2, $3, $4, $5, $6, $7 }' "$f"
