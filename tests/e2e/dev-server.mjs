// A tiny in-memory stand-in for the wf engine's REST API, for iterating on
// the dashboard only. The e2e suite (dashboard.test.mjs) runs against the
// real engine; this is never used there.
//   node dev-server.mjs [port]   tokens: admin / operator / viewer
//   MOCK_NO_WHOAMI=1  answer 404 on /api/v1/whoami (role probing path)
//   MOCK_NO_SSE=1     answer 404 on /api/v1/events (polling path)
//   MOCK_NO_DLQ=1     answer 404 on /api/v1/dead-letters
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web');
const PORT = Number(process.argv[2] || process.env.PORT || 8099);
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const TOKENS = { admin: 'admin', operator: 'operator', viewer: 'viewer' };
const RANK = { viewer: 1, operator: 2, admin: 3 };
const HOSTILE = '<img src=x onerror=alert(1)>';
const now = () => new Date().toISOString();

function task(name, needs = [], step = { type: 'noop' }, extra = {}) {
  return { name, needs, trigger: 'all_success', step, retries: 2, pool: 'default', priority: 'medium', ...extra };
}
const workflows = new Map();
function addWorkflow(dag, source, paused = false) {
  const w = workflows.get(dag.name) || { name: dag.name, paused, versions: [] };
  w.versions.push({ version: w.versions.length + 1, hash: Math.random().toString(16).slice(2).padEnd(64, '0'), source, dag, created_at: now() });
  workflows.set(dag.name, w);
}
addWorkflow({ name: 'nightly-billing', description: 'Export invoices ' + HOSTILE, schedule: { cron: '0 2 * * 1-5', timezone: 'Europe/Berlin' },
  params: { region: { default: 'eu' }, date: { default: null, required: true } },
  tasks: [task('extract'), task('convert', ['extract']), task('notify', ['convert'])] },
'name: nightly-billing\ndescription: Export invoices\nschedule:\n  cron: "0 2 * * 1-5"\n  timezone: Europe/Berlin\ntasks:\n  extract:\n    shell: ["./bin/extract"]\n  convert:\n    needs: [extract]\n');
workflows.get('nightly-billing').versions.push({ version: 2, hash: 'b'.repeat(64), created_at: now(),
  source: 'name: nightly-billing\ndescription: Export invoices ' + HOSTILE + '\nschedule:\n  cron: "0 2 * * 1-5"\n  timezone: Europe/Berlin\nparams:\n  region: eu\ntasks:\n  extract:\n    shell: ["./bin/extract", "--region", "${params.region}"]\n  convert:\n    needs: [extract]\n  notify:\n    needs: [convert]\n',
  dag: workflows.get('nightly-billing').versions[0].dag });
addWorkflow({ name: 'flaky', description: 'fails once', schedule: { cron: '*/5 * * * *', timezone: 'UTC' }, params: {},
  tasks: [task('prepare'), task('flaky-step', ['prepare'], { type: 'sh', script: 'test -f /tmp/x' }), task('after', ['flaky-step'])] }, 'name: flaky\n');
{
  const tasks = [task('root')];
  const ws = [];
  for (let i = 0; i < 498; i++) { const n = `w${String(i).padStart(3, '0')}`; ws.push(n); tasks.push(task(n, ['root'])); }
  tasks.push(task('sink', ws));
  addWorkflow({ name: 'big-fanout', description: '500 tasks', schedule: null, params: {}, tasks }, 'name: big-fanout\n');
}

