-- The run-creating write path (bench/README.md, "What each change bought").
--
-- task_runs.run_id loses its foreign key. Its check runs once per inserted
-- task run, through a plan PostgreSQL caches per connection: planned while
-- `runs` was empty (a new install, or the benchmark's TRUNCATE between
-- phases) it is a sequential scan, and it stays one until autovacuum's next
-- ANALYZE of `runs`, so each check reads every run. 10,000 schedules due
-- in one second then fired in 2000-run batches that took 285, 530, 655,
-- 806 and 1089 ms (p99 lateness 2.1 s). Every statement that inserts task
-- runs takes their run ids from `runs` in the same statement, and retention
-- deletes a run's task runs (and with them its dead letters) with the run.
ALTER TABLE task_runs DROP CONSTRAINT IF EXISTS task_runs_run_id_fkey;

-- The retries of the last hour (GET /metrics) counted without reading
-- every event: 010 dropped events (at), and the count read the whole table
-- on every scrape. Only retry events enter this index; the events every
-- task run writes pay only for its predicate.
CREATE INDEX IF NOT EXISTS events_retrying ON events (at)
    WHERE kind = 'task_run.state' AND (data->>'to') = 'retrying';
