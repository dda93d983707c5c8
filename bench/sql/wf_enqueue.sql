-- Bulk enqueue for wf: :n runs of workflow :'wf' (its current version) in one
-- transaction, one task run per task (roots queued, the rest pending), as the
-- engine's own run creation does; then NOTIFY wf_work. runs.created_by = :'tag'.
BEGIN;
WITH r AS (
    INSERT INTO runs (workflow_id, version, state, params, trigger, created_by, started_at)
    SELECT w.id, w.current_version, 'running', '{}', 'api', :'tag', now()
    FROM workflows w, generate_series(1, :n) g
    WHERE w.name = :'wf'
    RETURNING id, workflow_id, version)
INSERT INTO task_runs (run_id, task, state, max_attempts, priority, pool)
SELECT r.id, t.name,
       CASE WHEN jsonb_array_length(coalesce(t.spec->'needs', '[]')) = 0 THEN 'queued' ELSE 'pending' END,
       coalesce((t.spec->>'retries')::int, 0) + 1,
       CASE t.spec->>'priority' WHEN 'high' THEN 0 WHEN 'low' THEN 2 ELSE 1 END,
       coalesce(t.spec->>'pool', 'default')
FROM r JOIN tasks t ON t.workflow_id = r.workflow_id AND t.version = r.version;
NOTIFY wf_work;
COMMIT;