const runs = new Map();
let nextRun = 1, nextTr = 1;
const clients = new Set();
let evId = 0;
function emit(kind, data) {
  evId++;
  const msg = `id: ${evId}\nevent: ${kind}\ndata: ${JSON.stringify({ id: evId, kind, at: now(), ...data })}\n\n`;
  for (const c of clients) c.write(msg);
}
function createRun(w, params) {
  const v = w.versions[w.versions.length - 1];
  const id = nextRun++;
  const run = { id, workflow: w.name, version: v.version, state: 'running', trigger: 'manual', params, created_at: now(), started_at: now(), finished_at: null, task_runs: [] };
  for (const t of v.dag.tasks) {
    run.task_runs.push({ id: nextTr++, task: t.name, state: t.needs.length ? 'pending' : 'queued', attempt: 0, max_attempts: t.retries + 1,
      priority: 'medium', pool: 'default', executor_id: null, available_at: now(), wait_reason: t.needs.length ? `waiting on ${t.needs.length} upstream` : 'queued for a slot', error: null, outputs: null, needs: t.needs, attempts: [] });
  }
  runs.set(id, run);
  emit('run.state', { run_id: id, state: 'running' });
  return run;
}
function setState(run, tr, st) { tr.state = st; emit('task_run.state', { run_id: run.id, task_run_id: tr.id, state: st }); }
setInterval(() => {
  for (const run of runs.values()) {
    if (run.state !== 'running') continue;
    const byName = new Map(run.task_runs.map((t) => [t.task, t]));
    let running = 0;
    for (const tr of run.task_runs) {
      if (tr.state === 'running') {
        const a = tr.attempts[tr.attempts.length - 1];
        if (Date.now() - Date.parse(a.started_at) > 600 + Math.random() * 800) {
          const fail = tr.task.includes('flaky') && tr.attempt === 1 && !run.resumed;
          a.finished_at = now(); a.duration_ms = Date.parse(a.finished_at) - Date.parse(a.started_at);
          a.exit_code = fail ? 1 : 0; a.state = fail ? 'failed' : 'succeeded';
          a.output = `hello from ${tr.task}\n${HOSTILE}\n`;
          a.error = fail ? 'exit status 1: flag file missing ' + HOSTILE : null;
          tr.error = a.error; tr.wait_reason = null;
          setState(run, tr, fail ? 'dead' : 'succeeded');
        } else running++;
      }
    }
    for (const tr of run.task_runs) {
      if (tr.state === 'pending') {
        const ups = tr.needs.map((n) => byName.get(n));
        if (ups.some((u) => ['failed', 'dead', 'upstream_failed'].includes(u.state))) setState(run, tr, 'upstream_failed');
        else if (ups.every((u) => u.state === 'succeeded')) { tr.wait_reason = 'queued for a slot'; setState(run, tr, 'queued'); }
      }
      if (tr.state === 'queued' && running < 40) {
        running++;
        tr.attempt++; tr.executor_id = 'mock-1'; tr.wait_reason = null;
        tr.attempts.push({ attempt: tr.attempt, executor_id: 'mock-1', state: 'running', claimed_at: now(), started_at: now(), finished_at: null, exit_code: null, http_status: null, duration_ms: null, output: null, error: null, stale: false });
        setState(run, tr, 'running');
      }
    }
    if (run.task_runs.every((t) => ['succeeded', 'failed', 'dead', 'upstream_failed', 'skipped', 'cancelled'].includes(t.state))) {
      run.state = run.task_runs.every((t) => ['succeeded', 'skipped'].includes(t.state)) ? 'succeeded' : 'failed';
      run.finished_at = now();
      emit('run.state', { run_id: run.id, state: run.state });
    }
  }
}, 250);

