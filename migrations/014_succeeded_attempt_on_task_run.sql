-- A task run's attempt that succeeded stays on the task run (bench/README.md,
-- "What each change bought", round 4). 013 kept the running attempt there
-- and wrote its `attempts` row when it ended; now the row is written only
-- for an attempt that did not succeed, and for a succeeded one only when its
-- task run is reset to run again (`wfctl resume --from`, RESUME_RESET_SQL).
-- A task run that succeeds at its first try, the common case, writes no
-- `attempts` row at all: one heap tuple and two index entries less per task.
--
-- attempt_id holds the attempt's id, drawn from the attempts identity (so
-- ids stay unique across both places, and the row moved into `attempts`
-- keeps it); it is set exactly while the task run keeps an ended attempt.
-- The attempt's executor is the task run's executor_id; its claimed and
-- started times are 013's attempt_claimed_at and attempt_started_at.
ALTER TABLE task_runs ADD COLUMN IF NOT EXISTS attempt_id bigint,
                      ADD COLUMN IF NOT EXISTS attempt_finished_at timestamptz,
                      ADD COLUMN IF NOT EXISTS attempt_exit_code integer,
                      ADD COLUMN IF NOT EXISTS attempt_http_status integer,
                      ADD COLUMN IF NOT EXISTS attempt_duration_ms bigint,
                      ADD COLUMN IF NOT EXISTS attempt_output text;

-- Every attempt: the rows of `attempts`, each running task run's current
-- attempt (no id yet, no result) and each succeeded attempt its task run
-- keeps. The API reads this view; so should queries by hand.
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
 WHERE t.state = 'running' AND t.executor_id IS NOT NULL AND t.attempt > 0
UNION ALL
SELECT t.attempt_id, t.id, t.attempt, t.executor_id, 'succeeded',
       coalesce(t.attempt_claimed_at, t.attempt_finished_at), t.attempt_claimed_at,
       t.attempt_started_at, t.attempt_finished_at, t.attempt_exit_code, t.attempt_http_status,
       t.attempt_duration_ms, t.attempt_output, NULL::text, false
  FROM task_runs t
 WHERE t.attempt_id IS NOT NULL;
