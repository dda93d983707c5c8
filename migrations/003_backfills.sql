-- Backfills: runs created for every nominal time of a schedule in a range,
-- visible and cancellable as one group (runs.backfill_id).
CREATE TABLE backfills (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id bigint NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    from_at     timestamptz NOT NULL,
    to_at       timestamptz NOT NULL,
    state       text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'cancelled')),
    runs        integer NOT NULL DEFAULT 0,
    skipped     integer NOT NULL DEFAULT 0,       -- times that already had a run
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    cancelled_at timestamptz
);
CREATE INDEX runs_by_backfill ON runs (backfill_id, id) WHERE backfill_id IS NOT NULL;
