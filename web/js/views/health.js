// Health: key figures from /metrics (Prometheus text), sampled every 5 s
// and drawn as sparklines. Rates are differences between two samples.
// Metric names (engine/api_misc.c): wf_task_runs{state} (gauge of task
// runs by state), wf_queue_depth{priority,pool}, wf_attempts_total,
// wf_dead_letters_open, wf_executor_free_slots{pool}; schedule lag from
// wf_schedule_lag_seconds when the engine exposes it. A figure whose
// metric is missing says which name it expects.
import { h, replace } from '../dom.js';
import { api, paths } from '../api.js';
import { errorBox, loading } from '../ui.js';
import { parseProm, sum, sparkline } from '../charts.js';

const SAMPLE_MS = 5000;
const KEEP = 60; // five minutes
const PRIOS = ['high', 'medium', 'low'];
const DONE = ['succeeded', 'failed', 'dead'];
const FAILED = ['failed', 'dead'];
const LAG_NAMES = ['wf_schedule_lag_seconds', 'wf_scheduler_lag_seconds'];

function has(smp, name) { return smp.declared.has(name) || smp.some((x) => x.name === name); }
function val(smp, name, want) { const v = sum(smp, name, want); return v === null && has(smp, name) ? 0 : v; }

// Cumulative finished and failed task runs: a *_finished_total counter
// when there is one, else the wf_task_runs gauge's final states (which
// only grow while runs are kept).
function finished(smp) {
  if (has(smp, 'wf_task_runs_finished_total')) {
    const total = val(smp, 'wf_task_runs_finished_total');
    const failed = FAILED.reduce((a, s) => a + (sum(smp, 'wf_task_runs_finished_total', { state: s }) || 0), 0);
    return { total, failed, from: 'wf_task_runs_finished_total' };
  }
  if (has(smp, 'wf_task_runs')) {
    const total = DONE.reduce((a, s) => a + (sum(smp, 'wf_task_runs', { state: s }) || 0), 0);
    const failed = FAILED.reduce((a, s) => a + (sum(smp, 'wf_task_runs', { state: s }) || 0), 0);
    return { total, failed, from: 'wf_task_runs{state}' };
  }
  return { total: null, failed: null, from: null };
}

