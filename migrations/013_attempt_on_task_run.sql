-- An attempt's row is written once, when the attempt ends (bench/README.md,
-- "What each change bought", round 3). While it runs, the attempt lives on
-- its task run: attempt, executor_id, lease_expires_at as before, and now
-- attempt_claimed_at (when it was claimed and sent) and attempt_started_at (when
-- the executor said it started). The API shows it as the attempt in state
-- `running`. Before, every claim inserted a `running` row and every result
-- updated it: one row version and two index entries per task more.
ALTER TABLE task_runs ADD COLUMN IF NOT EXISTS attempt_claimed_at timestamptz,
                      ADD COLUMN IF NOT EXISTS attempt_started_at timestamptz;

-- Attempts in flight across the upgrade move onto their task runs.
UPDATE task_runs t SET attempt_claimed_at = a.claimed_at, attempt_started_at = a.started_at
  FROM attempts a
 WHERE a.task_run_id = t.id AND a.attempt = t.attempt AND a.state = 'running'
   AND NOT a.stale AND t.state = 'running';
DELETE FROM attempts a USING task_runs t
 WHERE a.task_run_id = t.id AND a.attempt = t.attempt AND a.state = 'running'
   AND NOT a.stale AND t.state = 'running';

-- Every attempt, the running ones included, for the API and for queries by
-- hand: the rows of `attempts` and, for each running task run, its current
-- attempt (no id yet, no result).
CREATE OR REPLACE VIEW attempts_all AS
SELECT a.id, a.task_run_id, a.attempt, a.executor_id, a.state, a.claimed_at, a.sent_at,
       a.started_at, a.finished_at, a.exit_code, a.http_status, a.duration_ms, a.output,
       a.error, a.stale
  FROM attempts a
UNION ALL
SELECT NULL::bigint, t.id, t.attempt, t.executor_id, 'running', coalesce(t.attempt_claimed_at, t.updated_at),
       t.attempt_claimed_at, t.attempt_started_at, NULL::timestamptz, NULL::integer, NULL::integer,
       NULL::bigint, NULL::text, NULL::text, false
  FROM task_runs t
 WHERE t.state = 'running' AND t.executor_id IS NOT NULL AND t.attempt > 0;
