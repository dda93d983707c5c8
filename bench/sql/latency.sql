-- Latency of the runs tagged :'tag' (first, non-stale attempt of every
-- succeeded task run), in milliseconds, as one JSON object:
--   {"count":..., "<metric>": {"p50":..,"p99":..,"p999":..,"max":..}, ...}
-- :att names the relation that shows every attempt (bench/run.sh,
-- wf_attempts_rel). created = runs.created_at (arrival), claimed =
-- attempts.claimed_at, sent = attempts.sent_at, started/finished = the executor's clock,
-- committed = task_runs.updated_at (now() of the engine's result transaction).
-- Fresh statistics first: after the harness's TRUNCATE the planner may
-- still think these tables empty and pair 20,000 runs with their task runs
-- and attempts by nested sequential scans (a query that ran for minutes).
ANALYZE runs, task_runs, attempts;
WITH x AS (
    SELECT extract(epoch FROM a.claimed_at - r.created_at) * 1000 AS queued_to_claimed,
           extract(epoch FROM a.sent_at - a.claimed_at) * 1000 AS claimed_to_sent,
           extract(epoch FROM a.started_at - a.sent_at) * 1000 AS sent_to_started,
           extract(epoch FROM a.finished_at - a.started_at) * 1000 AS started_to_finished,
           extract(epoch FROM t.updated_at - a.finished_at) * 1000 AS finished_to_committed,
           extract(epoch FROM a.started_at - r.created_at) * 1000 AS schedule_to_start,
           extract(epoch FROM t.updated_at - r.created_at) * 1000 AS end_to_end
    FROM runs r
    JOIN task_runs t ON t.run_id = r.id AND t.state = 'succeeded'
    JOIN :att a ON a.task_run_id = t.id AND a.attempt = 1 AND NOT a.stale
    WHERE r.created_by = :'tag'),
m AS (
    SELECT k, v FROM x, LATERAL (VALUES
        ('schedule_to_start', schedule_to_start), ('end_to_end', end_to_end),
        ('queued_to_claimed', queued_to_claimed), ('claimed_to_sent', claimed_to_sent),
        ('sent_to_started', sent_to_started), ('started_to_finished', started_to_finished),
        ('finished_to_committed', finished_to_committed)) AS kv(k, v)
    WHERE v IS NOT NULL),
p AS (
    SELECT k, percentile_cont(ARRAY[0.5, 0.99, 0.999]) WITHIN GROUP (ORDER BY v) AS pc, max(v) AS mx
    FROM m GROUP BY k)
SELECT json_build_object('count', (SELECT count(*) FROM x)) ::jsonb ||
       coalesce(jsonb_object_agg(k, jsonb_build_object('p50', round(pc[1]::numeric, 1),
            'p99', round(pc[2]::numeric, 1), 'p999', round(pc[3]::numeric, 1),
            'max', round(mx::numeric, 1))), '{}')
FROM p;
