// Small shared widgets: state badges, error boxes, empty states, flash
// messages, confirm dialogs.
import { h, replace } from './dom.js';
import { stateInfo, stateClass } from './states.js';

export function badge(state) {
  const i = stateInfo(state);
  return h('span', { class: ['badge', stateClass(state)], 'data-state': state || '' },
    h('span', { class: 'icon', 'aria-hidden': 'true' }, i.icon), ' ', i.label);
}

// An API error shown to the user: its message, details and a hint.
export function errorBox(err, what) {
  const box = h('div', { class: 'error', role: 'alert' });
  const msg = err && err.message ? err.message : String(err);
  box.append(h('strong', {}, what ? `${what}: ` : 'Error: '), h('span', { class: 'error-message' }, msg));
  if (err && err.status === 403) box.append(h('div', { class: 'hint' }, 'Your token’s role does not allow this.'));
  if (err && err.details && err.details.length) {
    box.append(h('ul', { class: 'details' }, err.details.map((d) => h('li', {}, String(d)))));
  }
  return box;
}

export function empty(message, next) {
  return h('div', { class: 'empty' }, h('p', {}, message), next ? h('p', { class: 'next' }, next) : null);
}

export function loading(what = 'Loading…') { return h('div', { class: 'loading' }, what); }

let flashTimer = null;
export function flash(msg, kind = 'info') {
  const el = document.getElementById('flash');
  if (!el) return;
  replace(el, h('div', { class: ['flash-msg', `flash-${kind}`] }, msg));
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => replace(el), kind === 'error' ? 10000 : 4000);
}

// A modal dialog. body is a node; buttons [{label, value, class}].
// Resolves with the clicked button's value (or null when dismissed).
export function modal(title, body, buttons) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'modal', 'aria-label': title });
    const form = h('form', { method: 'dialog' });
    const foot = h('div', { class: 'modal-buttons' });
    for (const b of buttons) {
      foot.append(h('button', { type: 'submit', value: b.value, class: b.class || '' }, b.label));
    }
    form.append(h('h2', {}, title), body, foot);
    dlg.append(form);
    dlg.addEventListener('close', () => {
      const v = dlg.returnValue;
      dlg.remove();
      resolve(v && v !== 'cancel' ? v : null);
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}

export async function confirmAction(title, message, okLabel = 'Confirm') {
  const v = await modal(title, h('p', {}, message), [
    { label: 'Keep it', value: 'cancel' },
    { label: okLabel, value: 'ok', class: 'danger' },
  ]);
  return v === 'ok';
}

// A button that runs an async action, disables itself meanwhile and
// reports failure via flash.
export function actionButton(label, fn, opts = {}) {
  const b = h('button', { type: 'button', class: ['action', opts.class], 'data-action': opts.action || label.toLowerCase() }, label);
  b.addEventListener('click', async (ev) => {
    ev.stopPropagation();
    b.disabled = true;
    try {
      await fn(b);
    } catch (e) {
      flash(`${label} failed: ${e.message}${e.status === 403 ? ' (your token’s role does not allow this)' : ''}`, 'error');
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

export function table(headers, rows, cls) {
  return h('table', { class: ['grid', cls] },
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows));
}
