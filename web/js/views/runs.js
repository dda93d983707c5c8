// Runs: a filterable list (workflow, state, time).
import { h, replace } from '../dom.js';
import { api, paths, listAll } from '../api.js';
import { badge, errorBox, empty, loading, table } from '../ui.js';
import { timeEl, duration, between, parseTime } from '../format.js';
import { RUN_STATES } from '../states.js';
import { href, go } from '../router.js';

const SINCE = { '': 'any time', '1h': 'last hour', '24h': 'last 24 hours', '7d': 'last 7 days' };
const SINCE_MS = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3 };

function paramsText(p) {
  if (!p || typeof p !== 'object') return '';
  return Object.entries(p).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
}

export async function runsView(root, _params, query) {
  const f = { workflow: query.get('workflow') || '', state: query.get('state') || '', since: query.get('since') || '' };
  root.append(h('h1', {}, 'Runs'));
  const wfSel = h('select', { id: 'f-workflow', name: 'workflow' }, h('option', { value: '' }, 'all workflows'));
  if (f.workflow) wfSel.append(h('option', { value: f.workflow, selected: true }, f.workflow));
  const stSel = h('select', { id: 'f-state', name: 'state' }, h('option', { value: '' }, 'any state'),
    RUN_STATES.map((s) => h('option', { value: s, selected: s === f.state }, s)));
  const tSel = h('select', { id: 'f-since', name: 'since' }, Object.entries(SINCE).map(([k, v]) => h('option', { value: k, selected: k === f.since }, v)));
  const form = h('form', { class: 'filters toolbar' },
    h('label', {}, 'Workflow ', wfSel), h('label', {}, 'State ', stSel), h('label', {}, 'Created ', tSel));
  const apply = () => go('/runs', { workflow: wfSel.value, state: stSel.value, since: tSel.value });
  for (const el of [wfSel, stSel, tSel]) el.addEventListener('change', apply);
  form.addEventListener('submit', (e) => { e.preventDefault(); apply(); });
  root.append(form);
  const body = h('div', {}, loading());
  root.append(body);

  listAll(paths.workflows(), {}, 1000).then(({ items }) => {
    for (const w of items) if (w.name !== f.workflow) wfSel.append(h('option', { value: w.name }, w.name));
  }).catch(() => {});

  const limit = 100;
  let shown = limit;
  async function load() {
    let page;
    try {
      page = await api.get(paths.runs(), { query: { workflow: f.workflow, state: f.state, limit: shown } });
    } catch (e) {
      replace(body, errorBox(e, 'Cannot list runs'));
      return;
    }
    let items = page.items || [];
    if (f.since) {
      const cut = Date.now() - SINCE_MS[f.since];
      items = items.filter((r) => { const d = parseTime(r.created_at); return d && d.getTime() >= cut; });
    }
    if (!items.length) {
      const filtered = f.workflow || f.state || f.since;
      replace(body, empty(filtered ? 'No runs match these filters.' : 'No runs yet.',
        filtered ? 'Clear a filter above to see more.' : 'Start one from the Workflows page (Run…) or with `wfctl run WORKFLOW`.'));
      return;
    }
    const rows = items.map((r) => h('tr', { 'data-run': String(r.id) },
      h('td', {}, h('a', { href: href(`/runs/${r.id}`) }, `#${r.id}`)),
      h('td', {}, h('a', { href: href('/runs', { workflow: r.workflow, state: f.state, since: f.since }) }, r.workflow), h('span', { class: 'muted' }, ` v${r.version}`)),
      h('td', {}, badge(r.state)),
      h('td', {}, r.trigger || ''),
      h('td', {}, timeEl(r.created_at)),
      h('td', {}, duration(between(r.started_at, r.finished_at))),
      h('td', { class: 'params' }, paramsText(r.params))));
    const parts = [table(['Run', 'Workflow', 'State', 'Trigger', 'Created', 'Duration', 'Params'], rows, 'runs')];
    if (page.next_cursor !== null && page.next_cursor !== undefined && shown < 500) {
      parts.push(h('button', { type: 'button', class: 'more', onclick: () => { shown = Math.min(500, shown + limit); load(); } }, 'Show more'));
    }
    if (f.since) parts.push(h('p', { class: 'hint' }, `The time filter applies to the newest ${shown} runs.`));
    replace(body, ...parts);
  }
  await load();
  const timer = setInterval(load, 5000);
  return () => clearInterval(timer);
}
