// Node-only tests of the dashboard's pure modules (no browser): diff,
// cron words, DAG layout and grouping, Prometheus parsing, SSE parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffLines, diffStats } from '../../web/js/diff.js';
import { describeCron, describeSchedule } from '../../web/js/cron.js';
import { layout, groupLabel, GROUP_MIN } from '../../web/js/dag.js';
import { parseProm, sum } from '../../web/js/charts.js';
import { SseParser, eventRunId } from '../../web/js/sse.js';

test('diff: a line diff reproduces both texts', () => {
  const pick = (d, keep) => d.filter((l) => l.op !== keep).map((l) => l.text).join('\n');
  let seed = 7;
  const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  for (let i = 0; i < 500; i++) {
    const gen = () => Array.from({ length: Math.floor(rnd() * 15) }, () => 'abcde'[Math.floor(rnd() * 5)]).join('\n');
    const a = gen(), b = gen();
    const d = diffLines(a, b);
    assert.equal(pick(d, '+'), a);
    assert.equal(pick(d, '-'), b);
  }
  const d = diffLines('a\nb\nc\n', 'a\nx\nc\n');
  assert.deepEqual(d.map((l) => l.op + l.text), [' a', '-b', '+x', ' c']);
  assert.deepEqual(diffStats(d), { add: 1, del: 1 });
  assert.deepEqual(d[2], { op: '+', text: 'x', a: null, b: 2 });
});

test('diff: minimal on a long file with one change', () => {
  const a = Array.from({ length: 3000 }, (_, i) => `line ${i}`);
  const b = a.slice();
  b[1500] = 'changed';
  assert.deepEqual(diffStats(diffLines(a.join('\n'), b.join('\n'))), { add: 1, del: 1 });
});

test('cron: common forms in plain words, others verbatim', () => {
  const cases = {
    '0 2 * * 1-5': 'on weekdays at 02:00', '*/5 * * * *': 'every 5 minutes', '30 * * * *': 'every hour at minute 30',
    '0 0 1 * *': 'on the 1st of every month at 00:00', '15 8 * * MON': 'every Monday at 08:15', '@daily': 'every day at 00:00',
    '*/10 * * * * *': 'every 10 seconds', '0 9,17 * * *': 'every day at 09:00, 17:00', '0 12 25 12 *': 'on December 25 at 12:00',
    '* * * * *': 'every minute', '0 */2 * * *': 'every 2 hours at minute 0',
  };
  for (const [e, w] of Object.entries(cases)) assert.equal(describeCron(e).text, w, e);
  for (const e of ['0 0 L * *', '0 0 * * 5#3', 'H H * * *', '0 0 1 * 1']) assert.deepEqual(describeCron(e), { text: e, exact: false });
  assert.equal(describeSchedule(null).text, 'manual only');
  assert.match(describeSchedule({ at: '2026-12-01T09:00:00Z', timezone: 'UTC' }).text, /^once at/);
});

test('dag: layers by longest path, left to right', () => {
  const L = layout([
    { id: 1, task: 'a', needs: [] }, { id: 2, task: 'b', needs: ['a'] },
    { id: 3, task: 'c', needs: ['a', 'b'] }, { id: 4, task: 'd', needs: [] }]);
  const by = Object.fromEntries(L.nodes.map((n) => [n.tr.task, n]));
  assert.deepEqual([by.a.layer, by.b.layer, by.c.layer, by.d.layer], [0, 1, 2, 0]);
  assert.ok(by.a.x < by.b.x && by.b.x < by.c.x);
  assert.equal(L.edges.length, 3);
});

test('dag: barycenter ordering removes a crossing', () => {
  const L = layout([
    { id: 1, task: 'a', needs: [] }, { id: 2, task: 'b', needs: [] },
    { id: 3, task: 'x', needs: ['b'] }, { id: 4, task: 'y', needs: ['a'] }]);
  const y = Object.fromEntries(L.nodes.map((n) => [n.tr.task, n.y]));
  assert.equal(y.a < y.b, y.y < y.x, 'children follow their parents\' order');
});

test('dag: a 500-task fan-out collapses into one group and lays out fast', () => {
  const trs = [{ id: 1, task: 'root', state: 'succeeded', needs: [] }];
  const ws = [];
  for (let i = 0; i < 498; i++) { const n = `w${i}`; ws.push(n); trs.push({ id: i + 2, task: n, state: i < 8 ? 'running' : 'succeeded', needs: ['root'] }); }
  trs.push({ id: 1000, task: 'sink', state: 'pending', needs: ws });
  let t = performance.now();
  const L = layout(trs);
  assert.ok(performance.now() - t < 500);
  assert.equal(L.nodes.length, 3);
  const g = L.nodes.find((n) => n.kind === 'group');
  assert.equal(groupLabel(g.members), '498 tasks: 490 succeeded, 8 running');
  assert.equal(L.edges.length, 2);
  t = performance.now();
  const E = layout(trs, new Set([g.key]));
  assert.ok(performance.now() - t < 1000);
  assert.equal(E.nodes.length, 500);
  // Small fan-outs stay expanded.
  assert.equal(layout(trs.slice(0, GROUP_MIN + 1)).nodes.length, GROUP_MIN + 1);
});

test('prometheus text: samples, labels, declared families', () => {
  const smp = parseProm('# HELP x y\n# TYPE wf_queue_depth gauge\nwf_task_runs{state="failed"} 3\nwf_task_runs{state="succeeded",pool="a\\"b"} 5 1700000000\nwf_up 1\n');
  assert.equal(sum(smp, 'wf_task_runs'), 8);
  assert.equal(sum(smp, 'wf_task_runs', { state: 'failed' }), 3);
  assert.equal(smp[1].labels.pool, 'a"b');
  assert.ok(smp.declared.has('wf_queue_depth'));
  assert.equal(sum(smp, 'wf_queue_depth'), null);
});

test('SSE: fields, multi-line data, ids, comments, split chunks', () => {
  const got = [];
  const p = new SseParser((e) => got.push(e));
  p.feed(': hello\n\nid: 7\nevent: task_run.state\ndata: {"run_id":');
  p.feed('42}\n\ndata: a\r\ndata: b\r\n\r');
  p.feed('\n');
  assert.deepEqual(got, [
    { event: 'task_run.state', data: '{"run_id":42}', id: '7' },
    { event: 'message', data: 'a\nb', id: '7' },
  ]);
  assert.equal(eventRunId(JSON.parse(got[0].data)), '42');
  assert.equal(eventRunId({ data: { run_id: 5 } }), '5');
  assert.equal(eventRunId({ kind: 'executor' }), null);
});
