import { h } from '../dom.js';
import { setToken, clearToken, learnRole } from '../api.js';
import { go } from '../router.js';
import { errorBox } from '../ui.js';

export function signinView(root, params, query) {
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', spellcheck: 'false', required: true, placeholder: 'wf_…' });
  const err = h('div', { class: 'signin-error' });
  const form = h('form', { class: 'signin', id: 'signin-form' },
    h('h1', {}, 'Sign in to wf'),
    h('label', { for: 'token' }, 'API token'),
    input,
    h('p', { class: 'hint' }, 'Create one with ', h('code', {}, 'wfctl token create --role viewer --name you'),
      '. It is kept in this tab only (sessionStorage) and sent as a Bearer token.'),
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    const t = input.value.trim();
    if (!t) return;
    setToken(t);
    try {
      await learnRole();
    } catch (e) {
      clearToken();
      err.append(errorBox(e.status === 401 ? { message: 'The engine did not accept that token.' } : e, 'Sign-in failed'));
      return;
    }
    const next = query.get('next');
    location.hash = next && next.startsWith('/') && !next.startsWith('/signin') ? '#' + next : '#/workflows';
  });
  root.append(form);
  input.focus();
}
