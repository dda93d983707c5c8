// Task-run, run and attempt states: a label and an icon for each, so state
// never rests on colour alone. Colours (Okabe–Ito, colour-blind safe) are
// in app.css under .st-<state>.

export const STATES = {
  pending:         { icon: '○', label: 'pending' },
  queued:          { icon: '◔', label: 'queued' },
  running:         { icon: '▶', label: 'running' },
  retrying:        { icon: '↻', label: 'retrying' },
  succeeded:       { icon: '✓', label: 'succeeded' },
  failed:          { icon: '✗', label: 'failed' },
  cancelled:       { icon: '⊘', label: 'cancelled' },
  upstream_failed: { icon: '⤒', label: 'upstream failed' },
  skipped:         { icon: '↷', label: 'skipped' },
  dead:            { icon: '☠', label: 'dead' },
  paused:          { icon: '❚❚', label: 'paused' },
  // attempt states
  timeout:         { icon: '⌛', label: 'timeout' },
  lost:            { icon: '?', label: 'lost' },
  stale:           { icon: '≈', label: 'stale' },
  breaker_open:    { icon: '⚡', label: 'breaker open' },
  rejected:        { icon: '⊗', label: 'rejected' },
  // executors
  online:          { icon: '●', label: 'online' },
  draining:        { icon: '◐', label: 'draining' },
  offline:         { icon: '○', label: 'offline' },
  // breakers
  open:            { icon: '⚡', label: 'open' },
  closed:          { icon: '✓', label: 'closed' },
  half_open:       { icon: '◐', label: 'half open' },
};

export const TASK_STATES = ['pending', 'queued', 'running', 'retrying', 'succeeded', 'failed',
  'cancelled', 'upstream_failed', 'skipped', 'dead'];
export const RUN_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'paused'];
export const FINAL = new Set(['succeeded', 'failed', 'cancelled', 'upstream_failed', 'skipped', 'dead']);

export function stateInfo(st) {
  return STATES[st] || { icon: '•', label: String(st || 'unknown') };
}

// A CSS class for a state; unknown states map to st-unknown.
export function stateClass(st) {
  return STATES[st] ? `st-${st}` : 'st-unknown';
}
