-- Namespace-scoped API tokens: a token with a namespace may only see and act
-- on workflows (and their runs, task runs, dead letters, backfills and jobs)
-- of that namespace. NULL = every namespace.
ALTER TABLE api_tokens ADD COLUMN namespace text;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_namespace_check
    CHECK (namespace IS NULL OR namespace ~ '^[a-z0-9_-]{1,64}$');
CREATE INDEX IF NOT EXISTS workflows_namespace ON workflows (namespace);
