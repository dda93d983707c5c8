-- Engine hot path (engine/dispatch.c, engine/results.c). Additive.

-- An attempts row is inserted at claim and updated once when its result
-- is applied (and once more at `started` for tasks that run longer than a
-- batch). With the default fillfactor 100 its page is already full, so
-- every such update was a non-HOT update writing three index entries.
-- Free space on the page lets them be HOT (no index column changes).
ALTER TABLE attempts SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.05,
                          autovacuum_analyze_scale_factor = 0.05);

-- runs and events grow by one row (events: two to three) per run: keep
-- their statistics and visibility maps fresh under a high insert rate.
ALTER TABLE runs SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE events SET (autovacuum_vacuum_insert_scale_factor = 0.05);
