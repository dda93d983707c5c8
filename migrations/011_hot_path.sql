-- The per-task write path (bench/README.md, "What each change bought").
--
-- attempts.task_run_id loses its foreign key: its check is a row lock on
-- the task run per inserted attempt, 7 of the 19 microseconds the
-- dispatcher's "mark claimed" statement spent per task. Every statement
-- that writes attempts takes the task run ids from task_runs in the same
-- statement, and retention deletes a run's attempts with the run.
ALTER TABLE attempts DROP CONSTRAINT IF EXISTS attempts_task_run_id_fkey;

-- runs rows are updated once or twice (started, finished) and never HOT
-- (state and finished_at are indexed): room on the page keeps the new
-- version next to the old one.
ALTER TABLE runs SET (fillfactor = 90);
