// The REST client: Bearer token from sessionStorage, JSON in and out,
// errors turned into ApiError carrying the API's error.message.

const TOKEN_KEY = 'wf.token';

export class ApiError extends Error {
  constructor(status, code, message, details, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || [];
    this.field = field || null;
  }
}

export function getToken() { return sessionStorage.getItem(TOKEN_KEY) || ''; }
export function setToken(t) { sessionStorage.setItem(TOKEN_KEY, t); }
export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  Object.assign(session, { name: null, role: null, roleSource: null, learnedFor: null });
}

// Who is signed in: {name, role, roleSource}. role is viewer|operator|admin
// or null while unknown.
export const session = { name: null, role: null, roleSource: null, learnedFor: null };

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

export function authHeaders(extra) {
  const h = Object.assign({}, extra || {});
  const t = getToken();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

// request('GET', '/api/v1/runs', {query, body, headers, signal, quiet401})
export async function request(method, path, opts = {}) {
  let url = path;
  if (opts.query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query)) {
      if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    }
    const qs = q.toString();
    if (qs) url += (url.includes('?') ? '&' : '?') + qs;
  }
  const headers = authHeaders(opts.headers);
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  let resp;
  try {
    resp = await fetch(url, { method, headers, body, signal: opts.signal, credentials: 'omit', cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', `Cannot reach the engine (${e.message}).`);
  }
  const textBody = await resp.text();
  let data = null;
  if (textBody) {
    try { data = JSON.parse(textBody); } catch { data = null; }
  }
  if (!resp.ok) {
    const err = data && data.error ? data.error : {};
    const msg = err.message || `${resp.status} ${resp.statusText || 'error'}`;
    const e = new ApiError(resp.status, err.code || String(resp.status), msg, err.details, err.field);
    if (resp.status === 401 && !opts.quiet401) onUnauthorized(e);
    throw e;
  }
  if (data === null && textBody && !opts.raw) {
    throw new ApiError(resp.status, 'bad_response', 'The engine answered with something that is not JSON.');
  }
  return opts.raw ? textBody : data;
}

export const api = {
  get: (p, o) => request('GET', p, o),
  post: (p, body, o) => request('POST', p, Object.assign({}, o, { body: body === undefined ? {} : body })),
  del: (p, o) => request('DELETE', p, o),
};

const enc = encodeURIComponent;
export const paths = {
  whoami: () => '/api/v1/whoami',
  workflows: () => '/api/v1/workflows',
  workflow: (n) => `/api/v1/workflows/${enc(n)}`,
  versions: (n) => `/api/v1/workflows/${enc(n)}/versions`,
  version: (n, v) => `/api/v1/workflows/${enc(n)}/versions/${enc(v)}`,
  runWorkflow: (n) => `/api/v1/workflows/${enc(n)}/runs`,
  pause: (n) => `/api/v1/workflows/${enc(n)}/pause`,
  unpause: (n) => `/api/v1/workflows/${enc(n)}/unpause`,
  runs: () => '/api/v1/runs',
  run: (id) => `/api/v1/runs/${enc(id)}`,
  resume: (id) => `/api/v1/runs/${enc(id)}/resume`,
  cancel: (id) => `/api/v1/runs/${enc(id)}/cancel`,
  executors: () => '/api/v1/executors',
  deadLetters: () => '/api/v1/dead-letters',
  dlRetry: (id) => `/api/v1/dead-letters/${enc(id)}/retry`,
  dlDrop: (id) => `/api/v1/dead-letters/${enc(id)}/drop`,
  events: () => '/api/v1/events',
  metrics: () => '/metrics',
};

// Follows next_cursor until max items are gathered.
export async function listAll(path, query, max = 500) {
  const items = [];
  let cursor = null;
  for (;;) {
    const q = Object.assign({}, query, { limit: Math.min(500, max - items.length) });
    if (cursor !== null) q.cursor = cursor;
    const page = await api.get(path, { query: q });
    items.push(...(page.items || []));
    cursor = page.next_cursor;
    if (cursor === null || cursor === undefined || items.length >= max) return { items, more: cursor != null };
  }
}

const RANK = { viewer: 1, operator: 2, admin: 3 };
export function can(role) {
  // Unknown role (no whoami and probing failed): show the actions and
  // let a 403 explain.
  if (!session.role) return true;
  return (RANK[session.role] || 0) >= RANK[role];
}

// Learns the signed-in token's role. Prefers GET /api/v1/whoami
// ({"name","role"}); without it, probes two routes with requests that can
// change nothing: the route's role check answers 403 before the handler
// looks at the (nonexistent) workflow or the (empty) body.
export async function learnRole() {
  const token = getToken();
  if (session.learnedFor === token && session.roleSource) return session;
  session.learnedFor = token;
  session.name = null;
  session.role = null;
  session.roleSource = null;
  try {
    return await learn();
  } catch (e) {
    session.learnedFor = null;
    throw e;
  }
}

async function learn() {
  try {
    const me = await api.get(paths.whoami(), { quiet401: true });
    session.name = me.name || null;
    session.role = me.role || null;
    session.roleSource = 'whoami';
    return session;
  } catch (e) {
    if (e.status === 401) throw e;
    if (e.status !== 404 && e.status !== 405) { session.roleSource = 'unknown'; return session; }
  }
  // Must be authenticated at all: a viewer route.
  await api.get(paths.workflows(), { query: { limit: 1 }, quiet401: true });
  session.role = 'viewer';
  session.roleSource = 'probe';
  try {
    await api.post(paths.pause('.wf-role-probe.'), {}, { quiet401: true });
    session.role = 'operator';
  } catch (e) {
    if (e.status === 403) return session;
    if (e.status >= 500 || e.status === 0) { session.role = null; session.roleSource = 'unknown'; return session; }
    session.role = 'operator';
  }
  try {
    await api.post(paths.workflows(), {}, { quiet401: true });
    session.role = 'admin';
  } catch (e) {
    if (e.status !== 403) session.role = 'admin';
  }
  return session;
}
