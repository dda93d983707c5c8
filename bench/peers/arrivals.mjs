// Open-loop arrival generator for wf (bench/run.sh latency and soak phases).
//   node arrivals.mjs RATE SECONDS WORKFLOW TAG
// Every 10 ms tick inserts the runs due so far (RATE per second, not waiting for
// completions) as runs + task_runs rows (created_at = now()) in one statement,
// then NOTIFY wf_work. Rows carry runs.created_by = TAG. Connection: DATABASE_URL.
// Prints one JSON line: {"inserted":..., "seconds":..., "late_ticks":..., "max_tick_ms":...}
import pg from "pg";

const [rate, seconds, workflow, tag] = [
  Number(process.argv[2]),
  Number(process.argv[3]),
  process.argv[4],
  process.argv[5] ?? "bench",
];
if (!(rate > 0 && seconds > 0 && workflow)) {
  console.error("usage: node arrivals.mjs RATE SECONDS WORKFLOW [TAG]");
  process.exit(2);
}
const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();
const wf = await client.query(
  "SELECT id, current_version FROM workflows WHERE name = $1",
  [workflow],
);
if (wf.rowCount !== 1) {
  console.error(`workflow ${workflow} not found`);
  process.exit(1);
}
const [wid, ver] = [wf.rows[0].id, wf.rows[0].current_version];
// roots of the DAG start queued, the rest pending (same rule as the engine)
const sql = `WITH r AS (
    INSERT INTO runs (workflow_id, version, state, params, trigger, created_by, started_at)
    SELECT $1, $2, 'running', '{}', 'api', $4, now() FROM generate_series(1, $3::int)
    RETURNING id)
  , t AS (INSERT INTO task_runs (run_id, task, state, max_attempts, priority, pool)
    SELECT r.id, tk.name,
      CASE WHEN jsonb_array_length(coalesce(tk.spec->'needs', '[]')) = 0 THEN 'queued' ELSE 'pending' END,
      coalesce((tk.spec->>'retries')::int, 0) + 1, 1, 'default'
    FROM r, tasks tk WHERE tk.workflow_id = $1 AND tk.version = $2 RETURNING 1)
  SELECT pg_notify('wf_work', ''), (SELECT count(*) FROM t)`;
const total = Math.round(rate * seconds);
const t0 = performance.now();
let inserted = 0, lateTicks = 0, maxTick = 0, tick = 0;
while (inserted < total) {
  tick++;
  const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
  const k = due - inserted;
  if (k > 0) {
    const a = performance.now();
    await client.query(sql, [wid, ver, k, tag]);
    const d = performance.now() - a;
    if (d > 10) lateTicks++;
    if (d > maxTick) maxTick = d;
    inserted += k;
  }
  const next = t0 + tick * 10;
  const wait = next - performance.now();
  if (wait > 0) await new Promise((res) => setTimeout(res, wait));
}
const secs = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ inserted, seconds: +secs.toFixed(3), late_ticks: lateTicks, max_tick_ms: +maxTick.toFixed(1) }));
await client.end();
