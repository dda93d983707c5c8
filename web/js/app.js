// Boot: sign-in gate, role, routing, nav.
import { h, replace } from './dom.js';
import { getToken, clearToken, learnRole, session, setUnauthorizedHandler } from './api.js';
import { route, parseHash, match, go } from './router.js';
import { errorBox, flash } from './ui.js';
import { signinView } from './views/signin.js';
import { workflowsView, workflowView } from './views/workflows.js';
import { runsView } from './views/runs.js';
import { runView } from './views/run.js';
import { executorsView } from './views/executors.js';
import { deadLettersView } from './views/deadletters.js';
import { healthView } from './views/health.js';

route('/signin', signinView);
route('/workflows', workflowsView);
route('/workflows/:name', workflowView);
route('/runs', runsView);
route('/runs/:id', runView);
route('/executors', executorsView);
route('/dead-letters', deadLettersView);
route('/health', healthView);

const main = document.getElementById('main');
let cleanup = null;
let roleKnown = false;
let renderSeq = 0;

setUnauthorizedHandler(() => {
  clearToken();
  roleKnown = false;
  flash('Your token was refused (401). Sign in again.', 'error');
  go('/signin');
});

function renderWho() {
  const who = document.getElementById('who');
  if (!getToken()) { replace(who); document.body.classList.add('signed-out'); return; }
  document.body.classList.remove('signed-out');
  const role = session.role ? session.role : 'role unknown';
  replace(who,
    h('span', { class: 'who-name', title: session.roleSource === 'probe' ? 'role inferred (no /api/v1/whoami)' : '' },
      session.name ? `${session.name} · ` : '', h('span', { class: 'role', 'data-role': session.role || 'unknown' }, role)),
    h('button', { type: 'button', class: 'link', 'data-action': 'signout', onclick: () => { clearToken(); roleKnown = false; go('/signin'); } }, 'Sign out'));
  document.body.dataset.role = session.role || 'unknown';
}

function highlightNav(path) {
  for (const a of document.querySelectorAll('#nav a')) {
    const r = a.getAttribute('data-route');
    a.classList.toggle('active', path === '/' + r || path.startsWith('/' + r + '/'));
  }
}

async function render() {
  const seq = ++renderSeq;
  if (cleanup) { try { cleanup(); } catch { /* ignore */ } cleanup = null; }
  const { path, query } = parseHash();
  if (!getToken() && path !== '/signin') {
    go('/signin', path !== '/workflows' ? { next: location.hash.slice(1) } : undefined);
    return;
  }
  if (getToken() && !roleKnown && path !== '/signin') {
    try {
      await learnRole();
      roleKnown = true;
    } catch (e) {
      if (e.status === 401) return; // handler redirects
      replace(main, errorBox(e, 'Could not ask the engine who you are'));
      return;
    }
    if (seq !== renderSeq) return;
  }
  renderWho();
  highlightNav(path);
  const m = match(path);
  const view = h('section', { class: 'view' });
  replace(main, view);
  if (!m) {
    view.append(h('h1', {}, 'Not found'), h('p', {}, 'No page here. '), h('a', { href: '#/workflows' }, 'Go to workflows'));
    return;
  }
  document.title = `wf · ${path.split('/')[1] || 'dashboard'}`;
  try {
    const c = await m.view(view, m.params, query);
    if (seq !== renderSeq) { if (typeof c === 'function') c(); return; }
    cleanup = typeof c === 'function' ? c : null;
  } catch (e) {
    if (seq === renderSeq && e.status !== 401) view.append(errorBox(e));
  }
}

window.addEventListener('hashchange', render);
render();
