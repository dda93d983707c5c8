// Workflows: the list, and one workflow with its versions and diffs.
import { h, replace } from '../dom.js';
import { api, paths, can, listAll } from '../api.js';
import { badge, errorBox, empty, loading, actionButton, table, flash } from '../ui.js';
import { timeEl, zonedTimeEl } from '../format.js';
import { describeSchedule } from '../cron.js';
import { diffLines, diffStats } from '../diff.js';
import { href } from '../router.js';
import { runNow } from './runform.js';

export function scheduleCell(sch) {
  if (!sch) return h('span', { class: 'muted' }, 'manual only');
  const d = describeSchedule(sch);
  const expr = sch.cron || sch.at || '';
  return h('span', { class: 'schedule', title: `${expr} (${sch.timezone || 'UTC'})` },
    d.exact ? d.text : h('code', {}, d.text), ' ', h('span', { class: 'tz' }, sch.timezone || 'UTC'));
}

function pauseButton(wf, after) {
  return wf.paused
    ? actionButton('Unpause', async () => { await api.post(paths.unpause(wf.name)); flash(`${wf.name} unpaused.`); after(); }, { action: 'unpause' })
    : actionButton('Pause', async () => { await api.post(paths.pause(wf.name)); flash(`${wf.name} paused.`); after(); }, { action: 'pause' });
}

export async function workflowsView(root) {
  root.append(h('h1', {}, 'Workflows'));
  const body = h('div', {}, loading());
  root.append(body);
  let timer = null;
  async function load() {
    let items;
    try {
      ({ items } = await listAll(paths.workflows(), {}, 1000));
    } catch (e) {
      replace(body, errorBox(e, 'Cannot list workflows'));
      return;
    }
    if (!items.length) {
      replace(body, empty('No workflows yet — submit one with `wfctl submit examples/`.',
        'Then come back here to run it, pause it or read its versions.'));
      return;
    }
    const rows = items.map((wf) => {
      const tz = wf.schedule ? wf.schedule.timezone : 'UTC';
      const lr = wf.last_run;
      const actions = h('td', { class: 'actions' });
      if (can('operator')) {
        actions.append(actionButton('Run…', () => runNow(wf.name), { action: 'run' }), ' ', pauseButton(wf, load));
      }
      return h('tr', { 'data-workflow': wf.name, class: wf.paused ? 'paused' : '' },
        h('td', {}, h('a', { href: href(`/workflows/${encodeURIComponent(wf.name)}`) }, wf.name),
          wf.paused ? h('span', { class: 'tag' }, ' paused') : null,
          wf.description ? h('div', { class: 'desc' }, String(wf.description)) : null),
        h('td', {}, scheduleCell(wf.schedule)),
        h('td', {}, wf.paused ? h('span', { class: 'muted' }, 'paused') : zonedTimeEl(wf.next_fire_at, tz, wf.schedule ? '—' : 'manual')),
        h('td', {}, lr ? h('a', { href: href(`/runs/${lr.id}`), class: 'runlink' }, badge(lr.state), ' #', String(lr.id), ' ', timeEl(lr.created_at)) : h('span', { class: 'muted' }, 'never run')),
        h('td', {}, 'v', String(wf.version)),
        actions);
    });
    replace(body, table(['Workflow', 'Schedule', 'Next fire (workflow zone)', 'Last run', 'Version', can('operator') ? 'Actions' : ''], rows, 'workflows'));
  }
  await load();
  timer = setInterval(load, 10000);
  return () => clearInterval(timer);
}

function stepText(step) {
  if (!step) return '';
  switch (step.type) {
    case 'shell': return (step.argv || []).join(' ');
    case 'sh': return step.script || '';
    case 'http': return `${step.method || 'GET'} ${step.url || ''}`;
    case 'sleep': return `${step.duration_ms} ms`;
    default: return '';
  }
}

export async function workflowView(root, { name }) {
  const head = h('div', { class: 'page-head' }, h('h1', {}, 'Workflow ', h('span', { class: 'name' }, name)));
  const info = h('div', {}, loading());
  root.append(h('nav', { class: 'crumbs' }, h('a', { href: '#/workflows' }, 'Workflows'), ' / ', name), head, info);
  let wf;
  try {
    wf = await api.get(paths.workflow(name));
  } catch (e) {
    replace(info, errorBox(e, `Cannot load workflow ${name}`));
    return;
  }
  const dag = wf.dag || {};
  const actions = h('div', { class: 'actions' });
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  if (can('operator')) actions.append(actionButton('Run…', () => runNow(name), { action: 'run' }), ' ', pauseButton(wf, reload));
  head.append(actions);
  const sch = wf.schedule !== undefined ? wf.schedule : dag.schedule;
  const params = dag.params || {};
  replace(info,
    h('dl', { class: 'facts' },
      h('dt', {}, 'Description'), h('dd', { class: 'desc', id: 'wf-description' }, dag.description || wf.description || '—'),
      h('dt', {}, 'Schedule'), h('dd', {}, scheduleCell(sch)),
      h('dt', {}, 'Next fire'), h('dd', {}, zonedTimeEl(wf.next_fire_at, sch ? sch.timezone : 'UTC')),
      h('dt', {}, 'State'), h('dd', {}, wf.paused ? 'paused' : 'active'),
      h('dt', {}, 'Current version'), h('dd', {}, `v${wf.version ?? '?'}`, wf.hash ? h('code', { class: 'hash', title: wf.hash }, ' ' + String(wf.hash).slice(0, 12)) : null),
      h('dt', {}, 'Params'), h('dd', {}, Object.keys(params).length
        ? h('ul', { class: 'plain' }, Object.entries(params).map(([k, v]) => h('li', {}, h('code', {}, k), ' = ',
          v && v.default !== undefined && v.default !== null ? JSON.stringify(v.default) : h('span', { class: 'muted' }, v && v.required ? 'required' : 'none'))))
        : 'none'),
      h('dt', {}, 'Runs'), h('dd', {}, h('a', { href: href('/runs', { workflow: name }) }, 'See runs of this workflow'))),
    h('h2', {}, 'Tasks'),
    table(['Task', 'Needs', 'Step', 'Retries', 'Pool', 'Priority'], (dag.tasks || []).map((t) => h('tr', {},
      h('td', {}, t.name), h('td', {}, (t.needs || []).join(', ') || '—'),
      h('td', {}, h('span', { class: 'tag' }, t.step ? t.step.type : '?'), ' ', h('code', { class: 'step' }, stepText(t.step))),
      h('td', {}, String(t.retries ?? 0)), h('td', {}, t.pool || 'default'), h('td', {}, t.priority || 'medium')))),
  );
  const vbox = h('div', { class: 'versions' }, loading('Loading versions…'));
  root.append(h('h2', {}, 'Versions'), vbox);
  let versions;
  try {
    versions = (await api.get(paths.versions(name))).items || [];
  } catch (e) {
    replace(vbox, errorBox(e, 'Cannot list versions'));
    return;
  }
  if (!versions.length) { replace(vbox, empty('No versions stored.')); return; }
  versions.sort((a, b) => a.version - b.version);
  await renderVersions(vbox, name, versions);
}

