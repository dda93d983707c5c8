// One run: DAG (live), timeline of attempts, task panel, actions.
import { h, replace } from '../dom.js';
import { api, paths, can } from '../api.js';
import { badge, errorBox, loading, actionButton, confirmAction, flash, table, empty } from '../ui.js';
import { timeEl, duration, between } from '../format.js';
import { FINAL, TASK_STATES, stateInfo } from '../states.js';
import { DagView } from '../dag.js';
import { renderGantt } from '../gantt.js';
import { openEvents, eventRunId } from '../sse.js';
import { href } from '../router.js';

const POLL_MS = 2000;
const SAFETY_POLL_MS = 15000;

function json(v) { return JSON.stringify(v, null, 2); }

export async function runView(root, { id }) {
  const crumbs = h('nav', { class: 'crumbs' }, h('a', { href: '#/runs' }, 'Runs'), ' / ', `#${id}`);
  const head = h('div', { class: 'page-head' });
  const facts = h('div', { class: 'run-facts' });
  const summary = h('div', { class: 'summary' });
  const live = h('span', { class: 'live', id: 'live-status', 'data-status': 'connecting' }, 'connecting…');
  const groupsBar = h('div', { class: 'groups-bar' });
  const dagBox = h('div', { class: 'dag-box', id: 'dag' });
  const panel = h('aside', { class: 'task-panel', id: 'task-panel', 'aria-live': 'polite' },
    h('p', { class: 'muted' }, 'Click a task to see its attempts, output and errors.'));
  const ganttBox = h('div', { class: 'gantt-box', id: 'gantt' });
  const errSlot = h('div');
  root.append(crumbs, head, errSlot, facts, h('div', { class: 'dag-head' }, h('h2', {}, 'Graph'), summary, live), groupsBar,
    h('div', { class: 'run-body' }, dagBox, panel), h('h2', {}, 'Timeline of attempts'), ganttBox);
  replace(head, loading());

  let run = null;
  let selectedId = null;
  let lastPanelKey = '';
  let closed = false;
  let inflight = false;
  let again = false;
  let pollTimer = null;
  let streamLive = false;

  const dag = new DagView(dagBox, {
    onSelect: (tr) => { selectedId = tr.id; lastPanelKey = ''; renderPanel(); },
    onToggleGroup: () => renderGroupsBar(),
  });

  function renderGroupsBar() {
    const ex = [...dag.expanded];
    if (!ex.length) { replace(groupsBar); return; }
    replace(groupsBar, h('span', { class: 'muted' }, 'Expanded groups: '), ex.map((k) => {
      const members = (run ? run.task_runs : []).filter((t) => dag.lay && dag.lay.byKey.get(`t:${t.id}`)?.group === k);
      return h('button', { type: 'button', class: 'chip', 'data-action': 'collapse', onclick: () => { dag.collapse(k); renderGroupsBar(); } },
        `collapse ${members.length ? members[0].task + ' …' : 'group'} (${members.length})`);
    }));
  }

  async function refresh() {
    if (closed) return;
    if (inflight) { again = true; return; }
    inflight = true;
    try {
      const r = await api.get(paths.run(id));
      if (closed) return;
      run = r;
      replace(errSlot);
      paint();
    } catch (e) {
      if (!closed) replace(errSlot, errorBox(e, run ? 'Refresh failed (showing the last data)' : `Cannot load run ${id}`));
      if (!run) replace(head);
    } finally {
      inflight = false;
      if (again && !closed) { again = false; setTimeout(refresh, 150); }
    }
  }

  function paint() {
    const trs = run.task_runs || [];
    const done = new Set(['succeeded', 'failed', 'cancelled']);
    const runFinal = done.has(run.state);
    const actions = h('div', { class: 'actions' });
    if (can('operator')) {
      if (run.state === 'failed' || run.state === 'cancelled' || run.state === 'paused') {
        actions.append(actionButton('Resume', async () => {
          const r = await api.post(paths.resume(id), {});
          flash(`Run ${id} resumed${r.reset && r.reset.length ? ': reset ' + r.reset.join(', ') : ''}.`);
          refresh();
        }, { action: 'resume' }));
      }
      if (!runFinal) {
        actions.append(' ', actionButton('Cancel', async () => {
          if (!(await confirmAction(`Cancel run #${id}?`, 'Running attempts are told to stop and nothing more is started. You can resume the run later.', 'Cancel run'))) return;
          await api.post(paths.cancel(id), {});
          flash(`Run ${id} cancelled.`);
          refresh();
        }, { action: 'cancel', class: 'danger' }));
      }
    }
    replace(head, h('h1', {}, `Run #${run.id} `, h('span', { class: 'muted' }, 'of '),
      h('a', { href: href(`/workflows/${encodeURIComponent(run.workflow)}`) }, run.workflow), h('span', { class: 'muted' }, ` v${run.version}`), ' ', badge(run.state)), actions);
    const params = run.params && Object.keys(run.params).length
      ? h('ul', { class: 'plain params' }, Object.entries(run.params).map(([k, v]) => h('li', {}, h('code', {}, k), ' = ', h('span', { class: 'param-value' }, typeof v === 'string' ? v : JSON.stringify(v)))))
      : h('span', { class: 'muted' }, 'none');
    replace(facts, h('dl', { class: 'facts' },
      h('dt', {}, 'Trigger'), h('dd', {}, run.trigger || '—'),
      h('dt', {}, 'Created'), h('dd', {}, timeEl(run.created_at)),
      h('dt', {}, 'Started'), h('dd', {}, timeEl(run.started_at)),
      h('dt', {}, 'Finished'), h('dd', {}, timeEl(run.finished_at, runFinal ? '—' : 'not yet')),
      h('dt', {}, 'Duration'), h('dd', {}, duration(between(run.started_at || run.created_at, run.finished_at))),
      h('dt', {}, 'Params'), h('dd', {}, params)));
    const counts = new Map();
    for (const t of trs) counts.set(t.state, (counts.get(t.state) || 0) + 1);
    replace(summary, TASK_STATES.filter((s) => counts.has(s)).map((s) => h('span', { class: 'count', 'data-state': s }, badge(s), ' ', String(counts.get(s)))));
    if (!trs.length) replace(dagBox, empty('This run has no task runs yet.'));
    else requestAnimationFrame(() => { if (!closed) dag.update(trs); });
    renderGantt(ganttBox, trs, { width: Math.max(700, Math.min(1200, ganttBox.clientWidth || 900)), onSelect: (tr) => { selectedId = tr.id; lastPanelKey = ''; dag.select(`t:${tr.id}`); renderPanel(); } })
      || replace(ganttBox, empty('No attempts yet.'));
    renderPanel();
  }

  function renderPanel() {
    if (!run || selectedId === null) return;
    const tr = (run.task_runs || []).find((t) => t.id === selectedId);
    if (!tr) return;
    const key = JSON.stringify(tr) + run.state;
    if (key === lastPanelKey) return;
    lastPanelKey = key;
    const body = [];
    body.push(h('div', { class: 'panel-head' }, h('h3', {}, tr.task), badge(tr.state),
      h('button', { type: 'button', class: 'link close', 'aria-label': 'Close', onclick: () => { selectedId = null; dag.select(null); replace(panel, h('p', { class: 'muted' }, 'Click a task to see its attempts, output and errors.')); } }, '×')));
    const waits = tr.wait_reason || (!FINAL.has(tr.state) && tr.state !== 'running' ? defaultWait(tr, run) : null);
    if (waits) body.push(h('div', { class: 'waits' }, h('strong', {}, 'Why it waits: '), h('span', { class: 'wait-reason' }, waits)));
    body.push(h('dl', { class: 'facts small' },
      h('dt', {}, 'Attempt'), h('dd', {}, `${tr.attempt || 0} of ${tr.max_attempts ?? '?'}`),
      h('dt', {}, 'Executor'), h('dd', {}, tr.executor_id || '—'),
      h('dt', {}, 'Pool / priority'), h('dd', {}, `${tr.pool || 'default'} / ${tr.priority ?? '—'}`),
      h('dt', {}, 'Needs'), h('dd', {}, (tr.needs || []).join(', ') || '—'),
      h('dt', {}, 'Available at'), h('dd', {}, timeEl(tr.available_at))));
    if (tr.error) body.push(h('h4', {}, 'Error'), h('pre', { class: 'error-text' }, tr.error));
    if (tr.outputs && Object.keys(tr.outputs).length) body.push(h('h4', {}, 'Outputs'), h('pre', { class: 'outputs' }, json(tr.outputs)));
    if (can('operator') && ['failed', 'cancelled', 'succeeded', 'paused'].includes(run.state)) {
      body.push(h('div', { class: 'actions' }, actionButton('Resume from this task', async () => {
        const r = await api.post(paths.resume(id), { from: tr.task });
        flash(`Run ${id} resumed from ${tr.task}${r.reset && r.reset.length ? ': reset ' + r.reset.join(', ') : ''}.`);
        refresh();
      }, { action: 'resume-from' })));
    }
    const atts = (tr.attempts || []).slice().sort((a, b) => a.attempt - b.attempt);
    body.push(h('h4', {}, `Attempts (${atts.length})`));
    if (!atts.length) body.push(h('p', { class: 'muted' }, 'No attempt yet.'));
    else {
      body.push(table(['#', 'State', 'Executor', 'Result', 'Started', 'Duration'], atts.map((a) => h('tr', {},
        h('td', {}, String(a.attempt)), h('td', {}, badge(a.stale ? 'stale' : a.state)), h('td', {}, a.executor_id || '—'),
        h('td', {}, a.http_status !== null && a.http_status !== undefined ? `HTTP ${a.http_status}` : a.exit_code !== null && a.exit_code !== undefined ? `exit ${a.exit_code}` : '—'),
        h('td', {}, timeEl(a.started_at || a.claimed_at)),
        h('td', {}, duration(a.duration_ms ?? between(a.started_at, a.finished_at))))), 'attempts'));
      for (const a of atts.slice().reverse()) {
        const sec = h('details', { class: 'attempt', open: a === atts[atts.length - 1] ? true : null, 'data-attempt': String(a.attempt) },
          h('summary', {}, `Attempt ${a.attempt}`, a.stale ? ' (stale)' : '', ' · ', stateInfo(a.state).label));
        if (a.error) sec.append(h('div', { class: 'label' }, 'Error'), h('pre', { class: 'error-text' }, a.error));
        sec.append(h('div', { class: 'label' }, 'Output (tail)'), a.output ? h('pre', { class: 'output' }, a.output) : h('p', { class: 'muted' }, 'no output'));
        body.push(sec);
      }
    }
    replace(panel, ...body);
  }

  function schedulePoll() {
    clearTimeout(pollTimer);
    if (closed) return;
    const ms = streamLive ? SAFETY_POLL_MS : POLL_MS;
    pollTimer = setTimeout(async () => { await refresh(); schedulePoll(); }, ms);
  }

  let debounce = null;
  const closeEvents = openEvents({
    query: { run: id },
    onEvent: (ev) => {
      const rid = eventRunId(ev.data);
      if (rid !== null && rid !== String(id)) return;
      clearTimeout(debounce);
      debounce = setTimeout(refresh, 200);
    },
    onStatus: (st) => {
      // 'connecting' keeps the current mode: retries must not delay polls.
      if (st === 'connecting' && live.getAttribute('data-status') !== 'connecting') return;
      const wasLive = streamLive;
      streamLive = st === 'live';
      live.setAttribute('data-status', st);
      live.textContent = st === 'live' ? '● live' : st === 'connecting' ? 'connecting…' : `polling every ${POLL_MS / 1000} s (live feed unavailable)`;
      if (wasLive !== streamLive || st === 'live') schedulePoll();
    },
  });

  await refresh();
  schedulePoll();
  return () => { closed = true; clearTimeout(pollTimer); clearTimeout(debounce); closeEvents(); };
}

function defaultWait(tr, run) {
  if (tr.state === 'pending') return `waiting on upstream: ${(tr.needs || []).join(', ') || '—'}`;
  if (tr.state === 'queued') return `queued for a free slot in pool ${tr.pool || 'default'}`;
  if (tr.state === 'retrying') return 'waiting for the retry backoff';
  return run.state === 'paused' ? 'the run is paused' : null;
}