function send(res, status, obj, headers = {}) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Security-Policy': CSP, ...headers });
  res.end(body);
}
const err = (res, status, code, message) => send(res, status, { error: { code, message } });
function wfItem(w) {
  const v = w.versions[w.versions.length - 1];
  const last = [...runs.values()].filter((r) => r.workflow === w.name).pop();
  return { name: w.name, paused: w.paused, version: v.version, hash: v.hash, schedule: v.dag.schedule,
    next_fire_at: v.dag.schedule ? new Date(Date.now() + 3600e3).toISOString() : null,
    last_run: last ? { id: last.id, state: last.state, created_at: last.created_at } : null };
}
function runItem(r) { const { task_runs, resumed, ...x } = r; return x; }

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  if (!p.startsWith('/api/') && p !== '/metrics' && p !== '/healthz') {
    const f = path.join(WEB, p === '/' ? 'index.html' : p);
    if (!f.startsWith(WEB) || !fs.existsSync(f) || fs.statSync(f).isDirectory()) { res.writeHead(404); res.end('not found'); return; }
    const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };
    res.writeHead(200, { 'Content-Type': types[path.extname(f)] || 'application/octet-stream', 'Content-Security-Policy': CSP, 'X-Content-Type-Options': 'nosniff' });
    fs.createReadStream(f).pipe(res);
    return;
  }
  if (p === '/healthz') return send(res, 200, { status: 'ok' });
  if (p === '/metrics') {
    const total = [...runs.values()].flatMap((r) => r.task_runs).filter((t) => t.state === 'succeeded').length;
    const failed = [...runs.values()].flatMap((r) => r.task_runs).filter((t) => t.state === 'dead').length;
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' });
    res.end(`# TYPE wf_task_runs_finished_total counter\nwf_task_runs_finished_total{state="succeeded"} ${total}\nwf_task_runs_finished_total{state="failed"} ${failed}\n` +
      `wf_queue_depth{priority="high"} 0\nwf_queue_depth{priority="medium"} ${Math.floor(Math.random() * 20)}\nwf_queue_depth{priority="low"} 3\nwf_schedule_lag_seconds ${(Math.random() * 0.3).toFixed(3)}\n`);
    return;
  }
  const auth = req.headers.authorization || '';
  const role = auth.startsWith('Bearer ') ? TOKENS[auth.slice(7)] : null;
  if (!role) return err(res, 401, 'unauthorized', 'missing or unknown token');
  const need = (r) => { if (RANK[role] < RANK[r]) { err(res, 403, 'forbidden', `needs role ${r}`); return false; } return true; };
  let body = '';
  for await (const c of req) body += c;
  let json = {};
  try { json = body ? JSON.parse(body) : {}; } catch { return err(res, 400, 'bad_json', 'invalid JSON'); }
  const m = (re) => re.exec(p);
  let g;
  if (p === '/api/v1/whoami') return process.env.MOCK_NO_WHOAMI ? err(res, 404, 'not_found', 'no route') : send(res, 200, { name: `${role}-token`, role });
  if (p === '/api/v1/events') {
    if (process.env.MOCK_NO_SSE) return err(res, 404, 'not_found', 'no route');
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
    res.write(': hello\n\n');
    clients.add(res);
    req.on('close', () => clients.delete(res));
    return;
  }
  if (p === '/api/v1/workflows' && req.method === 'GET') return send(res, 200, { items: [...workflows.values()].map(wfItem), next_cursor: null });
  if (p === '/api/v1/workflows' && req.method === 'POST') { if (!need('admin')) return; return err(res, 400, 'invalid_workflow', 'source is required'); }
  if ((g = m(/^\/api\/v1\/workflows\/([^/]+)$/))) {
    const w = workflows.get(decodeURIComponent(g[1]));
    if (!w) return err(res, 404, 'not_found', 'no such workflow');
    return send(res, 200, { ...wfItem(w), dag: w.versions[w.versions.length - 1].dag });
  }
  if ((g = m(/^\/api\/v1\/workflows\/([^/]+)\/versions$/))) {
    const w = workflows.get(decodeURIComponent(g[1]));
    if (!w) return err(res, 404, 'not_found', 'no such workflow');
    return send(res, 200, { items: w.versions, next_cursor: null });
  }
  if ((g = m(/^\/api\/v1\/workflows\/([^/]+)\/(pause|unpause)$/)) && req.method === 'POST') {
    if (!need('operator')) return;
    const w = workflows.get(decodeURIComponent(g[1]));
    if (!w) return err(res, 404, 'not_found', 'no such workflow');
    w.paused = g[2] === 'pause';
    return send(res, 200, { name: w.name, paused: w.paused });
  }
  if ((g = m(/^\/api\/v1\/workflows\/([^/]+)\/runs$/)) && req.method === 'POST') {
    if (!need('operator')) return;
    const w = workflows.get(decodeURIComponent(g[1]));
    if (!w) return err(res, 404, 'not_found', 'no such workflow');
    const dag = w.versions[w.versions.length - 1].dag;
    for (const [k, v] of Object.entries(dag.params || {})) if (v.required && !(json.params && k in json.params)) return err(res, 400, 'invalid_params', `param ${k} is required`);
    const r = createRun(w, json.params || {});
    return send(res, 201, { run_id: r.id, state: r.state });
  }
  if (p === '/api/v1/runs') {
    let items = [...runs.values()].reverse();
    if (url.searchParams.get('workflow')) items = items.filter((r) => r.workflow === url.searchParams.get('workflow'));
    if (url.searchParams.get('state')) items = items.filter((r) => r.state === url.searchParams.get('state'));
    return send(res, 200, { items: items.slice(0, Number(url.searchParams.get('limit') || 50)).map(runItem), next_cursor: null });
  }
  if ((g = m(/^\/api\/v1\/runs\/(\d+)$/))) {
    const r = runs.get(Number(g[1]));
    if (!r) return err(res, 404, 'not_found', `no run ${g[1]}`);
    const { resumed, ...x } = r;
    return send(res, 200, x);
  }
  if ((g = m(/^\/api\/v1\/runs\/(\d+)\/(resume|cancel)$/)) && req.method === 'POST') {
    if (!need('operator')) return;
    const r = runs.get(Number(g[1]));
    if (!r) return err(res, 404, 'not_found', `no run ${g[1]}`);
    if (g[2] === 'cancel') {
      r.state = 'cancelled'; r.finished_at = now();
      for (const t of r.task_runs) if (!['succeeded', 'failed', 'dead', 'skipped', 'upstream_failed'].includes(t.state)) setState(r, t, 'cancelled');
      return send(res, 200, { run_id: r.id, state: 'cancelled' });
    }
    const reset = [];
    for (const t of r.task_runs) if (['failed', 'dead', 'upstream_failed', 'cancelled'].includes(t.state) || (json.from && t.task === json.from)) { reset.push(t.task); setState(r, t, 'pending'); t.error = null; }
    r.state = 'running'; r.finished_at = null; r.resumed = true;
    return send(res, 200, { run_id: r.id, state: 'running', reset });
  }
  if (p === '/api/v1/executors') {
    return send(res, 200, { items: [
      { id: 'mock-1', endpoint: 'tcp://127.0.0.1:5601', pool: 'default', labels: ['gpu', HOSTILE], slots: 8, free_slots: 5, load: 0.42, version: '0.1.0', state: 'online', breakers: { 'billing.internal': { state: 'open', until_ms: Date.now() + 30000 } }, running: [], started_at: now(), last_heartbeat: new Date(Date.now() - 2000).toISOString() },
      { id: 'mock-2', endpoint: 'tcp://127.0.0.1:5602', pool: 'batch', labels: [], slots: 4, free_slots: 4, load: 0, version: '0.1.0', state: 'lost', breakers: {}, running: [], started_at: now(), last_heartbeat: new Date(Date.now() - 95000).toISOString() },
    ], next_cursor: null });
  }
  if (p === '/api/v1/dead-letters') {
    if (process.env.MOCK_NO_DLQ) return err(res, 404, 'not_found', 'no route');
    const items = [];
    for (const r of runs.values()) for (const t of r.task_runs) if (t.state === 'dead') items.push({ id: t.id, run_id: r.id, workflow: r.workflow, task: t.task, attempts: t.attempt, last_error: t.error, created_at: now(), resolved_at: null });
    return send(res, 200, { items, next_cursor: null });
  }
  return err(res, 404, 'not_found', `no route ${req.method} ${p}`);
});
server.listen(PORT, '127.0.0.1', () => console.log(`mock wf on http://127.0.0.1:${PORT}`));
