// "Run now" with params: a small form built from the DAG's params.
import { h } from '../dom.js';
import { api, paths } from '../api.js';
import { modal, flash, errorBox } from '../ui.js';
import { go } from '../router.js';

function coerce(text, def) {
  if (typeof def === 'number' && text.trim() !== '' && !Number.isNaN(Number(text))) return Number(text);
  if (typeof def === 'boolean' && (text === 'true' || text === 'false')) return text === 'true';
  return text;
}

export async function runNow(name) {
  let wf;
  try {
    wf = await api.get(paths.workflow(name));
  } catch (e) {
    flash(`Cannot load ${name}: ${e.message}`, 'error');
    return;
  }
  const params = (wf.dag && wf.dag.params) || wf.params || {};
  const inputs = [];
  const body = h('div', { class: 'run-form' });
  const names = Object.keys(params).sort();
  if (!names.length) body.append(h('p', { class: 'muted' }, 'This workflow takes no params.'));
  for (const p of names) {
    const spec = params[p] && typeof params[p] === 'object' ? params[p] : { default: params[p] };
    const def = spec.default;
    const id = `param-${p}`;
    const input = h('input', {
      type: 'text', id, name: p, 'data-param': p,
      value: def === null || def === undefined ? '' : typeof def === 'string' ? def : JSON.stringify(def),
      required: spec.required ? true : null,
    });
    inputs.push({ p, input, def, required: !!spec.required });
    body.append(h('div', { class: 'field' },
      h('label', { for: id }, p, spec.required ? h('span', { class: 'req', title: 'required' }, ' *') : null), input,
      spec.description ? h('div', { class: 'hint' }, String(spec.description)) : null));
  }
  const errSlot = h('div');
  body.append(errSlot);
  for (;;) {
    const v = await modal(`Run ${name}`, body, [
      { label: 'Cancel', value: 'cancel' },
      { label: 'Start run', value: 'run', class: 'primary' },
    ]);
    if (v !== 'run') return;
    const values = {};
    for (const { p, input, def } of inputs) {
      if (input.value === '' && (def === null || def === undefined)) continue;
      values[p] = coerce(input.value, def);
    }
    try {
      const r = await api.post(paths.runWorkflow(name), { params: values });
      flash(`Run ${r.run_id} started.`);
      go(`/runs/${r.run_id}`);
      return;
    } catch (e) {
      errSlot.textContent = '';
      errSlot.append(errorBox(e, 'The run was not started'));
    }
  }
}
