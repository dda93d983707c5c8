// A timeline of attempts: one row per task run that has attempts, one bar
// per attempt from started_at (or claimed_at) to finished_at (or now),
// coloured by the attempt's state. One SVG, rebuilt per snapshot.
import { s, clear } from './dom.js';
import { parseTime, duration } from './format.js';
import { stateClass, stateInfo } from './states.js';

const ROW = 18, LABEL = 190, PAD = 8, AXIS = 22;

export function ganttRows(taskRuns) {
  const rows = [];
  for (const tr of taskRuns) {
    const bars = [];
    for (const a of tr.attempts || []) {
      const st = parseTime(a.started_at) || parseTime(a.claimed_at);
      if (!st) continue;
      const fin = parseTime(a.finished_at);
      bars.push({ start: st.getTime(), end: fin ? fin.getTime() : null, state: a.stale ? 'stale' : a.state, attempt: a.attempt, a });
    }
    if (bars.length) rows.push({ tr, bars });
  }
  rows.sort((x, y) => x.bars[0].start - y.bars[0].start || String(x.tr.task).localeCompare(String(y.tr.task)));
  return rows;
}

export function renderGantt(container, taskRuns, { width = 900, onSelect } = {}) {
  clear(container);
  const rows = ganttRows(taskRuns);
  if (!rows.length) return false;
  const now = Date.now();
  let t0 = Infinity, t1 = -Infinity;
  for (const r of rows) for (const b of r.bars) { t0 = Math.min(t0, b.start); t1 = Math.max(t1, b.end === null ? now : b.end); }
  if (t1 <= t0) t1 = t0 + 1000;
  const plotW = width - LABEL - PAD * 2;
  const sx = (t) => LABEL + PAD + ((t - t0) / (t1 - t0)) * plotW;
  const height = AXIS + rows.length * ROW + PAD;
  const svg = s('svg', { class: 'gantt', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': 'Timeline of attempts' });
  const axis = s('g', { class: 'axis' });
  const ticks = 6;
  for (let i = 0; i <= ticks; i++) {
    const t = t0 + ((t1 - t0) * i) / ticks;
    const x = sx(t);
    axis.append(s('line', { x1: x, y1: AXIS - 4, x2: x, y2: height - PAD, class: 'tick' }),
      s('text', { x, y: 12, 'text-anchor': i === 0 ? 'start' : i === ticks ? 'end' : 'middle' }, '+' + duration(t - t0)));
  }
  svg.append(axis);
  const body = s('g', { class: 'rows' });
  rows.forEach((r, i) => {
    const y = AXIS + i * ROW;
    const g = s('g', { class: 'row', 'data-task-run': String(r.tr.id), tabindex: '0' },
      s('text', { x: LABEL - 6, y: y + ROW - 5, 'text-anchor': 'end', class: 'label' }, String(r.tr.task).slice(0, 28)));
    for (const b of r.bars) {
      const x = sx(b.start), x2 = sx(b.end === null ? now : b.end);
      const info = stateInfo(b.state);
      g.append(s('rect', { x, y: y + 3, width: Math.max(2, x2 - x), height: ROW - 6, rx: '2', class: ['bar', stateClass(b.state), b.end === null ? 'open' : ''] },
        s('title', {}, `${r.tr.task} attempt ${b.attempt}: ${info.label}, ${duration((b.end === null ? now : b.end) - b.start)}${b.a.executor_id ? ' on ' + b.a.executor_id : ''}`)));
    }
    body.append(g);
  });
  svg.append(body);
  if (onSelect) {
    svg.addEventListener('click', (ev) => {
      const g = ev.target.closest('[data-task-run]');
      if (!g) return;
      const tr = taskRuns.find((t) => String(t.id) === g.getAttribute('data-task-run'));
      if (tr) onSelect(tr);
    });
  }
  container.append(svg);
  return true;
}