async function fullVersion(name, v, cache) {
  if (cache.has(v.version)) return cache.get(v.version);
  let full = v;
  if (typeof v.source !== 'string') full = await api.get(paths.version(name, v.version));
  cache.set(v.version, full);
  return full;
}

async function renderVersions(box, name, versions) {
  const cache = new Map();
  const opt = (v, sel) => h('option', { value: String(v.version), selected: sel }, `v${v.version}${v.hash ? ' · ' + String(v.hash).slice(0, 8) : ''}`);
  const last = versions[versions.length - 1];
  const prev = versions.length > 1 ? versions[versions.length - 2] : last;
  const selA = h('select', { id: 'diff-from', 'aria-label': 'Diff from version' }, versions.map((v) => opt(v, v === prev)));
  const selB = h('select', { id: 'diff-to', 'aria-label': 'Diff to version' }, versions.map((v) => opt(v, v === last)));
  const mode = h('select', { id: 'version-mode', 'aria-label': 'Show' },
    h('option', { value: 'diff', selected: versions.length > 1 }, 'Line diff'),
    h('option', { value: 'source', selected: versions.length === 1 }, 'Source of the "to" version'));
  const out = h('div', { class: 'version-out' });
  const list = table(['Version', 'Hash', 'Submitted'], versions.slice().reverse().map((v) => h('tr', {},
    h('td', {}, `v${v.version}`), h('td', {}, h('code', { title: v.hash || '' }, String(v.hash || '').slice(0, 12))),
    h('td', {}, timeEl(v.created_at)))), 'versions-table');
  box.replaceChildren(list, h('div', { class: 'toolbar' }, h('label', {}, 'From ', selA), h('label', {}, ' to ', selB), h('label', {}, ' show ', mode)), out);
  async function show() {
    const find = (sel) => versions.find((v) => String(v.version) === sel.value);
    try {
      const b = await fullVersion(name, find(selB), cache);
      if (mode.value === 'source') {
        replace(out, sourceView(b.source || ''));
        return;
      }
      const a = await fullVersion(name, find(selA), cache);
      replace(out, diffView(a, b));
    } catch (e) {
      replace(out, errorBox(e, 'Cannot load the version'));
    }
  }
  selA.addEventListener('change', show);
  selB.addEventListener('change', show);
  mode.addEventListener('change', show);
  await show();
}

function sourceView(src) {
  const pre = h('pre', { class: 'source', 'data-kind': 'yaml' });
  const lines = String(src).split('\n');
  lines.forEach((l, i) => pre.append(h('span', { class: 'ln' }, String(i + 1).padStart(3, ' ')), ' ', l, '\n'));
  return pre;
}

const CONTEXT = 3;
export function diffView(a, b) {
  const d = diffLines(a.source || '', b.source || '');
  const st = diffStats(d);
  const wrap = h('div', { class: 'diff' });
  wrap.append(h('p', { class: 'diff-stats' }, `v${a.version} → v${b.version}: `,
    h('span', { class: 'add' }, `+${st.add}`), ' ', h('span', { class: 'del' }, `−${st.del}`),
    st.add + st.del === 0 ? ' (identical source)' : ''));
  const pre = h('pre', { class: 'diff-lines' });
  // Show changed lines with CONTEXT lines around; fold the rest.
  const keep = new Array(d.length).fill(false);
  d.forEach((l, i) => { if (l.op !== ' ') for (let j = Math.max(0, i - CONTEXT); j <= Math.min(d.length - 1, i + CONTEXT); j++) keep[j] = true; });
  let folded = 0;
  const flush = () => { if (folded) { pre.append(h('span', { class: 'fold' }, `… ${folded} unchanged line${folded === 1 ? '' : 's'}\n`)); folded = 0; } };
  d.forEach((l, i) => {
    if (!keep[i] && st.add + st.del > 0) { folded++; return; }
    flush();
    const cls = l.op === '+' ? 'add' : l.op === '-' ? 'del' : 'ctx';
    pre.append(h('span', { class: ['dl', cls] },
      h('span', { class: 'ln' }, String(l.a ?? '').padStart(3, ' ')), h('span', { class: 'ln' }, String(l.b ?? '').padStart(4, ' ')),
      ` ${l.op} `, l.text, '\n'));
  });
  flush();
  wrap.append(pre);
  return wrap;
}
