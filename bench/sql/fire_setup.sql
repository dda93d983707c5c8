-- :s cron workflows (numbered after :off) for the fire-accuracy benchmark, in one transaction:
-- one workflows row, one version (small DAG: a noop task, a daily 6-field cron
-- in UTC with 1 s jitter), one tasks row and one schedules row each. Their next
-- times lie 1 h to 24 h ahead, so none fires until fire_arm.sql moves some.
BEGIN;
SET LOCAL synchronous_commit = on;
INSERT INTO workflows (name, current_version)
SELECT 'bench-cron-' || g, 1 FROM generate_series(:off + 1, :off + :s) g;
CREATE TEMP TABLE bench_new ON COMMIT DROP AS
SELECT w.id, w.name, n.nominal,
       to_char(n.nominal AT TIME ZONE 'UTC', 'FMSS FMMI FMHH24') || ' * * *' AS expr
FROM workflows w,
     LATERAL (SELECT date_trunc('second', now()) + make_interval(secs => 3600 + (w.id * 7919) % 82800) AS nominal) n
WHERE w.name LIKE 'bench-cron-%' AND NOT EXISTS (SELECT 1 FROM workflow_versions v WHERE v.workflow_id = w.id);
INSERT INTO workflow_versions (workflow_id, version, hash, source, filename, dag, created_by)
SELECT b.id, 1, md5(b.name),
       'name: ' || b.name || E'\nschedule:\n  cron: "' || b.expr || E'"\n  jitter: 1s\ntasks:\n  a:\n    noop: {}\n',
       b.name || '.yaml',
       jsonb_build_object('name', b.name, 'namespace', 'default', 'description', '',
           'params', '{}'::jsonb, 'max_active_runs', 0, 'deadline_ms', NULL,
           'on_success', '[]'::jsonb, 'on_failure', '[]'::jsonb,
           'schedule', jsonb_build_object('cron', b.expr, 'timezone', 'UTC', 'jitter_ms', 1000,
               'catchup', 'latest', 'catchup_max', 100, 'overlap', 'allow',
               'dst_gap', 'shift', 'dst_repeat', 'once'),
           'tasks', jsonb_build_array(:'spec'::jsonb)),
       'bench'
FROM bench_new b;
INSERT INTO tasks (workflow_id, version, name, spec)
SELECT b.id, 1, 'a', :'spec'::jsonb FROM bench_new b;
INSERT INTO schedules (workflow_id, kind, expr, timezone, jitter_ms, catchup, overlap,
                       next_nominal_at, next_fire_at)
SELECT b.id, 'cron', b.expr, 'UTC', 1000, 'latest', 'allow',
       b.nominal, b.nominal + ((b.id * 104729) % 1000) * interval '1 millisecond'
FROM bench_new b;
COMMIT;