export async function healthView(root) {
  root.append(h('h1', {}, 'Health'));
  const status = h('p', { class: 'health-status' }, loading('Checking /healthz…'));
  const grid = h('div', { class: 'cards' });
  const raw = h('details', { class: 'raw-metrics' }, h('summary', {}, 'All wf metrics (latest sample)'));
  root.append(status, h('p', { class: 'hint' }, `Sampled from /metrics every ${SAMPLE_MS / 1000} s while this page is open; the charts cover the last ${(KEEP * SAMPLE_MS) / 60000} minutes.`), grid, raw);

  const series = { thr: [], fail: [], att: [], lag: [], dlq: [], q: { high: [], medium: [], low: [] } };
  let prev = null;
  const push = (arr, v) => { arr.push(v); if (arr.length > KEEP) arr.shift(); };

  function card(id, title, value, unit, values, note) {
    return h('div', { class: 'card', 'data-figure': id },
      h('div', { class: 'card-title' }, title),
      h('div', { class: 'card-value' }, value === null || value === undefined ? '—' : value, unit ? h('span', { class: 'unit' }, ' ' + unit) : null),
      sparkline(values, { label: title }),
      note ? h('div', { class: 'hint' }, note) : null);
  }

  async function sample() {
    try {
      const hz = await api.get('/healthz');
      replace(status, 'Engine: ', h('strong', { class: hz.status === 'ok' ? 'ok' : 'warn' }, String(hz.status || 'unknown')),
        hz.engine ? h('span', { class: 'muted' }, ` (${hz.engine})`) : null);
    } catch (e) {
      replace(status, errorBox(e, 'The engine’s /healthz did not answer OK'));
    }
    let text;
    try {
      text = await api.get(paths.metrics(), { raw: true });
    } catch (e) {
      replace(grid, errorBox(e, 'Cannot read /metrics'));
      return;
    }
    const now = Date.now();
    const smp = parseProm(text);
    const fin = finished(smp);
    const lagName = LAG_NAMES.find((n) => has(smp, n) || has(smp, n + '_sum'));
    const cur = { t: now, total: fin.total, failed: fin.failed, att: has(smp, 'wf_attempts_total') ? val(smp, 'wf_attempts_total') : null,
      lagSum: lagName ? sum(smp, lagName + '_sum') : null, lagCount: lagName ? sum(smp, lagName + '_count') : null };
    let lagNow = lagName && smp.some((x) => x.name === lagName) ? Math.max(...smp.filter((x) => x.name === lagName).map((x) => x.value)) : null;
    let thr = null, fail = null, att = null;
    if (prev) {
      const dt = (now - prev.t) / 1000;
      if (cur.total !== null && prev.total !== null && dt > 0) {
        const d = cur.total - prev.total;
        if (d >= 0) {
          thr = d / dt;
          fail = d > 0 ? (Math.max(0, cur.failed - prev.failed) / d) * 100 : 0;
        }
      }
      if (cur.att !== null && prev.att !== null && dt > 0 && cur.att >= prev.att) att = (cur.att - prev.att) / dt;
      if (lagNow === null && cur.lagSum !== null && prev.lagSum !== null) {
        const dc = cur.lagCount - prev.lagCount;
        lagNow = dc > 0 ? (cur.lagSum - prev.lagSum) / dc : 0;
      }
    }
    prev = cur;
    push(series.thr, thr);
    push(series.fail, fail);
    push(series.att, att);
    push(series.lag, lagNow);
    const dlq = has(smp, 'wf_dead_letters_open') ? val(smp, 'wf_dead_letters_open') : null;
    push(series.dlq, dlq);
    const hasQ = has(smp, 'wf_queue_depth');
    const qNow = {};
    for (const p of PRIOS) {
      qNow[p] = hasQ ? val(smp, 'wf_queue_depth', { priority: p }) : null;
      push(series.q[p], qNow[p]);
    }
    const first = prev && series.thr.length < 2 ? 'needs two samples (5 s)' : null;
    const from = (ok, name, want) => (ok ? first || `from ${name}` : `not exposed: expects ${want}`);
    replace(grid,
      card('throughput', 'Throughput (task runs finished)', thr === null ? null : thr.toFixed(2), '/s', series.thr, from(fin.from, fin.from, 'wf_task_runs{state}')),
      card('failure-rate', 'Failure rate', fail === null ? null : fail.toFixed(1), '% of finished', series.fail, from(fin.from, fin.from, 'wf_task_runs{state}')),
      ...PRIOS.map((p) => card(`queue-${p}`, `Queue depth · ${p}`, qNow[p] === null ? null : String(qNow[p]), 'ready', series.q[p], from(hasQ, 'wf_queue_depth', 'wf_queue_depth{priority}'))),
      card('schedule-lag', 'Schedule lag', lagNow === null ? null : lagNow.toFixed(2), 's', series.lag, lagName ? `from ${lagName}` : 'not exposed: expects wf_schedule_lag_seconds'),
      card('attempts', 'Attempts claimed', att === null ? null : att.toFixed(2), '/s', series.att, from(cur.att !== null, 'wf_attempts_total', 'wf_attempts_total')),
      card('dead-letters', 'Dead letters open', dlq === null ? null : String(dlq), '', series.dlq, from(dlq !== null, 'wf_dead_letters_open', 'wf_dead_letters_open')));
    const wf = smp.filter((x) => x.name.startsWith('wf_'));
    replace(raw, h('summary', {}, `All wf metrics (latest sample, ${wf.length})`),
      wf.length ? h('pre', { class: 'metrics-text' }, wf.map((x) => `${x.name}${Object.keys(x.labels).length ? JSON.stringify(x.labels) : ''} ${x.value}`).join('\n'))
        : h('p', { class: 'muted' }, 'No wf_ metrics in /metrics.'));
  }
  await sample();
  const t = setInterval(sample, SAMPLE_MS);
  return () => clearInterval(t);
}
