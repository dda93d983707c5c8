// A run's DAG as one SVG, laid out left to right: layers by longest path
// from the roots, order within a layer by barycenter sweeps, wide fan-outs
// (more than GROUP_MIN task runs in a layer with the same upstream set)
// collapsed into one group node until expanded. Live updates change only
// classes and labels; the layout is recomputed only when the graph's shape
// changes.
import { s, clear } from './dom.js';
import { stateInfo, stateClass } from './states.js';

export const GROUP_MIN = 12;
const W = 184, H = 46, GW = 230, GAPX = 70, GAPY = 14, PAD = 16;

// Which state a group shows: the one that most needs attention.
const PRIORITY = ['failed', 'dead', 'upstream_failed', 'running', 'retrying', 'queued', 'pending',
  'cancelled', 'skipped', 'succeeded'];

export function groupState(members) {
  let best = null, bi = Infinity;
  for (const m of members) {
    const i = PRIORITY.indexOf(m.state);
    const j = i < 0 ? PRIORITY.length : i;
    if (j < bi) { bi = j; best = m.state; }
  }
  return best;
}

export function groupLabel(members) {
  const counts = new Map();
  for (const m of members) counts.set(m.state, (counts.get(m.state) || 0) + 1);
  const parts = [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0])))
    .map(([st, n]) => `${n} ${stateInfo(st).label}`);
  return `${members.length} tasks: ${parts.join(', ')}`;
}

// Pure layout. taskRuns: [{id, task, state, needs}]. expanded: Set of group
// keys the user opened. Returns {nodes, edges, width, height, signature}.
export function layout(taskRuns, expanded = new Set()) {
  const byId = new Map();
  const byTask = new Map();
  for (const tr of taskRuns) {
    byId.set(tr.id, tr);
    if (!byTask.has(tr.task)) byTask.set(tr.task, []);
    byTask.get(tr.task).push(tr.id);
  }
  const preds = new Map(), succs = new Map();
  for (const tr of taskRuns) { preds.set(tr.id, []); succs.set(tr.id, []); }
  for (const tr of taskRuns) {
    for (const n of tr.needs || []) {
      for (const p of byTask.get(n) || []) {
        if (p === tr.id) continue;
        preds.get(tr.id).push(p);
        succs.get(p).push(tr.id);
      }
    }
  }
  // Longest path from roots (Kahn's order); a cycle or dangling part
  // (should not happen) lands in layer 0.
  const indeg = new Map();
  for (const tr of taskRuns) indeg.set(tr.id, preds.get(tr.id).length);
  const layerOf = new Map();
  const queue = [];
  for (const tr of taskRuns) if (indeg.get(tr.id) === 0) { queue.push(tr.id); layerOf.set(tr.id, 0); }
  for (let qi = 0; qi < queue.length; qi++) {
    const id = queue[qi];
    for (const sId of succs.get(id)) {
      layerOf.set(sId, Math.max(layerOf.get(sId) || 0, layerOf.get(id) + 1));
      indeg.set(sId, indeg.get(sId) - 1);
      if (indeg.get(sId) === 0) queue.push(sId);
    }
  }
  for (const tr of taskRuns) if (!layerOf.has(tr.id)) layerOf.set(tr.id, 0);

  // Group wide fan-outs: same layer + same upstream task set.
  const buckets = new Map();
  for (const tr of taskRuns) {
    const up = [...new Set(tr.needs || [])].sort().join('\u0000');
    const key = `g:${layerOf.get(tr.id)}:${up}`;
    if (!buckets.has(key)) buckets.set(key, []);
    buckets.get(key).push(tr);
  }
  const vnodeOf = new Map(); // task run id -> visual node key
  const vnodes = new Map();
  for (const [key, members] of buckets) {
    const layer = layerOf.get(members[0].id);
    if (members.length > GROUP_MIN && !expanded.has(key)) {
      members.sort((a, b) => String(a.task).localeCompare(String(b.task)) || a.id - b.id);
      vnodes.set(key, { key, kind: 'group', layer, members, w: GW, h: H + 8 });
      for (const m of members) vnodeOf.set(m.id, key);
    } else {
      for (const m of members) {
        const k = `t:${m.id}`;
        vnodes.set(k, { key: k, kind: 'task', layer, members: [m], tr: m, w: W, h: H, group: members.length > GROUP_MIN ? key : null });
        vnodeOf.set(m.id, k);
      }
    }
  }
  const edgeSet = new Set();
  const edges = [];
  const vpred = new Map(), vsucc = new Map();
  for (const k of vnodes.keys()) { vpred.set(k, []); vsucc.set(k, []); }
  for (const tr of taskRuns) {
    for (const p of preds.get(tr.id)) {
      const a = vnodeOf.get(p), b = vnodeOf.get(tr.id);
      if (a === b) continue;
      const ek = `${a}\u0001${b}`;
      if (edgeSet.has(ek)) continue;
      edgeSet.add(ek);
      edges.push({ from: a, to: b });
      vpred.get(b).push(a);
      vsucc.get(a).push(b);
    }
  }
  // Layers, initial order by name, then barycenter sweeps.
  const layers = [];
  for (const n of vnodes.values()) {
    while (layers.length <= n.layer) layers.push([]);
    layers[n.layer].push(n);
  }
  const nameOf = (n) => (n.kind === 'group' ? n.members[0].task : n.tr.task);
  for (const L of layers) L.sort((a, b) => String(nameOf(a)).localeCompare(String(nameOf(b))) || (a.key < b.key ? -1 : 1));
  const pos = new Map();
  const setPos = () => layers.forEach((L) => L.forEach((n, i) => pos.set(n.key, i)));
  setPos();
  const sweep = (L, nb) => {
    const bc = new Map();
    L.forEach((n, i) => {
      const ns = nb.get(n.key);
      if (!ns.length) { bc.set(n.key, i); return; }
      let sum = 0;
      for (const x of ns) sum += pos.get(x);
      bc.set(n.key, sum / ns.length);
    });
    L.sort((a, b) => bc.get(a.key) - bc.get(b.key) || pos.get(a.key) - pos.get(b.key));
    L.forEach((n, i) => pos.set(n.key, i));
  };
  for (let it = 0; it < 4; it++) {
    for (let i = 1; i < layers.length; i++) sweep(layers[i], vpred);
    for (let i = layers.length - 2; i >= 0; i--) sweep(layers[i], vsucc);
  }
  // Coordinates: columns per layer, each column centred vertically.
  const colH = layers.map((L) => L.reduce((a, n) => a + n.h + GAPY, -GAPY));
  const maxH = Math.max(0, ...colH);
  let x = PAD;
  layers.forEach((L, li) => {
    const cw = Math.max(...L.map((n) => n.w));
    let y = PAD + (maxH - colH[li]) / 2;
    for (const n of L) {
      n.x = x + (cw - n.w) / 2;
      n.y = y;
      y += n.h + GAPY;
    }
    x += cw + GAPX;
  });
  const nodes = [...vnodes.values()];
  const signature = nodes.map((n) => n.key).sort().join(',') + '|' + edges.length;
  return { nodes, edges, width: Math.max(x - GAPX + PAD, 200), height: maxH + 2 * PAD, signature, byKey: vnodes };
}

