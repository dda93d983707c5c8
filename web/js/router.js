// Hash routing: #/workflows, #/workflows/NAME, #/runs?workflow=x,
// #/runs/42, #/executors, #/dead-letters, #/health, #/signin.

const routes = [];

// pattern like '/runs/:id'
export function route(pattern, view) {
  const names = [];
  const re = new RegExp('^' + pattern.replace(/:[a-z]+/g, (m) => { names.push(m.slice(1)); return '([^/]+)'; }) + '$');
  routes.push({ re, names, view, pattern });
}

export function parseHash(hash = location.hash) {
  let s = hash.replace(/^#/, '') || '/workflows';
  const qi = s.indexOf('?');
  const query = new URLSearchParams(qi >= 0 ? s.slice(qi + 1) : '');
  const path = qi >= 0 ? s.slice(0, qi) : s;
  return { path, query };
}

export function match(path) {
  for (const r of routes) {
    const m = r.re.exec(path);
    if (m) {
      const params = {};
      r.names.forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]); });
      return { view: r.view, params, pattern: r.pattern };
    }
  }
  return null;
}

export function href(path, query) {
  let s = '#' + path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    const qs = q.toString();
    if (qs) s += '?' + qs;
  }
  return s;
}

export function go(path, query) { location.hash = href(path, query); }
