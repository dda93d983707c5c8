// Dead letters: task runs whose retries ran out, with retry and drop.
import { h, replace } from '../dom.js';
import { api, paths, can, listAll } from '../api.js';
import { errorBox, empty, loading, table, actionButton, confirmAction, flash } from '../ui.js';
import { timeEl } from '../format.js';
import { href } from '../router.js';

export async function deadLettersView(root) {
  root.append(h('h1', {}, 'Dead letters'));
  const body = h('div', {}, loading());
  root.append(body);
  async function load() {
    let items;
    try {
      ({ items } = await listAll(paths.deadLetters(), {}, 500));
    } catch (e) {
      if (e.status === 404 || e.status === 405) {
        replace(body, empty('This engine does not serve dead letters yet (GET /api/v1/dead-letters answered 404).',
          'Dead-lettered task runs still show as "dead" on their run page.'));
        return;
      }
      replace(body, errorBox(e, 'Cannot list dead letters'));
      return;
    }
    items = items.filter((d) => !d.resolved_at);
    if (!items.length) {
      replace(body, empty('No dead letters — every task run either succeeded or still has retries left.'));
      return;
    }
    const rows = items.map((d) => {
      const actions = h('td', { class: 'actions' });
      if (can('operator')) {
        actions.append(
          actionButton('Retry', async () => { await api.post(paths.dlRetry(d.id), {}); flash(`Dead letter ${d.id} retried.`); load(); }, { action: 'retry' }), ' ',
          actionButton('Drop', async () => {
            if (!(await confirmAction('Drop this dead letter?', `${d.task} of run #${d.run_id} will stay dead and leave this list.`, 'Drop'))) return;
            await api.post(paths.dlDrop(d.id), {}); flash(`Dead letter ${d.id} dropped.`); load();
          }, { action: 'drop', class: 'danger' }));
      }
      return h('tr', { 'data-dead-letter': String(d.id) },
        h('td', {}, String(d.id)),
        h('td', {}, d.workflow || String(d.workflow_id ?? '')),
        h('td', {}, h('a', { href: href(`/runs/${d.run_id}`) }, `#${d.run_id}`)),
        h('td', {}, d.task),
        h('td', {}, String(d.attempts ?? '')),
        h('td', {}, d.last_error ? h('pre', { class: 'excerpt' }, String(d.last_error).slice(0, 400)) : '—'),
        h('td', {}, timeEl(d.created_at)),
        actions);
    });
    replace(body, table(['Id', 'Workflow', 'Run', 'Task', 'Attempts', 'Last error', 'Since', can('operator') ? 'Actions' : ''], rows, 'dead-letters'));
  }
  await load();
  const t = setInterval(load, 10000);
  return () => clearInterval(t);
}
