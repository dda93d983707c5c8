-- wf schema, version 1: the whole data model of docs/architecture.md.
-- Times are timestamptz; ids are bigint identities.

CREATE TABLE workflows (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    namespace       text NOT NULL DEFAULT 'default',
    current_version integer,
    paused          boolean NOT NULL DEFAULT false,
    deleted_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workflow_versions (
    workflow_id  bigint NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    version      integer NOT NULL,
    hash         text NOT NULL,
    source       text NOT NULL,
    filename     text,
    dag          jsonb NOT NULL,
    created_by   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, version),
    UNIQUE (workflow_id, hash)
);

CREATE TABLE tasks (
    workflow_id  bigint NOT NULL,
    version      integer NOT NULL,
    name         text NOT NULL,
    spec         jsonb NOT NULL,
    PRIMARY KEY (workflow_id, version, name),
    FOREIGN KEY (workflow_id, version) REFERENCES workflow_versions(workflow_id, version) ON DELETE CASCADE
);

CREATE TABLE task_edges (
    workflow_id  bigint NOT NULL,
    version      integer NOT NULL,
    upstream     text NOT NULL,
    downstream   text NOT NULL,
    PRIMARY KEY (workflow_id, version, upstream, downstream),
    FOREIGN KEY (workflow_id, version) REFERENCES workflow_versions(workflow_id, version) ON DELETE CASCADE
);

-- One schedule per workflow (cron with zone, or one time "at").
CREATE TABLE schedules (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id     bigint NOT NULL UNIQUE REFERENCES workflows(id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('cron', 'at')),
    expr            text,
    timezone        text NOT NULL DEFAULT 'UTC',
    at_time         timestamptz,
    jitter_ms       bigint NOT NULL DEFAULT 0,
    catchup         text NOT NULL DEFAULT 'latest' CHECK (catchup IN ('none', 'latest', 'all')),
    overlap         text NOT NULL DEFAULT 'allow' CHECK (overlap IN ('allow', 'skip', 'queue', 'replace')),
    dst_gap         text NOT NULL DEFAULT 'shift',
    dst_repeat      text NOT NULL DEFAULT 'once',
    enabled         boolean NOT NULL DEFAULT true,
    next_fire_at    timestamptz,          -- nominal time + jitter: when to fire
    next_nominal_at timestamptz,          -- the nominal (unjittered) time
    last_fired_at   timestamptz,
    last_nominal_at timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 80);
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled AND next_fire_at IS NOT NULL;

CREATE TABLE runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id     bigint NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    version         integer NOT NULL,
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'paused')),
    params          jsonb NOT NULL DEFAULT '{}',
    trigger         text NOT NULL DEFAULT 'manual',   -- manual | schedule | backfill | api | job
    scheduled_for   timestamptz,                      -- nominal schedule time
    fired_at        timestamptz,                      -- actual fire time
    idempotency_key text,
    backfill_id     bigint,
    deadline_at     timestamptz,
    deadline_alerted boolean NOT NULL DEFAULT false,
    created_by      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    FOREIGN KEY (workflow_id, version) REFERENCES workflow_versions(workflow_id, version)
);
CREATE UNIQUE INDEX runs_schedule_once ON runs (workflow_id, scheduled_for) WHERE scheduled_for IS NOT NULL AND trigger IN ('schedule', 'backfill');
CREATE UNIQUE INDEX runs_idempotency ON runs (workflow_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_by_workflow ON runs (workflow_id, id DESC);
CREATE INDEX runs_active ON runs (workflow_id, state) WHERE state IN ('queued', 'running', 'paused');
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE task_runs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id           bigint NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    task             text NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'queued', 'running', 'retrying', 'succeeded', 'failed',
                                      'cancelled', 'upstream_failed', 'skipped', 'dead')),
    attempt          integer NOT NULL DEFAULT 0,       -- the current (latest) attempt number
    max_attempts     integer NOT NULL DEFAULT 1,
    retries_used     integer NOT NULL DEFAULT 0,
    priority         smallint NOT NULL DEFAULT 1,      -- 0 high, 1 medium, 2 low
    pool             text NOT NULL DEFAULT 'default',
    available_at     timestamptz NOT NULL DEFAULT now(),
    lease_expires_at timestamptz,
    executor_id      text,
    target_executor  text,                             -- for broadcast / fixed routing
    outputs          jsonb,
    wait_reason      text,
    error            text,
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, task, target_executor)
) WITH (fillfactor = 70);
-- What the dispatcher claims: ready work by priority, then age.
CREATE INDEX task_runs_ready ON task_runs (priority, available_at, id) WHERE state IN ('queued', 'retrying');
-- What the reaper watches.
CREATE INDEX task_runs_leased ON task_runs (lease_expires_at) WHERE state = 'running';
CREATE INDEX task_runs_by_run ON task_runs (run_id);

CREATE TABLE attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_run_id  bigint NOT NULL REFERENCES task_runs(id) ON DELETE CASCADE,
    attempt      integer NOT NULL,
    executor_id  text,
    state        text NOT NULL DEFAULT 'running',   -- running | succeeded | failed | timeout | lost | cancelled | stale
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    started_at   timestamptz,
    finished_at  timestamptz,
    exit_code    integer,
    http_status  integer,
    duration_ms  bigint,
    output       text,
    error        text,
    stale        boolean NOT NULL DEFAULT false,    -- a late result from a superseded attempt
    UNIQUE (task_run_id, attempt, stale, id)
);
CREATE INDEX attempts_by_task_run ON attempts (task_run_id, attempt);

CREATE TABLE executors (
    id             text PRIMARY KEY,
    endpoint       text NOT NULL,
    pool           text NOT NULL DEFAULT 'default',
    labels         text[] NOT NULL DEFAULT '{}',
    slots          integer NOT NULL DEFAULT 1,
    free_slots     integer NOT NULL DEFAULT 0,
    load           real NOT NULL DEFAULT 0,
    version        text,
    state          text NOT NULL DEFAULT 'online' CHECK (state IN ('online', 'draining', 'lost', 'offline')),
    breakers       jsonb NOT NULL DEFAULT '{}',
    running        jsonb NOT NULL DEFAULT '[]',
    public_key     text,
    started_at     timestamptz NOT NULL DEFAULT now(),
    last_heartbeat timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dead_letters (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_run_id  bigint NOT NULL REFERENCES task_runs(id) ON DELETE CASCADE,
    run_id       bigint NOT NULL,
    workflow_id  bigint NOT NULL,
    task         text NOT NULL,
    attempts     integer NOT NULL,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    resolution   text                               -- retried | dropped
);
CREATE INDEX dead_letters_open ON dead_letters (created_at) WHERE resolved_at IS NULL;

CREATE TABLE events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    kind         text NOT NULL,                     -- run.state, task_run.state, workflow.submitted, ...
    workflow_id  bigint,
    run_id       bigint,
    task_run_id  bigint,
    actor        text,
    data         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX events_at ON events (at);
CREATE INDEX events_by_run ON events (run_id) WHERE run_id IS NOT NULL;

CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL,                    -- webhook | email
    target        text NOT NULL,
    payload       jsonb NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    available_at  timestamptz NOT NULL DEFAULT now(),
    delivered_at  timestamptz,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_pending ON outbox (available_at) WHERE delivered_at IS NULL;

CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    role         text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    hash         text NOT NULL UNIQUE,              -- hex SHA-256 of the token
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- Per-table autovacuum for the hot, update-heavy queues.
ALTER TABLE task_runs SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE schedules SET (autovacuum_vacuum_scale_factor = 0.02);
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0.05);
