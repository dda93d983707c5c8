-- Lateness of the runs fired for bench_fire (ms): fired_at (the engine's fire
-- time) and created_at (its insert transaction) against the recorded
-- next_fire_at (= nominal + jitter offset).
WITH x AS (
    SELECT extract(epoch FROM r.fired_at - b.fire_at) * 1000 AS late,
           extract(epoch FROM r.created_at - b.fire_at) * 1000 AS late_created
    FROM bench_fire b
    JOIN runs r ON r.workflow_id = b.workflow_id AND r.scheduled_for = b.nominal AND r.trigger = 'schedule')
SELECT json_build_object(
    'due', (SELECT count(*) FROM bench_fire),
    'fired', count(*),
    'early', count(*) FILTER (WHERE late < 0),
    'p50_ms', round((percentile_cont(0.5) WITHIN GROUP (ORDER BY late))::numeric, 1),
    'p99_ms', round((percentile_cont(0.99) WITHIN GROUP (ORDER BY late))::numeric, 1),
    'max_ms', round(max(late)::numeric, 1),
    'min_ms', round(min(late)::numeric, 1),
    'created_p50_ms', round((percentile_cont(0.5) WITHIN GROUP (ORDER BY late_created))::numeric, 1),
    'created_p99_ms', round((percentile_cont(0.99) WITHIN GROUP (ORDER BY late_created))::numeric, 1),
    'created_max_ms', round(max(late_created)::numeric, 1))
FROM x;