function edgePath(a, b) {
  const x1 = a.x + a.w, y1 = a.y + a.h / 2, x2 = b.x, y2 = b.y + b.h / 2;
  const dx = Math.max(24, (x2 - x1) / 2);
  return `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`;
}

function truncate(t, n) { t = String(t); return t.length > n ? t.slice(0, n - 1) + '…' : t; }

// The renderer: owns one <svg> in container. onSelect(node) on click.
export class DagView {
  constructor(container, { onSelect, onToggleGroup } = {}) {
    this.container = container;
    this.onSelect = onSelect || (() => {});
    this.onToggleGroup = onToggleGroup || (() => {});
    this.expanded = new Set();
    this.sig = null;
    this.els = new Map();
    this.selected = null;
    this.svg = s('svg', { class: 'dag', role: 'img', 'aria-label': 'Task graph' });
    container.append(this.svg);
    this.svg.addEventListener('click', (ev) => this.click(ev));
    this.svg.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); this.click(ev); }
    });
  }

  click(ev) {
    const g = ev.target.closest && ev.target.closest('[data-key]');
    if (!g) return;
    const n = this.lay && this.lay.byKey.get(g.getAttribute('data-key'));
    if (!n) return;
    if (n.kind === 'group') {
      this.expanded.add(n.key);
      this.onToggleGroup(n.key, true);
      this.update(this.taskRuns, true);
    } else {
      this.select(n.key);
      this.onSelect(n.tr);
    }
  }

  collapse(groupKey) {
    this.expanded.delete(groupKey);
    this.update(this.taskRuns, true);
  }

  select(key) {
    if (this.selected && this.els.has(this.selected)) this.els.get(this.selected).g.classList.remove('selected');
    this.selected = key;
    if (key && this.els.has(key)) this.els.get(key).g.classList.add('selected');
  }

  // Called on every new run snapshot.
  update(taskRuns, force = false) {
    this.taskRuns = taskRuns;
    const lay = layout(taskRuns, this.expanded);
    const sig = lay.signature + '#' + [...this.expanded].sort().join(',');
    if (force || sig !== this.sig) {
      this.sig = sig;
      this.lay = lay;
      this.build();
    } else {
      // Same shape: refresh members (new objects) and paint states only.
      for (const n of lay.nodes) {
        const old = this.lay.byKey.get(n.key);
        old.members = n.members;
        old.tr = n.tr;
      }
    }
    this.paint();
  }

  build() {
    const { nodes, edges, width, height, byKey } = this.lay;
    clear(this.svg);
    this.els.clear();
    this.svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    this.svg.setAttribute('width', width);
    this.svg.setAttribute('height', height);
    const defs = s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 8 8', refX: '8', refY: '4', markerWidth: '7', markerHeight: '7', orient: 'auto' },
      s('path', { d: 'M0,0 L8,4 L0,8 z', class: 'arrowhead' })));
    const ge = s('g', { class: 'edges' });
    const paths = [];
    for (const e of edges) paths.push(s('path', { d: edgePath(byKey.get(e.from), byKey.get(e.to)), 'marker-end': 'url(#arrow)' }));
    ge.append(...paths);
    const gn = s('g', { class: 'nodes' });
    const frag = document.createDocumentFragment();
    for (const n of nodes) {
      const title = s('title');
      const rect = s('rect', { width: n.w, height: n.h, rx: '6', ry: '6' });
      const icon = s('text', { x: '10', y: '19', class: 'icon', 'aria-hidden': 'true' });
      const name = s('text', { x: '28', y: '19', class: 'name' });
      const sub = s('text', { x: '10', y: String(n.h - 10), class: 'sub' });
      const g = s('g', {
        class: ['node', n.kind === 'group' ? 'group' : 'task'],
        transform: `translate(${n.x},${n.y})`, 'data-key': n.key, tabindex: '0', role: 'button',
        'data-task': n.kind === 'task' ? n.tr.task : null,
      }, title, rect, icon, name, sub);
      if (n.kind === 'group') {
        g.append(s('text', { x: String(n.w - 10), y: '19', class: 'expand', 'text-anchor': 'end', 'aria-hidden': 'true' }, '⊕'));
      }
      this.els.set(n.key, { g, title, icon, name, sub, state: null });
      frag.append(g);
    }
    gn.append(frag);
    this.svg.append(defs, ge, gn);
    if (this.selected) this.select(this.selected);
  }

  paint() {
    for (const n of this.lay.nodes) {
      const el = this.els.get(n.key);
      let st, name, sub, title;
      if (n.kind === 'group') {
        st = groupState(n.members);
        const label = groupLabel(n.members);
        const first = n.members[0].task, last = n.members[n.members.length - 1].task;
        name = truncate(`${truncate(first, 11)} … ${truncate(last, 11)} (${n.members.length})`, 30);
        sub = truncate(label, 36);
        title = `${label}\nclick to expand`;
      } else {
        st = n.tr.state;
        const info = stateInfo(st);
        name = truncate(n.tr.task, 22);
        const att = n.tr.attempt ? ` · attempt ${n.tr.attempt}${n.tr.max_attempts ? '/' + n.tr.max_attempts : ''}` : '';
        sub = info.label + att;
        title = `${n.tr.task}: ${info.label}${att}${n.tr.wait_reason ? '\nwaits: ' + n.tr.wait_reason : ''}`;
      }
      if (el.state !== st) {
        if (el.state !== null) el.g.classList.remove(stateClass(el.state));
        el.g.classList.add(stateClass(st));
        el.g.setAttribute('data-state', st || '');
        el.icon.textContent = stateInfo(st).icon;
        el.state = st;
      }
      if (el.name.textContent !== name) el.name.textContent = name;
      if (el.sub.textContent !== sub) el.sub.textContent = sub;
      if (el.title.textContent !== title) el.title.textContent = title;
    }
  }
}
