-- Moves :due of the bench-cron schedules to fire in the same second, :lead
-- seconds from now: nominal time T (a whole second, the cron expression set to
-- match it), next_fire_at = T + a jitter offset below 1 s. bench_fire records
-- (workflow_id, nominal, fire_at) before anything fires.
BEGIN;
CREATE TABLE IF NOT EXISTS bench_fire (workflow_id bigint PRIMARY KEY, nominal timestamptz, fire_at timestamptz);
TRUNCATE bench_fire;
WITH t AS (SELECT date_trunc('second', clock_timestamp()) + make_interval(secs => :lead) AS t),
d AS (SELECT s.id FROM schedules s JOIN workflows w ON w.id = s.workflow_id
      WHERE w.name LIKE 'bench-cron-%' ORDER BY s.id LIMIT :due),
u AS (UPDATE schedules s
      SET expr = to_char(t.t AT TIME ZONE 'UTC', 'FMSS FMMI FMHH24') || ' * * *',
          next_nominal_at = t.t,
          next_fire_at = t.t + (floor(random() * 1000))::int * interval '1 millisecond',
          updated_at = now()
      FROM d, t WHERE s.id = d.id
      RETURNING s.workflow_id, s.next_nominal_at, s.next_fire_at)
INSERT INTO bench_fire SELECT * FROM u;
COMMIT;
SELECT extract(epoch FROM min(nominal)) FROM bench_fire;
