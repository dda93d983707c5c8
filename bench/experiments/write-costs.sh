#!/usr/bin/env bash
# What each write of a no-op job costs PostgreSQL, and whether a ready-queue
# table would help (bench/README.md, round 6, item 6). Not part of
# `make bench`: it depends on wf's schema as of migration 014 (the columns
# the statements below set), so rerun it only with that in mind.
#
#   bench/experiments/write-costs.sh [TRIALS] [BATCHES]     (3, 150: 75,000 jobs)
#
# A private PostgreSQL (fsync and synchronous_commit on) in $WORK; the
# schema from `bin/wf-engine --migrate`; bench-noop submitted through the
# API; 100,000 runs enqueued with bench/sql/wf_enqueue.sql into a template
# database. Each trial copies the template and runs, in one session, per
# batch of 500 sole runs: a claim-and-mark transaction, then a result
# transaction (lock the runs, task runs succeeded, runs succeeded with a
# run.finished event): the engine's statements without routing. Printed per
# variant: milliseconds for all batches, WAL bytes in all.
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TRIALS=${1:-3}
NB=${2:-150}
WORK=${WORK:-$(mktemp -d /tmp/wf-writecosts.XXXXXX)}
chmod 755 "$WORK"
. "$ROOT/tests/lib/pg.sh"
D=$WORK/pg
P="$PG_BIN/psql -X -q -h $D -U postgres"
trap 'pg_stop "$D"' EXIT
WF_PG_OPTS="-c fsync=on -c synchronous_commit=on -c shared_buffers=512MB -c max_connections=50" pg_start "$D" || exit 1
URL=$(pg_createdb wf_t) || exit 1
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HP=$(port)
WF_DATABASE_URL=$URL "$ROOT/bin/wf-engine" --http "127.0.0.1:$HP" --zmq "tcp://127.0.0.1:$(port)" \
	--insecure-local --migrate --id writecosts >"$WORK/engine.log" 2>&1 &
EP=$!
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$HP/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
body=$(jq -Rs --arg f bench-noop.yaml '{source: ., filename: $f}' <"$ROOT/bench/workflows/bench-noop.yaml")
curl -fsS -X POST -H 'Content-Type: application/json' --data-binary "$body" \
	"http://127.0.0.1:$HP/api/v1/workflows" >/dev/null || { echo "submit failed" >&2; exit 1; }
kill "$EP"
wait "$EP" 2>/dev/null
$P -d wf_t -v ON_ERROR_STOP=1 -v n=100000 -v wf=bench-noop -v tag=writecosts -f "$ROOT/bench/sql/wf_enqueue.sql" >/dev/null || exit 1
$P -d wf_t -c "VACUUM ANALYZE" >/dev/null

# the ready-queue variant: task_runs loses its state-dependent indexes
QUEUE_SQL="DROP INDEX task_runs_ready; DROP INDEX task_runs_leased; DROP INDEX task_runs_copies;
CREATE TABLE tq (id bigint PRIMARY KEY, priority smallint NOT NULL, available_at timestamptz NOT NULL, pool text NOT NULL);
CREATE INDEX tq_ready ON tq (priority, available_at, id);
CREATE TABLE leases (task_run_id bigint PRIMARY KEY, expires_at timestamptz NOT NULL);
CREATE INDEX leases_exp ON leases (expires_at);
INSERT INTO tq SELECT id, priority, available_at, pool FROM task_runs WHERE state IN ('queued', 'retrying');
VACUUM ANALYZE;"
FF50_SQL="ALTER TABLE task_runs SET (fillfactor = 50); VACUUM FULL task_runs; ANALYZE;"

MARK_SET="state = 'running', attempt = t.attempt + 1, executor_id = 'x1', lease_expires_at = now() + interval '30 s', started_at = coalesce(t.started_at, now()), attempt_claimed_at = now(), attempt_started_at = NULL, wait_reason = NULL, updated_at = now()"
FIN_SET="state = 'succeeded', outputs = NULL, error = NULL, wait_reason = NULL, lease_expires_at = NULL, finished_at = now(), updated_at = now(), attempt_id = nextval('attempts_id_seq'), attempt_finished_at = now(), attempt_exit_code = 0, attempt_duration_ms = 1, attempt_output = ''"

