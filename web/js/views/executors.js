// Executors: pool, labels, slots, load, heartbeat age, state, breakers.
import { h, replace } from '../dom.js';
import { listAll, paths } from '../api.js';
import { badge, errorBox, empty, loading, table } from '../ui.js';
import { age, parseTime } from '../format.js';

function breakersCell(b) {
  const entries = b && typeof b === 'object' ? Object.entries(b) : [];
  if (!entries.length) return h('span', { class: 'muted' }, 'none');
  return h('ul', { class: 'plain breakers' }, entries.map(([name, v]) => {
    const st = v && typeof v === 'object' ? v.state : String(v);
    const until = v && v.until_ms ? new Date(v.until_ms) : null;
    return h('li', { 'data-breaker': name }, h('code', {}, name), ' ', badge(st),
      until && until > new Date() ? h('span', { class: 'muted', title: until.toISOString() }, ` until ${until.toLocaleTimeString()}`) : null);
  }));
}

export async function executorsView(root) {
  root.append(h('h1', {}, 'Executors'));
  const body = h('div', {}, loading());
  root.append(body);
  async function load() {
    let items;
    try {
      ({ items } = await listAll(paths.executors(), {}, 1000));
    } catch (e) {
      replace(body, errorBox(e, 'Cannot list executors'));
      return;
    }
    if (!items.length) {
      replace(body, empty('No executors have said hello yet.', 'Start one with `wf-executor --id host-1 --engine tcp://ENGINE:5555`.'));
      return;
    }
    items.sort((a, b) => String(a.pool).localeCompare(String(b.pool)) || String(a.id).localeCompare(String(b.id)));
    const now = Date.now();
    const rows = items.map((e) => {
      const hb = parseTime(e.last_heartbeat);
      const stale = hb && now - hb.getTime() > 30000;
      const slots = Number(e.slots) || 0, free = Number(e.free_slots) || 0;
      return h('tr', { 'data-executor': e.id, class: stale ? 'stale' : '' },
        h('td', {}, e.id, e.version ? h('div', { class: 'muted small' }, `v${e.version}`) : null),
        h('td', {}, e.pool || 'default'),
        h('td', {}, (e.labels || []).length ? (e.labels || []).map((l) => h('span', { class: 'tag' }, l)) : h('span', { class: 'muted' }, '—')),
        h('td', {}, h('span', { class: 'slots' }, `${free} / ${slots} free`),
          h('span', { class: 'meter', role: 'meter', 'aria-valuemin': '0', 'aria-valuemax': String(slots), 'aria-valuenow': String(slots - free), title: `${slots - free} busy` },
            h('span', { class: ['meter-fill', `w${Math.round(((slots - free) / Math.max(slots, 1)) * 10)}`] }))),
        h('td', {}, typeof e.load === 'number' ? e.load.toFixed(2) : String(e.load ?? '—')),
        h('td', { title: hb ? hb.toISOString() : '' }, age(e.last_heartbeat, now), stale ? h('span', { class: 'warn' }, ' ⚠ late') : null),
        h('td', {}, badge(e.state)),
        h('td', {}, breakersCell(e.breakers)));
    });
    replace(body, table(['Executor', 'Pool', 'Labels', 'Slots', 'Load', 'Heartbeat', 'State', 'Breakers'], rows, 'executors'));
  }
  await load();
  const t = setInterval(load, 5000);
  return () => clearInterval(t);
}
