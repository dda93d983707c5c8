#!/usr/bin/env bash
# The schema applies cleanly, twice, from two processes at once, and a
# binary refuses a database newer than it knows.
. "$(dirname "$0")/../lib/harness.sh"
it_setup migrations

count=$(ls "$WF_ROOT"/migrations/*.sql | wc -l)
latest=$(ls "$WF_ROOT"/migrations/*.sql | sed 's|.*/0*\([0-9]*\)_.*|\1|' | sort -n | tail -n 1)
check "migrate records every migration" test "$(psql_q 'SELECT count(*) FROM schema_migrations')" = "$count"
check "the newest version is recorded" test "$(psql_q 'SELECT max(version) FROM schema_migrations')" = "$latest"
for t in workflows workflow_versions tasks task_edges schedules runs task_runs attempts executors dead_letters events outbox api_tokens; do
	check "table $t exists" test "$(psql_q "SELECT to_regclass('$t') IS NOT NULL")" = t
done
check "ready-queue partial index exists" test "$(psql_q "SELECT count(*) FROM pg_indexes WHERE indexname='task_runs_ready' AND indexdef LIKE '%WHERE%'")" = 1
check "due-schedules index exists" test "$(psql_q "SELECT count(*) FROM pg_indexes WHERE indexname='schedules_due'")" = 1

out=$("$WF_BIN/wfctl" migrate 2>&1)
check "second migrate applies nothing" grep -q "applied 0 migrations" <<<"$out"
check "migrate --check says current" "$WF_BIN/wfctl" migrate --check

# Two processes on an empty database at once.
WF_DATABASE_URL=$(pg_createdb wf_migrations_concurrent)
export WF_DATABASE_URL
"$WF_BIN/wfctl" migrate >"$IT_DIR/a.log" 2>&1 &
a=$!
"$WF_BIN/wfctl" migrate >"$IT_DIR/b.log" 2>&1 &
b=$!
wait $a; ra=$?
wait $b; rb=$?
check "concurrent migrate: both succeed" test "$ra$rb" = 00
check "concurrent migrate: applied exactly once" test "$(cat "$IT_DIR/a.log" "$IT_DIR/b.log" | grep -o 'applied [0-9]*' | sort | tr '\n' ' ')" = "applied 0 applied $count "
check "concurrent migrate: one row per migration" test "$(psql_q 'SELECT count(*) FROM schema_migrations')" = "$count"

# A database from the future is refused, and left untouched.
psql_q "INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future')" >/dev/null
out=$("$WF_BIN/wfctl" migrate 2>&1); rc=$?
check "newer schema: migrate fails" test "$rc" != 0
check "newer schema: message says upgrade" grep -q "9999 but this binary knows only up to $latest" <<<"$out"
check "newer schema: check fails too" bash -c "! '$WF_BIN/wfctl' migrate --check"

# Unreachable database: a clear error, exit code 3.
out=$(WF_DATABASE_URL="postgresql:///nope?host=/nonexistent" "$WF_BIN/wfctl" migrate 2>&1); rc=$?
check "unreachable database exits 3" test "$rc" = 3
check "unreachable database names the problem" grep -q "cannot connect to PostgreSQL" <<<"$out"
