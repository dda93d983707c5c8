-- Fewer indexes on the tables every task run writes (bench/README.md,
-- "What each change bought"). Each index is one more B-tree insertion per
-- inserted row and per non-HOT update, and a task run is updated twice.
--
-- task_runs (run_id): UNIQUE (run_id, task, target_executor) starts with
-- run_id and serves the same lookups.
DROP INDEX IF EXISTS task_runs_by_run;
-- attempts (task_run_id, attempt): UNIQUE (task_run_id, attempt, stale, id)
-- starts with both columns.
DROP INDEX IF EXISTS attempts_by_task_run;
-- events (at): retention now walks the oldest events by id (ids are handed
-- out in insertion order) and checks their time; nothing else reads by at.
DROP INDEX IF EXISTS events_at;

-- Broadcast copies still waiting (the reaper looks for copies whose
-- executor is gone once a second): found without reading the whole queue.
CREATE INDEX task_runs_copies ON task_runs (id)
    WHERE target_executor IS NOT NULL AND state IN ('queued', 'retrying');
