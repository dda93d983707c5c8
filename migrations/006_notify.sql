-- Notifier (engine/notify.c): deduplicated engine alerts, deliveries given
-- up, and the state of threshold alerts shared by all engines. Additive.

-- An alert row carries a dedup key (e.g. 'run.deadline_missed:42',
-- 'alert.dlq:3'): several engines noticing the same thing write it once.
ALTER TABLE outbox ADD COLUMN dedup_key text;
CREATE UNIQUE INDEX outbox_dedup ON outbox (kind, target, dedup_key) WHERE dedup_key IS NOT NULL;

-- Set when the notifier stopped trying (the row stays, delivered_at NULL,
-- last_error says why). To retry by hand:
--   UPDATE outbox SET gave_up_at = NULL, attempts = 0, available_at = now() WHERE id = ...;
ALTER TABLE outbox ADD COLUMN gave_up_at timestamptz;

-- Runs whose deadline may pass unnoticed: the notifier's deadline check.
CREATE INDEX runs_deadline_open ON runs (deadline_at)
    WHERE NOT deadline_alerted AND deadline_at IS NOT NULL AND state IN ('queued', 'running');

-- Threshold alerts (dead letters over N, executor slots under N) fire once
-- per crossing and re-arm when the value is back on the good side.
CREATE TABLE notify_alerts (
    name        text PRIMARY KEY,                   -- dlq | slots
    firing      boolean NOT NULL DEFAULT false,
    crossings   bigint NOT NULL DEFAULT 0,          -- times it fired: the dedup key
    value       bigint,
    threshold   bigint,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
