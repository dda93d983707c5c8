-- wf_ts: RFC 3339 UTC text of a timestamp, the form of every time in the API
-- ("2026-01-02T03:04:05.678Z"); NULL stays NULL.
CREATE FUNCTION wf_ts(t timestamptz) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');

-- Newly submitted schedules waiting for their first next time (the
-- scheduler's init step), without reading the whole table.
CREATE INDEX schedules_new ON schedules (id) WHERE enabled AND next_nominal_at IS NULL;
