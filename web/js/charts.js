// Prometheus text parsing and small SVG sparklines.
import { s } from './dom.js';

// Parses the text exposition format into [{name, labels, value}].
// The names declared by # TYPE lines are in out.declared (a family may be
// declared with no samples, e.g. an empty queue).
export function parseProm(text) {
  const out = [];
  out.declared = new Set();
  for (const raw of String(text).split('\n')) {
    const line = raw.trim();
    const tm = /^#\s*TYPE\s+(\S+)/.exec(line);
    if (tm) out.declared.add(tm[1]);
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/g;
      let lm;
      while ((lm = re.exec(m[3]))) labels[lm[1]] = lm[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    const v = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}

// Sum of samples named name whose labels match every key of want.
export function sum(samples, name, want = {}) {
  let t = 0, found = false;
  for (const x of samples) {
    if (x.name !== name) continue;
    if (Object.entries(want).every(([k, v]) => x.labels[k] === v)) { t += x.value; found = true; }
  }
  return found ? t : null;
}

export function firstName(samples, candidates) {
  const names = new Set(samples.map((x) => x.name));
  for (const c of candidates) if (names.has(c)) return c;
  return null;
}

// A sparkline of values (nulls are gaps).
export function sparkline(values, { width = 220, height = 44, label } = {}) {
  const svg = s('svg', { class: 'spark', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': label || 'sparkline' });
  const nums = values.filter((v) => v !== null && Number.isFinite(v));
  if (nums.length < 1) {
    svg.append(s('text', { x: 4, y: height / 2 + 4, class: 'spark-empty' }, 'collecting…'));
    return svg;
  }
  let lo = Math.min(...nums), hi = Math.max(...nums);
  if (hi === lo) { hi += 1; lo = Math.max(0, lo - 1); }
  const n = Math.max(values.length, 2);
  const px = (i) => (i / (n - 1)) * (width - 4) + 2;
  const py = (v) => height - 3 - ((v - lo) / (hi - lo)) * (height - 6);
  let d = '';
  let pen = false;
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) { pen = false; return; }
    d += `${pen ? 'L' : 'M'}${px(i).toFixed(1)},${py(v).toFixed(1)} `;
    pen = true;
  });
  svg.append(s('path', { d: d.trim(), class: 'spark-line' }));
  const li = values.length - 1;
  if (values[li] !== null && Number.isFinite(values[li])) svg.append(s('circle', { cx: px(li), cy: py(values[li]), r: 2.5, class: 'spark-dot' }));
  return svg;
}