# flow DB MODE: MODE cur (today's schema) or queue; env NOEV, NORUN, NOFIN leave a write out
flow() {
	local db=$1 mode=$2 comp=comp i
	[ -n "${NOEV:-}" ] && comp=compnoev
	{
		echo "SET enable_seqscan = off;"
		if [ "$mode" = cur ]; then
			echo "PREPARE claim AS WITH c AS (SELECT id FROM task_runs WHERE priority = 1 AND state IN ('queued','retrying') AND available_at <= now() ORDER BY available_at, id LIMIT 500 FOR UPDATE SKIP LOCKED),
 u AS (UPDATE task_runs t SET $MARK_SET FROM c WHERE t.id = c.id RETURNING t.id, t.run_id)
 SELECT array_agg(id)::text AS ids, array_agg(run_id ORDER BY run_id)::text AS runs FROM u;"
			echo "PREPARE fin(bigint[]) AS UPDATE task_runs tr SET $FIN_SET WHERE tr.id = ANY(\$1) AND tr.state || '' = 'running';"
		else
			echo "PREPARE claim AS WITH c AS (DELETE FROM tq WHERE id IN (SELECT id FROM tq WHERE priority = 1 AND available_at <= now() ORDER BY available_at, id LIMIT 500 FOR UPDATE SKIP LOCKED) RETURNING id),
 u AS (UPDATE task_runs t SET $MARK_SET FROM c WHERE t.id = c.id RETURNING t.id, t.run_id),
 l AS (INSERT INTO leases SELECT id, now() + interval '30 s' FROM u)
 SELECT array_agg(id)::text AS ids, array_agg(run_id ORDER BY run_id)::text AS runs FROM u;"
			echo "PREPARE fin(bigint[]) AS WITH u AS (UPDATE task_runs tr SET $FIN_SET WHERE tr.id = ANY(\$1) AND tr.state || '' = 'running' RETURNING tr.id)
 DELETE FROM leases l USING u WHERE l.task_run_id = u.id;"
		fi
		cat <<'SQL'
PREPARE lockr(bigint[]) AS SELECT r.id FROM runs r WHERE r.id = ANY($1) ORDER BY r.id FOR UPDATE;
PREPARE comp(bigint[]) AS WITH upd AS (UPDATE runs r SET state = 'succeeded', finished_at = now() WHERE r.id = ANY($1) AND r.state || '' = 'running' RETURNING r.id, r.workflow_id, r.state, r.finished_at, r.started_at)
 INSERT INTO events (kind, workflow_id, run_id, data) SELECT 'run.finished', workflow_id, id, jsonb_build_object('state', state, 'duration_ms', (extract(epoch FROM finished_at - started_at) * 1000)::bigint) FROM upd;
PREPARE compnoev(bigint[]) AS UPDATE runs r SET state = 'succeeded', finished_at = now() WHERE r.id = ANY($1) AND r.state || '' = 'running';
SELECT pg_current_wal_lsn() AS w0, clock_timestamp() AS t0 \gset
SQL
		for i in $(seq 1 "$NB"); do
			echo "BEGIN; EXECUTE claim \\gset"
			echo "COMMIT;"
			echo "BEGIN;"
			[ -z "${NORUN:-}" ] && echo "EXECUTE lockr(:'runs');"
			[ -z "${NOFIN:-}" ] && echo "EXECUTE fin(:'ids');"
			[ -z "${NORUN:-}" ] && echo "EXECUTE $comp(:'runs');"
			echo "COMMIT;"
		done
		echo "SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000) || ' ms, WAL ' || (pg_current_wal_lsn() - :'w0'::pg_lsn) || ' bytes';"
	} | $P -At -d "$db" 2>&1 | tail -n 1
}

# trial NAME SETUP_SQL MODE [VAR=1...]
trial() {
	local name=$1 setup=$2 mode=$3
	shift 3
	$P -d postgres -c "DROP DATABASE IF EXISTS wc_trial" -c "CREATE DATABASE wc_trial TEMPLATE wf_t" >/dev/null 2>&1
	[ -n "$setup" ] && echo "$setup" | $P -v ON_ERROR_STOP=1 -d wc_trial >/dev/null
	$P -d wc_trial -c "CHECKPOINT" >/dev/null
	printf '%-44s %s\n' "$name" "$(env "$@" bash -c "$(declare -f flow); $(declare -p P MARK_SET FIN_SET NB); flow wc_trial $mode")"
}

echo "$((NB * 500)) jobs per variant, $TRIALS trials (work dir $WORK)"
for t in $(seq 1 "$TRIALS"); do
	echo "trial $t"
	trial "all of it" "" cur
	trial "without the run.finished event" "" cur NOEV=1
	trial "without the run's bookkeeping" "" cur NORUN=1
	trial "without the task run's result update" "" cur NOFIN=1
	trial "claim and mark only" "" cur NOFIN=1 NORUN=1
	trial "ready-queue table + lease table" "$QUEUE_SQL" queue
	trial "ready-queue table, task_runs fillfactor 50" "$QUEUE_SQL $FF50_SQL" queue
	trial "today's schema, task_runs fillfactor 50" "$FF50_SQL" cur
done
