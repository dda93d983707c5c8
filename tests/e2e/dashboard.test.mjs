// End-to-end tests of the dashboard against a REAL engine and executors
// (started by tests/integration/e2e_dashboard.sh). Environment:
//   WF_URL            the engine, serving web/ and the API
//   WF_ADMIN_TOKEN    an admin token; WF_VIEWER_TOKEN a viewer token
//   WF_E2E_FLAGS      a directory the executors can read: marker files
// Run: node --test --test-reporter=tap dashboard.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { launch, newPage, signIn, shot } from './lib.mjs';

const URL = process.env.WF_URL;
const ADMIN = process.env.WF_ADMIN_TOKEN;
const VIEWER = process.env.WF_VIEWER_TOKEN;
const FLAGS = process.env.WF_E2E_FLAGS;
const HOSTILE = '<img src=x onerror=alert(1)>';
if (!URL || !ADMIN || !VIEWER || !FLAGS) throw new Error('WF_URL, WF_ADMIN_TOKEN, WF_VIEWER_TOKEN and WF_E2E_FLAGS must be set');

async function apiCall(method, p, body, token = ADMIN) {
  const r = await fetch(URL + p, { method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const t = await r.text();
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${t}`);
  return t ? JSON.parse(t) : null;
}
const submit = (source) => apiCall('POST', '/api/v1/workflows', { source, filename: 'e2e.yaml' });

const FLAKY = (report) => `name: e2e-flaky
description: "Fails until a marker file exists ${HOSTILE}"
params:
  greeting: "hello"
defaults:
  retries: 0
tasks:
  prepare:
    shell: [echo, "\${params.greeting}"]
  gate:
    needs: prepare
    sh: 'echo "checking $WF_PARAM_GREETING"; test -f "${FLAGS}/ok-$WF_RUN_ID" || { echo "marker missing for run $WF_RUN_ID" >&2; exit 3; }'
  report:
    needs: gate
    shell: [echo, ${report}]
`;
const GREEN = `name: e2e-green
description: A small diamond that succeeds
schedule:
  cron: "15 2 * * 1-5"
  timezone: Europe/Berlin
tasks:
  start:
    noop: {}
  left:
    needs: start
    shell: [echo, left]
  right:
    needs: start
    sleep: 1s
  join:
    needs: [left, right]
    shell: [echo, joined]
`;
const SLOW = `name: e2e-slow
description: Sleeps long enough to be cancelled
tasks:
  nap:
    sleep: 60s
`;
function wide() {
  const l = ['name: e2e-wide', 'description: 500 tasks in one run', 'tasks:', '  root:', '    noop: {}'];
  const ws = [];
  for (let i = 0; i < 498; i++) { const n = `w${String(i).padStart(3, '0')}`; ws.push(n); l.push(`  ${n}:`, '    needs: root', '    noop: {}'); }
  l.push('  sink:', `    needs: [${ws.join(', ')}]`, '    noop: {}');
  return l.join('\n') + '\n';
}

let ctx, closeBrowser, admin, viewer;
const allProblems = [];
const state = {};

before(async () => {
  for (const src of [FLAKY('done'), GREEN, SLOW, wide()]) await submit(src);
  ({ context: ctx, close: closeBrowser } = await launch(URL));
  admin = await newPage(ctx);
  viewer = await newPage(ctx);
  allProblems.push(admin.problems, viewer.problems);
});
after(async () => { if (closeBrowser) await closeBrowser(); });

const stateOf = (page, task) => page.getAttribute(`svg.dag [data-task="${task}"]`, 'data-state');
async function runIdFromHash(page) {
  await page.waitForFunction(() => /^#\/runs\/\d+$/.test(location.hash));
  return Number((await page.evaluate(() => location.hash)).split('/').pop());
}
async function noHostileElements(page) {
  assert.equal(await page.locator('img').count(), 0, 'no <img> element may be created from API data');
}

test('sign in with an admin token; the role drives the header', { timeout: 30000 }, async () => {
  const { page } = admin;
  await page.goto('/');
  await page.waitForSelector('#signin-form');
  await shot(page, 'signin');
  await page.fill('#token', 'wf_not_a_real_token');
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('.signin-error .error');
  assert.match(await page.textContent('.signin-error'), /did not accept/);
  await signIn(page, ADMIN);
  assert.equal(await page.textContent('#who .role'), 'admin');
  const stored = await page.evaluate(() => [sessionStorage.getItem('wf.token'), document.cookie]);
  assert.equal(stored[0], ADMIN);
  assert.equal(stored[1], '', 'no cookies');
});

test('workflows list: schedule in words, next fire in the workflow zone, actions', { timeout: 30000 }, async () => {
  const { page } = admin;
  await page.goto('/#/workflows');
  await page.waitForSelector('tr[data-workflow="e2e-green"]');
  const row = page.locator('tr[data-workflow="e2e-green"]');
  assert.match(await row.textContent(), /on weekdays at 02:15/);
  assert.match(await row.textContent(), /Europe\/Berlin/);
  assert.ok(await row.locator('time').count() >= 1, 'next fire time shown');
  assert.match(await row.locator('time').first().getAttribute('title'), /UTC/);
  assert.equal(await row.locator('button[data-action="run"]').count(), 1);
  assert.equal(await row.locator('button[data-action="pause"]').count(), 1);
  await shot(page, 'workflows');
});

test('pause and unpause a workflow', { timeout: 30000 }, async () => {
  const { page } = admin;
  await page.goto('/#/workflows');
  await page.click('tr[data-workflow="e2e-green"] button[data-action="pause"]');
  await page.waitForSelector('tr[data-workflow="e2e-green"] button[data-action="unpause"]');
  assert.equal((await apiCall('GET', '/api/v1/workflows/e2e-green')).paused, true);
  await page.click('tr[data-workflow="e2e-green"] button[data-action="unpause"]');
  await page.waitForSelector('tr[data-workflow="e2e-green"] button[data-action="pause"]');
  assert.equal((await apiCall('GET', '/api/v1/workflows/e2e-green')).paused, false);
});

test('run now: the DAG is drawn and turns green', { timeout: 60000 }, async () => {
  const { page } = admin;
  await page.goto('/#/workflows');
  await page.click('tr[data-workflow="e2e-green"] button[data-action="run"]');
  await page.click('dialog button[value="run"]');
  state.greenRun = await runIdFromHash(page);
  await page.waitForSelector('svg.dag [data-task="join"]');
  await page.waitForFunction(() => {
    const n = [...document.querySelectorAll('svg.dag .node')];
    return n.length === 4 && n.every((g) => g.getAttribute('data-state') === 'succeeded');
  }, null, { timeout: 45000 });
  await page.waitForSelector('h1 .badge[data-state="succeeded"]');
  await page.waitForSelector('#live-status[data-status="live"]', { timeout: 10000 });
  await page.waitForSelector('svg.gantt rect.bar');
  // Left-to-right layout: start is left of left/right, which are left of join.
  const x = async (t) => (await page.locator(`svg.dag [data-task="${t}"]`).boundingBox()).x;
  assert.ok(await x('start') < await x('left') && await x('left') < await x('join'));
  assert.match(await page.textContent('svg.dag [data-task="join"]'), /succeeded/, 'state is labelled, not colour only');
  await shot(page, 'run-green');
});

test('a failing task: its error and output are shown as text, hostile param stays text', { timeout: 60000 }, async () => {
  const { page } = admin;
  await page.goto('/#/workflows/e2e-flaky');
  await page.waitForSelector('#wf-description');
  assert.equal(await page.textContent('#wf-description'), `Fails until a marker file exists ${HOSTILE}`);
  await noHostileElements(page);
  await page.click('.page-head button[data-action="run"]');
  await page.fill('dialog input[data-param="greeting"]', HOSTILE);
  await page.click('dialog button[value="run"]');
  state.flakyRun = await runIdFromHash(page);
  await page.waitForSelector('svg.dag [data-task="gate"][data-state="dead"], svg.dag [data-task="gate"][data-state="failed"]', { timeout: 45000 });
  await page.waitForSelector('h1 .badge[data-state="failed"]', { timeout: 20000 });
  await page.waitForSelector('svg.dag [data-task="report"][data-state="upstream_failed"]');
  await page.click('svg.dag [data-task="gate"]');
  await page.waitForSelector('#task-panel details.attempt pre.output');
  const panel = await page.textContent('#task-panel');
  assert.match(panel, /exit 3/);
  assert.match(panel, /marker missing for run/);
  assert.ok(panel.includes(`checking ${HOSTILE}`), 'task output with the hostile param is shown verbatim');
  assert.ok((await page.textContent('.run-facts')).includes(HOSTILE), 'param value shown as text');
  await noHostileElements(page);
  await shot(page, 'run-failed-task');
});

test('resume after the cause is fixed: the run succeeds', { timeout: 60000 }, async () => {
  const { page } = admin;
  fs.writeFileSync(path.join(FLAGS, `ok-${state.flakyRun}`), 'ok\n');
  await page.goto(`/#/runs/${state.flakyRun}`);
  await page.click('.page-head button[data-action="resume"]');
  await page.waitForSelector('h1 .badge[data-state="succeeded"]', { timeout: 45000 });
  // The graph repaints on the next animation frame after the header.
  await page.waitForFunction(() => [...document.querySelectorAll('svg.dag .node')].every((g) => g.getAttribute('data-state') === 'succeeded'), null, { timeout: 5000 });
  for (const t of ['prepare', 'gate', 'report']) assert.equal(await stateOf(page, t), 'succeeded');
  await page.click('svg.dag [data-task="gate"]');
  await page.waitForSelector('#task-panel details.attempt[data-attempt="2"]');
  await shot(page, 'run-resumed');
});

test('resume from a task (task panel) re-runs it', { timeout: 60000 }, async () => {
  const { page } = admin;
  await page.goto(`/#/runs/${state.flakyRun}`);
  await page.click('svg.dag [data-task="report"]');
  await page.click('#task-panel button[data-action="resume-from"]');
  await page.waitForFunction(() => /resumed from report/.test(document.getElementById('flash').textContent));
  let run, report;
  for (let i = 0; i < 150; i++) {
    run = await apiCall('GET', `/api/v1/runs/${state.flakyRun}`);
    report = run.task_runs.find((t) => t.task === 'report');
    if (run.state === 'succeeded' && report.attempt >= 2) break;
    await page.waitForTimeout(200);
  }
  assert.ok(report.attempt >= 2, `report ran again (attempt ${report.attempt})`);
  assert.equal(run.state, 'succeeded');
  await page.waitForSelector('#task-panel details.attempt[data-attempt="2"]', { timeout: 10000 });
  await page.waitForSelector('h1 .badge[data-state="succeeded"]');
});

test('without the live feed the run page polls and still turns green', { timeout: 60000 }, async () => {
  const { page } = admin;
  await page.route('**/api/v1/events**', (route) => route.fulfill({ status: 404, contentType: 'application/json', body: '{"error":{"code":"not_found","message":"blocked by the test"}}' }));
  try {
    const { run_id: id } = await apiCall('POST', '/api/v1/workflows/e2e-green/runs', { params: {} });
    await page.goto(`/#/runs/${id}`);
    await page.waitForSelector('#live-status[data-status="unavailable"]');
    assert.match(await page.textContent('#live-status'), /polling every 2 s/);
    await page.waitForFunction(() => {
      const n = [...document.querySelectorAll('svg.dag .node')];
      return n.length === 4 && n.every((g) => g.getAttribute('data-state') === 'succeeded');
    }, null, { timeout: 45000 });
  } finally {
    await page.unroute('**/api/v1/events**');
  }
});

test('dead letters: a dead task is listed; retry re-runs it, drop asks first', { timeout: 90000 }, async () => {
  const { page } = admin;
  const ids = [];
  for (let i = 0; i < 2; i++) ids.push((await apiCall('POST', '/api/v1/workflows/e2e-flaky/runs', { params: { greeting: HOSTILE } })).run_id);
  await page.goto('/#/dead-letters');
  for (const id of ids) {
    await page.waitForFunction((rid) => [...document.querySelectorAll('tr[data-dead-letter] a')].some((a) => a.textContent === `#${rid}`), id, { timeout: 30000 });
  }
  await shot(page, 'dead-letters');
  const row = (rid) => page.locator('tr[data-dead-letter]', { has: page.locator(`a[href="#/runs/${rid}"]`) });
  fs.writeFileSync(path.join(FLAGS, `ok-${ids[0]}`), 'ok\n');
  await row(ids[0]).locator('button[data-action="retry"]').click();
  await page.waitForFunction((rid) => ![...document.querySelectorAll('tr[data-dead-letter] a')].some((a) => a.textContent === `#${rid}`), ids[0], { timeout: 15000 });
  for (let i = 0; i < 100 && (await apiCall('GET', `/api/v1/runs/${ids[0]}`)).state !== 'succeeded'; i++) await page.waitForTimeout(300);
  assert.equal((await apiCall('GET', `/api/v1/runs/${ids[0]}`)).state, 'succeeded');
  await row(ids[1]).locator('button[data-action="drop"]').click();
  await page.waitForSelector('dialog[open]');
  await page.click('dialog button[value="ok"]');
  await page.waitForFunction((rid) => ![...document.querySelectorAll('tr[data-dead-letter] a')].some((a) => a.textContent === `#${rid}`), ids[1], { timeout: 15000 });
  await noHostileElements(page);
});

test('cancel asks for confirmation, then cancels', { timeout: 60000 }, async () => {
  const { page } = admin;
  const { run_id: id } = await apiCall('POST', '/api/v1/workflows/e2e-slow/runs', { params: {} });
  await page.goto(`/#/runs/${id}`);
  await page.click('.page-head button[data-action="cancel"]');
  await page.waitForSelector('dialog[open]');
  await shot(page, 'cancel-confirm');
  await page.click('dialog button[value="cancel"]'); // "Keep it"
  await page.waitForTimeout(300);
  assert.notEqual((await apiCall('GET', `/api/v1/runs/${id}`)).state, 'cancelled');
  await page.click('.page-head button[data-action="cancel"]');
  await page.click('dialog button[value="ok"]');
  await page.waitForSelector('h1 .badge[data-state="cancelled"]', { timeout: 30000 });
});

test('versions: YAML source and a line diff between two versions', { timeout: 30000 }, async () => {
  await submit(FLAKY('finished'));
  const { page } = admin;
  await page.goto('/#/workflows/e2e-flaky');
  await page.waitForSelector('.diff-lines');
  const d = await page.textContent('.diff-lines');
  assert.match(d, /- +shell: \[echo, done\]/);
  assert.match(d, /\+ +shell: \[echo, finished\]/);
  assert.match(await page.textContent('.diff-stats'), /\+1 −1/);
  await shot(page, 'workflow-diff');
  await page.selectOption('#version-mode', 'source');
  await page.waitForSelector('pre.source');
  assert.ok((await page.textContent('pre.source')).includes('name: e2e-flaky'));
  await noHostileElements(page);
});

test('a 500-task run stays fast: fan-out collapsed, expands on click', { timeout: 90000 }, async () => {
  const { page } = admin;
  const { run_id: id } = await apiCall('POST', '/api/v1/workflows/e2e-wide/runs', { params: {} });
  state.wideRun = id;
  const t0 = Date.now();
  await page.goto(`/#/runs/${id}`);
  await page.waitForSelector('svg.dag .node.group');
  const firstPaint = Date.now() - t0;
  assert.ok(firstPaint < 5000, `first paint took ${firstPaint} ms`);
  assert.equal(await page.locator('svg').filter({ has: page.locator('.node') }).count(), 1, 'a single SVG for the graph');
  assert.equal(await page.locator('svg.dag .node').count(), 3, 'root, one group of 498, sink');
  await page.waitForSelector('h1 .badge[data-state="succeeded"]', { timeout: 60000 });
  await page.waitForFunction(() => /498 tasks: 498 succeeded/.test(document.querySelector('svg.dag .node.group title')?.textContent || ''));
  await shot(page, 'run-500-collapsed');
  const t1 = Date.now();
  await page.click('svg.dag .node.group');
  await page.waitForFunction(() => document.querySelectorAll('svg.dag .node').length === 500);
  const expand = Date.now() - t1;
  assert.ok(expand < 5000, `expanding took ${expand} ms`);
  await page.click('button[data-action="collapse"]');
  await page.waitForFunction(() => document.querySelectorAll('svg.dag .node').length === 3);
});

test('runs list filters by workflow and state', { timeout: 30000 }, async () => {
  const { page } = admin;
  await page.goto('/#/runs?workflow=e2e-green');
  await page.waitForSelector(`tr[data-run="${state.greenRun}"]`);
  assert.equal(await page.locator(`tr[data-run="${state.flakyRun}"]`).count(), 0);
  await page.selectOption('#f-state', 'failed');
  await page.waitForFunction(() => location.hash.includes('state=failed'));
  await page.waitForSelector('.empty');
  await page.goto('/#/runs');
  await page.waitForSelector(`tr[data-run="${state.flakyRun}"]`);
  assert.ok((await page.textContent(`tr[data-run="${state.flakyRun}"]`)).includes(HOSTILE));
  await noHostileElements(page);
  await shot(page, 'runs');
});

test('executors and health pages', { timeout: 40000 }, async () => {
  const { page } = admin;
  await page.goto('/#/executors');
  await page.waitForSelector('tr[data-executor="e2e-1"]');
  assert.match(await page.textContent('tr[data-executor="e2e-1"]'), /free/);
  await shot(page, 'executors');
  await page.goto('/#/health');
  await page.waitForSelector('.card[data-figure="throughput"]');
  await page.waitForSelector('.card[data-figure="queue-high"]');
  await page.waitForTimeout(5500); // a second sample draws the rates
  assert.ok(await page.locator('.card svg.spark path.spark-line').count() >= 1);
  await shot(page, 'health');
});

test('a viewer sees no action buttons', { timeout: 30000 }, async () => {
  const { page } = viewer;
  await signIn(page, VIEWER);
  assert.equal(await page.textContent('#who .role'), 'viewer');
  await page.goto('/#/workflows');
  await page.waitForSelector('tr[data-workflow="e2e-green"]');
  assert.equal(await page.locator('button[data-action]:not([data-action="signout"])').count(), 0);
  await page.goto('/#/workflows/e2e-flaky');
  await page.waitForSelector('.diff-lines');
  assert.equal(await page.locator('button[data-action]:not([data-action="signout"])').count(), 0);
  await page.goto(`/#/runs/${state.flakyRun}`);
  await page.waitForSelector('svg.dag [data-task="gate"]');
  await page.click('svg.dag [data-task="gate"]');
  await page.waitForSelector('#task-panel details.attempt');
  assert.equal(await page.locator('button[data-action]:not([data-action="signout"])').count(), 0);
  await shot(page, 'viewer-run');
});

test('no CSP violations, page errors or dialogs', () => {
  for (const p of allProblems) {
    assert.deepEqual(p.csp, []);
    assert.deepEqual(p.pageErrors, []);
    assert.deepEqual(p.dialogs, []);
  }
});
