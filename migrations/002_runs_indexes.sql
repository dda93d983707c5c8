-- wf schema, version 2: indexes for the run lifecycle (engine/runs.c).
-- Resume resolves the dead letters of the task runs it resets, and deleting
-- task runs cascades to dead_letters: both look rows up by task run.
CREATE INDEX dead_letters_by_task_run ON dead_letters (task_run_id);
